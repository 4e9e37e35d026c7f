#!/usr/bin/env bash
# Fetch Debian trixie's QEMU source (and trixie's meson, which QEMU 10 needs) into the cache.
# Prints the path of the pristine source tree on stdout.
source "$(dirname "$0")/lib.sh"

QEMU_DEB_VERSION=${QEMU_DEB_VERSION:-1:10.0.13+ds-0+deb13u1}
MESON_DEB_VERSION=${MESON_DEB_VERSION:-1.7.0-1}
upstream=${QEMU_DEB_VERSION#*:}; upstream=${upstream%%+*}
dest=$P2PLAB_CACHE/src/qemu-$upstream

host_deps dpkg-dev xz-utils
if ! cache_ready "$dest"; then
    apt_private_init
    cache_begin "$dest"
    dl=$(mktemp -d "$P2PLAB_CACHE/src/.qemu-download.XXXXXX")
    chmod 755 "$dl"   # apt's _apt user downloads into it
    log "fetching qemu=$QEMU_DEB_VERSION source (~40 MB)"
    (cd "$dl" && apt_private source --download-only -qq "qemu=$QEMU_DEB_VERSION" >&2) \
        || { rm -rf "$dl"; die "apt-get source qemu=$QEMU_DEB_VERSION failed"; }
    tar -xf "$(ls "$dl"/qemu_*.orig.tar.* | head -1)" -C "$dest.tmp" --strip-components=1
    rm -rf "$dl"
    cache_publish "$dest"
fi
# trixie's meson (QEMU 10 needs a newer one than bookworm's), unpacked into tools/meson-<version>/root
deb_extract "$P2PLAB_CACHE/tools/meson-${MESON_DEB_VERSION%-*}" "meson=$MESON_DEB_VERSION"
echo "$dest"
