#!/usr/bin/env bash
# Fetch Debian's prebuilt 7.3 guest kernel (vmlinuz, modules, config) from trixie-backports into the
# cache, without installing anything on the host (its source: scripts/fetch-kernel-src.sh). Prints
# the kernel directory on stdout:
#   DIR/vmlinuz  DIR/config  DIR/modules/<kver>/...  (.ko, decompressed)
source "$(dirname "$0")/lib.sh"

KVER=${KVER:-7.3.4+deb13-amd64}
dest=$P2PLAB_CACHE/kernel-$KVER
if ! cache_ready "$dest"; then
    host_deps xz-utils dpkg-dev
    log "downloading linux-binary/modules/headers $KVER (~120 MB)"
    pk=$P2PLAB_CACHE/kernel-debs-$KVER
    deb_extract "$pk" "linux-binary-$KVER" "linux-modules-$KVER" "linux-headers-$KVER"
    cache_begin "$dest"
    mdir=$(find "$pk/root" -type d -path "*/lib/modules/$KVER" | head -1)
    [ -n "$mdir" ] || die "no modules dir for $KVER in the packages"
    cp "$mdir/vmlinuz" "$dest.tmp/vmlinuz"
    # the config ships in the headers package
    cp "$pk/root/usr/src/linux-headers-$KVER/.config" "$dest.tmp/config" || die "no kernel config found"
    mkdir -p "$dest.tmp/modules"; mv "$mdir" "$dest.tmp/modules/$KVER"
    find "$dest.tmp/modules" -name '*.ko.xz' -exec xz -d {} +
    cache_publish "$dest"; rm -rf "$pk"
fi
echo "$dest"
