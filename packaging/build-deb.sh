#!/usr/bin/env bash
# Builds the Debian package of scrapyd-rs from this repository:
#
#   packaging/build-deb.sh        # prints the path of target/debian/scrapyd-rs_<version>_<arch>.deb
#
# It needs only cargo and Debian's own tools (dpkg-dev, binutils): the release binary is built,
# a root tree is staged from the inputs in packaging/ and packed with `dpkg-deb --build`, owned
# by root. The package version is Cargo.toml's version plus the Debian revision of the top entry
# of packaging/debian/changelog, which must agree with Cargo.toml. Every file gets the
# changelog entry's date as its time, so the same sources, built in the same directory with the
# same toolchain, give the same package, byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly package=scrapyd-rs

die() {
    echo "build-deb: $*" >&2
    exit 1
}

for tool in cargo dpkg dpkg-deb dpkg-shlibdeps dpkg-parsechangelog strip gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev binutils)"
done

# The version of [package] in Cargo.toml.
cargo_version=$(awk '
    /^\[/ { in_package = ($0 == "[package]") }
    in_package && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }
' Cargo.toml)
[ -n "$cargo_version" ] || die "no version in the [package] section of Cargo.toml"
changelog=packaging/debian/changelog
version=$(dpkg-parsechangelog -l "$changelog" -SVersion)
if [ "${version%-*}" != "$cargo_version" ]; then
    die "$changelog is at $version but Cargo.toml at $cargo_version: add a changelog entry for $cargo_version-1"
fi
epoch=$(dpkg-parsechangelog -l "$changelog" -STimestamp)
date=$(date -u -d "@$epoch" +%Y-%m-%d)
arch=$(dpkg --print-architecture)

target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --locked --bin "$package" >&2
binary=$target_dir/release/$package

# dpkg-shlibdeps wants the staged tree at debian/<package> under a directory with debian/control.
work=$target_dir/debian/build
root=$work/debian/$package
rm -rf "$work"
mkdir -p "$root/DEBIAN"
: >"$work/debian/control"
umask 022

doc=$root/usr/share/doc/$package
units=$root/usr/lib/systemd/system
overrides=$root/usr/share/lintian/overrides
install -d "$root/usr/bin" "$units" "$root/usr/share/man/man8" "$doc" "$overrides" \
    "$root/etc/scrapyd/conf.d" "$root/etc/scrapyd/instances" "$root/var/lib/scrapyd" "$root/var/log/scrapyd"

install -m 0755 "$binary" "$root/usr/bin/$package"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$package"
install -m 0644 packaging/scrapyd.conf "$root/etc/scrapyd/scrapyd.conf"
install -m 0644 packaging/scrapyd-rs.service packaging/scrapyd-rs@.service "$units/"
sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$date/g" packaging/scrapyd-rs.8 | gzip -9n >"$root/usr/share/man/man8/scrapyd-rs.8.gz"
gzip -9n <"$changelog" >"$doc/changelog.Debian.gz"
install -m 0644 packaging/debian/lintian-overrides "$overrides/$package"

# The copyright file names every crate linked into the binary: not the package itself (its
# line names the checkout's path), nor proc-macros, which run only at build time.
crates=$(cargo tree --locked --edges normal --prefix none --format '{p} {l}' \
    | grep -v -e "^$package v" -e '(proc-macro)' | sed -e 's/ (\*)$//' -e 's/^/ /' | sort -u)
[ -n "$crates" ] || die "cargo tree listed no crates"
awk -v crates="$crates" '$0 == "@CRATES@" { print crates; next } { print }' packaging/debian/copyright >"$doc/copyright"
chmod 0644 "$doc/copyright"

for script in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find etc -type f -printf '/%p\n' | sort) >"$root/DEBIAN/conffiles"
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$root/DEBIAN/md5sums"

depends=$(cd "$work" && dpkg-shlibdeps -O "debian/$package/usr/bin/$package")
depends=${depends#shlibs:Depends=}
[ -n "$depends" ] || die "dpkg-shlibdeps found no library dependencies"
# As dpkg-gencontrol counts it: KiB per file, rounded up, and one per directory or link.
installed_size=$(find "$root" -path "$root/DEBIAN" -prune -o -printf '%y %s\n' \
    | awk '{ total += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print total }')
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
    -e "s/@SHLIBS_DEPENDS@/$depends/" packaging/debian/control >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

find "$root" -exec touch --no-dereference --date="@$epoch" {} +
deb=$target_dir/debian/${package}_${version}_${arch}.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
