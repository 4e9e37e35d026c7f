#!/usr/bin/env bash
# Build the UNMODIFIED upstream HMM selftest (tools/testing/selftests/mm/hmm-tests.c) of the
# Linux 7.3 source (Debian linux-source-7.3, trixie-backports) and p2plab's own HMM tests
# (guest/tests/hmm-p2plab-tests.c, kselftest_harness.h of the same tree) as static binaries, inside
# the trixie build root.  Cached by inputs.  Prints the path of the hmm-tests binary; the directory
# also holds hmm-p2plab-tests and hmm-stress (guest/tests/hmm-stress.c).
#   scripts/build-hmm-tests.sh            build (or reuse) and print the path
#   scripts/build-hmm-tests.sh --src      only fetch/extract the kernel source, print its dir
# The kernel source is shared with scripts/build-test-hmm.sh (~/.cache/p2plab/src/linux-source-*).
source "$(dirname "$0")/lib.sh"

KSRC_PKG=${KSRC_PKG:-linux-source-7.3}

# fetch_linux_src -> prints the extracted source tree (cached; keyed by the package version)
fetch_linux_src() {
    local d deb ver top
    host_deps xz-utils dpkg-dev
    apt_private_init
    d=$P2PLAB_CACHE/src/deb-$KSRC_PKG
    mkdir -p "$d"; chmod 755 "$d"
    deb=$(ls "$d"/"$KSRC_PKG"_*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
        log "downloading $KSRC_PKG (~170 MB)"
        (cd "$d" && apt_private download -qq "$KSRC_PKG" >&2) || die "apt download $KSRC_PKG failed"
        deb=$(ls "$d"/"$KSRC_PKG"_*.deb | head -1)
    fi
    ver=$(dpkg-deb -f "$deb" Version)
    top=$P2PLAB_CACHE/src/$KSRC_PKG-$ver
    if [ ! -e "$top/.complete" ]; then
        rm -rf "$top" "$top.tmp"; mkdir -p "$top.tmp"
        log "extracting $KSRC_PKG $ver"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$top.tmp" --wildcards '*.tar.xz' \
            || die "cannot unpack $deb"
        tar -xf "$(find "$top.tmp" -name "$KSRC_PKG.tar.xz" | head -1)" -C "$top.tmp" \
            || die "cannot extract the kernel tarball"
        rm -rf "$top.tmp/usr"
        mv "$top.tmp" "$top"; touch "$top/.complete"
    fi
    echo "$top/$KSRC_PKG"
}

src=$(fetch_linux_src)
[ -f "$src/tools/testing/selftests/mm/hmm-tests.c" ] || die "no hmm-tests.c in $src"
if [ "${1:-}" = --src ]; then echo "$src"; exit 0; fi
cache_lock hmm-tests-build

tests=$P2PLAB_ROOT/guest/tests
key=$(hash_inputs "$src/tools/testing/selftests/mm/hmm-tests.c" "$src/lib/test_hmm_uapi.h" \
      "$src/Makefile" "$0" "$tests/hmm-p2plab-tests.c" "$tests/hmm-stress.c" "$tests/dmirror-lib.h" \
      "$tests/p2plab-lib.h" "$P2PLAB_ROOT/include/uapi/p2plab_ioctl.h" "$P2PLAB_ROOT/include/p2plab_hw.h")
out=$P2PLAB_CACHE/hmm-tests-$key
if [ ! -x "$out/hmm-tests" ] || [ ! -x "$out/hmm-p2plab-tests" ] || [ ! -x "$out/hmm-stress" ]; then
    root=$(scripts_dir=$(dirname "$0"); "$scripts_dir/buildroot.sh")
    # make headers needs rsync-free headers_install (7.x) and a host compiler: both in the root
    mnt=$root/build/linux-src
    mkdir -p "$mnt" "$root/build/hmm-tests-out"
    mountpoint -q "$mnt" || mount --bind "$src" "$mnt" || die "bind mount of $src failed"
    trap 'umount "$mnt" 2>/dev/null || true' EXIT
    log "make headers (7.3 uAPI) in the build root"
    chroot "$root" make -s -C /build/linux-src HOSTCC=gcc-14 CC=gcc-14 headers >&2 || die "make headers failed"
    log "building hmm-tests (static)"
    rm -rf "$root/build/hmm-tests-out"; mkdir -p "$root/build/hmm-tests-out"
    chroot "$root" make -s -C /build/linux-src/tools/testing/selftests/mm CC=gcc-14 \
        OUTPUT=/build/hmm-tests-out LDLIBS="-static -lpthread -lrt -lm" \
        /build/hmm-tests-out/hmm-tests >&2 || die "building hmm-tests failed"
    file "$root/build/hmm-tests-out/hmm-tests" 2>/dev/null | grep -q "statically linked" \
        || log "warning: hmm-tests does not look statically linked"
    log "building hmm-p2plab-tests (static)"
    # the dmirror uAPI straight from the kernel source (lib/test_hmm_uapi.h), as hmm-tests.c uses it
    cp "$tests/hmm-p2plab-tests.c" "$tests/hmm-stress.c" "$tests/dmirror-lib.h" "$tests/p2plab-lib.h" "$src/lib/test_hmm_uapi.h" \
        "$P2PLAB_ROOT/include/uapi/p2plab_ioctl.h" "$P2PLAB_ROOT/include/p2plab_hw.h" "$root/build/hmm-tests-out/"
    chroot "$root" gcc-14 -O2 -Wall -static -o /build/hmm-tests-out/hmm-p2plab-tests \
        -I /build/linux-src/tools/testing/selftests -isystem /build/linux-src/usr/include \
        /build/hmm-tests-out/hmm-p2plab-tests.c -lpthread >&2 || die "building hmm-p2plab-tests failed"
    log "building hmm-stress (static)"
    chroot "$root" gcc-14 -O2 -Wall -static -o /build/hmm-tests-out/hmm-stress \
        /build/hmm-tests-out/hmm-stress.c -lpthread >&2 || die "building hmm-stress failed"
    mkdir -p "$out.tmp"
    cp "$root/build/hmm-tests-out/hmm-tests" "$root/build/hmm-tests-out/hmm-p2plab-tests" \
        "$root/build/hmm-tests-out/hmm-stress" "$out.tmp/"
    rm -rf "$out"; mv "$out.tmp" "$out"
fi
echo "$out/hmm-tests"
