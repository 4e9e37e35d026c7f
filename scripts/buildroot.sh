#!/usr/bin/env bash
# A trixie build root (debootstrap, cached) with gcc-14 and the Debian 7.3 kernel headers, used to
# build p2plab.ko against the Debian guest kernel: its kbuild tools need glibc >= 2.38.
# Prints the root's path on stdout.
source "$(dirname "$0")/lib.sh"

KVER=${KVER:-7.3.4+deb13-amd64}
key=$(printf 'trixie %s v1' "$KVER" | sha256sum | cut -c1-12)
root=$P2PLAB_CACHE/buildroot-$key
if ! cache_ready "$root"; then
    host_deps debootstrap
    cache_begin "$root"
    log "debootstrap trixie build root ($root, ~2 min)"
    debootstrap --variant=minbase --include=gcc-14,make,libc6-dev,xz-utils,ca-certificates \
        trixie "$root.tmp" http://deb.debian.org/debian >"$P2PLAB_CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$P2PLAB_CACHE/debootstrap.log" >&2; die "debootstrap trixie failed"; }
    cat >"$root.tmp/etc/apt/sources.list" <<SRC
deb http://deb.debian.org/debian trixie main
deb http://deb.debian.org/debian trixie-backports main
SRC
    buildroot_deps "$root.tmp" "linux-headers-$KVER" pahole
    chroot "$root.tmp" apt-get clean
    cache_publish "$root"
fi
# objtool (module builds) reads /proc: keep it mounted in the root (idempotent; `make distclean`
# unmounts it before deleting the cache)
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc" || die "cannot mount /proc in $root"
echo "$root"
