#!/usr/bin/env bash
# Build kmod/p2plab.ko. Prints the path of the .ko as the LAST line on stdout; logs on stderr.
#
#   scripts/build-kmod.sh                       # against Debian's 7.3.4+deb13-amd64 (trixie build root)
#   KERNEL_SRC=/path/to/linux scripts/build-kmod.sh   # against a user's built kernel tree (host gcc)
#
# Output cached under $P2PLAB_CACHE/kmod-<key>/p2plab.ko, key = hash(kmod/, include/, this script,
# kernel identity, the kernel's lib/test_hmm_uapi.h). The sources are copied (never built in place)
# so the tree stays clean. The dmirror uAPI is the kernel's own lib/test_hmm_uapi.h: from
# KERNEL_SRC, or from Debian's linux-source of the same version (scripts/fetch-kernel-src.sh).
source "$(dirname "$0")/lib.sh"

KVER=${KVER:-7.3.4+deb13-amd64}
SELF=$P2PLAB_ROOT/scripts/build-kmod.sh
cache_lock kmod-build
[ -f "$P2PLAB_ROOT/kmod/Kbuild" ] || die "missing kmod/Kbuild"

if [ -n "${KERNEL_SRC:-}" ]; then
    KSRC=$(cd "$KERNEL_SRC" 2>/dev/null && pwd) || die "KERNEL_SRC=$KERNEL_SRC is not a directory"
    [ -f "$KSRC/Module.symvers" ] && [ -f "$KSRC/include/generated/utsrelease.h" ] ||
        die "KERNEL_SRC=$KSRC is not a built kernel tree (no Module.symvers / utsrelease.h: run make there first)"
    kid="user:$KSRC:$(cat "$KSRC/include/generated/utsrelease.h"):$(sha256sum <"$KSRC/Module.symvers" | cut -c1-16):$(sha256sum <"$KSRC/.config" | cut -c1-16)"
    UAPI_HMM=$KSRC/lib/test_hmm_uapi.h
else
    kid="debian:$KVER"
    LSRC=$("$P2PLAB_ROOT/scripts/fetch-kernel-src.sh" | tail -1) || die "kernel source unavailable"
    UAPI_HMM=$LSRC/lib/test_hmm_uapi.h
fi
[ -f "$UAPI_HMM" ] || die "no lib/test_hmm_uapi.h at $UAPI_HMM (the dmirror uAPI)"
key=$(hash_strings "$kid" "$(hash_inputs "$P2PLAB_ROOT/kmod" "$P2PLAB_ROOT/include" "$SELF" "$UAPI_HMM")")
OUT=$P2PLAB_CACHE/kmod-$key
exit_if_cached "$OUT" p2plab.ko p2plab.ko

t0=$(date +%s.%N)
stage() {   # stage DIR: kmod/ + include/ side by side (Kbuild uses $(src)/../include)
    rm -rf "$1"; mkdir -p "$1"
    cp -r "$P2PLAB_ROOT/kmod" "$P2PLAB_ROOT/include" "$1/"
    mkdir -p "$1/include/kernel"
    cp "$UAPI_HMM" "$1/include/kernel/test_hmm_uapi.h"
    find "$1/kmod" \( -name '*.o' -o -name '*.ko' -o -name '*.cmd' -o -name '*.mod*' \
        -o -name modules.order -o -name Module.symvers \) -delete
}
if [ -n "${KERNEL_SRC:-}" ]; then
    host_deps gcc make bc flex bison libelf-dev
    W=$P2PLAB_CACHE/kmod-build-$key
    stage "$W"
    make -C "$KSRC" M="$W/kmod" -j2 modules >"$W/build.log" 2>&1 \
        || { cat "$W/build.log" >&2; die "module build against $KSRC failed"; }
    ko=$W/kmod/p2plab.ko
else
    ROOT=$("$P2PLAB_ROOT/scripts/buildroot.sh") || die "build root unavailable"
    W=/build/kmod-$key
    stage "$ROOT$W"
    # Debian's kbuild wants the compiler the kernel was built with (gcc-14); no plain gcc link there
    chroot "$ROOT" make -C "/lib/modules/$KVER/build" M="$W/kmod" CC=gcc-14 HOSTCC=gcc-14 -j2 modules \
        >"$ROOT$W/build.log" 2>&1 || { cat "$ROOT$W/build.log" >&2; die "module build failed"; }
    grep -E 'warning:' "$ROOT$W/build.log" >&2 || true
    ko=$ROOT$W/kmod/p2plab.ko
fi
[ -f "$ko" ] || die "no p2plab.ko produced"
cache_begin "$OUT"
cp "$ko" "$OUT.tmp/p2plab.ko"
printf 'kernel: %s\nbuilt: %s in %.1f s\n' "$kid" "$(date -u +%FT%TZ)" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" >"$OUT.tmp/BUILD-INFO"
cache_publish "$OUT"
rm -rf "${ROOT:-}$W"
log "built p2plab.ko in $(sed -n 's/.* in //p' "$OUT/BUILD-INFO"): $OUT/p2plab.ko"
echo "$OUT/p2plab.ko"
