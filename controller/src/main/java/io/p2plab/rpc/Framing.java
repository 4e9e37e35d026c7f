package io.p2plab.rpc;

import com.fasterxml.jackson.databind.JsonNode;

/** Messages that flow from the framer / decoder to the connection handler besides JSON objects. */
public final class Framing {
    private Framing() {}

    /** A 0xFF byte from qemu-ga (guest-sync-delimited). */
    public enum Sentinel { INSTANCE }

    /** Non-JSON bytes that were skipped between objects. */
    public record Stray(int bytes) {}

    /** A frame that looked like an object but did not parse as JSON. */
    public record BadJson(String text, String error) {}

    /** A parsed JSON message with its bytes; the raw text (for transcripts) is made only when asked for. */
    public record Message(JsonNode json, byte[] bytes) {
        public String raw() { return new String(bytes, java.nio.charset.StandardCharsets.UTF_8); }
    }
}
