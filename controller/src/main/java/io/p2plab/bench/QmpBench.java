package io.p2plab.bench;

import io.p2plab.qmp.ConnectionOptions;
import io.p2plab.qmp.QmpClient;
import io.p2plab.qmp.Transport;

import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * QMP throughput: N query-status with a given number of commands in flight.
 * Usage: QmpBench SOCKET COUNT DEPTH... ; prints "p2plab-java DEPTH COUNT SECONDS RATE" per depth.
 */
public final class QmpBench {
    public static void main(String[] args) throws Exception {
        String sock = args[0];
        int count = Integer.parseInt(args[1]);
        try (QmpClient q = QmpClient.connect(Transport.parse(sock), ConnectionOptions.defaults().withMaxInFlight(64).withTimeout(java.time.Duration.ofMillis(Long.getLong("bench.timeoutMs", 60000))))) {
            int warm = Integer.getInteger("bench.warmup", 5000);
            run(q, warm, 8); // JIT warm-up (both paths), not reported
            run(q, warm, 1);
            for (int i = 2; i < args.length; i++) {
                int depth = Integer.parseInt(args[i]);
                double s = run(q, count, depth);
                System.out.printf(Locale.ROOT, "p2plab-java %d %d %.3f %.0f%n", depth, count, s, count / s);
            }
        }
    }

    /** Keeps {@code depth} commands outstanding until {@code count} have completed. */
    static double run(QmpClient q, int count, int depth) throws Exception {
        AtomicInteger issued = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(depth);
        AtomicReference<Throwable> err = new AtomicReference<>();
        long t0 = System.nanoTime();
        for (int w = 0; w < depth; w++) chain(q, issued, count, done, err);
        done.await();
        if (err.get() != null) throw new IllegalStateException(err.get());
        return (System.nanoTime() - t0) / 1e9;
    }

    private static void chain(QmpClient q, AtomicInteger issued, int count, CountDownLatch done,
                              AtomicReference<Throwable> err) {
        if (issued.getAndIncrement() >= count) {
            done.countDown();
            return;
        }
        CompletableFuture<?> f = q.execute("query-status");
        f.whenComplete((r, t) -> {
            if (t != null) {
                err.compareAndSet(null, t);
                done.countDown();
            } else {
                chain(q, issued, count, done, err);
            }
        });
    }
}
