package io.p2plab.topo;

import io.p2plab.ga.GuestAgent;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the guest's PCI topology with one guest command: sysfs (parent chain, ids, driver, IOMMU group,
 * p2pmem) with shell builtins and globs (no fork per attribute), then /opt/p2plab/bin/p2plab-topo
 * --config for every function's config space (PCIe port type, ACS) and the kernel's P2P verdicts, in one
 * process. A guest without the tool gets the config spaces through od (one fork per function) and no
 * verdicts.
 */
public final class TopoCapture {
    private TopoCapture() {}

    public static final String TOOL = "/opt/p2plab/bin/p2plab-topo";

    static final String SCRIPT = String.join("\n",
            "B=/sys/bus/pci/devices",
            "[ -d $B ] || { echo 'no /sys/bus/pci/devices in the guest' >&2; exit 3; }",
            "for D in $B/*; do",
            "  [ -e $D/config ] || continue",
            "  echo \"@dev ${D##*/}\"",
            "  cd -P $D && echo \"path $PWD\"",
            "  read v <$D/vendor; read dv <$D/device; read c <$D/class; echo \"ids $v $dv $c\"",
            "  if [ -r $D/p2pmem/size ]; then read s <$D/p2pmem/size; read p <$D/p2pmem/published; echo \"p2pmem $s $p\"; fi",
            "done",
            "cd /",
            "for l in /sys/bus/pci/drivers/*/0000:*; do echo \"@driver $l\"; done",
            "for l in /sys/kernel/iommu_groups/*/devices/*; do echo \"@group $l\"; done",
            "echo @kernel",
            "if [ -x " + TOOL + " ]; then " + TOOL + " --config || echo \"@tool-failed $?\"; else",
            "  echo @missing-tool; for D in $B/*; do echo \"@od ${D##*/}\"; od -Ax -tx1 $D/config; done",
            "fi",
            "");

    public static List<String> argv() {
        return List.of("/bin/sh", "-c", SCRIPT);
    }

    /** Runs the capture command through {@code exec} (argv, budget) and parses its output. */
    public static Topology capture(BiFunction<List<String>, Duration, GuestAgent.ExecResult> exec, Duration budget) {
        GuestAgent.ExecResult r = exec.apply(argv(), budget);
        if (r.exitCode() != 0)
            throw new TopoException("the guest's topology command exited with " + r.exitCode()
                    + (r.err().isBlank() ? "" : ": " + r.err().strip()));
        return parse(r.out());
    }

    private static final Pattern PAIR = Pattern.compile(
            "pair (\\d+) (\\d+) (\\S+) (\\S+) (?:map=(\\S+) distance=(-?\\d+) bus_offset=\\S+|error=(.+))");
    private static final Pattern TOOL_DEV = Pattern.compile("dev (\\d+) (\\S+) flags=.*");
    private static final Pattern TOOL_DEV_ERR = Pattern.compile("dev (\\d+) error=(.+)");
    private static final Pattern TOOL_CONFIG = Pattern.compile("config (\\S+) ((?:[0-9a-f]{2})*)");
    private static final Pattern OD_LINE = Pattern.compile("\\*|[0-9a-f]+(?: [0-9a-f]{2})*");
    private static final Pattern BDF = Pattern.compile("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]");

    /** Parses the capture command's output; a malformed output is a {@link TopoException} naming the line. */
    public static Topology parse(String out) {
        Map<String, DevBuilder> devs = new LinkedHashMap<>();
        Map<String, String> drivers = new HashMap<>();
        Map<String, String> groups = new HashMap<>();
        List<Topology.Pair> pairs = new ArrayList<>();
        Map<String, Integer> ids = new LinkedHashMap<>();
        List<String> notes = new ArrayList<>();
        String[] lines = out.split("\n");
        boolean kernel = false;
        boolean sawKernel = false;
        DevBuilder cur = null;
        Map<String, byte[]> configs = new HashMap<>();
        OdDump od = null;
        String odBdf = null;
        for (int i = 0; i < lines.length; i++) {
            String l = lines[i].strip();
            if (l.isEmpty()) continue;
            try {
                if (kernel) {
                    Matcher m;
                    if (od != null && OD_LINE.matcher(l).matches()) {
                        od.line(l);
                        continue;
                    }
                    if (od != null) { configs.put(odBdf, od.bytes()); od = null; }
                    if (l.startsWith("@od ")) {
                        odBdf = bdf(l.substring(4));
                        od = new OdDump();
                    } else if ((m = TOOL_CONFIG.matcher(l)).matches()) {
                        String h = m.group(2);
                        if (h.length() > 8192) throw new TopoException("config space beyond 4096 bytes");
                        byte[] b = new byte[h.length() / 2];
                        for (int k = 0; k < b.length; k++) b[k] = (byte) Integer.parseInt(h, 2 * k, 2 * k + 2, 16);
                        configs.put(bdf(m.group(1)), b);
                    } else if ((m = PAIR.matcher(l)).matches()) {
                        pairs.add(new Topology.Pair(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), m.group(3),
                                m.group(4), m.group(5), m.group(6) == null ? null : Integer.valueOf(m.group(6)), m.group(7)));
                    } else if ((m = TOOL_DEV.matcher(l)).matches()) {
                        ids.put(m.group(2), Integer.parseInt(m.group(1)));
                    } else if ((m = TOOL_DEV_ERR.matcher(l)).matches()) {
                        notes.add("/dev/p2plab" + m.group(1) + " did not answer P2PLAB_IOC_INFO: " + m.group(2));
                    } else if (l.equals("@missing-tool")) {
                        notes.add("the guest has no " + TOOL + " (an older guest build: make guest): no kernel P2P verdicts");
                    } else if (l.startsWith("@tool-failed")) {
                        notes.add(TOOL + " exited with " + l.substring(13).strip());
                    } else {
                        throw new TopoException("unexpected line from " + TOOL);
                    }
                    continue;
                }
                if (l.startsWith("@")) {
                    if (cur != null) { devs.put(cur.bdf, cur); cur = null; }
                    if (l.startsWith("@dev ")) {
                        cur = new DevBuilder(bdf(l.substring(5)));
                    } else if (l.startsWith("@driver ")) {
                        String[] p = l.substring(8).split("/");
                        if (p.length >= 2 && !l.contains("*")) drivers.put(bdf(p[p.length - 1]), p[p.length - 2]);
                    } else if (l.startsWith("@group ")) {
                        String[] p = l.substring(7).split("/");
                        if (p.length >= 3 && !l.contains("*")) groups.put(bdf(p[p.length - 1]), p[p.length - 3]);
                    } else if (l.equals("@kernel")) {
                        kernel = sawKernel = true;
                    } else {
                        throw new TopoException("unknown record");
                    }
                } else if (cur == null) {
                    throw new TopoException("data outside a device record");
                } else if (l.startsWith("path ")) {
                    cur.path(l.substring(5));
                } else if (l.startsWith("ids ")) {
                    String[] p = l.substring(4).split(" ");
                    if (p.length != 3) throw new TopoException("ids wants 3 fields");
                    cur.vendor = Integer.decode(p[0]);
                    cur.device = Integer.decode(p[1]);
                    cur.classCode = Integer.decode(p[2]);
                } else if (l.startsWith("p2pmem ")) {
                    String[] p = l.substring(7).split(" ");
                    cur.p2pmem = Long.parseLong(p[0]);
                    cur.published = p.length > 1 && p[1].equals("1");
                } else {
                    throw new TopoException("unknown field");
                }
            } catch (TopoException | NumberFormatException e) {
                throw new TopoException("topology output line " + (i + 1) + " '" + abbrev(l) + "': " + e.getMessage());
            }
        }
        if (od != null) configs.put(odBdf, od.bytes());
        if (cur != null) devs.put(cur.bdf, cur);
        if (devs.isEmpty()) throw new TopoException("the guest listed no PCI device (" + (out.isBlank() ? "empty output" : abbrev(out.strip())) + ")");
        if (!sawKernel) throw new TopoException("the guest's topology output ends before the kernel's P2P verdicts (truncated?)");
        if (configs.isEmpty() && sawKernel)
            notes.add("no config spaces (the guest's " + TOOL + " predates --config: make guest): no ACS state or port types");
        Map<String, Topology.Dev> withMeta = new LinkedHashMap<>();
        for (DevBuilder b : devs.values()) {
            Topology.Dev d = b.build(configs.get(b.bdf));
            withMeta.put(d.bdf(), new Topology.Dev(d.bdf(), d.parent(), d.domainRoot(), d.vendor(), d.device(), d.classCode(),
                    drivers.get(d.bdf()), groups.get(d.bdf()), d.p2pmemSize(), d.p2pmemPublished(), d.portType(), d.acs(), null));
        }
        for (Topology.Pair p : pairs)
            for (String b : List.of(p.client(), p.provider()))
                if (!withMeta.containsKey(b)) throw new TopoException("p2plab-topo names " + b + ", which sysfs does not list");
        return new Topology(withMeta, pairs, ids, notes);
    }

    private static String bdf(String s) {
        if (!BDF.matcher(s).matches()) throw new TopoException("not a PCI address: " + s);
        return s;
    }

    private static String abbrev(String s) {
        return s.length() > 80 ? s.substring(0, 77) + "..." : s;
    }

    /**
     * A config space dumped by {@code od -Ax -tx1} (busybox or GNU): "OFFSET BYTES..." lines, "*" for
     * lines equal to the previous one (config space is mostly zeros: that keeps the output small), and
     * the end offset alone on the last line.
     */
    static final class OdDump {
        private final byte[] buf = new byte[4096];
        private byte[] last;
        private int lastEnd, end = -1;
        private boolean star;

        void line(String l) {
            if (l.equals("*")) {
                if (last == null) throw new TopoException("od repeat marker before any data");
                star = true;
                return;
            }
            String[] t = l.trim().split("\\s+");
            int addr = Integer.parseInt(t[0], 16);
            if (addr > buf.length) throw new TopoException("config-space offset " + t[0] + " beyond 4096");
            if (star) {
                for (int o = lastEnd; o + last.length <= addr; o += last.length) System.arraycopy(last, 0, buf, o, last.length);
                star = false;
            }
            if (t.length == 1) {
                end = addr;
                return;
            }
            if (addr + t.length - 1 > buf.length) throw new TopoException("config-space data beyond 4096");
            byte[] b = new byte[t.length - 1];
            for (int i = 1; i < t.length; i++) {
                if (t[i].length() != 2) throw new TopoException("not a hex byte: " + t[i]);
                b[i - 1] = (byte) Integer.parseInt(t[i], 16);
            }
            System.arraycopy(b, 0, buf, addr, b.length);
            last = b;
            lastEnd = addr + b.length;
        }

        byte[] bytes() {
            return java.util.Arrays.copyOf(buf, Math.max(end, lastEnd));
        }
    }

    private static final class DevBuilder {
        final String bdf;
        String parent, root;
        int vendor = -1, device, classCode;
        Long p2pmem;
        boolean published;

        DevBuilder(String bdf) { this.bdf = bdf; }

        void path(String p) {
            // /sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0
            String[] parts = p.split("/");
            List<String> chain = new ArrayList<>();
            for (String s : parts) {
                if (s.startsWith("pci") && root == null) root = s;
                else if (BDF.matcher(s).matches()) chain.add(s);
            }
            if (chain.isEmpty() || !chain.get(chain.size() - 1).equals(bdf))
                throw new TopoException("sysfs path does not end with " + bdf);
            parent = chain.size() > 1 ? chain.get(chain.size() - 2) : null;
        }

        Topology.Dev build(byte[] config) {
            if (vendor < 0) throw new TopoException("device " + bdf + " has no ids line");
            // trailing zero bytes are cut by p2plab-topo: pad back to the whole config space
            byte[] cfg = config == null ? new byte[0] : java.util.Arrays.copyOf(config, 4096);
            Topology.PortType pt = null;
            Topology.Acs acs = null;
            if (cfg.length >= 64 && (u16(cfg, 0x06) & 0x10) != 0) {
                int ptr = cfg[0x34] & 0xfc;
                for (int n = 0; ptr >= 0x40 && ptr + 4 <= cfg.length && n < 48; n++) {
                    if ((cfg[ptr] & 0xff) == 0x10) { pt = Topology.PortType.of((u16(cfg, ptr + 2) >> 4) & 0xf); break; }
                    ptr = cfg[ptr + 1] & 0xfc;
                }
            }
            if (cfg.length >= 0x108) {
                int off = 0x100;
                for (int n = 0; off >= 0x100 && off + 8 <= cfg.length && n < 96; n++) {
                    int h = u16(cfg, off) | (u16(cfg, off + 2) << 16);
                    if (h == 0 || h == -1) break;
                    if ((h & 0xffff) == 0x000d) { acs = new Topology.Acs(u16(cfg, off + 4), u16(cfg, off + 6)); break; }
                    off = (h >>> 20) & 0xffc;
                }
            }
            return new Topology.Dev(bdf, parent, root, vendor, device, classCode, null, null, p2pmem, published, pt, acs, null);
        }

        private static int u16(byte[] b, int off) {
            return (b[off] & 0xff) | ((b[off + 1] & 0xff) << 8);
        }
    }
}
