package io.p2plab.scenario;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.ga.GuestAgent;
import io.p2plab.qmp.QmpClient;
import io.p2plab.qmp.QmpErrorException;
import io.p2plab.qmp.QmpEvent;
import io.p2plab.util.Json;
import io.p2plab.vm.Console;
import io.p2plab.vm.KernelLog;
import io.p2plab.vm.Vm;
import io.p2plab.vm.VmException;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/** Runs cases: one VM per case, steps in order, first failure ends the case. */
public final class Engine {
    private final Path outDir;
    private final PrintStream progress;
    // one thread per case that can run at once: a firing timeout reads the guest's log (seconds) before it kills
    private final ScheduledExecutorService timer = Executors.newScheduledThreadPool(4, r -> {
        Thread t = new Thread(r, "p2plab-case-timer");
        t.setDaemon(true);
        return t;
    });

    private boolean teeConsole;
    private int jobs = 1;
    private final int stallReruns = StallRerun.reruns();
    private boolean topology = !"0".equals(System.getenv("P2PLAB_TOPO"));

    public Engine(Path outDir, PrintStream progress) {
        this.outDir = outDir;
        this.progress = progress;
    }

    /** Also copy every guest console line to the progress stream, live. */
    public Engine teeConsole(boolean on) {
        this.teeConsole = on;
        return this;
    }

    /** Capture topo.txt / topo.svg after each case's boot (default on; P2PLAB_TOPO=0 turns it off). */
    public Engine topology(boolean on) {
        this.topology = on;
        return this;
    }

    /**
     * Run up to {@code n} cases at once, each in its own VM (default 1: one after the other). With more than
     * one, a case's progress lines are held back and printed together when it ends; {@link #teeConsole}
     * (a live console) runs one at a time.
     */
    public Engine jobs(int n) {
        this.jobs = Math.max(1, n);
        return this;
    }

    public List<CaseResult> run(List<Scenario.Case> cases) {
        try {
            if (jobs == 1 || teeConsole || cases.size() < 2) {
                List<CaseResult> out = new ArrayList<>();
                int i = 0;
                for (Scenario.Case c : cases) {
                    i++;
                    progress.printf("[%d/%d] %s%n", i, cases.size(), c.name());
                    out.add(runWithReruns(c, i, cases.size(), progress));
                }
                return out;
            }
            return runParallel(cases);
        } finally {
            timer.shutdownNow();
        }
    }

    /**
     * {@link #jobs} workers take the cases in order; results come back in case order. Each case prints its
     * start at once and its progress (steps, warnings, result) in one piece when it ends, so the lines of
     * cases running side by side never interleave.
     */
    private List<CaseResult> runParallel(List<Scenario.Case> cases) {
        int n = cases.size();
        CaseResult[] out = new CaseResult[n];
        java.util.concurrent.atomic.AtomicInteger running = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.ExecutorService pool = Executors.newFixedThreadPool(Math.min(jobs, n), r -> {
            Thread t = new Thread(r, "p2plab-case");
            t.setDaemon(true);
            return t;
        });
        progress.printf("%d cases, %d at a time (each in its own VM)%n", n, Math.min(jobs, n));
        List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            int idx = k;
            fs.add(pool.submit(() -> {
                Scenario.Case c = cases.get(idx);
                int i = idx + 1;
                progress.printf("[%d/%d] %s: started (%d running)%n", i, n, c.name(), running.incrementAndGet());
                java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
                PrintStream held = new PrintStream(buf, true, StandardCharsets.UTF_8);
                CaseResult r;
                try {
                    r = runWithReruns(c, i, n, held);
                } catch (RuntimeException | Error e) {
                    // never lose a case to a bug of the runner: it fails, the others go on
                    r = new CaseResult(c, CaseResult.Status.FAILED, "the runner failed: " + describe(e), null,
                            Duration.ZERO, outDir.resolve(dirName(c.name())));
                    held.printf("[%d/%d] %s: %s%n", i, n, c.name(), r.message());
                }
                held.flush();
                running.decrementAndGet();
                synchronized (progress) {
                    progress.printf("[%d/%d] %s%n", i, n, c.name());
                    progress.print(buf.toString(StandardCharsets.UTF_8));
                    progress.flush();
                    out[idx] = r;
                }
            }));
        }
        pool.shutdown();
        for (java.util.concurrent.Future<?> f : fs) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                pool.shutdownNow();
                break;
            } catch (java.util.concurrent.ExecutionException e) {
                progress.println("runner error: " + describe(e.getCause()));
            }
        }
        List<CaseResult> list = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            list.add(out[k] != null ? out[k] : new CaseResult(cases.get(k), CaseResult.Status.FAILED,
                    "not run: the runner was interrupted", null, Duration.ZERO, outDir.resolve(dirName(cases.get(k).name()))));
        }
        return list;
    }

    /** One case, rerun in a fresh VM when it failed only as the emulator or the host fails (StallRerun). */
    private CaseResult runWithReruns(Scenario.Case c, int i, int n, PrintStream out) {
        CaseResult r = runCase(c, out);
        for (int k = 1; r.status() == CaseResult.Status.FAILED && r.rerunnable() && k <= stallReruns; k++) {
            out.printf("[%d/%d] %s: failed only as the emulator fails on its own (%s): rerun %d of %d in a fresh VM%n", i,
                    n, c.name(), firstLine(r.message()), k, stallReruns);
            CaseResult first;
            try {
                first = StallRerun.keepAttempt(r, k);
            } catch (IOException e) {
                out.printf("[%d/%d] %s: cannot keep the first attempt's artefacts (%s): no rerun%n", i,
                        n, c.name(), e.getMessage());
                break;
            }
            r = StallRerun.combine(first, runCase(c, out));
        }
        out.printf("[%d/%d] %s: %s (%.1f s)%s%n", i, n, c.name(), r.status(),
                r.time().toMillis() / 1000.0, r.message() == null ? "" : " - " + firstLine(r.message()));
        return r;
    }

    static String firstLine(String s) {
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    public static String dirName(String caseName) {
        return caseName.replaceAll("[^A-Za-z0-9._=,-]+", "_");
    }

    CaseResult runCase(Scenario.Case c) {
        return runCase(c, progress);
    }

    /** @param out this case's progress lines */
    CaseResult runCase(Scenario.Case c, PrintStream out) {
        Path dir = outDir.resolve(dirName(c.name()));
        long t0 = System.nanoTime();
        if (c.skip() != null) {
            return new CaseResult(c, CaseResult.Status.SKIPPED, "skipped: " + c.skip(), null, Duration.ZERO, dir);
        }
        Ctx ctx;
        try {
            Files.createDirectories(dir);
            ctx = new Ctx(c, dir, out);
        } catch (IOException e) {
            return new CaseResult(c, CaseResult.Status.FAILED, "cannot create " + dir + ": " + e.getMessage(), null,
                    Duration.ZERO, dir);
        }
        Thread caseThread = Thread.currentThread();
        ScheduledFuture<?> tmo = timer.schedule(() -> {
            ctx.timedOut.set(true);
            // the guest may still answer: its kernel log often says why the case hangs
            ctx.captureKernelLog(Duration.ofSeconds(15));
            ctx.kill();
            caseThread.interrupt();
        }, c.timeout().toMillis(), TimeUnit.MILLISECONDS);
        String failure = null;
        String excerpt = null;
        SplatCheck.Result kernel = null;
        try {
            try {
                ctx.runSteps(c.steps(), "");
                ctx.checkWatchdog();
            } catch (StepFailure f) {
                failure = f.getMessage();
                excerpt = f.excerpt();
            } catch (RuntimeException e) {
                failure = (ctx.current == null ? "" : "step " + ctx.current + ": ") + describe(e);
            }
            if (!tmo.cancel(false)) {
                try { tmo.get(); } catch (Exception ignored) { }   // let a firing timeout finish first
            }
            Thread.interrupted();
            // at the end of every case, passed or failed: the whole kernel log, whatever the console level
            ctx.captureKernelLog(Duration.ofSeconds(30));
            kernel = ctx.checkKernelLog();
        } finally {
            tmo.cancel(false);
            Thread.interrupted();
            ctx.close();
        }
        if (ctx.timedOut.get()) {
            failure = "case timeout of " + c.timeout().toSeconds() + " s exceeded" + (ctx.current == null ? "" : " in step " + ctx.current);
        }
        if (kernel != null && kernel.failure() != null) {
            // the splat first: it is usually why a step failed, and the step failure stays visible after it
            String stepExcerpt = excerpt != null ? excerpt : (failure != null ? ctx.consoleTail() : null);
            failure = kernel.failure() + (failure == null ? "" : " | " + failure);
            excerpt = kernel.excerpt() == null ? stepExcerpt
                    : kernel.excerpt() + (stepExcerpt == null ? "" : "\n\n" + stepExcerpt);
        }
        if (failure != null && excerpt == null) excerpt = ctx.consoleTail();
        Duration time = Duration.ofNanos(System.nanoTime() - t0);
        ctx.log("result: " + (failure == null ? "passed" : "FAILED: " + failure));
        ctx.closeLog();
        CaseResult.Status st;
        if (c.expectFail() != null && kernel != null && kernel.failure() != null) {
            // an expected failure is about the steps: it never hides a kernel splat (declare those in expect-splats)
            return new CaseResult(c, CaseResult.Status.FAILED, failure + " (expect-fail covers step failures, not kernel"
                    + " splats: declare an expected one in expect-splats)", excerpt, time, dir);
        }
        if (c.expectFail() != null) {
            st = failure != null ? CaseResult.Status.XFAIL : CaseResult.Status.XPASS;
            String msg = failure != null ? "expected failure (" + c.expectFail() + "): " + failure
                    : "passed but was expected to fail (" + c.expectFail() + ")";
            return new CaseResult(c, st, msg, excerpt, time, dir);
        }
        boolean rerunnable = failure != null && StallRerun.stallOnly(kernel, ctx.timedOut.get());
        if (failure != null && !rerunnable && StallRerun.hostStarved(kernel, ctx.timedOut.get())) {
            failure += " | the host starved the guest of CPU meanwhile (the kernel's own \"(false positive?)\" RCU"
                    + " stall report, kernel-splats.txt): a timing-dependent step is not conclusive";
            rerunnable = true;
        }
        String staleInt3 = failure != null ? StallRerun.staleInt3(kernel, ctx.timedOut.get()) : null;
        if (staleInt3 != null) {
            failure += " | " + staleInt3;
            rerunnable = true;
        }
        String qemuAbort = failure != null && !ctx.timedOut.get() ? StallRerun.qemuCoreAbort(dir) : null;
        if (qemuAbort != null) {
            failure += " | QEMU aborted (an emulator bug, not the guest's): " + qemuAbort;
            rerunnable |= kernel == null || kernel.failure() == null;
        }
        return new CaseResult(c, failure == null ? CaseResult.Status.PASSED : CaseResult.Status.FAILED, failure,
                excerpt, time, dir, rerunnable, null);
    }

    /** The guest's whole kernel log on stdout, its taint flags on stderr. */
    static final List<String> DMESG = List.of("/bin/sh", "-c", "cat /proc/sys/kernel/tainted >&2; exec dmesg");

    /**
     * Console splats after which a running guest command will not complete (the guest hangs or is gone):
     * a guest step stops waiting for it. A WARN, a UBSAN or lockdep report does not stop the command:
     * it finishes, and the end-of-case kernel check fails the case.
     */
    static final java.util.Set<KernelLog.Kind> GUEST_IS_STUCK = java.util.EnumSet.of(KernelLog.Kind.PANIC,
            KernelLog.Kind.HUNG_TASK, KernelLog.Kind.SOFT_LOCKUP, KernelLog.Kind.HARD_LOCKUP);
    // not RCU_STALL: a stall report may be a starved vCPU that resumes (SplatCheck.HOST_STARVATION);
    // the end-of-case check decides, and a guest that stays stuck hits the step's timeout

    static GuestAgent.ExecResult execBounded(GuestAgent ga, List<String> argv, Duration budget) {
        return exec(ga, argv, budget, null);
    }

    /**
     * guest-exec + guest-exec-status polling, every agent call bounded by what is left of {@code budget};
     * between polls {@code abort} (if given) may return a console problem that ends the wait.
     */
    static GuestAgent.ExecResult exec(GuestAgent ga, List<String> argv, Duration budget,
                                      java.util.function.Supplier<Console.Problem> abort) {
        return exec(ga, argv, budget, abort, null);
    }

    /** The guest command through qemu-ga for callers outside the engine (topology capture). */
    public static GuestAgent.ExecResult guestExec(GuestAgent ga, List<String> argv, Duration budget) {
        return exec(ga, argv, budget, null, null);
    }

    /** As above; with {@code stream}, the command's output is read while it runs (see {@link GuestStream}). */
    static GuestAgent.ExecResult exec(GuestAgent ga, List<String> argv0, Duration budget,
                                      java.util.function.Supplier<Console.Problem> abort, GuestStream stream) {
        List<String> argv = stream == null ? argv0 : stream.wrap(argv0);
        long deadline = System.nanoTime() + budget.toNanos();
        java.util.function.Supplier<Duration> left = () -> Duration.ofNanos(Math.max(1_000_000, deadline - System.nanoTime()));
        ObjectNode a = Json.object().put("path", argv.get(0)).put("capture-output", true);
        var args = a.putArray("arg");
        argv.subList(1, argv.size()).forEach(args::add);
        Duration first = left.get().compareTo(Duration.ofSeconds(60)) < 0 ? left.get() : Duration.ofSeconds(60);
        long pid = QmpClient.join(ga.execute("guest-exec", a, first)).path("pid").asLong();
        long sleep = 10;
        while (true) {
            // each poll bounded like a plain agent call (60 s); a dead or hung guest answers none: watch the
            // console meanwhile
            Duration t = left.get().compareTo(Duration.ofSeconds(60)) < 0 ? left.get() : Duration.ofSeconds(60);
            java.util.concurrent.CompletableFuture<JsonNode> f = ga.execute("guest-exec-status", Json.object().put("pid", pid), t);
            JsonNode st = null;
            while (st == null) {
                try {
                    st = f.get(abort == null ? t.toMillis() + 1000 : 250, TimeUnit.MILLISECONDS);
                } catch (java.util.concurrent.TimeoutException te) {
                    stuck(abort);
                } catch (java.util.concurrent.ExecutionException ee) {
                    stuck(abort);
                    throw QmpClient.unwrap(ee) instanceof RuntimeException re ? re : new io.p2plab.qmp.QmpException(describe(ee), ee);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new io.p2plab.qmp.QmpException("interrupted");
                }
            }
            if (st.path("exited").asBoolean()) {
                java.util.Base64.Decoder d = java.util.Base64.getDecoder();
                byte[] out = st.has("out-data") ? d.decode(st.get("out-data").asText()) : new byte[0];
                byte[] err = st.has("err-data") ? d.decode(st.get("err-data").asText()) : new byte[0];
                if (stream != null) {
                    byte[][] files = stream.finish();
                    if (files != null) {
                        // the wrapper's own output (nothing unless a redirection failed) comes first
                        out = concat(out, files[0]);
                        err = concat(err, files[1]);
                    }
                }
                return new GuestAgent.ExecResult(pid, st.path("exitcode").asInt(-1),
                        st.has("signal") ? st.get("signal").asInt() : null, out, err,
                        st.path("out-truncated").asBoolean() || st.path("err-truncated").asBoolean());
            }
            if (System.nanoTime() > deadline)
                throw new io.p2plab.qmp.QmpTimeoutException("guest command " + argv + " (pid " + pid + ") still running after "
                        + budget.toMillis() + " ms");
            stuck(abort);
            if (stream != null) stream.maybePoll();
            try { Thread.sleep(sleep); sleep = Math.min(200, sleep * 2); } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new io.p2plab.qmp.QmpException("interrupted");
            }
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        if (a.length == 0) return b;
        byte[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    private static void stuck(java.util.function.Supplier<Console.Problem> abort) {
        Console.Problem p = abort == null ? null : abort.get();
        if (p != null) throw new StepFailure("console watchdog: the guest is stuck while the command runs: "
                + KernelLog.normalize(p.line()).strip(), p.excerpt());
    }

    static String describe(Throwable e) {
        Throwable t = QmpClient.unwrap(e);
        String m = t.getMessage();
        return m == null ? t.toString() : m;
    }

    /** Per-case state. */
    private final class Ctx {
        final Scenario.Case c;
        final Path dir;
        final BufferedWriter log;
        final AtomicBoolean timedOut = new AtomicBoolean();
        volatile Vm vm;
        long eventCursor;
        int consoleCursor;
        String current;
        int guestSeq;
        final PropertyTypes types = new PropertyTypes();

        final PrintStream progress;

        Ctx(Scenario.Case c, Path dir, PrintStream progress) throws IOException {
            this.c = c;
            this.progress = progress;
            this.dir = dir;
            this.log = Files.newBufferedWriter(dir.resolve("steps.log"));
            log("case " + c.name() + " from " + c.file());
        }

        void log(String s) {
            try {
                log.write(Instant.now() + " " + s + "\n");
                log.flush();
            } catch (IOException ignored) { }
        }

        void closeLog() {
            try { log.close(); } catch (IOException ignored) { }
        }

        Vm vm() {
            if (vm == null) {
                if (timedOut.get()) throw new StepFailure("case timed out");
                vm = Vm.launch(c.machine(), dir, msg -> { progress.println("    " + msg); log(msg); });
                log("launched QEMU pid " + vm.pid() + ": " + Vm.shellQuote(vm.commandLine()));
                if (teeConsole) vm.console().addLineListener(l -> progress.println("    | " + l));
            }
            return vm;
        }

        void kill() {
            Vm v = vm;
            if (v != null) v.process().destroyForcibly();
        }

        void close() {
            if (vm != null) {
                try { vm.close(); } catch (RuntimeException e) { log("close: " + e); }
            }
        }

        String consoleTail() {
            return vm == null ? null : (vm.console().tail(30).isBlank() ? null : vm.console().tail(30));
        }

        /** Live console watchdog: fail fast, unless the case expects splats (then the end-of-case check decides). */
        boolean liveWatchdog() {
            return c.expectSplats().isEmpty();
        }

        void checkWatchdog() {
            if (vm == null || !liveWatchdog()) return;
            Console.Problem p = vm.console().problem();
            if (p != null) throw new StepFailure("console watchdog: " + KernelLog.normalize(p.line()).strip(), p.excerpt());
        }

        /** What {@link #captureKernelLog} got: the guest's dmesg and taint flags, or why not. */
        private record Capture(String log, Long taint, String note) {}
        private Capture capture;

        /**
         * Reads the guest's whole kernel log (busybox dmesg: the entire printk ring buffer, every level) and
         * /proc/sys/kernel/tainted through the guest agent into kernel.log; once per case, bounded by
         * {@code budget}. Called at the end of the case, or by the timeout before it kills QEMU.
         */
        synchronized void captureKernelLog(Duration budget) {
            Vm v = vm;
            if (capture != null || v == null || !v.spec().watchdog() || v.spec().kernel() == null) return;
            String note = null;
            String klog = null;
            Long taint = null;
            if (!v.spec().guestAgent()) note = "the machine has no guest agent";
            else if (!v.isAlive()) note = "QEMU had exited";
            else if (v.console().lines().stream().anyMatch(l -> KernelLog.message(l).startsWith("Kernel panic - not syncing")))
                note = "the guest panicked";
            else {
                long t0 = System.nanoTime();
                try {
                    GuestAgent.ExecResult r = execBounded(v.guestAgent(), DMESG, budget);
                    if (r.exitCode() != 0) note = "dmesg exited with " + r.exitCode() + ": " + r.err().strip();
                    else {
                        klog = r.out();
                        String t = r.err().strip();
                        if (t.matches("\\d+")) taint = Long.parseLong(t);
                    }
                } catch (RuntimeException e) {
                    note = "cannot read it through the guest agent: " + describe(e);
                }
                if (klog == null) progress.println("    warning: kernel log not read (" + note + "): the kernel check sees the console only");
                log("kernel log: " + (klog != null ? klog.length() + " chars, tainted=" + taint : note)
                        + " (" + (System.nanoTime() - t0) / 1_000_000 + " ms)");
            }
            if (klog != null) writeArtifact("kernel.log", klog);
            else log("kernel log not read: " + note + "; the kernel check uses the console only");
            capture = new Capture(klog, taint, note);
        }

        private boolean topoDone;

        /**
         * Once per case, when the guest is first ready: its PCI tree and the kernel's P2P verdicts into
         * topo.txt / topo.svg (one guest command and one query-pci). Never fails the case: a guest without
         * the tool or an agent that does not answer leaves the reason in topo.txt.
         */
        void captureTopology() {
            Vm v = vm;
            if (topoDone || !topology || v == null || !v.spec().guestAgent() || v.spec().kernel() == null) return;
            topoDone = true;
            long t0 = System.nanoTime();
            try {
                io.p2plab.topo.Topology t = io.p2plab.topo.TopoCapture.capture(
                        (argv, budget) -> execBounded(v.guestAgent(), argv, budget), Duration.ofSeconds(20));
                try {
                    t = t.withQdevIds(io.p2plab.topo.QdevIds.fromQueryPci(
                            QmpClient.join(v.qmp().execute("query-pci", null, Duration.ofSeconds(10)))));
                } catch (RuntimeException e) {
                    log("topology: query-pci failed (" + describe(e) + "): no QEMU device ids in the picture");
                }
                writeArtifact("topo.txt", io.p2plab.topo.TopoRender.text(t));
                writeArtifact("topo.svg", io.p2plab.topo.TopoRender.svg(t, c.name()));
                log("topology: " + t.devices().size() + " PCI functions, " + t.pairs().size() + " kernel P2P verdicts ("
                        + (System.nanoTime() - t0) / 1_000_000 + " ms)");
            } catch (RuntimeException e) {
                writeArtifact("topo.txt", "topology not captured: " + describe(e) + "\n");
                log("topology not captured (" + (System.nanoTime() - t0) / 1_000_000 + " ms): " + describe(e));
                progress.println("    warning: topology not captured: " + describe(e));
            }
        }

        /** The end-of-case kernel check (kernel log + console); null without a guest kernel or watchdog. */
        SplatCheck.Result checkKernelLog() {
            Vm v = vm;
            if (v == null || !v.spec().watchdog() || v.spec().kernel() == null) return null;
            Capture cap = capture != null ? capture : new Capture(null, null, "not read");
            SplatCheck.Result r = SplatCheck.check(cap.log(), cap.taint(), cap.note(), v.console().lines(), c.expectSplats());
            if (r.splatsFile() != null) writeArtifact("kernel-splats.txt", r.splatsFile());
            for (SplatCheck.Report rep : r.reports())
                log("kernel splat " + rep.splat().kind() + " (" + rep.source() + ")" + (rep.expectedBy() == null ? " UNEXPECTED: "
                        : " expected (" + rep.expectedBy().reason() + "): ") + rep.splat().headline());
            return r;
        }

        void runSteps(List<Step> steps, String prefix) {
            int i = 0;
            for (Step s : steps) {
                i++;
                String idx = prefix + i;
                current = idx + " (" + s.where() + ") " + s.label();
                long t0 = System.nanoTime();
                boolean quiet = !prefix.isEmpty() && !prefix.endsWith("#1.");
                if (!quiet) progress.printf("    step %s %s ...%n", idx, s.label());
                log("step " + idx + " " + s.label() + " [" + s.where() + "]");
                try {
                    runStep(s, idx);
                    checkWatchdog();
                } catch (StepFailure f) {
                    if (f.getMessage().startsWith("step ")) throw f;   // already located (nested step)
                    throw new StepFailure("step " + current + ": " + f.getMessage(), f.excerpt());
                } catch (RuntimeException e) {
                    if (timedOut.get()) throw e;
                    throw new StepFailure("step " + current + ": " + describe(e));
                } catch (StackOverflowError e) {
                    // java.util.regex recurses once per repetition of a group: (.|\n)* over a long
                    // output overflows. The case fails; the run and the other cases go on.
                    throw new StepFailure("step " + current + ": checking the step's result overflowed the stack: a"
                            + " pattern that repeats a group per character, such as (.|\\n)*, on a long output;"
                            + " write (?s:.*) or [\\s\\S]* instead");
                }
                long ms = (System.nanoTime() - t0) / 1_000_000;
                log("step " + idx + " ok (" + ms + " ms)");
                if (!quiet) progress.printf("    step %s ok (%d ms)%n", idx, ms);
            }
        }

        void runStep(Step s, String idx) {
            if (s instanceof Step.Boot b) {
                vm();
                if (b.waitReady()) {
                    vm.waitReady(b.timeout(), liveWatchdog());
                    captureTopology();
                }
            } else if (s instanceof Step.WaitReady w) {
                vm().waitReady(w.timeout(), liveWatchdog());
                captureTopology();
            } else if (s instanceof Step.Qmp q) {
                qmp(q);
            } else if (s instanceof Step.Hmp h) {
                String out = QmpClient.join(vm().qmp().execute("human-monitor-command",
                        Json.object().put("command-line", h.command()), h.timeout())).asText();
                writeArtifact("hmp-" + idx + ".txt", out);
                if (h.expect() != null && !h.expect().matcher(out).find())
                    throw new StepFailure("HMP output does not match /" + h.expect().pattern() + "/", out);
            } else if (s instanceof Step.Guest g) {
                guest(g, idx);
            } else if (s instanceof Step.Inject inj) {
                ObjectNode a = Json.object().put("path", inj.path()).put("property", inj.property());
                a.set("value", PropertyTypes.coerce(inj.value(),
                        types.objectTypes(vm().qmp(), inj.path()).get(inj.property())));
                expectOutcome("qom-set", a, Steps.QMP_TIMEOUT, inj.expectErrorClass(), null, null);
            } else if (s instanceof Step.QomGet g) {
                JsonNode v = QmpClient.join(vm().qmp().execute("qom-get",
                        Json.object().put("path", g.path()).put("property", g.property())));
                log("  qom-get = " + Json.compact(v));
                if (g.expect() != null) {
                    String m = Json.subsetMismatch(g.expect(), v, g.property());
                    if (m != null) throw new StepFailure("qom-get " + g.path() + " " + m);
                }
                if (g.expectMatch() != null && !g.expectMatch().matcher(v.isValueNode() ? v.asText() : Json.compact(v)).find())
                    throw new StepFailure("qom-get " + g.path() + "." + g.property() + " = " + Json.compact(v)
                            + " does not match /" + g.expectMatch().pattern() + "/");
            } else if (s instanceof Step.Hotplug h) {
                QmpClient q = vm().qmp();
                long seq = q.lastEventSeq();
                ObjectNode args = h.args().deepCopy();
                PropertyTypes.coerce(args, types.deviceTypes(q, args.path("driver").asText()));
                QmpClient.join(q.execute("device_add", args, h.timeout()));
                if (h.waitEvent() != null) {
                    QmpEvent e = QmpClient.join(q.awaitEvent(h.waitEvent(), null, seq, h.timeout()));
                    eventCursor = Math.max(eventCursor, e.seq());
                }
            } else if (s instanceof Step.Unplug u) {
                QmpClient q = vm().qmp();
                long seq = q.lastEventSeq();
                QmpClient.join(q.execute("device_del", Json.object().put("id", u.id()), u.timeout()));
                if (u.awaitDeleted()) {
                    QmpEvent e;
                    try {
                        e = QmpClient.join(q.awaitEvent("DEVICE_DELETED", Json.object().put("device", u.id()),
                                seq, u.timeout()));
                    } catch (io.p2plab.qmp.QmpTimeoutException te) {
                        // the guest did not release the device: where its tasks wait says why (a driver's
                        // remove(), a user holding a vfio device ...)
                        throw new StepFailure(te.getMessage() + (vm.spec().guestAgent()
                                ? "; " + dumpBlockedTasks(vm.guestAgent()) : ""), vm.console().tail(30));
                    }
                    eventCursor = Math.max(eventCursor, e.seq());
                }
            } else if (s instanceof Step.WaitEvent w) {
                QmpEvent e = QmpClient.join(vm().qmp().awaitEvent(w.event(), w.data(), eventCursor, w.timeout()));
                eventCursor = e.seq();
                log("  event " + Json.compact(e.raw()));
            } else if (s instanceof Step.ConsoleExpect ce) {
                try {
                    Console.Match m = vm().console().await(ce.regex(), consoleCursor, ce.timeout(), liveWatchdog());
                    if (m == null) throw new StepFailure("/" + ce.regex().pattern() + "/ not seen on the console within "
                            + ce.timeout().toMillis() + " ms", vm.console().tail(30));
                    consoleCursor = m.endOffset();
                } catch (InterruptedException e) {
                    throw new StepFailure("interrupted");
                } catch (VmException e) {
                    Console.Problem p = vm.console().problem();
                    throw new StepFailure(e.getMessage().split("\n")[0], p != null ? p.excerpt() : vm.console().tail(30));
                }
            } else if (s instanceof Step.Sleep sl) {
                try {
                    Thread.sleep(sl.duration().toMillis());
                } catch (InterruptedException e) {
                    throw new StepFailure("interrupted");
                }
            } else if (s instanceof Step.Repeat r) {
                for (int k = 1; k <= r.count(); k++) {
                    runSteps(r.steps(), idx + "#" + k + ".");
                }
            } else {
                throw new IllegalStateException("unhandled step " + s);
            }
        }

        void qmp(Step.Qmp q) {
            if (q.oob()) {
                JsonNode r = QmpClient.join(vm().qmp().executeOob(q.execute(), q.args(), q.timeout()));
                check(q, r);
                return;
            }
            expectOutcome(q.execute(), q.args(), q.timeout(), q.expectErrorClass(), q.expectErrorDesc(), q);
        }

        private void check(Step.Qmp q, JsonNode r) {
            if (q.expect() != null) {
                String m = Json.subsetMismatch(q.expect(), r, "return");
                if (m != null) throw new StepFailure(q.execute() + ": " + m);
            }
        }

        void expectOutcome(String cmd, JsonNode args, Duration timeout, String errCls, java.util.regex.Pattern errDesc,
                           Step.Qmp q) {
            JsonNode r;
            try {
                r = QmpClient.join(vm().qmp().execute(cmd, args, timeout));
            } catch (QmpErrorException e) {
                if (errCls == null) throw new StepFailure(cmd + " failed: " + e.errorClass() + ": " + e.description());
                if (!errCls.equals("*") && !errCls.equals(e.errorClass()))
                    throw new StepFailure(cmd + " failed with " + e.errorClass() + " but " + errCls + " was expected: "
                            + e.description());
                if (errDesc != null && !errDesc.matcher(e.description()).find())
                    throw new StepFailure(cmd + " error description '" + e.description() + "' does not match /"
                            + errDesc.pattern() + "/");
                return;
            }
            if (errCls != null) throw new StepFailure(cmd + " succeeded (" + Json.compact(r) + ") but error "
                    + errCls + " was expected");
            if (q != null) check(q, r);
        }

        void guest(Step.Guest g, String idx) {
            GuestAgent ga = vm().guestAgent();
            List<String> argv = g.argv() != null ? g.argv() : List.of("/bin/sh", "-c", g.shell());
            // a hung or dead guest will not finish the command: fail now rather than at the step's timeout
            Vm v = vm;
            java.util.function.Supplier<Console.Problem> abort = liveWatchdog()
                    ? () -> v.console().problem(GUEST_IS_STUCK) : null;
            String base = "guest-" + (g.save() != null ? g.save() : String.format("%03d", ++guestSeq));
            GuestStream stream = g.streams()
                    ? new GuestStream(ga, base, l -> progress.println("      > " + (l.length() > 300 ? l.substring(0, 297) + "..." : l)))
                    : null;
            if (stream != null) log("  streaming the command's output (live lines on the progress stream)");
            GuestAgent.ExecResult r;
            try {
                r = exec(ga, argv, g.timeout(), abort, stream);
            } catch (io.p2plab.qmp.QmpTimeoutException te) {
                throw new StepFailure(te.getMessage() + "; " + dumpBlockedTasks(ga));
            }
            writeArtifact(base + ".stdout", r.out());
            writeArtifact(base + ".stderr", r.err());
            log("  guest exit " + r.exitCode() + (r.signal() != null ? " signal " + r.signal() : ""));
            String outs = "stdout:\n" + tail(r.out()) + "\nstderr:\n" + tail(r.err());
            if (g.expectExit() != null && r.exitCode() != g.expectExit())
                throw new StepFailure("exit code " + r.exitCode() + (r.signal() != null ? " (signal " + r.signal() + ")" : "")
                        + ", expected " + g.expectExit(), outs);
            if (g.stdout() != null && !g.stdout().matcher(r.out()).find())
                throw new StepFailure("stdout does not match /" + g.stdout().pattern() + "/", outs);
            if (g.stderr() != null && !g.stderr().matcher(r.err()).find())
                throw new StepFailure("stderr does not match /" + g.stderr().pattern() + "/", outs);
        }

        /**
         * A guest command ran past its timeout: ask the guest kernel for the stacks of its blocked
         * (D-state) tasks (sysrq 'w' through /proc/sysrq-trigger, which ignores the sysrq mask) and
         * keep them with the kernel log as blocked-tasks.txt, so a hang is reported with where it
         * waits. Bounded: 20 s for the agent; a guest whose agent no longer answers says so.
         */
        String dumpBlockedTasks(GuestAgent ga) {
            try {
                GuestAgent.ExecResult d = exec(ga, List.of("/bin/sh", "-c",
                        "echo w > /proc/sysrq-trigger; sleep 1; dmesg | sed -n '/sysrq: Show Blocked State/,$p'"),
                        Duration.ofSeconds(20), null, null);
                writeArtifact("blocked-tasks.txt", d.out() + d.err());
                long tasks = d.out().lines().filter(l -> l.contains("task:")).count();
                return "blocked tasks (sysrq-w): " + tasks + " in D state, stacks in blocked-tasks.txt";
            } catch (RuntimeException e) {
                return "no blocked-task dump (the guest agent did not answer: " + e.getMessage() + ")";
            }
        }

        private String tail(String s) {
            String[] l = s.split("\n");
            int from = Math.max(0, l.length - 30);
            return String.join("\n", java.util.Arrays.copyOfRange(l, from, l.length));
        }

        void writeArtifact(String name, String content) {
            try {
                Files.writeString(dir.resolve(name), content, StandardCharsets.UTF_8);
            } catch (IOException e) {
                log("cannot write " + name + ": " + e);
            }
        }
    }
}
