#!/usr/bin/env bash
# Fetch Debian's linux-source-7.3 (trixie-backports; the source of the guest kernel) into the cache and
# print the extracted tree ($P2PLAB_CACHE/src/linux-source-7.3-<version>/linux-source-7.3). Used for
# tools/testing/selftests (hmm-tests, kselftest_harness.h), lib/test_hmm.c and lib/test_hmm_uapi.h
# (the dmirror uAPI), and the PROFILE=debug kernel.
source "$(dirname "$0")/lib.sh"

KSRC_PKG=${KSRC_PKG:-linux-source-7.3}
host_deps xz-utils dpkg-dev
d=$P2PLAB_CACHE/src/deb-$KSRC_PKG
mkdir -p "$d"; chmod 755 "$d"   # apt's _apt user downloads into it
deb=$(ls "$d"/"$KSRC_PKG"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    apt_private_init
    log "downloading $KSRC_PKG (~170 MB)"
    (cd "$d" && apt_private download -qq "$KSRC_PKG" >&2) || die "apt download $KSRC_PKG failed"
    deb=$(ls "$d"/"$KSRC_PKG"_*.deb | head -1)
fi
top=$P2PLAB_CACHE/src/$KSRC_PKG-$(dpkg-deb -f "$deb" Version)
if ! cache_ready "$top"; then
    cache_begin "$top"
    log "extracting $deb"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$top.tmp" --wildcards '*.tar.xz' || die "cannot unpack $deb"
    tar -xf "$(find "$top.tmp" -name "$KSRC_PKG.tar.xz" | head -1)" -C "$top.tmp" \
        || die "cannot extract the kernel tarball"
    rm -rf "$top.tmp/usr"
    cache_publish "$top"
fi
echo "$top/$KSRC_PKG"
