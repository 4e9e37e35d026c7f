package io.p2plab.scenario;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Summary table and JUnit XML. */
public final class Reports {
    private Reports() {}

    public static void summary(List<CaseResult> results, PrintStream out) {
        int w = Math.max(4, results.stream().mapToInt(r -> r.scenarioCase().name().length()).max().orElse(4));
        w = Math.min(w, 70);
        out.printf("%-" + w + "s  %-7s  %8s  %s%n", "CASE", "RESULT", "TIME", "MESSAGE");
        for (CaseResult r : results) {
            String msg = r.message() == null ? "" : Engine.firstLine(r.message());
            if (msg.length() > 160) msg = msg.substring(0, 157) + "...";
            out.printf(Locale.ROOT, "%-" + w + "s  %-7s  %7.1fs  %s%n", r.scenarioCase().name(), r.flaky() ? "FLAKY" : r.status(),
                    r.time().toMillis() / 1000.0, msg);
        }
        out.println(tally(results));
    }

    public static String tally(List<CaseResult> results) {
        long passed = results.stream().filter(r -> r.status() == CaseResult.Status.PASSED || r.status() == CaseResult.Status.XFAIL).count();
        long failed = results.stream().filter(r -> r.status().failed()).count();
        long skipped = results.stream().filter(r -> r.status() == CaseResult.Status.SKIPPED).count();
        long flaky = results.stream().filter(CaseResult::flaky).count();
        return passed + " passed, " + failed + " failed, " + skipped + " skipped"
                + (flaky == 0 ? "" : " (" + flaky + " flaky: passed on a rerun after a failure the emulator or the host can cause)");
    }

    public static void junit(List<CaseResult> results, Path file) throws IOException {
        Map<String, List<CaseResult>> byScenario = new LinkedHashMap<>();
        for (CaseResult r : results)
            byScenario.computeIfAbsent(r.scenarioCase().scenario(), k -> new java.util.ArrayList<>()).add(r);
        StringBuilder b = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
        for (var e : byScenario.entrySet()) {
            List<CaseResult> rs = e.getValue();
            long failures = rs.stream().filter(r -> r.status().failed()).count();
            long skipped = rs.stream().filter(r -> r.status() == CaseResult.Status.SKIPPED).count();
            double time = rs.stream().mapToLong(r -> r.time().toMillis()).sum() / 1000.0;
            b.append(String.format(Locale.ROOT, "  <testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" time=\"%.3f\">%n",
                    xml(e.getKey()), rs.size(), failures, skipped, time));
            for (CaseResult r : rs) {
                b.append(String.format(Locale.ROOT, "    <testcase classname=\"p2plab.%s\" name=\"%s\" time=\"%.3f\"",
                        xml(e.getKey()), xml(r.scenarioCase().name()), r.time().toMillis() / 1000.0));
                if (r.status().failed()) {
                    b.append(">\n      <failure message=\"").append(xml(r.message())).append("\">")
                            .append(xml(r.message() + (r.excerpt() == null ? "" : "\n\n" + r.excerpt())))
                            .append("</failure>\n");
                    b.append("      <system-out>").append(xml("artifacts: " + r.dir())).append("</system-out>\n    </testcase>\n");
                } else if (r.status() == CaseResult.Status.SKIPPED) {
                    b.append(">\n      <skipped message=\"").append(xml(r.message())).append("\"/>\n    </testcase>\n");
                } else if (r.flaky()) {
                    // surefire's rerun format (Jenkins, GitLab and GitHub reporters show it as flaky)
                    CaseResult f = r.firstAttempt();
                    b.append(">\n      <flakyFailure message=\"").append(xml(f.message())).append("\" type=\"stall\">\n")
                            .append("        <stackTrace>").append(xml(f.message() + (f.excerpt() == null ? "" : "\n\n" + f.excerpt())))
                            .append("</stackTrace>\n        <system-out>").append(xml("artifacts: " + f.dir()))
                            .append("</system-out>\n      </flakyFailure>\n");
                    b.append("      <system-out>").append(xml(r.message() + "\nartifacts: " + r.dir())).append("</system-out>\n    </testcase>\n");
                } else {
                    b.append("/>\n");
                }
            }
            b.append("  </testsuite>\n");
        }
        b.append("</testsuites>\n");
        if (file.getParent() != null) Files.createDirectories(file.getParent());
        Files.writeString(file, b);
    }

    static String xml(String s) {
        return io.p2plab.util.Markup.escape(s);
    }
}
