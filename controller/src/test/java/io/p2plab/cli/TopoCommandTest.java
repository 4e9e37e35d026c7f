package io.p2plab.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/** `p2plab topo` against guests that cannot answer: a clear error (exit 2) in bounded time, never a hang. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TopoCommandTest {
    @TempDir
    Path tmp;

    record Run(int rc, String out, String err, long ms) {}

    static Run topo(String... args) {
        PrintStream o = System.out, e = System.err;
        ByteArrayOutputStream ob = new ByteArrayOutputStream(), eb = new ByteArrayOutputStream();
        System.setOut(new PrintStream(ob, true));
        System.setErr(new PrintStream(eb, true));
        long t0 = System.nanoTime();
        try {
            String[] a = new String[args.length + 1];
            a[0] = "topo";
            System.arraycopy(args, 0, a, 1, args.length);
            int rc = Main.execute(a);
            return new Run(rc, ob.toString(), eb.toString(), (System.nanoTime() - t0) / 1_000_000);
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
    }

    @Test
    void noSocketAndARefusedSocketAreClearErrors() throws Exception {
        Run r = topo("--ga", tmp.resolve("none.sock").toString(), "--out", tmp.resolve("o").toString());
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("no guest agent socket at", "none.sock");
        assertThat(r.out()).isEmpty();
        // a socket file nobody listens on any more (QEMU killed)
        Path stale = tmp.resolve("stale.sock");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale));
        }
        r = topo("--ga", stale.toString(), "--out", tmp.resolve("o").toString());
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("cannot connect to the guest agent", "Connection refused");
        assertThat(tmp.resolve("o/topo.txt")).doesNotExist();
        // a run dir without an agent socket
        r = topo("--run-dir", tmp.toString());
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("has no qga.sock");
    }

    @Test
    void anAgentThatNeverAnswersFailsWithinTheSyncTimeout() throws Exception {
        Path hung = tmp.resolve("hung.sock");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(hung));
            Thread t = new Thread(() -> {
                try (SocketChannel c = s.accept()) {
                    Thread.sleep(40_000);   // accepted, never a byte back (a guest whose qemu-ga is not running)
                } catch (Exception ignored) {
                }
            });
            t.setDaemon(true);
            t.start();
            Run r = topo("--ga", hung.toString(), "--out", tmp.resolve("o").toString());
            assertThat(r.rc()).isEqualTo(2);
            assertThat(r.err()).contains("did not answer guest-sync-delimited");
            assertThat(r.ms()).isLessThan(30_000);
            assertThat(tmp.resolve("o/topo.txt")).doesNotExist();
        }
    }
}
