package io.p2plab.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.JsonRpcConnection;
import io.p2plab.rpc.Transport;
import io.p2plab.util.Json;

import java.net.SocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * Asynchronous QMP client. {@link #connect} reads the greeting and negotiates capabilities (enabling
 * "oob" when offered); commands return CompletableFutures; events go to listeners and a bounded history
 * that {@link #awaitEvent} searches.
 */
public final class QmpClient extends JsonRpcConnection {
    private final CompletableFuture<JsonNode> greeting = new CompletableFuture<>();
    private volatile boolean oobEnabled;
    private final CopyOnWriteArrayList<Consumer<QmpEvent>> listeners = new CopyOnWriteArrayList<>();
    private final ArrayDeque<QmpEvent> history = new ArrayDeque<>();
    private final List<Waiter> waiters = new ArrayList<>();
    private final AtomicLong eventSeq = new AtomicLong();

    private record Waiter(Predicate<QmpEvent> match, long afterSeq, CompletableFuture<QmpEvent> future) {}

    private QmpClient(SocketAddress addr, ConnectionOptions options) {
        super(addr, options);
    }

    public static QmpClient connect(Path unixSocket) {
        return connect(Transport.unix(unixSocket), ConnectionOptions.defaults());
    }

    public static QmpClient connect(SocketAddress addr, ConnectionOptions options) {
        return join(connectAsync(addr, options));
    }

    /** Connects, waits for the greeting and runs qmp_capabilities. */
    public static CompletableFuture<QmpClient> connectAsync(SocketAddress addr, ConnectionOptions options) {
        QmpClient c = new QmpClient(addr, options);
        return c.open(addr)
                .thenCompose(v -> c.greeting.orTimeout(options.connectTimeout().toMillis(), TimeUnit.MILLISECONDS))
                .thenCompose(g -> {
                    ObjectNode args = Json.object();
                    JsonNode offered = g.path("QMP").path("capabilities");
                    boolean oob = false;
                    for (JsonNode cap : offered) if ("oob".equals(cap.asText())) oob = true;
                    if (!options.negotiateOob()) oob = false;
                    if (oob) args.putArray("enable").add("oob");
                    boolean finalOob = oob;
                    return c.execute("qmp_capabilities", args).thenApply(r -> {
                        c.oobEnabled = finalOob;
                        return c;
                    });
                })
                .handle((cl, err) -> {
                    if (err == null) return cl;
                    c.closeQuietly();
                    Throwable cause = unwrap(err);
                    if (cause instanceof TimeoutException)
                        throw new QmpProtocolException("no QMP greeting from " + c.peer() + " within "
                                + options.connectTimeout().toMillis() + " ms");
                    if (cause instanceof QmpException q) throw q;
                    throw new QmpException("QMP connect to " + c.peer() + " failed: " + cause, cause);
                });
    }

    private void closeQuietly() {
        try { close(); } catch (RuntimeException ignored) { }
    }

    public JsonNode greeting() { return greeting.getNow(null); }

    public boolean oobEnabled() { return oobEnabled; }

    public CompletableFuture<JsonNode> execute(String command) {
        return execute(command, null, null);
    }

    public CompletableFuture<JsonNode> execute(String command, JsonNode args) {
        return execute(command, args, null);
    }

    public CompletableFuture<JsonNode> execute(String command, JsonNode args, Duration timeout) {
        return send(command, args, false, -1, timeout);
    }

    /** Out-of-band execution (only for commands that allow it, and only if oob was negotiated). */
    public CompletableFuture<JsonNode> executeOob(String command, JsonNode args, Duration timeout) {
        if (!oobEnabled) return CompletableFuture.failedFuture(
                new QmpException("out-of-band execution not negotiated with " + peer));
        return send(command, args, true, -1, timeout);
    }

    /** Synchronous helper: returns the "return" value or throws the typed QmpException. */
    public JsonNode call(String command, JsonNode args) {
        return join(execute(command, args));
    }

    public JsonNode call(String command) {
        return join(execute(command));
    }

    /** Passes {@code fd} via SCM_RIGHTS and registers it under {@code name} (getfd). */
    public CompletableFuture<JsonNode> getfd(String name, int fd) {
        ObjectNode a = Json.object().put("fdname", name);
        return send("getfd", a, false, fd, null);
    }

    /** add-fd: passes {@code fd} into an fd set; returns {"fdset-id", "fd"}. */
    public CompletableFuture<JsonNode> addFd(int fd, Integer fdsetId, String opaque) {
        ObjectNode a = Json.object();
        if (fdsetId != null) a.put("fdset-id", fdsetId);
        if (opaque != null) a.put("opaque", opaque);
        return send("add-fd", a, false, fd, null);
    }

    /** HMP passthrough via human-monitor-command. */
    public CompletableFuture<String> hmp(String commandLine) {
        return execute("human-monitor-command", Json.object().put("command-line", commandLine))
                .thenApply(JsonNode::asText);
    }

    private CompletableFuture<JsonNode> send(String command, JsonNode args, boolean oob, int fd, Duration timeout) {
        ObjectNode req = Json.object();
        req.put(oob ? "exec-oob" : "execute", command);
        if (args != null && !(args.isObject() && args.isEmpty())) {
            if (!args.isObject()) return CompletableFuture.failedFuture(
                    new IllegalArgumentException("QMP arguments must be a JSON object, got " + Json.compact(args)));
            req.set("arguments", args);
        }
        return submit(command, req, null, oob, fd, timeout);
    }

    // ---- events -------------------------------------------------------------------------------

    public Runnable addEventListener(Consumer<QmpEvent> l) {
        listeners.add(l);
        return () -> listeners.remove(l);
    }

    public List<QmpEvent> eventHistory() {
        synchronized (history) { return new ArrayList<>(history); }
    }

    /** Sequence number of the newest event received so far (0 if none). */
    public long lastEventSeq() { return eventSeq.get(); }

    /**
     * Completes with the first event with seq &gt; {@code afterSeq} matching {@code match} (history is
     * searched first), or fails with QmpTimeoutException after {@code timeout}.
     */
    public CompletableFuture<QmpEvent> awaitEvent(Predicate<QmpEvent> match, long afterSeq, Duration timeout) {
        CompletableFuture<QmpEvent> f = new CompletableFuture<>();
        Waiter w = new Waiter(match, afterSeq, f);
        synchronized (history) {
            for (QmpEvent e : history) {
                if (e.seq() > afterSeq && match.test(e)) {
                    f.complete(e);
                    return f;
                }
            }
            waiters.add(w);
        }
        channel.eventLoop().schedule(() -> {
            synchronized (history) { waiters.remove(w); }
            f.completeExceptionally(new QmpTimeoutException("no matching event within " + timeout.toMillis() + " ms"));
        }, timeout.toMillis(), TimeUnit.MILLISECONDS);
        closeFuture.thenRun(() -> f.completeExceptionally(new QmpClosedException(
                "connection to " + peer + " closed while waiting for an event")));
        return f;
    }

    /** Waits for event {@code name} whose data subset-matches {@code data} (null = any). */
    public CompletableFuture<QmpEvent> awaitEvent(String name, JsonNode data, long afterSeq, Duration timeout) {
        return awaitEvent(e -> e.name().equals(name) && Json.subsetMismatch(data, e.data(), "data") == null,
                afterSeq, timeout).exceptionallyCompose(t -> {
                    Throwable c = unwrap(t);
                    if (c instanceof QmpTimeoutException) return CompletableFuture.failedFuture(
                            new QmpTimeoutException("event " + name + (data == null ? "" : " " + Json.compact(data))
                                    + " not received within " + timeout.toMillis() + " ms"));
                    return CompletableFuture.failedFuture(c);
                });
    }

    @Override
    protected boolean handleUnsolicited(JsonNode msg) {
        if (msg.has("QMP")) {
            greeting.complete(msg);
            return true;
        }
        if (!msg.has("event")) return false;
        JsonNode ts = msg.path("timestamp");
        QmpEvent e = new QmpEvent(eventSeq.incrementAndGet(), msg.get("event").asText(),
                msg.has("data") ? msg.get("data") : Json.object(),
                ts.path("seconds").asLong() * 1_000_000L + ts.path("microseconds").asLong(), msg);
        List<CompletableFuture<QmpEvent>> fire = new ArrayList<>();
        synchronized (history) {
            history.addLast(e);
            while (history.size() > options.eventHistory()) history.removeFirst();
            for (Iterator<Waiter> it = waiters.iterator(); it.hasNext(); ) {
                Waiter w = it.next();
                if (e.seq() > w.afterSeq() && w.match().test(e)) {
                    it.remove();
                    fire.add(w.future());
                }
            }
        }
        for (Consumer<QmpEvent> l : listeners) {
            try { l.accept(e); } catch (RuntimeException ignored) { }
        }
        fire.forEach(f -> f.complete(e));
        return true;
    }

    /** QEMU sends its greeting first: a peer that starts with anything else is not a QMP server. */
    @Override
    protected int strayBudget() {
        return greeting.isDone() ? super.strayBudget() : 0;
    }

    /** Before the greeting, anything that is not QMP means this is not a QMP server: fail the connect now. */
    @Override
    protected void onProtocolError(QmpProtocolException e) {
        if (!greeting.isDone()) greeting.completeExceptionally(new QmpProtocolException(
                "no QMP greeting from " + peer + ": " + e.getMessage(), e));
        else super.onProtocolError(e);
    }

    @Override
    protected void onClosed(QmpException cause) {
        greeting.completeExceptionally(cause);
    }

    /**
     * No newline after a request: QEMU's JSON streamer takes a command at its closing brace, and its monitor
     * reads one byte per main-loop turn (1.5-2 us each here), so the newline is a turn per command for nothing.
     */
    @Override
    protected boolean newlineAfterRequest() { return false; }

    /** Unwraps CompletionException/ExecutionException layers (see {@link JsonRpcConnection#unwrap}). */
    public static Throwable unwrap(Throwable t) {
        return JsonRpcConnection.unwrap(t);
    }

    /** Joins a future, rethrowing the unwrapped QmpException (see {@link JsonRpcConnection#join}). */
    public static <T> T join(CompletableFuture<T> f) {
        return JsonRpcConnection.join(f);
    }

    /** Command names from query-commands. */
    public List<String> commandNames() {
        List<String> out = new ArrayList<>();
        for (JsonNode n : (ArrayNode) call("query-commands")) out.add(n.path("name").asText());
        return out;
    }
}
