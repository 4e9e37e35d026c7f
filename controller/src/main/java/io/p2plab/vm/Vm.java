package io.p2plab.vm;

import io.p2plab.ga.GuestAgent;
import io.p2plab.qmp.QmpClient;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.JsonRpcConnection;
import io.p2plab.rpc.Transport;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * A running QEMU: process, QMP connection, console, optional guest agent. Closing it quits QEMU
 * (QMP quit, then SIGKILL after the grace period) and removes the private runtime dir.
 */
public final class Vm implements AutoCloseable {
    private final MachineSpec spec;
    private final Process process;
    private final Path runDir;
    private final Path caseDir;
    private final QmpClient qmp;
    private final Console console;
    private final List<String> cmdline;
    private final BufferedWriter transcript;
    private GuestAgent ga;
    private boolean closed;

    private Vm(MachineSpec spec, Process process, Path runDir, Path caseDir, QmpClient qmp, Console console,
               List<String> cmdline, BufferedWriter transcript) {
        this.spec = spec;
        this.process = process;
        this.runDir = runDir;
        this.caseDir = caseDir;
        this.qmp = qmp;
        this.console = console;
        this.cmdline = cmdline;
        this.transcript = transcript;
    }

    public static Path privateRunDir() {
        String base = System.getenv("XDG_RUNTIME_DIR");
        Path b = base != null && Files.isDirectory(Path.of(base)) ? Path.of(base) : Path.of(System.getProperty("java.io.tmpdir"));
        try {
            return Files.createTempDirectory(b, "p2plab-", PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rwx------")));
        } catch (IOException e) {
            throw new VmException("cannot create a private runtime dir under " + b + ": " + e.getMessage(), e);
        }
    }

    /** Starts QEMU for {@code spec}; artefacts (console.log, qmp-transcript.log...) go to {@code caseDir}. */
    public static Vm launch(MachineSpec spec, Path caseDir, Consumer<String> log) {
        try {
            Files.createDirectories(caseDir);
        } catch (IOException e) {
            throw new VmException("cannot create " + caseDir + ": " + e.getMessage(), e);
        }
        String qemu = QemuCommand.findQemu(spec.qemu());
        boolean kvm = false;
        if (spec.accel().equals("kvm")) {
            String why = KvmProbe.probe(qemu, Duration.ofSeconds(8));
            if (why == null) kvm = true;
            else if (log != null) log.accept("KVM requested but not usable (" + why + "): using TCG");
        }
        Path runDir = privateRunDir();
        List<String> cmd = QemuCommand.build(spec, qemu, runDir, caseDir, kvm);
        Process p = null;
        BufferedWriter tr = null;
        Console console = null;
        try {
            Files.writeString(caseDir.resolve("qemu-cmdline.txt"), shellQuote(cmd) + "\n");
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(caseDir.resolve("qemu-stderr.log").toFile());
            p = pb.start();
            ProcessRegistry.register(p);
            startReaper(p, runDir);
            console = new Console(p.getInputStream(), spec.type().equals("none") ? null : caseDir.resolve("console.log"),
                    spec.watchdog());
            Path sock = runDir.resolve("qmp.sock");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (!Files.exists(sock)) {
                if (!p.isAlive()) throw new VmException("QEMU exited with status " + p.exitValue() + " at startup: "
                        + stderrTail(caseDir) + "\ncommand: " + shellQuote(cmd));
                if (System.nanoTime() > deadline) throw new VmException("QEMU did not create its QMP socket within 20 s");
                Thread.sleep(10);
            }
            tr = Files.newBufferedWriter(caseDir.resolve("qmp-transcript.log"));
            QmpClient q;
            try {
                while (true) {
                    try {
                        q = QmpClient.connect(Transport.unix(sock), ConnectionOptions.defaults());
                        break;
                    } catch (io.p2plab.qmp.QmpClosedException e) {
                        // the socket file exists between QEMU's bind() and listen(): ECONNREFUSED, retry
                        if (!e.getMessage().startsWith("cannot connect") || !p.isAlive() || System.nanoTime() > deadline)
                            throw e;
                        Thread.sleep(20);
                    }
                }
            } catch (RuntimeException e) {
                // QEMU creates the QMP socket before it builds the machine: a bad device exits just after
                if (p.waitFor(3, TimeUnit.SECONDS))
                    throw new VmException("QEMU exited with status " + p.exitValue() + " at startup: "
                            + stderrTail(caseDir) + "\ncommand: " + shellQuote(cmd), e);
                throw e;
            }
            BufferedWriter w = tr;
            writeTranscript(w, new JsonRpcConnection.TranscriptEntry(System.currentTimeMillis(), '<',
                    io.p2plab.util.Json.compact(q.greeting()) + "  (greeting; capabilities negotiated"
                            + (q.oobEnabled() ? ", oob enabled)" : ")")));
            q.addTranscriptListener(e -> writeTranscript(w, e));
            return new Vm(spec, p, runDir, caseDir, q, console, cmd, tr);
        } catch (IOException | InterruptedException | RuntimeException e) {
            if (p != null) {
                p.destroyForcibly();
                try { p.waitFor(5, TimeUnit.SECONDS); } catch (InterruptedException ignored) { }
                ProcessRegistry.unregister(p);
            }
            if (console != null) console.close();
            try { if (tr != null) tr.close(); } catch (IOException ignored) { }
            deleteTree(runDir);
            if (e instanceof VmException v) throw v;
            if (e instanceof InterruptedException) Thread.currentThread().interrupt();
            throw new VmException("cannot launch QEMU: " + e.getMessage(), e);
        }
    }

    /**
     * A JVM that is SIGKILLed runs no shutdown hook: a tiny sh watches the JVM and this QEMU and
     * SIGKILLs QEMU when the JVM is gone. It exits by itself when QEMU exits, and only kills a process
     * whose command line still names our private runtime dir (no harm on PID reuse).
     */
    private static void startReaper(Process qemu, Path runDir) {
        String script = "jvm=$1; q=$2; tag=$3; "
                + "while kill -0 \"$jvm\" 2>/dev/null && kill -0 \"$q\" 2>/dev/null; do sleep 1; done; "
                + "if kill -0 \"$q\" 2>/dev/null && tr '\\000' ' ' < /proc/\"$q\"/cmdline | grep -qF -- \"$tag\"; "
                + "then kill -9 \"$q\"; fi";
        try {
            new ProcessBuilder("sh", "-c", script, "p2plab-reaper", String.valueOf(ProcessHandle.current().pid()),
                    String.valueOf(qemu.pid()), runDir.toString())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            // best effort: the shutdown hook still covers normal exits and signals
        }
    }

    private static void writeTranscript(BufferedWriter w, JsonRpcConnection.TranscriptEntry e) {
        synchronized (w) {
            try {
                w.write(Instant.ofEpochMilli(e.epochMillis()) + " " + e.direction() + " " + e.text() + "\n");
                w.flush();
            } catch (IOException ignored) { }
        }
    }

    public static String stderrTail(Path caseDir) {
        try {
            List<String> l = Files.readAllLines(caseDir.resolve("qemu-stderr.log"));
            return String.join("\n", l.subList(Math.max(0, l.size() - 15), l.size()));
        } catch (IOException e) {
            return "(no stderr)";
        }
    }

    public static String shellQuote(List<String> cmd) {
        StringBuilder b = new StringBuilder();
        for (String s : cmd) {
            if (b.length() > 0) b.append(' ');
            if (s.matches("[A-Za-z0-9_./=:,+@%-]+")) b.append(s);
            else b.append('\'').append(s.replace("'", "'\\''")).append('\'');
        }
        return b.toString();
    }

    public MachineSpec spec() { return spec; }
    public QmpClient qmp() { return qmp; }
    public Console console() { return console; }
    public Path caseDir() { return caseDir; }
    public Path runDir() { return runDir; }
    public List<String> commandLine() { return cmdline; }
    public long pid() { return process.pid(); }
    public boolean isAlive() { return process.isAlive(); }
    public Process process() { return process; }

    /** Waits for the ready regex on the console. */
    public void waitReady() {
        waitReady(null);
    }

    public void waitReady(Duration override) {
        waitReady(override, true);
    }

    /** @param stopOnProblem fail as soon as the console watchdog sees a splat headline */
    public void waitReady(Duration override, boolean stopOnProblem) {
        if (spec.ready() == null) return;
        Duration t = override != null ? override : spec.readyTimeout();
        try {
            Console.Match m = console.await(spec.ready(), 0, t, stopOnProblem);
            if (m == null) throw new VmException("guest not ready: /" + spec.ready().pattern() + "/ not seen on the console within "
                    + t.toSeconds() + " s; last console lines:\n" + console.tail(15));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new VmException("interrupted");
        }
    }

    /** The guest agent connection (connected on first use). */
    public synchronized GuestAgent guestAgent() {
        if (!spec.guestAgent()) throw new VmException("this machine has no guest agent channel (guest-agent: false)");
        if (ga == null || !ga.isOpen()) {
            ga = GuestAgent.connect(Transport.unix(runDir.resolve("qga.sock")), ConnectionOptions.defaults());
            BufferedWriter w = transcript;
            ga.addTranscriptListener(e -> writeTranscript(w, new JsonRpcConnection.TranscriptEntry(e.epochMillis(),
                    e.direction(), "[ga] " + e.text())));
        }
        return ga;
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        try {
            if (process.isAlive() && qmp.isOpen()) {
                try {
                    qmp.execute("quit", null, Duration.ofSeconds(2)).get(3, TimeUnit.SECONDS);
                } catch (Exception ignored) {
                    // QEMU may close the socket before answering
                }
            }
            if (!process.waitFor(spec.quitGrace().toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        } finally {
            qmp.close();
            if (ga != null) ga.close();
            ProcessRegistry.unregister(process);
            try { transcript.close(); } catch (IOException ignored) { }
            deleteTree(runDir);
        }
    }

    static void deleteTree(Path d) {
        if (d == null || !Files.exists(d)) return;
        try (Stream<Path> s = Files.walk(d)) {
            s.sorted(Comparator.reverseOrder()).forEach(x -> {
                try { Files.deleteIfExists(x); } catch (IOException e) { throw new UncheckedIOException(e); }
            });
        } catch (IOException | UncheckedIOException ignored) { }
    }
}
