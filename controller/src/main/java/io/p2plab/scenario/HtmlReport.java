package io.p2plab.scenario;

import io.p2plab.topo.TopoRender;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * report.html: one self-contained page per run (inline CSS and SVG, no script, no external resource):
 * the tally, a duration bar per case, each case with its status, time, failure message, console or
 * splat excerpt, links to its artefacts (relative to the report) and its topology picture (topo.svg).
 */
public final class HtmlReport {
    private HtmlReport() {}

    static final String CSS = """
            body{font-family:DejaVu Sans,Arial,sans-serif;margin:20px;color:#222;font-size:14px}
            h1{font-size:20px;margin:0 0 4px}
            .meta{color:#666;margin-bottom:14px}
            .tally span{display:inline-block;padding:3px 10px;border-radius:10px;margin-right:6px;font-weight:bold}
            table.cases{border-collapse:collapse;margin:12px 0 20px;width:100%}
            table.cases td,table.cases th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
            table.cases th{background:#f5f5f5}
            .bar{background:#90caf9;height:10px;border-radius:2px;display:inline-block}
            .st{font-weight:bold;padding:1px 7px;border-radius:8px;font-size:12px}
            .PASSED,.XFAIL{background:#c8e6c9;color:#1b5e20}.FAILED,.XPASS{background:#ffcdd2;color:#b71c1c}
            .SKIPPED{background:#eeeeee;color:#555}
            section.case{border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:0 0 16px}
            section.case h2{font-size:16px;margin:0 0 6px}
            pre{background:#263238;color:#eceff1;padding:8px;overflow-x:auto;font-size:12px;max-height:420px}
            .msg{white-space:pre-wrap;color:#b71c1c;font-weight:bold}
            .arts a{margin-right:10px}
            .topo{overflow-x:auto;border:1px solid #eee;margin-top:8px}
            details summary{cursor:pointer;color:#1565c0}
            """;

    /** Writes the report to {@code file}; links to artefacts are relative to its folder. */
    public static void write(List<CaseResult> results, Path file, String title) throws IOException {
        Path base = file.toAbsolutePath().getParent();
        StringBuilder b = new StringBuilder();
        b.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").append(esc(title))
                .append("</title>\n<style>").append(CSS).append("</style></head><body>\n");
        long passed = results.stream().filter(r -> r.status() == CaseResult.Status.PASSED || r.status() == CaseResult.Status.XFAIL).count();
        long failed = results.stream().filter(r -> r.status().failed()).count();
        long skipped = results.stream().filter(r -> r.status() == CaseResult.Status.SKIPPED).count();
        double total = results.stream().mapToLong(r -> r.time().toMillis()).sum() / 1000.0;
        b.append("<h1>").append(esc(title)).append("</h1>\n<div class=\"meta\">")
                .append(esc(java.time.ZonedDateTime.now(java.time.ZoneOffset.UTC).withNano(0).toString()))
                .append(String.format(Locale.ROOT, " &middot; %d cases &middot; %.1f s of case time", results.size(), total))
                .append("</div>\n<div class=\"tally\"><span class=\"PASSED\">").append(passed).append(" passed</span><span class=\"")
                .append(failed > 0 ? "FAILED" : "SKIPPED").append("\">").append(failed).append(" failed</span><span class=\"SKIPPED\">")
                .append(skipped).append(" skipped</span></div>\n");
        double max = results.stream().mapToDouble(r -> r.time().toMillis() / 1000.0).max().orElse(1);
        if (max <= 0) max = 1;
        b.append("<table class=\"cases\"><tr><th>case</th><th>result</th><th>time</th><th></th><th>message</th></tr>\n");
        int i = 0;
        for (CaseResult r : results) {
            i++;
            double s = r.time().toMillis() / 1000.0;
            String msg = r.message() == null ? "" : Engine.firstLine(r.message());
            if (msg.length() > 200) msg = msg.substring(0, 197) + "...";
            b.append("<tr><td style=\"white-space:nowrap\"><a href=\"#case-").append(i).append("\">").append(esc(r.scenarioCase().name())).append("</a></td>")
                    .append("<td><span class=\"st ").append(r.status()).append("\">").append(r.status()).append("</span></td>")
                    .append(String.format(Locale.ROOT, "<td>%.1f&nbsp;s</td><td style=\"width:160px\"><span class=\"bar\" "
                            + "style=\"width:%dpx\"></span></td>", s, Math.max(1, (int) Math.round(150 * s / max))))
                    .append("<td>").append(esc(msg)).append("</td></tr>\n");
        }
        b.append("</table>\n");
        i = 0;
        for (CaseResult r : results) {
            i++;
            b.append("<section class=\"case\" id=\"case-").append(i).append("\"><h2>").append(esc(r.scenarioCase().name()))
                    .append(" <span class=\"st ").append(r.status()).append("\">").append(r.status()).append("</span> ")
                    .append(String.format(Locale.ROOT, "<small>%.1f s</small>", r.time().toMillis() / 1000.0)).append("</h2>\n");
            b.append("<div class=\"meta\">").append(esc(r.scenarioCase().file().toString())).append("</div>\n");
            if (r.message() != null) b.append("<div class=\"msg\">").append(esc(r.message())).append("</div>\n");
            if (r.excerpt() != null && (r.status().failed() || r.status() == CaseResult.Status.XFAIL))
                b.append("<details open><summary>excerpt (kernel reports, step output or console tail)</summary><pre>").append(esc(r.excerpt()))
                        .append("</pre></details>\n");
            List<Path> arts = artefacts(r.dir());
            if (!arts.isEmpty()) {
                b.append("<div class=\"arts\">artefacts: ");
                for (Path a : arts) {
                    String href = base == null ? a.toAbsolutePath().toUri().toString() : rel(base, a);
                    b.append("<a href=\"").append(esc(href)).append("\">").append(esc(a.getFileName().toString())).append("</a> ");
                }
                b.append("</div>\n");
            }
            Path svg = r.dir() == null ? null : r.dir().resolve("topo.svg");
            Path txt = r.dir() == null ? null : r.dir().resolve("topo.txt");
            if (svg != null && Files.isRegularFile(svg)) {
                b.append("<details open><summary>PCI topology and kernel P2P verdicts")
                        .append("</summary><div class=\"topo\">").append(inlineSvg(Files.readString(svg))).append("</div></details>\n");
            } else if (txt != null && Files.isRegularFile(txt)) {
                b.append("<details><summary>PCI topology</summary><pre>").append(esc(Files.readString(txt))).append("</pre></details>\n");
            }
            b.append("</section>\n");
        }
        b.append("</body></html>\n");
        if (base != null) Files.createDirectories(base);
        Files.writeString(file, b);
    }

    /** Our own topo.svg, without the XML prolog if any (it is inlined as HTML). */
    static String inlineSvg(String svg) {
        int i = svg.indexOf("<svg");
        return i < 0 ? "<pre>" + esc(svg) + "</pre>" : svg.substring(i);
    }

    static String rel(Path base, Path a) {
        Path r;
        try {
            r = base.relativize(a.toAbsolutePath());
        } catch (IllegalArgumentException e) {
            return a.toAbsolutePath().toUri().toString();
        }
        StringBuilder s = new StringBuilder();
        for (Path p : r) {
            if (s.length() > 0) s.append('/');
            s.append(java.net.URLEncoder.encode(p.toString(), java.nio.charset.StandardCharsets.UTF_8).replace("+", "%20"));
        }
        return s.toString();
    }

    static List<Path> artefacts(Path dir) {
        if (dir == null || !Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> out = new ArrayList<>(s.filter(Files::isRegularFile)
                    .filter(p -> !p.getFileName().toString().endsWith(".img")).sorted().toList());
            return out;
        } catch (IOException e) {
            return List.of();
        }
    }

    static String esc(String s) {
        return TopoRender.esc(s);
    }
}
