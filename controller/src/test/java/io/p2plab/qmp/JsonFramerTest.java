package io.p2plab.qmp;

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
}
