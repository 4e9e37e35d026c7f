package io.p2plab.scenario;

import io.p2plab.vm.QemuCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Boots the real guest kernel (no initramfs: it panics at mount-root) on the q35 P2P topology:
 * exercises qboot, the console tee/log, console-expect, a declared (expected) panic and expect-fail. With the
 * project's QEMU (p2plab device present) it also injects fail-nth on a p2plab device.
 * Needs a kernel: $P2PLAB_KERNEL or ~/.cache/p2plab/kernel-*&#47;vmlinuz (scripts/fetch-kernel.sh); skipped otherwise.
 */
@Timeout(value = 150, unit = TimeUnit.SECONDS)
class KernelBootTest {
    @TempDir
    Path tmp;

    static Path kernel() throws IOException {
        String env = System.getenv("P2PLAB_KERNEL");
        if (env != null && Files.isRegularFile(Path.of(env))) return Path.of(env);
        Path cache = Path.of(System.getProperty("user.home"), ".cache", "p2plab");
        if (!Files.isDirectory(cache)) return null;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(cache, "kernel-*")) {
            for (Path d : ds) if (Files.isRegularFile(d.resolve("vmlinuz"))) return d.resolve("vmlinuz");
        }
        return null;
    }

    static boolean hasP2plab() throws Exception {
        Process p = new ProcessBuilder(QemuCommand.findQemu(null), "-device", "help").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor();
        return out.contains("name \"p2plab\"");
    }

    @Test
    void kernelBootsOnTheP2pTopologyAndThePanicIsCaught() throws Exception {
        Path k = kernel();
        assumeTrue(k != null, "no guest kernel (run scripts/fetch-kernel.sh)");
        boolean p2p = hasP2plab();
        Path f = tmp.resolve("boot.yaml");
        Files.writeString(f, """
                name: kernel-boot
                timeout: 120
                expect-fail: no initramfs, the kernel cannot go on after its panic
                expect-splats:
                  - {match: '^Kernel panic - not syncing: VFS: Unable to mount root', reason: no initramfs}
                machine:
                  kernel: %s
                  append: console=ttyS0 panic=-1
                  memory: 512M
                  cpu: EPYC
                  iommu: true
                  guest-agent: false
                  switches:
                    - id: sw0
                      downstream: [dp0, dp1]
                  devices:
                    - {driver: nvme, id: nvme0, bus: dp1, cmb-size-mb: 64}
                %s
                steps:
                  - console-expect: {regex: "Linux version 7", timeout: 90}
                %s
                  - console-expect: {regex: "Kernel panic - not syncing", timeout: 90}
                  - console-expect: {regex: "never printed", timeout: 3}
                """.formatted(k,
                p2p ? "    - {driver: p2plab, id: p2p0, bus: dp0, props: {mem-size: 64M}}" : "",
                p2p ? "  - inject: {device: p2p0, property: fail-nth, value: 3}\n"
                        + "  - qom-get: {device: p2p0, property: fail-nth, expect: 3}" : ""));
        Path junit = tmp.resolve("j.xml");
        EngineRealQemuTest.Run r = EngineRealQemuTest.main("run", "--out", tmp.resolve("out").toString(),
                "--junit", junit.toString(), f.toString());
        assertThat(r.rc()).as(r.err()).isZero();
        assertThat(r.out()).contains("XFAIL");
        assertThat(r.err()).contains("/never printed/ not seen on the console");
        assertThat(Files.readString(junit)).contains("failures=\"0\"");
        Path caseDir = tmp.resolve("out/kernel-boot");
        String console = Files.readString(caseDir.resolve("console.log"));
        assertThat(console).contains("Linux version", "Kernel panic");
        assertThat(console).containsPattern("DMAR|IOMMU");
        // the panic, declared in expect-splats, is kept whole and marked expected (console only: no agent)
        assertThat(Files.readString(caseDir.resolve("kernel-splats.txt")))
                .contains("PANIC (console.log", "expected: no initramfs", "Kernel panic - not syncing: VFS");
        assertThat(Files.readString(caseDir.resolve("qemu-cmdline.txt")))
                .contains("intel-iommu,intremap=off", "intel_iommu=on", "-bios qboot.rom", "xio3130-downstream");
        assertThat(EngineRealQemuTest.qemuChildren()).isZero();
    }
}
