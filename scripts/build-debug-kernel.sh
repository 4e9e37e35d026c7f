#!/usr/bin/env bash
# PROFILE=debug guest kernel: Debian's linux-source-7.3 built with x86_64_defconfig + kvm_guest.config
# + what the lab needs + heavy debugging (KASAN, lockdep, DEBUG_VM, DMA_API_DEBUG, kmemleak,
# TEST_HMM=m). ~20+ min on 2 cores, once; cached by (source version, this script).
# Prints the built tree (usable as KERNEL_SRC: arch/x86/boot/bzImage, Module.symvers, *.ko).
# Built in place in its cache entry (a 20-minute build resumes: .copied, then make), so it is marked
# .complete at the end rather than published by a rename.
# Used by `PROFILE=debug scripts/build-guest.sh` / `make guest PROFILE=debug`. Not run in CI.
source "$(dirname "$0")/lib.sh"

SRC=$("$P2PLAB_ROOT/scripts/fetch-kernel-src.sh" | tail -1) || die "kernel source unavailable"
key=$(hash_strings "$SRC" "$(hash_inputs "$0" "$SRC/Makefile")")
T=$P2PLAB_CACHE/kernel-debug-$key
exit_if_cached "$T" ""
host_deps gcc make bc flex bison libelf-dev libssl-dev cpio xz-utils dwarves
cache_lock kernel-debug
exit_if_cached "$T" ""
if [ ! -e "$T/.copied" ]; then
    rm -rf "$T"; mkdir -p "$T"
    log "copying $SRC to $T"
    cp -a "$SRC/." "$T/"; touch "$T/.copied"
fi
cd "$T"
make -s x86_64_defconfig kvm_guest.config >&2
o() { ./scripts/config "$@"; }
# lab needs
o -e PCI -e PCIEPORTBUS -e HOTPLUG_PCI -e HOTPLUG_PCI_PCIE -e PCI_MSI -e PCI_P2PDMA \
  -e MEMORY_HOTPLUG -e MEMORY_HOTREMOVE -e SPARSEMEM_VMEMMAP -e ZONE_DEVICE -e DEVICE_PRIVATE \
  -e MIGRATION -e TRANSPARENT_HUGEPAGE -e HMM_MIRROR -m TEST_HMM \
  -e DEVTMPFS -e BLK_DEV_INITRD -e RD_GZIP -e MODULES -e MODULE_UNLOAD \
  -m BLK_DEV_NVME -e VIRTIO_PCI -e VIRTIO_CONSOLE -e SERIAL_8250 -e SERIAL_8250_CONSOLE \
  -e IOMMU_SUPPORT -e INTEL_IOMMU -e IOMMU_DMA -e DEBUG_FS -e USERFAULTFD
# debugging
o -e KASAN -e KASAN_GENERIC -e KASAN_INLINE -e PROVE_LOCKING -e DEBUG_LOCKDEP -e PROVE_RCU \
  -e DEBUG_ATOMIC_SLEEP -e DEBUG_VM -e DEBUG_VM_PGFLAGS -e DMA_API_DEBUG -e DMA_API_DEBUG_SG \
  -e DEBUG_KMEMLEAK -e DEBUG_KMEMLEAK_AUTO_SCAN -e DEBUG_OBJECTS -e SCHED_STACK_END_CHECK \
  -d DEBUG_INFO -d DEBUG_INFO_BTF -e DEBUG_INFO_NONE -d MODULE_SIG -d WERROR
make -s olddefconfig >&2
log "building the debug kernel in $T (make -j2 bzImage modules; ~20 min)"
t0=$(date +%s)
nice -n 10 make -j"${P2PLAB_BUILD_JOBS:-2}" bzImage modules >"$T/build.log" 2>&1 \
    || { tail -30 "$T/build.log" >&2; die "debug kernel build failed (log: $T/build.log)"; }
log "debug kernel built in $(( $(date +%s) - t0 )) s"
touch "$T/.complete"
echo "$T"
