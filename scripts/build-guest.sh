#!/usr/bin/env bash
# Build the guest: kernel + initramfs (busybox, kernel modules, p2plab.ko, qemu-ga, test programs).
# Prints the output directory as the LAST line on stdout (logs on stderr). It holds:
#   vmlinuz             the kernel to boot (-kernel)
#   initramfs.cpio.gz   the initramfs (-initrd)
#   cmdline             the base kernel command line (console=ttyS0 ...)
#   BUILD-INFO          what went in
#
#   scripts/build-guest.sh                        Debian's prebuilt 7.3.4+deb13-amd64 (default)
#   KERNEL_SRC=/path/to/linux scripts/build-guest.sh   your built tree: its bzImage + modules
#   PROFILE=debug scripts/build-guest.sh          debug kernel from Debian's linux-source-7.3
#                                                 (KASAN, lockdep, ...; scripts/build-debug-kernel.sh, ~20+ min once)
# Cached under $P2PLAB_CACHE/guest-<key>, key = hash of every input.
source "$(dirname "$0")/lib.sh"

KVER=${KVER:-7.3.4+deb13-amd64}
G=$P2PLAB_ROOT/guest
cache_lock guest-build
host_deps cpio gzip binutils

if [ "${PROFILE:-}" = debug ] && [ -z "${KERNEL_SRC:-}" ]; then
    KERNEL_SRC=$("$P2PLAB_ROOT/scripts/build-debug-kernel.sh" | tail -1) || die "debug kernel build failed"
    export KERNEL_SRC
fi

# ---- kernel + module tree ------------------------------------------------------------------------
if [ -n "${KERNEL_SRC:-}" ]; then
    KSRC=$(cd "$KERNEL_SRC" && pwd) || die "KERNEL_SRC=$KERNEL_SRC is not a directory"
    KIMG=$KSRC/arch/x86/boot/bzImage
    [ -f "$KIMG" ] || die "no $KIMG: build your kernel first (make bzImage modules)"
    MODDIR=$KSRC
    kid="user:$KSRC:$(sha256sum <"$KIMG" | cut -c1-16)"
else
    KDIR=$("$P2PLAB_ROOT/scripts/fetch-kernel.sh" | tail -1) || die "fetch-kernel.sh failed"
    KIMG=$KDIR/vmlinuz
    MODDIR=$KDIR/modules/$KVER
    kid="debian:$KVER"
fi
KO=$("$P2PLAB_ROOT/scripts/build-kmod.sh" | tail -1) || die "build-kmod.sh failed"
ROOT=$("$P2PLAB_ROOT/scripts/buildroot.sh" | tail -1) || die "buildroot.sh failed"

# ---- userspace packages in the trixie build root (busybox-static, qemu-ga) ----------------------
buildroot_deps "$ROOT" busybox-static qemu-guest-agent file

# ---- test programs (static, built in the build root) --------------------------------------------
LSRC=$("$P2PLAB_ROOT/scripts/fetch-kernel-src.sh" | tail -1) || die "kernel source unavailable"
KSFT=$LSRC/tools/testing/selftests
[ -f "$KSFT/kselftest_harness.h" ] || die "no kselftest_harness.h in $LSRC"
tkey=$(hash_inputs "$G/tests" "$P2PLAB_ROOT/include" \
       "$KSFT/kselftest_harness.h" "$KSFT/kselftest.h")
TBIN=$P2PLAB_CACHE/guest-tests-$tkey
if ! cache_ready "$TBIN"; then
    W=/build/guest-tests-$tkey
    rm -rf "$ROOT$W"; mkdir -p "$ROOT$W/ksft"
    cp -r "$G/tests" "$ROOT$W/"
    cp "$P2PLAB_ROOT/include/uapi/p2plab_ioctl.h" "$P2PLAB_ROOT/include/p2plab_hw.h" "$ROOT$W/tests/"
    cp "$KSFT/kselftest_harness.h" "$KSFT/kselftest.h" "$ROOT$W/ksft/"
    log "building guest test programs (static)"
    chroot "$ROOT" make -C "$W/tests" CC=gcc-14 KSFT="$W/ksft" OUT="$W/out" -j2 >&2 \
        || die "guest/tests build failed"
    cache_begin "$TBIN"
    cp "$ROOT$W"/out/* "$TBIN.tmp/"
    rm -rf "$ROOT$W"; cache_publish "$TBIN"
fi
# the HMM test programs (upstream hmm-tests, hmm-p2plab-tests, hmm-stress) and test_hmm.ko: best
# effort (P2PLAB_NO_HMM=1 leaves them out)
HMMBIN="" TESTHMM=""
if [ "${P2PLAB_NO_HMM:-0}" != 1 ]; then
    HMMBIN=$(dirname "$("$P2PLAB_ROOT/scripts/build-hmm-test-programs.sh" | tail -1)") || { log "WARNING: HMM tests not built"; HMMBIN=""; }
fi
if [ -n "${KERNEL_SRC:-}" ] && [ -f "$KSRC/lib/test_hmm.ko" ]; then
    TESTHMM=$KSRC/lib/test_hmm.ko      # TEST_HMM=m in the user's / debug kernel
elif [ -z "${KERNEL_SRC:-}" ] && [ "${P2PLAB_NO_HMM:-0}" != 1 ]; then
    TESTHMM=$("$P2PLAB_ROOT/scripts/build-test-hmm-module.sh" | tail -1) || { log "WARNING: test_hmm.ko not built"; TESTHMM=""; }
fi

# ---- kernel modules: wanted list + their dependencies, in load order ----------------------------
WANT=(nvme vfio_iommu_type1 vfio-pci)   # vfio: a p2plab bound to vfio-pci exports BAR2 as a dma-buf (vfio-dmabuf.yaml)
WANT+=(drm drm_gpusvm_helper)   # p2plab.ko's SVM "gpusvm" backend (drm_gpusvm_*, docs/svm.md): loaded before it
declare -A KOPATH=()
while IFS= read -r f; do
    n=${f##*/}; n=${n%.ko}; KOPATH[${n//-/_}]=$f
done < <(find "$MODDIR" -name '*.ko' 2>/dev/null)
order=()
declare -A seen=()
add_mod() {   # add_mod NAME: dependencies first
    local n=${1//-/_} f deps d
    [ -n "${seen[$n]:-}" ] && return 0
    seen[$n]=1
    f=${KOPATH[$n]:-}
    [ -n "$f" ] || { log "module $1 not found as .ko (built in?): skipped"; return 0; }
    deps=$(strings "$f" | sed -n 's/^depends=//p' | head -1)
    for d in ${deps//,/ }; do add_mod "$d"; done
    order+=("$f")
}
for m in "${WANT[@]}"; do add_mod "$m"; done

# ---- assemble ------------------------------------------------------------------------------------
qga_libs=$(chroot "$ROOT" ldd /usr/sbin/qemu-ga | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | sort -u)
key=$(hash_strings "$kid" "$(hash_inputs "$KIMG" "$KO" "$G/init" "$TBIN" "$0" ${HMMBIN:+"$HMMBIN"} ${TESTHMM:+"$TESTHMM"} \
      "$ROOT/bin/busybox" "$ROOT/usr/sbin/qemu-ga" "${order[@]}")")
OUT=$P2PLAB_CACHE/guest-$key
exit_if_cached "$OUT" guest
t0=$(date +%s)
S=$OUT.stage
cache_begin "$OUT"
rm -rf "$S"; mkdir -p "$S"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,lib/modules,opt/p2plab/bin,usr/bin,var/lib}
cp "$ROOT/bin/busybox" "$S/bin/busybox"
cp "$G/init" "$S/init"; chmod 755 "$S/init"
: >"$S/lib/modules/load-order"
for f in "${order[@]}"; do
    cp "$f" "$S/lib/modules/"; basename "$f" >>"$S/lib/modules/load-order"
done
cp "$KO" "$S/lib/modules/p2plab.ko"
[ -n "$TESTHMM" ] && mkdir -p "$S/lib/modules/extra" && cp "$TESTHMM" "$S/lib/modules/extra/"
cp "$TBIN"/* "$S/opt/p2plab/bin/"
if [ -n "$HMMBIN" ]; then
    for b in "$HMMBIN"/*; do [ -x "$b" ] && cp "$b" "$S/opt/p2plab/bin/"; done
fi
cp "$ROOT/usr/sbin/qemu-ga" "$S/usr/bin/"
for l in $qga_libs; do
    mkdir -p "$S$(dirname "$l")"; cp -L "$ROOT$l" "$S$l"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$S/etc/passwd"
printf 'root:x:0:\n' >"$S/etc/group"
printf 'export PATH=/opt/p2plab/bin:/bin:/sbin:/usr/bin:/usr/sbin\nPS1="p2plab# "\n' >"$S/etc/profile"
(cd "$S" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --reproducible --quiet) |
    gzip -6 >"$OUT.tmp/initramfs.cpio.gz"
cp "$KIMG" "$OUT.tmp/vmlinuz"
echo "console=ttyS0 panic=-1 quiet loglevel=4" >"$OUT.tmp/cmdline"
{
    echo "kernel: $kid"
    echo "p2plab.ko: $KO"
    echo "modules: $(cat "$S/lib/modules/load-order" | tr '\n' ' ')"
    echo "tests: $(ls "$S/opt/p2plab/bin" | tr '\n' ' ')"
    echo "initramfs: $(du -k "$OUT.tmp/initramfs.cpio.gz" | cut -f1) KiB"
    echo "built: $(date -u +%FT%TZ) in $(( $(date +%s) - t0 )) s"
} >"$OUT.tmp/BUILD-INFO"
rm -rf "$S"; cache_publish "$OUT"
log "guest: $OUT ($(sed -n 's/^initramfs: //p' "$OUT/BUILD-INFO"))"
echo "$OUT"
