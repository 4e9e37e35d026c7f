#!/usr/bin/env bash
# Build upstream lib/test_hmm.c (Linux 7.3 source, unmodified) as an OUT-OF-TREE module against the
# Debian 7.3 guest kernel headers (CONFIG_TEST_HMM is off in Debian's config), inside the trixie
# build root.  Used for the benchmark comparison with p2plab.ko's dmirror mode.  Prints the path of
# test_hmm.ko.  NOTE: test_hmm.ko and p2plab.ko dmirror=1 both create /dev/hmm_dmirror0..3: load
# only one of them at a time.
source "$(dirname "$0")/lib.sh"

KVER=${KVER:-7.3.4+deb13-amd64}
src=$("$(dirname "$0")/build-hmm-tests.sh" --src)
[ -f "$src/lib/test_hmm.c" ] || die "no lib/test_hmm.c in $src"
key=$(hash_inputs "$src/lib/test_hmm.c" "$src/lib/test_hmm_uapi.h" "$0" "$KVER")
out=$P2PLAB_CACHE/test_hmm-$key
if [ ! -f "$out/test_hmm.ko" ]; then
    root=$("$(dirname "$0")/buildroot.sh")
    # objtool reads /proc (stack limit): the chroot needs it (left mounted: other builds share it)
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc" || die "cannot mount proc in $root"
    b=$root/build/test_hmm
    rm -rf "$b"; mkdir -p "$b"
    cp "$src/lib/test_hmm.c" "$src/lib/test_hmm_uapi.h" "$b/"
    echo 'obj-m := test_hmm.o' >"$b/Kbuild"
    log "building test_hmm.ko (out of tree, $KVER)"
    chroot "$root" make -s -C "/usr/src/linux-headers-$KVER" M=/build/test_hmm modules >&2 \
        || die "building test_hmm.ko failed"
    mkdir -p "$out.tmp"; cp "$b/test_hmm.ko" "$out.tmp/"
    rm -rf "$out"; mv "$out.tmp" "$out"
fi
echo "$out/test_hmm.ko"
