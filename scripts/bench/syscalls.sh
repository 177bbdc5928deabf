#!/usr/bin/env bash
# Syscalls and user-space copies per MiB through a running tunnel: traces its processes with `strace -f` while the
# load tool pushes one stream through it, then prints, per MiB relayed, the calls of each syscall and the bytes that
# crossed the user/kernel boundary (read/write/recv/send families: one copy each) or moved inside the kernel (splice).
# "Relayed" counts from the trace itself: every process of a two-process tunnel moves each byte twice (in, out), so
# MiB relayed = bytes moved / (2 x processes). The load tool's own count is printed too; it is lower when the tunnel
# is slowed by strace and the tool stops while bytes are still queued in the tunnel's socket buffers.
#
#   bash scripts/bench/syscalls.sh PWLOAD PORT SECS PID [PID...]
#     PWLOAD: the load tool scripts/bench.sh compiled (WORKDIR/pwload); PORT: a tunnel's public sink port
#     (idle.json and frpc.toml in the bench's work dir name them); PID: the tunnel's processes (server, client...)
#   BENCH_CPU (0): the CPU the load tool is pinned to (the tunnel keeps its own pinning).
#
# strace slows every syscall, so the figures per MiB are what matters, not the throughput under it. The trace is
# bounded (timeout) and strace detaches when the load tool ends.
set -euo pipefail
tool=${1:?PWLOAD} port=${2:?PORT} secs=${3:?SECS}
shift 3
[ $# -gt 0 ] || { echo "syscalls.sh: no PID given" >&2; exit 2; }
command -v strace >/dev/null || { echo "syscalls.sh: strace not found (apt-get install strace)" >&2; exit 1; }
out=$(mktemp -d /tmp/portway-syscalls.XXXXXX)
args=()
for p in "$@"; do args+=(-p "$p"); done
timeout -k 5 $((secs + 30)) strace -f -qq -o "$out/trace" "${args[@]}" &
st=$!
sleep 1 # strace attaches to every thread
taskset -c "${BENCH_CPU:-0}" timeout -k 5 $((secs + 20)) "$tool" tput "$port" up 1 "$secs" 0 >"$out/tput.json"
kill -INT "$st" 2>/dev/null || true
wait "$st" 2>/dev/null || true
python3 - "$out/trace" "$out/tput.json" "$#" <<'EOF'
import collections, json, re, sys
tput = json.load(open(sys.argv[2]))
nprocs = int(sys.argv[3])
calls, moved = collections.Counter(), collections.Counter()
done = re.compile(r"^\d+\s+(?:<\.\.\. (\w+) resumed>|(\w+)\().*\)\s+=\s+(-?\d+)")
for line in open(sys.argv[1], errors="replace"):
    m = done.match(line)
    if not m:
        continue
    name, ret = m.group(1) or m.group(2), int(m.group(3))
    calls[name] += 1
    if ret > 0 and name in ("read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "splice"):
        moved["splice" if name == "splice" else "user"] += ret
mib = (moved["user"] + moved["splice"]) / (2.0 * nprocs) / 2**20
print("relayed: %.1f MiB by %d processes (the load tool counted %.1f MiB in %s s: %.0f MB/s under strace)" % (
    mib, nprocs, tput["bytes"] / 2**20, tput["secs"], tput["mb_s"]))
print("syscalls per MiB: %.1f in all" % (sum(calls.values()) / mib))
for name, n in calls.most_common(12):
    print("  %-16s %8.1f" % (name, n / mib))
print("copies between user space and the kernel per byte relayed: %.2f" % (moved["user"] / 2**20 / mib))
print("moves inside the kernel (splice) per byte relayed: %.2f" % (moved["splice"] / 2**20 / mib))
EOF
rm -rf "$out"
