package io.p2plab.ga;

import io.p2plab.qmp.QmpClient;
import io.p2plab.qmp.QmpErrorException;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.Transport;
import io.p2plab.util.Json;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The guest agent client against a real qemu-ga (Debian's qemu-guest-agent) listening on a unix
 * socket on the host: the same protocol it speaks over virtio-serial in the guest.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RealQemuGaTest {
    @TempDir
    Path tmp;
    Process agent;
    Path sock;

    static String qemuGa() {
        for (String p : List.of("/usr/sbin/qemu-ga", "/usr/bin/qemu-ga")) if (Files.isExecutable(Path.of(p))) return p;
        return null;
    }

    @BeforeEach
    void start() throws Exception {
        String ga = qemuGa();
        assumeTrue(ga != null, "qemu-ga not installed (apt-get install qemu-guest-agent)");
        sock = tmp.resolve("qga.sock");
        agent = new ProcessBuilder(ga, "-m", "unix-listen", "-p", sock.toString(), "-t", tmp.toString(),
                "-f", tmp.resolve("qga.pid").toString()).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("qga.log").toFile()).start();
        long end = System.currentTimeMillis() + 10_000;
        while (!Files.exists(sock) && System.currentTimeMillis() < end) Thread.sleep(20);
        assertThat(sock).exists();
    }

    @AfterEach
    void stop() throws Exception {
        if (agent != null) {
            agent.destroyForcibly();
            agent.waitFor(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void syncExecFilesAndErrors() throws Exception {
        try (GuestAgent ga = GuestAgent.connect(Transport.unix(sock), ConnectionOptions.defaults())) {
            assertThat(ga.call("guest-info", null).path("version").asText()).startsWith("7.");
            GuestAgent.ExecResult r = ga.shell("echo hello; echo oops >&2; exit 3", Duration.ofSeconds(20));
            assertThat(r.exitCode()).isEqualTo(3);
            assertThat(r.out()).isEqualTo("hello\n");
            assertThat(r.err()).isEqualTo("oops\n");
            GuestAgent.ExecResult argv = ga.exec(List.of("/bin/echo", "a b", "c"), null, Duration.ofSeconds(20));
            assertThat(argv.out()).isEqualTo("a b c\n");
            GuestAgent.ExecResult stdin = ga.exec(List.of("/bin/cat"), "piped".getBytes(StandardCharsets.UTF_8),
                    Duration.ofSeconds(20));
            assertThat(stdin.out()).isEqualTo("piped");
            Path f = tmp.resolve("file.bin");
            byte[] data = new byte[200_000];
            for (int i = 0; i < data.length; i++) data[i] = (byte) (i * 7);
            ga.writeFile(f.toString(), data);
            assertThat(Files.readAllBytes(f)).isEqualTo(data);
            assertThat(ga.readFile(f.toString())).isEqualTo(data);
            assertThatThrownBy(() -> ga.call("guest-file-open", Json.object().put("path", tmp.resolve("nope/x").toString())))
                    .isInstanceOf(QmpErrorException.class).hasMessageContaining("guest-file-open");
            assertThatThrownBy(() -> ga.call("no-such-ga-command", null))
                    .isInstanceOf(QmpErrorException.CommandNotFound.class);
            // a command that times out forces a resync before the next one
            try {
                QmpClient.join(ga.execute("guest-ping", null, Duration.ofNanos(1000)));
            } catch (RuntimeException ignored) {
                // timed out (or was fast enough): either way the connection must stay usable
            }
            assertThat(ga.call("guest-ping", null).isEmpty()).isTrue();
            GuestAgent.ExecResult slow = ga.shell("sleep 0.3; echo done", Duration.ofSeconds(20));
            assertThat(slow.out()).isEqualTo("done\n");
            assertThatThrownBy(() -> ga.shell("sleep 5", Duration.ofMillis(300)))
                    .hasMessageContaining("still running");
        }
    }
}
