#!/usr/bin/env bash
# Packaging test (scripts/test.sh runs it): builds dist/ with scripts/package.sh, checks the checksums, the
# tarball and the rpm, installs the three .debs on this machine with dpkg -i, checks the installed server, unit,
# config, man page, desktop entry, icons and the desktop app's window under Xvfb, then purges the packages and
# checks the machine is left as it was. Needs root (or sudo) and a Debian-family host.
# Artifacts (screenshots, app log): ${CARGO_TARGET_DIR:-target}/artifacts/packaging/.
#   PORTWAY_PACKAGING_NO_BUILD=1  reuse the existing dist/ instead of running scripts/package.sh
set -uo pipefail
[ "$(id -u)" = 0 ] || exec sudo --preserve-env bash "$0" "$@"
cd "$(dirname "$0")/../.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target="$root/$target" ;; esac
art="$target/artifacts/packaging"
rm -rf "$art"
mkdir -p "$art"

failures=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
# check WHAT COMMAND...: runs the command, output kept in $out.
check() {
  local what=$1
  shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what"; printf '%s\n' "$out" | tail -20 | sed 's/^/     /'; fi
}

version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "no [workspace.package] version in Cargo.toml" >&2; exit 1; }
arch=$(dpkg --print-architecture)
march=$(uname -m)
pkgs=(portway portway-server portway-client)
# present PKG: dpkg knows it in any state but not-installed (installed, unpacked, config-files, ...).
present() { local st; st=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null); [ -n "$st" ] && [ "$st" != not-installed ]; }

# Never clobber an installation this test did not make.
for p in "${pkgs[@]}"; do
  if present "$p"; then
    echo "package $p is already on this machine; purge it first (the test installs and purges it)" >&2
    exit 1
  fi
done
user_existed=no
getent passwd portway >/dev/null && user_existed=yes
group_existed=no
getent group portway >/dev/null && group_existed=yes

echo "== packaging: build (bash scripts/package.sh)"
if [ "${PORTWAY_PACKAGING_NO_BUILD:-0}" != 1 ]; then
  started=$SECONDS
  timeout 3600 bash scripts/package.sh || { echo "FAIL scripts/package.sh"; exit 1; }
  echo "   package.sh took $((SECONDS - started)) s"
fi
server_deb="dist/portway-server_${version}_${arch}.deb"
client_deb="dist/portway-client_${version}_${arch}.deb"
desktop_deb="dist/Portway_${version}_${arch}.deb"
desktop_rpm="dist/Portway-${version}-1.${march}.rpm"
tarball="dist/portway-${version}-linux-${march}.tar.gz"
for f in "$server_deb" "$client_deb" "$desktop_deb" "$desktop_rpm" "$tarball" dist/SHA256SUMS; do
  if [ -f "$f" ]; then pass "built $f"; else fail "built $f (dist/ has: $(ls dist 2>/dev/null | tr '\n' ' '))"; fi
done
[ $failures = 0 ] || { echo "== packaging: $failures failed"; exit 1; }
check "SHA256SUMS lists every artifact and matches" \
  sh -c 'cd dist && sha256sum -c --strict SHA256SUMS && [ "$(ls | grep -vc "^SHA256SUMS$")" = "$(wc -l < SHA256SUMS)" ]'

echo "== packaging: tarball"
tmp=$(mktemp -d)
tar -xzf "$tarball" -C "$tmp"
t="$tmp/portway-${version}-linux-${march}"
for f in bin/portway-server bin/portway-client README.md INSTALL.txt examples/frps.toml examples/frpc.toml \
  systemd/portway-server.service man/portway-server.1 man/portway-client.1; do
  [ -e "$t/$f" ] || fail "tarball contains $f"
done
check "tarball: portway-server --version is $version" sh -c "[ \"\$('$t/bin/portway-server' --version)\" = 'portway-server $version' ]"
check "tarball: portway-client --version is $version" sh -c "[ \"\$('$t/bin/portway-client' --version)\" = 'portway-client $version' ]"
check "tarball: portway-server has the dashboard page built in (dashboard/dist)" grep -aq '<title>Portway dashboard</title>' "$t/bin/portway-server"
check "tarball: the unit runs /usr/local/bin/portway-server" grep -q '^ExecStart=/usr/local/bin/portway-server ' "$t/systemd/portway-server.service"
check "tarball: INSTALL.txt names the glibc it needs" grep -q 'glibc [0-9.]* or newer' "$t/INSTALL.txt"
rm -rf "$tmp"

echo "== packaging: rpm"
if command -v rpm >/dev/null; then
  check "rpm: version $version" sh -c "[ \"\$(rpm -qp --qf '%{VERSION}' '$desktop_rpm' 2>/dev/null)\" = '$version' ]"
  rpm -qpl "$desktop_rpm" > "$art/rpm-files.txt" 2>/dev/null
  for f in /usr/bin/portway /usr/share/applications/Portway.desktop /usr/share/icons/hicolor/128x128/apps/portway.png; do
    check "rpm: contains $f" grep -qx "$f" "$art/rpm-files.txt"
  done
  check "rpm: requires webkit2gtk4.1" sh -c "rpm -qp --requires '$desktop_rpm' 2>/dev/null | grep -q '^webkit2gtk4.1'"
else
  echo "skip rpm checks: rpm is not installed (apt-get install rpm)"
fi

echo "== packaging: install with dpkg -i"
cleanup() {
  echo "== packaging: purge and check the machine is as it was"
  dpkg --purge "${pkgs[@]}" >/dev/null 2>&1
  if [ $user_existed = no ] && getent passwd portway >/dev/null; then userdel portway; fi
  if [ $group_existed = no ] && getent group portway >/dev/null; then groupdel portway; fi
  local left=()
  for p in "${pkgs[@]}"; do present "$p" && left+=("package $p"); done
  for f in /etc/portway /usr/bin/portway /usr/bin/portway-server /usr/bin/portway-client \
    /lib/systemd/system/portway-server.service /usr/share/applications/Portway.desktop; do
    [ -e "$f" ] && left+=("$f")
  done
  dpkg-statoverride --list | grep -q /etc/portway && left+=("dpkg-statoverride for /etc/portway")
  getent passwd portway >/dev/null && [ $user_existed = no ] && left+=("user portway")
  if [ ${#left[@]} = 0 ]; then pass "purged: nothing left behind"; else fail "purged, but left: ${left[*]}"; fi
}
finish() {
  trap - EXIT INT TERM
  cleanup
  if [ $failures = 0 ]; then echo "== packaging: all checks passed (artifacts: $art)"; exit 0; fi
  echo "== packaging: $failures failed (artifacts: $art)"
  exit 1
}
trap finish EXIT
trap 'fail "interrupted"; finish' INT TERM
check "dpkg -i the three packages" env DEBIAN_FRONTEND=noninteractive dpkg -i "$server_deb" "$client_deb" "$desktop_deb"
[ $failures = 0 ] || exit 1

echo "== packaging: server"
check "portway-server --version is $version" sh -c "[ \"\$(portway-server --version)\" = 'portway-server $version' ]"
check "portway-client --version is $version" sh -c "[ \"\$(portway-client --version)\" = 'portway-client $version' ]"
check "portway-server verify passes on the packaged config, without warnings" \
  sh -c 'portway-server verify -c /etc/portway/frps.toml 2>&1 >/dev/null | { ! grep .; }'
check "the portway user can read the config (portway-server verify as portway)" \
  runuser -u portway -- /usr/bin/portway-server verify -c /etc/portway/frps.toml
check "/etc/portway/frps.toml is root:portway 0640" sh -c '[ "$(stat -c %U:%G:%a /etc/portway/frps.toml)" = root:portway:640 ]'
check "other users cannot read it" sh -c '! runuser -u nobody -- cat /etc/portway/frps.toml >/dev/null 2>&1'
check "frps.toml is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' portway-server | grep -q '^ /etc/portway/frps.toml '"
check "default config requires auth (OIDC or a non-empty token)" \
  sh -c "grep -Eq '^auth\.method = \"oidc\"' /etc/portway/frps.toml || grep -Eq '^auth\.token = \"[^\"]{16,}\"' /etc/portway/frps.toml"
check "default config limits the public ports" grep -Eq '^allowPorts = \[\{ *(start|single) = ' /etc/portway/frps.toml
check "system user portway: no home, no shell" \
  sh -c 'getent passwd portway | awk -F: '"'"'$3 < 1000 && $6 == "/nonexistent" && $7 ~ /(nologin|false)$/ {ok=1} END {exit !ok}'"'"''
unit=/lib/systemd/system/portway-server.service
check "systemd-analyze verify $unit: no messages" \
  sh -c "out=\$(systemd-analyze verify '$unit' 2>&1); printf '%s\n' \"\$out\"; [ -z \"\$out\" ]"
for d in User=portway NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes 'CapabilityBoundingSet=$' \
  'AmbientCapabilities=$' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$' SystemCallFilter=@system-service; do
  check "unit sets ${d%\$}" grep -Eq "^$d" "$unit"
done
check "systemd-analyze security --offline: exposure below 2.0" \
  sh -c "systemd-analyze security --offline=true '$unit' 2>&1 | tee '$art/unit-security.txt' \
    | sed -n 's/.*Overall exposure level for portway-server.service: \([0-9.]*\).*/\1/p' \
    | awk '{v = \$1} END {exit !(v != \"\" && v < 2.0)}'"
check "unit not enabled at install" sh -c '! ls /etc/systemd/system/*/portway-server.service 2>/dev/null | grep -q .'
check "man portway-server is installed and renders without warnings" \
  sh -c 'man -w portway-server >/dev/null && [ -z "$(MANWIDTH=100 man --warnings portway-server 2>&1 >/dev/null)" ]'
missing=$(portway-server --help | sed -n '/^Configuration/,$p' | grep -oE '^  [][A-Za-z.]+' | sed 's/^  //' | while read -r k; do
  zcat /usr/share/man/man1/portway-server.1.gz | grep -qF -- "$k" || echo "$k"; done)
if [ -z "$missing" ]; then pass "every key in portway-server --help is in the man page"; else fail "keys missing from the man page: $missing"; fi
check "--help documents the config keys" sh -c 'portway-server --help | grep -q "auth.oidc.issuer" && portway-server --help | grep -q allowPorts'

echo "== packaging: desktop app"
desktop=/usr/share/applications/Portway.desktop
check "desktop entry $desktop" test -f "$desktop"
if command -v desktop-file-validate >/dev/null; then
  check "desktop-file-validate: no errors or warnings" sh -c "out=\$(desktop-file-validate '$desktop' 2>&1); printf '%s\n' \"\$out\"; [ -z \"\$out\" ]"
else
  echo "skip desktop-file-validate: not installed (apt-get install desktop-file-utils)"
fi
exec_line=$(sed -n 's/^Exec=//p' "$desktop" | head -1 | sed 's/ *%[fFuUdDnNickvm]//g')
icon=$(sed -n 's/^Icon=//p' "$desktop" | head -1)
exec_bin=${exec_line%% *}
check "Exec=$exec_line resolves to the installed /usr/bin/portway" \
  sh -c "[ \"\$(command -v '$exec_bin')\" = /usr/bin/portway ] && [ -x /usr/bin/portway ]"
for size in 32x32 128x128 512x512; do
  check "icon $icon: hicolor/$size" sh -c "file '/usr/share/icons/hicolor/$size/apps/$icon.png' | grep -q 'PNG image'"
done
check "dpkg -L portway lists the entry and icons" sh -c "dpkg -L portway | grep -q '$desktop' && dpkg -L portway | grep -q 'hicolor/.*/apps/$icon.png'"
echo "   launching '$exec_line' from the menu entry under Xvfb"
# D-Bus, portal and GTK chatter goes to desktop-session.log; the script's own lines are shown.
if timeout 150 dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" \
  bash tests/packaging/desktop-window.sh "$exec_line" "$art" > "$art/desktop-session.log" 2>&1; then
  pass "the installed app starts and shows a rendered window"
else
  fail "the installed app starts and shows a rendered window (log: $art/desktop-session.log)"
fi
grep '^desktop-window: ' "$art/desktop-session.log" | sed 's/^desktop-window: /     /'
check "screenshot saved, not blank" \
  sh -c "[ -s '$art/desktop-installed.png' ] && [ \"\$(convert '$art/desktop-installed.png' -format '%k' info:)\" -ge 200 ]"
