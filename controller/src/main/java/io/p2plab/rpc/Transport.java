package io.p2plab.rpc;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDomainSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.p2plab.qmp.QmpClosedException;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * Shared Netty event loop (one thread: every connection's I/O, framing and reply dispatch run on it, so a
 * completion callback that sends the next command writes without a thread handoff): native epoll when
 * available (needed for SCM_RIGHTS fd passing), else NIO ({@link ConnectionOptions#nativeTransport()} picks
 * NIO on purpose). Addresses: a filesystem path = Unix socket, "host:port" or "tcp:host:port" = TCP.
 */
public final class Transport {
    private static final boolean EPOLL = Epoll.isAvailable();
    private static volatile EventLoopGroup epollGroup;
    private static volatile EventLoopGroup nioGroup;

    private Transport() {}

    /** Native epoll is available (it is used unless a connection asks for NIO). */
    public static boolean nativeEpoll() { return EPOLL; }

    /** The event loop group connections use by default. */
    public static EventLoopGroup group() {
        return group(EPOLL);
    }

    private static EventLoopGroup group(boolean epoll) {
        EventLoopGroup g = epoll ? epollGroup : nioGroup;
        if (g == null) {
            synchronized (Transport.class) {
                g = epoll ? epollGroup : nioGroup;
                if (g == null) {
                    DefaultThreadFactory tf = new DefaultThreadFactory(epoll ? "p2plab-io" : "p2plab-nio", true);
                    g = new MultiThreadIoEventLoopGroup(1, tf,
                            epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
                    if (epoll) epollGroup = g; else nioGroup = g;
                }
            }
        }
        return g;
    }

    /** Parses "unix:PATH", "tcp:HOST:PORT", "HOST:PORT" (port numeric) or a path. */
    public static SocketAddress parse(String spec) {
        if (spec.startsWith("unix:")) return unix(Path.of(spec.substring(5)));
        String s = spec.startsWith("tcp:") ? spec.substring(4) : spec;
        int colon = s.lastIndexOf(':');
        if (colon > 0 && !s.contains("/") && s.substring(colon + 1).matches("\\d+")) {
            return new InetSocketAddress(s.substring(0, colon), Integer.parseInt(s.substring(colon + 1)));
        }
        if (spec.startsWith("tcp:")) throw new IllegalArgumentException("bad TCP address (want tcp:HOST:PORT): " + spec);
        return unix(Path.of(spec));
    }

    public static SocketAddress unix(Path p) {
        return EPOLL ? new DomainSocketAddress(p.toString()) : UnixDomainSocketAddress.of(p);
    }

    public static CompletableFuture<Channel> connect(SocketAddress addr, ChannelInitializer<Channel> init,
                                                     int connectTimeoutMs) {
        return connect(addr, init, connectTimeoutMs, true);
    }

    /**
     * Connects with the native transport if {@code preferNative} and available, else NIO. TCP gets
     * TCP_NODELAY: a command is one small write and must not wait for the previous reply's ACK (Nagle).
     */
    public static CompletableFuture<Channel> connect(SocketAddress addr, ChannelInitializer<Channel> init,
                                                     int connectTimeoutMs, boolean preferNative) {
        boolean epoll = EPOLL && preferNative;
        boolean unix = addr instanceof DomainSocketAddress || addr instanceof UnixDomainSocketAddress;
        if (addr instanceof DomainSocketAddress d && !epoll) addr = UnixDomainSocketAddress.of(d.path());
        if (addr instanceof UnixDomainSocketAddress u && epoll) addr = new DomainSocketAddress(u.getPath().toString());
        Class<? extends Channel> cls;
        if (epoll) cls = unix ? EpollDomainSocketChannel.class : EpollSocketChannel.class;
        else cls = unix ? NioDomainSocketChannel.class : NioSocketChannel.class;
        Bootstrap b = new Bootstrap().group(group(epoll)).channel(cls).handler(init)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, connectTimeoutMs);
        if (!unix) b.option(ChannelOption.TCP_NODELAY, true);
        CompletableFuture<Channel> f = new CompletableFuture<>();
        SocketAddress target = addr;
        ChannelFuture cf = b.connect(target);
        cf.addListener(x -> {
            if (x.isSuccess()) f.complete(cf.channel());
            else f.completeExceptionally(new QmpClosedException("cannot connect to " + describe(target) + ": "
                    + x.cause().getMessage(), x.cause()));
        });
        return f;
    }

    public static String describe(SocketAddress a) {
        if (a instanceof DomainSocketAddress d) return "unix:" + d.path();
        if (a instanceof UnixDomainSocketAddress u) return "unix:" + u.getPath();
        if (a instanceof InetSocketAddress i) return "tcp:" + i.getHostString() + ":" + i.getPort();
        return String.valueOf(a);
    }
}
