#!/usr/bin/env bash
# Boot one lab VM with the default topology, serial console on this terminal (Ctrl-a x quits).
#
#   pcie.0 ─ rp1 ─ x3130 upstream ─┬─ dp1 ─ p2plab p0   (p2plab0)
#                                  ├─ dp2 ─ p2plab p1   (p2plab1)
#                                  └─ dp3 ─ nvme (cmb_size_mb=64, 64 MiB namespace)
#   pcie.0 ─ rp2 ─ p2plab p2                           (p2plab2, its own root port)
#   pcie.0 ─ virtio-serial: org.qemu.guest_agent.0 -> $RUN/qga.sock ; QMP on $RUN/qmp.sock
#
# Environment knobs:
#   P2PLAB_CPU=max|EPYC|Skylake-Client-v4|...   CPU model (default max)
#   P2PLAB_IOMMU=1          intel-iommu (intremap=off) + intel_iommu=on
#   P2PLAB_ACS=1            ACS capability on the switch downstream ports (needs the QEMU patch)
#   P2PLAB_APPEND="..."     extra kernel arguments (e.g. p2plab.autotest=1 p2plab.p2p_size=64M)
#   P2PLAB_MEM_SIZE=256M    BAR2 size of each p2plab
#   P2PLAB_RUN=dir          where sockets/disk go (default: a new temp dir)
#   P2PLAB_SERIAL=file      serial console to a file instead of stdio (non-interactive)
#   P2PLAB_QEMU / P2PLAB_GUEST   use this qemu binary / guest dir instead of building
#   P2PLAB_QEMU_ARGS="..."  extra QEMU arguments
source "$(dirname "$0")/lib.sh"

QEMU=${P2PLAB_QEMU:-$("$P2PLAB_ROOT/scripts/build-qemu.sh" | tail -1)} || die "no QEMU"
GUEST=${P2PLAB_GUEST:-$("$P2PLAB_ROOT/scripts/build-guest.sh" | tail -1)} || die "no guest"
[ -x "$QEMU" ] || die "QEMU $QEMU is not executable"
[ -f "$GUEST/vmlinuz" ] && [ -f "$GUEST/initramfs.cpio.gz" ] || die "bad guest dir $GUEST"
RUN=${P2PLAB_RUN:-$(mktemp -d /tmp/p2plab-vm.XXXXXX)}
mkdir -p "$RUN"
MEMSZ=${P2PLAB_MEM_SIZE:-256M}
DISK=$RUN/nvme.img
[ -e "$DISK" ] || truncate -s 64M "$DISK"

append="$(cat "$GUEST/cmdline") ${P2PLAB_APPEND:-}"
acs=""
iommu=()
if [ "${P2PLAB_IOMMU:-0}" = 1 ]; then
    iommu=(-device intel-iommu,intremap=off)
    append+=" intel_iommu=on"
fi
[ "${P2PLAB_ACS:-0}" = 1 ] && acs=",acs=on"
serial=(-serial mon:stdio)
[ -n "${P2PLAB_SERIAL:-}" ] && serial=(-serial "file:$P2PLAB_SERIAL")

args=(
    -machine q35 -accel tcg -cpu "${P2PLAB_CPU:-max}" -m 2G -smp 2
    -bios /usr/share/qemu/qboot.rom -L /usr/share/qemu -L /usr/share/seabios
    -nic none -display none -no-reboot
    -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.cpio.gz" -append "$append"
    "${iommu[@]}"
    -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1
    -device x3130-upstream,id=up1,bus=rp1
    -device "xio3130-downstream,id=dp1,bus=up1,chassis=2,slot=0$acs"
    -device "xio3130-downstream,id=dp2,bus=up1,chassis=3,slot=0$acs"
    -device "xio3130-downstream,id=dp3,bus=up1,chassis=4,slot=0$acs"
    -device "p2plab,id=p0,bus=dp1,mem-size=$MEMSZ"
    -device "p2plab,id=p1,bus=dp2,mem-size=$MEMSZ"
    -drive "if=none,id=nvd0,file=$DISK,format=raw,cache=unsafe"
    -device nvme,id=nvme0,serial=p2plab-nvme0,drive=nvd0,cmb_size_mb=64,bus=dp3
    -device pcie-root-port,id=rp2,bus=pcie.0,chassis=5,slot=2
    -device "p2plab,id=p2,bus=rp2,mem-size=$MEMSZ"
    -device virtio-serial-pci,id=vser0
    -chardev "socket,id=qga0,path=$RUN/qga.sock,server=on,wait=off"
    -device virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0
    -qmp "unix:$RUN/qmp.sock,server=on,wait=off"
    "${serial[@]}"
)
# shellcheck disable=SC2206
[ -n "${P2PLAB_QEMU_ARGS:-}" ] && args+=(${P2PLAB_QEMU_ARGS})
log "run dir $RUN (qmp.sock, qga.sock); guest $GUEST"
echo "$RUN" >"$RUN/.rundir"
exec "$QEMU" "${args[@]}"
