package io.p2plab.ga;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.buffer.Unpooled;
import io.p2plab.qmp.QmpClient;
import io.p2plab.qmp.QmpException;
import io.p2plab.qmp.QmpProtocolException;
import io.p2plab.qmp.QmpTimeoutException;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.JsonRpcConnection;
import io.p2plab.rpc.Transport;
import io.p2plab.util.Json;

import java.io.ByteArrayOutputStream;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * qemu-ga client over the same framing/correlation code as QMP. Before the first command and after any
 * timeout it resynchronises with guest-sync-delimited: a 0xFF byte is sent (flushing the agent's
 * parser), the agent answers with 0xFF followed by {"return": N}; everything before is discarded.
 * Commands are serialised (the agent executes them one at a time anyway).
 */
public final class GuestAgent extends JsonRpcConnection {
    private final Object syncLock = new Object();
    private CompletableFuture<Void> pendingSync;
    private long syncToken;
    private volatile boolean synced;
    private CompletableFuture<?> tail = CompletableFuture.completedFuture(null);

    /** Result of guest-exec. */
    public record ExecResult(long pid, int exitCode, Integer signal, byte[] stdout, byte[] stderr,
                             boolean truncated) {
        public String out() { return new String(stdout, StandardCharsets.UTF_8); }
        public String err() { return new String(stderr, StandardCharsets.UTF_8); }
    }

    private GuestAgent(SocketAddress addr, ConnectionOptions o) {
        super(addr, o);
    }

    public static GuestAgent connect(SocketAddress addr, ConnectionOptions o) {
        GuestAgent g = new GuestAgent(addr, o);
        JsonRpcConnection.join(g.open(addr));
        return g;
    }

    /** Runs guest-sync-delimited until the agent answers (or the timeout expires). */
    public CompletableFuture<Void> sync(Duration timeout) {
        CompletableFuture<Void> f = new CompletableFuture<>();
        long token = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE / 2);
        synchronized (syncLock) {
            pendingSync = f;
            syncToken = token;
        }
        ObjectNode req = Json.object().put("execute", "guest-sync-delimited");
        req.putObject("arguments").put("id", token);
        note('>', "\\xff" + Json.compact(req));
        channel.write(Unpooled.wrappedBuffer(new byte[]{(byte) 0xFF}));
        channel.writeAndFlush(Json.compact(req));
        channel.eventLoop().schedule(() -> f.completeExceptionally(new QmpTimeoutException(
                "guest agent at " + peer + " did not answer guest-sync-delimited within " + timeout.toMillis()
                        + " ms (is qemu-ga running in the guest?)")), timeout.toMillis(), TimeUnit.MILLISECONDS);
        return f.thenRun(() -> synced = true);
    }

    /** Executes a guest agent command; serialised, syncing first when needed. */
    public synchronized CompletableFuture<JsonNode> execute(String command, JsonNode args, Duration timeout) {
        CompletableFuture<JsonNode> result = tail.handle((x, e) -> null).thenCompose(x -> {
            CompletableFuture<Void> s = synced ? CompletableFuture.completedFuture(null)
                    : sync(Duration.ofMillis(Math.min(10_000, options.defaultCommandTimeout().toMillis())));
            return s.thenCompose(v -> {
                ObjectNode req = Json.object().put("execute", command);
                if (args != null && !args.isEmpty()) req.set("arguments", args);
                return submit(command, req, null, false, -1, timeout);
            });
        }).whenComplete((r, e) -> {
            if (e != null && JsonRpcConnection.unwrap(e) instanceof QmpTimeoutException) synced = false;
        });
        tail = result;
        return result;
    }

    public JsonNode call(String command, JsonNode args) {
        return JsonRpcConnection.join(execute(command, args, null));
    }

    /** guest-exec + guest-exec-status polling. */
    public ExecResult exec(List<String> argv, byte[] stdin, Duration timeout) {
        if (argv.isEmpty()) throw new IllegalArgumentException("empty argv");
        ObjectNode a = Json.object().put("path", argv.get(0)).put("capture-output", true);
        ArrayNode args = a.putArray("arg");
        argv.subList(1, argv.size()).forEach(args::add);
        if (stdin != null) a.put("input-data", Base64.getEncoder().encodeToString(stdin));
        long pid = call("guest-exec", a).path("pid").asLong();
        long deadline = System.nanoTime() + timeout.toNanos();
        long sleep = 10;
        while (true) {
            JsonNode st = call("guest-exec-status", Json.object().put("pid", pid));
            if (st.path("exited").asBoolean()) {
                return new ExecResult(pid, st.path("exitcode").asInt(-1),
                        st.has("signal") ? st.get("signal").asInt() : null,
                        b64(st.path("out-data")), b64(st.path("err-data")),
                        st.path("out-truncated").asBoolean() || st.path("err-truncated").asBoolean());
            }
            if (System.nanoTime() > deadline)
                throw new QmpTimeoutException("guest command " + argv + " (pid " + pid + ") still running after "
                        + timeout.toMillis() + " ms");
            try { Thread.sleep(sleep); } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new QmpException("interrupted");
            }
            sleep = Math.min(200, sleep * 2);
        }
    }

    public ExecResult shell(String script, Duration timeout) {
        return exec(List.of("/bin/sh", "-c", script), null, timeout);
    }

    public byte[] readFile(String path) {
        long h = call("guest-file-open", Json.object().put("path", path).put("mode", "r")).asLong();
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            while (true) {
                JsonNode r = call("guest-file-read", Json.object().put("handle", h).put("count", 65536));
                out.writeBytes(b64(r.path("buf-b64")));
                if (r.path("eof").asBoolean() || r.path("count").asInt() == 0) break;
            }
            return out.toByteArray();
        } finally {
            call("guest-file-close", Json.object().put("handle", h));
        }
    }

    public void writeFile(String path, byte[] data) {
        long h = call("guest-file-open", Json.object().put("path", path).put("mode", "w")).asLong();
        try {
            int off = 0;
            do {
                int n = Math.min(48 * 1024, data.length - off);
                byte[] chunk = java.util.Arrays.copyOfRange(data, off, off + n);
                JsonNode r = call("guest-file-write", Json.object().put("handle", h)
                        .put("buf-b64", Base64.getEncoder().encodeToString(chunk)));
                int c = r.path("count").asInt();
                if (c <= 0 && n > 0) throw new QmpException("guest-file-write wrote nothing to " + path);
                off += c;
            } while (off < data.length);
        } finally {
            call("guest-file-close", Json.object().put("handle", h));
        }
    }

    private static byte[] b64(JsonNode n) {
        return n == null || n.isMissingNode() || n.isNull() ? new byte[0] : Base64.getDecoder().decode(n.asText());
    }

    @Override
    protected boolean handleUnsolicited(JsonNode msg) {
        synchronized (syncLock) {
            if (pendingSync != null && msg.has("return") && msg.get("return").isIntegralNumber()
                    && msg.get("return").asLong() == syncToken && !msg.has("id")) {
                CompletableFuture<Void> f = pendingSync;
                pendingSync = null;
                f.complete(null);
                return true;
            }
        }
        return false;
    }

    /** Before a sync's answer, junk is what the 0xFF is there to skip. */
    @Override
    protected boolean junkExpected() {
        synchronized (syncLock) {
            return pendingSync != null;
        }
    }

    /** The agent's output cannot be trusted: fail what is outstanding and resynchronise before the next command. */
    @Override
    protected void onProtocolError(QmpProtocolException e) {
        synced = false;
        super.onProtocolError(e);
    }

    @Override
    protected void onClosed(QmpException cause) {
        synchronized (syncLock) {
            if (pendingSync != null) pendingSync.completeExceptionally(cause);
        }
    }

    public static GuestAgent connect(java.nio.file.Path sock) {
        return connect(Transport.unix(sock), ConnectionOptions.defaults());
    }
}
