package io.p2plab.scenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class HtmlReportTest {
    @TempDir
    Path tmp;

    @Test
    void reportHasCasesFailuresLinksAndTopologyAndNothingExternal() throws Exception {
        Path f = tmp.resolve("s.yaml");
        Files.writeString(f, "name: s\nmatrix:\n  n: [ok, bad, skip]\nsteps:\n  - sleep: 0\n");
        List<Scenario.Case> cs = Scenario.load(f);
        Path run = tmp.resolve("run");
        Path okDir = Files.createDirectories(run.resolve("s_n=ok_"));
        Path badDir = Files.createDirectories(run.resolve("s_n=bad_"));
        Files.writeString(okDir.resolve("console.log"), "boot\n");
        Files.writeString(okDir.resolve("topo.svg"), "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><text>TOPO-OK</text></svg>\n");
        Files.writeString(badDir.resolve("kernel-splats.txt"), "WARNING\n");
        Files.writeString(badDir.resolve("topo.txt"), "topology not captured: agent <gone>\n");
        Files.writeString(badDir.resolve("nvme0.img"), "x");   // drive images are not linked
        List<CaseResult> rs = List.of(
                new CaseResult(cs.get(0), CaseResult.Status.PASSED, null, null, Duration.ofSeconds(40), okDir),
                new CaseResult(cs.get(1), CaseResult.Status.FAILED, "step 2: <script>alert(1)</script> exit code 1",
                        "[ 12.0] BUG: & friends\nlast console line", Duration.ofSeconds(20), badDir),
                new CaseResult(cs.get(2), CaseResult.Status.SKIPPED, "skipped: not here", null, Duration.ZERO, run.resolve("s_n=skip_")));
        Path html = tmp.resolve("results/report.html");
        HtmlReport.write(rs, html, "p2plab run x");
        String h = Files.readString(html);
        assertThat(h).startsWith("<!DOCTYPE html>");
        assertThat(h).contains("1 passed", "1 failed", "1 skipped", "40.0&nbsp;s");
        // failure message and console excerpt, escaped
        assertThat(h).contains("step 2: &lt;script&gt;alert(1)&lt;/script&gt; exit code 1", "[ 12.0] BUG: &amp; friends\nlast console line");
        assertThat(h).doesNotContain("<script");
        // artefact links relative to the report's folder, URL-encoded; no drive image
        assertThat(h).contains("href=\"../run/s_n%3Dok_/console.log\"", "href=\"../run/s_n%3Dbad_/kernel-splats.txt\"")
                .doesNotContain("nvme0.img");
        // topology: the case's SVG inline (without its XML prolog), or the text when there is no picture
        assertThat(h).contains("<svg xmlns=\"http://www.w3.org/2000/svg\"><text>TOPO-OK</text></svg>")
                .doesNotContain("<?xml")
                .contains("topology not captured: agent &lt;gone&gt;");
        // self-contained: no external stylesheet, script, image or font
        assertThat(h).doesNotContainPattern("(src|href)=\"(https?:)?//").doesNotContain("@import").doesNotContain("url(");
        // the duration bars scale to the longest case
        assertThat(h).contains("width:150px", "width:75px");
    }
}
