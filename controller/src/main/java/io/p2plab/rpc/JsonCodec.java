package io.p2plab.rpc;

import com.fasterxml.jackson.databind.JsonNode;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.MessageToByteEncoder;
import io.netty.handler.codec.MessageToMessageDecoder;
import io.p2plab.util.Json;

import java.nio.charset.StandardCharsets;
import java.util.List;

/** Stateless, shared codecs: framed bytes -> JsonNode, JsonNode -> bytes. */
public final class JsonCodec {
    private JsonCodec() {}

    public static final Decoder DECODER = new Decoder();
    /** Each message followed by a newline (qemu-ga, line-oriented peers). */
    public static final Encoder ENCODER = new Encoder(true);
    /**
     * Messages back to back, nothing after the closing brace (QMP): QEMU's JSON streamer ends a message at
     * its closing brace, and its monitor reads one byte per main-loop turn, so a newline would cost QEMU a
     * turn per command for nothing.
     */
    public static final Encoder UNTERMINATED_ENCODER = new Encoder(false);

    @ChannelHandler.Sharable
    public static final class Decoder extends MessageToMessageDecoder<ByteBuf> {
        @Override
        protected void decode(ChannelHandlerContext ctx, ByteBuf msg, List<Object> out) {
            byte[] bytes = ByteBufUtil.getBytes(msg);   // one copy: parsed from it, transcribed from it if asked
            try {
                JsonNode n = Json.MAPPER.readTree(bytes);
                out.add(new Framing.Message(n, bytes));
            } catch (Exception e) {
                out.add(new Framing.BadJson(new String(bytes, StandardCharsets.UTF_8), e.getMessage()));
            }
        }
    }

    /** Encodes JsonNode (or pre-encoded String), followed by a newline if {@code newline}. */
    @ChannelHandler.Sharable
    public static final class Encoder extends MessageToByteEncoder<Object> {
        private final boolean newline;

        private Encoder(boolean newline) {
            this.newline = newline;
        }

        @Override
        public boolean acceptOutboundMessage(Object msg) {
            return msg instanceof JsonNode || msg instanceof String;
        }

        @Override
        protected void encode(ChannelHandlerContext ctx, Object msg, ByteBuf out) throws Exception {
            if (msg instanceof JsonNode n) {
                Json.MAPPER.writeValue((java.io.OutputStream) new io.netty.buffer.ByteBufOutputStream(out), n);
            } else {
                out.writeCharSequence((String) msg, StandardCharsets.UTF_8);
            }
            if (newline) out.writeByte('\n');
        }
    }
}
