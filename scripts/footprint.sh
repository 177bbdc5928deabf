#!/usr/bin/env bash
# The desktop app's footprint under Xvfb: PSS (from /proc/PID/smaps_rollup) of the app and its WebKit child
# processes with the window open and after closing it to the tray, the time from launch to a rendered window, and
# the time to reopen the window from a second launch (as the tray's "Open Portway" does). One profile, connected
# by token auth to a portway-server on 127.0.0.1. Benchmark figures, not a test: it prints a table, asserts nothing.
#
#   bash scripts/footprint.sh            # builds what it needs (debug) unless PORTWAY_BIN / SERVER_BIN are given
#   PORTWAY_BIN=target/release/portway SERVER_BIN=target/release/portway-server bash scripts/footprint.sh
#
# Needs: xvfb dbus-x11 gnome-keyring libsecret-tools x11-utils xdotool imagemagick python3 (scripts/apt-packages.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${PORTWAY_BIN:-}" ] || [ -z "${SERVER_BIN:-}" ]; then
  [ -f ui/dist/index.html ] || (cd ui && npm ci --no-audit --no-fund && npm run build)
  cargo build --bin portway >&2 && cargo build -p portway-server --bin portway-server >&2
fi
PORTWAY_BIN=$(realpath "${PORTWAY_BIN:-$TARGET/debug/portway}")
SERVER_BIN=$(realpath "${SERVER_BIN:-$TARGET/debug/portway-server}")
ROUNDS=${ROUNDS:-3}

if [ -z "${FOOTPRINT_INNER:-}" ]; then
  export FOOTPRINT_INNER=1 PORTWAY_BIN SERVER_BIN ROUNDS
  exec dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" bash "$0" "$@"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo -n footprint | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 || true
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
REMOTE=$(free_port)
TOKEN=footprint-$RANDOM$RANDOM
printf 'bindAddr = "127.0.0.1"\nbindPort = %s\nauth.token = "%s"\n' "$PORT" "$TOKEN" >"$WORK/frps.toml"
"$SERVER_BIN" -c "$WORK/frps.toml" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
# The token goes into the keychain the way the app stores it (keyring's attributes), never into a file.
printf '%s' "$TOKEN" | secret-tool store --label="portway footprint" \
  service portway username profile:default target default application rust-keyring

export PORTWAY_CONFIG_DIR=$WORK/config
mkdir -p "$PORTWAY_CONFIG_DIR"
profile() { # $1: startMinimized
  cat >"$PORTWAY_CONFIG_DIR/profile.json" <<EOF
{"server":{"addr":"127.0.0.1","port":$PORT,"protocol":"tcp","tls":true},
 "auth":{"method":"token","tokenEndpointUrl":"","clientId":"","audience":"","scope":""},
 "proxies":[{"name":"ssh","type":"tcp","localIp":"127.0.0.1","localPort":22,"remotePort":$REMOTE,"enabled":true}],
 "options":{"connectOnLaunch":true,"startMinimized":$1,"launchAtLogin":false}}
EOF
}

# PSS in KiB of a process and all its descendants, the same split (app / WebKit web / WebKit network / other),
# and how many WebKit processes there are.
pss_tree() {
  python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
kids = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except OSError:
            pass
def pss(p):
    try:
        with open(f"/proc/{p}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0
def name(p):
    try:
        with open(f"/proc/{p}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"
parts = {"app": 0, "web": 0, "network": 0, "other": 0}
webkit = 0
todo = [root]
while todo:
    p = todo.pop()
    todo += kids.get(p, [])
    n = name(p)
    # comm is cut at 15 characters: WebKitWebProces, WebKitNetworkPr.
    key = "app" if p == root else "web" if n.startswith("WebKitWeb") else "network" if n.startswith("WebKitNetwork") else "other"
    parts[key] += pss(p)
    webkit += key in ("web", "network")
print(sum(parts.values()), parts["app"], parts["web"], parts["network"], parts["other"], webkit)
PY
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
now_ms() { date +%s%3N; }
window_id() { { xdotool search --onlyvisible --name '^Portway$' 2>/dev/null || true; } | head -1; }
# Rendered: the window is mapped and its picture is no longer one flat colour.
wait_rendered() {
  local deadline=$(($(now_ms) + 30000)) id
  while [ "$(now_ms)" -lt "$deadline" ]; do
    id=$(window_id)
    if [ -n "$id" ]; then
      local sd
      sd=$(import -silent -window "$id" -colorspace gray -format '%[fx:standard_deviation]' info: 2>/dev/null || echo 0)
      if awk -v s="$sd" 'BEGIN { exit !(s > 0.02) }'; then return 0; fi
    fi
    sleep 0.05
  done
  echo "no rendered window within 30 s" >&2
  return 1
}
wait_connected() {
  local deadline=$(($(now_ms) + 30000))
  until (exec 3<>"/dev/tcp/127.0.0.1/$REMOTE") 2>/dev/null; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "the profile did not connect within 30 s" >&2; return 1; }
    sleep 0.2
  done
}
# Sends WM_DELETE_WINDOW, as a window manager's close button does (there is no window manager under Xvfb).
close_window() {
  python3 - "$1" <<'PY'
import ctypes, sys
x = ctypes.cdll.LoadLibrary("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]
class Event(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]
d = x.XOpenDisplay(None)
ev = Event()
ev.xclient.type = 33  # ClientMessage
ev.xclient.window = int(sys.argv[1])
ev.xclient.message_type = x.XInternAtom(d, b"WM_PROTOCOLS", 0)
ev.xclient.format = 32
ev.xclient.data[0] = x.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
x.XSendEvent(d, int(sys.argv[1]), 0, 0, ctypes.byref(ev))
x.XFlush(d)
PY
}
webkit_children() { pss_tree "$1" | awk '{ print $6 }'; }

printf '%-6s %10s %14s %12s %12s %14s %12s %12s\n' round launch_ms open_pss_MiB app web network tray_pss_MiB reopen_ms
for round in $(seq 1 "$ROUNDS"); do
  profile false
  t0=$(now_ms)
  "$PORTWAY_BIN" >"$WORK/app.log" 2>&1 &
  APP=$!
  PIDS+=("$APP")
  wait_rendered
  launch=$(($(now_ms) - t0))
  wait_connected
  sleep 3 # let start-up settle before measuring
  read -r open_total open_app open_web open_net _ < <(pss_tree "$APP")
  close_window "$(window_id)"
  deadline=$(($(now_ms) + 15000))
  while [ "$(webkit_children "$APP")" -gt 0 ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.1; done
  sleep 3
  kill -0 "$APP" # still running in the tray
  wait_connected
  read -r tray_total _ < <(pss_tree "$APP")
  left=$(webkit_children "$APP")
  t1=$(now_ms)
  "$PORTWAY_BIN" >/dev/null 2>&1 || true # second instance: hands over to the running one, which reopens the window
  wait_rendered
  reopen=$(($(now_ms) - t1))
  printf '%-6s %10s %14s %12s %12s %14s %12s %12s\n' "$round" "$launch" "$(mib "$open_total")" "$(mib "$open_app")" \
    "$(mib "$open_web")" "$(mib "$open_net")" "$(mib "$tray_total")" "$reopen"
  [ "$left" -eq 0 ] || echo "  note: $left WebKit process(es) still running in the tray" >&2
  kill "$APP"
  wait "$APP" 2>/dev/null || true
done
echo "one profile (the app has one profile per window today); binary: $PORTWAY_BIN"
