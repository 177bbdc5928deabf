#!/usr/bin/env bash
# Runs inside `dbus-run-session -- xvfb-run ...` (tests/packaging/run.sh): unlocks a throwaway gnome-keyring,
# launches the installed desktop app with its menu entry's Exec command, waits for its window and for the page to
# render, saves screenshots, stops the app. Exit 0 only when the window exists and the screenshot is not blank.
#   desktop-window.sh EXEC_COMMAND ARTIFACT_DIR
set -uo pipefail
say() { echo "desktop-window: $*"; }
exec_cmd=$1
art=$2
title=Portway
min_colours=${PORTWAY_MIN_COLOURS:-200}

home=$(mktemp -d)
export HOME=$home XDG_CONFIG_HOME=$home/.config XDG_DATA_HOME=$home/.local/share XDG_CACHE_HOME=$home/.cache
mkdir -p "$XDG_DATA_HOME"
echo -n portway-packaging | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1

# The menu's command line, as a launcher runs it (field codes like %U were stripped by the caller).
# shellcheck disable=SC2086
setsid $exec_cmd >"$art/desktop-app.log" 2>&1 &
app=$!
stop_app() {
  kill -TERM -- "-$app" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$app" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$app" 2>/dev/null
  rm -rf "$home"
}
trap stop_app EXIT

find_window() {
  if command -v xdotool >/dev/null; then
    xdotool search --onlyvisible --name "^$title\$" 2>/dev/null | head -1
  else
    xwininfo -root -tree | awk -v t="\"$title\":" '$2 == t {print $1; exit}'
  fi
}

wid=
for _ in $(seq 120); do # up to 60 s
  kill -0 "$app" 2>/dev/null || { say "the app exited early (log: $art/desktop-app.log)"; exit 1; }
  wid=$(find_window)
  [ -n "$wid" ] && break
  sleep 0.5
done
[ -n "$wid" ] || { say "no window titled $title within 60 s; windows:"; xwininfo -root -tree | grep -F '"' | sed 's/^/desktop-window:   /' | head -20; exit 1; }
say "window $wid: $(xwininfo -id "$wid" | awk '/Width:|Height:/ {printf "%s%s ", $1, $2}')"

# The webview paints after the window maps: wait until the window's image has the colours of rendered text.
colours=0
for _ in $(seq 60); do # up to 30 s
  import -window "$wid" "$art/desktop-window.png" 2>/dev/null &&
    colours=$(convert "$art/desktop-window.png" -format '%k' info: 2>/dev/null || echo 0)
  [ "$colours" -ge "$min_colours" ] && break
  sleep 0.5
done
import -window root "$art/desktop-installed.png"
say "window screenshot: $colours colours (at least $min_colours expected); screen: $art/desktop-installed.png"
[ "$colours" -ge "$min_colours" ] || { say "the window stayed blank"; exit 1; }
exit 0
