package io.p2plab.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.unix.UnixChannel;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GenericFutureListener;
import io.netty.util.concurrent.ScheduledFuture;
import io.p2plab.qmp.QmpClosedException;
import io.p2plab.qmp.QmpErrorException;
import io.p2plab.qmp.QmpException;
import io.p2plab.qmp.QmpProtocolException;
import io.p2plab.qmp.QmpTimeoutException;
import io.p2plab.util.Json;

import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The JSON-RPC core shared by the QMP and qemu-ga clients: id correlation of replies to
 * CompletableFutures (reply dispatch happens here, once; subclasses only see what is not a reply),
 * per-command timeouts, at most N commands in flight (the rest queued), a reply size cap, fd passing,
 * transcripts, protocol errors, and failing every pending command when the peer goes away.
 *
 * <p>Latency: every connection lives on the one {@link Transport} event loop thread. Replies are decoded
 * and their futures completed on it, so a callback that sends the next command writes from the event loop
 * without a thread handoff; writes made while a read is being processed are flushed once at the end of
 * that read (one syscall for a pipelined batch), and writes from other threads are flushed once per event
 * loop turn. Timeouts cost a command nothing but its deadline: one sweep per connection, on the event loop,
 * fails the commands past theirs (no timer object or timer thread per command). Failures caused by the
 * peer's bytes (a non-JSON frame, a stream of stray bytes) fail the outstanding commands at once with
 * {@link QmpProtocolException} instead of leaving them to their timeout.
 */
public abstract class JsonRpcConnection implements AutoCloseable {
    /** One line of the wire transcript: direction '>' sent, '<' received, '!' note. */
    public record TranscriptEntry(long epochMillis, char direction, String text) {}

    protected final ConnectionOptions options;
    protected final String peer;
    protected volatile Channel channel;
    private JsonFramer framer;

    private final Object lock = new Object();
    private final Map<Object, Pending> inFlight = new HashMap<>();   // by idKey(id)
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private int inFlightCount;  // non-oob commands counted against maxInFlight
    private volatile QmpException closedCause;
    private final Set<Long> retired = new HashSet<>();  // ids sent and never answered: not reused
    private final CopyOnWriteArrayList<Consumer<TranscriptEntry>> transcript = new CopyOnWriteArrayList<>();
    protected final CompletableFuture<Void> closeFuture = new CompletableFuture<>();
    private int strayBytes;     // non-JSON bytes since the last message (event loop only)
    // Command timeouts: one sweep per connection, scheduled on the event loop at the earliest deadline of the
    // commands pending when it was armed; it times out the expired ones and re-arms for the earliest left. A
    // command only notes its deadline (no timer object, queue or timer thread per command), and the sweep
    // is re-armed only for a deadline earlier than the armed one (rare: deadlines grow with the default
    // timeout). Guarded by lock.
    private ScheduledFuture<?> sweep;
    private long sweepAt = Long.MAX_VALUE;
    private long sweepGen;      // which arming the scheduled sweep belongs to: a superseded one does nothing

    protected final class Pending implements GenericFutureListener<Future<? super Void>> {
        final String command;
        final ObjectNode request;
        final JsonNode id;
        final Object key;
        final boolean oob;
        final int fd;
        final CompletableFuture<JsonNode> future = new CompletableFuture<>();
        final long timeoutMs;
        long deadline;      // System.nanoTime() after which it times out (timeoutMs > 0)
        boolean sent;
        boolean replied;

        Pending(String command, ObjectNode request, JsonNode id, boolean oob, int fd, long timeoutMs) {
            this.command = command;
            this.request = request;
            this.id = id;
            this.key = idKey(id);
            this.oob = oob;
            this.fd = fd;
            this.timeoutMs = timeoutMs;
        }

        /** Write completion: only a failure matters. */
        @Override
        public void operationComplete(Future<? super Void> f) {
            if (!f.isSuccess()) complete(this, null, new QmpClosedException("write to " + peer + " failed: "
                    + f.cause(), f.cause()));
        }
    }

    protected JsonRpcConnection(SocketAddress addr, ConnectionOptions options) {
        this.options = options;
        this.peer = Transport.describe(addr);
    }

    /** Opens the channel; subclasses then run their handshake. */
    protected CompletableFuture<Void> open(SocketAddress addr) {
        ChannelInitializer<Channel> init = new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                framer = new JsonFramer(options.maxReplyBytes());
                ch.pipeline().addLast("flush", new FlushConsolidationHandler(
                                FlushConsolidationHandler.DEFAULT_EXPLICIT_FLUSH_AFTER_FLUSHES, true))
                        .addLast("framer", framer)
                        .addLast("json", JsonCodec.DECODER)
                        .addLast("encoder", newlineAfterRequest() ? JsonCodec.ENCODER : JsonCodec.UNTERMINATED_ENCODER)
                        .addLast("handler", new Handler());
            }
        };
        return Transport.connect(addr, init, (int) options.connectTimeout().toMillis(), options.nativeTransport())
                .thenAccept(ch -> {
                    this.channel = ch;
                    ch.closeFuture().addListener(f -> closeFuture.complete(null));
                });
    }

    public String peer() { return peer; }

    public ConnectionOptions options() { return options; }

    public boolean isOpen() { return closedCause == null && channel != null && channel.isActive(); }

    public CompletableFuture<Void> closeFuture() { return closeFuture; }

    public void addTranscriptListener(Consumer<TranscriptEntry> l) { transcript.add(l); }

    public void removeTranscriptListener(Consumer<TranscriptEntry> l) { transcript.remove(l); }

    protected void note(char dir, String text) {
        if (transcript.isEmpty()) return;
        TranscriptEntry e = new TranscriptEntry(System.currentTimeMillis(), dir, text);
        for (Consumer<TranscriptEntry> l : transcript) {
            try { l.accept(e); } catch (RuntimeException ignored) { }
        }
    }

    /**
     * Ids are the smallest integers not in use: QEMU reads QMP one byte per read(2) (its monitor's can_read
     * is 1), so every byte of a request costs QEMU's monitor a main-loop turn (1.5-2 us here), and
     * "id":3 instead of "id":"p2plab-123456" is about a sixth less QEMU CPU per query-status. An id is
     * reused only after its own reply arrived (QEMU answers each command once); the id of a command that
     * timed out or failed without its reply is retired for the life of the connection, so a late reply can
     * never be taken for another command's. Caller holds {@code lock}.
     */
    private JsonNode allocateId() {
        for (long i = 1; ; i++) {
            Long k = i;
            if (!inFlight.containsKey(k) && !retired.contains(k)) return Json.NODES.numberNode((int) i);
        }
    }

    /** Map key of an id: integral ids by value (the parser may give IntNode or LongNode), others as nodes. */
    private static Object idKey(JsonNode id) {
        return id.isIntegralNumber() && id.canConvertToLong() ? (Object) id.longValue() : id;
    }

    /** Number of commands currently sent and not answered (for tests / diagnostics). */
    public int inFlight() { synchronized (lock) { return inFlightCount; } }

    public int queued() { synchronized (lock) { return queue.size(); } }

    /**
     * Sends a request object (the {@code id} is added to it; null = the smallest free one) and completes with the raw "return" value, or
     * exceptionally with a typed {@link QmpException}.
     */
    protected CompletableFuture<JsonNode> submit(String command, ObjectNode request, JsonNode id, boolean oob,
                                                 int fd, Duration timeout) {
        long tmo = (timeout == null ? options.defaultCommandTimeout() : timeout).toMillis();
        Pending p;
        boolean sendNow;
        synchronized (lock) {
            if (id == null) id = allocateId();
            request.set("id", id);
            p = new Pending(command, request, id, oob, fd, tmo);
            if (closedCause != null) {
                p.future.completeExceptionally(closedCause);
                return p.future;
            }
            if (inFlight.putIfAbsent(p.key, p) != null) throw new IllegalArgumentException("duplicate id " + Json.compact(id));
            if (tmo > 0) {
                p.deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(tmo);
                if (p.deadline - sweepAt < 0 || sweep == null) armSweep(p.deadline);
            }
            sendNow = oob || inFlightCount < options.maxInFlight();
            if (sendNow) {
                if (!oob) inFlightCount++;
                p.sent = true;
            } else {
                queue.add(p);
            }
        }
        if (sendNow) write(p);
        return p.future;
    }

    private void write(Pending p) {
        Channel ch = channel;
        if (p.fd >= 0) {
            ch.eventLoop().execute(() -> sendFdThenWrite(p, 0));
            return;
        }
        Object msg = p.request;
        if (!transcript.isEmpty()) {
            String text = Json.compact(p.request);
            note('>', text);
            msg = text;
        }
        // flushed by the FlushConsolidationHandler: at the end of the read being processed, or once per
        // event loop turn for writes from other threads
        ch.writeAndFlush(msg).addListener(p);
    }

    private void sendFdThenWrite(Pending p, int attempt) {
        Channel ch = channel;
        if (p.future.isDone()) return;
        if (!(ch instanceof UnixChannel uc)) {
            complete(p, null, new QmpException("fd passing needs a Unix socket with the native epoll transport ("
                    + peer + ")"));
            return;
        }
        // Only send the fd byte when nothing of an earlier message is still buffered, so the ' ' lands
        // between two JSON messages. Flush past the consolidation handler first.
        ChannelHandlerContext flush = ch.pipeline().context("flush");
        if (flush != null) flush.flush();
        boolean idle = ch.unsafe().outboundBuffer() == null || ch.unsafe().outboundBuffer().isEmpty();
        boolean sent = false;
        if (idle) {
            try {
                sent = FdPassing.send(uc.fd().intValue(), p.fd);
            } catch (QmpException e) {
                complete(p, null, e);
                return;
            }
        }
        if (!sent) {
            if (attempt > 2000) {
                complete(p, null, new QmpException("sendmsg(SCM_RIGHTS) to " + peer + " kept failing"));
                return;
            }
            ch.eventLoop().schedule(() -> sendFdThenWrite(p, attempt + 1), 1, TimeUnit.MILLISECONDS);
            return;
        }
        note('!', "sent fd " + p.fd + " via SCM_RIGHTS");
        String text = Json.compact(p.request);
        note('>', text);
        ch.writeAndFlush(text).addListener(p);
    }

    /** (Re-)arms the timeout sweep for {@code at} (System.nanoTime()). Caller holds {@code lock}. */
    private void armSweep(long at) {
        if (sweep != null) sweep.cancel(false);
        sweepAt = at;
        long gen = ++sweepGen;
        sweep = channel.eventLoop().schedule(() -> sweep(gen), Math.max(0, at - System.nanoTime()), TimeUnit.NANOSECONDS);
    }

    /**
     * On the event loop: times out the commands past their deadline, re-arms for the earliest one left. A sweep
     * that was superseded while it was already due (too late to cancel) returns: the later arming is earlier.
     */
    private void sweep(long gen) {
        List<Pending> expired = null;
        synchronized (lock) {
            if (gen != sweepGen) return;
            sweep = null;
            sweepAt = Long.MAX_VALUE;
            long now = System.nanoTime();
            boolean left = false;
            long next = 0;
            for (Pending p : inFlight.values()) {
                if (p.timeoutMs <= 0) continue;
                if (p.deadline - now <= 0) {
                    if (expired == null) expired = new ArrayList<>();
                    expired.add(p);
                } else if (!left || p.deadline - next < 0) {
                    left = true;
                    next = p.deadline;
                }
            }
            if (left && closedCause == null) armSweep(next);
        }
        if (expired != null) for (Pending p : expired) timeout(p);
    }

    private void timeout(Pending p) {
        complete(p, null, new QmpTimeoutException(p.command + " (id " + Json.compact(p.id) + ") got no reply from "
                + peer + " within " + p.timeoutMs + " ms"));
    }

    /** Completes a pending command, frees its slot and sends queued ones. */
    protected void complete(Pending p, JsonNode result, Throwable error) {
        List<Pending> toSend = null;
        synchronized (lock) {
            if (inFlight.get(p.key) != p) return;
            inFlight.remove(p.key);
            if (p.sent && !p.replied && p.key instanceof Long k) retired.add(k);
            if (p.sent) {
                if (!p.oob) inFlightCount--;
            } else {
                queue.remove(p);
            }
            while (!queue.isEmpty() && inFlightCount < options.maxInFlight()) {
                Pending q = queue.poll();
                q.sent = true;
                inFlightCount++;
                if (toSend == null) toSend = new ArrayList<>(2);
                toSend.add(q);
            }
        }
        if (error != null) p.future.completeExceptionally(error);
        else p.future.complete(result);
        if (toSend != null) for (Pending q : toSend) write(q);
    }

    /**
     * Subclass hook, called first for every JSON object received: greeting, events, sync replies... Returns
     * true if it consumed the message; anything else goes through reply dispatch.
     */
    protected abstract boolean handleUnsolicited(JsonNode msg);

    /** Reply dispatch: {"return"|"error", "id"} to its command, an id-less error, else a note. */
    private void dispatch(JsonNode msg) {
        if (handleUnsolicited(msg)) return;
        JsonNode id = msg.get("id");
        if (id != null && (msg.has("return") || msg.has("error"))) handleReply(id, msg);
        else if (msg.has("error")) handleIdlessError(msg);
        else note('!', "unexpected message ignored");
    }

    private void handleReply(JsonNode id, JsonNode msg) {
        Pending p;
        synchronized (lock) {
            p = inFlight.get(idKey(id));
        }
        if (p == null || !p.sent) {
            note('!', "reply for unknown or timed-out id " + Json.compact(id) + " ignored");
            return;
        }
        p.replied = true;
        JsonNode err = msg.get("error");
        if (err != null) {
            complete(p, null, QmpErrorException.of(p.command, err.path("class").asText("?"),
                    err.path("desc").asText("")));
        } else {
            complete(p, msg.get("return"), null);
        }
    }

    /** An error without id: attributable only if exactly one command is outstanding. */
    private void handleIdlessError(JsonNode msg) {
        JsonNode err = msg.get("error");
        String cls = err.path("class").asText("?");
        String desc = err.path("desc").asText("");
        Pending only = null;
        synchronized (lock) {
            List<Pending> sent = inFlight.values().stream().filter(x -> x.sent).toList();
            if (sent.size() == 1) only = sent.get(0);
        }
        if (only != null) {
            complete(only, null, new QmpProtocolException("id-less error from " + peer + " while '" + only.command
                    + "' was outstanding: " + cls + ": " + desc));
        } else {
            note('!', "id-less error not attributable to a command: " + cls + ": " + desc);
        }
    }

    /**
     * The peer sent bytes that are not the protocol. The default fails every command already sent (their
     * replies cannot be trusted to come); the connection stays open, resynchronised by the framer.
     */
    protected void onProtocolError(QmpProtocolException e) {
        failSent(e);
    }

    /** Non-JSON bytes tolerated between two messages (a subclass may allow none, e.g. before a greeting). */
    protected int strayBudget() { return options.maxStrayBytes(); }

    /** True while junk is expected and harmless (the guest agent before a sync's 0xFF). */
    protected boolean junkExpected() { return false; }

    /** Fails the commands sent and not answered (queued ones stay queued and are sent as slots free up). */
    protected void failSent(QmpException cause) {
        List<Pending> sent;
        synchronized (lock) {
            sent = inFlight.values().stream().filter(x -> x.sent).toList();
        }
        for (Pending p : sent) complete(p, null, cause);
    }

    /** Fails every pending and queued command with {@code cause}; further submissions fail too. */
    protected void failAll(QmpException cause) {
        List<Pending> all;
        synchronized (lock) {
            if (closedCause == null) closedCause = cause;
            all = new ArrayList<>(inFlight.values());
            if (sweep != null) sweep.cancel(false);
            sweep = null;
            sweepAt = Long.MAX_VALUE;
            sweepGen++;
        }
        for (Pending p : all) complete(p, null, cause);
        onClosed(cause);
    }

    protected void onClosed(QmpException cause) {}

    /**
     * Whether a newline follows each request on the wire (default). A peer whose JSON parser ends a message at
     * its closing brace needs none (QMP: see {@link JsonCodec#UNTERMINATED_ENCODER}).
     */
    protected boolean newlineAfterRequest() { return true; }

    protected void handleSentinel() {}

    @Override
    public void close() {
        failAll(new QmpClosedException("connection to " + peer + " closed by client"));
        Channel ch = channel;
        if (ch != null) ch.close().syncUninterruptibly();
    }

    /** Unwraps CompletionException/ExecutionException layers. */
    public static Throwable unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null)
            t = t.getCause();
        return t;
    }

    /** Joins a future, rethrowing the unwrapped QmpException (or wrapping others). */
    public static <T> T join(CompletableFuture<T> f) {
        try {
            return f.join();
        } catch (CompletionException e) {
            Throwable c = unwrap(e);
            if (c instanceof RuntimeException r) {
                r.addSuppressed(new Exception("joined here"));
                throw r;
            }
            throw new QmpException(c.toString(), c);
        }
    }

    private void junk(String what) {
        if (junkExpected()) return;
        QmpProtocolException e = new QmpProtocolException(peer + " does not speak the protocol: " + what);
        note('!', e.getMessage());
        onProtocolError(e);
    }

    private final class Handler extends SimpleChannelInboundHandler<Object> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof Framing.Message m) {
                if (!transcript.isEmpty()) note('<', m.raw());
                if (!m.json().isObject()) {
                    // both protocols send objects only: "[    1.234] a kernel log line" is junk, not a message
                    note('!', "ignored non-object JSON message");
                    stray(m.bytes().length);
                    return;
                }
                strayBytes = 0;
                dispatch(m.json());
            } else if (msg instanceof Framing.Sentinel) {
                note('!', "0xFF delimiter");
                strayBytes = 0;
                handleSentinel();
            } else if (msg instanceof Framing.Stray s) {
                note('!', "skipped " + s.bytes() + " stray byte(s)");
                stray(s.bytes());
            } else if (msg instanceof Framing.BadJson b) {
                note('!', "unparsable message dropped (" + b.error() + "): " + b.text());
                strayBytes = 0;
                junk(b.error() + ": " + b.text());
            }
        }

        private void stray(int n) {
            strayBytes += n;
            int budget = strayBudget();
            if (strayBytes > budget) {
                int total = strayBytes;
                strayBytes = 0;
                junk(total + " byte(s) that are not JSON messages since its last message (more than the " + budget
                        + " tolerated)");
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            String mid = framer != null && framer.midFrame() ? " in the middle of a message" : "";
            failAll(new QmpClosedException(peer + " closed the connection" + mid
                    + " (QEMU exited or the socket was closed)"));
            ctx.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            Throwable c = cause;
            if (!(c instanceof ReplyTooLargeException) && c.getCause() instanceof ReplyTooLargeException r) c = r;
            QmpException q = c instanceof ReplyTooLargeException
                    ? new QmpProtocolException(c.getMessage() + " (" + peer + ")", c)
                    : new QmpClosedException(peer + " closed the connection (" + c.getMessage()
                            + "; QEMU exited or the socket was closed)", c);
            note('!', q.getMessage());
            failAll(q);
            ctx.close();
        }
    }
}
