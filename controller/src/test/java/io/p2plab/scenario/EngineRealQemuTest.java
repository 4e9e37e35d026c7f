package io.p2plab.scenario;

import io.p2plab.cli.Main;
import io.p2plab.vm.ProcessRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** The scenario engine end to end against real QEMU (no guest needed). */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EngineRealQemuTest {
    @TempDir
    Path tmp;

    record Run(int rc, String out, String err) {}

    static Run main(String... args) {
        PrintStream o = System.out, e = System.err;
        ByteArrayOutputStream ob = new ByteArrayOutputStream(), eb = new ByteArrayOutputStream();
        System.setOut(new PrintStream(ob, true));
        System.setErr(new PrintStream(eb, true));
        try {
            int rc = Main.execute(args);
            return new Run(rc, ob.toString(), eb.toString());
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
    }

    /** A case that outlives its 2 s timeout in step 2 (a 30 s sleep). */
    static Path slowCase(Path dir, String name) throws java.io.IOException {
        Path f = dir.resolve(name + ".yaml");
        Files.writeString(f, """
                name: %s
                machine: {type: none}
                timeout: 2
                steps:
                  - qmp: query-status
                  - sleep: 30
                """.formatted(name));
        return f;
    }

    static long qemuChildren() {
        return ProcessHandle.current().descendants().filter(ProcessHandle::isAlive)
                .filter(p -> p.info().command().orElse("").contains("qemu")).count();
    }

    @Test
    void passingScenarioWithMatrixWritesArtifactsAndJUnit() throws Exception {
        Path out = tmp.resolve("out");
        Path junit = tmp.resolve("junit.xml");
        Run r = main("run", "--out", out.toString(), "--junit", junit.toString(),
                "src/test/resources/scenarios/qemu-basics.yaml");
        assertThat(r.rc()).as(r.err()).isZero();
        assertThat(r.out()).contains("qemu-basics[mem=small]", "PASSED", "2 passed, 0 failed, 0 skipped");
        assertThat(r.err()).contains("step 7 hotplug virtserialport id=port0", "ok (");
        String xml = Files.readString(junit);
        assertThat(xml).contains("tests=\"2\" failures=\"0\"", "name=\"qemu-basics[mem=large]\"");
        Path caseDir = out.resolve("qemu-basics_mem=small_");
        assertThat(caseDir.resolve("qmp-transcript.log")).exists();
        assertThat(Files.readString(caseDir.resolve("qmp-transcript.log")))
                .contains("greeting", "> {\"execute\":\"device_add\"", "DEVICE_DELETED");
        assertThat(Files.readString(caseDir.resolve("qemu-cmdline.txt"))).contains("-machine q35", "-m 128M");
        assertThat(Files.readString(caseDir.resolve("steps.log"))).contains("result: passed");
        assertThat(qemuChildren()).isZero();
        assertThat(ProcessRegistry.live()).isZero();
    }

    @Test
    void failingCasesExitOneWithLocatedMessagesAndXfailSkipHonoured() throws Exception {
        Path f = tmp.resolve("fail.yaml");
        Files.writeString(f, """
                name: failing
                machine: {type: none}
                matrix:
                  mode: [wrong, xfail, skip]
                expect-fail: [{mode: xfail}]
                skip-if: [{mode: skip}]
                steps:
                  - qmp: {execute: query-status, expect: {status: "${mode}"}}
                """);
        Path junit = tmp.resolve("j.xml");
        Run r = main("run", "--out", tmp.resolve("o").toString(), "--junit", junit.toString(), f.toString());
        assertThat(r.rc()).isEqualTo(1);
        assertThat(r.out()).contains("failing[mode=wrong]", "FAILED", "XFAIL", "SKIPPED", "1 passed, 1 failed, 1 skipped");
        String xml = Files.readString(junit);
        assertThat(xml).contains("<failure message=\"step 1 (" + f + ":8:5) qmp query-status: query-status: return.status: expected &quot;wrong&quot;, got &quot;running&quot;\"");
        assertThat(xml).contains("<skipped");
        assertThat(qemuChildren()).isZero();
    }

    /** A pattern that overflows java.util.regex's recursion fails its case, not the run. */
    @Test
    void aRegexThatOverflowsTheStackFailsItsCaseOnly() throws Exception {
        Path f = tmp.resolve("overflow.yaml");
        Files.writeString(f, """
                name: overflow
                machine: {type: none}
                matrix:
                  n: [one, two]
                steps:
                  - hmp: {command: "help", expect: '(.|\\s)*no-such-text'}
                """);
        Run r = main("run", "--out", tmp.resolve("o").toString(), f.toString());
        assertThat(r.rc()).as(r.err()).isEqualTo(1);
        assertThat(r.out()).contains("overflow[n=one]", "overflow[n=two]", "0 passed, 2 failed");
        assertThat(r.out() + r.err()).contains("overflowed the stack", "(?s:.*)");
        assertThat(qemuChildren()).isZero();
    }

    @Test
    void jobsRunCasesSideBySideEachInItsOwnVmWithResultsInCaseOrder() throws Exception {
        Path f = tmp.resolve("par.yaml");
        // four cases of ~2 s each (c expected to fail, so XPASS): two at a time ~4 s, one after the other ~8 s; par2 times out
        Files.writeString(f, """
                name: par
                machine: {type: none}
                matrix:
                  n: [a, b, c, d]
                expect-fail: [{n: c}]
                steps:
                  - qmp: query-status
                  - sleep: 2
                """);
        Path f2 = slowCase(tmp, "par2");
        long t0 = System.nanoTime();
        Run r = main("run", "--jobs", "2", "--out", tmp.resolve("o").toString(), "--junit", tmp.resolve("j.xml").toString(),
                f.toString(), f2.toString());
        double s = (System.nanoTime() - t0) / 1e9;
        assertThat(r.rc()).as(r.err()).isEqualTo(1);
        // in case order, whatever order they ended in
        assertThat(r.out()).containsSubsequence("par[n=a]", "PASSED", "par[n=b]", "PASSED", "par[n=c]", "XPASS",
                "par[n=d]", "PASSED", "par2", "FAILED", "case timeout of 2 s exceeded in step 2");
        assertThat(r.err()).contains("5 cases, 2 at a time", "par[n=a]: started", "running)");
        // a case's step lines are printed in one piece: its header, then its own steps, then its result
        String e = r.err();
        int hb = e.indexOf("[2/5] par[n=b]\n");
        assertThat(hb).as(e).isGreaterThanOrEqualTo(0);
        assertThat(e.substring(hb)).startsWith("[2/5] par[n=b]\n    step 1 ");
        assertThat(e.substring(hb).split("\n\\[")[0]).contains("step 2 sleep").doesNotContain("par[n=a]");
        // 4 x 2 s + a 2 s timeout one after the other is >= 10 s; two at a time about 6 s
        assertThat(s).as(e).isLessThan(9.5);
        assertThat(Files.readString(tmp.resolve("j.xml"))).contains("name=\"par\" tests=\"4\"", "name=\"par2\" tests=\"1\"");
        assertThat(qemuChildren()).isZero();
        assertThat(ProcessRegistry.live()).isZero();
    }

    @Test
    void badJobsIsAUsageError() {
        Run r = main("run", "--jobs", "0", "src/test/resources/scenarios/qemu-basics.yaml");
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("--jobs", "'0'");
        assertThat(io.p2plab.cli.Main.parseJobs("auto", 2)).isEqualTo(1);
        assertThat(io.p2plab.cli.Main.parseJobs("auto", 16)).isEqualTo(8);
        assertThat(io.p2plab.cli.Main.parseJobs(null, 16)).isEqualTo(1);
        assertThat(io.p2plab.cli.Main.parseJobs("x", 16)).isEqualTo(-1);
    }

    @Test
    void caseTimeoutKillsQemuAndFailsClearly() throws Exception {
        Path f = slowCase(tmp, "slow");
        long t0 = System.nanoTime();
        Run r = main("run", "--out", tmp.resolve("o").toString(), f.toString());
        assertThat((System.nanoTime() - t0) / 1_000_000_000).isLessThan(15);
        assertThat(r.rc()).isEqualTo(1);
        assertThat(r.out()).contains("case timeout of 2 s exceeded in step 2");
        assertThat(qemuChildren()).isZero();
    }

    @Test
    void shardsSplitTheSuiteDeterministically() {
        Run a = main("suite", "--list", "--shard", "1/2", "src/test/resources/scenarios");
        Run b = main("suite", "--list", "--shard", "2/2", "src/test/resources/scenarios");
        Run all = main("suite", "--list", "src/test/resources/scenarios");
        // the suite dir contains the bad/ examples: loading fails with exit 2
        assertThat(all.rc()).isEqualTo(2);
        Run ok = main("run", "--list", "--shard", "1/2", "src/test/resources/scenarios/qemu-basics.yaml",
                "src/test/resources/scenarios/example-all-steps.yaml");
        Run ok2 = main("run", "--list", "--shard", "2/2", "src/test/resources/scenarios/qemu-basics.yaml",
                "src/test/resources/scenarios/example-all-steps.yaml");
        List<String> s1 = ok.out().lines().toList(), s2 = ok2.out().lines().toList();
        assertThat(s1.size() + s2.size()).isEqualTo(6);
        assertThat(s1).doesNotContainAnyElementsOf(s2);
        assertThat(a.rc()).isEqualTo(2);
        assertThat(b.rc()).isEqualTo(2);
    }
}
