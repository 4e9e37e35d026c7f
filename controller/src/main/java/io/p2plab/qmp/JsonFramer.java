package io.p2plab.qmp;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;

import java.util.List;

/**
 * Per-channel framer for the QMP / qemu-ga wire format: a stream of JSON objects, possibly separated by
 * whitespace, newlines, stray bytes, or (guest agent only) 0xFF delimiter bytes. Emits one retained
 * {@link ByteBuf} slice per top-level JSON object, {@link Framing.Sentinel} for each 0xFF byte (it also
 * discards a partial object: that is how guest-sync-delimited resynchronises) and {@link Framing.Stray}
 * for non-whitespace bytes found between objects. An object longer than {@code maxFrameBytes} raises
 * {@link ReplyTooLargeException}.
 */
public final class JsonFramer extends ByteToMessageDecoder {
    private final int maxFrameBytes;
    private int depth;            // nesting depth inside the current object, 0 = between objects
    private boolean inString;
    private boolean escape;
    private int scanned;          // bytes of the current frame already scanned (from readerIndex)

    public JsonFramer(int maxFrameBytes) {
        this.maxFrameBytes = maxFrameBytes;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        int stray = 0;
        while (in.isReadable()) {
            if (depth == 0) {
                byte b = in.readByte();
                if (b == '{' || b == '[') {
                    if (stray > 0) { out.add(new Framing.Stray(stray)); stray = 0; }
                    depth = 1;
                    inString = false;
                    escape = false;
                    in.readerIndex(in.readerIndex() - 1);
                    scanned = 1;
                } else if (b == (byte) 0xFF) {
                    if (stray > 0) { out.add(new Framing.Stray(stray)); stray = 0; }
                    out.add(Framing.Sentinel.INSTANCE);
                } else if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
                    stray++;
                }
                continue;
            }
            int start = in.readerIndex();
            int end = in.writerIndex();
            int i = start + scanned;
            boolean complete = false;
            boolean sentinel = false;
            for (; i < end; i++) {
                byte b = in.getByte(i);
                if (b == (byte) 0xFF) { sentinel = true; break; }
                if (inString) {
                    if (escape) escape = false;
                    else if (b == '\\') escape = true;
                    else if (b == '"') inString = false;
                } else if (b == '"') {
                    inString = true;
                } else if (b == '{' || b == '[') {
                    depth++;
                } else if (b == '}' || b == ']') {
                    if (--depth == 0) { complete = true; i++; break; }
                }
                if (i - start + 1 > maxFrameBytes) {
                    in.skipBytes(in.readableBytes());
                    reset();
                    throw new ReplyTooLargeException(maxFrameBytes);
                }
            }
            if (sentinel) {
                // 0xFF never occurs in valid UTF-8 JSON: drop the partial object, resynchronise.
                in.readerIndex(i + 1);
                reset();
                out.add(new Framing.Stray(i - start));
                out.add(Framing.Sentinel.INSTANCE);
                continue;
            }
            if (!complete) {
                scanned = i - start;
                if (scanned > maxFrameBytes) {
                    in.skipBytes(in.readableBytes());
                    reset();
                    throw new ReplyTooLargeException(maxFrameBytes);
                }
                break;
            }
            int len = i - start;
            out.add(in.retainedSlice(start, len));
            in.readerIndex(i);
            reset();
        }
        if (stray > 0) out.add(new Framing.Stray(stray));
    }

    private void reset() {
        depth = 0;
        inString = false;
        escape = false;
        scanned = 0;
    }

    /** Bytes of a partial object are pending (used to report EOF mid-reply). */
    public boolean midFrame() {
        return depth > 0;
    }
}
