package io.p2plab.bench;

import io.p2plab.qmp.QmpClient;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.Transport;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * QMP throughput: COUNT query-status with DEPTH commands in flight (each completion sends the next one).
 * <pre>
 * QmpBench [--warmup N] [--warmup-max-seconds S] [--timeout-ms MS] [--no-oob] SOCKET COUNT DEPTH...
 * QmpBench [...] --serve SOCKET DEPTH...     (bench/alternate.py: warm up at these depths, print "ready",
 *                                             then one "DEPTH COUNT" batch per stdin line)
 * </pre>
 * Prints "p2plab-java DEPTH COUNT SECONDS RATE" per depth on stdout, and on stderr the warm-up and the
 * most commands seen in flight (depth 8 must really keep 8 outstanding). Warm-up: at least N commands at
 * each depth (default 5000), then more rounds of 2000 until the JIT has been quiet for 3 rounds in a row (at most S seconds, default 20), all through the serve loop's own code: on 2 cores a C2 compile
 * that overlaps the measurement steals the CPU QEMU needs, and the figure would measure the compiler, not
 * the client.
 */
public final class QmpBench {
    private static boolean oob = true;
    /** JIT time (ms) a round may still take and count as quiet: tier-1/3 compiles of cold printf code. */
    private static final long QUIET_MS = 5;

    public static void main(String[] argv) throws Exception {
        int warm = 5000;
        boolean serve = false;
        oob = true;
        double warmMax = 20;
        long timeoutMs = 60_000;
        List<String> pos = new ArrayList<>();
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--warmup" -> warm = Integer.parseInt(argv[++i]);
                case "--warmup-max-seconds" -> warmMax = Double.parseDouble(argv[++i]);
                case "--timeout-ms" -> timeoutMs = Long.parseLong(argv[++i]);
                case "--serve" -> serve = true;
                case "--no-oob" -> oob = false;
                default -> pos.add(argv[i]);
            }
        }
        if (serve && pos.size() >= 2) {
            serve(pos.get(0), pos.subList(1, pos.size()), warm, warmMax, timeoutMs);
            return;
        }
        if (pos.size() < 3) {
            System.err.println("usage: QmpBench [--warmup N] [--warmup-max-seconds S] [--timeout-ms MS] SOCKET COUNT DEPTH...");
            System.exit(2);
        }
        String sock = pos.get(0);
        int count = Integer.parseInt(pos.get(1));
        ConnectionOptions o = ConnectionOptions.defaults().withMaxInFlight(64).withTimeout(Duration.ofMillis(timeoutMs))
                .withOob(oob);
        try (QmpClient q = QmpClient.connect(Transport.parse(sock), o)) {
            warmUp(q, warm, warmMax, pos.subList(2, pos.size()));
            for (int i = 2; i < pos.size(); i++) {
                int depth = Integer.parseInt(pos.get(i));
                Result r = run(q, count, depth);
                System.out.printf(Locale.ROOT, "p2plab-java %d %d %.3f %.0f%n", depth, count, r.seconds, count / r.seconds);
                System.err.printf(Locale.ROOT, "p2plab-java depth %d: at most %d in flight%n", depth, r.maxInFlight);
            }
        }
    }

    private static void serve(String sock, List<String> depths, int warm, double warmMax, long timeoutMs)
            throws Exception {
        ConnectionOptions o = ConnectionOptions.defaults().withMaxInFlight(64).withTimeout(Duration.ofMillis(timeoutMs))
                .withOob(oob);
        try (QmpClient q = QmpClient.connect(Transport.parse(sock), o);
             BufferedReader in = new BufferedReader(new InputStreamReader(System.in))) {
            warmUp(q, warm, warmMax, depths);
            System.out.println("ready");
            System.out.flush();
            String line;
            while ((line = in.readLine()) != null) batch(q, line, System.out);
        }
    }

    /** One "DEPTH COUNT" request line of serve mode: runs the batch and prints its result line to {@code out}. */
    private static void batch(QmpClient q, String line, PrintStream out) throws Exception {
        String[] f = line.trim().split("\\s+");
        int depth = Integer.parseInt(f[0]), count = Integer.parseInt(f[1]);
        Result r = run(q, count, depth);
        out.printf(Locale.ROOT, "p2plab-java %d %d %.3f %.0f%n", depth, count, r.seconds, count / r.seconds);
        out.flush();
        if (r.maxInFlight < Math.min(depth, 64) && count >= 64 * depth)
            System.err.printf(Locale.ROOT, "p2plab-java depth %d: only %d in flight%n", depth, r.maxInFlight);
    }

    /**
     * Warm-up rounds go through the serve loop's own code (a line read through a BufferedReader, the batch,
     * the printf of its result, to nowhere) and the client idles once: the first batch after "ready"
     * otherwise loads classes that make the compiled hot path not entrant (class-hierarchy deoptimisation),
     * and C2 recompiled it during the measurement. Quiet = at most {@link #QUIET_MS} of compilation during each of 3 rounds in a row: a
     * compile still queued behind a long one finishes late, so one quiet round proves little on 2 busy cores.
     */
    private static void warmUp(QmpClient q, int warm, double maxSeconds, List<String> depths) throws Exception {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        boolean timed = jit != null && jit.isCompilationTimeMonitoringSupported();
        PrintStream nowhere = new PrintStream(OutputStream.nullOutputStream());
        long t0 = System.nanoTime();
        int n = 0;
        for (String d : depths) { rehearse(q, d, warm, nowhere); n += warm; }
        // idle for longer than the event loop's 1 s epoll timeout, as between the batches of alternate.py: its
        // idle path, never taken while busy, would otherwise deoptimise and recompile during the first batch
        Thread.sleep(1200);
        if (!timed) return;
        long before = jit.getTotalCompilationTime();
        int rounds = 0, quiet = 0;
        while (quiet < 3 && (System.nanoTime() - t0) / 1e9 < maxSeconds) {
            for (String d : depths) { rehearse(q, d, 2000, nowhere); n += 2000; }
            rounds++;
            long now = jit.getTotalCompilationTime();
            quiet = now - before <= QUIET_MS ? quiet + 1 : 0;
            before = now;
        }
        System.err.printf(Locale.ROOT, "p2plab-java warm-up: %d commands, %.1f s, JIT %s%n", n,
                (System.nanoTime() - t0) / 1e9, quiet >= 3 ? "quiet for the last 3 of " + rounds + " extra round(s)"
                        : "still compiling after " + rounds + " extra round(s)");
    }

    private static void rehearse(QmpClient q, String depth, int count, PrintStream out) throws Exception {
        BufferedReader r = new BufferedReader(new InputStreamReader(
                new ByteArrayInputStream((depth + " " + count + "\n").getBytes(StandardCharsets.UTF_8))));
        batch(q, r.readLine(), out);
    }

    private record Result(double seconds, int maxInFlight) {}

    /** Keeps {@code depth} commands outstanding until {@code count} have completed. */
    static Result run(QmpClient q, int count, int depth) throws Exception {
        AtomicInteger issued = new AtomicInteger();
        AtomicInteger maxInFlight = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(depth);
        AtomicReference<Throwable> err = new AtomicReference<>();
        long t0 = System.nanoTime();
        for (int w = 0; w < depth; w++) chain(q, issued, count, done, err, maxInFlight);
        done.await();
        double s = (System.nanoTime() - t0) / 1e9;
        if (err.get() != null) throw new IllegalStateException(err.get());
        return new Result(s, maxInFlight.get());
    }

    private static void chain(QmpClient q, AtomicInteger issued, int count, CountDownLatch done,
                              AtomicReference<Throwable> err, AtomicInteger maxInFlight) {
        int i = issued.getAndIncrement();
        if (i >= count) {
            done.countDown();
            return;
        }
        CompletableFuture<?> f = q.execute("query-status");
        if ((i & 63) == 63) {
            int now = q.inFlight();
            if (now > maxInFlight.get()) maxInFlight.set(now);
        }
        f.whenComplete((r, t) -> {
            if (t != null) {
                err.compareAndSet(null, t);
                done.countDown();
            } else {
                chain(q, issued, count, done, err, maxInFlight);
            }
        });
    }
}
