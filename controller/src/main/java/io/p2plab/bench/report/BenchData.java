package io.p2plab.bench.report;

import java.util.List;
import java.util.Map;

/** The numbers of make bench's parts, as parsed from their outputs (one record type per row kind). */
public final class BenchData {
    private BenchData() {}

    /**
     * One DMA path at one transfer size (qtest /p2plab/bench): the device's median MB/s, the median of the
     * host memcpy runs interleaved with it, and the median of the per-round ratios with their range.
     */
    public record DmaRow(String path, long bytes, double deviceMBs, double memcpyMBs, double ratio, int rounds,
                         double ratioMin, double ratioMax) {}

    /** A stand-alone host memcpy line ("# bench host-memcpy 256 MiB in 0.030 s = 8900 MB/s (best of 5)"). */
    public record HostMemcpy(long bytes, double mbs, int reps) {}

    public record Dma(List<DmaRow> rows, List<HostMemcpy> hostMemcpy) {}

    /** One QMP client at one depth (controller/bench.sh): commands/s, and its ratio to the raw socket loop. */
    public record QmpRow(String client, int depth, int count, double medianPerS, double minPerS, double maxPerS,
                         double vsRaw, Double paired) {}

    public record Qmp(String header, List<QmpRow> rows) {}

    /** One case of the HMM migration bench: p2plab.ko vs test_hmm.ko MiB/s at 256 MiB (scripts/bench-hmm.sh). */
    public record HmmRow(String kase, String direction, String pages, double testHmmMiBs, double p2plabMiBs,
                         double ratio, Double pairedRatio) {}

    public record HmmPhase(String phase, long ms, int percent) {}

    /** debugfs p2plab-dmirror/migrate_profile of the last p2plab round, one direction. */
    public record HmmProfile(String direction, Long totalMs, Long copyDmaMs, Long copyAllocMs, List<HmmPhase> phases) {}

    public record Hmm(Map<String, Integer> rounds, List<HmmRow> rows, double geomeanRatio, List<HmmProfile> profile) {}

    /**
     * One SVM read bench (svm-tests bench_4k / bench_thp): the device reads MiB by VA, first touch (faulting)
     * vs mapped vs a physical-address copy, and the per-fault latency medians in microseconds.
     */
    public record SvmRead(String backend, String leaves, int mib, double firstTouchMBs, double seconds, int faults,
                          double mappedMBs, double physicalMBs, double firstOverMapped, Map<String, Double> perFaultUs) {}

    /** svm-tests bench_fault_rate: one-page faults per second and per-fault latency medians (us). */
    public record SvmFaultRate(String backend, int faults, double seconds, double faultsPerS, Map<String, Double> perFaultUs) {}

    public record Svm(List<SvmRead> reads, List<SvmFaultRate> faultRates, List<String> sources) {}

    /** scripts/suite-bench.sh: one run of the cases with --jobs 1 or --jobs J, its wall time in seconds. */
    public record SuiteRound(int round, int jobs, double wallS, int passed, int failed) {}

    /** One phase of the cases' time (scripts/suite-profile.py, the one-at-a-time round): seconds in all, share. */
    public record SuitePhase(String phase, double seconds, double percent) {}

    /**
     * Suite wall time, --jobs 1 vs --jobs J side by side: the medians, the median of the per-round ratios
     * (serial / parallel: above 1 the parallel run was faster), where the time goes.
     */
    public record Suite(String header, int jobs, List<SuiteRound> rounds, double serialMedianS, double parallelMedianS,
                        double ratio, List<Double> pairedRatios, List<SuitePhase> profile, Double bootPercent) {}
}
