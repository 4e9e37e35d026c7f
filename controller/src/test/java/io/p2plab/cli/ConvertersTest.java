package io.p2plab.cli;

import io.p2plab.console.ConsoleCommand;
import io.p2plab.rpc.ConnectionOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.TypeConversionException;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The picocli converters (--shard K/N, durations) and errors on picocli's err stream. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ConvertersTest {
    @TempDir
    Path tmp;

    private final Converters.ShardConverter shard = new Converters.ShardConverter();
    private final Converters.DurationConverter duration = new Converters.DurationConverter();

    @Test
    void shardIsKOverN() {
        assertThat(shard.convert("1/4")).isEqualTo(new Converters.Shard(1, 4));
        assertThat(shard.convert("4/4")).isEqualTo(new Converters.Shard(4, 4));
        assertThat(shard.convert(" 2 / 3 ")).isEqualTo(new Converters.Shard(2, 3));
        assertThat(shard.convert("1/1").toString()).isEqualTo("1/1");
        for (String bad : new String[]{"0/4", "5/4", "1/0", "1", "1/", "/4", "a/b", "1/4/2", "-1/4", "", "99999999999/1"}) {
            assertThatThrownBy(() -> shard.convert(bad)).as(bad).isInstanceOf(TypeConversionException.class)
                    .hasMessageContaining("K/N");
        }
    }

    @Test
    void durationsUseTheScenarioSyntax() {
        assertThat(duration.convert("90s")).isEqualTo(Duration.ofSeconds(90));
        assertThat(duration.convert("10m")).isEqualTo(Duration.ofMinutes(10));
        assertThat(duration.convert("10min")).isEqualTo(Duration.ofMinutes(10));
        assertThat(duration.convert("500ms")).isEqualTo(Duration.ofMillis(500));
        assertThat(duration.convert("1h")).isEqualTo(Duration.ofHours(1));
        assertThat(duration.convert("1.5")).isEqualTo(Duration.ofMillis(1500));
        assertThat(duration.convert("2")).isEqualTo(Duration.ofSeconds(2));
        for (String bad : new String[]{"", "s", "10 parsecs", "-5s", "1d", "ten"}) {
            assertThatThrownBy(() -> duration.convert(bad)).as(bad).isInstanceOf(TypeConversionException.class)
                    .hasMessageContaining("not a duration");
        }
    }

    private record Run(int rc, String err) {}

    private static Run run(Object command, String... args) {
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(command);
        cl.setErr(new PrintWriter(err, true));
        int rc = cl.execute(args);
        return new Run(rc, err.toString());
    }

    @Test
    void aBadShardIsAUsageErrorOnPicocliErr() throws Exception {
        Path f = Files.writeString(tmp.resolve("s.yaml"), "steps:\n  - sleep: 0\n");
        Run r = run(new Main(), "run", "--list", "--shard", "3/2", f.toString());
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("--shard", "'3/2'", "1 <= K <= N");
        assertThat(run(new Main(), "run", "--list", "--shard", "1/2", f.toString()).rc()).isZero();
    }

    @Test
    void commandErrorsGoToPicocliErr() {
        Run r = run(new Main(), "suite", tmp.resolve("absent").toString());
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("error: ", "is not a directory");
        Run v = run(new Main(), "validate", tmp.resolve("absent.yaml").toString());
        assertThat(v.rc()).isEqualTo(2);
        assertThat(v.err()).startsWith("error: ");
    }

    @Test
    void consoleTimeoutsAreDurations() {
        CommandLine.ParseResult p = new CommandLine(new ConsoleCommand()).parseArgs("--timeout", "90s", "--connect-timeout", "500ms");
        assertThat(p.matchedOptionValue("--timeout", Duration.ZERO)).isEqualTo(Duration.ofSeconds(90));
        assertThat(p.matchedOptionValue("--connect-timeout", Duration.ZERO)).isEqualTo(Duration.ofMillis(500));
        // the defaults are the client's own, so the console behaves as before without the options
        CommandLine d = new CommandLine(new ConsoleCommand());
        d.parseArgs();
        assertThat(d.getCommandSpec().findOption("--timeout").<Duration>getValue())
                .isEqualTo(ConnectionOptions.defaults().defaultCommandTimeout());
        assertThat(d.getCommandSpec().findOption("--connect-timeout").<Duration>getValue())
                .isEqualTo(ConnectionOptions.defaults().connectTimeout());
        Run r = run(new ConsoleCommand(), "--timeout", "soon", "--attach", "/nonexistent");
        assertThat(r.rc()).isEqualTo(2);
        assertThat(r.err()).contains("--timeout", "'soon' is not a duration");
    }
}
