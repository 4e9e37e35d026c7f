package io.p2plab.vm;

import io.p2plab.qmp.QmpClient;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.Transport;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Proves KVM works by starting a throwaway {@code -machine none -accel kvm} QEMU and asking query-kvm. */
public final class KvmProbe {
    private KvmProbe() {}

    /** @return null if KVM works, else why not */
    public static String probe(String qemu, Duration timeout) {
        if (!Files.isReadable(Path.of("/dev/kvm")) || !Files.isWritable(Path.of("/dev/kvm"))) return "/dev/kvm not accessible";
        Path dir = Vm.privateRunDir();
        Process p = null;
        try {
            Path sock = dir.resolve("probe.sock");
            p = new ProcessBuilder(List.of(qemu, "-machine", "none", "-accel", "kvm", "-nodefaults", "-display", "none",
                    "-qmp", "unix:" + sock + ",server=on,wait=off")).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("probe.log").toFile()).start();
            ProcessRegistry.register(p);
            long deadline = System.nanoTime() + timeout.toNanos();
            while (!Files.exists(sock)) {
                if (!p.isAlive()) return "QEMU -accel kvm exited: " + Files.readString(dir.resolve("probe.log")).trim();
                if (System.nanoTime() > deadline) return "QEMU -accel kvm hung for " + timeout.toSeconds() + " s";
                Thread.sleep(20);
            }
            try (QmpClient q = QmpClient.connect(Transport.unix(sock), ConnectionOptions.defaults()
                    .withConnectTimeout(timeout).withTimeout(timeout))) {
                var r = q.call("query-kvm");
                return r.path("enabled").asBoolean() ? null : "query-kvm says KVM is not enabled";
            }
        } catch (Exception e) {
            return "probe failed: " + e.getMessage();
        } finally {
            if (p != null) {
                p.destroyForcibly();
                try { p.waitFor(2, TimeUnit.SECONDS); } catch (InterruptedException ignored) { Thread.currentThread().interrupt(); }
                ProcessRegistry.unregister(p);
            }
            Vm.deleteTree(dir);
        }
    }
}
