package io.p2plab.util;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The one duration syntax of the lab (scenario files and the command line): seconds, or 500ms, 90s, 10m, 1h. */
public final class Durations {
    private static final Pattern SYNTAX = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ms|s|m|min|h)?");

    private Durations() {}

    /** Parses "1.5" (seconds), "500ms", "90s", "10m" / "10min", "1h"; null if the text is not a duration. */
    public static Duration parseOrNull(String text) {
        Matcher m = SYNTAX.matcher(text.trim());
        if (!m.matches()) return null;
        double v = Double.parseDouble(m.group(1));
        String u = m.group(2) == null ? "s" : m.group(2);
        double ms = switch (u) {
            case "ms" -> v;
            case "m", "min" -> v * 60_000;
            case "h" -> v * 3_600_000;
            default -> v * 1000;
        };
        return Duration.ofMillis(Math.round(ms));
    }
}
