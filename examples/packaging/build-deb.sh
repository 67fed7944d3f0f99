#!/usr/bin/env bash
# Builds the Debian package of presenced from an already-built binary, with dpkg-deb (no cargo-deb to install);
# the package is the one declared in examples/Cargo.toml's [package.metadata.deb] for `cargo deb`:
#   bash examples/packaging/build-deb.sh [BINARY] [OUTDIR]
# BINARY defaults to target/release/presenced (build it with `cargo build --release --bin presenced`), OUTDIR
# to target/debian. Prints the path of the .deb. The package holds /usr/bin/presenced, the systemd unit, the
# commented config /etc/presenced/presenced.toml (a conffile) and maintainer scripts that create the presenced
# system user (and remove it, with the state directory, on purge).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${1:-$repo/target/release/presenced}"
out="${2:-$repo/target/debian}"
[ -x "$bin" ] || { echo "build-deb: no binary at $bin (cargo build --release --bin presenced)" >&2; exit 1; }
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml")"
arch="$(dpkg --print-architecture)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin" "$root/usr/bin/presenced"
# Debian ships binaries without debug sections (a debug build shrinks from about 250 MB to 30 MB).
strip --strip-debug "$root/usr/bin/presenced"
install -D -m 0644 "$here/presenced.service" "$root/lib/systemd/system/presenced.service"
install -D -m 0644 "$here/presenced.toml" "$root/etc/presenced/presenced.toml"
install -D -m 0644 "$repo/README.md" "$root/usr/share/doc/presenced/README.md"
install -d "$root/DEBIAN"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/debian/control" > "$root/DEBIAN/control"
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$here/debian/$s" "$root/DEBIAN/$s"; done
mkdir -p "$out"
deb="$out/presenced_${version}_${arch}.deb"
# PRESENCED_DEB_FAST=1 (the packaging test) trades size for time: gzip -1 instead of xz.
if [ -n "${PRESENCED_DEB_FAST:-}" ]; then compress=(-Zgzip -z1); else compress=(); fi
dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >/dev/null
echo "$deb"
