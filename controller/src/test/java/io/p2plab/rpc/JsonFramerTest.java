package io.p2plab.rpc;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class JsonFramerTest {
    private static List<Object> feed(int cap, byte[]... chunks) {
        EmbeddedChannel ch = new EmbeddedChannel(new JsonFramer(cap));
        for (byte[] c : chunks) ch.writeInbound(Unpooled.wrappedBuffer(c));
        List<Object> out = new ArrayList<>();
        Object o;
        while ((o = ch.readInbound()) != null) {
            if (o instanceof ByteBuf b) {
                out.add(b.toString(StandardCharsets.UTF_8));
                b.release();
            } else {
                out.add(o);
            }
        }
        ch.finishAndReleaseAll();
        return out;
    }

    private static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    @Test
    void splitsObjectsAcrossChunksWithTrickyStrings() {
        List<Object> out = feed(1000, b("{\"a\": \"}{\\\"\"}\r\n{\"b\""), b(": [1, {\"c\": \"]\"}]}"), b("\n"));
        assertThat(out).containsExactly("{\"a\": \"}{\\\"\"}", "{\"b\": [1, {\"c\": \"]\"}]}");
    }

    @Test
    void reportsStrayBytesAndSentinels() {
        List<Object> out = feed(1000, b("xx {\"half\": "), new byte[]{(byte) 0xFF}, b("{\"return\": 5}"));
        assertThat(out).containsExactly(new Framing.Stray(2), new Framing.Stray(9), Framing.Sentinel.INSTANCE, "{\"return\": 5}");
    }

    @Test
    void capIsEnforcedEvenBeforeTheObjectEnds() {
        EmbeddedChannel ch = new EmbeddedChannel(new JsonFramer(16));
        assertThatThrownBy(() -> ch.writeInbound(Unpooled.wrappedBuffer(b("{\"x\": \"0123456789abcdef"))))
                .isInstanceOf(ReplyTooLargeException.class).hasMessageContaining("16 bytes");
    }

    @Test
    void byteAtATime() {
        String s = "{\"event\": \"X\", \"data\": {\"s\": \"a\\\\\"}}";
        byte[][] chunks = new byte[s.length()][];
        for (int i = 0; i < s.length(); i++) chunks[i] = new byte[]{(byte) s.charAt(i)};
        assertThat(feed(1000, chunks)).containsExactly(s);
    }

    private static String badText(Object o) {
        assertThat(o).isInstanceOf(Framing.BadJson.class);
        return ((Framing.BadJson) o).text();
    }

    @Test
    void garbageWithABraceDoesNotSwallowTheNextReply() {
        // the old framer counted braces only: "{y z" opened an object and the reply below was eaten by it
        List<Object> out = feed(1000, b("x{y z\r\n{\"return\": 1}\r\n"));
        assertThat(out).hasSize(4);
        assertThat(out.get(0)).isEqualTo(new Framing.Stray(1));
        assertThat(badText(out.get(1))).isEqualTo("{");
        assertThat(((Framing.BadJson) out.get(1)).error()).contains("'y'");
        assertThat(out.get(2)).isEqualTo(new Framing.Stray(2));
        assertThat(out.get(3)).isEqualTo("{\"return\": 1}");
    }

    @Test
    void aLineThatIsNotJsonEndsAtItsNewline() {
        // an unterminated string: JSON strings cannot hold a raw newline, so the line is dropped there
        List<Object> out = feed(1000, b("{\"return\": \"abc {{{\n"), b("{\"return\": 2}\n"));
        assertThat(out).hasSize(2);
        assertThat(badText(out.get(0))).isEqualTo("{\"return\": \"abc {{{");
        assertThat(out.get(1)).isEqualTo("{\"return\": 2}");
    }

    @Test
    void aTruncatedObjectIsDroppedAtTheNextObject() {
        List<Object> out = feed(1000, b("{\"return\": {\"a\": 1\r\n"), b("{\"return\": 2, \"id\": [true, null, -1.5e3]}"));
        assertThat(out).hasSize(2);
        assertThat(badText(out.get(0))).startsWith("{\"return\": {\"a\": 1");
        assertThat(out.get(1)).isEqualTo("{\"return\": 2, \"id\": [true, null, -1.5e3]}");
    }

    @Test
    void mismatchedBracketsAreNotJson() {
        List<Object> out = feed(1000, b("{\"a\": [1}{\"b\": {}}"));
        assertThat(out).hasSize(3);
        assertThat(badText(out.get(0))).isEqualTo("{\"a\": [1");
        assertThat(out.get(1)).isEqualTo(new Framing.Stray(1));   // the '}' that did not fit
        assertThat(out.get(2)).isEqualTo("{\"b\": {}}");
    }

    @Test
    void prettyPrintedJsonStillFramesWhole() {
        String pretty = "{\n    \"return\": {\n        \"status\": \"running\",\n        \"running\": true\n    },\n    \"id\": \"x\"\n}";
        assertThat(feed(1000, b(pretty + "\n"), b(" [ ]\n"))).containsExactly(pretty, "[ ]");
    }
}
