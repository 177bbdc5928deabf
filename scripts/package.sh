#!/usr/bin/env bash
# Builds every release artifact for this host into dist/, with dist/SHA256SUMS. One release build, shared by all.
#
# On Linux (checked on Debian 12, amd64):
#   Portway_<v>_<arch>.deb, Portway-<v>-1.<arch>.rpm   the desktop app (tauri bundle: desktop entry, icons)
#   portway-server_<v>_<arch>.deb                      server, hardened systemd unit, safe /etc/portway/frps.toml
#   portway-client_<v>_<arch>.deb                      headless client
#   portway-<v>-linux-<arch>.tar.gz                    server + client + README + example configs + unit + man pages
# On macOS: the desktop app's .app (zipped) and .dmg; on Windows (Git Bash): its .msi and NSIS setup .exe.
# The version is the one in Cargo.toml's [workspace.package]; nothing else may state another.
#
# Bundles that cannot be built on this host are listed as skipped, not attempted: AppImage downloads
# linuxdeploy/appimagetool while it builds (PORTWAY_APPIMAGE=1 adds it on a host with internet).
# Needs: Rust, Node.js 20+ with npm, and on Linux the build packages in scripts/apt-packages.txt.
# CARGO_TARGET_DIR is honoured (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=never
started=$SECONDS
say() { echo "== package: $*"; }
die() { echo "package.sh: $*" >&2; exit 1; }
# SHA256SUMS over everything in dist/ (listed before the file exists, so it does not list itself).
sums() {
  (cd "$dist" && files=(*) && if command -v sha256sum >/dev/null; then sha256sum -- "${files[@]}" > SHA256SUMS
    else shasum -a 256 -- "${files[@]}" > SHA256SUMS; fi)
}

# --- one version --------------------------------------------------------------------------------------------
version=$(cargo metadata --no-deps --format-version 1 --locked \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s);
      const v=new Set(m.packages.map(p=>p.version)); if(v.size!==1){console.error("versions differ: "+[...v]);process.exit(1)}
      console.log([...v][0])})') || die "the workspace's packages must share [workspace.package] version"
node -e 'const c=require("./tauri.conf.json"); if (c.version !== undefined) {
    console.error("tauri.conf.json has \"version\": remove it, the version comes from Cargo.toml"); process.exit(1) }' \
  || exit 1
say "version $version (Cargo.toml [workspace.package])"

target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target="$root/$target" ;; esac
release="$target/release"
dist="$root/dist"
rm -rf "$dist"
mkdir -p "$dist"

case "$(uname -s)" in
  Linux) os=linux; bundles="deb,rpm"
    skipped="msi, nsis (need a Windows host), app, dmg (need a macOS host)"
    if [ "${PORTWAY_APPIMAGE:-0}" = 1 ]; then bundles="$bundles,appimage"
    else skipped="$skipped, appimage (its bundler downloads linuxdeploy and appimagetool; PORTWAY_APPIMAGE=1 on a host with internet)"; fi ;;
  Darwin) os=macos; bundles="app,dmg"; skipped="deb, rpm, appimage (need Linux), msi, nsis (need Windows)" ;;
  MINGW* | MSYS* | CYGWIN*) os=windows; bundles="msi,nsis"; skipped="deb, rpm, appimage (need Linux), app, dmg (need macOS)" ;;
  *) die "unsupported host $(uname -s)" ;;
esac
say "desktop bundles for this host: $bundles"
say "skipped: $skipped"

# --- the interface, then one cargo build for the app, the server and the client ------------------------------
if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  say "npm ci (ui)"
  (cd ui && npm ci --no-audit --no-fund --silent)
fi
say "building the interface"
(cd ui && npm run build --silent -- --logLevel warn)
# The server embeds the dashboard page at build time (crates/server/build.rs).
if [ ! -f dashboard/node_modules/.package-lock.json ] || [ dashboard/package-lock.json -nt dashboard/node_modules/.package-lock.json ]; then
  say "npm ci (dashboard)"
  (cd dashboard && npm ci --no-audit --no-fund --silent)
fi
say "building the dashboard page"
(cd dashboard && npm run build --silent -- --logLevel warn)
say "cargo build --release (desktop app, server, client)"
cargo build --release --locked --quiet -p portway -p portway-server -p portway-client

# --- desktop installers: tauri bundle packages the binary just built (tauri build would rebuild it) -----------
say "tauri bundle --bundles $bundles"
rm -rf "$release/bundle"
# Symbols are a quarter of the binary and no use to users (the server and the client are stripped below too).
if [ $os = linux ]; then strip --strip-unneeded "$release/portway"; fi
ui/node_modules/.bin/tauri bundle --ci --bundles "$bundles"
shopt -s nullglob
desktop=()
case $os in
  linux) desktop=("$release"/bundle/deb/*.deb "$release"/bundle/rpm/*.rpm "$release"/bundle/appimage/*.AppImage) ;;
  macos) desktop=("$release"/bundle/dmg/*.dmg)
    for app in "$release"/bundle/macos/*.app; do
      (cd "$(dirname "$app")" && zip -qry "$dist/$(basename "$app" .app)_${version}_macos.app.zip" "$(basename "$app")")
    done ;;
  windows) desktop=("$release"/bundle/msi/*.msi "$release"/bundle/nsis/*.exe) ;;
esac
shopt -u nullglob
[ ${#desktop[@]} -gt 0 ] || [ $os = macos ] || die "tauri bundle produced no installer in $release/bundle"
cp "${desktop[@]}" "$dist/"

if [ $os != linux ]; then
  sums
  say "done in $((SECONDS - started)) s:"; ls -l "$dist"
  exit 0
fi

# --- server and client: stripped binaries, Debian packages, tarball ------------------------------------------
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
march=$(uname -m)
stage="$target/package-stage"
rm -rf "$stage"
mkdir -p "$stage/bin"
for b in portway-server portway-client; do
  install -m 0755 "$release/$b" "$stage/bin/$b"
  strip --strip-unneeded "$stage/bin/$b"
done
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)

# Depends from the ELF: the newest glibc symbol version used, and every shared library mapped to its package.
glibc=$(objdump -T "$stage"/bin/* | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
[ -n "$glibc" ] || die "cannot find the glibc version the binaries need"
lib_depends="libc6 (>= $glibc)"
for lib in $(objdump -p "$stage"/bin/* | awk '/NEEDED/ {print $2}' | sort -u); do
  case $lib in
    libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | ld-linux*) ;;
    libgcc_s.so.1) lib_depends="$lib_depends, libgcc-s1" ;;
    *) die "the server/client binaries link $lib: add its package to the Depends in scripts/package.sh" ;;
  esac
done

man_gz() { mkdir -p "$2"; gzip -9n < "man/$1" > "$2/$1.gz"; }
copyright() {
  mkdir -p "$1"
  cat > "$1/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: portway

Files: *
Copyright: the Portway developers
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
 The binaries statically include Rust crates under their own licenses (MIT, Apache-2.0, ISC, BSD; Cargo.lock).
EOF
}
# deb_build DIR NAME DESCRIPTION EXTRA_DEPENDS LONG_DESCRIPTION: DEBIAN/control, md5sums, then dpkg-deb.
deb_build() {
  local dir=$1 name=$2 summary=$3 extra=$4 long=$5
  mkdir -p "$dir/DEBIAN"
  find "$dir" -path "$dir/DEBIAN" -prune -o -type d -exec chmod 0755 {} +
  cat > "$dir/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: Portway developers <portway@example.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$dir" | cut -f1)
Depends: $lib_depends$extra
Section: net
Priority: optional
Description: $summary
$long
EOF
  (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
  find "$dir" -exec touch -h -d "@$epoch" {} +
  SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$dir" "$dist/${name}_${version}_${arch}.deb" >/dev/null
}

say "portway-server deb"
d="$stage/deb-server"
install -D -m 0755 "$stage/bin/portway-server" "$d/usr/bin/portway-server"
install -D -m 0644 packaging/server/portway-server.service "$d/lib/systemd/system/portway-server.service"
install -D -m 0644 packaging/server/frps.toml "$d/etc/portway/frps.toml"
man_gz portway-server.1 "$d/usr/share/man/man1"
copyright "$d/usr/share/doc/portway-server"
install -D -m 0644 README.md "$d/usr/share/doc/portway-server/README.md"
install -D -m 0644 examples/frps.toml "$d/usr/share/doc/portway-server/examples/frps-demo.toml"
mkdir -p "$d/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/portway-server.$s" "$d/DEBIAN/$s"; done
echo /etc/portway/frps.toml > "$d/DEBIAN/conffiles"
deb_build "$d" portway-server "frps-compatible reverse tunnel server with token or OIDC authentication" ", adduser" \
" Portway's server accepts frp clients (frpc or portway-client), authenticates them with a
 shared token or an OIDC access token, and opens the public ports their proxies ask for.
 Ships a hardened systemd unit (portway-server.service, not enabled at install) and a
 default /etc/portway/frps.toml that refuses every login until it is edited."

say "portway-client deb"
d="$stage/deb-client"
install -D -m 0755 "$stage/bin/portway-client" "$d/usr/bin/portway-client"
man_gz portway-client.1 "$d/usr/share/man/man1"
copyright "$d/usr/share/doc/portway-client"
install -D -m 0644 README.md "$d/usr/share/doc/portway-client/README.md"
install -D -m 0644 examples/frpc.toml "$d/usr/share/doc/portway-client/examples/frpc.toml"
deb_build "$d" portway-client "frpc-compatible reverse tunnel client with OIDC sign-in" "" \
" Portway's headless client exposes local TCP and UDP services through a Portway server
 or frps, authenticating with a token or OIDC client credentials (authentik, Keycloak)."

say "tarball for any Linux with glibc >= $glibc"
name="portway-${version}-linux-${march}"
t="$stage/$name"
mkdir -p "$t/bin" "$t/examples" "$t/systemd" "$t/man"
install -m 0755 "$stage/bin/portway-server" "$stage/bin/portway-client" "$t/bin/"
install -m 0644 README.md "$t/"
install -m 0644 packaging/server/frps.toml "$t/examples/frps.toml"
install -m 0644 examples/frps.toml "$t/examples/frps-demo.toml"
install -m 0644 examples/frpc.toml "$t/examples/frpc.toml"
sed 's#/usr/bin/portway-server#/usr/local/bin/portway-server#g' packaging/server/portway-server.service \
  > "$t/systemd/portway-server.service"
install -m 0644 man/portway-server.1 man/portway-client.1 "$t/man/"
cat > "$t/INSTALL.txt" <<EOF
Portway $version for Linux $march: portway-server and portway-client, Rust programs that link only glibc
(and libgcc_s) and need glibc $glibc or newer (built on $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -sr)).

  sudo install -m 0755 bin/portway-server bin/portway-client /usr/local/bin/
  sudo install -m 0644 man/*.1 /usr/local/share/man/man1/

The server as a systemd service (the unit is hardened: user portway, no capabilities, read-only system):
  sudo useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin portway
  sudo install -d -m 0750 -g portway /etc/portway
  sudo install -m 0640 -g portway examples/frps.toml /etc/portway/frps.toml
  sudoedit /etc/portway/frps.toml          # auth (OIDC issuer or a token) and allowPorts
  sudo portway-server verify -c /etc/portway/frps.toml
  sudo install -m 0644 systemd/portway-server.service /etc/systemd/system/
  sudo systemctl daemon-reload && sudo systemctl enable --now portway-server

examples/frps.toml is the safe default (refuses every login until edited); examples/frps-demo.toml and
examples/frpc.toml are the local demo pair. Configuration keys: portway-server --help, man portway-server,
README.md.
EOF
find "$t" -exec touch -h -d "@$epoch" {} +
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -cf - "$name" \
  | gzip -9n > "$dist/$name.tar.gz"

sums
say "done in $((SECONDS - started)) s; dist/:"
ls -l "$dist"
