package io.p2plab.qmp;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.util.List;

/** Lets tests in other packages use the fake server (guest agent: no greeting). */
public final class FakeServerAccess implements AutoCloseable {
    public interface Behavior {
        void onRequest(Conn c, JsonNode req, String raw) throws Exception;
    }

    public interface Conn {
        void send(String s) throws IOException;
        void sendBytes(byte[] b) throws IOException;
        void reply(JsonNode req, String returnJson) throws IOException;
    }

    private final FakeQmpServer server;

    private FakeServerAccess(FakeQmpServer s) { this.server = s; }

    public static FakeServerAccess start(Path sock, Behavior b) throws IOException {
        return new FakeServerAccess(new FakeQmpServer(sock, null, (c, req, raw) -> b.onRequest(new Conn() {
            public void send(String s) throws IOException { c.send(s); }
            public void sendBytes(byte[] x) throws IOException { c.sendBytes(x); }
            public void reply(JsonNode r, String j) throws IOException { c.reply(r, j); }
        }, req, raw)));
    }

    public SocketAddress address() { return server.address; }

    public List<String> received() { return server.received; }

    @Override
    public void close() throws IOException { server.close(); }
}
