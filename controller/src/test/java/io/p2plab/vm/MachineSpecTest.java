package io.p2plab.vm;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.spec.SpecException;
import io.p2plab.util.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class MachineSpecTest {
    @TempDir
    Path tmp;

    static final String TOPO = """
            type: q35
            cpu: EPYC
            memory: 512M
            iommu: true
            kernel: /nonexistent/vmlinuz
            append: console=ttyS0
            guest-agent: true
            root-ports:
              - {id: rp0}
            switches:
              - id: sw0
                downstream:
                  - {id: dp0, acs: true}
                  - dp1
            devices:
              - {driver: p2plab, id: p2p0, bus: dp0, props: {mem-size: 64M, fail-nth: 0}}
              - {driver: nvme, id: nvme0, bus: dp1, cmb-size-mb: 64}
            """;

    @Test
    void topologyBecomesACommandLine() {
        MachineSpec s = MachineSpecs.parse(TOPO);
        List<String> a = QemuCommand.build(s, "qemu", tmp.resolve("run"), tmp.resolve("case"), false);
        String cmd = String.join(" ", a);
        assertThat(cmd).contains("-machine q35 -accel tcg", "-cpu EPYC", "-m 512M", "-bios qboot.rom", "-nic none",
                "-device intel-iommu,intremap=off", "console=ttyS0 intel_iommu=on",
                "-device pcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=0",
                "-device pcie-root-port,id=sw0-rp,bus=pcie.0",
                "-device x3130-upstream,id=sw0,bus=sw0-rp",
                "xio3130-downstream,id=dp0,bus=sw0", ",acs=on",
                "-device p2plab,id=p2p0,bus=dp0,mem-size=64M,fail-nth=0",
                "nvme,id=nvme0,bus=dp1,drive=nvme0-drive,serial=p2plab-nvme0,cmb_size_mb=64",
                "name=org.qemu.guest_agent.0", "-chardev stdio,id=con0,signal=off -serial chardev:con0");
        assertThat(cmd).doesNotContain("kernel-irqchip");
        assertThat(a.indexOf("intel-iommu,intremap=off")).isLessThan(a.indexOf("-device") + 2 + 100);
        assertThat(Files.exists(tmp.resolve("case/nvme0.img"))).isTrue();
        // dp1 has no acs
        assertThat(a.stream().filter(x -> x.startsWith("xio3130-downstream,id=dp1")).findFirst().orElseThrow())
                .doesNotContain("acs");
        // KVM + iommu => split irqchip
        assertThat(String.join(" ", QemuCommand.build(s, "qemu", tmp, tmp, true)))
                .contains("q35,kernel-irqchip=split", "intel-iommu,intremap=on", "-accel kvm");
    }

    @Test
    void badSpecsGiveLocatedErrors() {
        assertThatThrownBy(() -> MachineSpecs.parse("type: q35\nmemroy: 1G\n"))
                .isInstanceOf(SpecException.class).hasMessageContaining("<inline>:2:1").hasMessageContaining("unknown key 'memroy'");
        assertThatThrownBy(() -> MachineSpecs.parse("smp: two\n"))
                .hasMessageContaining("<inline>:1:1").hasMessageContaining("expected an integer");
        assertThatThrownBy(() -> MachineSpecs.parse("devices:\n  - {driver: nvme, bus: nowhere}\n"))
                .hasMessageContaining("<inline>:2:").hasMessageContaining("bus 'nowhere'");
        assertThatThrownBy(() -> MachineSpecs.parse("root-ports: [{id: a}, {id: a}]\n"))
                .hasMessageContaining("duplicate id 'a'");
        assertThatThrownBy(() -> MachineSpecs.parse("accel: hvf\n")).hasMessageContaining("accel must be");
        assertThatThrownBy(() -> MachineSpecs.parse("switches: [{id: s, downstream: []}]\n"))
                .hasMessageContaining("at least one downstream");
    }

    static final String GLOBAL_NATIVE = "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off";

    /** hotplug: native turns q35's ACPI PCI hotplug off (the guest's pciehp gets the slots); acpi is the default. */
    @Test
    void hotplugNativeTurnsQ35AcpiHotplugOff() {
        List<String> acpi = QemuCommand.build(MachineSpecs.parse(TOPO), "qemu", tmp, tmp, false);
        assertThat(acpi).doesNotContain("-global").noneMatch(x -> x.contains("acpi-pci-hotplug"));
        assertThat(QemuCommand.build(MachineSpecs.parse(TOPO + "hotplug: acpi\n"), "qemu", tmp, tmp, false))
                .isEqualTo(acpi);
        MachineSpec n = MachineSpecs.parse(TOPO + "hotplug: native\n");
        assertThat(n.hotplug()).isEqualTo("native");
        List<String> a = QemuCommand.build(n, "qemu", tmp, tmp, false);
        assertThat(a.get(a.indexOf("-global") + 1)).isEqualTo(GLOBAL_NATIVE);
        assertThat(a.stream().filter(x -> x.equals("-global")).count()).isEqualTo(1);
        // the rest of the command line is the same: only the hotplug controller changes
        List<String> rest = new java.util.ArrayList<>(a);
        rest.remove(a.indexOf("-global") + 1);
        rest.remove("-global");
        assertThat(rest).isEqualTo(acpi);
        // root ports keep a chassis/slot pair (a PCIe slot capability: what pciehp drives)
        assertThat(String.join(" ", a)).contains("-device pcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=0");
    }

    @Test
    void hotplugBadValuesGiveLocatedErrors() {
        assertThatThrownBy(() -> MachineSpecs.parse("type: q35\nhotplug: pciehp\n"))
                .isInstanceOf(SpecException.class).hasMessageContaining("<inline>:2:")
                .hasMessageContaining("hotplug must be 'acpi' or 'native', got 'pciehp'");
        assertThatThrownBy(() -> MachineSpecs.parse("type: pc\nhotplug: native\n"))
                .isInstanceOf(SpecException.class).hasMessageContaining("<inline>:2:")
                .hasMessageContaining("q35 option").hasMessageContaining("'pc'");
        assertThat(MachineSpecs.parse("type: pc\nhotplug: acpi\n").hotplug()).isEqualTo("acpi");
        assertThat(MachineSpec.none().hotplug()).isEqualTo("acpi");
    }

    /** The real QEMU takes the global and q35's ACPI device reports ACPI PCI hotplug off (paused, no guest). */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void realQemuTurnsAcpiHotplugOffForNative() {
        for (String mode : List.of("acpi", "native")) {
            MachineSpec s = MachineSpecs.parse("type: q35\nhotplug: " + mode
                    + "\nroot-ports: [{id: rp0}]\nextra-args: [-S]\nready: never\n");
            try (Vm vm = Vm.launch(s, tmp.resolve("case-" + mode), null)) {
                String lpc = vm.qmp().call("qom-get", Json.object().put("path", "/machine")
                        .put("property", "acpi-device")).asText();
                assertThat(lpc).as("q35's acpi-device link").isNotEmpty();
                boolean on = vm.qmp().call("qom-get", Json.object().put("path", lpc)
                        .put("property", "acpi-pci-hotplug-with-bridge-support")).asBoolean();
                assertThat(on).as("ACPI PCI hotplug with hotplug: " + mode).isEqualTo(mode.equals("acpi"));
            }
        }
    }

    /** The generated q35 topology is accepted by the real QEMU (paused, no guest). */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void realQemuAcceptsTheTopology() {
        String spec = TOPO.replace("kernel: /nonexistent/vmlinuz\n", "")
                .replace("  - {driver: p2plab, id: p2p0, bus: dp0, props: {mem-size: 64M, fail-nth: 0}}\n",
                        "  - {driver: nvme, id: rng0, bus: dp0, serial: x1}\n")
                .replace("{id: dp0, acs: true}", "{id: dp0}")
                + "extra-args: [-S]\nready: never\n";
        MachineSpec s = MachineSpecs.parse(spec);
        try (Vm vm = Vm.launch(s, tmp.resolve("case"), null)) {
            JsonNode devs = vm.qmp().call("qom-list", Json.object().put("path", "/machine/peripheral"));
            String all = Json.compact(devs);
            assertThat(all).contains("\"nvme0\"", "\"rng0\"", "\"sw0\"", "\"dp0\"", "\"dp1\"", "\"rp0\"", "\"vser0\"");
            assertThat(vm.qmp().call("qom-get", Json.object().put("path", "/machine/peripheral/rng0")
                    .put("property", "parent_bus")).asText()).contains("dp0");
            assertThat(vm.qmp().call("qom-get", Json.object().put("path", "/machine/peripheral/nvme0")
                    .put("property", "cmb_size_mb")).asInt()).isEqualTo(64);
            assertThat(Files.exists(vm.runDir().resolve("qga.sock"))).isTrue();
            assertThat(vm.runDir().toFile().canRead()).isTrue();
        }
    }
}
