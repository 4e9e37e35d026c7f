#!/usr/bin/env bash
# Fetch Debian's prebuilt 7.3 guest kernel (vmlinuz, modules, config) from trixie-backports into
# the cache, without installing anything on the host. Prints the kernel directory on stdout:
#   DIR/vmlinuz  DIR/config  DIR/modules/<kver>/...  (.ko, decompressed)
source "$(dirname "$0")/lib.sh"

KVER=${KVER:-7.3.4+deb13-amd64}
dest=$P2PLAB_CACHE/kernel-$KVER
if [ ! -e "$dest/.complete" ]; then
    host_deps xz-utils dpkg-dev
    apt_private_init
    rm -rf "$dest"; mkdir -p "$dest/deb"
    chmod 755 "$dest/deb"   # apt's _apt user downloads into it
    log "downloading linux-binary/modules/headers $KVER (~120 MB)"
    (cd "$dest/deb" && apt_private download -qq "linux-binary-$KVER" "linux-modules-$KVER" \
        "linux-headers-$KVER" >&2) || die "apt-get download of the $KVER kernel failed"
    for d in "$dest"/deb/*.deb; do dpkg-deb -x "$d" "$dest/root"; done
    mdir=$(find "$dest/root" -type d -path "*/lib/modules/$KVER" | head -1)
    [ -n "$mdir" ] || die "no modules dir for $KVER in the packages"
    cp "$mdir/vmlinuz" "$dest/vmlinuz"
    # the config ships in the headers package
    cp "$dest/root/usr/src/linux-headers-$KVER/.config" "$dest/config" || die "no kernel config found"
    mkdir -p "$dest/modules"; mv "$mdir" "$dest/modules/$KVER"
    find "$dest/modules" -name '*.ko.xz' -exec xz -d {} +
    rm -rf "$dest/root" "$dest/deb"
    touch "$dest/.complete"
fi
echo "$dest"
