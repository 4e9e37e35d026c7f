package io.p2plab.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.rpc.Transport;
import io.p2plab.util.Json;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * In-process fake QMP / qemu-ga peer for what real QEMU cannot be made to do. The behaviour callback
 * sees every request (one JSON object, newline-terminated or not) and answers through {@link Conn}.
 */
final class FakeQmpServer implements AutoCloseable {
    interface Behavior {
        void onRequest(Conn c, JsonNode req, String raw) throws Exception;
    }

    static final String GREETING = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 99}, "
            + "\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n";

    final class Conn {
        private final OutputStream out;
        private final Object closer;

        Conn(OutputStream out, Object closer) {
            this.out = out;
            this.closer = closer;
        }

        synchronized void send(String raw) throws IOException {
            out.write(raw.getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        synchronized void sendBytes(byte[] b) throws IOException {
            out.write(b);
            out.flush();
        }

        void reply(JsonNode req, String returnJson) throws IOException {
            send("{\"return\": " + returnJson + ", \"id\": " + Json.compact(req.get("id")) + "}\r\n");
        }

        void close() throws IOException {
            if (closer instanceof Socket s) s.close();
            else ((SocketChannel) closer).close();
        }
    }

    final List<String> received = new CopyOnWriteArrayList<>();
    final LinkedBlockingQueue<Conn> connections = new LinkedBlockingQueue<>();
    private final Object server;
    private final String greeting;
    private final Behavior behavior;
    private final Thread acceptor;
    final SocketAddress address;

    /** Unix socket server at {@code path} (null = TCP on loopback). greeting null = send none. */
    FakeQmpServer(Path path, String greeting, Behavior behavior) throws IOException {
        this.greeting = greeting;
        this.behavior = behavior;
        if (path != null) {
            ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            ch.bind(UnixDomainSocketAddress.of(path));
            server = ch;
            address = Transport.unix(path);
        } else {
            ServerSocket s = new ServerSocket(0, 5, InetAddress.getLoopbackAddress());
            server = s;
            address = new InetSocketAddress(InetAddress.getLoopbackAddress(), s.getLocalPort());
        }
        acceptor = new Thread(this::acceptLoop, "fake-qmp-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void acceptLoop() {
        try {
            while (true) {
                Conn c;
                BufferedReader in;
                if (server instanceof ServerSocket s) {
                    Socket sock = s.accept();
                    c = new Conn(sock.getOutputStream(), sock);
                    in = new BufferedReader(new InputStreamReader(sock.getInputStream(), StandardCharsets.UTF_8));
                } else {
                    SocketChannel sc = ((ServerSocketChannel) server).accept();
                    // not Channels.newInput/OutputStream: those serialise reads and writes on one lock
                    OutputStream os = new OutputStream() {
                        @Override public void write(int b) throws IOException { write(new byte[]{(byte) b}, 0, 1); }
                        @Override public void write(byte[] b, int off, int len) throws IOException {
                            ByteBuffer bb = ByteBuffer.wrap(b, off, len);
                            while (bb.hasRemaining()) sc.write(bb);
                        }
                    };
                    java.io.InputStream is = new java.io.InputStream() {
                        @Override public int read() throws IOException {
                            byte[] one = new byte[1];
                            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
                        }
                        @Override public int read(byte[] b, int off, int len) throws IOException {
                            return sc.read(ByteBuffer.wrap(b, off, len));
                        }
                    };
                    c = new Conn(os, sc);
                    in = new BufferedReader(new InputStreamReader(is, StandardCharsets.ISO_8859_1));
                }
                connections.add(c);
                Thread t = new Thread(() -> serve(c, in), "fake-qmp-conn");
                t.setDaemon(true);
                t.start();
            }
        } catch (IOException ignored) {
            // closed
        }
    }

    private void serve(Conn c, BufferedReader in) {
        try {
            if (greeting != null) c.send(greeting);
            String l;
            while ((l = nextMessage(in)) != null) {
                received.add(l);
                JsonNode req = Json.parse(l);
                if (req.path("execute").asText().equals("qmp_capabilities")) {
                    c.reply(req, "{}");
                    continue;
                }
                behavior.onRequest(c, req, l);
            }
        } catch (Exception ignored) {
            // connection closed
        }
    }

    /**
     * The next request: a JSON object read up to its closing brace (the QMP client sends no newline after
     * one, the guest agent does), skipping whitespace and 0xFF between objects; anything else up to the end
     * of its line is returned as is (and fails to parse). null at end of stream.
     */
    static String nextMessage(java.io.Reader in) throws IOException {
        int c;
        do {
            c = in.read();
        } while (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xff);
        if (c < 0) return null;
        StringBuilder b = new StringBuilder();
        if (c != '{') {
            while (c >= 0 && c != '\n') {
                if (c != 0xff) b.append((char) c);
                c = in.read();
            }
            return b.toString().trim();
        }
        int depth = 0;
        boolean str = false, esc = false;
        for (; c >= 0; c = in.read()) {
            b.append((char) c);
            if (str) {
                if (esc) esc = false;
                else if (c == '\\') esc = true;
                else if (c == '"') str = false;
            } else if (c == '"') {
                str = true;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                return b.toString();
            }
        }
        return b.toString();   // cut off by the end of the stream: fails to parse
    }

    static ByteBuffer bytes(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void close() throws IOException {
        if (server instanceof ServerSocket s) s.close();
        else ((ServerSocketChannel) server).close();
        for (Conn c : connections) {
            try { c.close(); } catch (IOException ignored) { }
        }
    }
}
