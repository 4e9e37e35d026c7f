#!/usr/bin/env bash
# `make bench`: every benchmark of the lab, each measured side by side with its reference in the same
# run, collected into one report (build/bench/<date>/report.md, the parts' logs as they printed), and
# report.html (charts) + results.json (every number, one schema) by ./p2plab bench-report:
#   1. DMA engine bandwidth vs transfer size (4 KiB..256 MiB: RAM->device, device->peer, device->RAM,
#      RAM->RAM) vs native host memcpy of the same size                                      (dma.log)
#   2. QMP throughput (10k query-status by depth): p2plab client vs QEMU's qemu.qmp vs raw socket (qmp.log)
#   3. HMM migration throughput (256 MiB, THP and 4K, both ways): p2plab.ko vs test_hmm.ko (hmm/hmm-bench.json)
#   4. SVM: device reads by VA (first touch vs mapped vs physical), one-page fault rate, per backend (svm/)
#   5. Suite wall time: the same ten guest cases with --jobs 1 and --jobs 2, alternating, and where a case's
#      time goes (boot phases vs the test itself, scripts/suite-profile.py)                   (suite.log)
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
QMP_DEPTHS=${QMP_DEPTHS:-1 2 4 8 16} section "QMP throughput" "$out/qmp.log" controller/bench.sh 10000
section "HMM migration: p2plab.ko vs test_hmm.ko" "$out/hmm.log" scripts/bench-hmm.sh "$out/hmm"
svm_bench() {  # the svm-bench scenario (both backends); its figures are in each case's guest-bench.stdout
    local st=0
    scripts/lab-env.sh ./p2plab run scenarios/svm/svm-bench.yaml --out "$out/svm" || st=$?
    grep -h "^# bench" "$out"/svm/*/guest-bench.stdout 2>/dev/null
    return $st
}
section "SVM device faults (svm-bench scenario)" "$out/svm.log" svm_bench
section "Suite wall time: --jobs 1 vs --jobs 2" "$out/suite.log" scripts/suite-bench.sh "$out/suite"
cat "$report"
log "report: $report"
if ./p2plab bench-report "$out"; then log "charts: $out/report.html, numbers: $out/results.json"
else rc=1; log "bench-report: some parts have no data (named above); $out/report.html shows the others"; fi
exit $rc
