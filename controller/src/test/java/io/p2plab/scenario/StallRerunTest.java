package io.p2plab.scenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** Which failures get one rerun (stall reports only), and how a rerun is reported (flaky / failed twice). */
class StallRerunTest {
    static final long OE = SplatCheckTest.OE;

    @TempDir
    Path tmp;

    static SplatCheck.Result check(String... logs) throws IOException {
        return SplatCheck.check(SplatCheckTest.log(logs), OE, null, List.of(), List.of());
    }

    @Test
    void selfDetectedStallAndSoftLockupAreStallOnly() throws IOException {
        assertThat(StallRerun.stallOnly(check("real-rcu-self-stall.log"), false)).isTrue();
        assertThat(StallRerun.stallOnly(check("soft-lockup.log"), false)).isTrue();
        assertThat(StallRerun.stallOnly(check("real-rcu-self-stall.log", "soft-lockup.log"), false)).isTrue();
    }

    @Test
    void anyOtherSplatATimeoutOrACleanLogIsNot() throws IOException {
        assertThat(StallRerun.stallOnly(check("real-rcu-self-stall.log", "real-warning.log"), false)).isFalse();
        assertThat(StallRerun.stallOnly(check("soft-lockup.log", "oops-null.log"), false)).isFalse();
        assertThat(StallRerun.stallOnly(check("hung-task.log"), false)).isFalse();
        assertThat(StallRerun.stallOnly(check("kasan.log"), false)).isFalse();
        assertThat(StallRerun.stallOnly(check("real-rcu-self-stall.log"), true)).as("timed out").isFalse();
        assertThat(StallRerun.stallOnly(check("benign-default-boot.log"), false)).isFalse();
        assertThat(StallRerun.stallOnly(null, false)).isFalse();
    }

    @Test
    void aCleanLogButForHostStarvationIsHostStarved() throws IOException {
        assertThat(StallRerun.hostStarved(check("rcu-stall-tcg.log"), false)).isTrue();
        assertThat(StallRerun.hostStarved(check("rcu-stall-tcg.log", "benign-default-boot.log"), false)).isTrue();
        assertThat(StallRerun.hostStarved(check("rcu-stall-tcg.log"), true)).as("timed out").isFalse();
        assertThat(StallRerun.hostStarved(check("rcu-stall-tcg.log", "real-warning.log"), false)).as("a real splat").isFalse();
        assertThat(StallRerun.hostStarved(check("rcu-stall.log"), false)).as("a real stall").isFalse();
        assertThat(StallRerun.hostStarved(check("benign-default-boot.log"), false)).as("no starvation").isFalse();
        assertThat(StallRerun.hostStarved(null, false)).isFalse();
    }

    @Test
    void aMissingExpectedSplatIsNotStallOnly() throws IOException {
        var e = new ExpectedSplat(java.util.regex.Pattern.compile("never"), "on purpose", true, "t.yaml:1:1");
        var r = SplatCheck.check(SplatCheckTest.log("real-rcu-self-stall.log"), OE, null, List.of(), List.of(e));
        assertThat(StallRerun.stallOnly(r, false)).isFalse();
    }

    static Scenario.Case kase() {
        return new Scenario.Case(Path.of("s.yaml"), "s", "s[x=1]", Map.of("x", "1"), null, List.of(),
                Duration.ofMinutes(1), null, null, List.of());
    }

    @Test
    void firstAttemptIsKeptAsideAndAPassingRerunIsFlaky() throws IOException {
        Path dir = tmp.resolve("s_x=1_");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("kernel.log"), "first");
        CaseResult failed = new CaseResult(kase(), CaseResult.Status.FAILED, "kernel splat (RCU_STALL, kernel.log): x",
                "report", Duration.ofSeconds(40), dir, true, null);
        CaseResult first = StallRerun.keepAttempt(failed, 1);
        assertThat(first.dir()).isEqualTo(tmp.resolve("s_x=1_.attempt1"));
        assertThat(Files.readString(first.dir().resolve("kernel.log"))).isEqualTo("first");
        assertThat(dir).doesNotExist();

        CaseResult passed = new CaseResult(kase(), CaseResult.Status.PASSED, null, null, Duration.ofSeconds(30), dir);
        CaseResult r = StallRerun.combine(first, passed);
        assertThat(r.flaky()).isTrue();
        assertThat(r.status()).isEqualTo(CaseResult.Status.PASSED);
        assertThat(r.time()).isEqualTo(Duration.ofSeconds(70));
        assertThat(r.message()).contains("flaky").contains("RCU_STALL").contains("s_x=1_.attempt1");
        assertThat(Reports.tally(List.of(r))).isEqualTo("1 passed, 0 failed, 0 skipped (1 flaky: passed on a rerun after a failure the emulator or the host can cause)");

        Path xml = tmp.resolve("junit.xml");
        Reports.junit(List.of(r), xml);
        String x = Files.readString(xml);
        assertThat(x).contains("<flakyFailure message=\"kernel splat (RCU_STALL, kernel.log): x\"").doesNotContain("<failure");
    }

    @Test
    void aRerunThatFailsAgainFailsWithBothMessages() throws IOException {
        Path dir = tmp.resolve("c");
        Files.createDirectories(dir);
        CaseResult first = StallRerun.keepAttempt(new CaseResult(kase(), CaseResult.Status.FAILED, "stall one", null,
                Duration.ofSeconds(1), dir, true, null), 1);
        CaseResult again = new CaseResult(kase(), CaseResult.Status.FAILED, "stall two", null, Duration.ofSeconds(1), dir, true, null);
        CaseResult r = StallRerun.combine(first, again);
        assertThat(r.flaky()).isFalse();
        assertThat(r.status().failed()).isTrue();
        assertThat(r.message()).startsWith("stall two").contains("failed again on a rerun").contains("stall one");
        Path xml = tmp.resolve("j.xml");
        Reports.junit(List.of(r), xml);
        assertThat(Files.readString(xml)).contains("<failure").doesNotContain("flakyFailure");
    }

    @Test
    void qemuAbortingInItsOwnCoreIsRerunnableButNotInTheDevice() throws IOException {
        // real: a CI rehearsal's vfio-dmabuf[topo=far-amd] (QEMU 10.0.13, TCG)
        Path real = tmp.resolve("real");
        Files.createDirectories(real);
        Files.copy(Path.of("src/test/resources/qemu-stderr/iotlb-assert.log"), real.resolve("qemu-stderr.log"));
        assertThat(StallRerun.qemuCoreAbort(real)).isEqualTo("qemu-system-x86_64: ../system/physmem.c:2671: "
                + "iotlb_to_section: Assertion `section_index < d->map.sections_nb' failed.");
        Path dev = tmp.resolve("dev");
        Files.createDirectories(dev);
        Files.writeString(dev.resolve("qemu-stderr.log"), "qemu-system-x86_64: ../hw/misc/p2plab.c:712: "
                + "p2plab_dma_bh: Assertion `n <= len' failed.\n");
        assertThat(StallRerun.qemuCoreAbort(dev)).as("the lab's own device").isNull();
        assertThat(StallRerun.qemuCoreAbort(tmp.resolve("none"))).isNull();
        Path warn = tmp.resolve("warn");
        Files.createDirectories(warn);
        Files.writeString(warn.resolve("qemu-stderr.log"), "qemu-system-x86_64: warning: TCG doesn't support requested feature\n");
        assertThat(StallRerun.qemuCoreAbort(warn)).isNull();
    }

    /** An int3 trap on bytes that no longer hold the breakpoint (a boot under TCG, 2 guests on 2 cores). */
    @Test
    void staleInt3IsRerunnableOnlyAlone() throws IOException {
        String log = SplatCheckTest.log("int3-stale-tcg.log");
        var r = SplatCheck.check(log, OE, null, List.of(), List.of());
        assertThat(r.failure()).contains("Oops: int3");
        assertThat(StallRerun.staleInt3(r, false)).contains("0f <1f>", "stale translated code");
        assertThat(StallRerun.staleInt3(r, true)).isNull();
        // a real breakpoint in memory (0xcc before RIP) is the kernel's problem
        String cc = log.replace("eb 6d 0f <1f>", "eb 6d cc <1f>");
        assertThat(StallRerun.staleInt3(SplatCheck.check(cc, OE, null, List.of(), List.of()), false)).isNull();
        // another report beside it: not rerun
        var both = SplatCheck.check(log + SplatCheckTest.log("warning.log"), OE, null, List.of(), List.of());
        assertThat(StallRerun.staleInt3(both, false)).isNull();
        // an Oops of another kind: not rerun
        String gp = log.replace("Oops: int3", "Oops: general protection fault");
        assertThat(StallRerun.staleInt3(SplatCheck.check(gp, OE, null, List.of(), List.of()), false)).isNull();
    }
}
