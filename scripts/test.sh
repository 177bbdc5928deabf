#!/usr/bin/env bash
# Sets up and runs every test. Idempotent; installs what it needs (apt and npm packages) on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Marks every process the tests start (checked at the end: none may be left running).
export PORTWAY_TEST_RUN="$$-$(date +%s%N)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need_apt=()
for pkg in $(cat scripts/apt-packages.txt | sed 's/#.*//'); do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing apt packages: ${need_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ -f tests/oidc/package.json ]; then
  echo "== npm packages for the test OIDC provider"
  (cd tests/oidc && npm ci --no-audit --no-fund --silent)
fi
echo "== ui: typecheck, unit and browser tests"; (cd ui && npm ci --no-audit --no-fund --silent && npm run check && npm test)
# Before cargo: the server embeds dashboard/dist at build time, and its page test drives it in Chromium.
echo "== dashboard: typecheck, unit tests, build"
(cd dashboard && npm ci --no-audit --no-fund --silent && npm run check && npm test && npm run build -- --logLevel warn)
export PORTWAY_REQUIRE_DASHBOARD=1

echo "== rustfmt and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== tauri-driver for the desktop WebDriver test"
command -v tauri-driver >/dev/null || cargo install tauri-driver --locked

echo "== cargo tests"
# Under a private D-Bus session with an unlocked gnome-keyring: the desktop tests use the real Secret Service.
# A fresh keyring directory each run, so an existing login keyring with another password cannot stay locked.
keyring_home=$(mktemp -d)
dbus-run-session -- env XDG_DATA_HOME="$keyring_home" sh -c 'echo -n portway-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec cargo test --workspace --quiet --no-fail-fast' 2>&1 \
  | grep -Ev '^\s*$|^running [0-9]+ tests?$|Failed to set fd limit' || { echo "cargo tests failed" >&2; exit 1; }

echo "== demo"
bash scripts/demo.sh --once

echo "== packaging: build every artifact (scripts/package.sh), install the .debs, check, purge"
bash tests/packaging/run.sh
echo "== no process the tests started is left"
# Every process started below this script inherits PORTWAY_TEST_RUN (servers, clients, nginx, Prometheus, the OIDC
# provider, browsers, drivers, Xvfb, the keyring): any still alive now, other than this shell, was left behind.
leftover=""
for e in $(grep -lzx "PORTWAY_TEST_RUN=$PORTWAY_TEST_RUN" /proc/[0-9]*/environ 2>/dev/null); do
  pid=${e#/proc/}; pid=${pid%/environ}
  [ "$pid" = "$$" ] && continue
  line=$(ps -o pid=,etimes=,args= -p "$pid" 2>/dev/null) && leftover+="$line"$'\n'
done
if [ -n "$leftover" ]; then
  printf 'these processes started by the tests are still running:\n%s' "$leftover" >&2
  exit 1
fi
echo "== all tests passed"
