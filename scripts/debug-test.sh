#!/usr/bin/env bash
# `make debug-test` (the "debug" stage of make test): a selection of the guest P2P, HMM and SVM
# scenarios on the PROFILE=debug kernel (scripts/build-debug-kernel.sh: KASAN, lockdep, DEBUG_VM,
# DMA_API_DEBUG, kmemleak, DEBUG_OBJECTS, hung-task and soft-lockup detectors). The controller's splat
# watchdog fails a case on any report. The selection is sized to the time goal of make test (cold on a
# fresh clone <= 45 min): docs/debug-kernel.md has the measured times and why these cases.
#   scripts/debug-test.sh [OUT]              the selection (OUT default build/runs/debug-<time>)
#   DEBUG_CASES='regex' scripts/debug-test.sh   other cases (a --filter regex on case names)
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"
export PROFILE=debug

# one regex per case (matched whole against the expanded case names). A debug boot takes 20-50 s under
# TCG and every test runs several times slower, so this is a subset per suite, chosen for coverage per
# minute (docs/debug-kernel.md has each case's measured time and what was left out: the whole upstream
# hmm-tests takes 3 min here without its benchmark, 19 min with it; hmm-tests-quick is its share).
cases=(
    # guest P2P: topology matrix (switch + far pair through the host bridge, IOMMU on), hot-add and
    # hot-remove (acpiphp), P2P pages through the host bridge with the IOMMU off (dma-debug checks the
    # DMA_ATTR_MMIO map/unmap pairing of hmm_dma_map_pfn: docs/seed-guards.md row 4)
    'p2p-matrix\[cpu=amd,iommu=on\]'
    'hotplug'
    'hotplug-native\[port=rp3\]'   # native PCIe hotplug (pciehp) on a root port: 75 s
    'hmm-p2pmem\[cpu=amd,iommu=off\]'
    # HMM: p2plab's own HMM tests, DMA faults during migration, eviction on hot-unplug, and the
    # driver's life cycle (100 unload/load cycles with devices bound, unbind/rebind under DMA, kmemleak)
    'hmm-p2plab'
    'hmm-faults'
    'hmm-eviction'
    'hmm-driver-cycles'
    'hmm-tests-quick'   # upstream hmm-tests without its 5 slowest tests here (68 of 78 cases): 67-102 s
    # SVM: the SVM suite on the drm_gpusvm backend behind the IOMMU (its use-after-free and its
    # mprotect race were found here: docs/debug-kernel.md), device faults with P2P, and the odp
    # backend's exclusive-access THP path
    'svm-tests\[backend=gpusvm,iommu=on\]'   # 37 pass (placement through drm_pagemap included)
    'svm-p2p\[backend=gpusvm,cpu=amd,iommu=on\]'
    'svm-exclusive-thp'
)
filter=${DEBUG_CASES:-^($(IFS='|'; echo "${cases[*]}"))$}
out=${1:-build/runs/debug-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"

t0=$(date +%s)
guest=$("$P2PLAB_ROOT/scripts/build-guest.sh" | tail -1) || die "debug guest build failed"
log "debug guest ready in $(( $(date +%s) - t0 )) s: $guest"
export P2PLAB_GUEST=$guest
t1=$(date +%s)
set +e
scripts/lab-env.sh ./p2plab suite scenarios --filter "$filter" --out "$out" --junit "$out/junit.xml"
rc=$?
set -e
log "debug suite: $(( $(date +%s) - t1 )) s (rc $rc); stage total $(( $(date +%s) - t0 )) s"
exit "$rc"
