package io.p2plab.vm;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The guest serial console (QEMU's stdout): written to a log file, teed live to listeners line by line,
 * searchable with {@link #await}, and watched for kernel splat headlines ({@link KernelLog#headline}:
 * BUG, Oops, WARNING, KASAN, UBSAN, lockdep, RCU stall, lockups, hung task, panic, stack dumps). Only
 * what the guest's console loglevel lets through reaches it: the scenario engine also reads the whole
 * kernel log through the guest agent at the end of each case.
 */
public final class Console implements AutoCloseable {
    private static final int MAX_TEXT = 8 << 20;

    /** A watchdog hit: the offending line and an excerpt of the console around it. */
    public record Problem(String line, String excerpt) {}

    private final StringBuilder text = new StringBuilder();
    private int dropped;              // chars dropped from the front of text (bounded buffer)
    private final List<String> lines = new ArrayList<>();
    private final StringBuilder partial = new StringBuilder();
    private final CopyOnWriteArrayList<Consumer<String>> listeners = new CopyOnWriteArrayList<>();
    private final boolean watchdog;
    private int problemLine = -1;
    /** Every splat headline seen (line index, kind), in order. */
    private final List<int[]> headlines = new ArrayList<>();
    private boolean eof;
    private final OutputStream log;
    private final Thread reader;

    public Console(InputStream in, Path logFile, boolean watchdog) {
        this.watchdog = watchdog;
        OutputStream l = null;
        try {
            if (logFile != null) l = Files.newOutputStream(logFile);
        } catch (IOException e) {
            throw new VmException("cannot create console log " + logFile + ": " + e.getMessage(), e);
        }
        this.log = l;
        reader = new Thread(() -> pump(in), "p2plab-console");
        reader.setDaemon(true);
        reader.start();
    }

    public void addLineListener(Consumer<String> l) { listeners.add(l); }
    public void removeLineListener(Consumer<String> l) { listeners.remove(l); }

    private void pump(InputStream in) {
        byte[] buf = new byte[8192];
        try {
            int n;
            while ((n = in.read(buf)) > 0) {
                if (log != null) { log.write(buf, 0, n); log.flush(); }
                String s = new String(buf, 0, n, StandardCharsets.UTF_8);
                List<String> complete = new ArrayList<>();
                synchronized (this) {
                    text.append(s);
                    if (text.length() > MAX_TEXT) {
                        int cut = text.length() - MAX_TEXT / 2;
                        text.delete(0, cut);
                        dropped += cut;
                    }
                    for (int i = 0; i < s.length(); i++) {
                        char c = s.charAt(i);
                        if (c == '\n') {
                            String line = partial.toString().replace("\r", "");
                            partial.setLength(0);
                            lines.add(line);
                            complete.add(line);
                            KernelLog.Kind k = watchdog ? KernelLog.headline(line) : null;
                            if (k != null) {
                                // an RCU stall report may be a starved vCPU that resumes: not a
                                // reason to stop waiting (the end-of-case kernel check decides)
                                if (problemLine < 0 && k != KernelLog.Kind.RCU_STALL)
                                    problemLine = lines.size() - 1;
                                headlines.add(new int[]{lines.size() - 1, k.ordinal()});
                            }
                        } else {
                            partial.append(c);
                        }
                    }
                    notifyAll();
                }
                for (String line : complete) for (Consumer<String> l : listeners) {
                    try { l.accept(line); } catch (RuntimeException ignored) { }
                }
            }
        } catch (IOException ignored) {
            // process gone
        } finally {
            synchronized (this) {
                if (partial.length() > 0) { lines.add(partial.toString()); partial.setLength(0); }
                eof = true;
                notifyAll();
            }
            try { if (log != null) log.close(); } catch (IOException ignored) { }
        }
    }

    /** Absolute offset of the end of console text received so far. */
    public synchronized int position() { return dropped + text.length(); }

    public synchronized boolean eof() { return eof; }

    public synchronized String text() { return text.toString(); }

    public synchronized Problem problem() {
        return problemLine < 0 ? null : problemAt(problemLine);
    }

    /** The first splat headline on the console of one of {@code kinds}, or null. */
    public synchronized Problem problem(java.util.Set<KernelLog.Kind> kinds) {
        for (int[] h : headlines) if (kinds.contains(KernelLog.Kind.values()[h[1]])) return problemAt(h[0]);
        return null;
    }

    private Problem problemAt(int line) {
        int from = Math.max(0, line - 3);
        int to = Math.min(lines.size(), line + 40);
        return new Problem(lines.get(line), String.join("\n", lines.subList(from, to)));
    }

    /** Every complete console line so far (and the partial last one). */
    public synchronized List<String> lines() {
        List<String> l = new ArrayList<>(lines);
        if (partial.length() > 0) l.add(partial.toString().replace("\r", ""));
        return l;
    }

    public synchronized String tail(int n) {
        int from = Math.max(0, lines.size() - n);
        List<String> l = new ArrayList<>(lines.subList(from, lines.size()));
        if (partial.length() > 0) l.add(partial.toString());
        return String.join("\n", l);
    }

    /**
     * Waits until {@code p} matches console text at or after absolute offset {@code from}.
     * @return the matcher (its end() is relative to the returned base: use {@link Match#endOffset})
     */
    public Match await(Pattern p, int from, Duration timeout, boolean stopOnProblem) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (this) {
            while (true) {
                int start = Math.max(0, from - dropped);
                Matcher m = p.matcher(text);
                m.region(Math.min(start, text.length()), text.length());
                if (m.find()) return new Match(m.group(), dropped + m.end());
                if (stopOnProblem && problemLine >= 0) {
                    throw new VmException("console watchdog fired while waiting for /" + p.pattern() + "/: "
                            + problem().line() + "\n" + problem().excerpt());
                }
                if (eof) throw new VmException("console closed (QEMU exited) while waiting for /" + p.pattern() + "/");
                long left = deadline - System.nanoTime();
                if (left <= 0) return null;
                wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    public record Match(String text, int endOffset) {}

    @Override
    public void close() {
        reader.interrupt();
    }
}
