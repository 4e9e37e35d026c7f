#!/usr/bin/env bash
# Fetch Debian trixie's QEMU source (and trixie's meson, which QEMU 10 needs) into the cache.
# Prints the path of the pristine source tree on stdout.
source "$(dirname "$0")/lib.sh"

QEMU_DEB_VERSION=${QEMU_DEB_VERSION:-1:10.0.13+ds-0+deb13u1}
MESON_DEB_VERSION=${MESON_DEB_VERSION:-1.7.0-1}
upstream=${QEMU_DEB_VERSION#*:}; upstream=${upstream%%+*}
dest=$P2PLAB_CACHE/src/qemu-$upstream

host_deps dpkg-dev xz-utils
if [ ! -e "$dest/.complete" ]; then
    apt_private_init
    rm -rf "$dest" "$dest.tmp"; mkdir -p "$dest.tmp"
    log "fetching qemu=$QEMU_DEB_VERSION source (~40 MB)"
    (cd "$dest.tmp" && apt_private source --download-only -qq "qemu=$QEMU_DEB_VERSION" >&2) \
        || die "apt-get source qemu=$QEMU_DEB_VERSION failed"
    orig=$(ls "$dest.tmp"/qemu_*.orig.tar.* | head -1)
    mkdir -p "$dest.tmp/tree"
    tar -xf "$orig" -C "$dest.tmp/tree" --strip-components=1
    mv "$dest.tmp/tree" "$dest"; rm -rf "$dest.tmp"
    touch "$dest/.complete"
fi
meson_dir=$P2PLAB_CACHE/tools/meson-${MESON_DEB_VERSION%-*}
if [ ! -e "$meson_dir/.complete" ]; then
    apt_private_init
    rm -rf "$meson_dir"; mkdir -p "$meson_dir/deb"
    (cd "$meson_dir/deb" && apt_private download -qq "meson=$MESON_DEB_VERSION" >&2) || die "meson download failed"
    dpkg-deb -x "$meson_dir"/deb/meson_*.deb "$meson_dir/root"
    touch "$meson_dir/.complete"
fi
echo "$dest"
