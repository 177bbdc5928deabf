#!/usr/bin/env bash
# HTTP phase of the benchmark: small GETs (keep-alive, 64 connections, wrk) and one large download (curl) served by
# a real nginx, once directly and once through Portway's HTTP virtual host (portway-server + portway-client, frp's
# default transport: TLS + tcpMux), everything pinned to one core.
#
#   bash scripts/bench-http.sh [--no-build]
#
# Knobs (env): BENCH_CPU (0), BENCH_HTTP_SECS (10), BENCH_HTTP_CONNS (64), BENCH_HTTP_BIG_MIB (256),
# CARGO_TARGET_DIR (target). The last line gives the CPU time per request (server, client, nginx; from
# /proc/PID/stat over the 64-connection run) and the load average. Needs nginx, wrk, curl, taskset, python3. Every process started here is stopped by PID
# on exit; every wait is bounded.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=true
[ "${1:-}" = --no-build ] && build=false
cpu=${BENCH_CPU:-0}
secs=${BENCH_HTTP_SECS:-10}
conns=${BENCH_HTTP_CONNS:-64}
big_mib=${BENCH_HTTP_BIG_MIB:-256}
bin=${CARGO_TARGET_DIR:-$repo/target}/release
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
for tool in wrk curl taskset python3 "$nginx_bin"; do
  command -v "$tool" >/dev/null || { echo "bench-http: $tool not found (apt-get install wrk nginx-light curl)" >&2; exit 1; }
done
if $build; then (cd "$repo" && cargo build --release -q -p portway-server -p portway-client); fi

work=$(mktemp -d /tmp/portway-bench-http.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Background processes are started with taskset directly (it execs them), so $! is the process to stop.
pin() { taskset -c "$cpu" "$@"; }

mkdir -p "$work/www" "$work/nginx/tmp"
python3 -c 'import sys; sys.stdout.write("x" * 600 + "\n")' > "$work/www/small.txt"
head -c "$((big_mib * 1024 * 1024))" /dev/urandom > "$work/www/big.bin"
nginx_port=$(free_port) bind_port=$(free_port) vhost_port=$(free_port)
cat > "$work/nginx/nginx.conf" <<EOF
daemon off; master_process off; pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  server { listen 127.0.0.1:$nginx_port; root $work/www; keepalive_requests 1000000; } }
EOF
taskset -c "$cpu" "$nginx_bin" -c "$work/nginx/nginx.conf" -p "$work/nginx" > "$work/nginx.out" 2>&1 & pids+=($!)
token="bench-$RANDOM$RANDOM"
cat > "$work/frps.toml" <<EOF
bindAddr = "127.0.0.1"
bindPort = $bind_port
vhostHTTPPort = $vhost_port
auth.token = "$token"
log.level = "warn"
EOF
cat > "$work/frpc.toml" <<EOF
serverAddr = "127.0.0.1"
serverPort = $bind_port
auth.token = "$token"
loginFailExit = false
log.level = "warn"
[[proxies]]
name = "bench"
type = "http"
localPort = $nginx_port
customDomains = ["bench.test"]
EOF
taskset -c "$cpu" "$bin/portway-server" -c "$work/frps.toml" > "$work/server.log" 2>&1 & pids+=($!)
server_pid=$!
taskset -c "$cpu" "$bin/portway-client" -c "$work/frpc.toml" > "$work/client.log" 2>&1 & pids+=($!)
client_pid=$!
nginx_pid=${pids[0]}
ready=false
for _ in $(seq 1 200); do
  if [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' -H 'Host: bench.test' "http://127.0.0.1:$vhost_port/small.txt")" = 200 ]; then
    ready=true; break
  fi
  sleep 0.1
done
$ready || { echo "bench-http: the vhost did not serve within 20 s" >&2; cat "$work"/*.log >&2; exit 1; }

# wrk prints "Requests/sec: N" and, with --latency, "50% X" / "99% Y" (units us/ms/s).
run_wrk() { # url c -> "rps p50_ms p99_ms"
  pin wrk -t1 -c"$2" -d"${secs}s" --latency -H 'Host: bench.test' "$1" | python3 -c '
import re, sys
t = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if errs: sys.exit("non-2xx responses: " + errs.group(1))
print(f"{rps:.0f} {p50:.3f} {p99:.3f}")'
}
# CPU time (utime + stime, clock ticks) of each PID given, space-separated.
cpu_ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd' '; }
# run_wrk plus the CPU time each PID spent during the run, in microseconds per request (the steadier figure on a
# shared machine): "rps p50_ms p99_ms us_per_req...".
run_wrk_cpu() { # url c pid...
  local url=$1 c=$2; shift 2
  local before after out
  before=$(cpu_ticks "$@")
  out=$(run_wrk "$url" "$c")
  after=$(cpu_ticks "$@")
  python3 -c '
import sys
out, before, after, secs, hz = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), float(sys.argv[4]), float(sys.argv[5])
rps = float(out.split()[0])
per = [(float(a) - float(b)) / hz / (rps * secs) * 1e6 for a, b in zip(after, before)]
print(out, " ".join(f"{u:.1f}" for u in per))' "$out" "$before" "$after" "$secs" "$(getconf CLK_TCK)"
}
download() { # url -> MiB/s
  pin curl -s --max-time 120 -o /dev/null -H 'Host: bench.test' -w '%{speed_download}' "$1" | python3 -c 'import sys; print(f"{float(sys.stdin.read()) / 1048576:.0f}")'
}
read -r d_rps d_p50 d_p99 d_cpu_nginx <<<"$(run_wrk_cpu "http://127.0.0.1:$nginx_port/small.txt" "$conns" "$nginx_pid")"
read -r v_rps v_p50 v_p99 v_cpu_server v_cpu_client v_cpu_nginx \
  <<<"$(run_wrk_cpu "http://127.0.0.1:$vhost_port/small.txt" "$conns" "$server_pid" "$client_pid" "$nginx_pid")"
read -r d1_rps _ _ <<<"$(run_wrk "http://127.0.0.1:$nginx_port/small.txt" 1)"
read -r v1_rps _ _ <<<"$(run_wrk "http://127.0.0.1:$vhost_port/small.txt" 1)"
d_big=$(download "http://127.0.0.1:$nginx_port/big.bin")
v_big=$(download "http://127.0.0.1:$vhost_port/big.bin")
python3 - "$d_rps" "$v_rps" "$d_p50" "$v_p50" "$d_p99" "$v_p99" "$d1_rps" "$v1_rps" "$d_big" "$v_big" "$conns" "$cpu" \
  "$d_cpu_nginx" "$v_cpu_server" "$v_cpu_client" "$v_cpu_nginx" <<'EOF'
import os
import sys
d_rps, v_rps, d_p50, v_p50, d_p99, v_p99, d1, v1, d_big, v_big = map(float, sys.argv[1:11])
conns, cpu = sys.argv[11], sys.argv[12]
d_nginx, v_server, v_client, v_nginx = map(float, sys.argv[13:17])
def verdict(ok):
    return "met" if ok else "NOT MET"
print(f"HTTP phase (nginx, one core: CPU {cpu})   direct      vhost      vhost/direct  target (issue 12)")
print(f"small GET, {conns} conns, req/s       {d_rps:10.0f} {v_rps:10.0f}      {v_rps / d_rps:.2f}x         >= 0.35x: {verdict(v_rps / d_rps >= 0.35)}")
print(f"  p50 latency, ms                {d_p50:10.3f} {v_p50:10.3f}      {v_p50 / d_p50:.1f}x          <= 4x: {verdict(v_p50 / d_p50 <= 4)}")
print(f"  p99 latency, ms                {d_p99:10.3f} {v_p99:10.3f}      {v_p99 / d_p99:.1f}x          -")
print(f"small GET, 1 conn, req/s         {d1:10.0f} {v1:10.0f}      {v1 / d1:.2f}x         -")
print(f"large download, MiB/s            {d_big:10.0f} {v_big:10.0f}      {v_big / d_big:.2f}x         -")
print(f"CPU us per request, {conns} conns: server {v_server:.1f}, client {v_client:.1f}, nginx {v_nginx:.1f} "
      f"(direct: nginx {d_nginx:.1f}); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
EOF
