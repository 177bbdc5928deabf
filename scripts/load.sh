#!/usr/bin/env bash
# Portway load test: N concurrent TCP connections (default 10,000) through one portway-server + portway-client,
# in frp's default configuration (TLS + tcpMux), each echoing its own 64-byte pattern and then held open.
# Reports: connections held, memory per connection (server and client), and leaks — the server's connections and
# tasks, the runtime's live tasks and the open file descriptors of both processes, counted before the rounds and
# after all connections closed. Bounded: at most ROUNDS rounds, each with a 60 s deadline.
#
#   bash scripts/load.sh                  # build (release), 10,000 connections, 2 rounds
#   bash scripts/load.sh --no-build -n 2000 --rounds 3 --json /tmp/load.json
#
# Exit status: 0 when every connection echoed its own bytes in every round and nothing leaked; 1 otherwise.
# Needs: cc, python3, a file-descriptor hard limit above N + 100 (`ulimit -Hn`; the script raises the soft limit).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=10000 rounds=2 build=true json_out=""
while [ $# -gt 0 ]; do
  case $1 in
    -n) n=${2:?-n COUNT}; shift ;;
    --rounds) rounds=${2:?--rounds R}; shift ;;
    --no-build) build=false ;;
    --json) json_out=${2:?--json FILE}; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $n$rounds in *[!0-9]*) echo "load: -n and --rounds take numbers" >&2; exit 2 ;; esac

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((n + 100)) ]; then
  echo "load: the file-descriptor hard limit is $hard; $n connections need $((n + 100)) per process." >&2
  echo "      raise it (e.g. 'ulimit -Hn 65536' as root, or LimitNOFILE= in a unit) or lower -n" >&2
  exit 2
fi
ulimit -n "$hard"

bindir=${CARGO_TARGET_DIR:-$repo/target}/release
if $build; then
  (cd "$repo" && cargo build --release --quiet -p portway-server -p portway-client --bin portway-server --bin portway-client)
fi
for b in portway-server portway-client; do
  [ -x "$bindir/$b" ] || { echo "load: $bindir/$b missing (run without --no-build)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/portway-load.XXXXXX)
tool=$work/pwload
cc -O2 -Wall -o "$tool" "$repo/scripts/bench/pwload.c"
log() { echo "[load $(date +%T)] $*" >&2; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

read -r svc ctrl pub < <("$tool" ports 3 | tr "\n" " "; echo)
"$tool" serve "$svc" 0 0 0 3600 >"$work/service.log" 2>&1 &
pids+=($!)
token="load-$RANDOM$RANDOM"
cat >"$work/frps.toml" <<EOF
bindAddr = "127.0.0.1"
bindPort = $ctrl
auth.token = "$token"
EOF
cat >"$work/frpc.toml" <<EOF
serverAddr = "127.0.0.1"
serverPort = $ctrl
auth.token = "$token"

[[proxies]]
name = "load-echo"
type = "tcp"
localIP = "127.0.0.1"
localPort = $svc
remotePort = $pub
EOF
"$bindir/portway-server" -c "$work/frps.toml" >"$work/server.log" 2>&1 &
spid=$!; pids+=($spid)
sleep 0.3
"$bindir/portway-client" -c "$work/frpc.toml" >"$work/client.log" 2>&1 &
cpid=$!; pids+=($cpid)
for _ in $(seq 100); do "$tool" probe "$pub" tcp 2>/dev/null && break; sleep 0.1; done
"$tool" probe "$pub" tcp || { log "the tunnel did not come up; logs in $work"; tail -5 "$work"/*.log >&2; exit 1; }

rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
# SIGUSR1 makes both binaries log a "stats" line; the newest value of FIELD from LOG
stat_field() { # LOG FIELD
  grep ' stats' "$1" | tail -n 1 | grep -o "$2=[0-9]*" | cut -d= -f2
}
snapshot() { # NAME: server/client stats into $work/NAME.json
  local before_s before_c
  before_s=$(grep -c ' stats' "$work/server.log" || true) before_c=$(grep -c ' stats' "$work/client.log" || true)
  kill -USR1 "$spid" "$cpid"
  for _ in $(seq 50); do
    [ "$(grep -c ' stats' "$work/server.log" || true)" -gt "$before_s" ] &&
      [ "$(grep -c ' stats' "$work/client.log" || true)" -gt "$before_c" ] && break
    sleep 0.1
  done
  printf '{"server_connections":%s,"server_tasks":%s,"server_fds":%s,"client_tasks":%s,"client_fds":%s,"server_rss_kib":%s,"client_rss_kib":%s}\n' \
    "$(stat_field "$work/server.log" connections)" "$(stat_field "$work/server.log" runtime_tasks)" "$(fds "$spid")" \
    "$(stat_field "$work/client.log" runtime_tasks)" "$(fds "$cpid")" "$(rss "$spid")" "$(rss "$cpid")" >"$work/$1.json"
}

# warm-up: a few connections first, so that what is created once (work-connection pool, buffers, lazily started
# tasks) is in the 'before' figures and only growth across rounds counts as a leak
"$tool" conc "$pub" 50 64 30 200 >/dev/null 2>&1 || { log "warm-up connections failed; logs in $work"; exit 1; }
sleep 1
snapshot before
log "server pid $spid, client pid $cpid, public port $pub; before: $(cat "$work/before.json")"
for r in $(seq "$rounds"); do
  log "round $r: $n connections"
  # hold them 4 s after the last echo; meanwhile take the 'held' snapshot
  "$tool" conc "$pub" "$n" 64 60 4000 "$spid" "$cpid" >"$work/round$r.json" 2>"$work/round$r.err" &
  conc=$!
  held=false
  for _ in $(seq 1300); do
    kill -0 "$conc" 2>/dev/null || break
    snapshot "held$r"
    if python3 -c "import json,sys; sys.exit(0 if json.load(open('$work/held$r.json'))['server_connections'] >= $n else 1)" 2>/dev/null; then
      held=true
      break
    fi
    sleep 0.2
  done
  wait "$conc" || true
  log "round $r: $(head -c 300 "$work/round$r.json")"
  $held || log "round $r: the server never held $n connections at once"
  # after the close: give the server and client a bounded time to wind every connection down
  for _ in $(seq 100); do
    snapshot "after$r"
    python3 - "$work" "$r" <<'EOF' && break
import json, sys
w, r = sys.argv[1], sys.argv[2]
b, a = json.load(open(f"{w}/before.json")), json.load(open(f"{w}/after{r}.json"))
sys.exit(0 if a["server_connections"] <= b["server_connections"] and a["server_fds"] <= b["server_fds"]
         and a["client_fds"] <= b["client_fds"] and a["server_tasks"] <= b["server_tasks"]
         and a["client_tasks"] <= b["client_tasks"] else 1)
EOF
    sleep 0.1
  done
done

python3 - "$work" "$rounds" "$n" "${json_out:-$work/results.json}" <<'EOF'
import json, sys
w, rounds, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
before = json.load(open(f"{w}/before.json"))
res = {"n": n, "before": before, "rounds": []}
ok = True
print(f"\nPortway load test: {n} concurrent connections through one server and one client (TLS + tcpMux), {rounds} rounds")
print(f"before: server {before['server_rss_kib']/1024:.1f} MiB, {before['server_fds']} fds, {before['server_tasks']} tasks;"
      f" client {before['client_rss_kib']/1024:.1f} MiB, {before['client_fds']} fds, {before['client_tasks']} tasks")
for r in range(1, rounds + 1):
    conc = json.load(open(f"{w}/round{r}.json"))
    try:
        held = json.load(open(f"{w}/held{r}.json"))
    except FileNotFoundError:
        held = {}
    after = json.load(open(f"{w}/after{r}.json"))
    rss = conc.get("rss_kib", {})
    srv_rss, cli_rss = list(rss.values()) if len(rss) == 2 else (0, 0)
    per_conn_s = (srv_rss - before["server_rss_kib"]) * 1024 / n
    per_conn_c = (cli_rss - before["client_rss_kib"]) * 1024 / n
    leaks = {k: after[k] - before[k] for k in ("server_connections", "server_tasks", "server_fds", "client_tasks", "client_fds")}
    round_ok = conc.get("ok") == n and not any(v > 0 for v in leaks.values())
    ok &= round_ok
    res["rounds"].append({"conc": conc, "held": held, "after": after, "bytes_per_conn_server": per_conn_s,
                          "bytes_per_conn_client": per_conn_c, "leaks": leaks, "ok": round_ok})
    print(f"round {r}: echoed {conc.get('ok')}/{n} (each its own bytes) in {conc.get('secs_to_all')} s;"
          f" held at once by the server: {held.get('server_connections', '?')};"
          f" failed {conc.get('fail')}, error: {conc.get('error') or 'none'}")
    print(f"  memory holding them: server {srv_rss/1024:.1f} MiB ({per_conn_s/1024:.1f} KiB/conn),"
          f" client {cli_rss/1024:.1f} MiB ({per_conn_c/1024:.1f} KiB/conn)")
    print(f"  after close: server {after['server_rss_kib']/1024:.1f} MiB, {after['server_fds']} fds,"
          f" {after['server_tasks']} tasks, {after['server_connections']} connections; client"
          f" {after['client_rss_kib']/1024:.1f} MiB, {after['client_fds']} fds, {after['client_tasks']} tasks")
    print("  leaks (after - before): " + ", ".join(f"{k} {v:+d}" for k, v in leaks.items())
          + ("  OK" if round_ok else "  FAILED"))
res["ok"] = ok
json.dump(res, open(out, "w"), indent=1)
print(f"\nresult: {'OK' if ok else 'FAILED'}; JSON: {out}; logs and configs: {w}")
sys.exit(0 if ok else 1)
EOF
