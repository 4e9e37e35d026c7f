package io.p2plab.vm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** QEMU processes never outlive the controller: normal close, failures, and a killed (SIGTERM) JVM. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class NoLeftoverProcessesTest {
    @TempDir
    Path tmp;

    @Test
    void closeQuitsQemuAndRemovesTheRuntimeDir() {
        Vm vm = Vm.launch(MachineSpec.none(), tmp, null);
        ProcessHandle h = vm.process().toHandle();
        Path run = vm.runDir();
        assertThat(run.toFile().canRead()).isTrue();
        vm.close();
        assertThat(h.isAlive()).isFalse();
        assertThat(run).doesNotExist();
        assertThat(ProcessRegistry.live()).isZero();
    }

    @Test
    void unresponsiveQemuIsKilledAfterTheGracePeriod() throws Exception {
        Vm vm = Vm.launch(MachineSpecs.parse("type: none\nquit-grace: 1\n"), tmp, null);
        new ProcessBuilder("kill", "-STOP", String.valueOf(vm.pid())).start().waitFor();
        long t0 = System.nanoTime();
        vm.close();
        assertThat(vm.isAlive()).isFalse();
        assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(10_000);
    }

    @Test
    void badCommandLineFailsClearlyWithoutLeftovers() {
        MachineSpec bad = MachineSpecs.parse("type: none\nextra-args: [-device, no-such-device-xyz]\n");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Vm.launch(bad, tmp, null))
                .isInstanceOf(VmException.class).hasMessageContaining("no-such-device-xyz");
        assertThat(ProcessRegistry.live()).isZero();
    }

    @Test
    void killedControllerJvmTakesQemuWithIt() throws Exception {
        killControllerAndCheck(false);
    }

    @Test
    void sigkilledControllerJvmTakesQemuWithIt() throws Exception {
        killControllerAndCheck(true);
    }

    private void killControllerAndCheck(boolean sigkill) throws Exception {
        Path scen = tmp.resolve("long.yaml");
        Files.writeString(scen, "name: long\nmachine: {type: none}\nsteps:\n  - qmp: query-status\n  - sleep: 60\n");
        Process jvm = new ProcessBuilder(List.of("java", "--add-modules=jdk.incubator.foreign",
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "io.p2plab.cli.Main", "run", "--out", tmp.resolve("out").toString(), scen.toString()))
                .redirectErrorStream(true).redirectOutput(tmp.resolve("log").toFile()).start();
        try {
            long end = System.currentTimeMillis() + 30_000;
            List<ProcessHandle> qemu = List.of();
            while (System.currentTimeMillis() < end) {
                qemu = jvm.descendants().filter(p -> p.info().command().orElse("").contains("qemu")).toList();
                if (!qemu.isEmpty() && Files.readString(tmp.resolve("log")).contains("step 2 sleep")) break;
                Thread.sleep(100);
            }
            assertThat(qemu).as(Files.readString(tmp.resolve("log"))).hasSize(1);
            if (sigkill) jvm.destroyForcibly();   // SIGKILL: no hook runs; the reaper sidecar must act
            else jvm.destroy();                    // SIGTERM: the shutdown hook must SIGKILL QEMU
            assertThat(jvm.waitFor(20, TimeUnit.SECONDS)).isTrue();
            ProcessHandle q = qemu.get(0);
            long dl = System.currentTimeMillis() + 15_000;
            while (q.isAlive() && System.currentTimeMillis() < dl) Thread.sleep(50);
            assertThat(q.isAlive()).isFalse();
        } finally {
            jvm.descendants().forEach(ProcessHandle::destroyForcibly);
            jvm.destroyForcibly();
        }
    }
}
