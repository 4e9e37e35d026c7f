package io.p2plab.scenario;

import io.p2plab.topo.TopoCapture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.ByteArrayInputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * With the lab's guest: the topology of a case (topo.txt / topo.svg after boot, verdicts from the guest
 * kernel) and a streamed guest command (lines arrive while it runs; stdout, stderr and exit code the
 * same as without streaming). Skipped without a guest build that has p2plab-topo, or without the device.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class TopoStreamGuestTest {
    @TempDir
    Path tmp;

    /** Progress lines with the time they were printed. */
    static final class Timed extends OutputStream {
        final List<Long> times = new ArrayList<>();
        final List<String> lines = new ArrayList<>();
        private final StringBuilder cur = new StringBuilder();

        @Override
        public synchronized void write(int b) {
            if (b == '\n') {
                lines.add(cur.toString());
                times.add(System.nanoTime());
                cur.setLength(0);
            } else {
                cur.append((char) b);
            }
        }

        synchronized long when(String contains) {
            for (int i = 0; i < lines.size(); i++) if (lines.get(i).contains(contains)) return times.get(i);
            throw new AssertionError("no progress line contains '" + contains + "' in " + lines);
        }
    }

    @Test
    void caseArtefactsHaveTheTopologyAndLongCommandsStream() throws Exception {
        Path g = GuestBootTest.guest();
        assumeTrue(g != null, "no guest build (make guest)");
        assumeTrue(KernelBootTest.hasP2plab(), "QEMU without the p2plab device");
        assumeTrue(new String(Files.readAllBytes(g.resolve("BUILD-INFO")), StandardCharsets.UTF_8).contains("p2plab-topo"),
                "guest build without " + TopoCapture.TOOL);
        Path gc = Files.createDirectories(tmp.resolve("guest"));
        Files.copy(g.resolve("vmlinuz"), gc.resolve("vmlinuz"));
        Files.copy(g.resolve("initramfs.cpio.gz"), gc.resolve("initramfs.cpio.gz"));
        String cmd = "echo line1; sleep 3; echo line2; sleep 3; printf 'line3 no newline'; echo oops >&2; exit 5";
        Path f = tmp.resolve("topo.yaml");
        Files.writeString(f, """
                name: topo-stream
                timeout: 240
                machine:
                  cpu: Nehalem
                  kernel: %1$s/vmlinuz
                  initrd: %1$s/initramfs.cpio.gz
                  append: console=ttyS0 panic=-1 loglevel=4
                  memory: 1G
                  root-ports: [{id: rp0}, {id: rp1}]
                  devices:
                    - {driver: p2plab, id: p2p0, bus: rp0, props: {mem-size: 32M}}
                    - {driver: p2plab, id: p2p1, bus: rp1, props: {mem-size: 32M}}
                steps:
                  - boot: {}
                  - guest: {shell: "%2$s", stream: true, expect-exit: 5, stdout: "^line1\\nline2\\nline3 no newline$", stderr: "^oops\\n$", save: live}
                  - guest: {shell: "%2$s", stream: false, expect-exit: 5, save: plain}
                  - guest: {shell: "sleep 1; ls /tmp/.p2plab-stream-* 2>/dev/null | wc -l", stdout: "^0$", save: leftovers}
                """.formatted(gc, cmd));
        Timed progress = new Timed();
        List<CaseResult> rs = new Engine(tmp.resolve("out"), new PrintStream(progress, true)).run(Scenario.load(f));
        CaseResult r = rs.get(0);
        assertThat(r.status()).as(r.message() + "\n" + r.excerpt() + "\n" + progress.lines).isEqualTo(CaseResult.Status.PASSED);
        Path dir = r.dir();

        // streaming: the lines came while the command ran (3 s apart), not all at its end
        long l1 = progress.when("      > line1"), l2 = progress.when("      > line2");
        assertThat(progress.when("      > line3 no newline")).isGreaterThan(l2);
        assertThat(TimeUnit.NANOSECONDS.toMillis(l2 - l1)).isGreaterThan(2000);
        // and the output is byte for byte what the agent's captured pipes give
        assertThat(Files.readString(dir.resolve("guest-live.stdout"))).isEqualTo("line1\nline2\nline3 no newline");
        assertThat(Files.readString(dir.resolve("guest-live.stderr"))).isEqualTo("oops\n");
        assertThat(Files.readAllBytes(dir.resolve("guest-live.stdout"))).isEqualTo(Files.readAllBytes(dir.resolve("guest-plain.stdout")));
        assertThat(Files.readAllBytes(dir.resolve("guest-live.stderr"))).isEqualTo(Files.readAllBytes(dir.resolve("guest-plain.stderr")));
        assertThat(progress.lines).noneMatch(l -> l.contains("live output stopped"));

        // topology from the guest: two p2plab devices on separate root ports of an Intel host: the kernel refuses
        String topo = Files.readString(dir.resolve("topo.txt"));
        assertThat(topo).contains("p2p0 (p2plab)", "p2p1 (p2plab)", "rp0 (root port)", "pcieport")
                .containsPattern("p2p0 \\S+ \\(p2plab\\d\\)\\s+-\\s+not-supported")
                .doesNotContain("note:");
        String svg = Files.readString(dir.resolve("topo.svg"));
        DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
        assertThat(svg).contains("not-supported", "p2p1");
        assertThat(Files.readString(dir.resolve("steps.log"))).containsPattern("topology: \\d+ PCI functions, 2 kernel P2P verdicts \\(\\d+ ms\\)");
    }
}
