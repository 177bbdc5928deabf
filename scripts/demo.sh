#!/usr/bin/env bash
# Headless demo: a server, a client and a sample web service on 127.0.0.1, with traffic crossing the tunnel.
#   bash scripts/demo.sh          # runs until Ctrl-C
#   bash scripts/demo.sh --once   # shows the traffic, then stops everything (used by the test suite)
set -euo pipefail
cd "$(dirname "$0")/.."
once=false; [ "${1:-}" = "--once" ] && once=true

command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found: apt-get install python3" >&2; exit 1; }
cargo build --quiet -p portway-server -p portway-client
bin=${CARGO_TARGET_DIR:-target}/debug

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

mkdir -p "$work/site" && echo "Hello from the service behind Portway ($(date -u +%FT%TZ))" > "$work/site/index.html"
python3 -m http.server 8080 --bind 127.0.0.1 --directory "$work/site" >"$work/web.log" 2>&1 & pids+=($!)
"$bin/portway-server" -c examples/frps.toml >"$work/server.log" 2>&1 & pids+=($!)
"$bin/portway-client" -c examples/frpc.toml >"$work/client.log" 2>&1 & pids+=($!)

echo "server   127.0.0.1:7000   (examples/frps.toml)"
echo "client   proxy demo-web: 127.0.0.1:6080 (public) -> 127.0.0.1:8080 (local web service)"
for _ in $(seq 1 100); do
  if out=$(python3 -c 'import urllib.request;print(urllib.request.urlopen("http://127.0.0.1:6080/",timeout=2).read().decode().strip())' 2>/dev/null); then
    echo "GET http://127.0.0.1:6080/ through the tunnel -> $out"
    break
  fi
  sleep 0.2
done
[ -n "${out:-}" ] || { echo "the tunnel did not come up; logs:" >&2; cat "$work"/*.log >&2; exit 1; }
if $once; then exit 0; fi
echo "Running. Try: curl http://127.0.0.1:6080/   (Ctrl-C to stop)"
tail -f "$work/server.log" "$work/client.log"
