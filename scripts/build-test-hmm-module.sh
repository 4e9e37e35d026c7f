#!/usr/bin/env bash
# Build the test_hmm.ko kernel module: upstream lib/test_hmm.c (Linux 7.3 source, unmodified) as an
# out-of-tree module against the Debian 7.3 guest kernel headers (CONFIG_TEST_HMM is off in Debian's
# config), inside the trixie build root. Used for the benchmark comparison with p2plab.ko's dmirror
# mode. Prints the path of test_hmm.ko.  NOTE: test_hmm.ko and p2plab.ko dmirror=1 both create /dev/hmm_dmirror0..3: load
# only one of them at a time.
source "$(dirname "$0")/lib.sh"

KVER=${KVER:-7.3.4+deb13-amd64}
src=$("$P2PLAB_ROOT/scripts/fetch-kernel-src.sh")
[ -f "$src/lib/test_hmm.c" ] || die "no lib/test_hmm.c in $src"
key=$(hash_inputs "$src/lib/test_hmm.c" "$src/lib/test_hmm_uapi.h" "$0" "$KVER")
out=$P2PLAB_CACHE/test_hmm-$key
if ! cache_ready "$out"; then
    root=$("$P2PLAB_ROOT/scripts/buildroot.sh")   # it mounts /proc in the root (objtool reads it)
    b=$root/build/test_hmm
    rm -rf "$b"; mkdir -p "$b"
    cp "$src/lib/test_hmm.c" "$src/lib/test_hmm_uapi.h" "$b/"
    echo 'obj-m := test_hmm.o' >"$b/Kbuild"
    log "building test_hmm.ko (out of tree, $KVER)"
    chroot "$root" make -s -C "/usr/src/linux-headers-$KVER" M=/build/test_hmm modules >&2 \
        || die "building test_hmm.ko failed"
    cache_begin "$out"; cp "$b/test_hmm.ko" "$out.tmp/"
    cache_publish "$out"
fi
echo "$out/test_hmm.ko"
