package io.p2plab.topo;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The guest's PCI tree as the guest kernel sees it (sysfs: parent chain, driver, IOMMU group, p2pmem,
 * config space for the PCIe port type and the ACS capability) plus the kernel's P2P verdict for every
 * ordered pair of p2plab devices (guest tool p2plab-topo, P2PLAB_IOC_P2P_QUERY). Nothing here decides
 * a verdict: pairs carry what the guest kernel answered.
 */
public final class Topology {
    /** One PCI function. {@code parent} is the BDF of the bridge above it, null under the host bridge. */
    public record Dev(String bdf, String parent, String domainRoot, int vendor, int device, int classCode,
                      String driver, String iommuGroup, Long p2pmemSize, boolean p2pmemPublished,
                      PortType portType, Acs acs, String qdevId) {
        public boolean isBridge() { return (classCode >> 8) == 0x0604; }

        public String kind() {
            if (vendor == 0x1234 && device == 0x11f0) return "p2plab";
            if (portType != null && portType != PortType.ENDPOINT && portType != PortType.OTHER) return portType.label;
            return switch (classCode >> 8) {
                case 0x0108 -> "nvme";
                case 0x0600 -> "host bridge";
                case 0x0601 -> "ISA bridge";
                case 0x0604 -> "PCI bridge";
                case 0x0106 -> "SATA";
                case 0x0c05 -> "SMBus";
                case 0x0780 -> "virtio-serial";
                case 0x0200 -> "ethernet";
                case 0x0300 -> "display";
                default -> String.format(Locale.ROOT, "class %04x", classCode >> 8);
            };
        }

        /** Short label: qdev id when known, else the kind. */
        public String label() { return qdevId != null ? qdevId : kind(); }

        public String ids() { return String.format(Locale.ROOT, "%04x:%04x", vendor, device); }
    }

    public enum PortType {
        ENDPOINT("endpoint"), ROOT_PORT("root port"), UPSTREAM("switch upstream"), DOWNSTREAM("switch downstream"),
        PCIE_TO_PCI("PCIe-PCI bridge"), RC_ENDPOINT("RC endpoint"), OTHER("PCIe");

        public final String label;

        PortType(String l) { label = l; }

        static PortType of(int t) {
            return switch (t) {
                case 0, 1 -> ENDPOINT;
                case 4 -> ROOT_PORT;
                case 5 -> UPSTREAM;
                case 6 -> DOWNSTREAM;
                case 7, 8 -> PCIE_TO_PCI;
                case 9 -> RC_ENDPOINT;
                default -> OTHER;
            };
        }
    }

    /** The ACS extended capability: capability and control registers (PCIe base spec 7.7.8). */
    public record Acs(int cap, int ctrl) {
        static final String[] BITS = {"SV", "TB", "RR", "CR", "UF", "EC", "DT"};

        /** lspci-style control bits of the capabilities the port has: "SV+ TB- RR+ CR+ UF+ ...". */
        public String control() {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < BITS.length; i++) {
                if ((cap & (1 << i)) == 0) continue;
                if (b.length() > 0) b.append(' ');
                b.append(BITS[i]).append((ctrl & (1 << i)) != 0 ? '+' : '-');
            }
            return b.length() == 0 ? "(no controls)" : b.toString();
        }

        /** P2P Request Redirect enabled: peer requests go up to the root complex. */
        public boolean redirects() { return (ctrl & 0x4) != 0; }
    }

    /** The kernel's answer for client -> provider (P2PLAB_IOC_P2P_QUERY), or an error name. */
    public record Pair(int clientId, int providerId, String client, String provider, String map, Integer distance,
                       String error) {
        public String verdict() { return error != null ? "error " + error : map; }
    }

    private final Map<String, Dev> devs;
    private final List<Pair> pairs;
    private final Map<String, Integer> p2plabIds;
    private final List<String> notes;

    Topology(Map<String, Dev> devs, List<Pair> pairs, Map<String, Integer> p2plabIds, List<String> notes) {
        this.devs = Collections.unmodifiableMap(new TreeMap<>(devs));
        this.pairs = List.copyOf(pairs);
        this.p2plabIds = Collections.unmodifiableMap(new LinkedHashMap<>(p2plabIds));
        this.notes = List.copyOf(notes);
    }

    public Map<String, Dev> devices() { return devs; }

    public List<Pair> pairs() { return pairs; }

    /** /dev/p2plabN id by BDF, for the devices p2plab-topo saw. */
    public Map<String, Integer> p2plabIds() { return p2plabIds; }

    /** What could not be read (no p2plab-topo in the guest, a device that failed to answer...). */
    public List<String> notes() { return notes; }

    public List<Dev> children(String parentBdf) {
        List<Dev> out = new ArrayList<>();
        for (Dev d : devs.values()) if (java.util.Objects.equals(d.parent(), parentBdf)) out.add(d);
        return out;
    }

    /** Devices in depth-first order with their depth (0 = on a root bus). */
    public List<Map.Entry<Dev, Integer>> depthFirst() {
        List<Map.Entry<Dev, Integer>> out = new ArrayList<>();
        for (Dev d : children(null)) walk(d, 0, out);
        return out;
    }

    private void walk(Dev d, int depth, List<Map.Entry<Dev, Integer>> out) {
        out.add(Map.entry(d, depth));
        for (Dev c : children(d.bdf())) walk(c, depth + 1, out);
    }

    /** BDFs of the devices that publish p2pmem (P2PDMA providers), in BDF order. */
    public List<String> providers() {
        List<String> out = new ArrayList<>();
        for (Dev d : devs.values()) if (d.p2pmemSize() != null) out.add(d.bdf());
        return out;
    }

    /** The pair's verdict by client and provider BDF, null when the kernel was not asked. */
    public Pair pair(String client, String provider) {
        for (Pair p : pairs) if (p.client().equals(client) && p.provider().equals(provider)) return p;
        return null;
    }

    /** Members of each IOMMU group, by group number. */
    public Map<String, List<String>> iommuGroups() {
        Map<String, List<String>> g = new TreeMap<>((a, b) -> {
            try { return Integer.compare(Integer.parseInt(a), Integer.parseInt(b)); }
            catch (NumberFormatException e) { return a.compareTo(b); }
        });
        for (Dev d : devs.values()) if (d.iommuGroup() != null) g.computeIfAbsent(d.iommuGroup(), k -> new ArrayList<>()).add(d.bdf());
        return g;
    }

    /** Adds QEMU qdev ids (from QMP query-pci) to the devices, by BDF. */
    public Topology withQdevIds(Map<String, String> idByBdf) {
        Map<String, Dev> m = new HashMap<>();
        for (Dev d : devs.values()) {
            String id = idByBdf.get(d.bdf());
            m.put(d.bdf(), id == null || id.isEmpty() ? d : new Dev(d.bdf(), d.parent(), d.domainRoot(), d.vendor(), d.device(),
                    d.classCode(), d.driver(), d.iommuGroup(), d.p2pmemSize(), d.p2pmemPublished(), d.portType(), d.acs(), id));
        }
        return new Topology(m, pairs, p2plabIds, notes);
    }
}
