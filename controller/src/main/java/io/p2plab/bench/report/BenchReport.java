package io.p2plab.bench.report;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.bench.report.BenchCharts.Chart;
import io.p2plab.bench.report.BenchData.*;
import io.p2plab.util.Json;
import io.p2plab.util.Markup;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * make bench's report: reads the parts' outputs in a bench folder (dma.log, qmp.log, hmm/hmm-bench.json,
 * svm/), writes each part's numbers as PART.json beside its log, all of them in results.json (one schema:
 * {@value #SCHEMA}), and report.html with the charts as embedded PNGs (self-contained: no script, no CDN).
 * A part whose output is missing or unparseable is reported as an error naming the file, without a chart.
 */
public final class BenchReport {
    public static final String SCHEMA = "p2plab-bench-results/1";

    /** Where each part's output is; null means "not part of this report". */
    public record Inputs(Path dma, Path qmp, Path hmm, Path svm, Path suite) {
        public Inputs(Path dma, Path qmp, Path hmm, Path svm) {
            this(dma, qmp, hmm, svm, null);
        }

        public static Inputs in(Path dir) {
            return new Inputs(dir.resolve("dma.log"), dir.resolve("qmp.log"), dir.resolve("hmm/hmm-bench.json"), dir.resolve("svm"),
                    dir.resolve("suite.log"));
        }
    }

    /** One part: its data, or the error that replaced it. */
    public record Part<T>(String name, String title, Path source, T data, String error) {
        boolean ok() { return data != null; }
    }

    interface Parser<T> { T parse(Path p) throws BenchReportException; }

    static <T> Part<T> part(String name, String title, Path src, Parser<T> p) {
        if (src == null) return null;
        try {
            return new Part<>(name, title, src, p.parse(src), null);
        } catch (BenchReportException e) {
            return new Part<>(name, title, src, null, e.getMessage());
        } catch (RuntimeException e) {
            return new Part<>(name, title, src, null, src + ": " + e);
        }
    }

    public record Result(Path html, Path json, List<String> errors) {}

    public static Result write(Path dir, Inputs in) throws IOException {
        Files.createDirectories(dir);
        Part<Dma> dma = part("dma", "DMA engine bandwidth vs host memcpy", in.dma(), BenchParsers::dma);
        Part<Hmm> hmm = part("hmm", "HMM migration: p2plab.ko vs test_hmm.ko", in.hmm(), BenchParsers::hmm);
        Part<Qmp> qmp = part("qmp", "QMP throughput vs depth", in.qmp(), BenchParsers::qmp);
        Part<Svm> svm = part("svm", "SVM device faults", in.svm(), BenchParsers::svm);
        Part<Suite> suite = part("suite", "Suite wall time: cases side by side (--jobs)", in.suite(), BenchParsers::suite);
        List<Part<?>> parts = new ArrayList<>();
        for (Part<?> p : java.util.Arrays.asList(dma, hmm, qmp, svm, suite)) if (p != null) parts.add(p);

        ObjectNode results = Json.object();
        results.put("schema", SCHEMA);
        results.put("generated", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        ObjectNode partsN = results.putObject("parts");
        List<String> errors = new ArrayList<>();
        for (Part<?> p : parts) {
            ObjectNode n = partsN.putObject(p.name());
            n.put("title", p.title());
            n.put("source", p.source().toString());
            if (p.ok()) {
                n.set("data", Json.MAPPER.valueToTree(p.data()));
                // the part's numbers beside its log (hmm-bench.json is already the part's own JSON)
                if (!p.name().equals("hmm")) {
                    Path beside = p.source().toAbsolutePath().resolveSibling(p.name() + ".json");
                    ObjectNode one = Json.object();
                    one.put("schema", SCHEMA);
                    one.put("part", p.name());
                    one.put("source", p.source().toString());
                    one.set("data", n.get("data"));
                    Files.writeString(beside, Json.pretty(one) + "\n");
                }
            } else {
                n.put("error", p.error());
                errors.add(p.error());
            }
        }
        Path json = dir.resolve("results.json");
        Files.writeString(json, Json.pretty(results) + "\n");
        Path html = dir.resolve("report.html");
        Files.writeString(html, html(dir, results.get("generated").asText(), dma, hmm, qmp, svm, suite, parts), StandardCharsets.UTF_8);
        return new Result(html, json, errors);
    }

    // ---- HTML ---------------------------------------------------------------------------------------

    static String html(Path dir, String generated, Part<Dma> dma, Part<Hmm> hmm, Part<Qmp> qmp, Part<Svm> svm, Part<Suite> suite,
                       List<Part<?>> parts) {
        StringBuilder b = new StringBuilder();
        b.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>p2plab benchmarks</title>\n<style>\n")
                .append("body{font-family:sans-serif;margin:24px;max-width:1000px;color:#222}")
                .append("table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}")
                .append("th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}")
                .append(".err{background:#fde8e8;border:1px solid #d33;padding:8px 12px;font-family:monospace;white-space:pre-wrap}")
                .append(".meet{color:#176f2c}.miss{color:#b3261e;font-weight:bold}img{max-width:100%;border:1px solid #eee;margin:6px 0}")
                .append("code{background:#f4f4f4;padding:0 3px}.src{color:#666;font-size:90%}\n</style></head><body>\n");
        b.append("<h1>p2plab benchmarks</h1>\n<p>Generated ").append(esc(generated)).append(" from <code>").append(esc(dir.toString()))
                .append("</code>. Every figure is a ratio of two measurements taken side by side in the same run (medians of interleaved rounds); ")
                .append("all numbers: <a href=\"results.json\">results.json</a>.</p>\n");
        summary(b, dma, hmm, qmp, svm, suite);
        for (Part<?> p : parts) {
            b.append("<h2 id=\"").append(p.name()).append("\">").append(esc(p.title())).append("</h2>\n<p class=\"src\">source: <code>")
                    .append(esc(p.source().toString())).append("</code></p>\n");
            if (!p.ok()) {
                b.append("<div class=\"err\">no data: ").append(esc(p.error()));
                Path log = dir.resolve(p.name() + ".log");
                if (Files.isRegularFile(log) && !log.equals(p.source())) b.append("\nthe part's log: ").append(esc(log.toString()));
                b.append("</div>\n");
                continue;
            }
            switch (p.name()) {
                case "dma" -> dmaSection(b, (Dma) p.data());
                case "hmm" -> hmmSection(b, (Hmm) p.data());
                case "qmp" -> qmpSection(b, (Qmp) p.data());
                case "svm" -> svmSection(b, (Svm) p.data());
                case "suite" -> suiteSection(b, (Suite) p.data());
                default -> throw new IllegalStateException(p.name());
            }
        }
        return b.append("</body></html>\n").toString();
    }

    private static void summary(StringBuilder b, Part<Dma> dma, Part<Hmm> hmm, Part<Qmp> qmp, Part<Svm> svm, Part<Suite> suite) {
        b.append("<h2>Summary</h2>\n<table><tr><th>measure</th><th>ratio</th><th>goal</th></tr>\n");
        if (dma != null && dma.ok()) {
            long max = dma.data().rows().stream().mapToLong(DmaRow::bytes).max().orElse(0);
            for (DmaRow r : dma.data().rows())
                if (r.bytes() == max) goalRow(b, "DMA " + r.path() + " " + BenchParsers.size(r.bytes()) + " vs host memcpy", r.ratio(), 0.8);
        }
        if (hmm != null && hmm.ok())
            for (HmmRow r : hmm.data().rows()) goalRow(b, "HMM migration " + r.kase() + ": p2plab / test_hmm", r.ratio(), 1.5);
        if (qmp != null && qmp.ok())
            for (QmpRow r : qmp.data().rows())
                if (r.client().startsWith("p2plab"))
                    goalRow(b, "QMP " + r.client() + " depth " + r.depth() + " / raw socket" + (r.paired() != null ? " (paired)" : ""),
                            r.paired() != null ? r.paired() : r.vsRaw(), 0.9);
        if (svm != null && svm.ok())
            for (SvmRead r : svm.data().reads())
                goalRow(b, "SVM " + r.backend() + " " + r.leaves() + ": first-touch / mapped read", r.firstOverMapped(), Double.NaN);
        if (suite != null && suite.ok())
            goalRow(b, "Suite wall time, --jobs 1 / --jobs " + suite.data().jobs() + " (halve it)", suite.data().ratio(), 2.0);
        b.append("</table>\n");
    }

    private static void goalRow(StringBuilder b, String what, double ratio, double goal) {
        String cls = Double.isNaN(goal) ? "" : ratio >= goal ? " class=\"meet\"" : " class=\"miss\"";
        b.append("<tr><td>").append(esc(what)).append("</td><td").append(cls).append(">").append(f2(ratio)).append("x</td><td>")
                .append(Double.isNaN(goal) ? "" : "&ge; " + f2(goal) + "x").append("</td></tr>\n");
    }

    private static void dmaSection(StringBuilder b, Dma d) {
        b.append("<p>qtest <code>/p2plab/bench</code>: each measurement copies at least 16 MiB (n copies of the size, in batches of ")
                .append("ring size - 1 descriptors, timed from the doorbell until the batch's last descriptor is done), next to a host ")
                .append("memcpy of the same size and count in the same process. Below about 1 MiB the device figure is bounded by ")
                .append("per-descriptor costs and qtest's completion polling (a read every 50 us), and the memcpy of a small buffer is cache-hot.</p>\n");
        chart(b, BenchCharts.dmaBandwidth(d));
        chart(b, BenchCharts.dmaRatio(d));
        table(b, List.of("path", "size", "device MB/s", "host memcpy MB/s", "ratio", "range", "rounds"),
                d.rows().stream().sorted(Comparator.comparing(DmaRow::path).thenComparingLong(DmaRow::bytes)).toList(),
                r -> List.of(r.path(), BenchParsers.size(r.bytes()), f0(r.deviceMBs()), f0(r.memcpyMBs()), f2(r.ratio()) + "x",
                        f2(r.ratioMin()) + "-" + f2(r.ratioMax()), Integer.toString(r.rounds())));
        if (!d.hostMemcpy().isEmpty())
            table(b, List.of("host memcpy (stand-alone)", "MB/s", "best of"), d.hostMemcpy(),
                    r -> List.of(BenchParsers.size(r.bytes()), f0(r.mbs()), Integer.toString(r.reps())));
    }

    private static void hmmSection(StringBuilder b, Hmm h) {
        b.append("<p>hmm-tests <code>benchmark_thp_migration</code>, 256 MiB block, both drivers in the same guest boot, alternating (rounds: ")
                .append(esc(h.rounds().toString())).append("); geometric mean of the ratios ").append(f2(h.geomeanRatio())).append("x.</p>\n");
        chart(b, BenchCharts.hmmMigration(h));
        table(b, List.of("case", "test_hmm MiB/s", "p2plab MiB/s", "ratio of means", "paired ratio"), h.rows(),
                r -> List.of(r.kase(), f0(r.testHmmMiBs()), f0(r.p2plabMiBs()), f2(r.ratio()) + "x",
                        r.pairedRatio() == null ? "" : f2(r.pairedRatio()) + "x"));
        if (!h.profile().isEmpty()) {
            chart(b, BenchCharts.hmmProfile(h));
            table(b, List.of("direction", "total ms", "DMA engine wait ms", "page allocation ms"), h.profile(),
                    p -> List.of(p.direction(), s(p.totalMs()), s(p.copyDmaMs()), s(p.copyAllocMs())));
        } else {
            b.append("<p>No migration profile in this run (debugfs p2plab-dmirror/migrate_profile was not captured).</p>\n");
        }
    }

    private static void qmpSection(StringBuilder b, Qmp q) {
        if (q.header() != null) b.append("<p>").append(esc(q.header())).append("</p>\n");
        chart(b, BenchCharts.qmpThroughput(q));
        chart(b, BenchCharts.qmpRatio(q));
        table(b, List.of("client", "depth", "count", "median/s", "min/s", "max/s", "vs raw", "paired"), q.rows(),
                r -> List.of(r.client(), Integer.toString(r.depth()), Integer.toString(r.count()), f0(r.medianPerS()), f0(r.minPerS()),
                        f0(r.maxPerS()), f2(r.vsRaw()) + "x", r.paired() == null ? "" : f2(r.paired()) + "x"));
    }

    private static void suiteSection(StringBuilder b, Suite s) {
        if (s.header() != null) b.append("<p>").append(esc(s.header())).append("</p>\n");
        b.append("<p>Each case boots its own VM; <code>--jobs ").append(s.jobs()).append("</code> runs that many at once. Median wall time: ")
                .append(f1(s.serialMedianS())).append(" s one at a time, ").append(f1(s.parallelMedianS())).append(" s with --jobs ")
                .append(s.jobs()).append("; median of the per-round ratios ").append(f2(s.ratio())).append("x.</p>\n");
        table(b, List.of("round", "jobs", "wall s", "passed", "failed"), s.rounds(),
                r -> List.of(Integer.toString(r.round()), Integer.toString(r.jobs()), f1(r.wallS()), Integer.toString(r.passed()),
                        Integer.toString(r.failed())));
        if (!s.profile().isEmpty()) {
            b.append("<p>Where the time goes, one case at a time (<code>scripts/suite-profile.py</code>)")
                    .append(s.bootPercent() == null ? "" : ": booting to P2PLAB-READY is " + f0(s.bootPercent()) + "% of it")
                    .append(".</p>\n");
            table(b, List.of("phase", "seconds (all cases)", "share"), s.profile(),
                    p -> List.of(p.phase(), f1(p.seconds()), f0(p.percent()) + "%"));
        }
    }

    private static void svmSection(StringBuilder b, Svm s) {
        if (!s.reads().isEmpty()) {
            chart(b, BenchCharts.svmRead(s));
            table(b, List.of("backend", "leaves", "MiB", "first touch MB/s", "faults", "mapped MB/s", "physical MB/s", "first/mapped"), s.reads(),
                    r -> List.of(r.backend(), r.leaves(), Integer.toString(r.mib()), f1(r.firstTouchMBs()), Integer.toString(r.faults()),
                            f1(r.mappedMBs()), f1(r.physicalMBs()), f2(r.firstOverMapped()) + "x"));
        }
        if (!s.faultRates().isEmpty()) {
            chart(b, BenchCharts.svmFaultRate(s));
            chart(b, BenchCharts.svmFaultLatency(s));
            table(b, List.of("backend", "faults", "seconds", "faults/s", "per fault (median, us)"), s.faultRates(),
                    r -> List.of(r.backend(), Integer.toString(r.faults()), String.format(Locale.ROOT, "%.3f", r.seconds()), f0(r.faultsPerS()),
                            r.perFaultUs().toString()));
        }
    }

    private static void chart(StringBuilder b, Chart c) {
        b.append("<figure id=\"").append(c.id()).append("\"><img alt=\"").append(esc(c.title())).append("\" src=\"data:image/png;base64,")
                .append(Base64.getEncoder().encodeToString(BenchCharts.png(c.chart()))).append("\"></figure>\n");
    }

    private static <T> void table(StringBuilder b, List<String> head, List<T> rows, Function<T, List<String>> cells) {
        b.append("<table><tr>");
        head.forEach(h -> b.append("<th>").append(esc(h)).append("</th>"));
        b.append("</tr>\n");
        for (T r : rows) {
            b.append("<tr>");
            cells.apply(r).forEach(c -> b.append("<td>").append(esc(c)).append("</td>"));
            b.append("</tr>\n");
        }
        b.append("</table>\n");
    }

    static String f0(double v) { return String.format(Locale.ROOT, "%,.0f", v); }
    static String f1(double v) { return String.format(Locale.ROOT, "%.1f", v); }
    static String f2(double v) { return String.format(Locale.ROOT, "%.2f", v); }
    static String s(Long v) { return v == null ? "" : v.toString(); }

    static String esc(String s) { return Markup.escape(s); }
}
