#!/usr/bin/env bash
# Portway benchmark: the tunnel against the direct loopback path, on one run, everything pinned to one core.
#
#   bash scripts/bench.sh                 # full run (~3 min): build (release), measure, print the table, write JSON
#   bash scripts/bench.sh --quick         # smoke run (~1 min): short phases, same steps
#   bash scripts/bench.sh --cross-check   # also run the reference harness (../shared/bench) on portway, cmd mode
#   options: --json FILE (default: WORKDIR/results.json), --no-build (use the binaries as they are, install no peer),
#            --paths "direct tcp plain ..." (which paths to measure, in that order; the default is all of them:
#            direct tcp plain v2 websocket wss quic stcp xtcp rathole bore frp frp-plain; plain-nosplice, plain-splice on request)
#            --no-http (skip the HTTP virtual-host phase: scripts/bench-http.sh, nginx + wrk, run after the paths)
#            --rounds N (default 1): run the whole path list N times in one sitting, alternating (round 1 in the
#            --paths order, round 2 in reverse, round 3 forward again...; fresh processes and ports each round), keep
#            every round's figures and report per row the median of the rounds, its spread (min-max) and, against
#            the peers, the ratio of medians (met / NOT MET on the medians; "undecided" when the spreads straddle it)
#   The work dir (BENCH_WORKDIR, default a new /tmp/portway-bench.*) keeps the configs, logs and per-phase JSON.
#
# Method (docs/benchmarks.md): a C service (TCP echo, sink, source; UDP echo) and a C load tool, both compiled here
# with `cc -O2` (scripts/bench/pwload.c). First every figure is measured against the service directly ("direct"),
# then through portway-server + portway-client in frp's default configuration (TLS and tcpMux on, default log
# level), then with transport.wireProtocol = "v2" (path v2: tcp, TLS, tcpMux as the tcp path), then with
# transport.protocol = "websocket" / "wss" / "quic" (quic: quicBindPort on the server, the same number as bindPort,
# over UDP) where `portway-client verify` accepts it; "plain" is Portway without TLS and without tcpMux on both sides
# (transport.tls.enable = false, transport.tcpMux = false: rathole's and bore's model), "plain-nosplice" the same with
# PORTWAY_NO_SPLICE=1 (the user-space relay). Peers, run the same way in the same sitting: rathole and bore (crates
# rathole and bore-cli, `cargo install --root $BENCH_PEERS_DIR` on first use; skipped with a note when they cannot be
# built), frp (FRPS/FRPC or frps/frpc on PATH; never downloaded) with the very frps.toml/frpc.toml of "tcp" ("frp")
# and "plain" ("frp-plain"). The report compares each Portway configuration with the best peer of the same one. The service,
# the tunnel and the load tool all run under `taskset -c $BENCH_CPU`, so figures are repeatable and measure CPU cost.
#
# Knobs (env): BENCH_CPU (0), BENCH_TPUT_SECS (5), BENCH_LAT_N (20000), BENCH_CONNRATE_SECS (5), BENCH_CONC_N (1000),
# BENCH_UDP_SECS (3), BENCH_UDP_WINDOW (32), BENCH_SIZE (64), BENCH_WORKDIR (a new /tmp dir), BENCH_REF (../shared/bench
# beside the repo), CARGO_TARGET_DIR (target), BENCH_PEERS_DIR (CARGO_TARGET_DIR/bench-peers: rathole, bore in bin/),
# FRPS / FRPC (frp's binaries, default: on PATH), BENCH_PORTWAY_ENV (VAR=VALUE words added to Portway's environment,
# e.g. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 to try another allocator).
# Every loop is bounded in time; every process started here is stopped by PID on exit (trap).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

quick=false build=true cross=false json_out="" rounds=1 paths="direct tcp plain v2 websocket wss quic stcp xtcp rathole bore frp frp-plain"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=true ;;
    --no-build) build=false ;;
    --cross-check) cross=true ;;
    --json) json_out=${2:?--json FILE}; shift ;;
    --paths) paths=${2:?--paths LIST}; shift ;;
    --rounds) rounds=${2:?--rounds N}; shift ;;
    --no-http) http=false ;; # skip the HTTP virtual-host phase (scripts/bench-http.sh)
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case $rounds in
  [1-9] | [1-9][0-9]) ;;
  *) echo "bench: --rounds takes a whole number from 1 to 99 (got '$rounds')" >&2; exit 2 ;;
esac
cpu=${BENCH_CPU:-0}
if $quick; then d_tput=2 d_lat=2000 d_conn=1 d_udp=1; else d_tput=5 d_lat=20000 d_conn=5 d_udp=3; fi
tput_secs=${BENCH_TPUT_SECS:-$d_tput}
lat_n=${BENCH_LAT_N:-$d_lat}
conn_secs=${BENCH_CONNRATE_SECS:-$d_conn}
conc_n=${BENCH_CONC_N:-1000}
udp_secs=${BENCH_UDP_SECS:-$d_udp}
udp_window=${BENCH_UDP_WINDOW:-32}
size=${BENCH_SIZE:-64}
ref=${BENCH_REF:-$(cd "$repo/.." && pwd)/shared/bench}
token="portway-bench-$RANDOM$RANDOM"

for tool in cc taskset python3 timeout; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
[ "$(uname -s)" = Linux ] || { echo "bench: needs Linux (/proc, taskset)" >&2; exit 1; }
taskset -c "$cpu" true 2>/dev/null || { echo "bench: cannot pin to CPU $cpu (BENCH_CPU)" >&2; exit 1; }

# the tunnel runs as a user would run it: no backtrace capture on errors, log level from the config
unset RUST_BACKTRACE RUST_LIB_BACKTRACE RUST_LOG
work=${BENCH_WORKDIR:-$(mktemp -d /tmp/portway-bench.XXXXXX)}
mkdir -p "$work/results"
json_out=${json_out:-$work/results.json}
log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- processes: started here, stopped by PID
pids=() names=()
stop_pid() { # PID NAME: TERM, up to 5 s, then KILL, only while /proc says it is still our process
  local pid=$1 name=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"; then
    log "$name (pid $pid) ignored SIGTERM for 5 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}" "${names[$i]}"; done
  pids=() names=()
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

start() { # NAME LOGFILE CMD...: pinned, in the background; sets $started
  local name=$1 logf=$2; shift 2
  taskset -c "$cpu" "$@" >"$logf" 2>&1 &
  started=$!
  pids+=("$started") names+=("$name")
}
stop_named() { # NAME...: stops those started under these names
  local i n keep_p=() keep_n=()
  for ((i = 0; i < ${#pids[@]}; i++)); do
    local hit=false
    for n in "$@"; do [ "${names[$i]}" = "$n" ] && hit=true; done
    if $hit; then stop_pid "${pids[$i]}" "${names[$i]}"; else keep_p+=("${pids[$i]}") keep_n+=("${names[$i]}"); fi
  done
  pids=("${keep_p[@]+"${keep_p[@]}"}") names=("${keep_n[@]+"${keep_n[@]}"}")
}
alive() { kill -0 "$1" 2>/dev/null; }
backlog() { # PORT: the accept-queue length of the TCP listener on it (ss's Send-Q), or -1
  local b=""
  command -v ss >/dev/null && b=$(ss -Hltn "sport = :$1" 2>/dev/null | awk '{print $3; exit}')
  echo "${b:--1}"
}
cpu_ticks() { # PID...: utime+stime in clock ticks, summed
  local t=0 p v
  for p in "$@"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
ctx_switches() { # PID...: voluntary + involuntary context switches of every thread, summed (wake-ups)
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null; done |
    awk '$1 == "voluntary_ctxt_switches:" || $1 == "nonvoluntary_ctxt_switches:" {t += $2} END {print t + 0}'
}
kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
listening() { # PORT: a TCP LISTEN socket on it
  local hex; hex=$(printf '%04X' "$1")
  awk -v h=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h {f = 1} END {exit !f}' /proc/net/tcp
}

# ---------------------------------------------------------------- build
bindir=${CARGO_TARGET_DIR:-$repo/target}/release
if $build; then
  command -v cargo >/dev/null || { echo "bench: cargo not found" >&2; exit 1; }
  log "building portway (release) into $bindir"
  (cd "$repo" && cargo build --release --quiet -p portway-server -p portway-client \
    --bin portway-server --bin portway-client)
fi
for b in portway-server portway-client; do
  [ -x "$bindir/$b" ] || { echo "bench: $bindir/$b missing (build first, or drop --no-build)" >&2; exit 1; }
done
# peers: rathole and bore from crates.io into a directory of the bench's own (never on PATH, never system-wide)
peers_dir=${BENCH_PEERS_DIR:-${CARGO_TARGET_DIR:-$repo/target}/bench-peers}
install_peer() { # CRATE BIN: installs CRATE into $peers_dir unless BIN is there; a failure is a note, not an error
  local crate=$1 bin=$2
  [ -x "$peers_dir/bin/$bin" ] && return 0
  if ! $build; then log "peer $bin: not in $peers_dir/bin and --no-build: skipped"; return 0; fi
  mkdir -p "$peers_dir"
  log "peer $bin: cargo install --root $peers_dir $crate (once; log in $peers_dir/install-$crate.log)"
  if ! CARGO_TARGET_DIR="$peers_dir/build" nice -n 5 cargo install --quiet --root "$peers_dir" "$crate" \
    >"$peers_dir/install-$crate.log" 2>&1; then
    log "peer $bin: could not be built (see $peers_dir/install-$crate.log): skipped"
  fi
}
case " $paths " in *" rathole "*) install_peer rathole rathole ;; esac
case " $paths " in *" bore "*) install_peer bore-cli bore ;; esac
frps_bin=${FRPS:-$(command -v frps || true)} frpc_bin=${FRPC:-$(command -v frpc || true)}
tool=$work/pwload
cc -O2 -Wall -o "$tool" "$repo/scripts/bench/pwload.c"

# the 1,000-connection phase needs more than 1,024 descriptors in every process
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((conc_n * 2 + 256)) ]; then
  echo "bench: the hard limit on open files ($hard) is too low for $conc_n connections" >&2; exit 1
fi
ulimit -n "$hard"

mapfile -t ports < <("$tool" ports 64)
[ "${#ports[@]}" -eq 64 ] || { echo "bench: could not find free ports" >&2; exit 1; }
svc_echo=${ports[0]} svc_sink=${ports[1]} svc_source=${ports[2]} svc_udp=${ports[3]}
next_port=4

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
python3 - "$work/results/meta.json" <<EOF
import json, os, platform, subprocess, sys, time
def out(*a):
    try: return subprocess.run(a, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception: return None
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None)
json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "host": platform.node(), "kernel": platform.release(),
           "cpus_online": os.cpu_count(), "cpu_model": model, "pinned_cpu": "$cpu",
           "commit": out("git", "-C", "$repo", "rev-parse", "--short", "HEAD"),
           "dirty": bool(out("git", "-C", "$repo", "status", "--porcelain", "--untracked-files=no")),
           "server_version": out("$bindir/portway-server", "--version"),
           "loadavg_start": "$(loadavg)", "quick": "$quick" == "true", "rounds": $rounds,
           "settings": {"tput_secs": $tput_secs, "tput_warmup_ms": 1000, "lat_n": $lat_n, "size": $size,
                        "connrate_secs": $conn_secs, "connrate_size": 1, "conc_n": $conc_n, "udp_secs": $udp_secs,
                        "udp_window": $udp_window, "udp_timeout_ms": 200}}, open(sys.argv[1], "w"), indent=1)
EOF

# ---------------------------------------------------------------- the service (stays up for every path)
start service "$work/service.log" "$tool" serve "$svc_echo" "$svc_sink" "$svc_source" "$svc_udp" 3600
for _ in $(seq 100); do grep -q READY "$work/service.log" 2>/dev/null && break; sleep 0.05; done
grep -q READY "$work/service.log" || { echo "bench: the service did not start:" >&2; cat "$work/service.log" >&2; exit 1; }
service_pid=$started
log "service: echo $svc_echo, sink $svc_sink, source $svc_source, udp $svc_udp (pid $started, CPU $cpu)"

# ---------------------------------------------------------------- phases
# the kernel thread that takes over network softirq work on the pinned CPU under load: part of the data path
ksoftirqd=$(grep -lx "ksoftirqd/$cpu" /proc/[0-9]*/comm 2>/dev/null | head -n 1 | cut -d/ -f3 || true)
cpu_stat() { # the pinned CPU's line of /proc/stat: "user+nice+system irq+softirq steal" in ticks
  awk -v c="cpu$cpu" '$1 == c {print $2 + $3 + $4, $7 + $8, $9}' /proc/stat
}
tcp_counters() { # "ListenOverflows TCPSynRetrans" from /proc/net/netstat (system-wide)
  awk '$1 == "TcpExt:" {if (!h) {for (i = 2; i <= NF; i++) k[$i] = i; h = 1} else print $k["ListenOverflows"], $k["TCPSynRetrans"]}' /proc/net/netstat
}
phase() { # DIR NAME DEADLINE_S TUNNEL_PIDS(comma list or -) -- TOOL ARGS...: one JSON line into DIR/NAME.json
  local dir=$1 name=$2 deadline=$3 tpids=$4; shift 5
  local list=() t0 t1 s0 s1 k0 k1 c0 c1 u0 i0 st0 u1 i1 st1 n0 n1 lo0 sr0 lo1 sr1 rc=0 start_ns wall_ms x0 x1
  [ "$tpids" != - ] && IFS=, read -ra list <<<"$tpids"
  t0=$(cpu_ticks "${list[@]+"${list[@]}"}") s0=$(cpu_ticks "$service_pid") k0=$(cpu_ticks $ksoftirqd) c0=$(cpu_stat) n0=$(tcp_counters)
  x0=$(ctx_switches "${list[@]+"${list[@]}"}")
  start_ns=$(date +%s%N)
  taskset -c "$cpu" timeout -k 5 "$deadline" "$tool" "$@" >"$dir/$name.json" 2>"$dir/$name.err" || rc=$?
  wall_ms=$((($(date +%s%N) - start_ns) / 1000000))
  t1=$(cpu_ticks "${list[@]+"${list[@]}"}") s1=$(cpu_ticks "$service_pid") k1=$(cpu_ticks $ksoftirqd) c1=$(cpu_stat) n1=$(tcp_counters)
  x1=$(ctx_switches "${list[@]+"${list[@]}"}")
  [ -s "$dir/$name.json" ] || echo "{\"error\":\"no output (exit $rc): $(head -c 200 "$dir/$name.err" | tr -d '"\\\n')\"}" >"$dir/$name.json"
  read -r u0 i0 st0 <<<"$c0"; read -r u1 i1 st1 <<<"$c1"; read -r lo0 sr0 <<<"$n0"; read -r lo1 sr1 <<<"$n1"
  echo "{\"tunnel_ctx_switches\":$((x1 - x0)),\"tunnel_cpu_ticks\":$((t1 - t0)),\"service_cpu_ticks\":$((s1 - s0)),\"ksoftirqd_cpu_ticks\":$((k1 - k0)),\"cpu_busy_ticks\":$((u1 - u0)),\"cpu_irq_ticks\":$((i1 - i0)),\"cpu_steal_ticks\":$((st1 - st0)),\"clk_tck\":$(getconf CLK_TCK),\"wall_ms\":$wall_ms,\"listen_overflows\":$((${lo1:-0} - ${lo0:-0})),\"syn_retrans\":$((${sr1:-0} - ${sr0:-0})),\"rc\":$rc}" >"$dir/$name.cpu.json"
  log "  $name: $(head -c 300 "$dir/$name.json")"
}

measure() { # DIR ECHO SINK SOURCE UDP TUNNEL_PIDS: every phase against these ports
  local dir=$1 echo_p=$2 sink_p=$3 source_p=$4 udp_p=$5 tp=$6 rss_pids=()
  [ "$tp" != - ] && IFS=, read -ra rss_pids <<<"$tp"
  phase "$dir" lat $((lat_n / 500 + 60)) "$tp" -- lat "$echo_p" "$lat_n" "$size" $((lat_n / 500 + 50)) 200
  phase "$dir" connrate $((conn_secs + 30)) "$tp" -- connrate "$echo_p" "$conn_secs" 1 2000000
  phase "$dir" conc 90 "$tp" -- conc "$echo_p" "$conc_n" "$size" 60 1000 "${rss_pids[@]+"${rss_pids[@]}"}"
  sleep 1 # let the 1,000 closes go through before the next phase
  # what the tunnel keeps after the burst (an allocator that returns memory shows here)
  local p after=0
  for p in "${rss_pids[@]+"${rss_pids[@]}"}"; do after=$((after + $(kib "$p" VmRSS))); done
  [ ${#rss_pids[@]} -gt 0 ] && echo "{\"rss_kib\":$after}" >"$dir/after_burst.json"
  if [ "$udp_p" != - ]; then # bore has no UDP
    phase "$dir" udp_rr $((udp_secs + 30)) "$tp" -- udp "$udp_p" "$udp_secs" "$size" 1 200 20000000
    phase "$dir" udp_flood $((udp_secs + 30)) "$tp" -- udp "$udp_p" "$udp_secs" "$size" "$udp_window" 200 20000000
  fi
  local d s
  for d in up down; do
    # xtcp: a QUIC stream reaches the provider with the visitor's first byte, so a service that speaks first (the
    # source) is never dialled: the download phases cannot run there (frp behaves the same: frp issue 5172)
    [ "$d" = down ] && ${skip_down:-false} && continue
    for s in 1 8; do
      local p=$sink_p; [ $d = down ] && p=$source_p
      phase "$dir" "tput_${d}_$s" $((tput_secs + 40)) "$tp" -- tput "$p" $d $s "$tput_secs" 1000
    done
  done
}

make_certs() { # DIR: ca.crt, server.crt/server.key (EC P-256, IP SAN 127.0.0.1), valid 2 days
  local d=$1
  command -v openssl >/dev/null || { echo "openssl not found"; return 1; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=portway-bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$d/ca.key" -out "$d/ca.crt" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
      -keyout "$d/server.key" -out "$d/server.csr" &&
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
      >"$d/server.ext" &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
      -extfile "$d/server.ext" -out "$d/server.crt"
}

run_direct() {
  local dir=$rdir/direct
  mkdir -p "$dir"
  log "path direct: the service itself"
  measure "$dir" "$svc_echo" "$svc_sink" "$svc_source" "$svc_udp" -
}

alloc_ports() { # sets ctrl p_echo p_sink p_source p_udp: five of the free ports picked at start
  ctrl=${ports[$next_port]} p_echo=${ports[$((next_port + 1))]} p_sink=${ports[$((next_port + 2))]}
  p_source=${ports[$((next_port + 3))]} p_udp=${ports[$((next_port + 4))]}
  next_port=$((next_port + 5))
}
skip_path() { # DIR NAME REASON
  log "path $2: skipped, $3"
  printf '{"skipped":%s}\n' "$(python3 -c 'import json,sys;print(json.dumps(sys.argv[1]))' "$3")" >"$1/skipped.json"
}

# Waits until every public port echoes, then measures; PIDS: the tunnel's processes (server first), comma-separated.
# UDP port "-": no UDP proxy (bore). Stops the processes started under NAMES... afterwards.
measure_tunnel() { # DIR NAME PIDS ECHO SINK SOURCE UDP CTRL NAMES...
  local dir=$1 name=$2 tp=$3 pe=$4 pk=$5 ps=$6 pu=$7 pc=$8; shift 8
  local list=() p ready=false t0 all_alive=true idle=0 hwm=0
  IFS=, read -ra list <<<"$tp"
  t0=$(date +%s%N)
  for _ in $(seq 300); do
    all_alive=true
    for p in "${list[@]}"; do alive "$p" || all_alive=false; done
    $all_alive || break
    if "$tool" probe "$pe" tcp && "$tool" probe "$pk" connect && "$tool" probe "$ps" connect \
      && { [ "$pu" = - ] || "$tool" probe "$pu" udp; }; then ready=true; break; fi
    sleep 0.1
  done
  if ! $ready; then
    log "path $name: not ready after 30 s (all processes alive: $all_alive)"
    printf '{"error":%s}\n' "$(tail -n 5 "$dir"/*.log | python3 -c 'import json,sys;print(json.dumps("not ready after 30 s; logs: " + sys.stdin.read()))')" >"$dir/failed.json"
    stop_named "$@"
    return 0
  fi
  local ready_ms=$((($(date +%s%N) - t0) / 1000000))
  sleep 0.5
  for p in "${list[@]}"; do idle=$((idle + $(kib "$p" VmRSS))); done
  echo "{\"pids\":\"$tp\",\"ready_ms\":$ready_ms,\"rss_idle_kib\":$idle,\"server_rss_idle_kib\":$(kib "${list[0]}" VmRSS),\"public_listen_backlog\":$(backlog "$pe"),\"bind_listen_backlog\":$(backlog "$pc")}" >"$dir/idle.json"
  measure "$dir" "$pe" "$pk" "$ps" "$pu" "$tp"
  all_alive=true
  for p in "${list[@]}"; do hwm=$((hwm + $(kib "$p" VmHWM))); alive "$p" || all_alive=false; done
  echo "{\"hwm_kib\":$hwm,\"server_hwm_kib\":$(kib "${list[0]}" VmHWM),\"server_alive\":$all_alive,\"client_alive\":$all_alive}" >"$dir/end.json"
  stop_named "$@"
  grep -ciE 'panic|ERROR' "$dir"/*.log >"$dir/log-errors.txt" || true
}

# Portway (or frp: the same configs, frp's binaries) in one configuration.
run_tunnel() { # PATH: tcp | plain | plain-nosplice | v2 (tcp, wire v2) | websocket | wss | quic | frp | frp-plain
  local path=$1 proto=$1 impl=portway name wire_line="" quic_line="" plain_server="" plain_client="" env_pre=()
  local srv_bin=$bindir/portway-server cli_bin=$bindir/portway-client
  case $path in
    frp|frp-plain)
      impl=frp srv_bin=$frps_bin cli_bin=$frpc_bin proto=tcp
      [ "$path" = frp-plain ] && proto=plain ;;
  esac
  case $proto in
    v2) proto=tcp wire_line='transport.wireProtocol = "v2"' ;;
    plain|plain-nosplice|plain-splice)
      [ "$proto" = plain-nosplice ] && env_pre=(PORTWAY_NO_SPLICE=1)
      [ "$proto" = plain-splice ] && env_pre=(PORTWAY_SPLICE_LOOPBACK=1) # splice between loopback sockets too
      proto=tcp plain_server='transport.tcpMux = false'
      plain_client=$(printf 'transport.tls.enable = false\ntransport.tcpMux = false') ;;
  esac
  # BENCH_PORTWAY_ENV: extra VAR=VALUE words for Portway's processes (e.g. LD_PRELOAD of another allocator)
  # shellcheck disable=SC2206
  [ "$impl" = portway ] && env_pre+=(${BENCH_PORTWAY_ENV:-})
  [ ${#env_pre[@]} -gt 0 ] && env_pre=(env "${env_pre[@]}")
  name=portway-$path
  [ "$impl" = frp ] && name=$path
  [ "$path" = frp ] && name=frp-tcp
  local dir=$rdir/$name
  mkdir -p "$dir"
  if [ "$impl" = frp ] && { [ ! -x "$srv_bin" ] || [ ! -x "$cli_bin" ]; }; then
    skip_path "$dir" "$name" "frp's binaries are not on this machine (set FRPS and FRPC, or put frps/frpc on PATH; the bench downloads nothing)"
    return 0
  fi
  local ctrl p_echo p_sink p_source p_udp
  alloc_ports
  local tls_server="" tls_client=""
  # QUIC on UDP, the same port number as bindPort (frp allows it: TCP and UDP ports are apart)
  [ "$proto" = quic ] && quic_line="quicBindPort = $ctrl"
  if [ "$proto" = wss ]; then
    # wss verifies the server by default (unlike tcp and websocket): a throwaway CA and a certificate for 127.0.0.1
    if ! make_certs "$dir" >"$dir/certs.log" 2>&1; then
      skip_path "$dir" "$name" "wss needs a CA-signed certificate; openssl failed (see certs.log)"
      return 0
    fi
    tls_server=$(printf 'transport.tls.certFile = "%s"\ntransport.tls.keyFile = "%s"' "$dir/server.crt" "$dir/server.key")
    tls_client=$(printf 'transport.tls.trustedCaFile = "%s"' "$dir/ca.crt")
  fi
  cat >"$dir/frps.toml" <<EOF
# frp's defaults otherwise: TLS accepted (self-signed certificate), tcpMux on, log level info
bindAddr = "127.0.0.1"
bindPort = $ctrl
auth.token = "$token"
$quic_line
$tls_server
$plain_server
EOF
  local proto_line=""
  [ "$proto" != tcp ] && proto_line="transport.protocol = \"$proto\""
  cat >"$dir/frpc.toml" <<EOF
# frp's defaults otherwise: transport.tls.enable = true, transport.tcpMux = true, poolCount 1, log level info
serverAddr = "127.0.0.1"
serverPort = $ctrl
auth.token = "$token"
$proto_line
$wire_line
$tls_client
$plain_client

[[proxies]]
name = "bench-echo"
type = "tcp"
localIP = "127.0.0.1"
localPort = $svc_echo
remotePort = $p_echo

[[proxies]]
name = "bench-sink"
type = "tcp"
localIP = "127.0.0.1"
localPort = $svc_sink
remotePort = $p_sink

[[proxies]]
name = "bench-source"
type = "tcp"
localIP = "127.0.0.1"
localPort = $svc_source
remotePort = $p_source

[[proxies]]
name = "bench-udp"
type = "udp"
localIP = "127.0.0.1"
localPort = $svc_udp
remotePort = $p_udp
EOF
  if [ "$impl" = portway ] && [ "$proto" != tcp ]; then
    if ! "$cli_bin" verify -c "$dir/frpc.toml" >"$dir/verify.log" 2>&1; then
      local why; why=$(grep -m1 -i 'error' "$dir/verify.log" || head -n 1 "$dir/verify.log")
      skip_path "$dir" "$name" "transport.protocol = \"$proto\" refused by portway-client verify: $why"
      return 0
    fi
  fi
  log "path $name: server on $ctrl, public echo $p_echo sink $p_sink source $p_source udp $p_udp"
  local sname cname; sname=$(basename "$srv_bin") cname=$(basename "$cli_bin") # process names: what /proc shows
  start "$sname" "$dir/server.log" "${env_pre[@]+"${env_pre[@]}"}" "$srv_bin" -c "$dir/frps.toml"
  local spid=$started
  for _ in $(seq 200); do listening "$ctrl" && break; alive "$spid" || break; sleep 0.05; done
  start "$cname" "$dir/client.log" "${env_pre[@]+"${env_pre[@]}"}" "$cli_bin" -c "$dir/frpc.toml"
  measure_tunnel "$dir" "$name" "$spid,$started" "$p_echo" "$p_sink" "$p_source" "$p_udp" "$ctrl" \
    "$cname" "$sname"
}

# rathole (crates.io, default transport: plain TCP, nodelay; one data connection per visitor, no mux)
run_rathole() {
  local dir=$rdir/rathole rh=$peers_dir/bin/rathole
  mkdir -p "$dir"
  [ -x "$rh" ] || { skip_path "$dir" rathole "not installed in $peers_dir/bin (cargo install rathole failed, or --no-build)"; return 0; }
  local ctrl p_echo p_sink p_source p_udp
  alloc_ports
  cat >"$dir/server.toml" <<EOF
[server]
bind_addr = "127.0.0.1:$ctrl"
default_token = "$token"

[server.services.echo]
bind_addr = "127.0.0.1:$p_echo"

[server.services.sink]
bind_addr = "127.0.0.1:$p_sink"

[server.services.source]
bind_addr = "127.0.0.1:$p_source"

[server.services.udp]
type = "udp"
bind_addr = "127.0.0.1:$p_udp"
EOF
  cat >"$dir/client.toml" <<EOF
[client]
remote_addr = "127.0.0.1:$ctrl"
default_token = "$token"

[client.services.echo]
local_addr = "127.0.0.1:$svc_echo"

[client.services.sink]
local_addr = "127.0.0.1:$svc_sink"

[client.services.source]
local_addr = "127.0.0.1:$svc_source"

[client.services.udp]
type = "udp"
local_addr = "127.0.0.1:$svc_udp"
EOF
  "$rh" --version >"$dir/version.txt" 2>&1 || true
  log "path rathole: server on $ctrl, public echo $p_echo sink $p_sink source $p_source udp $p_udp"
  start rathole "$dir/server.log" "$rh" --server "$dir/server.toml"
  local spid=$started
  for _ in $(seq 200); do listening "$ctrl" && break; alive "$spid" || break; sleep 0.05; done
  start rathole "$dir/client.log" "$rh" --client "$dir/client.toml"
  measure_tunnel "$dir" rathole "$spid,$started" "$p_echo" "$p_sink" "$p_source" "$p_udp" "$ctrl" \
    rathole
}

# bore (crates.io bore-cli): one `bore local` per forwarded port, TCP only; its control port is fixed at 7835
run_bore() {
  local dir=$rdir/bore bo=$peers_dir/bin/bore
  mkdir -p "$dir"
  [ -x "$bo" ] || { skip_path "$dir" bore "not installed in $peers_dir/bin (cargo install bore-cli failed, or --no-build)"; return 0; }
  if listening 7835; then skip_path "$dir" bore "its fixed control port 7835 is busy"; return 0; fi
  local ctrl p_echo p_sink p_source p_udp pl=() s
  alloc_ports
  "$bo" --version >"$dir/version.txt" 2>&1 || true
  log "path bore: control 7835, public echo $p_echo sink $p_sink source $p_source (no UDP)"
  start bore "$dir/server.log" "$bo" server --min-port 1024 --max-port 65535 --bind-addr 127.0.0.1 \
    --secret "$token"
  pl+=("$started")
  for _ in $(seq 200); do listening 7835 && break; alive "${pl[0]}" || break; sleep 0.05; done
  for s in "$svc_echo:$p_echo" "$svc_sink:$p_sink" "$svc_source:$p_source"; do
    start bore "$dir/client-${s#*:}.log" "$bo" local "${s%%:*}" --local-host 127.0.0.1 --to 127.0.0.1 \
      --port "${s#*:}" --secret "$token"
    pl+=("$started")
  done
  measure_tunnel "$dir" bore "$(IFS=,; echo "${pl[*]}")" "$p_echo" "$p_sink" "$p_source" - 7835 bore
}

# Secret proxies through the server (stcp for TCP, sudp for UDP) or peer to peer (xtcp, TCP only; a local STUN
# responder, scripts/bench/stun.py, and PORTWAY_XTCP_LOOPBACK_ONLY=1 keep the punch on 127.0.0.1): three processes,
# portway-server, a provider client with the proxies and a visitor client whose visitors listen on the public ports.
run_secret() { # PATH: stcp | xtcp
  local kind=$1 name=portway-$1 dir=$rdir/portway-$1
  mkdir -p "$dir"
  local ctrl p_echo p_sink p_source p_udp stun_a="" stun_b="" stun_line="" udp_port=- s common
  alloc_ports
  if [ "$kind" = xtcp ]; then
    stun_a=${ports[$next_port]} stun_b=${ports[$((next_port + 1))]}
    next_port=$((next_port + 2))
    stun_line="natHoleStunServer = \"127.0.0.1:$stun_a\""
  fi
  printf 'bindAddr = "127.0.0.1"\nbindPort = %s\nauth.token = "%s"\n' "$ctrl" "$token" >"$dir/frps.toml"
  common=$(printf 'serverAddr = "127.0.0.1"\nserverPort = %s\nauth.token = "%s"\n%s' "$ctrl" "$token" "$stun_line")
  {
    printf '%s\nuser = "provider"\n' "$common"
    for s in "echo:$svc_echo" "sink:$svc_sink" "source:$svc_source"; do
      printf '\n[[proxies]]\nname = "bench-%s"\ntype = "%s"\nsecretKey = "%s"\nallowUsers = ["visitor"]\nlocalIP = "127.0.0.1"\nlocalPort = %s\n' \
        "${s%%:*}" "$kind" "$token" "${s#*:}"
    done
    if [ "$kind" = stcp ]; then
      printf '\n[[proxies]]\nname = "bench-udp"\ntype = "sudp"\nsecretKey = "%s"\nallowUsers = ["visitor"]\nlocalIP = "127.0.0.1"\nlocalPort = %s\n' \
        "$token" "$svc_udp"
    fi
  } >"$dir/provider.toml"
  {
    printf '%s\nuser = "visitor"\n' "$common"
    for s in "echo:$p_echo" "sink:$p_sink" "source:$p_source"; do
      printf '\n[[visitors]]\nname = "v-%s"\ntype = "%s"\nserverUser = "provider"\nserverName = "bench-%s"\nsecretKey = "%s"\nbindAddr = "127.0.0.1"\nbindPort = %s\n' \
        "${s%%:*}" "$kind" "${s%%:*}" "$token" "${s#*:}"
      if [ "$kind" = xtcp ]; then printf 'keepTunnelOpen = true\n'; fi
    done
    if [ "$kind" = stcp ]; then
      udp_port=$p_udp
      printf '\n[[visitors]]\nname = "v-udp"\ntype = "sudp"\nserverUser = "provider"\nserverName = "bench-udp"\nsecretKey = "%s"\nbindAddr = "127.0.0.1"\nbindPort = %s\n' \
        "$token" "$p_udp"
    fi
  } >"$dir/visitor.toml"
  local env_pre=(env PORTWAY_XTCP_LOOPBACK_ONLY=1)
  # shellcheck disable=SC2206
  env_pre+=(${BENCH_PORTWAY_ENV:-})
  log "path $name: server on $ctrl, visitors on echo $p_echo sink $p_sink source $p_source udp $udp_port"
  if [ "$kind" = xtcp ]; then
    start stun "$dir/stun.log" python3 "$repo/scripts/bench/stun.py" "$stun_a" "$stun_b"
  fi
  start portway-server "$dir/server.log" "${env_pre[@]}" "$bindir/portway-server" -c "$dir/frps.toml"
  local spid=$started
  for _ in $(seq 200); do listening "$ctrl" && break; alive "$spid" || break; sleep 0.05; done
  start portway-client "$dir/provider.log" "${env_pre[@]}" "$bindir/portway-client" -c "$dir/provider.toml"
  local ppid=$started
  sleep 0.5 # the provider registers its proxies before the visitor asks for them
  start portway-client "$dir/visitor.log" "${env_pre[@]}" "$bindir/portway-client" -c "$dir/visitor.toml"
  [ "$kind" = xtcp ] && skip_down=true
  measure_tunnel "$dir" "$name" "$spid,$ppid,$started" "$p_echo" "$p_sink" "$p_source" "$udp_port" "$ctrl" \
    portway-client portway-server stun
  skip_down=false
}

log "load average before: $(loadavg); everything pinned to CPU $cpu of $(nproc); work dir $work"
# the time it takes, up front: per path the phases' own durations plus about 5 s of start-up and settling (bore has
# no UDP, a skipped path takes none); the bound is the sum of every phase's deadline (each phase is killed at its own)
n_paths=$(wc -w <<<"$paths")
per_path=$((4 * (tput_secs + 1) + conn_secs + 2 * udp_secs + lat_n / 20000 + 5))
per_path_max=$((lat_n / 500 + 60 + conn_secs + 30 + 90 + 2 * (udp_secs + 30) + 4 * (tput_secs + 40) + 36))
log "$rounds round(s) x $n_paths path(s) = $((rounds * n_paths)) path runs: about $((rounds * n_paths * per_path)) s" \
  "(at most $((rounds * n_paths * per_path_max)) s if every phase ran into its deadline)"
run_path() { # PATH: one path's processes, phases and stop, into $rdir
  case $1 in
    direct) run_direct ;;
    tcp|plain|plain-nosplice|plain-splice|v2|websocket|wss|quic|frp|frp-plain) run_tunnel "$1" ;;
    stcp|xtcp) run_secret "$1" ;;
    rathole) run_rathole ;;
    bore) run_bore ;;
    *) log "unknown path $1 (direct tcp plain plain-nosplice v2 websocket wss quic stcp xtcp rathole bore frp frp-plain)" ;;
  esac
}
# One round (the default): results/PATH/, as always. Several: results/round-K/PATH/, the path list alternating
# forward and backward (A B C, C B A, A B C...) so that a slow drift of the machine's load weighs on every path
# alike; each round starts its paths afresh (processes, and ports picked again: the last round's may sit in TIME_WAIT).
order=()
read -ra order <<<"$paths"
for ((round = 1; round <= rounds; round++)); do
  rdir=$work/results
  if [ "$rounds" -gt 1 ]; then
    rdir=$work/results/round-$round
    mkdir -p "$rdir"
    if [ "$round" -gt 1 ]; then
      mapfile -t ports < <("$tool" ports 64)
      [ "${#ports[@]}" -eq 64 ] || { echo "bench: could not find free ports for round $round" >&2; exit 1; }
      next_port=0
    fi
    seq_paths=("${order[@]}")
    if [ $((round % 2)) -eq 0 ]; then
      seq_paths=()
      for ((i = ${#order[@]} - 1; i >= 0; i--)); do seq_paths+=("${order[$i]}"); done
    fi
    log "round $round of $rounds: ${seq_paths[*]} (load average $(loadavg))"
    echo "\"$(loadavg)\"" >"$rdir/loadavg_start.json"
  else
    seq_paths=("${order[@]}")
  fi
  for p in "${seq_paths[@]}"; do run_path "$p"; done
done
echo "\"$(loadavg)\"" >"$work/results/loadavg_end.json"

python3 "$repo/scripts/bench/report.py" "$work/results" "$json_out"
log "JSON: $json_out; logs and configs: $work"

if $cross; then
  if [ ! -x "$ref/tunnel-bench" ]; then
    log "--cross-check: $ref/tunnel-bench not found, skipped"
  elif ! command -v iperf3 >/dev/null; then
    log "--cross-check: the reference harness needs iperf3 (apt-get install iperf3), skipped"
  else
    stop_named service
    log "--cross-check: $ref/tunnel-bench direct cmd (portway through examples/frp-like.sh, TB_PIN=$cpu/$cpu)"
    mkdir -p "$work/tunnel-bench"
    TB_PIN="$cpu/$cpu" TB_WORKDIR="$work/tunnel-bench" CMD_NAME=portway CMD_UDP=1 \
      CMD_VERSION="portway $(git -C "$repo" rev-parse --short HEAD)" \
      SERVER_CMD="exec $ref/examples/frp-like.sh server $bindir/portway-server" \
      CLIENT_CMD="exec $ref/examples/frp-like.sh client $bindir/portway-client tcp" \
      timeout -k 10 900 "$ref/tunnel-bench" $($quick && echo --quick) --json-out "$work/cross-check.json" direct cmd \
      >"$work/cross-check.out" 2>"$work/cross-check.log" || log "--cross-check: tunnel-bench exited $?"
    grep -v '^{' "$work/cross-check.out" || true
  fi
fi

# HTTP virtual hosts (nginx + wrk; scripts/bench-http.sh, its own table with met / NOT MET per target)
if ${http:-true}; then
  $quick && export BENCH_HTTP_SECS=${BENCH_HTTP_SECS:-3} BENCH_HTTP_BIG_MIB=${BENCH_HTTP_BIG_MIB:-64}
  BENCH_CPU=$cpu bash "$repo/scripts/bench-http.sh" --no-build || log "HTTP phase failed (exit $?); skip it with --no-http"
fi
