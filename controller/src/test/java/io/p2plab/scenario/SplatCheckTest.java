package io.p2plab.scenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The end-of-case kernel check: kernel log + console, expected splats, taint backstop; expect-splats parsing. */
class SplatCheckTest {
    static final Path LOGS = Path.of("src/test/resources/kernel-logs");
    static final long OE = 4096 | 8192;

    @TempDir
    Path tmp;

    static String log(String... names) throws IOException {
        StringBuilder b = new StringBuilder();
        for (String n : names) b.append(Files.readString(LOGS.resolve(n)));
        return b.toString();
    }

    static ExpectedSplat expect(String re, boolean required) {
        return new ExpectedSplat(Pattern.compile(re, Pattern.MULTILINE), "on purpose", required, "t.yaml:1:1");
    }

    @Test
    void cleanLogPasses() throws IOException {
        SplatCheck.Result r = SplatCheck.check(log("benign-default-boot.log"), OE, null, List.of("P2PLAB-READY"), List.of());
        assertThat(r.failure()).isNull();
        assertThat(r.splatsFile()).isNull();
    }

    @Test
    void unexpectedSplatFailsWithTheWholeReport() throws IOException {
        String klog = log("benign-default-boot.log", "warning.log", "lockdep-circular.log");
        SplatCheck.Result r = SplatCheck.check(klog, OE | 512, null, List.of(), List.of());
        assertThat(r.failure()).startsWith("kernel splat (WARNING, kernel.log): WARNING: CPU: 1 PID: 312 at lib/refcount.c:28")
                .contains("(+1 more: LOCKDEP)");
        assertThat(r.excerpt()).contains("refcount_t: underflow", "p2plab_dmirror_release+0x1a0/0x2f0 [p2plab]",
                "---[ end trace", "WARNING: possible circular locking dependency detected", "*** DEADLOCK ***",
                "kernel-splats.txt", "kernel.log");
        assertThat(r.splatsFile()).startsWith("2 kernel splat report(s), 2 unexpected").contains("do_exit", "print_circular_bug");
    }

    @Test
    void consoleOnlyReportsCountAndDuplicatesDoNot() throws IOException {
        List<String> warning = Files.readAllLines(LOGS.resolve("warning.log"));
        List<String> kasan = Files.readAllLines(LOGS.resolve("kasan.log"));
        // the same WARN on the console and in the kernel log is one report; a KASAN report only on the
        // console (a boot before a reboot, a wrapped log) is another
        List<String> console = new java.util.ArrayList<>(kasan);
        console.addAll(warning.stream().map(l -> l + "\r").toList());
        SplatCheck.Result r = SplatCheck.check(String.join("\n", warning), OE, null, console, List.of());
        assertThat(r.reports()).extracting(x -> x.source() + ":" + x.splat().kind())
                .containsExactly("kernel.log:WARNING", "console.log:KASAN");
    }

    @Test
    void aShellPromptOnTheConsoleLineDoesNotMakeADuplicate() throws IOException {
        List<String> klog = Files.readAllLines(LOGS.resolve("real-hung-task.log"));
        List<String> console = new java.util.ArrayList<>(klog);
        int h = console.indexOf(console.stream().filter(l -> l.contains("INFO: task")).findFirst().orElseThrow());
        console.set(h, "p2plab# \u001b[6n" + console.get(h) + "\r");
        SplatCheck.Result r = SplatCheck.check(String.join("\n", klog), OE, null, console, List.of());
        assertThat(r.reports()).extracting(x -> x.source() + ":" + x.splat().kind())
                .containsExactly("kernel.log:HUNG_TASK", "kernel.log:HUNG_TASK");
    }

    @Test
    void kernelLogUnavailableUsesTheConsole() throws IOException {
        SplatCheck.Result r = SplatCheck.check(null, null, "the guest panicked", Files.readAllLines(LOGS.resolve("oops-null.log")), List.of());
        assertThat(r.failure()).startsWith("kernel splat (OOPS, console.log): BUG: kernel NULL pointer dereference").contains("+1 more: PANIC");
        assertThat(r.excerpt()).contains("unavailable, the guest panicked");
    }

    @Test
    void expectedSplatsPassAndMustAppearWhenRequired() throws IOException {
        String klog = log("benign-default-boot.log", "warning.log");
        // matched on the report's text (stack included), not only the headline
        SplatCheck.Result ok = SplatCheck.check(klog, OE | 512, null, List.of(), List.of(expect("p2plab_dmirror_release", true)));
        assertThat(ok.failure()).isNull();
        assertThat(ok.splatsFile()).contains("expected: on purpose");
        // ^ anchors a line of the report
        assertThat(SplatCheck.check(klog, OE, null, List.of(), List.of(expect("^refcount_t: underflow", true))).failure()).isNull();
        // required but absent
        SplatCheck.Result missing = SplatCheck.check(log("benign-default-boot.log"), OE, null, List.of(),
                List.of(expect("p2plab_dmirror_release", true)));
        assertThat(missing.failure()).isEqualTo("expected kernel splat /p2plab_dmirror_release/ (on purpose, t.yaml:1:1) not found in the kernel log");
        // optional and absent: fine
        assertThat(SplatCheck.check(log("benign-default-boot.log"), OE, null, List.of(), List.of(expect("x", false))).failure()).isNull();
        // expecting one splat does not hide another
        SplatCheck.Result other = SplatCheck.check(log("warning.log", "kasan.log"), OE, null, List.of(),
                List.of(expect("refcount_t", true)));
        assertThat(other.failure()).startsWith("kernel splat (KASAN, kernel.log): BUG: KASAN: wild-memory-access");
        assertThat(other.excerpt()).doesNotContain("refcount_t");
    }

    @Test
    void starvedVcpuStallsAreListedNotFailed() throws IOException {
        SplatCheck.Result r = SplatCheck.check(null, null, "x", Files.readAllLines(LOGS.resolve("rcu-stall-tcg.log")), List.of());
        assertThat(r.failure()).isNull();
        assertThat(r.reports()).singleElement().satisfies(rep -> assertThat(rep.expectedBy()).isSameAs(SplatCheck.HOST_STARVATION));
        assertThat(r.splatsFile()).contains("expected: host starvation under TCG", "the kernel suspects a timer/vCPU starvation");
        // a stall of running code is a failure
        SplatCheck.Result real = SplatCheck.check(log("rcu-stall.log"), OE, null, List.of(), List.of());
        assertThat(real.failure()).startsWith("kernel splat (RCU_STALL");
        assertThat(real.excerpt()).doesNotContain("suspects");
    }

    @Test
    void taintWithoutAReportFails() {
        String wrapped = "[  900.1] p2plab 0000:01:00.0: dma done\n[  900.2] p2plab 0000:01:00.0: dma done\n";
        SplatCheck.Result r = SplatCheck.check(wrapped, OE | 512, null, List.of(), List.of());
        assertThat(r.failure()).isEqualTo("kernel tainted W (tainted=12800) but no report is left in the kernel log (it wrapped)");
        assertThat(SplatCheck.check(wrapped, OE, null, List.of(), List.of()).failure()).isNull();
    }

    @Test
    void expectSplatsParseWithMatrixConditions() throws IOException {
        Path f = tmp.resolve("s.yaml");
        Files.writeString(f, """
                name: s
                matrix:
                  mode: [a, b]
                expect-splats:
                  - {match: 'WARNING: .* at mm/hmm\\.c:\\d+ ', reason: the test unmaps under the walk on purpose}
                  - {match: 'possible circular', reason: known, required: false, mode: b}
                steps:
                  - sleep: 0
                """);
        List<Scenario.Case> cs = Scenario.load(f);
        assertThat(cs.get(0).expectSplats()).hasSize(1);
        assertThat(cs.get(1).expectSplats()).extracting(ExpectedSplat::required).containsExactly(true, false);
        assertThat(cs.get(0).expectSplats().get(0).match().matcher("WARNING: CPU: 0 PID: 1 at mm/hmm.c:12 x").find()).isTrue();
        Files.writeString(f, """
                name: s
                expect-splats:
                  - {match: 'x'}
                steps:
                  - sleep: 0
                """);
        assertThatThrownBy(() -> Scenario.load(f)).hasMessageContaining("s.yaml:3:").hasMessageContaining("needs 'reason'");
        Files.writeString(f, """
                name: s
                expect-splats:
                  - {match: 'x', reason: r, cpu: amd}
                steps:
                  - sleep: 0
                """);
        assertThatThrownBy(() -> Scenario.load(f)).hasMessageContaining("'cpu' is not a matrix axis");
    }
}
