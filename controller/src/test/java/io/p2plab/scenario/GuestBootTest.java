package io.p2plab.scenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The whole path with the lab's guest (kernel + initramfs with qemu-ga, `make guest`): boot, ready
 * line, guest-exec over virtio-serial, stdout/stderr/exit checks, artefacts, hotplug of a device the
 * guest sees. Needs $P2PLAB_GUEST or a complete ~/.cache/p2plab/guest-* and a QEMU with the p2plab
 * device; skipped otherwise.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class GuestBootTest {
    @TempDir
    Path tmp;

    static Path guest() throws IOException {
        String env = System.getenv("P2PLAB_GUEST");
        if (env != null) return Files.isRegularFile(Path.of(env, "initramfs.cpio.gz")) ? Path.of(env) : null;
        Path cache = Path.of(System.getProperty("user.home"), ".cache", "p2plab");
        if (!Files.isDirectory(cache)) return null;
        Path best = null;
        FileTime bt = null;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(cache, "guest-*")) {
            for (Path d : ds) {
                if (!Files.exists(d.resolve(".complete")) || !Files.isRegularFile(d.resolve("initramfs.cpio.gz"))) continue;
                FileTime t = Files.getLastModifiedTime(d.resolve(".complete"));
                if (bt == null || t.compareTo(bt) > 0) { best = d; bt = t; }
            }
        }
        return best;
    }

    /** The lab's guest, copied (the cache may be rebuilt while we run); skips the test without one. */
    private Path copiedGuest() throws Exception {
        Path g = guest();
        assumeTrue(g != null, "no guest build (make guest)");
        assumeTrue(KernelBootTest.hasP2plab(), "QEMU without the p2plab device");
        Path gc = Files.createDirectories(tmp.resolve("guest"));
        Files.copy(g.resolve("vmlinuz"), gc.resolve("vmlinuz"));
        Files.copy(g.resolve("initramfs.cpio.gz"), gc.resolve("initramfs.cpio.gz"));
        return gc;
    }

    @Test
    void bootsTheGuestAndRunsCommandsThroughQemuGa() throws Exception {
        Path gc = copiedGuest();
        Path f = tmp.resolve("guest.yaml");
        Files.writeString(f, """
                name: guest-smoke
                timeout: 200
                machine:
                  kernel: %1$s/vmlinuz
                  initrd: %1$s/initramfs.cpio.gz
                  append: console=ttyS0 panic=-1 loglevel=4 pci=hpmmiosize=1M,hpmmioprefsize=256M
                  memory: 1G
                  root-ports: [{id: rp0}, {id: rp1}]
                  devices:
                    - {driver: p2plab, id: p2p0, bus: rp0, props: {mem-size: 32M}}
                steps:
                  - boot: {}
                  - guest: {exec: [uname, -r], stdout: "^7\\\\.", save: uname}
                  - guest: {shell: "echo out; echo err >&2; exit 7", expect-exit: 7, stdout: "^out$", stderr: "^err$"}
                  - guest: {shell: "ls /dev/p2plab0"}
                  - inject: {device: p2p0, property: fail-nth, value: "0"}
                  - hotplug: {driver: p2plab, id: hp0, bus: rp1, props: {mem-size: 32M}}
                  - guest: {shell: "for i in $(seq 1 150); do ls /dev/p2plab1 2>/dev/null && exit 0; sleep 0.2; done; exit 1", timeout: 60}
                  # the guest's pciehp removes it (DEVICE_DELETED itself comes from QEMU's device_finalize,
                  # see the report: not awaited here)
                  - unplug: {id: hp0, wait: false}
                  - guest: {shell: "for i in $(seq 1 150); do [ -e /dev/p2plab1 ] || exit 0; sleep 0.2; done; exit 1", timeout: 60}
                """.formatted(gc));
        EngineRealQemuTest.Run r = EngineRealQemuTest.main("run", "--out", tmp.resolve("out").toString(), f.toString());
        assertThat(r.rc()).as(r.err()).isZero();
        Path dir = tmp.resolve("out/guest-smoke");
        assertThat(Files.readString(dir.resolve("guest-uname.stdout"))).startsWith("7.");
        assertThat(Files.readString(dir.resolve("console.log"))).contains("P2PLAB-READY");
        assertThat(Files.readString(dir.resolve("qmp-transcript.log"))).contains("[ga] ", "guest-sync-delimited");
        assertThat(EngineRealQemuTest.qemuChildren()).isZero();
    }

    /** A guest command past its timeout fails its step with the guest's blocked-task stacks kept. */
    @Test
    void aGuestCommandPastItsTimeoutLeavesTheBlockedTaskDump() throws Exception {
        Path gc = copiedGuest();
        Path f = tmp.resolve("hang.yaml");
        Files.writeString(f, """
                name: guest-hang
                timeout: 200
                machine:
                  kernel: %1$s/vmlinuz
                  initrd: %1$s/initramfs.cpio.gz
                  append: console=ttyS0 panic=-1 loglevel=4
                  memory: 1G
                steps:
                  - boot: {}
                  - guest: {shell: "sleep 120", timeout: 3}
                  - guest: {shell: "echo not reached", save: after}
                """.formatted(gc));
        EngineRealQemuTest.Run r = EngineRealQemuTest.main("run", "--out", tmp.resolve("out").toString(), f.toString());
        assertThat(r.rc()).as(r.err()).isNotZero();
        assertThat(r.out() + r.err()).contains("blocked tasks (sysrq-w): 0 in D state");
        Path dir = tmp.resolve("out/guest-hang");
        assertThat(Files.readString(dir.resolve("blocked-tasks.txt"))).contains("sysrq: Show Blocked State");
        assertThat(dir.resolve("guest-after.stdout")).doesNotExist();
        assertThat(EngineRealQemuTest.qemuChildren()).isZero();
    }
}
