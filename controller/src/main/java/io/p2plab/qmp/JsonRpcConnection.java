package io.p2plab.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.unix.UnixChannel;
import io.netty.util.HashedWheelTimer;
import io.netty.util.Timeout;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.p2plab.util.Json;

import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * The request/response core shared by the QMP and qemu-ga clients: id correlation of replies to
 * CompletableFutures, per-command timeouts, at most N commands in flight (the rest queued), a reply
 * size cap, fd passing, transcripts, and failing every pending command when the peer goes away.
 */
public abstract class JsonRpcConnection implements AutoCloseable {
    /** One line of the wire transcript: direction '>' sent, '<' received, '!' note. */
    public record TranscriptEntry(long epochMillis, char direction, String text) {}

    /** One shared wheel for all command timeouts: far cheaper per command than a scheduled task each. */
    private static final HashedWheelTimer TIMEOUTS = new HashedWheelTimer(
            new DefaultThreadFactory("p2plab-timeouts", true), 5, TimeUnit.MILLISECONDS, 512);

    protected final ConnectionOptions options;
    protected final String peer;
    protected volatile Channel channel;
    private JsonFramer framer;

    private final Object lock = new Object();
    private final Map<String, Pending> inFlight = new LinkedHashMap<>();
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private int inFlightCount;  // non-oob commands counted against maxInFlight
    private volatile QmpException closedCause;
    private final AtomicLong ids = new AtomicLong(1);
    private final CopyOnWriteArrayList<Consumer<TranscriptEntry>> transcript = new CopyOnWriteArrayList<>();
    protected final CompletableFuture<Void> closeFuture = new CompletableFuture<>();

    protected final class Pending {
        final String command;
        final ObjectNode request;
        final String idKey;
        final boolean oob;
        final int fd;
        final CompletableFuture<JsonNode> future = new CompletableFuture<>();
        final long timeoutMs;
        Timeout timer;
        boolean sent;

        Pending(String command, ObjectNode request, JsonNode id, boolean oob, int fd, long timeoutMs) {
            this.command = command;
            this.request = request;
            this.idKey = Json.compact(id);
            this.oob = oob;
            this.fd = fd;
            this.timeoutMs = timeoutMs;
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
                ch.pipeline().addLast("framer", framer)
                        .addLast("json", JsonCodec.DECODER)
                        .addLast("encoder", JsonCodec.ENCODER)
                        .addLast("handler", new Handler());
            }
        };
        return Transport.connect(addr, init, (int) options.connectTimeout().toMillis()).thenAccept(ch -> {
            this.channel = ch;
            ch.closeFuture().addListener(f -> closeFuture.complete(null));
        });
    }

    public String peer() { return peer; }

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

    protected JsonNode nextId() {
        return Json.NODES.textNode("p2plab-" + ids.getAndIncrement());
    }

    /** Number of commands currently sent and not answered (for tests / diagnostics). */
    public int inFlight() { synchronized (lock) { return inFlightCount; } }

    public int queued() { synchronized (lock) { return queue.size(); } }

    /**
     * Sends a request object (without id; one is added under {@code idField}) and completes with the
     * raw "return" value, or exceptionally with a typed {@link QmpException}.
     */
    protected CompletableFuture<JsonNode> submit(String command, ObjectNode request, JsonNode id, boolean oob,
                                                 int fd, Duration timeout) {
        long tmo = (timeout == null ? options.defaultCommandTimeout() : timeout).toMillis();
        request.set("id", id);
        Pending p = new Pending(command, request, id, oob, fd, tmo);
        boolean sendNow;
        synchronized (lock) {
            if (closedCause != null) {
                p.future.completeExceptionally(closedCause);
                return p.future;
            }
            if (inFlight.containsKey(p.idKey)) throw new IllegalArgumentException("duplicate id " + p.idKey);
            inFlight.put(p.idKey, p);
            sendNow = oob || inFlightCount < options.maxInFlight();
            if (sendNow) {
                if (!oob) inFlightCount++;
                p.sent = true;
            } else {
                queue.add(p);
            }
        }
        if (tmo > 0) {
            p.timer = TIMEOUTS.newTimeout(t -> timeout(p), tmo, TimeUnit.MILLISECONDS);
        }
        if (sendNow) write(p);
        return p.future;
    }

    private void write(Pending p) {
        Channel ch = channel;
        if (p.fd >= 0) {
            ch.eventLoop().execute(() -> sendFdThenWrite(p, 0));
        } else {
            Object msg = p.request;
            if (!transcript.isEmpty()) {
                String text = Json.compact(p.request);
                note('>', text);
                msg = text;
            }
            ch.writeAndFlush(msg).addListener(f -> {
                if (!f.isSuccess()) complete(p, null, new QmpClosedException("write to " + peer + " failed: "
                        + f.cause(), f.cause()));
            });
        }
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
        // between two JSON messages.
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
        ch.writeAndFlush(text);
    }

    private void timeout(Pending p) {
        complete(p, null, new QmpTimeoutException(p.command + " (id " + p.idKey + ") got no reply from " + peer
                + " within " + p.timeoutMs + " ms"));
    }

    /** Completes a pending command, frees its slot and sends queued ones. */
    protected void complete(Pending p, JsonNode result, Throwable error) {
        List<Pending> toSend = new ArrayList<>();
        synchronized (lock) {
            if (inFlight.remove(p.idKey) != p) return;
            if (p.sent) {
                if (!p.oob) inFlightCount--;
            } else {
                queue.remove(p);
            }
            while (!queue.isEmpty() && inFlightCount < options.maxInFlight()) {
                Pending q = queue.poll();
                q.sent = true;
                inFlightCount++;
                toSend.add(q);
            }
        }
        if (p.timer != null) p.timer.cancel();
        if (error != null) p.future.completeExceptionally(error);
        else p.future.complete(result);
        for (Pending q : toSend) write(q);
    }

    /** Handles {"return"|"error", "id"}; returns false if the id is unknown. */
    protected boolean handleReply(JsonNode msg) {
        String key = Json.compact(msg.get("id"));
        Pending p;
        synchronized (lock) {
            p = inFlight.get(key);
        }
        if (p == null || !p.sent) {
            note('!', "reply for unknown or timed-out id " + key + " ignored");
            return false;
        }
        JsonNode err = msg.get("error");
        if (err != null) {
            complete(p, null, QmpErrorException.of(p.command, err.path("class").asText("?"),
                    err.path("desc").asText("")));
        } else {
            complete(p, msg.get("return"), null);
        }
        return true;
    }

    /** An error without id: attributable only if exactly one command is outstanding. */
    protected void handleIdlessError(JsonNode msg) {
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
        onIdlessError(cls, desc);
    }

    protected void onIdlessError(String cls, String desc) {}

    /** Fails every pending and queued command with {@code cause}; further submissions fail too. */
    protected void failAll(QmpException cause) {
        List<Pending> all;
        synchronized (lock) {
            if (closedCause == null) closedCause = cause;
            all = new ArrayList<>(inFlight.values());
        }
        for (Pending p : all) complete(p, null, cause);
        onClosed(cause);
    }

    protected void onClosed(QmpException cause) {}

    /** Subclass hook for non-reply messages (greeting, events, sync replies...). */
    protected abstract void handleMessage(JsonNode msg, String raw);

    protected void handleSentinel() {}

    @Override
    public void close() {
        failAll(new QmpClosedException("connection to " + peer + " closed by client"));
        Channel ch = channel;
        if (ch != null) ch.close().syncUninterruptibly();
    }

    private final class Handler extends SimpleChannelInboundHandler<Object> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof Framing.Message m) {
                note('<', m.raw());
                if (!m.json().isObject()) {
                    note('!', "ignored non-object JSON message");
                    return;
                }
                handleMessage(m.json(), m.raw());
            } else if (msg instanceof Framing.Sentinel) {
                note('!', "0xFF delimiter");
                handleSentinel();
            } else if (msg instanceof Framing.Stray s) {
                note('!', "skipped " + s.bytes() + " stray byte(s)");
            } else if (msg instanceof Framing.BadJson b) {
                note('!', "unparsable message ignored (" + b.error() + "): " + b.text());
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
