#!/usr/bin/env bash
# `make bench`: every benchmark of the lab, each measured side by side with its reference in the same
# run, collected into one report (build/bench/<date>/report.md):
#   1. DMA engine bandwidth (256 MiB RAM->device, device->peer, device->RAM) vs native host memcpy
#   2. QMP throughput (10k query-status, depth 1 and 8): p2plab client vs QEMU's qemu.qmp vs raw socket
#   3. HMM migration throughput (256 MiB, THP and 4K, both ways): p2plab.ko vs test_hmm.ko
# Speed goals live here, not in tests. Run on an otherwise idle machine: 2 cores are easily disturbed.
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"
out=${BENCH_OUT:-$P2PLAB_ROOT/build/bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
report=$out/report.md
P2PLAB_QEMU=$(lab_qemu)
export P2PLAB_QEMU
rc=0
section() {  # section TITLE LOG CMD...
    local title=$1 logf=$2; shift 2
    log "bench: $title"
    { echo "## $title"; echo; echo '```'; } >>"$report"
    if "$@" >"$logf" 2>&1; then cat "$logf" >>"$report"
    else tail -30 "$logf" >>"$report"; echo "(failed: see $logf)" >>"$report"; rc=1; fi
    { echo '```'; echo; } >>"$report"
}
{ echo "# p2plab benchmarks $(date -u +%FT%TZ)"; echo; echo "host: $(nproc) cores, $(uname -r)"; echo; } >"$report"
section "DMA engine bandwidth vs host memcpy" "$out/dma.log" scripts/qemu-bench.sh
section "QMP throughput" "$out/qmp.log" controller/bench.sh 10000
section "HMM migration: p2plab.ko vs test_hmm.ko" "$out/hmm.log" scripts/bench-hmm.sh "$out/hmm"
cat "$report"
log "report: $report"
exit $rc
