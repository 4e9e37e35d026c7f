package io.p2plab.bench.report;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "bench-report", mixinStandardHelpOptions = true,
        description = {"make bench's report: DIR/report.html (charts: DMA bandwidth vs transfer size per path, HMM migration vs "
                + "test_hmm, QMP throughput vs depth, SVM fault throughput) and DIR/results.json (every number, one schema), "
                + "from the parts' outputs in DIR: dma.log, qmp.log, hmm/hmm-bench.json, svm/ (or the files given below).",
                "A part whose output is missing or unreadable is an error naming the file (exit 1); the other parts are still reported."})
public final class BenchReportCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "DIR", description = "the bench folder (build/bench/<date>); report.html and results.json go here")
    Path dir;
    @Option(names = "--dma", paramLabel = "FILE", description = "scripts/qemu-bench.sh output (default DIR/dma.log)")
    Path dma;
    @Option(names = "--qmp", paramLabel = "FILE", description = "controller/bench.sh output (default DIR/qmp.log)")
    Path qmp;
    @Option(names = "--hmm", paramLabel = "FILE", description = "scripts/bench-hmm.sh's hmm-bench.json (default DIR/hmm/hmm-bench.json)")
    Path hmm;
    @Option(names = "--svm", paramLabel = "DIR|FILE", description = "the svm-bench run's folder or one guest-bench.stdout (default DIR/svm)")
    Path svm;
    @Option(names = "--suite", paramLabel = "FILE", description = "scripts/suite-bench.sh output (default DIR/suite.log)")
    Path suite;
    @Option(names = "--only", split = ",", paramLabel = "PART", description = "report only these parts (dma, qmp, hmm, svm, suite)")
    java.util.List<String> only;

    @Override
    public Integer call() throws Exception {
        System.setProperty("java.awt.headless", "true");
        BenchReport.Inputs d = BenchReport.Inputs.in(dir);
        BenchReport.Inputs in = new BenchReport.Inputs(pick("dma", dma, d.dma()), pick("qmp", qmp, d.qmp()),
                pick("hmm", hmm, d.hmm()), pick("svm", svm, d.svm()), pick("suite", suite, d.suite()));
        BenchReport.Result r = BenchReport.write(dir, in);
        for (String e : r.errors()) System.err.println("bench-report: " + e);
        System.err.println("bench-report: " + r.html() + ", " + r.json());
        return r.errors().isEmpty() ? 0 : 1;
    }

    private Path pick(String name, Path given, Path dflt) {
        if (only != null && !only.contains(name)) return null;
        return given != null ? given : dflt;
    }
}
