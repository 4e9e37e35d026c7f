package io.p2plab.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.bench.report.BenchData.*;
import io.p2plab.cli.Main;
import io.p2plab.util.Json;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * The bench report on outputs captured from real runs (src/test/resources/bench: scripts/qemu-bench.sh at
 * 5 sizes, controller/bench.sh 2000 x 3 rounds, scripts/bench-hmm.sh's hmm-bench.json, the svm-bench
 * scenario's guest-bench.stdout of both backends, scripts/suite-bench.sh one round), and on missing or broken ones.
 */
class BenchReportTest {
    static Path fixtures;

    @BeforeAll
    static void headless() throws Exception {
        System.setProperty("java.awt.headless", "true");
        fixtures = Path.of(BenchReportTest.class.getResource("/bench/dma.log").toURI()).getParent();
    }

    static Path copyFixtures(Path to) throws IOException {
        try (Stream<Path> s = Files.walk(fixtures)) {
            for (Path p : s.toList()) {
                Path t = to.resolve(fixtures.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(t);
                else Files.copy(p, t);
            }
        }
        return to;
    }

    @Test
    void dmaEverySizeAndPathNextToMemcpy() throws Exception {
        Dma d = BenchParsers.dma(fixtures.resolve("dma.log"));
        assertThat(d.rows()).hasSize(20);
        assertThat(d.rows().stream().map(DmaRow::path).distinct()).containsExactly("ram->device", "device->peer", "device->ram", "ram->ram");
        assertThat(d.rows().stream().map(DmaRow::bytes).distinct())
                .containsExactly(4096L, 65536L, 1L << 20, 16L << 20, 256L << 20);
        DmaRow r = d.rows().get(d.rows().size() - 3);   // device->peer 256 MiB
        assertThat(r.path()).isEqualTo("device->peer");
        assertThat(r.bytes()).isEqualTo(256L << 20);
        assertThat(r.deviceMBs()).isEqualTo(4093);
        assertThat(r.memcpyMBs()).isEqualTo(4290);
        assertThat(r.ratio()).isEqualTo(1.06);
        assertThat(r.rounds()).isEqualTo(7);
        assertThat(r.ratioMin()).isEqualTo(0.18);
        assertThat(r.ratioMax()).isEqualTo(1.81);
        assertThat(d.hostMemcpy()).hasSize(2);   // before and after, stand-alone
        assertThat(d.hostMemcpy().get(0).mbs()).isEqualTo(6414);
    }

    @Test
    void dmaOldSingleSizeFormatStillParses(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("dma.log");
        Files.writeString(f, "# bench ram->device   256 MiB: 1573 MB/s vs host memcpy 2415 MB/s = 0.64x (median of 9 rounds, range 0.11-4.31)\n");
        assertThat(BenchParsers.dma(f).rows()).singleElement().extracting(DmaRow::ratio).isEqualTo(0.64);
    }

    @Test
    void qmpTableWithPairedRatios() throws Exception {
        Qmp q = BenchParsers.qmp(fixtures.resolve("qmp.log"));
        assertThat(q.header()).startsWith("QEMU 10.0.13, 2000 query-status per batch");
        assertThat(q.rows()).hasSize(6);
        QmpRow java8 = q.rows().stream().filter(r -> r.client().equals("p2plab-java") && r.depth() == 8).findFirst().orElseThrow();
        assertThat(java8.medianPerS()).isEqualTo(5595);
        assertThat(java8.vsRaw()).isEqualTo(1.35);
        assertThat(java8.paired()).isEqualTo(1.50);
        // the per-batch lines above the table are not rows
        assertThat(q.rows().stream().map(QmpRow::count).distinct()).containsExactly(2000);
    }

    @Test
    void qmpEveryDepthOfMakeBench() throws Exception {
        // make bench's own run: QMP_DEPTHS="1 2 4 8 16", 10 rounds of 10000
        Qmp q = BenchParsers.qmp(fixtures.resolveSibling("bench-qmp-depths.log"));
        assertThat(q.rows()).hasSize(15);
        assertThat(q.rows().stream().map(QmpRow::depth).distinct()).containsExactly(1, 2, 4, 8, 16);
        assertThat(q.rows().stream().map(QmpRow::client).distinct()).containsExactly("raw-socket-python", "p2plab-java", "qemu.qmp-python");
        assertThat(q.rows()).allSatisfy(r -> assertThat(r.paired()).isNotNull());
        assertThat(BenchCharts.seriesNames(BenchCharts.qmpThroughput(q).chart()))
                .containsExactly("raw-socket-python", "p2plab-java", "qemu.qmp-python");
        assertThat(BenchCharts.seriesNames(BenchCharts.qmpRatio(q).chart())).containsExactly("p2plab-java", "qemu.qmp-python");
    }

    @Test
    void hmmRowsAndProfile() throws Exception {
        Hmm h = BenchParsers.hmm(fixtures.resolve("hmm/hmm-bench.json"));
        assertThat(h.rows()).extracting(HmmRow::kase).containsExactly("sys->dev THP", "sys->dev 4K", "dev->sys THP", "dev->sys 4K");
        assertThat(h.rows().get(0).ratio()).isCloseTo(10.08, within(0.01));
        assertThat(h.rounds()).containsEntry("test_hmm", 2).containsEntry("p2plab", 2);
        assertThat(h.profile()).extracting(HmmProfile::direction).containsExactly("to_dev", "to_sys");
        HmmProfile toSys = h.profile().get(1);
        assertThat(toSys.totalMs()).isEqualTo(11806);
        assertThat(toSys.copyAllocMs()).isEqualTo(6743);
        assertThat(toSys.phases()).hasSize(8);
        assertThat(toSys.phases().stream().mapToLong(HmmPhase::ms).sum()).isCloseTo(11806, within(10L));
    }

    @Test
    void svmBothBackends() throws Exception {
        Svm s = BenchParsers.svm(fixtures.resolve("svm"));
        assertThat(s.sources()).hasSize(2);
        assertThat(s.reads()).extracting(r -> r.backend() + " " + r.leaves())
                .containsExactly("gpusvm 4k", "gpusvm thp", "odp 4k", "odp thp");
        SvmRead odp4k = s.reads().get(2);
        assertThat(odp4k.firstTouchMBs()).isEqualTo(99.5);
        assertThat(odp4k.faults()).isEqualTo(128);
        assertThat(odp4k.mappedMBs()).isEqualTo(511.1);
        assertThat(odp4k.physicalMBs()).isEqualTo(3111.4);
        assertThat(odp4k.firstOverMapped()).isEqualTo(0.19);
        assertThat(odp4k.perFaultUs()).containsEntry("irq->replay", 913.4).containsEntry("device fault-to-fault", 14168.0);
        assertThat(s.faultRates()).extracting(SvmFaultRate::backend).containsExactly("gpusvm", "odp");
        assertThat(s.faultRates().get(1).faultsPerS()).isEqualTo(9222);
        assertThat(s.faultRates().get(1).perFaultUs()).containsKeys("irq->replay", "record->replay", "replay->next fault irq",
                "device fault-to-fault");
    }

    @Test
    void suiteRoundsRatioAndProfile() throws Exception {
        Suite s = BenchParsers.suite(fixtures.resolve("suite.log"));
        assertThat(s.jobs()).isEqualTo(2);
        assertThat(s.rounds()).extracting(SuiteRound::jobs).containsExactly(1, 2);
        assertThat(s.serialMedianS()).isEqualTo(105.9);
        assertThat(s.parallelMedianS()).isEqualTo(86.5);
        assertThat(s.ratio()).isCloseTo(105.9 / 86.5, within(1e-9));
        assertThat(s.profile()).extracting(SuitePhase::phase).containsExactly("qemu+fw", "kernel", "init", "topo", "steps", "end");
        assertThat(s.profile().get(1).seconds()).isEqualTo(37.2);
        assertThat(s.profile().get(1).percent()).isCloseTo(100 * 37.2 / 104.2, within(1e-9));
        assertThat(s.bootPercent()).isEqualTo(71.0);
        assertThat(s.header()).startsWith("suite bench: 10 cases");
    }

    @Test
    void reportHtmlChartsAndResultsJson(@TempDir Path tmp) throws Exception {
        Path dir = copyFixtures(tmp.resolve("bench"));
        assertThat(Main.execute("bench-report", dir.toString())).isEqualTo(0);

        String html = Files.readString(dir.resolve("report.html"));
        // self-contained: charts are embedded PNGs, nothing fetched
        assertThat(html).doesNotContain("<script", "src=\"http", "href=\"http");
        Matcher m = Pattern.compile("<figure id=\"([a-z-]+)\"><img alt=\"[^\"]*\" src=\"data:image/png;base64,([^\"]+)\"").matcher(html);
        List<String> ids = new java.util.ArrayList<>();
        while (m.find()) {
            ids.add(m.group(1));
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(m.group(2))));
            assertThat(img).as(m.group(1)).isNotNull();
            assertThat(img.getWidth()).isEqualTo(BenchCharts.W);
        }
        assertThat(ids).containsExactly("dma-bandwidth", "dma-ratio", "hmm-migration", "hmm-profile", "qmp-throughput",
                "qmp-ratio", "svm-read", "svm-fault-rate", "svm-fault-latency");
        assertThat(html).doesNotContain("class=\"err\"");
        assertThat(html).contains("DMA device-&gt;peer 256 MiB vs host memcpy", "HMM migration sys-&gt;dev 4K: p2plab / test_hmm",
                "QMP p2plab-java depth 8 / raw socket (paired)", "results.json",
                "Suite wall time, --jobs 1 / --jobs 2 (halve it)</td><td class=\"miss\">1.22x", "<td>kernel</td><td>37.2</td><td>36%</td>");

        JsonNode r = Json.MAPPER.readTree(dir.resolve("results.json").toFile());
        assertThat(r.get("schema").asText()).isEqualTo(BenchReport.SCHEMA);
        assertThat(r.get("parts").fieldNames()).toIterable().containsExactly("dma", "hmm", "qmp", "svm", "suite");
        assertThat(r.at("/parts/suite/data/ratio").asDouble()).isCloseTo(1.224, within(0.001));
        assertThat(r.at("/parts/dma/data/rows")).hasSize(20);
        assertThat(r.at("/parts/dma/data/rows/0/bytes").asLong()).isEqualTo(4096);
        assertThat(r.at("/parts/qmp/data/rows/3/paired").asDouble()).isEqualTo(1.50);
        assertThat(r.at("/parts/hmm/data/profile/1/copyAllocMs").asLong()).isEqualTo(6743);
        assertThat(r.at("/parts/svm/data/faultRates/1/faultsPerS").asDouble()).isEqualTo(9222);
        // each part's numbers beside its log
        for (String part : List.of("dma", "qmp", "svm", "suite")) {
            JsonNode one = Json.MAPPER.readTree(dir.resolve(part + ".json").toFile());
            assertThat(one.get("part").asText()).isEqualTo(part);
            assertThat(one.get("data")).isEqualTo(r.at("/parts/" + part + "/data"));
        }
    }

    @Test
    void missingPartsAreErrorsNamingTheFileNotEmptyCharts(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("bench"));
        Files.copy(fixtures.resolve("dma.log"), dir.resolve("dma.log"));
        assertThat(Main.execute("bench-report", dir.toString())).isEqualTo(1);

        JsonNode r = Json.MAPPER.readTree(dir.resolve("results.json").toFile());
        assertThat(r.at("/parts/dma/data/rows")).hasSize(20);
        assertThat(r.at("/parts/qmp/data").isMissingNode()).isTrue();
        assertThat(r.at("/parts/qmp/error").asText()).isEqualTo(dir.resolve("qmp.log") + ": missing (the part did not run, or wrote elsewhere)");
        assertThat(r.at("/parts/hmm/error").asText()).startsWith(dir.resolve("hmm/hmm-bench.json") + ": missing");
        assertThat(r.at("/parts/svm/error").asText()).startsWith(dir.resolve("svm") + ": missing");
        assertThat(r.at("/parts/suite/error").asText()).startsWith(dir.resolve("suite.log") + ": missing");
        String html = Files.readString(dir.resolve("report.html"));
        assertThat(html).contains("<div class=\"err\">no data: " + dir.resolve("qmp.log") + ": missing");
        assertThat(html).contains("id=\"dma-bandwidth\"").doesNotContain("id=\"qmp-throughput\"", "id=\"hmm-migration\"", "id=\"svm-read\"");
    }

    @Test
    void onlySelectsParts(@TempDir Path tmp) throws Exception {
        Path dir = copyFixtures(tmp.resolve("bench"));
        assertThat(Main.execute("bench-report", "--only", "qmp,svm", dir.toString())).isEqualTo(0);
        JsonNode r = Json.MAPPER.readTree(dir.resolve("results.json").toFile());
        assertThat(r.get("parts").fieldNames()).toIterable().containsExactly("qmp", "svm");
    }

    @Test
    void brokenOutputsNameTheFile(@TempDir Path tmp) throws Exception {
        Path dma = tmp.resolve("dma.log");
        Files.writeString(dma, "# bench host-memcpy    256 MiB in 0.042 s = 6414 MB/s (best of 5)\n");
        assertThatThrownBy(() -> BenchParsers.dma(dma)).isInstanceOf(BenchReportException.class)
                .hasMessageStartingWith(dma + ": no \"# bench PATH SIZE");
        Files.writeString(dma, "# bench ram->device   4 KiB at 938 MB/s (first touch)\nnot ok 1 /x86_64/p2plab/bench\n");
        assertThatThrownBy(() -> BenchParsers.dma(dma)).hasMessage(dma + ": the DMA bench failed: not ok 1 /x86_64/p2plab/bench");

        // the QMP bench stopped before its table (only the per-batch lines)
        Path qmp = tmp.resolve("qmp.log");
        List<String> lines = Files.readAllLines(fixtures.resolve("qmp.log"));
        Files.write(qmp, lines.subList(0, 10));
        assertThatThrownBy(() -> BenchParsers.qmp(qmp)).hasMessageStartingWith(qmp + ": no summary table");
        Files.write(qmp, lines.stream().filter(l -> !l.startsWith("raw-socket")).toList());
        assertThatThrownBy(() -> BenchParsers.qmp(qmp)).hasMessageStartingWith(qmp + ": the QMP summary table has no raw-socket row");

        Path hmm = tmp.resolve("hmm-bench.json");
        Files.writeString(hmm, "HMM migration, 256 MiB ...\n");
        assertThatThrownBy(() -> BenchParsers.hmm(hmm)).hasMessageStartingWith(hmm + ": not JSON");
        Files.writeString(hmm, "{\"rows\": []}");
        assertThatThrownBy(() -> BenchParsers.hmm(hmm)).hasMessageStartingWith(hmm + ": no \"rows\"");
        Files.writeString(hmm, "{\"rows\": [{\"case\": \"sys->dev THP\", \"test_hmm_mib_s\": 1}]}");
        assertThatThrownBy(() -> BenchParsers.hmm(hmm)).hasMessageStartingWith(hmm + ": a row lacks \"p2plab_mib_s\"");

        Path suite = tmp.resolve("suite.log");
        Files.writeString(suite, "suite bench: 10 cases\n");
        assertThatThrownBy(() -> BenchParsers.suite(suite)).hasMessageStartingWith(suite + ": no \"round R jobs J wall S s");
        Files.writeString(suite, "round 1 jobs 1 wall 100.0 s passed 10 failed 0 load 1\n");
        assertThatThrownBy(() -> BenchParsers.suite(suite)).hasMessage(suite + ": only --jobs 1 rounds: nothing to compare with");
        Files.writeString(suite, "round 1 jobs 1 wall 100.0 s passed 10 failed 0\nround 1 jobs 2 wall 50.0 s passed 9 failed 1\n");
        assertThatThrownBy(() -> BenchParsers.suite(suite)).hasMessageStartingWith(suite + ": round 1 (--jobs 2) had 1 failed case(s)");
        Files.writeString(suite, "round 1 jobs 1 wall 100.0 s passed 10 failed 0\nround 2 jobs 2 wall 50.0 s passed 10 failed 0\n");
        assertThatThrownBy(() -> BenchParsers.suite(suite)).hasMessage(suite + ": no round with both --jobs 1 and --jobs 2");

        Path svm = Files.createDirectories(tmp.resolve("svm/svm-bench_backend=odp_"));
        assertThatThrownBy(() -> BenchParsers.svm(svm.getParent())).hasMessageStartingWith(svm.getParent() + ": no guest-bench.stdout");
        Path out = svm.resolve("guest-bench.stdout");
        Files.writeString(out, "TAP version 13\n1..3\nnot ok 1 svm.odp.bench_4k\n");
        assertThatThrownBy(() -> BenchParsers.svm(svm.getParent())).hasMessageStartingWith(out + ": no \"# bench 4k|thp");
    }
}
