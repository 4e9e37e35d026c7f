package io.p2plab.console;

import io.p2plab.scenario.Scenario;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Drives `p2plab console` (a separate JVM) through a real pseudo-terminal with tmux, against real
 * QEMU (-machine none): query-status, Tab completion of command and argument names, HMP, events,
 * typed errors, history and record.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ConsoleReplTest {
    @TempDir
    Path tmp;
    private final String server = "p2plab-test-" + ProcessHandle.current().pid();

    private String tmux(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("tmux", "-L", server));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(10, TimeUnit.SECONDS);
        return out;
    }

    private String screen() throws Exception {
        return tmux("capture-pane", "-p", "-J", "-S", "-500", "-t", "c");
    }

    private String await(String s, int from) throws Exception {
        long end = System.currentTimeMillis() + 30_000;
        while (true) {
            String sc = screen();
            if (sc.length() > from && sc.indexOf(s, from) >= 0) return sc;
            if (System.currentTimeMillis() > end) throw new AssertionError("'" + s + "' not on screen:\n" + sc);
            Thread.sleep(100);
        }
    }

    private int len() throws Exception {
        return screen().stripTrailing().lastIndexOf("(QEMU)");
    }

    @AfterEach
    void killServer() throws Exception {
        tmux("kill-server");
    }

    @Test
    void queryStatusCompletionHmpEventsHistoryRecord() throws Exception {
        assumeTrue(new ProcessBuilder("tmux", "-V").start().waitFor() == 0, "tmux not installed");
        Path hist = tmp.resolve("history");
        Path rec = tmp.resolve("rec.yaml");
        Path err = tmp.resolve("stderr");
        String cmd = "exec java --add-modules=jdk.incubator.foreign --enable-native-access=ALL-UNNAMED -XX:TieredStopAtLevel=1"
                + " -cp '" + System.getProperty("java.class.path") + "' io.p2plab.cli.Main console --history '" + hist
                + "' --out '" + tmp.resolve("out") + "' 2>'" + err + "'";
        tmux("new-session", "-d", "-s", "c", "-x", "200", "-y", "50", "bash", "-c", cmd);
        await("(QEMU)", 0);
        tmux("send-keys", "-t", "c", "record " + rec, "Enter");
        await("recording to", 0);
        int mark = len();
        tmux("send-keys", "-t", "c", "query-statu", "Tab");
        await("(QEMU) query-status", mark);
        tmux("send-keys", "-t", "c", "Enter");
        await("\"status\" : \"running\"", mark);
        mark = len();
        tmux("send-keys", "-t", "c", "qom-get pat", "Tab");
        await("qom-get path=", mark);
        tmux("send-keys", "-t", "c", "/machine property=type", "Enter");
        await("none-machine", mark);
        mark = len();
        tmux("send-keys", "-t", "c", "hmp info status", "Enter");
        await("VM status: running", mark);
        mark = len();
        tmux("send-keys", "-t", "c", "device_del id=nothing", "Enter");
        await("error: DeviceNotFound", mark);
        mark = len();
        tmux("send-keys", "-t", "c", "stop", "Enter");
        await("event STOP", mark);
        tmux("send-keys", "-t", "c", "quit", "Enter");
        long end = System.currentTimeMillis() + 20_000;
        while (tmux("has-session", "-t", "c").isEmpty() && System.currentTimeMillis() < end) Thread.sleep(100);
        assertThat(Files.readString(hist)).contains("query-status", "hmp info status");
        String yaml = Files.readString(rec);
        assertThat(yaml).contains("execute: query-status", "execute: qom-get", "property: type",
                "command: info status", "expect-error: DeviceNotFound", "type: none");
        assertThat(Scenario.load(rec)).hasSize(1);
    }
}
