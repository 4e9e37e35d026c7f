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
    public static final Encoder ENCODER = new Encoder();

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

    /** Encodes JsonNode (or pre-encoded String) followed by a newline. */
    @ChannelHandler.Sharable
    public static final class Encoder extends MessageToByteEncoder<Object> {
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
            out.writeByte('\n');
        }
    }
}
