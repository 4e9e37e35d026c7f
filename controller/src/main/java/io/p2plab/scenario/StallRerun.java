package io.p2plab.scenario;

import io.p2plab.vm.KernelLog;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Set;

/**
 * One rerun for a case that failed only with stall reports.
 *
 * <p>Under TCG on a shared 2-core host a vCPU is sometimes not run or not woken for 20-100 s (an idle
 * vCPU whose timer never fires; the other vCPU then spins in an IPI wait for it): the guest reports an
 * RCU stall and a soft lockup although no guest code was stuck. The kernel marks some of them itself
 * ("(false positive?)", "timer wakeup didn't happen": {@link SplatCheck#HOST_STARVATION}); a
 * self-detected stall of the waiting vCPU carries no such marker. A case whose only problems are such
 * reports ({@link CaseResult#stallOnly()}) is run once more in a fresh VM: a real lockup fails again
 * (and fails the case, with both attempts' reports); one that does not recur passes as <em>flaky</em>:
 * JUnit {@code <flakyFailure>} with the first attempt's report, "FLAKY" in the summary, and the first
 * attempt's artefacts kept in {@code <case dir>.attempt1}. Any other splat (BUG, Oops, WARNING, KASAN,
 * lockdep, hung task ...) or a timeout is never rerun. The same one rerun is given to a case that
 * failed because QEMU aborted on an assertion in its own core code ({@link #qemuCoreAbort}), with the
 * assertion in the failure message, to a case whose only report is an int3 trap on code that no
 * longer holds the breakpoint ({@link #staleInt3}), and to a case that failed at a step while the
 * kernel reported host starvation and nothing else ({@link #hostStarved}). P2PLAB_STALL_RERUNS=0 turns reruns off.
 */
final class StallRerun {
    private StallRerun() {}

    /** Splat kinds an emulator that does not run a vCPU produces on its own. */
    static final Set<KernelLog.Kind> STALL_KINDS = EnumSet.of(KernelLog.Kind.RCU_STALL, KernelLog.Kind.SOFT_LOCKUP);

    static int reruns() {
        String v = System.getenv("P2PLAB_STALL_RERUNS");
        if (v == null || v.isBlank()) return 1;
        try {
            return Math.max(0, Integer.parseInt(v.trim()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("P2PLAB_STALL_RERUNS must be a number of reruns, not '" + v + "'");
        }
    }

    /** True when the kernel check failed only with stall reports (and nothing else went wrong but steps). */
    static boolean stallOnly(SplatCheck.Result kernel, boolean timedOut) {
        if (timedOut || kernel == null || kernel.failure() == null || !kernel.missing().isEmpty()) return false;
        var bad = kernel.unexpected();
        // a stall report's NMI backtraces may be cut out as bare stack dumps (CALL_TRACE): allowed beside one
        return bad.stream().anyMatch(r -> STALL_KINDS.contains(r.splat().kind()))
                && bad.stream().allMatch(r -> STALL_KINDS.contains(r.splat().kind()) || r.splat().kind() == KernelLog.Kind.CALL_TRACE);
    }

    /**
     * True when a failed case's kernel log is clean but for RCU stall reports that the kernel
     * itself blames on a starved vCPU ({@link SplatCheck#HOST_STARVATION}): the host did not run
     * the guest for many seconds while the steps ran, so a step that failed on a guest-side timeout
     * or a timing assertion is not conclusive. Never after a case timeout.
     */
    static boolean hostStarved(SplatCheck.Result kernel, boolean timedOut) {
        return !timedOut && kernel != null && kernel.failure() == null
                && kernel.reports().stream().anyMatch(r -> r.expectedBy() == SplatCheck.HOST_STARVATION);
    }

    private static final java.util.regex.Pattern QEMU_ASSERT = java.util.regex.Pattern.compile(
            "^\\S*qemu-system-\\S+: (\\S+):\\d+: \\S+: Assertion .* failed\\.$", java.util.regex.Pattern.MULTILINE);

    /**
     * The assertion QEMU aborted on, from the case's qemu-stderr.log, when it is in QEMU's own code
     * (e.g. "../system/physmem.c:2671: iotlb_to_section: Assertion `section_index <
     * d->map.sections_nb' failed.", a TCG race with memory-map changes seen once in about 500 lab
     * runs); null when there is none or when it is in the p2plab device (that is the lab's bug).
     */
    static String qemuCoreAbort(Path caseDir) {
        Path log = caseDir.resolve("qemu-stderr.log");
        try {
            if (!Files.isRegularFile(log)) return null;
            var m = QEMU_ASSERT.matcher(Files.readString(log, java.nio.charset.StandardCharsets.UTF_8));
            while (m.find()) {
                if (!m.group(1).contains("p2plab")) return m.group().strip();
            }
            return null;
        } catch (IOException | java.io.UncheckedIOException e) {
            return null;
        }
    }

    private static final java.util.regex.Pattern CODE_AT_RIP = java.util.regex.Pattern.compile(
            "Code: (?:[0-9a-f]{2} )*([0-9a-f]{2}) <([0-9a-f]{2})>");

    /**
     * The kernel died on an int3 that is no longer in memory: "Oops: int3" whose code dump shows,
     * just before RIP (where the trap leaves it, after the breakpoint), a byte that is not 0xcc. The
     * x86 text-poke protocol (jump labels, static calls) puts an int3 in, then the new instruction,
     * and synchronises every CPU before and after; an int3 trap the poker no longer knows about means
     * a vCPU ran the old, translated bytes after that synchronisation. Seen only under TCG on an
     * overcommitted host (two guests on 2 cores: 2 of about 60 such boots), never in hundreds of
     * boots one at a time (docs/scenarios.md "Suite time"). Returns the evidence, or null: another
     * report beside it (but the panic it causes and bare stacks), or a real 0xcc before RIP, is no
     * such case. One visible rerun, as for {@link #qemuCoreAbort}.
     */
    static String staleInt3(SplatCheck.Result kernel, boolean timedOut) {
        if (timedOut || kernel == null || kernel.failure() == null || !kernel.missing().isEmpty()) return null;
        String found = null;
        for (SplatCheck.Report r : kernel.unexpected()) {
            KernelLog.Kind k = r.splat().kind();
            if (k == KernelLog.Kind.PANIC || k == KernelLog.Kind.CALL_TRACE) continue;
            if (k != KernelLog.Kind.OOPS || !r.splat().headline().startsWith("Oops: int3") || found != null) return null;
            var m = CODE_AT_RIP.matcher(r.splat().text());
            if (!m.find() || m.group(1).equals("cc")) return null;
            found = "the guest trapped on an int3 that memory no longer holds (code before RIP: " + m.group(1) + " <"
                    + m.group(2) + ">): a vCPU ran stale translated code after a kernel text poke (TCG on a loaded host)";
        }
        return found;
    }

    /** Moves a failed attempt's artefacts aside (dir.attemptN) and returns the result pointing there. */
    static CaseResult keepAttempt(CaseResult r, int n) throws IOException {
        Path moved = r.dir().resolveSibling(r.dir().getFileName() + ".attempt" + n);
        if (Files.exists(moved)) deleteTree(moved);
        if (Files.exists(r.dir())) Files.move(r.dir(), moved);
        return new CaseResult(r.scenarioCase(), r.status(), r.message(), r.excerpt(), r.time(), moved, r.rerunnable(),
                r.firstAttempt());
    }

    /** The rerun's result, carrying the first attempt; a rerun that failed again names both failures. */
    static CaseResult combine(CaseResult first, CaseResult rerun) {
        String msg = rerun.status().failed()
                ? rerun.message() + " (failed again on a rerun; first attempt: " + Engine.firstLine(first.message()) + ")"
                : (rerun.message() == null ? "" : rerun.message() + "; ") + "flaky: passed on a rerun after a failure the emulator or the host can cause: "
                        + Engine.firstLine(first.message()) + " (artefacts: " + first.dir().getFileName() + ")";
        return new CaseResult(rerun.scenarioCase(), rerun.status(), msg, rerun.excerpt(),
                first.time().plus(rerun.time()), rerun.dir(), rerun.rerunnable(), first);
    }

    private static void deleteTree(Path p) throws IOException {
        try (var s = Files.walk(p)) {
            for (Path q : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        }
    }
}
