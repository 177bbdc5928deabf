#!/usr/bin/env bash
# Sets up and launches the Portway desktop app (Debian 12). Idempotent: installs the build packages it needs,
# builds the frontend and the app, then runs it. With an empty profile it opens on the setup form.
# Headless alternative (no display needed): bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
for pkg in pkg-config libssl-dev libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v npm >/dev/null || { echo "npm not found: install Node.js 20 (apt-get install nodejs npm)" >&2; exit 1; }
echo "== building the interface"
(cd ui && npm ci --no-audit --no-fund --silent && npm run build --silent)
echo "== building the app"
cargo build --quiet --bin portway
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "No display found (DISPLAY/WAYLAND_DISPLAY unset). Run this on a desktop, or try the headless demo: bash scripts/demo.sh" >&2
  exit 1
fi
exec "${CARGO_TARGET_DIR:-target}/debug/portway"
