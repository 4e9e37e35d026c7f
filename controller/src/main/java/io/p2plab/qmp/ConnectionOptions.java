package io.p2plab.qmp;

import java.time.Duration;

/** Tunables shared by the QMP and guest-agent clients. */
public record ConnectionOptions(Duration connectTimeout, Duration defaultCommandTimeout, int maxInFlight,
                                int maxReplyBytes, int eventHistory) {
    public static ConnectionOptions defaults() {
        return new ConnectionOptions(Duration.ofSeconds(10), Duration.ofSeconds(60), 8, 16 << 20, 10_000);
    }

    public ConnectionOptions withTimeout(Duration d) {
        return new ConnectionOptions(connectTimeout, d, maxInFlight, maxReplyBytes, eventHistory);
    }

    public ConnectionOptions withMaxInFlight(int n) {
        if (n < 1) throw new IllegalArgumentException("maxInFlight must be >= 1");
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, n, maxReplyBytes, eventHistory);
    }

    public ConnectionOptions withMaxReplyBytes(int n) {
        return new ConnectionOptions(connectTimeout, defaultCommandTimeout, maxInFlight, n, eventHistory);
    }

    public ConnectionOptions withConnectTimeout(Duration d) {
        return new ConnectionOptions(d, defaultCommandTimeout, maxInFlight, maxReplyBytes, eventHistory);
    }
}
