package io.p2plab.topo;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Terminal table and SVG picture of a {@link Topology}. */
public final class TopoRender {
    private TopoRender() {}

    static String shortBdf(String bdf) {
        return bdf.startsWith("0000:") ? bdf.substring(5) : bdf;
    }

    static String size(long bytes) {
        if (bytes >= (1L << 30) && bytes % (1L << 30) == 0) return (bytes >> 30) + " GiB";
        if (bytes >= (1L << 20)) return (bytes >> 20) + " MiB";
        if (bytes >= 1024) return (bytes >> 10) + " KiB";
        return bytes + " B";
    }

    static String devName(Topology t, String bdf) {
        Topology.Dev d = t.devices().get(bdf);
        String n = d != null && d.qdevId() != null ? d.qdevId() + " " : "";
        Integer id = t.p2plabIds().get(bdf);
        return n + shortBdf(bdf) + (id != null ? " (p2plab" + id + ")" : "");
    }

    static String acsText(Topology.Dev d) {
        return d.acs() == null ? "-" : d.acs().control();
    }

    static String verdictText(Topology.Pair p) {
        if (p == null) return "";
        if (p.error() != null) return "error " + p.error();
        return p.map() + (p.distance() != null && p.distance() >= 0 ? " d=" + p.distance() : "");
    }

    /** Tree prefixes ("├─ ", "│  └─ ") in depth-first order. */
    static List<String> treePrefixes(Topology t) {
        List<String> out = new ArrayList<>();
        prefixes(t, null, "", out);
        return out;
    }

    private static void prefixes(Topology t, String parent, String indent, List<String> out) {
        List<Topology.Dev> kids = t.children(parent);
        for (int i = 0; i < kids.size(); i++) {
            boolean last = i == kids.size() - 1;
            out.add(parent == null ? "" : indent + (last ? "└─ " : "├─ "));
            prefixes(t, kids.get(i).bdf(), parent == null ? "" : indent + (last ? "   " : "│  "), out);
        }
    }

    public static String text(Topology t) {
        StringBuilder b = new StringBuilder();
        b.append("PCI tree (the guest kernel's view: sysfs, config space)\n");
        List<Map.Entry<Topology.Dev, Integer>> rows = t.depthFirst();
        List<String> pre = treePrefixes(t);
        List<String[]> cells = new ArrayList<>();
        cells.add(new String[]{"BDF", "DEVICE", "IDS", "DRIVER", "IOMMU", "ACS CONTROL", "P2PMEM"});
        for (int i = 0; i < rows.size(); i++) {
            Topology.Dev d = rows.get(i).getKey();
            String label = pre.get(i) + (d.qdevId() != null ? d.qdevId() + " (" + d.kind() + ")" : d.kind());
            cells.add(new String[]{d.bdf(), label, d.ids(), d.driver() == null ? "-" : d.driver(),
                    d.iommuGroup() == null ? "-" : d.iommuGroup(), acsText(d),
                    d.p2pmemSize() == null ? "-" : size(d.p2pmemSize()) + (d.p2pmemPublished() ? "" : " (unpublished)")});
        }
        table(b, cells);
        List<String> p2plabs = new ArrayList<>(t.p2plabIds().keySet());
        b.append('\n');
        if (p2plabs.size() >= 2) {
            b.append("P2P verdicts from the guest kernel (P2PLAB_IOC_P2P_QUERY: the DMA core's mapping of a provider page\n"
                    + "for the client; bus = PCI bus address through the switch, host-bridge = through the root complex,\n"
                    + "not-supported = refused; d = pci_p2pdma_distance)\n");
            List<String[]> m = new ArrayList<>();
            String[] head = new String[p2plabs.size() + 1];
            head[0] = "client \\ provider";
            for (int j = 0; j < p2plabs.size(); j++) head[j + 1] = devName(t, p2plabs.get(j));
            m.add(head);
            for (String c : p2plabs) {
                String[] r = new String[p2plabs.size() + 1];
                r[0] = devName(t, c);
                for (int j = 0; j < p2plabs.size(); j++)
                    r[j + 1] = c.equals(p2plabs.get(j)) ? "-" : orQ(verdictText(t.pair(c, p2plabs.get(j))));
                m.add(r);
            }
            table(b, m);
        } else {
            b.append("P2P verdicts: fewer than two p2plab devices answered, no pair to ask the kernel about\n");
        }
        List<String> others = new ArrayList<>();
        for (String p : t.providers()) if (!t.p2plabIds().containsKey(p)) others.add(devName(t, p) + " " + t.devices().get(p).kind());
        if (!others.isEmpty())
            b.append("Other P2PDMA providers (no kernel query without a transfer, not in the matrix): ")
                    .append(String.join(", ", others)).append('\n');
        StringBuilder g = new StringBuilder();
        for (var e : t.iommuGroups().entrySet()) {
            if (g.length() > 0) g.append("; ");
            g.append(e.getKey()).append(": ");
            List<String> names = new ArrayList<>();
            for (String x : e.getValue()) names.add(devName(t, x));
            g.append(String.join(", ", names));
        }
        b.append("IOMMU groups: ").append(g.length() == 0 ? "none (no IOMMU)" : g).append('\n');
        for (String n : t.notes()) b.append("note: ").append(n).append('\n');
        return b.toString();
    }

    private static String orQ(String s) {
        return s.isEmpty() ? "?" : s;
    }

    private static void table(StringBuilder b, List<String[]> rows) {
        int n = rows.get(0).length;
        int[] w = new int[n];
        for (String[] r : rows) for (int i = 0; i < n; i++) w[i] = Math.max(w[i], r[i].codePointCount(0, r[i].length()));
        for (String[] r : rows) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < n; i++) {
                line.append(r[i]);
                if (i < n - 1) line.append(" ".repeat(w[i] - r[i].codePointCount(0, r[i].length()) + 2));
            }
            b.append(line.toString().stripTrailing()).append('\n');
        }
    }

    // ---- SVG -------------------------------------------------------------------------------------

    static String colour(Topology.Pair p) {
        if (p == null) return "#e0e0e0";
        if (p.error() != null) return "#bdbdbd";
        return switch (p.map()) {
            case "bus" -> "#a5d6a7";
            case "host-bridge" -> "#ffe082";
            case "not-supported" -> "#ef9a9a";
            default -> "#e0e0e0";
        };
    }

    private static String fill(Topology.Dev d) {
        if (d.p2pmemSize() != null) return "#e3f2fd";
        if (d.portType() == Topology.PortType.ROOT_PORT) return "#f3e5f5";
        if (d.portType() == Topology.PortType.UPSTREAM || d.portType() == Topology.PortType.DOWNSTREAM) return "#fff3e0";
        return "#fafafa";
    }

    /** A standalone SVG: the tree on the left (IOMMU group, ACS), the verdict matrix on the right. */
    public static String svg(Topology t, String title) {
        List<Map.Entry<Topology.Dev, Integer>> rows = t.depthFirst();
        int rowH = 34, top = 48, indent = 26, boxW = 300;
        int maxDepth = rows.stream().mapToInt(Map.Entry::getValue).max().orElse(0);
        int treeW = 20 + maxDepth * indent + boxW + 20;
        List<String> p2plabs = new ArrayList<>(t.p2plabIds().keySet());
        int cell = 118, mx = treeW + 40 + 150;
        int matrixW = p2plabs.size() >= 2 ? 150 + 40 + cell * p2plabs.size() + 20 : 0;
        int legendY = top + rows.size() * rowH + 16;
        int matrixH = p2plabs.size() >= 2 ? top + 40 + cell / 3 * (p2plabs.size() + 1) + 120 : 0;
        int notesH = 18 * (t.notes().size() + 2);
        int w = treeW + matrixW + 20;
        int h = Math.max(legendY + notesH + 10, matrixH);
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                + "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n", w, h, w, h));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append(String.format(Locale.ROOT, "<text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", esc(title)));
        s.append("<text x=\"12\" y=\"38\" fill=\"#555\">PCI tree as the guest kernel sees it; P2P verdicts from the kernel "
                + "(P2PLAB_IOC_P2P_QUERY)</text>\n");
        Map<String, int[]> pos = new java.util.HashMap<>();
        for (int i = 0; i < rows.size(); i++) {
            Topology.Dev d = rows.get(i).getKey();
            int x = 12 + rows.get(i).getValue() * indent, y = top + i * rowH;
            pos.put(d.bdf(), new int[]{x, y});
            if (d.parent() != null && pos.containsKey(d.parent())) {
                int[] p = pos.get(d.parent());
                s.append(String.format(Locale.ROOT, "<path d=\"M%d %d V%d H%d\" fill=\"none\" stroke=\"#888\"/>\n",
                        p[0] + 10, p[1] + rowH - 8, y + 13, x));
            }
            boolean redirect = d.acs() != null && d.acs().redirects();
            s.append(String.format(Locale.ROOT, "<g><title>%s</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"4\" "
                            + "fill=\"%s\" stroke=\"%s\" stroke-width=\"%s\"/>\n", esc(tooltip(t, d)), x, y, boxW, rowH - 8, fill(d),
                    redirect ? "#c62828" : "#90a4ae", redirect ? "2" : "1"));
            String head = (d.qdevId() != null ? d.qdevId() + " · " : "") + d.kind();
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>", x + 6, y + 12, esc(head)));
            String sub = shortBdf(d.bdf()) + "  " + d.ids() + (d.driver() != null ? "  " + d.driver() : "")
                    + (d.p2pmemSize() != null ? "  p2pmem " + size(d.p2pmemSize()) : "");
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"#444\">%s</text>", x + 6, y + 23, esc(sub)));
            List<String> badges = new ArrayList<>();
            if (d.iommuGroup() != null) badges.add("grp " + d.iommuGroup());
            if (d.acs() != null) badges.add("ACS " + (redirect ? "RR+" : "RR-"));
            int bx = x + boxW - 4;
            for (String bd : badges) {
                int bw = 7 * bd.length() + 8;
                bx -= bw + 4;
                boolean red = bd.equals("ACS RR+");
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"14\" rx=\"7\" fill=\"%s\"/>"
                                + "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"white\">%s</text>", bx, y + 3, bw,
                        red ? "#c62828" : "#546e7a", bx + 4, y + 14, esc(bd)));
            }
            s.append("</g>\n");
        }
        int ly = legendY;
        s.append(String.format(Locale.ROOT, "<text x=\"12\" y=\"%d\" fill=\"#555\">red outline: ACS P2P Request Redirect on "
                + "(peer requests go up to the root complex); grp N: IOMMU group</text>\n", ly));
        for (String n : t.notes()) {
            ly += 18;
            s.append(String.format(Locale.ROOT, "<text x=\"12\" y=\"%d\" fill=\"#b71c1c\">note: %s</text>\n", ly, esc(n)));
        }
        if (p2plabs.size() >= 2) {
            int y0 = top + 30;
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">kernel P2P verdict: client (row) → "
                    + "provider (column)</text>\n", treeW + 40, top + 4));
            int ch = 40;
            for (int j = 0; j < p2plabs.size(); j++) {
                String b = p2plabs.get(j);
                Topology.Dev d = t.devices().get(b);
                Integer id = t.p2plabIds().get(b);
                s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\" "
                                + "font-weight=\"bold\">%s</text><text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%s</text>\n",
                        mx + j * cell + cell / 2, y0 - 2, esc(d != null && d.qdevId() != null ? d.qdevId() : "p2plab" + id),
                        mx + j * cell + cell / 2, y0 + 11, esc(shortBdf(b) + (id != null ? " · p2plab" + id : ""))));
            }
            for (int i = 0; i < p2plabs.size(); i++) {
                String c = p2plabs.get(i);
                int y = y0 + 18 + i * ch;
                s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
                        mx - 8, y + ch / 2 + 4, esc(devName(t, c))));
                for (int j = 0; j < p2plabs.size(); j++) {
                    String p = p2plabs.get(j);
                    int x = mx + j * cell;
                    if (c.equals(p)) {
                        s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f5f5f5\" "
                                + "stroke=\"white\"/>\n", x, y, cell, ch));
                        continue;
                    }
                    Topology.Pair pr = t.pair(c, p);
                    s.append(String.format(Locale.ROOT, "<g><title>%s → %s: %s</title><rect x=\"%d\" y=\"%d\" width=\"%d\" "
                                    + "height=\"%d\" fill=\"%s\" stroke=\"white\" stroke-width=\"2\"/>"
                                    + "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text></g>\n",
                            esc(c), esc(p), esc(pr == null ? "not asked" : verdictText(pr)), x, y, cell, ch, colour(pr),
                            x + cell / 2, y + ch / 2 + 4, esc(pr == null ? "?" : verdictText(pr))));
                }
            }
            int ky = y0 + 18 + p2plabs.size() * ch + 22;
            String[][] legend = {{"bus", "bus address (switch)"}, {"host-bridge", "through the root complex"},
                    {"not-supported", "refused by the kernel"}};
            for (String[] lg : legend) {
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>"
                                + "<text x=\"%d\" y=\"%d\">%s: %s</text>\n", treeW + 40, ky - 11,
                        colour(new Topology.Pair(0, 0, "", "", lg[0], 0, null)), treeW + 60, ky, esc(lg[0]), esc(lg[1])));
                ky += 20;
            }
            List<String> others = new ArrayList<>();
            for (String p : t.providers()) if (!t.p2plabIds().containsKey(p)) others.add(devName(t, p));
            if (!others.isEmpty())
                s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"#555\">also P2PDMA providers (not queryable "
                        + "without a transfer): %s</text>\n", treeW + 40, ky + 4, esc(String.join(", ", others))));
        }
        s.append("</svg>\n");
        return s.toString();
    }

    /** A self-contained page: the picture and the terminal table. */
    public static String html(Topology t, String title) {
        return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) + "</title>\n"
                + "<style>body{font-family:DejaVu Sans,Arial,sans-serif;margin:16px}pre{font-size:12px;background:#f5f5f5;"
                + "padding:8px;overflow-x:auto}</style></head><body>\n" + svg(t, title) + "<pre>" + esc(text(t))
                + "</pre>\n</body></html>\n";
    }

    private static String tooltip(Topology t, Topology.Dev d) {
        return d.bdf() + " " + d.ids() + " " + d.kind() + (d.driver() != null ? ", driver " + d.driver() : "")
                + (d.iommuGroup() != null ? ", IOMMU group " + d.iommuGroup() : "")
                + (d.acs() != null ? ", ACS " + d.acs().control() : "")
                + (d.p2pmemSize() != null ? ", p2pmem " + size(d.p2pmemSize()) : "");
    }

    public static String esc(String s) {
        return io.p2plab.util.Markup.escape(s);
    }
}
