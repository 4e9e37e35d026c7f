package io.p2plab.scenario;

import io.p2plab.spec.SpecException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class JunitXmlTest {
    @TempDir
    Path tmp;

    static final String SHARD1 = """
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuites>
              <testsuite name="p2p-acs" tests="1" failures="1" errors="0" skipped="0" time="95.000">
                <testcase classname="p2plab.p2p-acs" name="p2p-acs[cpu=intel]" time="95.000">
                  <failure message="step 3: exit code 1">step 3: exit code 1&#10;&#10;[ 1.0] console &lt;tail&gt;</failure>
                  <system-out>artifacts: /x/p2p-acs_cpu=intel_</system-out>
                </testcase>
              </testsuite>
              <testsuite name="hmm-tests" tests="1" failures="0" errors="0" skipped="0" time="231.500">
                <testcase classname="p2plab.hmm-tests" name="hmm-tests" time="231.500"/>
              </testsuite>
            </testsuites>
            """;
    static final String SHARD2 = """
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuites>
              <testsuite name="p2p-acs" tests="2" failures="0" errors="0" skipped="1" time="88.250">
                <testcase classname="p2plab.p2p-acs" name="p2p-acs[cpu=amd]" time="88.250"/>
                <testcase classname="p2plab.p2p-acs" name="p2p-acs[cpu=arm]" time="0.000">
                  <skipped message="skipped: no such cpu"/>
                </testcase>
              </testsuite>
            </testsuites>
            """;

    Path write(String name, String content) throws Exception {
        Path p = tmp.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, content);
        return p;
    }

    @Test
    void durationsByCaseName() throws Exception {
        Map<String, Double> d = JunitXml.durations(List.of(write("a/junit.xml", SHARD1), write("b/junit.xml", SHARD2)));
        assertThat(d).containsExactlyInAnyOrderEntriesOf(Map.of("p2p-acs[cpu=intel]", 95.0, "hmm-tests", 231.5,
                "p2p-acs[cpu=amd]", 88.25, "p2p-acs[cpu=arm]", 0.0));
        // a lone <testsuite> root (other tools write that) works too
        Path lone = write("lone.xml", "<testsuite name=\"x\"><testcase name=\"t1\" time=\"2.5\"/></testsuite>");
        assertThat(JunitXml.durations(List.of(lone))).containsExactly(Map.entry("t1", 2.5));
    }

    @Test
    void ourOwnJunitOutputReadsBack() throws Exception {
        Path f = tmp.resolve("s.yaml");
        Files.writeString(f, "name: s\nmatrix:\n  n: [a, b]\nsteps:\n  - sleep: 0\n");
        List<Scenario.Case> cs = Scenario.load(f);
        Path junit = tmp.resolve("junit.xml");
        Reports.junit(List.of(
                new CaseResult(cs.get(0), CaseResult.Status.PASSED, null, null, Duration.ofMillis(12_345), tmp),
                new CaseResult(cs.get(1), CaseResult.Status.FAILED, "boom <&>", "console\ttail", Duration.ofMillis(500), tmp)), junit);
        assertThat(JunitXml.durations(List.of(junit))).containsExactly(Map.entry("s[n=a]", 12.345), Map.entry("s[n=b]", 0.5));
        assertThat(JunitXml.cases(junit)).extracting(JunitXml.TestCase::status).containsExactly("passed", "failure");
    }

    @Test
    void malformedInputIsAClearError() throws Exception {
        assertThatThrownBy(() -> JunitXml.durations(List.of(write("trunc.xml", SHARD1.substring(0, 300)))))
                .isInstanceOf(SpecException.class).hasMessageContaining("trunc.xml:").hasMessageContaining("not well-formed XML");
        assertThatThrownBy(() -> JunitXml.durations(List.of(write("empty.xml", ""))))
                .isInstanceOf(SpecException.class).hasMessageContaining("empty.xml: empty file");
        assertThatThrownBy(() -> JunitXml.durations(List.of(write("html.xml", "<html><body/></html>"))))
                .isInstanceOf(SpecException.class).hasMessageContaining("root element is <html>");
        assertThatThrownBy(() -> JunitXml.durations(List.of(write("t.xml", "<testsuites><testsuite><testcase name=\"x\" time=\"fast\"/></testsuite></testsuites>"))))
                .isInstanceOf(SpecException.class).hasMessageContaining("bad time attribute 'fast'");
        assertThatThrownBy(() -> JunitXml.durations(List.of(write("n.xml", "<testsuite><testcase time=\"1\"/></testsuite>"))))
                .isInstanceOf(SpecException.class).hasMessageContaining("has no name");
        assertThatThrownBy(() -> JunitXml.durations(List.of(tmp.resolve("missing.xml"))))
                .isInstanceOf(SpecException.class).hasMessageContaining("missing.xml: no such file");
        // no external entity is fetched or expanded
        assertThatThrownBy(() -> JunitXml.durations(List.of(write("xxe.xml",
                "<?xml version=\"1.0\"?><!DOCTYPE t [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><testsuite><testcase name=\"&e;\"/></testsuite>"))))
                .isInstanceOf(SpecException.class).hasMessageContaining("xxe.xml");
    }

    @Test
    void mergeJoinsSuitesRecountsAndIsIndependentOfShardOrder() throws Exception {
        Path a = write("shard1/junit.xml", SHARD1), b = write("shard2/junit.xml", SHARD2);
        Path m1 = tmp.resolve("m1.xml"), m2 = tmp.resolve("m2.xml");
        List<JunitXml.TestCase> cs = JunitXml.merge(List.of(a, b), m1);
        JunitXml.merge(List.of(b, a), m2);
        assertThat(cs).hasSize(4);
        assertThat(Files.readString(m1)).isEqualTo(Files.readString(m2));
        String x = Files.readString(m1);
        // one p2p-acs suite with the three cases, counts recomputed
        List<JunitXml.TestCase> merged = JunitXml.cases(m1);
        assertThat(merged).extracting(JunitXml.TestCase::name)
                .containsExactly("hmm-tests", "p2p-acs[cpu=amd]", "p2p-acs[cpu=arm]", "p2p-acs[cpu=intel]");
        assertThat(merged).extracting(JunitXml.TestCase::suite).containsExactly("hmm-tests", "p2p-acs", "p2p-acs", "p2p-acs");
        assertThat(x).containsOnlyOnce("name=\"p2p-acs\"");
        assertThat(x).contains("failures=\"1\"", "skipped=\"1\"", "tests=\"3\"", "time=\"183.250\"");
        assertThat(x).containsPattern("<testsuites[^>]* tests=\"4\"").containsPattern("<testsuites[^>]* time=\"414.750\"");
        // failure text and system-out survive
        assertThat(x).contains("step 3: exit code 1", "console &lt;tail&gt;", "artifacts: /x/p2p-acs_cpu=intel_");
        assertThat(merged.get(3).status()).isEqualTo("failure");
    }

    @Test
    void mergeRefusesACaseInTwoShardsAndBadFiles() throws Exception {
        Path a = write("s1.xml", SHARD1), dup = write("s2.xml", SHARD1.replace("hmm-tests\" time=\"231.500\"/>", "x\"/>"));
        Path out = tmp.resolve("out.xml");
        assertThatThrownBy(() -> JunitXml.merge(List.of(a, dup), out)).isInstanceOf(SpecException.class)
                .hasMessageContaining("p2p-acs[cpu=intel]").hasMessageContaining("also in").hasMessageContaining("s1.xml");
        assertThat(out).doesNotExist();
        Path bad = write("bad.xml", "<testsuites><testsuite>");
        assertThatThrownBy(() -> JunitXml.merge(List.of(a, bad), out)).hasMessageContaining("bad.xml");
        assertThat(out).doesNotExist();
    }
}
