package io.p2plab.scenario;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.ga.GuestAgent;
import io.p2plab.qmp.QmpClient;
import io.p2plab.qmp.QmpException;
import io.p2plab.util.Json;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.function.Consumer;

/**
 * Live output of a long guest command. qemu-ga returns a command's output only when it has exited, so
 * the command runs with stdout and stderr redirected to two guest files (tmpfs); while the controller
 * polls guest-exec-status it reads the stdout file's new bytes (guest-file-read on one handle; an
 * fseek(SEEK_CUR, 0) clears glibc's sticky EOF between reads) and passes each complete line on. When
 * the command has exited, the files' whole contents become the step's stdout/stderr, byte for byte what
 * the captured pipes would have held, so assertions and saved artefacts are the same as without
 * streaming. The files are removed afterwards.
 */
final class GuestStream {
    static final Duration POLL_EVERY = Duration.ofSeconds(1);
    private static final Duration CALL = Duration.ofSeconds(10);
    private static final int CHUNK = 48 * 1024;

    private final GuestAgent ga;
    private final String outPath, errPath;
    private final Consumer<String> onLine;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private int lineStart;
    private long handle = -1;
    private long lastPoll;
    private boolean broken;

    GuestStream(GuestAgent ga, String tag, Consumer<String> onLine) {
        this.ga = ga;
        String base = "/tmp/.p2plab-stream-" + tag + "-" + Long.toHexString(System.nanoTime());
        this.outPath = base + ".out";
        this.errPath = base + ".err";
        this.onLine = onLine;
    }

    /** The command with its output redirected to the stream files (exit status, argv, environment unchanged). */
    List<String> wrap(List<String> argv) {
        List<String> w = new ArrayList<>(List.of("/bin/sh", "-c", "e=$1; shift; exec \"$@\" >\"$0\" 2>\"$e\"", outPath, errPath));
        w.addAll(argv);
        return w;
    }

    /** Reads what is new, at most once per {@link #POLL_EVERY}; a failed read only stops the live view. */
    void maybePoll() {
        long now = System.nanoTime();
        if (broken || now - lastPoll < POLL_EVERY.toNanos()) return;
        lastPoll = now;
        try {
            drain();
        } catch (RuntimeException e) {
            broken = true;
            onLine.accept("(live output stopped: " + Engine.describe(e) + "; the whole output is read at the end)");
        }
    }

    private boolean open() {
        if (handle >= 0) return true;
        try {
            handle = call("guest-file-open", Json.object().put("path", outPath).put("mode", "r")).asLong();
            return true;
        } catch (io.p2plab.qmp.QmpErrorException e) {
            return false;   // not created yet
        }
    }

    /** Reads to the current end of the file; lines go to the listener. */
    private void drain() {
        if (!open()) return;
        while (true) {
            JsonNode r = call("guest-file-read", Json.object().put("handle", handle).put("count", CHUNK));
            int n = r.path("count").asInt();
            if (n > 0) out.writeBytes(Base64.getDecoder().decode(r.path("buf-b64").asText()));
            emitLines();
            if (r.path("eof").asBoolean()) {
                // glibc's EOF flag is sticky: a seek clears it so the next read sees what was appended
                call("guest-file-seek", Json.object().put("handle", handle).put("offset", 0).put("whence", "cur"));
                return;
            }
            if (n == 0) return;
        }
    }

    private void emitLines() {
        byte[] b = out.toByteArray();
        for (int i = lineStart; i < b.length; i++) {
            if (b[i] == '\n') {
                onLine.accept(new String(b, lineStart, i - lineStart, StandardCharsets.UTF_8));
                lineStart = i + 1;
            }
        }
    }

    /**
     * After the command exited: the whole stdout and stderr from the files (null when the wrapper could not
     * create them: then the agent's captured output is what there is), and the files removed.
     */
    byte[][] finish() {
        try {
            if (!open()) return null;
            drain();
            if (lineStart < out.size()) {
                byte[] b = out.toByteArray();
                onLine.accept(new String(b, lineStart, b.length - lineStart, StandardCharsets.UTF_8));
                lineStart = b.length;
            }
            byte[] err = readAll(errPath);
            return new byte[][]{out.toByteArray(), err};
        } finally {
            if (handle >= 0) {
                try { call("guest-file-close", Json.object().put("handle", handle)); } catch (RuntimeException ignored) { }
            }
            try {
                // not waited for: the agent keeps its status, nothing else depends on it
                ga.execute("guest-exec", Json.object().put("path", "/bin/rm")
                        .set("arg", Json.NODES.arrayNode().add("-f").add(outPath).add(errPath)), CALL);
            } catch (RuntimeException ignored) { }
        }
    }

    private byte[] readAll(String path) {
        long h = call("guest-file-open", Json.object().put("path", path).put("mode", "r")).asLong();
        try {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            while (true) {
                JsonNode r = call("guest-file-read", Json.object().put("handle", h).put("count", CHUNK));
                int n = r.path("count").asInt();
                if (n > 0) b.writeBytes(Base64.getDecoder().decode(r.path("buf-b64").asText()));
                if (n == 0 || r.path("eof").asBoolean()) return b.toByteArray();
            }
        } finally {
            try { call("guest-file-close", Json.object().put("handle", h)); } catch (RuntimeException ignored) { }
        }
    }

    private JsonNode call(String cmd, JsonNode args) {
        JsonNode r = QmpClient.join(ga.execute(cmd, args, CALL));
        if (r == null) throw new QmpException(cmd + " returned nothing");
        return r;
    }
}
