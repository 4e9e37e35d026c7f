package io.p2plab.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.Transport;
import io.p2plab.util.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/** The QMP client against an in-process fake server doing what real QEMU will not. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class FakeQmpClientTest {
    @TempDir
    Path tmp;

    private FakeQmpServer server(FakeQmpServer.Behavior b) throws Exception {
        return new FakeQmpServer(tmp.resolve("qmp.sock"), FakeQmpServer.GREETING, b);
    }

    private static ConnectionOptions opts() {
        return ConnectionOptions.defaults().withConnectTimeout(Duration.ofSeconds(2));
    }

    @Test
    void negotiatesOobAndAnswers() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> c.reply(req, "{\"status\": \"running\"}"));
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThat(q.oobEnabled()).isTrue();
            assertThat(s.received.get(0)).contains("\"enable\":[\"oob\"]");
            assertThat(q.call("query-status").path("status").asText()).isEqualTo("running");
        }
    }

    @Test
    void noOobWhenNotOffered() throws Exception {
        String greeting = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n";
        try (FakeQmpServer s = new FakeQmpServer(tmp.resolve("q.sock"), greeting, (c, req, raw) -> c.reply(req, "{}"));
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThat(q.oobEnabled()).isFalse();
            assertThat(s.received.get(0)).doesNotContain("enable");
            assertThatThrownBy(() -> QmpClient.join(q.executeOob("x-oob-test", null, null)))
                    .hasMessageContaining("out-of-band");
        }
    }

    @Test
    void worksOverTcp() throws Exception {
        try (FakeQmpServer s = new FakeQmpServer(null, FakeQmpServer.GREETING, (c, req, raw) -> c.reply(req, "42"));
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThat(q.peer()).startsWith("tcp:");
            assertThat(q.call("anything").asInt()).isEqualTo(42);
        }
    }

    @Test
    void strayBytesAndSplitWritesAreTolerated() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> {
            String id = Json.compact(req.get("id"));
            c.send("garbage \r\n ## ");
            String reply = "{\"return\": {\"s\": \"}{ \\\" ]\"}, \"id\": " + id + "}";
            for (int i = 0; i < reply.length(); i += 3) {
                c.send(reply.substring(i, Math.min(reply.length(), i + 3)));
                Thread.sleep(1);
            }
            c.send("\r\n");
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThat(q.call("x").path("s").asText()).isEqualTo("}{ \" ]");
            assertThat(q.call("y").path("s").asText()).isEqualTo("}{ \" ]");
        }
    }

    @Test
    void idlessErrorFailsTheOnlyOutstandingCommand() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) ->
                c.send("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword\"}}\r\n"));
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThatThrownBy(() -> q.call("query-status"))
                    .isInstanceOf(QmpProtocolException.class)
                    .hasMessageContaining("id-less error")
                    .hasMessageContaining("JSON parse error");
            assertThat(q.isOpen()).isTrue();
        }
    }

    @Test
    void idlessErrorWithSeveralOutstandingFailsNone() throws Exception {
        List<JsonNode> held = new CopyOnWriteArrayList<>();
        CountDownLatch two = new CountDownLatch(2);
        try (FakeQmpServer s = server((c, req, raw) -> {
            held.add(req);
            two.countDown();
            if (held.size() == 2) {
                c.send("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n");
                for (JsonNode r : held) c.reply(r, "\"ok\"");
            }
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            var a = q.execute("a");
            var b = q.execute("b");
            assertThat(a.get(5, TimeUnit.SECONDS).asText()).isEqualTo("ok");
            assertThat(b.get(5, TimeUnit.SECONDS).asText()).isEqualTo("ok");
        }
    }

    @Test
    void typedErrorClasses() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> c.send("{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": "
                + "\"Device 'x' not found\"}, \"id\": " + Json.compact(req.get("id")) + "}\n"));
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThatThrownBy(() -> q.call("device_del", Json.object().put("id", "x")))
                    .isInstanceOfSatisfying(QmpErrorException.DeviceNotFound.class, e -> {
                        assertThat(e.errorClass()).isEqualTo("DeviceNotFound");
                        assertThat(e.description()).isEqualTo("Device 'x' not found");
                        assertThat(e.command()).isEqualTo("device_del");
                    });
        }
    }

    @Test
    void replyOverTheCapFailsClearlyAndCloses() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> {
            if (req.path("execute").asText().equals("big"))
                c.send("{\"return\": \"" + "x".repeat(5000) + "\", \"id\": " + Json.compact(req.get("id")) + "}\n");
        });
             QmpClient q = QmpClient.connect(s.address, opts().withMaxReplyBytes(1024))) {
            CompletableFuture<JsonNode> other = q.execute("never-answered");
            assertThatThrownBy(() -> q.call("big"))
                    .isInstanceOf(QmpProtocolException.class)
                    .hasMessageContaining("reply size cap of 1024 bytes");
            assertThatThrownBy(() -> QmpClient.join(other)).isInstanceOf(QmpException.class);
            q.closeFuture().get(5, TimeUnit.SECONDS);
            assertThat(q.isOpen()).isFalse();
        }
    }

    @Test
    void eofMidReplyFailsPendingCommands() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> {
            c.send("{\"return\": {\"status\": \"runn");
            c.close();
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThatThrownBy(() -> q.call("query-status"))
                    .isInstanceOf(QmpClosedException.class)
                    .hasMessageContaining("closed the connection in the middle of a message");
            assertThatThrownBy(() -> q.call("query-status")).isInstanceOf(QmpClosedException.class);
        }
    }

    @Test
    void eventsInterleavedWithRepliesGoToListenersAndHistory() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> {
            c.send("{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 5}}\n"
                    + "{\"return\": {}, \"id\": " + Json.compact(req.get("id")) + "}"
                    + "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"d0\", \"path\": \"/x\"}, "
                    + "\"timestamp\": {\"seconds\": 2, \"microseconds\": 0}}\n");
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            List<String> seen = new CopyOnWriteArrayList<>();
            q.addEventListener(e -> seen.add(e.name()));
            CompletableFuture<QmpEvent> dd = q.awaitEvent("DEVICE_DELETED", Json.object().put("device", "d0"), 0,
                    Duration.ofSeconds(5));
            q.call("stop");
            QmpEvent e = dd.get(5, TimeUnit.SECONDS);
            assertThat(e.data().path("path").asText()).isEqualTo("/x");
            assertThat(e.timestampMicros()).isEqualTo(2_000_000L);
            assertThat(seen).containsExactly("STOP", "DEVICE_DELETED");
            assertThat(q.eventHistory()).extracting(QmpEvent::name).containsExactly("STOP", "DEVICE_DELETED");
            // history search: an await registered after the fact still finds it
            assertThat(q.awaitEvent("STOP", null, 0, Duration.ofMillis(100)).get().seq()).isEqualTo(1);
            // a non-matching data subset times out
            assertThatThrownBy(() -> QmpClient.join(q.awaitEvent("DEVICE_DELETED",
                    Json.object().put("device", "other"), 0, Duration.ofMillis(200))))
                    .isInstanceOf(QmpTimeoutException.class).hasMessageContaining("DEVICE_DELETED");
        }
    }

    @Test
    void slowReplyTimesOutAndConnectionStaysUsable() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> {
            if (req.path("execute").asText().equals("slow")) {
                Thread.sleep(700);
            }
            c.reply(req, "\"" + req.path("execute").asText() + "\"");
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> QmpClient.join(q.execute("slow", null, Duration.ofMillis(200))))
                    .isInstanceOf(QmpTimeoutException.class).hasMessageContaining("200 ms");
            assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(2000);
            // the late reply to "slow" is discarded, the next command gets its own answer
            assertThat(q.call("fast").asText()).isEqualTo("fast");
        }
    }

    /**
     * Timeouts of different lengths, in any order: a short one after a long one still fires on time (the
     * connection's one timeout sweep is re-armed for the earlier deadline), the long one keeps waiting, and
     * one that is answered in time never fires.
     */
    @Test
    void eachCommandTimesOutAtItsOwnDeadline() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> {
            if (req.path("execute").asText().equals("fast")) c.reply(req, "\"fast\"");
            // anything else is never answered
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            CompletableFuture<JsonNode> slow = q.execute("never-long", null, Duration.ofSeconds(30));
            CompletableFuture<JsonNode> answered = q.execute("fast", null, Duration.ofMillis(300));
            long t0 = System.nanoTime();
            CompletableFuture<JsonNode> shortOne = q.execute("never-short", null, Duration.ofMillis(300));
            CompletableFuture<JsonNode> longer = q.execute("never-longer", null, Duration.ofMillis(900));
            assertThatThrownBy(() -> QmpClient.join(shortOne))
                    .isInstanceOf(QmpTimeoutException.class).hasMessageContaining("never-short").hasMessageContaining("300 ms");
            long shortMs = (System.nanoTime() - t0) / 1_000_000;
            assertThat(shortMs).isBetween(250L, 800L);
            assertThat(answered.get(1, TimeUnit.SECONDS).asText()).isEqualTo("fast");
            assertThat(longer).isNotDone();
            assertThatThrownBy(() -> QmpClient.join(longer)).isInstanceOf(QmpTimeoutException.class);
            assertThat((System.nanoTime() - t0) / 1_000_000).isBetween(850L, 1500L);
            assertThat(slow).isNotDone();
            assertThat(q.inFlight()).isEqualTo(1);
        }
    }

    @Test
    void atMostNInFlightTheRestQueued() throws Exception {
        List<JsonNode> held = new CopyOnWriteArrayList<>();
        CountDownLatch release = new CountDownLatch(1);
        FakeQmpServer.Conn[] conn = new FakeQmpServer.Conn[1];
        try (FakeQmpServer s = server((c, req, raw) -> {
            conn[0] = c;
            held.add(req);
        });
             QmpClient q = QmpClient.connect(s.address, opts().withMaxInFlight(2))) {
            List<CompletableFuture<JsonNode>> fs = new ArrayList<>();
            for (int i = 0; i < 5; i++) fs.add(q.execute("cmd" + i));
            Thread.sleep(300);
            assertThat(held).hasSize(2);
            assertThat(q.inFlight()).isEqualTo(2);
            assertThat(q.queued()).isEqualTo(3);
            // answer one at a time: each answer lets exactly one more through
            for (int i = 0; i < 5; i++) {
                JsonNode r = held.get(i);
                conn[0].reply(r, "" + i);
                assertThat(fs.get(i).get(5, TimeUnit.SECONDS).asInt()).isEqualTo(i);
                final int expect = Math.min(5, i + 3);
                assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
                    while (held.size() < expect) Thread.sleep(5);
                });
            }
            assertThat(q.inFlight()).isZero();
            assertThat(q.queued()).isZero();
        }
    }

    @Test
    void missingGreetingTimesOut() throws Exception {
        try (FakeQmpServer s = new FakeQmpServer(tmp.resolve("mute.sock"), null, (c, req, raw) -> { })) {
            assertThatThrownBy(() -> QmpClient.connect(s.address,
                    ConnectionOptions.defaults().withConnectTimeout(Duration.ofMillis(300))))
                    .isInstanceOf(QmpProtocolException.class).hasMessageContaining("no QMP greeting");
        }
    }

    @Test
    void connectToNothingFailsClearly() {
        assertThatThrownBy(() -> QmpClient.connect(Transport.unix(tmp.resolve("absent.sock")), opts()))
                .isInstanceOf(QmpClosedException.class).hasMessageContaining("cannot connect");
    }

    @Test
    void closeFailsPendingCommands() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> { })) {
            QmpClient q = QmpClient.connect(s.address, opts());
            CompletableFuture<JsonNode> f = q.execute("hang");
            q.close();
            assertThatThrownBy(() -> QmpClient.join(f)).isInstanceOf(QmpClosedException.class)
                    .hasMessageContaining("closed by client");
        }
    }

    @Test
    void aStreamOfStrayBytesFailsFastNotAtTheTimeout() throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        try (FakeQmpServer s = server((c, req, raw) -> {
            Thread t = new Thread(() -> {
                try {
                    // a broken peer: text lines, never a reply
                    for (int i = 0; !stop.get(); i++) {
                        c.send("[    1.234567] not QMP at all, line " + i + "\r\n");
                        Thread.sleep(2);
                    }
                } catch (Exception ignored) { }
            });
            t.setDaemon(true);
            t.start();
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> QmpClient.join(q.execute("query-status", null, Duration.ofSeconds(15))))
                    .isInstanceOf(QmpProtocolException.class)
                    .hasMessageContaining("not JSON");
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertThat(ms).as("failed after %d ms, command timeout 15 s", ms).isLessThan(3000);
        } finally {
            stop.set(true);
        }
    }

    @Test
    void aBrokenReplyFailsFastAndTheConnectionResynchronises() throws Exception {
        try (FakeQmpServer s = server((c, req, raw) -> {
            if (req.path("execute").asText().equals("broken")) c.send("{\"return\": {\"status\": runn1ng!}}\r\n");
            else c.reply(req, "\"ok\"");
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> QmpClient.join(q.execute("broken", null, Duration.ofSeconds(15))))
                    .isInstanceOf(QmpProtocolException.class)
                    .hasMessageContaining("unexpected 'r' at byte 22");
            assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(3000);
            assertThat(q.isOpen()).isTrue();
            assertThat(q.call("fine").asText()).isEqualTo("ok");
        }
    }

    @Test
    void aPeerThatDoesNotGreetWithQmpFailsTheConnectFast() throws Exception {
        String hmp = "QEMU 10.0.13 monitor - type 'help' for more information\r\n(qemu) ";
        try (FakeQmpServer s = new FakeQmpServer(tmp.resolve("hmp.sock"), hmp, (c, req, raw) -> { })) {
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> QmpClient.connect(s.address, ConnectionOptions.defaults()
                    .withConnectTimeout(Duration.ofSeconds(15))))
                    .isInstanceOf(QmpProtocolException.class)
                    .hasMessageContaining("no QMP greeting")
                    .hasMessageContaining("not JSON");
            assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(3000);
        }
    }

    @Test
    void commandsSentFromCompletionCallbacksKeepDepthInFlight() throws Exception {
        // what the benchmark does: each completion (on the event loop) sends the next command. The server
        // holds every reply until it has 8 unanswered requests, so this only finishes if 8 are really in
        // flight and writes made during a read are flushed.
        List<JsonNode> held = new ArrayList<>();
        AtomicInteger maxHeld = new AtomicInteger();
        try (FakeQmpServer s = server((c, req, raw) -> {
            synchronized (held) {
                held.add(req);
                maxHeld.accumulateAndGet(held.size(), Math::max);
                if (held.size() < 8 && !req.path("execute").asText().equals("last")) return;
                for (JsonNode r : held) c.reply(r, "1");
                held.clear();
            }
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            int total = 400;
            AtomicInteger issued = new AtomicInteger(), ok = new AtomicInteger();
            CountDownLatch done = new CountDownLatch(1);
            Runnable[] next = new Runnable[1];
            next[0] = () -> {
                int i = issued.getAndIncrement();
                if (i >= total) return;
                q.execute(i >= total - 8 ? "last" : "query-status").whenComplete((r, t) -> {
                    if (t == null && ok.incrementAndGet() == total) done.countDown();
                    if (t == null) next[0].run();
                });
            };
            for (int d = 0; d < 8; d++) next[0].run();
            assertThat(done.await(15, TimeUnit.SECONDS)).as("%d of %d answered", ok.get(), total).isTrue();
            assertThat(maxHeld.get()).isEqualTo(8);
        }
    }

    @Test
    void idsAreSmallAndAnUnansweredIdIsNeverReused() throws Exception {
        List<JsonNode> slow = new CopyOnWriteArrayList<>();
        try (FakeQmpServer s = server((c, req, raw) -> {
            if (req.path("execute").asText().equals("slow")) slow.add(req);
            else c.reply(req, "\"" + req.path("execute").asText() + "\"");
        });
             QmpClient q = QmpClient.connect(s.address, opts())) {
            assertThat(q.call("a").asText()).isEqualTo("a");
            assertThat(q.call("b").asText()).isEqualTo("b");
            assertThatThrownBy(() -> QmpClient.join(q.execute("slow", null, Duration.ofMillis(200))))
                    .isInstanceOf(QmpTimeoutException.class);
            assertThat(q.call("c").asText()).isEqualTo("c");
            // the late reply to "slow" carries its id: it must not complete the command that has it now
            CompletableFuture<JsonNode> d = q.execute("d");
            FakeQmpServer.Conn c = s.connections.peek();
            c.send("{\"return\": \"late\", \"id\": " + slow.get(0).get("id") + "}\r\n");
            assertThat(d.get(5, TimeUnit.SECONDS).asText()).isEqualTo("d");
            List<String> ids = s.received.stream().skip(1).map(l -> Json.parse(l).get("id").toString()).toList();
            // a reused after its reply, slow's 1 retired: c and d get 2
            assertThat(ids).containsExactly("1", "1", "1", "2", "2");
        }
    }

    /**
     * QEMU's monitor reads QMP one byte per main-loop turn and takes a command at its closing brace: requests
     * go out back to back, with no newline (a turn per command for nothing). Checked on the raw bytes.
     */
    @Test
    void requestsGoOutWithoutATrailingNewline() throws Exception {
        Path sock = tmp.resolve("raw.sock");
        try (var srv = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            srv.bind(java.net.UnixDomainSocketAddress.of(sock));
            CompletableFuture<QmpClient> connecting = QmpClient.connectAsync(Transport.unix(sock), opts());
            try (var c = srv.accept()) {
                c.write(FakeQmpServer.bytes(FakeQmpServer.GREETING));
                String caps = "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":1}";
                assertThat(readExactly(c, caps.length())).isEqualTo(caps);
                c.write(FakeQmpServer.bytes("{\"return\": {}, \"id\": 1}\r\n"));
                try (QmpClient q = connecting.get(5, TimeUnit.SECONDS)) {
                    CompletableFuture<JsonNode> a = q.execute("query-status");
                    CompletableFuture<JsonNode> b = q.execute("query-name");
                    // nothing between or after the two objects: a newline after the first would come first here
                    String two = "{\"execute\":\"query-status\",\"id\":1}{\"execute\":\"query-name\",\"id\":2}";
                    assertThat(readExactly(c, two.length())).isEqualTo(two);
                    c.write(FakeQmpServer.bytes("{\"return\": {}, \"id\": 1}\r\n{\"return\": {}, \"id\": 2}\r\n"));
                    a.get(5, TimeUnit.SECONDS);
                    b.get(5, TimeUnit.SECONDS);
                    c.configureBlocking(false);
                    Thread.sleep(100);
                    assertThat(c.read(java.nio.ByteBuffer.allocate(16))).as("bytes after the last request").isZero();
                }
            }
        }
    }

    private static String readExactly(java.nio.channels.SocketChannel c, int n) throws Exception {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(n);
        while (b.hasRemaining()) assertThat(c.read(b)).as("stream ended").isNotNegative();
        return new String(b.array(), java.nio.charset.StandardCharsets.UTF_8);
    }
}
