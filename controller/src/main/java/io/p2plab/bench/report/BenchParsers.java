package io.p2plab.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.bench.report.BenchData.*;
import io.p2plab.util.Json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Parsers of the bench parts' outputs. Each one either returns at least one row or throws a
 * {@link BenchReportException} naming the file and what was missing: a part that printed nothing usable
 * is an error in the report, never an empty chart.
 */
public final class BenchParsers {
    private BenchParsers() {}

    static final String NUM = "([0-9]+(?:\\.[0-9]+)?)";
    // # bench ram->device   256 MiB: 1573 MB/s vs host memcpy 2415 MB/s = 0.64x (median of 9 rounds, range 0.11-4.31)
    private static final Pattern DMA = Pattern.compile("^# bench (\\S+)\\s+(\\d+) (B|KiB|MiB|GiB): " + NUM
            + " MB/s vs host memcpy " + NUM + " MB/s = " + NUM + "x \\(median of (\\d+) rounds?, range " + NUM + "-" + NUM + "\\)");
    // # bench host-memcpy    256 MiB in 0.030 s = 8900 MB/s (best of 5)
    private static final Pattern HOST = Pattern.compile("^# bench host-memcpy\\s+(\\d+) (B|KiB|MiB|GiB) in " + NUM
            + " s = " + NUM + " MB/s \\(best of (\\d+)\\)");
    // p2plab-java            1   2000      9497    9127    9858   0.82x   0.80x   ("paired" column optional)
    private static final Pattern QMP = Pattern.compile("^(\\S+)\\s+(\\d+)\\s+(\\d+)\\s+" + NUM + "\\s+" + NUM + "\\s+" + NUM
            + "\\s+" + NUM + "x(?:\\s+" + NUM + "x)?\\s*$");
    private static final Pattern SVM_RUN = Pattern.compile("^#\\s+RUN\\s+svm\\.([\\w-]+)\\.(bench_\\w+)");
    // # bench 4k 256 MiB: first-touch 238.7 MB/s (1.073 s, 128 faults, 0 2M + 65536 4K leaves), mapped 1258.9 MB/s,
    //   physical 2563.2 MB/s, first/mapped 0.19; per fault (median of 64): irq->replay 538.0 us, ...
    private static final Pattern SVM_READ = Pattern.compile("^# bench (\\w+) (\\d+) MiB: first-touch " + NUM + " MB/s \\(" + NUM
            + " s, (\\d+) faults,[^)]*\\), mapped " + NUM + " MB/s, physical " + NUM + " MB/s, first/mapped " + NUM + "(.*)$");
    // # bench fault-rate: 64 one-page faults in 0.007 s = 8643 faults/s; per fault (median of 64): ...
    private static final Pattern SVM_RATE = Pattern.compile("^# bench fault-rate: (\\d+) one-page faults in " + NUM + " s = "
            + NUM + " faults/s(.*)$");
    private static final Pattern PER_FAULT = Pattern.compile("([a-z][a-z >\\-]*?) " + NUM + " us");

    private static final Pattern SUITE_ROUND = Pattern.compile("^round (\\d+) jobs (\\d+) wall " + NUM + " s passed (\\d+) failed (\\d+)");
    private static final Pattern SUITE_BOOT = Pattern.compile("^boot to ready .*\\((\\d+)%\\)");

    static String read(Path f) throws BenchReportException {
        if (!Files.isRegularFile(f)) throw new BenchReportException(f, "missing (the part did not run, or wrote elsewhere)");
        try {
            return Files.readString(f, StandardCharsets.UTF_8);
        } catch (IOException | java.io.UncheckedIOException e) {
            try {
                return new String(Files.readAllBytes(f), StandardCharsets.ISO_8859_1);
            } catch (IOException e2) {
                throw new BenchReportException(f, "unreadable: " + e2.getMessage());
            }
        }
    }

    static long bytes(String n, String unit) {
        long v = Long.parseLong(n);
        return switch (unit) {
            case "KiB" -> v << 10;
            case "MiB" -> v << 20;
            case "GiB" -> v << 30;
            default -> v;
        };
    }

    static double d(String s) { return Double.parseDouble(s); }

    /** scripts/qemu-bench.sh output (dma.log): the "# bench PATH SIZE: ... vs host memcpy ..." lines. */
    public static Dma dma(Path f) throws BenchReportException {
        List<DmaRow> rows = new ArrayList<>();
        List<HostMemcpy> host = new ArrayList<>();
        for (String line : read(f).split("\n")) {
            line = line.strip();
            Matcher m = DMA.matcher(line);
            if (m.find()) {
                rows.add(new DmaRow(m.group(1), bytes(m.group(2), m.group(3)), d(m.group(4)), d(m.group(5)), d(m.group(6)),
                        Integer.parseInt(m.group(7)), d(m.group(8)), d(m.group(9))));
                continue;
            }
            m = HOST.matcher(line);
            if (m.find()) host.add(new HostMemcpy(bytes(m.group(1), m.group(2)), d(m.group(4)), Integer.parseInt(m.group(5))));
            else if (line.startsWith("not ok") || line.contains("ERROR"))
                throw new BenchReportException(f, "the DMA bench failed: " + line);
        }
        if (rows.isEmpty())
            throw new BenchReportException(f, "no \"# bench PATH SIZE: N MB/s vs host memcpy N MB/s = Rx (median of N rounds, ...)\" line");
        return new Dma(rows, host);
    }

    /** controller/bench.sh output (qmp.log): the summary table (client, depth, count, median/s, min, max, vs raw[, paired]). */
    public static Qmp qmp(Path f) throws BenchReportException {
        List<QmpRow> rows = new ArrayList<>();
        String header = null;
        boolean table = false;
        for (String line : read(f).split("\n")) {
            if (header == null && line.startsWith("QEMU ")) header = line.strip();
            if (line.startsWith("client ")) { table = true; rows.clear(); continue; }
            if (!table) continue;
            Matcher m = QMP.matcher(line.strip());
            if (m.find())
                rows.add(new QmpRow(m.group(1), Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)), d(m.group(4)),
                        d(m.group(5)), d(m.group(6)), d(m.group(7)), m.group(8) == null ? null : d(m.group(8))));
        }
        if (!table) throw new BenchReportException(f, "no summary table (a \"client depth count median/s ...\" header): the QMP bench did not finish");
        if (rows.isEmpty()) throw new BenchReportException(f, "the QMP summary table has no rows");
        if (rows.stream().noneMatch(r -> r.client().startsWith("raw-socket")))
            throw new BenchReportException(f, "the QMP summary table has no raw-socket row (the reference of every ratio)");
        return new Qmp(header, rows);
    }

    /** hmm-bench.json written by scripts/bench-hmm.sh. */
    public static Hmm hmm(Path f) throws BenchReportException {
        JsonNode n;
        try {
            n = Json.MAPPER.readTree(read(f));
        } catch (IOException e) {
            throw new BenchReportException(f, "not JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        JsonNode rowsN = n.path("rows");
        if (!rowsN.isArray() || rowsN.isEmpty()) throw new BenchReportException(f, "no \"rows\" (p2plab vs test_hmm cases)");
        List<HmmRow> rows = new ArrayList<>();
        for (JsonNode r : rowsN) {
            for (String k : List.of("case", "test_hmm_mib_s", "p2plab_mib_s", "ratio"))
                if (!r.hasNonNull(k)) throw new BenchReportException(f, "a row lacks \"" + k + "\": " + Json.compact(r));
            rows.add(new HmmRow(r.get("case").asText(), r.path("direction").asText(""), r.path("pages").asText(""),
                    r.get("test_hmm_mib_s").asDouble(), r.get("p2plab_mib_s").asDouble(), r.get("ratio").asDouble(),
                    r.hasNonNull("paired_ratio") ? r.get("paired_ratio").asDouble() : null));
        }
        Map<String, Integer> rounds = new LinkedHashMap<>();
        n.path("rounds").fields().forEachRemaining(e -> rounds.put(e.getKey(), e.getValue().asInt()));
        List<HmmProfile> prof = new ArrayList<>();
        for (JsonNode p : n.path("profile")) {
            List<HmmPhase> phases = new ArrayList<>();
            for (JsonNode ph : p.path("phases")) phases.add(new HmmPhase(ph.path("phase").asText(), ph.path("ms").asLong(), ph.path("percent").asInt()));
            prof.add(new HmmProfile(p.path("direction").asText(), lng(p, "total_ms"), lng(p, "copy_dma_ms"), lng(p, "copy_alloc_ms"), phases));
        }
        return new Hmm(rounds, rows, n.path("geomean_ratio").asDouble(Double.NaN), prof);
    }

    private static Long lng(JsonNode n, String k) { return n.hasNonNull(k) ? n.get(k).asLong() : null; }

    /** scripts/suite-bench.sh output: interleaved --jobs 1 / --jobs J rounds and the profile of the first. */
    public static Suite suite(Path f) throws BenchReportException {
        String header = null;
        List<SuiteRound> rounds = new ArrayList<>();
        List<SuitePhase> profile = new ArrayList<>();
        List<String> phases = null;
        Double boot = null;
        for (String raw : read(f).split("\n")) {
            String line = raw.strip();
            if (header == null && line.startsWith("suite bench:")) header = line;
            Matcher m = SUITE_ROUND.matcher(line);
            if (m.find()) {
                rounds.add(new SuiteRound(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), d(m.group(3)),
                        Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5))));
                continue;
            }
            if (line.startsWith("case ") && line.contains("qemu+fw")) {
                phases = List.of(line.replace("(seconds)", "").trim().split("\\s+"));
                continue;
            }
            if (phases != null && line.startsWith("all ") && line.contains(" cases ")) {
                String[] v = line.substring(line.indexOf(" cases ") + 7).trim().split("\\s+");
                double total = d(v[v.length - 1]);
                for (int i = 1; i < phases.size() - 1 && i - 1 < v.length - 1; i++)
                    profile.add(new SuitePhase(phases.get(i), d(v[i - 1]), total > 0 ? 100 * d(v[i - 1]) / total : 0));
                continue;
            }
            m = SUITE_BOOT.matcher(line);
            if (m.find()) boot = d(m.group(1));
        }
        if (rounds.isEmpty()) throw new BenchReportException(f, "no \"round R jobs J wall S s ...\" line: the suite bench did not finish a round");
        int jobs = rounds.stream().mapToInt(SuiteRound::jobs).max().orElse(1);
        if (jobs == 1) throw new BenchReportException(f, "only --jobs 1 rounds: nothing to compare with");
        List<Double> serial = new ArrayList<>(), parallel = new ArrayList<>(), paired = new ArrayList<>();
        java.util.Map<Integer, Double> serialOf = new java.util.HashMap<>();
        for (SuiteRound r : rounds) {
            if (r.failed() > 0) throw new BenchReportException(f, "round " + r.round() + " (--jobs " + r.jobs() + ") had " + r.failed()
                    + " failed case(s): its time is not the suite's (see its log in the artefacts)");
            if (r.jobs() == 1) { serial.add(r.wallS()); serialOf.put(r.round(), r.wallS()); }
            else parallel.add(r.wallS());
        }
        for (SuiteRound r : rounds)
            if (r.jobs() == jobs && serialOf.containsKey(r.round())) paired.add(serialOf.get(r.round()) / r.wallS());
        if (serial.isEmpty() || paired.isEmpty()) throw new BenchReportException(f, "no round with both --jobs 1 and --jobs " + jobs);
        return new Suite(header, jobs, rounds, median(serial), median(parallel), median(paired), paired, profile, boot);
    }

    static double median(List<Double> v) {
        List<Double> s = v.stream().sorted().toList();
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    /** The svm-bench scenario's guest-bench.stdout files under DIR (one per backend), or one such file. */
    public static Svm svm(Path dirOrFile) throws BenchReportException {
        List<Path> files;
        if (Files.isDirectory(dirOrFile)) {
            try (Stream<Path> s = Files.walk(dirOrFile)) {
                files = s.filter(p -> p.getFileName().toString().equals("guest-bench.stdout")).sorted().toList();
            } catch (IOException e) {
                throw new BenchReportException(dirOrFile, "unreadable: " + e.getMessage());
            }
            if (files.isEmpty())
                throw new BenchReportException(dirOrFile, "no guest-bench.stdout below it (the svm-bench scenario did not get to its bench step)");
        } else {
            files = List.of(dirOrFile);
        }
        List<SvmRead> reads = new ArrayList<>();
        List<SvmFaultRate> rates = new ArrayList<>();
        List<String> sources = new ArrayList<>();
        for (Path f : files) {
            int before = reads.size() + rates.size();
            String backend = null;
            for (String line : read(f).split("\n")) {
                line = line.strip();
                Matcher m = SVM_RUN.matcher(line);
                if (m.find()) { backend = m.group(1); continue; }
                m = SVM_READ.matcher(line);
                if (m.find()) {
                    reads.add(new SvmRead(need(backend, f), m.group(1), Integer.parseInt(m.group(2)), d(m.group(3)), d(m.group(4)),
                            Integer.parseInt(m.group(5)), d(m.group(6)), d(m.group(7)), d(m.group(8)), perFault(m.group(9))));
                    continue;
                }
                m = SVM_RATE.matcher(line);
                if (m.find())
                    rates.add(new SvmFaultRate(need(backend, f), Integer.parseInt(m.group(1)), d(m.group(2)), d(m.group(3)), perFault(m.group(4))));
            }
            if (reads.size() + rates.size() == before)
                throw new BenchReportException(f, "no \"# bench 4k|thp N MiB: first-touch ...\" or \"# bench fault-rate: ...\" line");
            sources.add(f.toString());
        }
        return new Svm(reads, rates, sources);
    }

    private static String need(String backend, Path f) throws BenchReportException {
        if (backend == null) throw new BenchReportException(f, "a bench line before any \"#  RUN svm.BACKEND.bench_...\" line");
        return backend;
    }

    /** "; per fault (median of 64): irq->replay 538.0 us, record->replay 365.4 us, ..." -> {irq->replay: 538.0, ...} */
    static Map<String, Double> perFault(String tail) {
        Map<String, Double> m = new LinkedHashMap<>();
        int i = tail.indexOf("):");
        if (i < 0) return m;
        for (String part : tail.substring(i + 2).split(",")) {
            Matcher pm = PER_FAULT.matcher(part.strip());
            if (pm.matches()) m.put(pm.group(1).strip(), d(pm.group(2)));
        }
        return m;
    }

    static String size(long bytes) {
        if (bytes >= 1L << 30 && bytes % (1L << 30) == 0) return (bytes >> 30) + " GiB";
        if (bytes >= 1L << 20 && bytes % (1L << 20) == 0) return (bytes >> 20) + " MiB";
        if (bytes >= 1L << 10 && bytes % (1L << 10) == 0) return (bytes >> 10) + " KiB";
        return String.format(Locale.ROOT, "%d B", bytes);
    }
}
