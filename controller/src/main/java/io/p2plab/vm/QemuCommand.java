package io.p2plab.vm;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Turns a {@link MachineSpec} into a QEMU command line. */
public final class QemuCommand {
    private QemuCommand() {}

    /** QEMU binary: spec, then env P2PLAB_QEMU, then qemu-system-x86_64 on PATH. */
    public static String findQemu(String fromSpec) {
        if (fromSpec != null) return fromSpec;
        String env = System.getenv("P2PLAB_QEMU");
        if (env != null && !env.isBlank()) return env;
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        for (String dir : path.split(":")) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, "qemu-system-x86_64");
            if (Files.isExecutable(p)) return p.toString();
        }
        throw new VmException("qemu-system-x86_64 not found: set P2PLAB_QEMU, 'qemu:' in the machine spec, or "
                + "install it (apt-get install qemu-system-x86)");
    }

    public static List<String> dataDirs() {
        String env = System.getenv("P2PLAB_QEMU_DATADIRS");
        String v = env == null || env.isBlank() ? "/usr/share/qemu:/usr/share/seabios" : env;
        List<String> out = new ArrayList<>();
        for (String d : v.split(":")) if (!d.isBlank() && Files.isDirectory(Path.of(d))) out.add(d);
        return out;
    }

    /**
     * @param runDir  private 0700 dir for sockets
     * @param caseDir artefact dir (drive images go there)
     * @param kvm     whether KVM was requested and proven to work
     */
    public static List<String> build(MachineSpec s, String qemu, Path runDir, Path caseDir, boolean kvm) {
        List<String> a = new ArrayList<>();
        a.add(qemu);
        for (String d : dataDirs()) { a.add("-L"); a.add(d); }
        boolean none = s.type().equals("none");
        String machine = s.type();
        if (kvm && s.iommu() && !none) machine += ",kernel-irqchip=split";
        a.addAll(List.of("-machine", machine, "-accel", kvm ? "kvm" : "tcg"));
        // native PCIe hotplug: q35's ACPI hotplug (on by default since QEMU 6.1) off, so the firmware's _OSC
        // grants the guest PCIeHotplug and pciehp drives the slots of the root and downstream ports
        if (s.hotplug().equals("native")) a.addAll(List.of("-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"));
        a.addAll(List.of("-nodefaults", "-display", "none", "-no-user-config"));
        if (!none) a.addAll(List.of("-nic", "none", "-vga", "none"));
        if (s.cpu() != null) a.addAll(List.of("-cpu", s.cpu()));
        a.addAll(List.of("-m", s.memory()));
        if (s.smp() > 1) a.addAll(List.of("-smp", String.valueOf(s.smp())));
        if (s.bios() != null && !s.bios().equals("default") && !none) a.addAll(List.of("-bios", s.bios()));
        a.addAll(List.of("-qmp", "unix:" + runDir.resolve("qmp.sock") + ",server=on,wait=off"));
        if (!none) {
            a.addAll(List.of("-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0"));
        }
        String append = s.append();
        if (s.kernel() != null) {
            a.addAll(List.of("-kernel", s.kernel()));
            if (s.initrd() != null) a.addAll(List.of("-initrd", s.initrd()));
        }
        if (s.iommu()) {
            a.addAll(List.of("-device", kvm ? "intel-iommu,intremap=on" : "intel-iommu,intremap=off"));
            if (s.kernel() != null) append = (append == null ? "" : append + " ") + "intel_iommu=on";
        }
        if (s.kernel() != null && !kvm && (append == null || !append.contains("tsc_early_khz="))) {
            // TCG: the guest's TSC is the host's; its boot calibration against the emulated PIT can be
            // far off on a loaded host (the guest clock then runs several times too fast): HostTsc
            var khz = HostTsc.khz();
            if (khz.isPresent()) append = (append == null ? "" : append + " ") + "tsc_early_khz=" + khz.getAsLong();
        }
        if (s.kernel() != null && append != null) a.addAll(List.of("-append", append));
        int chassis = 1;
        for (MachineSpec.RootPort r : s.rootPorts()) {
            int ch = r.chassis() != null ? r.chassis() : chassis;
            chassis = Math.max(chassis, ch) + 1;
            a.addAll(List.of("-device", dev("pcie-root-port", "id=" + r.id(), "bus=pcie.0", "chassis=" + ch,
                    "slot=" + (r.slot() != null ? r.slot() : 0)) + props(r.props())));
        }
        for (MachineSpec.Switch sw : s.switches()) {
            String bus = sw.bus();
            if (bus == null) {
                bus = sw.id() + "-rp";
                a.addAll(List.of("-device", dev("pcie-root-port", "id=" + bus, "bus=pcie.0", "chassis=" + chassis++,
                        "slot=0")));
            }
            a.addAll(List.of("-device", dev("x3130-upstream", "id=" + sw.id(), "bus=" + bus)));
            int slot = 0;
            for (MachineSpec.Downstream d : sw.downstream()) {
                String acs = d.acs() && !d.props().containsKey("acs") ? ",acs=on" : "";
                a.addAll(List.of("-device", dev("xio3130-downstream", "id=" + d.id(), "bus=" + sw.id(),
                        "chassis=" + chassis++, "slot=" + slot++) + acs + props(d.props())));
            }
        }
        int n = 0;
        for (MachineSpec.Device d : s.devices()) {
            String id = d.id() != null ? d.id() : d.driver().replaceAll("[^A-Za-z0-9]", "") + n;
            n++;
            StringBuilder b = new StringBuilder(d.driver()).append(",id=").append(id);
            if (d.bus() != null) b.append(",bus=").append(d.bus());
            if (d.driver().equals("nvme")) {
                Path img = caseDir.resolve(id + ".img");
                makeRaw(img, parseSize(d.driveSize() == null ? "16M" : d.driveSize()));
                a.addAll(List.of("-drive", "file=" + img.toString().replace(",", ",,") + ",if=none,format=raw,id="
                        + id + "-drive"));
                b.append(",drive=").append(id).append("-drive");
                b.append(",serial=").append(d.serial() != null ? d.serial() : "p2plab-" + id);
                if (d.cmbSizeMb() != null) b.append(",cmb_size_mb=").append(d.cmbSizeMb());
            }
            b.append(props(d.props()));
            a.addAll(List.of("-device", b.toString()));
        }
        if (s.guestAgent()) {
            a.addAll(List.of("-device", "virtio-serial-pci,id=vser0",
                    "-chardev", "socket,id=qga0,path=" + runDir.resolve("qga.sock") + ",server=on,wait=off",
                    "-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"));
        }
        a.addAll(s.extraArgs());
        return a;
    }

    private static String dev(String driver, String... kv) {
        return driver + "," + String.join(",", kv);
    }

    private static String props(Map<String, String> p) {
        StringBuilder b = new StringBuilder();
        p.forEach((k, v) -> b.append(',').append(k).append('=').append(v));
        return b.toString();
    }

    static long parseSize(String s) {
        long mul = switch (s.charAt(s.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1;
        };
        String num = Character.isDigit(s.charAt(s.length() - 1)) ? s : s.substring(0, s.length() - 1);
        return Long.parseLong(num) * mul;
    }

    private static void makeRaw(Path img, long size) {
        try {
            Files.createDirectories(img.getParent());
            try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                f.setLength(size);
            }
        } catch (IOException e) {
            throw new VmException("cannot create drive image " + img + ": " + e.getMessage());
        }
    }
}
