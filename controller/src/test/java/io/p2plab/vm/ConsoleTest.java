package io.p2plab.vm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

@Timeout(value = 10, unit = TimeUnit.SECONDS)
class ConsoleTest {
    @TempDir
    Path tmp;

    @Test
    void logsTeesMatchesAndWatches() throws Exception {
        PipedOutputStream w = new PipedOutputStream();
        PipedInputStream r = new PipedInputStream(w, 65536);
        Console c = new Console(r, tmp.resolve("console.log"), true);
        List<String> lines = new CopyOnWriteArrayList<>();
        c.addLineListener(lines::add);
        w.write("booting\r\nP2PLAB-READY\n".getBytes(StandardCharsets.UTF_8));
        w.flush();
        Console.Match m = c.await(Pattern.compile("P2PLAB-READY"), 0, Duration.ofSeconds(5), true);
        assertThat(m).isNotNull();
        assertThat(c.await(Pattern.compile("never"), m.endOffset(), Duration.ofMillis(100), true)).isNull();
        assertThat(c.problem()).isNull();
        w.write("[    5.1] ------------[ cut here ]------------\n[    5.1] WARNING: CPU: 0 PID: 1 at mm/x.c:1\n[    5.2] Call Trace:\n"
                .getBytes(StandardCharsets.UTF_8));
        w.flush();
        assertThatThrownBy(() -> c.await(Pattern.compile("never"), 0, Duration.ofSeconds(5), true))
                .isInstanceOf(VmException.class).hasMessageContaining("watchdog").hasMessageContaining("WARNING: CPU: 0");
        assertThat(c.problem().excerpt()).contains("cut here", "Call Trace");
        w.close();
        Thread.sleep(100);
        assertThat(lines).contains("booting", "P2PLAB-READY");
        assertThat(Files.readString(tmp.resolve("console.log"))).contains("WARNING: CPU");
    }
}
