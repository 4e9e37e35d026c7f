package io.p2plab.vm;

import io.p2plab.spec.Node;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A validated machine description. YAML keys (all optional unless noted):
 * <pre>
 * type: q35 | none        qemu: PATH       accel: tcg | kvm      cpu: max     memory: 1G    smp: 1
 * bios: qboot.rom | default | PATH        kernel: PATH   initrd: PATH   append: "console=ttyS0 ..."
 * iommu: false            guest-agent: true (default: true if kernel given)
 * ready: REGEX (default P2PLAB-READY)     ready-timeout: 180
 * watchdog: true          quit-grace: 5
 * root-ports: [{id, chassis?, slot?, props?}]
 * switches:   [{id, bus?: ROOT-PORT-ID (default: a new root port), downstream: [{id, acs?, props?}]}]
 * devices:    [{driver, id?, bus?, props?, cmb-size-mb?, drive-size?, serial?}]
 * extra-args: [...]
 * hotplug: acpi | native   (q35 only; native: -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off,
 *                          the guest's pciehp drives the root and downstream ports' slots)
 * </pre>
 */
public record MachineSpec(String type, String qemu, String accel, String cpu, String memory, int smp,
                          String bios, String kernel, String initrd, String append, boolean iommu,
                          boolean guestAgent, Pattern ready, Duration readyTimeout, boolean watchdog,
                          Duration quitGrace, List<RootPort> rootPorts, List<Switch> switches,
                          List<Device> devices, List<String> extraArgs, String hotplug) {

    public record RootPort(String id, Integer chassis, Integer slot, Map<String, String> props) {}
    public record Downstream(String id, boolean acs, Map<String, String> props) {}
    public record Switch(String id, String bus, List<Downstream> downstream) {}
    public record Device(String driver, String id, String bus, Map<String, String> props,
                         Integer cmbSizeMb, String driveSize, String serial) {}

    public static final String[] KEYS = {"type", "qemu", "accel", "cpu", "memory", "smp", "bios", "kernel",
            "initrd", "append", "iommu", "guest-agent", "ready", "ready-timeout", "watchdog", "quit-grace",
            "root-ports", "switches", "devices", "extra-args", "hotplug"};

    /** A minimal spec: {@code -machine none}, no console, no guest. */
    public static MachineSpec none() {
        return new MachineSpec("none", null, "tcg", null, "64M", 1, null, null, null, null, false, false,
                null, Duration.ofSeconds(10), false, Duration.ofSeconds(3), List.of(), List.of(), List.of(), List.of(), "acpi");
    }

    public static MachineSpec parse(Node m) {
        m.checkKeys(KEYS);
        String type = m.optStr("type", "q35");
        if (!type.matches("[A-Za-z0-9._-]+")) throw m.child("type").error("invalid machine type '" + type + "'");
        String accel = m.optStr("accel", "tcg");
        if (!accel.equals("tcg") && !accel.equals("kvm"))
            throw m.child("accel").error("accel must be 'tcg' or 'kvm', got '" + accel + "'");
        String memory = m.optStr("memory", type.equals("none") ? "64M" : "1G");
        if (!memory.matches("\\d+[KMGT]?")) throw m.child("memory").error("memory must look like 512M or 2G, got '" + memory + "'");
        long smp = m.optInt("smp", 1);
        if (smp < 1 || smp > 64) throw m.child("smp").error("smp must be between 1 and 64");
        String kernel = m.optStr("kernel", null);
        boolean ga = m.optBool("guest-agent", kernel != null);
        Pattern ready = m.has("ready") ? m.child("ready").regex() : (kernel != null ? Pattern.compile("P2PLAB-READY") : null);

        List<RootPort> rps = new ArrayList<>();
        if (m.has("root-ports")) for (Node r : m.child("root-ports").items()) {
            r.checkKeys("id", "chassis", "slot", "props");
            rps.add(new RootPort(id(r.get("id")), r.has("chassis") ? (int) r.child("chassis").integer() : null,
                    r.has("slot") ? (int) r.child("slot").integer() : null, props(r.opt("props"))));
        }
        List<Switch> sws = new ArrayList<>();
        if (m.has("switches")) for (Node s : m.child("switches").items()) {
            s.checkKeys("id", "bus", "downstream");
            List<Downstream> ds = new ArrayList<>();
            for (Node d : s.get("downstream").items()) {
                if (d.isText()) { ds.add(new Downstream(id(d), false, Map.of())); continue; }
                d.checkKeys("id", "acs", "props");
                ds.add(new Downstream(id(d.get("id")), d.optBool("acs", false), props(d.opt("props"))));
            }
            if (ds.isEmpty()) throw s.child("downstream").error("a switch needs at least one downstream port");
            sws.add(new Switch(id(s.get("id")), s.has("bus") ? id(s.child("bus")) : null, ds));
        }
        List<Device> devs = new ArrayList<>();
        if (m.has("devices")) for (Node d : m.child("devices").items()) {
            d.checkKeys("driver", "id", "bus", "props", "cmb-size-mb", "drive-size", "serial");
            String driver = d.get("driver").str();
            if (!driver.matches("[A-Za-z0-9._-]+")) throw d.child("driver").error("invalid driver name '" + driver + "'");
            String ds = d.optStr("drive-size", null);
            if (ds != null && !ds.matches("\\d+[KMG]?")) throw d.child("drive-size").error("drive-size must look like 16M");
            devs.add(new Device(driver, d.has("id") ? id(d.child("id")) : null,
                    d.has("bus") ? id(d.child("bus")) : null, props(d.opt("props")),
                    d.has("cmb-size-mb") ? (int) d.child("cmb-size-mb").integer() : null, ds,
                    d.optStr("serial", null)));
        }
        // every id unique, every bus reference resolvable
        Map<String, String> ids = new LinkedHashMap<>();
        for (RootPort r : rps) unique(m, ids, r.id(), "root port");
        for (Switch s : sws) {
            unique(m, ids, s.id(), "switch");
            for (Downstream d : s.downstream()) unique(m, ids, d.id(), "downstream port");
        }
        for (Device d : devs) if (d.id() != null) unique(m, ids, d.id(), "device");
        for (int i = 0; i < sws.size(); i++) {
            Switch s = sws.get(i);
            if (s.bus() != null && !"root port".equals(ids.get(s.bus())))
                throw m.child("switches").items().get(i).child("bus").error("bus '" + s.bus() + "' is not a root port id");
        }
        for (int i = 0; i < devs.size(); i++) {
            Device d = devs.get(i);
            String k = d.bus() == null ? null : ids.get(d.bus());
            if (d.bus() != null && !d.bus().startsWith("pcie.") && !"root port".equals(k) && !"downstream port".equals(k))
                throw m.child("devices").items().get(i).child("bus").error("bus '" + d.bus()
                        + "' is neither a root port nor a switch downstream port (nor pcie.N)");
        }
        List<String> extra = m.has("extra-args") ? m.child("extra-args").strList() : List.of();
        String hotplug = m.optStr("hotplug", "acpi");
        if (!hotplug.equals("acpi") && !hotplug.equals("native"))
            throw m.child("hotplug").error("hotplug must be 'acpi' or 'native', got '" + hotplug + "'");
        if (hotplug.equals("native") && !type.equals("q35"))
            throw m.child("hotplug").error("hotplug: native is a q35 option (it turns q35's ACPI PCI hotplug off), "
                    + "the machine type is '" + type + "'");
        return new MachineSpec(type, m.optStr("qemu", null), accel, m.optStr("cpu", type.equals("none") ? null : "max"),
                memory, (int) smp, m.optStr("bios", type.equals("q35") ? "qboot.rom" : null), kernel,
                m.optStr("initrd", null), m.optStr("append", null), m.optBool("iommu", false), ga, ready,
                m.optDuration("ready-timeout", Duration.ofSeconds(180)), m.optBool("watchdog", true),
                m.optDuration("quit-grace", Duration.ofSeconds(5)), rps, sws, devs, extra, hotplug);
    }

    private static void unique(Node m, Map<String, String> ids, String id, String kind) {
        String prev = ids.putIfAbsent(id, kind);
        if (prev != null) throw m.error("duplicate id '" + id + "' (" + prev + " and " + kind + ")");
    }

    private static String id(Node n) {
        String s = n.str();
        if (!s.matches("[A-Za-z][A-Za-z0-9._-]*")) throw n.error("invalid id '" + s + "' (letters, digits, . _ -; starts with a letter)");
        return s;
    }

    private static Map<String, String> props(Node p) {
        Map<String, String> out = new LinkedHashMap<>();
        if (p == null) return out;
        p.requireObject();
        for (String k : p.keys()) {
            Node v = p.child(k);
            String s = v.json().isBoolean() ? (v.json().asBoolean() ? "on" : "off") : v.text();
            if (s.contains(",")) s = s.replace(",", ",,");
            out.put(k, s);
        }
        return out;
    }
}
