#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS (default 60) each, installing cargo-fuzz if missing.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs no nightly toolchain: RUSTC_BOOTSTRAP=1 lets the stable compiler take cargo-fuzz's -Z flags.
# Seeds are read from fuzz/corpus/<target>/ (committed; regenerate with fuzz/make_seeds.py); what libFuzzer
# finds goes to fuzz/corpus-work/<target>/, crashes to fuzz/artifacts/<target>/ (both ignored by git).
# Honours CARGO_TARGET_DIR. Exits non-zero if any target failed, after running all of them.
set -euo pipefail

secs="${1:-60}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1

targets=$(cargo fuzz list --fuzz-dir fuzz)
[ -n "$targets" ] || { echo "no fuzz targets found" >&2; exit 1; }

failed=()
for t in $targets; do
    mkdir -p "fuzz/corpus-work/$t"
    echo "== $t: ${secs}s"
    if ! cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus-work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1; then
        echo "!! $t failed; the input that triggered it is in fuzz/artifacts/$t/" >&2
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing passed: $(echo $targets | wc -w) targets, ${secs}s each"
