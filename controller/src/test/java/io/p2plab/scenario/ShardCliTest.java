package io.p2plab.scenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** `run --shard K/N --durations`, `merge-junit` and report.html through the command line. */
class ShardCliTest {
    @TempDir
    Path tmp;

    Path scenario() throws Exception {
        Path f = tmp.resolve("s.yaml");
        Files.writeString(f, "name: s\nmatrix:\n  n: [a, b, c, d, long]\nsteps:\n  - sleep: 0\n");
        return f;
    }

    static List<String> lines(String s) {
        return Arrays.stream(s.split("\n")).filter(l -> !l.isBlank()).toList();
    }

    @Test
    void durationsBalanceTheShards() throws Exception {
        Path f = scenario();
        Path prev = tmp.resolve("prev.xml");
        Files.writeString(prev, """
                <testsuites><testsuite name="s">
                <testcase name="s[n=a]" time="10"/><testcase name="s[n=b]" time="10"/><testcase name="s[n=c]" time="10"/>
                <testcase name="s[n=d]" time="10"/><testcase name="s[n=long]" time="300"/>
                </testsuite></testsuites>""");
        var r1 = EngineRealQemuTest.main("run", "--list", "--shard", "1/2", "--durations", prev.toString(), f.toString());
        var r2 = EngineRealQemuTest.main("run", "--list", "--shard", "2/2", "--durations", prev.toString(), f.toString());
        assertThat(r1.rc()).as(r1.err()).isZero();
        assertThat(lines(r1.out())).containsExactly("s[n=long]");
        assertThat(lines(r2.out())).containsExactly("s[n=a]", "s[n=b]", "s[n=c]", "s[n=d]");
        assertThat(r1.err()).contains("shard 1/2 balanced by", "estimated 300 s", "[300, 40]");
        // without durations: name order round robin (s[n=long] lands with two others)
        var rr = EngineRealQemuTest.main("run", "--list", "--shard", "2/2", f.toString());
        assertThat(lines(rr.out())).containsExactly("s[n=b]", "s[n=d]");
    }

    @Test
    void malformedDurationsFileIsAUsageError() throws Exception {
        Path f = scenario();
        Path bad = tmp.resolve("bad.xml");
        Files.writeString(bad, "<testsuites><testcase name=\"x\"");
        var r = EngineRealQemuTest.main("run", "--list", "--shard", "1/2", "--durations", bad.toString(), f.toString());
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("error: --durations:", "bad.xml");
        assertThat(r.out()).isEmpty();
    }

    @Test
    void shardRunsMergeIntoOneJunitAndEachRunWritesReportHtml() throws Exception {
        Path f = scenario();
        for (int k = 1; k <= 2; k++) {
            var r = EngineRealQemuTest.main("run", "--shard", k + "/2", "--out", tmp.resolve("out" + k).toString(),
                    "--junit", tmp.resolve("shard" + k + "/junit.xml").toString(), f.toString());
            assertThat(r.rc()).as(r.err()).isZero();
            // next to the JUnit XML and in the artefact dir
            assertThat(tmp.resolve("shard" + k + "/report.html")).exists();
            assertThat(tmp.resolve("out" + k + "/report.html")).exists();
        }
        String html = Files.readString(tmp.resolve("shard1/report.html"));
        assertThat(html).contains("s[n=a]", "PASSED", "href=\"../out1/s_n%3Da_/steps.log\"");
        Path merged = tmp.resolve("merged.xml");
        var m = EngineRealQemuTest.main("merge-junit", merged.toString(), tmp.resolve("shard1/junit.xml").toString(),
                tmp.resolve("shard2/junit.xml").toString());
        assertThat(m.rc()).as(m.err()).isZero();
        assertThat(m.out()).contains("5 cases from 2 files: 5 passed, 0 failed, 0 skipped");
        assertThat(JunitXml.cases(merged)).extracting(JunitXml.TestCase::name)
                .containsExactly("s[n=a]", "s[n=b]", "s[n=c]", "s[n=d]", "s[n=long]");
        // the same shard twice: refused, nothing written
        Path again = tmp.resolve("again.xml");
        var dup = EngineRealQemuTest.main("merge-junit", again.toString(), tmp.resolve("shard1/junit.xml").toString(),
                tmp.resolve("shard1/junit.xml").toString());
        assertThat(dup.rc()).isEqualTo(2);
        assertThat(dup.err()).contains("error:", "shards must be disjoint");
        assertThat(again).doesNotExist();
        var none = EngineRealQemuTest.main("merge-junit", again.toString(), tmp.resolve("nope.xml").toString());
        assertThat(none.rc()).isEqualTo(2);
        assertThat(none.err()).contains("nope.xml: no such file");
    }
}
