package io.p2plab.rpc;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Per-channel framer for the QMP / qemu-ga wire format: a stream of JSON objects, possibly separated by
 * whitespace, newlines, stray bytes, or (guest agent only) 0xFF delimiter bytes. Emits one retained
 * {@link ByteBuf} slice per top-level JSON object or array, {@link Framing.Sentinel} for each 0xFF byte (it
 * also discards a partial object: that is how guest-sync-delimited resynchronises) and {@link Framing.Stray}
 * for non-whitespace bytes found between objects. An object longer than {@code maxFrameBytes} raises
 * {@link ReplyTooLargeException}.
 *
 * <p>The framer checks the JSON syntax as the bytes arrive (a small pushdown automaton: structure, string
 * escapes, no raw control characters in strings, scalar characters; the spelling of numbers and literals is
 * left to the parser). The first byte that cannot continue the current object ends it: the partial object
 * is reported as {@link Framing.BadJson} and framing resumes at that byte, between objects. So garbage
 * that happens to contain a '{' cannot swallow the replies after it: a line that is not JSON is dropped at
 * its newline at the latest (JSON strings cannot hold a raw newline), and a truncated object is dropped at
 * the next '{' that cannot continue it. Multi-line (pretty-printed) JSON frames as usual.
 */
public final class JsonFramer extends ByteToMessageDecoder {
    // what the syntax allows next inside a frame
    private static final byte VALUE = 0, VALUE_OR_CLOSE = 1, KEY = 2, KEY_OR_CLOSE = 3, COLON = 4, AFTER = 5,
            STRING = 6, SCALAR = 7;
    private static final byte OBJ = 1, ARR = 2;
    private static final int PREVIEW = 200;

    private final int maxFrameBytes;
    private int depth;            // nesting depth inside the current frame, 0 = between frames
    private byte[] stack = new byte[16];
    private byte state;
    private boolean keyString;    // the string being scanned is an object key
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
                    open(b);
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
            int result = 0;           // 0 = need more bytes, 1 = complete, 2 = 0xFF, 3 = invalid byte at i
            for (; i < end; i++) {
                byte b = in.getByte(i);
                if (b == (byte) 0xFF) { result = 2; break; }
                int r = step(b);
                if (r != 0) {
                    result = r;
                    if (r == 1) i++;
                    break;
                }
                if (i - start + 1 > maxFrameBytes) {
                    in.skipBytes(in.readableBytes());
                    reset();
                    throw new ReplyTooLargeException(maxFrameBytes);
                }
            }
            if (result == 2) {
                // 0xFF never occurs in valid UTF-8 JSON: drop the partial object, resynchronise.
                in.readerIndex(i + 1);
                reset();
                out.add(new Framing.Stray(i - start));
                out.add(Framing.Sentinel.INSTANCE);
                continue;
            }
            if (result == 3) {
                byte bad = in.getByte(i);
                out.add(new Framing.BadJson(preview(in, start, i - start),
                        "not JSON: unexpected " + describe(bad) + " at byte " + (i - start)));
                in.readerIndex(i);    // resume at the offending byte, between frames
                reset();
                continue;
            }
            if (result == 0) {
                scanned = i - start;
                if (scanned > maxFrameBytes) {
                    in.skipBytes(in.readableBytes());
                    reset();
                    throw new ReplyTooLargeException(maxFrameBytes);
                }
                break;
            }
            out.add(in.retainedSlice(start, i - start));
            in.readerIndex(i);
            reset();
        }
        if (stray > 0) out.add(new Framing.Stray(stray));
    }

    private void open(byte b) {
        depth = 0;
        push(b == '{' ? OBJ : ARR);
        state = b == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
        keyString = false;
        escape = false;
    }

    private void push(byte kind) {
        if (depth == stack.length) stack = Arrays.copyOf(stack, depth * 2);
        stack[depth++] = kind;
    }

    /** Advances the syntax by one byte: 0 = continue, 1 = the frame is complete, 3 = the byte is invalid. */
    private int step(byte b) {
        switch (state) {
            case STRING -> {
                if (escape) escape = false;
                else if (b == '\\') escape = true;
                else if (b == '"') state = keyString ? COLON : AFTER;
                else if (b >= 0 && b < 0x20) return 3;     // raw control character (a newline): not JSON
                return 0;
            }
            case SCALAR -> {
                if ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
                        || b == '-' || b == '+' || b == '.') return 0;
                state = AFTER;
                return step(b);
            }
            default -> { }
        }
        if (b == ' ' || b == '\n' || b == '\r' || b == '\t') return 0;
        switch (state) {
            case VALUE, VALUE_OR_CLOSE -> {
                if (b == '{') { push(OBJ); state = KEY_OR_CLOSE; }
                else if (b == '[') { push(ARR); state = VALUE_OR_CLOSE; }
                else if (b == '"') { keyString = false; state = STRING; }
                else if ((b >= '0' && b <= '9') || b == '-' || b == 't' || b == 'f' || b == 'n') state = SCALAR;
                else if (b == ']' && state == VALUE_OR_CLOSE) return close();
                else return 3;
                return 0;
            }
            case KEY, KEY_OR_CLOSE -> {
                if (b == '"') { keyString = true; state = STRING; return 0; }
                if (b == '}' && state == KEY_OR_CLOSE) return close();
                return 3;
            }
            case COLON -> {
                if (b != ':') return 3;
                state = VALUE;
                return 0;
            }
            default -> {  // AFTER a value
                byte top = stack[depth - 1];
                if (b == ',') { state = top == OBJ ? KEY : VALUE; return 0; }
                if ((b == '}' && top == OBJ) || (b == ']' && top == ARR)) return close();
                return 3;
            }
        }
    }

    private int close() {
        depth--;
        state = AFTER;
        return depth == 0 ? 1 : 0;
    }

    private static String preview(ByteBuf in, int start, int len) {
        String s = in.toString(start, Math.min(len, PREVIEW), StandardCharsets.UTF_8);
        return len > PREVIEW ? s + "..." : s;
    }

    private static String describe(byte b) {
        int c = b & 0xFF;
        return c >= 0x20 && c < 0x7F ? "'" + (char) c + "'" : String.format("byte 0x%02x", c);
    }

    private void reset() {
        depth = 0;
        state = VALUE;
        keyString = false;
        escape = false;
        scanned = 0;
    }

    /** Bytes of a partial object are pending (used to report EOF mid-reply). */
    public boolean midFrame() {
        return depth > 0;
    }
}
