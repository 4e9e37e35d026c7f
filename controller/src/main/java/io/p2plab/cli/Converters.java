package io.p2plab.cli;

import io.p2plab.util.Durations;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** picocli converters: a bad value is a usage error reported by picocli (exit code 2) before anything runs. */
public final class Converters {
    private Converters() {}

    /** The K-th (1-based) of N shards. */
    public record Shard(int k, int n) {
        public Shard {
            if (n < 1 || k < 1 || k > n) throw new IllegalArgumentException("shard K/N needs 1 <= K <= N, got " + k + "/" + n);
        }

        @Override
        public String toString() { return k + "/" + n; }
    }

    /** {@code --shard K/N}, e.g. 1/4. */
    public static final class ShardConverter implements ITypeConverter<Shard> {
        private static final Pattern SYNTAX = Pattern.compile("\\s*(\\d{1,9})\\s*/\\s*(\\d{1,9})\\s*");

        @Override
        public Shard convert(String value) {
            Matcher m = SYNTAX.matcher(value);
            if (!m.matches()) throw new TypeConversionException("'" + value + "' is not K/N (e.g. 1/4)");
            int k = Integer.parseInt(m.group(1)), n = Integer.parseInt(m.group(2));
            if (n < 1 || k < 1 || k > n) throw new TypeConversionException("'" + value + "': K/N needs 1 <= K <= N");
            return new Shard(k, n);
        }
    }

    /** Durations as in scenario files: seconds ({@code 1.5}) or with a unit ({@code 500ms}, {@code 90s}, {@code 10m}, {@code 1h}). */
    public static final class DurationConverter implements ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            Duration d = Durations.parseOrNull(value);
            if (d == null) throw new TypeConversionException("'" + value + "' is not a duration (e.g. 90s, 10m, 500ms, 1.5)");
            return d;
        }
    }
}
