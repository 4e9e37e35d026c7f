package io.p2plab.bench.report;

import io.p2plab.bench.report.BenchData.*;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryLabelPositions;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Paint;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.text.DecimalFormat;
import java.text.FieldPosition;
import java.text.NumberFormat;
import java.text.ParsePosition;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** The report's charts (JFreeChart), one method per chart, and their PNG encoding. */
public final class BenchCharts {
    private BenchCharts() {}

    static final int W = 900, H = 460;
    private static final Paint[] PALETTE = {
            new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd),
            new Color(0xff7f0e), new Color(0x17becf), new Color(0x8c564b), new Color(0x7f7f7f)};

    public record Chart(String id, String title, JFreeChart chart) {}

    public static byte[] png(JFreeChart c) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ChartUtils.writeChartAsPNG(out, c, W, H);
            return out.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---- DMA ----------------------------------------------------------------------------------------

    /** Device MB/s per path vs transfer size (solid), each next to its interleaved host memcpy (dashed). */
    public static Chart dmaBandwidth(Dma d) {
        XYSeriesCollection ds = new XYSeriesCollection();
        Map<String, List<DmaRow>> byPath = byPath(d);
        for (var e : byPath.entrySet()) {
            XYSeries dev = new XYSeries(e.getKey() + " (device)"), host = new XYSeries(e.getKey() + " (host memcpy)");
            for (DmaRow r : e.getValue()) {
                dev.add(log2(r.bytes()), r.deviceMBs());
                host.add(log2(r.bytes()), r.memcpyMBs());
            }
            ds.addSeries(dev);
            ds.addSeries(host);
        }
        JFreeChart c = ChartFactory.createXYLineChart("DMA engine bandwidth vs transfer size", "transfer size", "MB/s (median)",
                ds, PlotOrientation.VERTICAL, true, false, false);
        XYPlot p = c.getXYPlot();
        p.setDomainAxis(sizeAxis("transfer size"));
        LogAxis y = new LogAxis("MB/s (median of interleaved rounds, log scale)");
        y.setNumberFormatOverride(new DecimalFormat("#,##0"));
        y.setSmallestValue(1);
        y.setTickUnit(new NumberTickUnit(1));      // a tick per power of ten (the unit is in exponent space)
        y.setMinorTickCount(9);
        y.setMinorTickMarksVisible(true);
        p.setRangeAxis(y);
        XYLineAndShapeRenderer rr = new XYLineAndShapeRenderer(true, true);
        for (int i = 0; i < ds.getSeriesCount(); i++) {
            rr.setSeriesPaint(i, PALETTE[(i / 2) % PALETTE.length]);
            rr.setSeriesStroke(i, i % 2 == 0 ? new BasicStroke(2.2f)
                    : new BasicStroke(1.4f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[]{6f, 4f}, 0f));
        }
        p.setRenderer(rr);
        style(c);
        return new Chart("dma-bandwidth", c.getTitle().getText(), c);
    }

    /** Device / memcpy ratio (median of per-round ratios) vs transfer size, per path; goal 0.8, parity 1.0. */
    public static Chart dmaRatio(Dma d) {
        XYSeriesCollection ds = new XYSeriesCollection();
        for (var e : byPath(d).entrySet()) {
            XYSeries s = new XYSeries(e.getKey());
            for (DmaRow r : e.getValue()) s.add(log2(r.bytes()), r.ratio());
            ds.addSeries(s);
        }
        JFreeChart c = ChartFactory.createXYLineChart("DMA engine / host memcpy, same size, side by side", "transfer size",
                "ratio (median of per-round ratios)", ds, PlotOrientation.VERTICAL, true, false, false);
        XYPlot p = c.getXYPlot();
        p.setDomainAxis(sizeAxis("transfer size"));
        p.setRenderer(new XYLineAndShapeRenderer(true, true));
        for (int i = 0; i < ds.getSeriesCount(); i++) p.getRenderer().setSeriesPaint(i, PALETTE[i % PALETTE.length]);
        ((NumberAxis) p.getRangeAxis()).setAutoRangeIncludesZero(true);
        p.addRangeMarker(marker(0.8, "goal 0.8x"));
        p.addRangeMarker(marker(1.0, "memcpy"));
        style(c);
        return new Chart("dma-ratio", c.getTitle().getText(), c);
    }

    private static Map<String, List<DmaRow>> byPath(Dma d) {
        Map<String, List<DmaRow>> m = new LinkedHashMap<>();
        for (DmaRow r : d.rows()) m.computeIfAbsent(r.path(), k -> new ArrayList<>()).add(r);
        return m;
    }

    // ---- HMM ----------------------------------------------------------------------------------------

    public static Chart hmmMigration(Hmm h) {
        DefaultCategoryDataset ds = new DefaultCategoryDataset();
        for (HmmRow r : h.rows()) {
            String cat = String.format(Locale.ROOT, "%s  (%.2fx)", r.kase(), r.ratio());
            ds.addValue(r.testHmmMiBs(), "test_hmm.ko (CPU memcpy)", cat);
            ds.addValue(r.p2plabMiBs(), "p2plab.ko (device DMA)", cat);
        }
        JFreeChart c = ChartFactory.createBarChart("HMM migration 256 MiB: p2plab.ko vs test_hmm.ko (same boot)",
                "case (p2plab/test_hmm ratio)", "MiB/s", ds);
        barStyle(c, "%.0f");
        style(c);
        return new Chart("hmm-migration", c.getTitle().getText(), c);
    }

    /** Where p2plab's migration time went (debugfs migrate_profile), ms per phase, stacked per direction. */
    public static Chart hmmProfile(Hmm h) {
        DefaultCategoryDataset ds = new DefaultCategoryDataset();
        for (HmmProfile p : h.profile())
            for (HmmPhase ph : p.phases()) ds.addValue(ph.ms(), ph.phase(), p.direction() + (p.totalMs() != null ? " (" + p.totalMs() + " ms)" : ""));
        JFreeChart c = ChartFactory.createStackedBarChart("p2plab migration profile, last round (all sizes, THP + 4K)",
                "direction", "ms", ds, PlotOrientation.HORIZONTAL, true, false, false);
        CategoryPlot p = c.getCategoryPlot();
        BarRenderer r = (BarRenderer) p.getRenderer();
        r.setBarPainter(new StandardBarPainter());
        r.setShadowVisible(false);
        for (int i = 0; i < ds.getRowCount(); i++) r.setSeriesPaint(i, PALETTE[i % PALETTE.length]);
        style(c);
        return new Chart("hmm-profile", c.getTitle().getText(), c);
    }

    // ---- QMP ----------------------------------------------------------------------------------------

    public static Chart qmpThroughput(Qmp q) {
        XYSeriesCollection ds = new XYSeriesCollection();
        Map<String, XYSeries> m = new LinkedHashMap<>();
        for (QmpRow r : q.rows()) m.computeIfAbsent(r.client(), XYSeries::new).add(log2(r.depth()), r.medianPerS());
        m.values().forEach(ds::addSeries);
        JFreeChart c = ChartFactory.createXYLineChart("QMP throughput vs depth (query-status)", "commands in flight",
                "commands/s (median)", ds, PlotOrientation.VERTICAL, true, false, false);
        XYPlot p = c.getXYPlot();
        p.setDomainAxis(depthAxis());
        p.setRenderer(new XYLineAndShapeRenderer(true, true));
        for (int i = 0; i < ds.getSeriesCount(); i++) p.getRenderer().setSeriesPaint(i, PALETTE[i % PALETTE.length]);
        style(c);
        return new Chart("qmp-throughput", c.getTitle().getText(), c);
    }

    public static Chart qmpRatio(Qmp q) {
        XYSeriesCollection ds = new XYSeriesCollection();
        Map<String, XYSeries> m = new LinkedHashMap<>();
        boolean paired = q.rows().stream().allMatch(r -> r.paired() != null);
        for (QmpRow r : q.rows())
            if (!r.client().startsWith("raw-socket"))
                m.computeIfAbsent(r.client(), XYSeries::new).add(log2(r.depth()), paired ? r.paired() : r.vsRaw());
        m.values().forEach(ds::addSeries);
        JFreeChart c = ChartFactory.createXYLineChart("QMP clients / raw socket loop, same QEMU, turn by turn", "commands in flight",
                paired ? "ratio (median of per-round ratios)" : "ratio of medians", ds, PlotOrientation.VERTICAL, true, false, false);
        XYPlot p = c.getXYPlot();
        p.setDomainAxis(depthAxis());
        p.setRenderer(new XYLineAndShapeRenderer(true, true));
        for (int i = 0; i < ds.getSeriesCount(); i++) p.getRenderer().setSeriesPaint(i, PALETTE[(i + 1) % PALETTE.length]);
        ((NumberAxis) p.getRangeAxis()).setAutoRangeIncludesZero(true);
        p.addRangeMarker(marker(0.9, "goal 0.9x"));
        p.addRangeMarker(marker(1.0, "raw socket"));
        style(c);
        return new Chart("qmp-ratio", c.getTitle().getText(), c);
    }

    // ---- SVM ----------------------------------------------------------------------------------------

    public static Chart svmRead(Svm s) {
        DefaultCategoryDataset ds = new DefaultCategoryDataset();
        for (SvmRead r : s.reads()) {
            String cat = String.format(Locale.ROOT, "%s %s (%.2fx)", r.backend(), r.leaves(), r.firstOverMapped());
            ds.addValue(r.firstTouchMBs(), "first touch (device faults)", cat);
            ds.addValue(r.mappedMBs(), "mapped (no faults)", cat);
            ds.addValue(r.physicalMBs(), "physical-address copy", cat);
        }
        JFreeChart c = ChartFactory.createBarChart("SVM: device read by VA, per backend and leaf size",
                "backend, leaves (first-touch/mapped ratio)", "MB/s", ds);
        barStyle(c, "%.0f");
        style(c);
        return new Chart("svm-read", c.getTitle().getText(), c);
    }

    public static Chart svmFaultRate(Svm s) {
        DefaultCategoryDataset ds = new DefaultCategoryDataset();
        for (SvmFaultRate r : s.faultRates()) ds.addValue(r.faultsPerS(), "one-page faults/s", r.backend());
        JFreeChart c = ChartFactory.createBarChart("SVM fault throughput (one-page device faults)", "backend", "faults/s", ds);
        barStyle(c, "%.0f");
        style(c);
        return new Chart("svm-fault-rate", c.getTitle().getText(), c);
    }

    public static Chart svmFaultLatency(Svm s) {
        DefaultCategoryDataset ds = new DefaultCategoryDataset();
        for (SvmFaultRate r : s.faultRates())
            for (var e : r.perFaultUs().entrySet()) ds.addValue(e.getValue(), r.backend(), e.getKey());
        JFreeChart c = ChartFactory.createBarChart("SVM per-fault latency, one-page faults (median)", "interval", "microseconds", ds);
        barStyle(c, "%.1f");
        style(c);
        return new Chart("svm-fault-latency", c.getTitle().getText(), c);
    }

    // ---- helpers -------------------------------------------------------------------------------------

    static double log2(long v) { return Math.log(v) / Math.log(2); }

    private static ValueMarker marker(double v, String label) {
        ValueMarker m = new ValueMarker(v);
        m.setPaint(new Color(0x555555));
        m.setStroke(new BasicStroke(1.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[]{3f, 3f}, 0f));
        m.setLabel(label);
        m.setLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        m.setLabelAnchor(RectangleAnchor.TOP_LEFT);
        m.setLabelTextAnchor(TextAnchor.BOTTOM_LEFT);
        return m;
    }

    /** An axis over log2(bytes) whose ticks read "4 KiB", "1 MiB", ... */
    private static NumberAxis sizeAxis(String label) {
        NumberAxis a = new NumberAxis(label);
        a.setTickUnit(new NumberTickUnit(2));
        a.setNumberFormatOverride(new Pow2Format(true));
        a.setAutoRangeIncludesZero(false);
        a.setLowerMargin(0.04);
        a.setUpperMargin(0.04);
        return a;
    }

    private static NumberAxis depthAxis() {
        NumberAxis a = new NumberAxis("commands in flight (depth)");
        a.setTickUnit(new NumberTickUnit(1));
        a.setNumberFormatOverride(new Pow2Format(false));
        a.setAutoRangeIncludesZero(false);
        a.setLowerMargin(0.05);
        a.setUpperMargin(0.05);
        return a;
    }

    private static void barStyle(JFreeChart c, String labelFormat) {
        CategoryPlot p = c.getCategoryPlot();
        BarRenderer r = (BarRenderer) p.getRenderer();
        r.setBarPainter(new StandardBarPainter());
        r.setShadowVisible(false);
        r.setItemMargin(0.05);
        r.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator("{2}", new DecimalFormat(
                labelFormat.equals("%.0f") ? "#,##0" : "#,##0.0")));
        r.setDefaultItemLabelsVisible(true);
        r.setDefaultItemLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
        for (int i = 0; i < p.getDataset().getRowCount(); i++) r.setSeriesPaint(i, PALETTE[i % PALETTE.length]);
        p.getDomainAxis().setCategoryLabelPositions(CategoryLabelPositions.STANDARD);
        p.getDomainAxis().setMaximumCategoryLabelLines(2);
        ((NumberAxis) p.getRangeAxis()).setUpperMargin(0.12);
    }

    private static void style(JFreeChart c) {
        c.setBackgroundPaint(Color.WHITE);
        c.setTitle(new TextTitle(c.getTitle().getText(), new Font(Font.SANS_SERIF, Font.BOLD, 15)));
        var plot = c.getPlot();
        plot.setBackgroundPaint(new Color(0xfafafa));
        if (plot instanceof XYPlot xy) {
            xy.setDomainGridlinePaint(new Color(0xdddddd));
            xy.setRangeGridlinePaint(new Color(0xdddddd));
        } else if (plot instanceof CategoryPlot cp) {
            cp.setRangeGridlinePaint(new Color(0xdddddd));
        }
    }

    /** Formats an exponent x as 2^x: a size ("64 KiB") or a plain count ("8"). */
    static final class Pow2Format extends NumberFormat {
        private final boolean bytes;

        Pow2Format(boolean bytes) { this.bytes = bytes; }

        @Override
        public StringBuffer format(double x, StringBuffer to, FieldPosition pos) {
            if (Math.abs(x - Math.rint(x)) > 1e-9) return to;   // no label between powers of two
            long v = 1L << (long) Math.rint(x);
            return to.append(bytes ? BenchParsers.size(v) : Long.toString(v));
        }

        @Override
        public StringBuffer format(long x, StringBuffer to, FieldPosition pos) { return format((double) x, to, pos); }

        @Override
        public Number parse(String source, ParsePosition pos) { return null; }
    }

    static Set<String> seriesNames(JFreeChart c) {
        Set<String> s = new LinkedHashSet<>();
        if (c.getPlot() instanceof XYPlot p)
            for (int i = 0; i < p.getDataset().getSeriesCount(); i++) s.add(p.getDataset().getSeriesKey(i).toString());
        else if (c.getPlot() instanceof CategoryPlot p)
            for (int i = 0; i < p.getDataset().getRowCount(); i++) s.add(p.getDataset().getRowKey(i).toString());
        return s;
    }
}
