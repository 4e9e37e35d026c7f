#!/usr/bin/env bash
# Bandwidth of the p2plab DMA engine under QEMU (qtest, TCG not involved: the copy runs in QEMU's
# main loop) for RAM -> device memory, device -> peer BAR2 (switch-routed P2P), device -> RAM and
# RAM -> RAM at each transfer size of P2PLAB_BENCH_SIZES (default 4K,64K,1M,16M,256M), each next to a
# host memcpy of the same size in the same process (interleaved rounds, medians: P2PLAB_BENCH_ROUNDS),
# and a stand-alone native memcpy of 256 MiB before and after.
#   scripts/qemu-bench.sh
source "$(dirname "$0")/lib.sh"

qemu=$(lab_qemu)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/memcpy-bench" "$P2PLAB_ROOT/qemu-device/bench/memcpy-bench.c" || die "cc failed"
"$tmp/memcpy-bench" 256 5
P2PLAB_BENCH=1 QTEST_QEMU_BINARY=$qemu \
    P2PLAB_QEMU_ARGS=${P2PLAB_QEMU_ARGS:-$(qemu_firmware_args)} \
    "$(dirname "$qemu")/p2plab-test" -p /x86_64/p2plab/bench 2>&1 | grep -E "^# bench|^not ok|ERROR" || die "benchmark failed"
"$tmp/memcpy-bench" 256 5
