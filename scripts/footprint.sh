#!/usr/bin/env bash
# The desktop app's footprint under Xvfb, with one and with five profiles connected (token auth to a
# portway-server on 127.0.0.1): the time from launch to a rendered window, PSS (from /proc/PID/smaps_rollup) of the
# app and its WebKit child processes with the window open and after closing it to the tray (the app's own PSS
# split by mapping), and the time to reopen the window through the running app's D-Bus "open" call (the callback
# the tray's "Open Portway" and a second launch run). Benchmark figures, not a test: it prints tables, asserts
# nothing.
#
#   bash scripts/footprint.sh      # builds what it needs (release, as the bundle) unless PORTWAY_BIN / SERVER_BIN are given
#   PORTWAY_BIN=target/debug/portway SERVER_BIN=target/debug/portway-server bash scripts/footprint.sh
#   ROUNDS=5 COUNTS="1 5" bash scripts/footprint.sh
#   PORTWAY_TRAY_KEEP=network,pages,compositing bash scripts/footprint.sh   # without the app's tray releases
#   WEBKIT_DISABLE_DMABUF_RENDERER=1 bash scripts/footprint.sh   # WebKit/JavaScriptCore/Mesa settings: passed on, printed
#   REOPEN_HOOK='perf record -g -t $APP -o /tmp/reopen.data' bash scripts/footprint.sh  # runs during each reopen
#
# "rendered": the window is mapped and its picture is no longer one flat colour; "settled": two pictures 150 ms
# apart are the same (the page has read the profiles, states and logs and drawn them). The settled pictures of the
# launch and of the reopened window go to target/artifacts/footprint-*.png: the state shown must be the same.
# Needs: xvfb dbus-x11 gnome-keyring libsecret-tools x11-utils xdotool imagemagick libglib2.0-bin python3
# (scripts/apt-packages.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${PORTWAY_BIN:-}" ] || [ -z "${SERVER_BIN:-}" ]; then
  [ -f ui/dist/index.html ] || (cd ui && npm ci --no-audit --no-fund && npm run build)
  cargo build --release -p portway --bin portway -p portway-server --bin portway-server >&2
fi
PORTWAY_BIN=$(realpath "${PORTWAY_BIN:-$TARGET/release/portway}")
SERVER_BIN=$(realpath "${SERVER_BIN:-$TARGET/release/portway-server}")
ROUNDS=${ROUNDS:-3}
COUNTS=${COUNTS:-1 5}
ARTIFACTS=${ARTIFACTS:-$TARGET/artifacts}
# Seconds in the tray between the first PSS reading and the second ("tray later"): what the tray runs meanwhile
# (status, the engines' heartbeats) maps back the library pages it needs.
LATER=${LATER:-15}

if [ -z "${FOOTPRINT_INNER:-}" ]; then
  export FOOTPRINT_INNER=1 PORTWAY_BIN SERVER_BIN ROUNDS COUNTS ARTIFACTS LATER
  # -noreset: an X server resets when its last client disconnects and drops a client that connects meanwhile.
  # Without it, when the last client (a round's killed app, or this script's xdotool / import between two polls)
  # had just left as an app started, its GTK could not open the display (the connection closed before its first
  # write, EPIPE) and it ended with a panic, in about 1 of 50 launches ("no rendered window within 30 s"). A
  # desktop session always has other X clients.
  exec dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24 -noreset" bash "$0" "$@"
fi

# ImageMagick's pictures (every 50 ms while waiting for a rendered window) on one thread: with OpenMP they took
# both cores of a 2-core machine from the app being measured.
export MAGICK_THREAD_LIMIT=${MAGICK_THREAD_LIMIT:-1}
WORK=$(mktemp -d)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
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
TOKEN=footprint-$RANDOM$RANDOM
printf 'bindAddr = "127.0.0.1"\nbindPort = %s\nauth.token = "%s"\n' "$PORT" "$TOKEN" >"$WORK/frps.toml"
"$SERVER_BIN" -c "$WORK/frps.toml" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
MAX=0
for n in $COUNTS; do [ "$n" -gt "$MAX" ] && MAX=$n; done
REMOTES=()
for i in $(seq 1 "$MAX"); do
  REMOTES+=("$(free_port)")
  # Each profile's token in its own keychain entry, the way the app stores it (keyring's attributes), never in a file.
  printf '%s' "$TOKEN" | secret-tool store --label="portway footprint $i" \
    service portway username "profile:p$i" target default application rust-keyring
done

export PORTWAY_CONFIG_DIR=$WORK/config
mkdir -p "$PORTWAY_CONFIG_DIR" "$ARTIFACTS"
# profiles.json with $1 profiles, each with one tcp proxy, all connected on launch.
profiles() {
  python3 - "$1" "$PORT" "${REMOTES[@]}" >"$PORTWAY_CONFIG_DIR/profiles.json" <<'PY'
import json, sys
n, port, remotes = int(sys.argv[1]), int(sys.argv[2]), [int(r) for r in sys.argv[3:]]
profiles = [{
    "id": f"p{i}", "name": f"Server {i}",
    "profile": {
        "server": {"addr": "127.0.0.1", "port": port, "protocol": "tcp", "tls": True},
        "auth": {"method": "token", "tokenEndpointUrl": "", "clientId": "", "audience": "", "scope": ""},
        "proxies": [{"name": f"ssh{i}", "type": "tcp", "localIp": "127.0.0.1", "localPort": 22,
                     "remotePort": remotes[i - 1], "enabled": True}],
        "options": {"connectOnLaunch": True, "startMinimized": False, "launchAtLogin": False},
    },
} for i in range(1, n + 1)]
print(json.dumps({"options": {"startMinimized": False, "launchAtLogin": False}, "profiles": profiles}))
PY
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
# The app process's own PSS in KiB by mapping (/proc/PID/smaps): the malloc heap, other anonymous memory (thread
# arenas, stacks, GTK/GLib's pools), WebKit's libraries (webkit2gtk + javascriptcoregtk), the other shared
# libraries, the binary itself, the rest.
pss_split() {
  python3 - "$1" <<'PY'
import os, re, sys
pid = sys.argv[1]
exe = os.path.realpath(f"/proc/{pid}/exe")
parts = {"heap": 0, "anon": 0, "webkit": 0, "libs": 0, "binary": 0, "rest": 0}
name = ""
header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
with open(f"/proc/{pid}/smaps") as f:
    for line in f:
        if header.match(line):
            fields = line.split(None, 5)
            name = fields[5].strip() if len(fields) > 5 else ""
        elif line.startswith("Pss:"):
            kib = int(line.split()[1])
            if name == "[heap]":
                key = "heap"
            elif name == "" or name.startswith("[anon"):
                key = "anon"
            elif "webkit2gtk" in name or "javascriptcoregtk" in name:
                key = "webkit"
            elif name == exe:
                key = "binary"
            elif ".so" in name:
                key = "libs"
            else:
                key = "rest"
            parts[key] += kib
print(*parts.values())
PY
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
now_ms() { date +%s%3N; }
window_id() { { xdotool search --onlyvisible --name '^Portway$' 2>/dev/null || true; } | head -1; }
# When a wait gives up: the app's log, the window tree, every "Portway" window's state, the screen and the app's
# processes go to $ARTIFACTS/footprint-failed-TIME/ (named on stderr).
keep_evidence() {
  local dir
  dir=$ARTIFACTS/footprint-failed-$(date -u +%H%M%S)-$PHASE
  mkdir -p "$dir"
  cp "$WORK/app.log" "$dir/app.log" 2>/dev/null || true
  xwininfo -root -tree >"$dir/windows.txt" 2>&1 || true
  for w in $(xdotool search --name 'Portway' 2>/dev/null || true); do
    echo "== $w name=$(xdotool getwindowname "$w" 2>/dev/null)"
    xwininfo -id "$w" -stats 2>&1 | grep -E 'Map State|geometry|Width|Height|Absolute'
  done >"$dir/portway-windows.txt" 2>&1
  import -silent -window root "$dir/screen.png" 2>/dev/null || true
  ps -e -o pid,ppid,stat,etimes,time,rss,comm --forest >"$dir/processes.txt" 2>&1 || true
  echo "evidence kept in $dir" >&2
}
# Rendered: the window is mapped and its picture is no longer one flat colour.
wait_rendered() {
  local deadline=$(($(now_ms) + 30000)) id
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if ! kill -0 "$APP" 2>/dev/null; then
      echo "the app exited before its window rendered ($PHASE)" >&2
      keep_evidence
      return 1
    fi
    id=$(window_id)
    if [ -n "$id" ]; then
      local sd
      sd=$(import -silent -window "$id" -colorspace gray -format '%[fx:standard_deviation]' info: 2>/dev/null || echo 0)
      if awk -v s="$sd" 'BEGIN { exit !(s > 0.02) }'; then return 0; fi
    fi
    sleep 0.05
  done
  echo "no rendered window within 30 s ($PHASE)" >&2
  keep_evidence
  return 1
}
# Settled: two pictures of the window 150 ms apart are the same; the last one is kept in $1.
wait_settled() {
  local deadline=$(($(now_ms) + 30000)) id prev="" sum
  while [ "$(now_ms)" -lt "$deadline" ]; do
    id=$(window_id)
    if [ -n "$id" ] && import -silent -window "$id" "$WORK/shot.png" 2>/dev/null; then
      sum=$(identify -format '%#' "$WORK/shot.png") # of the pixels (the file has a creation date)
      if [ "$sum" = "$prev" ]; then
        cp "$WORK/shot.png" "$1"
        return 0
      fi
      prev=$sum
    fi
    sleep 0.15
  done
  echo "the window did not settle within 30 s ($PHASE)" >&2
  keep_evidence
  return 1
}
wait_connected() { # $1: how many profiles
  local deadline=$(($(now_ms) + 30000)) i
  for i in $(seq 0 $(($1 - 1))); do
    until (exec 3<>"/dev/tcp/127.0.0.1/${REMOTES[$i]}") 2>/dev/null; do
      [ "$(now_ms)" -lt "$deadline" ] || { echo "profile $((i + 1)) did not connect within 30 s" >&2; return 1; }
      sleep 0.2
    done
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
# The running app's single-instance D-Bus call (tauri-plugin-single-instance, named after tauri.conf.json's
# identifier): the app runs the same "show the window" callback as the tray's "Open Portway".
open_window() {
  gdbus call --session --dest dev.portway.desktop.SingleInstance --object-path /dev/portway/desktop/SingleInstance \
    --method org.SingleInstance.DBus.ExecuteCallback "['portway']" "'/'" >/dev/null
}
webkit_children() { pss_tree "$1" | awk '{ print $6 }'; }
# CPU time in ms: of the app's main thread (the GTK thread that builds the window and answers the page's calls on
# it; /proc/PID/task/PID/schedstat, ns), of the whole app process, and of its WebKit children (utime + stime).
main_thread_ms() { awk '{ printf "%.0f", $1 / 1e6 }' "/proc/$1/task/$1/schedstat"; }
process_ms() { # $1: pid; $2: "self" or "webkit" (its WebKit descendants)
  python3 - "$1" "$2" <<'PY'
import os, sys
root, which = int(sys.argv[1]), sys.argv[2]
hz = os.sysconf("SC_CLK_TCK")
kids = {}
stats = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            with open(f"/proc/{d}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            stats[int(d)] = (head.split("(", 1)[1], int(fields[11]) + int(fields[12]))
            kids.setdefault(int(fields[1]), []).append(int(d))
        except (OSError, IndexError, ValueError):
            pass
if which == "self":
    total = stats.get(root, ("", 0))[1]
else:
    total, todo = 0, list(kids.get(root, []))
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        if stats.get(p, ("", 0))[0].startswith("WebKit"):
            total += stats[p][1]
print(round(total * 1000 / hz))
PY
}

ROWS=()
SPLITS=()
CPUS=()
for count in $COUNTS; do
  for round in $(seq 1 "$ROUNDS"); do
    profiles "$count"
    PHASE=launch-$count-$round
    t0=$(now_ms)
    "$PORTWAY_BIN" >"$WORK/app.log" 2>&1 &
    APP=$!
    PIDS+=("$APP")
    wait_rendered
    launch=$(($(now_ms) - t0))
    wait_settled "$ARTIFACTS/footprint-$count-launch.png"
    launch_settled=$(($(now_ms) - t0))
    wait_connected "$count"
    sleep 3 # let start-up settle before measuring
    wait_settled "$ARTIFACTS/footprint-$count-open.png"
    read -r open_total open_app open_web open_net _ < <(pss_tree "$APP")
    close_window "$(window_id)"
    deadline=$(($(now_ms) + 15000))
    while [ "$(webkit_children "$APP")" -gt 0 ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.1; done
    sleep 5 # the app returns freed memory 2 s after the window is gone
    kill -0 "$APP" # still running in the tray
    wait_connected "$count"
    read -r tray_total _ < <(pss_tree "$APP")
    read -r heap anon webkit libs binary rest < <(pss_split "$APP")
    left=$(webkit_children "$APP")
    # The app's log line about the release (colours stripped): its resident size before and after.
    trim=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/app.log" | grep -o 'rss_before_kib=Some([0-9]*) rss_after_kib=Some([0-9]*)' |
      tail -1 | tr -dc '0-9 ' || true)
    sleep "$LATER"
    read -r tray_later _ < <(pss_tree "$APP")
    main0=$(main_thread_ms "$APP")
    app0=$(process_ms "$APP" self)
    hook=""
    if [ -n "${REOPEN_HOOK:-}" ]; then # e.g. 'perf record -g -t $APP -o /tmp/reopen.data' (only the reopen)
      APP=$APP bash -c "$REOPEN_HOOK" >"$WORK/hook.log" 2>&1 &
      hook=$!
      sleep 0.5
    fi
    PHASE=reopen-$count-$round
    t1=$(now_ms)
    open_window
    built=$(($(now_ms) - t1)) # the window and its web view exist (the call returns after the callback)
    wait_rendered
    reopen=$(($(now_ms) - t1))
    wait_settled "$ARTIFACTS/footprint-$count-reopen.png"
    reopen_settled=$(($(now_ms) - t1))
    if [ -n "$hook" ]; then kill -INT "$hook" 2>/dev/null || true; wait "$hook" 2>/dev/null || true; fi
    CPUS+=("$(printf '%-8s %-5s %12s %11s %13s' "$count" "$round" "$(($(main_thread_ms "$APP") - main0))" \
      "$(($(process_ms "$APP" self) - app0))" "$(process_ms "$APP" webkit)")")
    differ=$(compare -metric AE "$ARTIFACTS/footprint-$count-open.png" "$ARTIFACTS/footprint-$count-reopen.png" null: 2>&1 || true)
    same=$([ "$differ" = 0 ] && echo same || echo "$differ pixels differ")
    ROWS+=("$(printf '%-8s %-5s %9s %9s %10s %6s %6s %8s %9s %6s %9s %9s  %s' "$count" "$round" "$launch" \
      "$launch_settled" "$(mib "$open_total")" "$(mib "$open_app")" "$(mib "$open_web")" "$(mib "$open_net")" \
      "$(mib "$tray_total")" "$(mib "$tray_later")" "$built/$reopen" "$reopen_settled" "$same")")
    read -r trim_before trim_after <<<"${trim:-0 0}"
    SPLITS+=("$(printf '%-8s %-5s %6s %6s %7s %6s %7s %6s   %s -> %s' "$count" "$round" "$(mib "$heap")" "$(mib "$anon")" \
      "$(mib "$webkit")" "$(mib "$libs")" "$(mib "$binary")" "$(mib "$rest")" "$(mib "${trim_before:-0}")" \
      "$(mib "${trim_after:-0}")")")
    [ "$left" -eq 0 ] || echo "  note: $left WebKit process(es) still running in the tray" >&2
    kill "$APP"
    wait "$APP" 2>/dev/null || true
  done
done
echo "load average: $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; PORTWAY_TRAY_KEEP=${PORTWAY_TRAY_KEEP:-} WEBKIT_DISABLE_COMPOSITING_MODE=${WEBKIT_DISABLE_COMPOSITING_MODE:-} MAGICK_THREAD_LIMIT=$MAGICK_THREAD_LIMIT"
# Any other setting of WebKit, JavaScriptCore or Mesa given to the run (e.g. WEBKIT_DISABLE_DMABUF_RENDERER=1).
extra=$(env | grep -E '^(WEBKIT_|JSC_|GALLIUM_|LP_|LIBGL_|MESA_)' | grep -v '^WEBKIT_DISABLE_COMPOSITING_MODE=' | sort | tr '\n' ' ' || true)
[ -z "$extra" ] || echo "other settings: $extra"
echo "times in ms (reopen: window built / rendered), PSS in MiB (tray: 5 s after closing, later: ${LATER} s after that);"
echo "picture: the reopened window's settled picture against the open one's"
printf '%-8s %-5s %9s %9s %10s %6s %6s %8s %9s %6s %9s %9s  %s\n' profiles round rendered settled open_pss app web network \
  tray_pss later reopen settled picture
printf '%s\n' "${ROWS[@]}"
echo
echo "the app's own PSS in the tray by mapping (MiB)"
printf '%-8s %-5s %6s %6s %7s %6s %7s %6s   %s\n' profiles round heap anon webkit libs binary rest "RSS before -> after the release"
printf '%s\n' "${SPLITS[@]}"
echo
echo "CPU time of the reopen, from the D-Bus call to the settled picture (ms; the web and network processes are new)"
printf '%-8s %-5s %12s %11s %13s\n' profiles round "main thread" "app (all)" "WebKit procs"
printf '%s\n' "${CPUS[@]}"
echo "binary: $PORTWAY_BIN"
