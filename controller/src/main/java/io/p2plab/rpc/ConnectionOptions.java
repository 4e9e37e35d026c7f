package io.p2plab.rpc;

import java.time.Duration;

/**
 * Tunables shared by the QMP and guest-agent clients (every knob is here; none hides in a system property).
 *
 * @param connectTimeout        socket connect plus, for QMP, greeting and capabilities negotiation
 * @param defaultCommandTimeout per command when the caller gives none (0 = none)
 * @param maxInFlight           commands sent and not yet answered; further ones are queued in order
 * @param maxReplyBytes         cap on one reply or event; a bigger one is a protocol error and closes the connection
 * @param eventHistory          QMP events kept for {@code awaitEvent}
 * @param maxStrayBytes         non-JSON bytes tolerated between two messages; more is a protocol error that fails the
 *                              commands outstanding at once (a broken peer fails fast instead of at the command timeout)
 * @param negotiateOob          QMP: enable out-of-band execution when QEMU offers it
 * @param nativeTransport       use Netty's native epoll transport when available (needed for fd passing); false = NIO
 */
public record ConnectionOptions(Duration connectTimeout, Duration defaultCommandTimeout, int maxInFlight,
                                int maxReplyBytes, int eventHistory, int maxStrayBytes, boolean negotiateOob,
                                boolean nativeTransport) {
    public ConnectionOptions {
        if (maxInFlight < 1) throw new IllegalArgumentException("maxInFlight must be >= 1");
        if (maxReplyBytes < 2) throw new IllegalArgumentException("maxReplyBytes must be >= 2");
        if (maxStrayBytes < 0) throw new IllegalArgumentException("maxStrayBytes must be >= 0");
    }

    public static ConnectionOptions defaults() {
        return new ConnectionOptions(Duration.ofSeconds(10), Duration.ofSeconds(60), 8, 16 << 20, 10_000, 256,
                true, true);
    }

    public ConnectionOptions withTimeout(Duration d) {
        return new ConnectionOptions(connectTimeout, d, maxInFlight, maxReplyBytes, eventHistory, maxStrayBytes,
                negotiateOob, nativeTransport);
    }

    public ConnectionOptions withMaxInFlight(int n) {
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, n, maxReplyBytes, eventHistory,
                maxStrayBytes, negotiateOob, nativeTransport);
    }

    public ConnectionOptions withMaxReplyBytes(int n) {
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, maxInFlight, n, eventHistory,
                maxStrayBytes, negotiateOob, nativeTransport);
    }

    public ConnectionOptions withConnectTimeout(Duration d) {
        return new ConnectionOptions(d, defaultCommandTimeout, maxInFlight, maxReplyBytes, eventHistory,
                maxStrayBytes, negotiateOob, nativeTransport);
    }

    public ConnectionOptions withEventHistory(int n) {
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, maxInFlight, maxReplyBytes, n,
                maxStrayBytes, negotiateOob, nativeTransport);
    }

    public ConnectionOptions withMaxStrayBytes(int n) {
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, maxInFlight, maxReplyBytes, eventHistory,
                n, negotiateOob, nativeTransport);
    }

    public ConnectionOptions withOob(boolean on) {
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, maxInFlight, maxReplyBytes, eventHistory,
                maxStrayBytes, on, nativeTransport);
    }

    public ConnectionOptions withNativeTransport(boolean on) {
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, maxInFlight, maxReplyBytes, eventHistory,
                maxStrayBytes, negotiateOob, on);
    }
}
