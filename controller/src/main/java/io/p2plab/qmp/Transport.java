package io.p2plab.qmp;

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

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * Shared Netty event loop: native epoll when available (needed for SCM_RIGHTS fd passing), else NIO.
 * Addresses: a filesystem path = Unix socket, "host:port" or "tcp:host:port" = TCP.
 */
public final class Transport {
    private static final boolean EPOLL = Epoll.isAvailable() && !Boolean.getBoolean("p2plab.nio");
    private static volatile EventLoopGroup group;

    private Transport() {}

    public static boolean nativeEpoll() { return EPOLL; }

    public static EventLoopGroup group() {
        EventLoopGroup g = group;
        if (g == null) {
            synchronized (Transport.class) {
                g = group;
                if (g == null) {
                    DefaultThreadFactory tf = new DefaultThreadFactory("p2plab-io", true);
                    g = new MultiThreadIoEventLoopGroup(1, tf,
                            EPOLL ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
                    group = g;
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
        boolean unix = addr instanceof DomainSocketAddress || addr instanceof UnixDomainSocketAddress;
        Class<? extends Channel> cls;
        if (EPOLL) cls = unix ? EpollDomainSocketChannel.class : EpollSocketChannel.class;
        else cls = unix ? NioDomainSocketChannel.class : NioSocketChannel.class;
        Bootstrap b = new Bootstrap().group(group()).channel(cls).handler(init)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, connectTimeoutMs);
        CompletableFuture<Channel> f = new CompletableFuture<>();
        ChannelFuture cf = b.connect(addr);
        cf.addListener(x -> {
            if (x.isSuccess()) f.complete(cf.channel());
            else f.completeExceptionally(new QmpClosedException("cannot connect to " + describe(addr) + ": "
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
