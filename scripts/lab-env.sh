#!/usr/bin/env bash
# Run a command with the lab's environment: builds (or finds cached) QEMU and the guest, exports
#   P2PLAB_QEMU           qemu-system-x86_64 with -device p2plab
#   P2PLAB_QEMU_DATADIRS  firmware search path (-L)
#   P2PLAB_GUEST          folder with vmlinuz + initramfs.cpio.gz
#   P2PLAB_ACCEL          tcg unless set (kvm only if you ask and it works here)
#   P2PLAB_CPU            PROFILE=debug: max,la57=off unless set (the machines' `cpu: max` otherwise):
#                         KASAN's boot-time false positive with 5-level paging (docs/debug-kernel.md)
# and links build/qemu-system-x86_64 and build/guest (PROFILE=debug: build/guest-debug) to them for later
# hand use.
#   scripts/lab-env.sh ./p2plab run scenarios/guest/p2p-matrix.yaml
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"
P2PLAB_QEMU=$(lab_qemu)
P2PLAB_GUEST=$(lab_guest)
export P2PLAB_QEMU P2PLAB_GUEST P2PLAB_QEMU_DATADIRS
export P2PLAB_ACCEL=${P2PLAB_ACCEL:-tcg}
[ "${PROFILE:-}" = debug ] && export P2PLAB_CPU=${P2PLAB_CPU:-max,la57=off}
mkdir -p build
ln -sfn "$P2PLAB_QEMU" build/qemu-system-x86_64
ln -sfn "$P2PLAB_GUEST" "build/guest${PROFILE:+-$PROFILE}"   # PROFILE=debug: build/guest-debug, build/guest stays
exec "$@"
