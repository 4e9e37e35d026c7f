package io.p2plab.ga;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.qmp.FakeServerAccess;
import io.p2plab.qmp.QmpClient;
import io.p2plab.qmp.QmpProtocolException;
import io.p2plab.qmp.QmpTimeoutException;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.util.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** qemu-ga client against a fake agent: delimited sync, resync after timeout, exec, files. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class FakeGuestAgentTest {
    @TempDir
    Path tmp;

    static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void syncExecAndFiles() throws Exception {
        AtomicInteger polls = new AtomicInteger();
        StringBuilder file = new StringBuilder();
        try (var s = FakeServerAccess.start(tmp.resolve("ga.sock"), (c, req, raw) -> {
            String cmd = req.path("execute").asText();
            JsonNode a = req.path("arguments");
            switch (cmd) {
                case "guest-sync-delimited" -> {
                    // junk from an earlier conversation, then the delimiter and the answer
                    c.send("{\"return\": {\"stale\"");
                    c.sendBytes(new byte[]{(byte) 0xFF});
                    c.send("{\"return\": " + a.path("id").asLong() + "}\n");
                }
                case "guest-exec" -> {
                    assertThat(a.path("path").asText()).isEqualTo("/bin/sh");
                    assertThat(a.path("arg").toString()).contains("echo hello");
                    assertThat(a.path("capture-output").asBoolean()).isTrue();
                    c.reply(req, "{\"pid\": 42}");
                }
                case "guest-exec-status" -> {
                    if (polls.incrementAndGet() < 3) c.reply(req, "{\"exited\": false}");
                    else c.reply(req, "{\"exited\": true, \"exitcode\": 3, \"out-data\": \"" + b64("hello\n")
                            + "\", \"err-data\": \"" + b64("oops") + "\"}");
                }
                case "guest-file-open" -> c.reply(req, "7");
                case "guest-file-write" -> {
                    file.append(new String(Base64.getDecoder().decode(a.path("buf-b64").asText()), StandardCharsets.UTF_8));
                    c.reply(req, "{\"count\": " + Base64.getDecoder().decode(a.path("buf-b64").asText()).length + ", \"eof\": false}");
                }
                case "guest-file-read" -> c.reply(req, "{\"count\": " + file.length() + ", \"buf-b64\": \"" + b64(file.toString())
                        + "\", \"eof\": true}");
                case "guest-file-close" -> c.reply(req, "{}");
                default -> c.send("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}, \"id\": "
                        + Json.compact(req.get("id")) + "}\n");
            }
        });
             GuestAgent ga = GuestAgent.connect(s.address(), ConnectionOptions.defaults())) {
            GuestAgent.ExecResult r = ga.shell("echo hello", Duration.ofSeconds(5));
            assertThat(r.pid()).isEqualTo(42);
            assertThat(r.exitCode()).isEqualTo(3);
            assertThat(r.out()).isEqualTo("hello\n");
            assertThat(r.err()).isEqualTo("oops");
            assertThat(polls.get()).isEqualTo(3);
            ga.writeFile("/tmp/x", "content".getBytes(StandardCharsets.UTF_8));
            assertThat(new String(ga.readFile("/tmp/x"), StandardCharsets.UTF_8)).isEqualTo("content");
            List<String> rx = s.received();
            assertThat(rx.get(0)).contains("guest-sync-delimited");
            assertThat(rx.stream().filter(x -> x.contains("guest-sync-delimited")).count()).isEqualTo(1);
        }
    }

    @Test
    void resyncsAfterATimeout() throws Exception {
        AtomicInteger syncs = new AtomicInteger();
        try (var s = FakeServerAccess.start(tmp.resolve("ga2.sock"), (c, req, raw) -> {
            String cmd = req.path("execute").asText();
            if (cmd.equals("guest-sync-delimited")) {
                syncs.incrementAndGet();
                c.sendBytes(new byte[]{(byte) 0xFF});
                c.send("{\"return\": " + req.path("arguments").path("id").asLong() + "}\n");
            } else if (cmd.equals("guest-slow")) {
                Thread.sleep(500);
                c.reply(req, "\"late\"");
            } else {
                c.reply(req, "\"" + cmd + "\"");
            }
        });
             GuestAgent ga = GuestAgent.connect(s.address(), ConnectionOptions.defaults())) {
            assertThat(ga.call("guest-ping", null).asText()).isEqualTo("guest-ping");
            assertThatThrownBy(() -> QmpClient.join(ga.execute("guest-slow", null, Duration.ofMillis(150))))
                    .isInstanceOf(QmpTimeoutException.class);
            assertThat(ga.call("guest-info", null).asText()).isEqualTo("guest-info");
            assertThat(syncs.get()).isEqualTo(2);
        }
    }

    @Test
    void noAgentMeansAClearTimeout() throws Exception {
        try (var s = FakeServerAccess.start(tmp.resolve("ga3.sock"), (c, req, raw) -> { });
             GuestAgent ga = GuestAgent.connect(s.address(), ConnectionOptions.defaults().withTimeout(Duration.ofMillis(300)))) {
            assertThatThrownBy(() -> ga.call("guest-ping", null))
                    .isInstanceOf(QmpTimeoutException.class)
                    .hasMessageContaining("guest-sync-delimited")
                    .hasMessageContaining("qemu-ga running");
        }
    }

    @Test
    void junkOutsideASyncFailsTheCommandFastAndTheNextOneResyncs() throws Exception {
        AtomicInteger syncs = new AtomicInteger();
        try (var s = FakeServerAccess.start(tmp.resolve("ga4.sock"), (c, req, raw) -> {
            String cmd = req.path("execute").asText();
            if (cmd.equals("guest-sync-delimited")) {
                syncs.incrementAndGet();
                c.sendBytes(new byte[]{(byte) 0xFF});
                c.send("{\"return\": " + req.path("arguments").path("id").asLong() + "}\n");
            } else if (cmd.equals("guest-broken")) {
                c.send("Welcome to a serial console, not the agent. ".repeat(8) + "\n");
            } else {
                c.reply(req, "\"" + cmd + "\"");
            }
        });
             GuestAgent ga = GuestAgent.connect(s.address(), ConnectionOptions.defaults())) {
            assertThat(ga.call("guest-ping", null).asText()).isEqualTo("guest-ping");
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> QmpClient.join(ga.execute("guest-broken", null, Duration.ofSeconds(15))))
                    .isInstanceOf(QmpProtocolException.class).hasMessageContaining("not JSON");
            assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(3000);
            assertThat(ga.call("guest-info", null).asText()).isEqualTo("guest-info");
            assertThat(syncs.get()).isEqualTo(2);
        }
    }
}
