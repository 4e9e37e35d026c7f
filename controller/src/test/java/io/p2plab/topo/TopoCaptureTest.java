package io.p2plab.topo;

import io.p2plab.ga.GuestAgent;
import org.junit.jupiter.api.Test;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The topology parser and renderers on a real capture: the lab's default topology with ACS on the switch
 * ports, intel-iommu and an EPYC CPU (the guest kernel enabled ACS P2P Request Redirect and routes every
 * pair through the host bridge), recorded with `p2plab topo --machine ... --raw`.
 */
class TopoCaptureTest {
    static String real() throws Exception {
        return Files.readString(Path.of("src/test/resources/topo/acs-iommu-epyc.txt"));
    }

    @Test
    void parsesTheTreeAcsGroupsAndKernelVerdicts() throws Exception {
        Topology t = TopoCapture.parse(real());
        assertThat(t.devices()).hasSize(17);
        Topology.Dev p2p0 = t.devices().get("0000:08:00.0");
        assertThat(p2p0.kind()).isEqualTo("p2plab");
        assertThat(p2p0.parent()).isEqualTo("0000:04:00.0");
        assertThat(p2p0.driver()).isEqualTo("p2plab");
        assertThat(p2p0.iommuGroup()).isEqualTo("11");
        assertThat(p2p0.p2pmemSize()).isEqualTo(128L << 20);
        assertThat(p2p0.portType()).isEqualTo(Topology.PortType.ENDPOINT);
        Topology.Dev dp1 = t.devices().get("0000:04:00.0");
        assertThat(dp1.portType()).isEqualTo(Topology.PortType.DOWNSTREAM);
        assertThat(dp1.parent()).isEqualTo("0000:03:00.0");
        assertThat(dp1.acs().redirects()).isTrue();
        assertThat(dp1.acs().control()).isEqualTo("SV+ TB- RR+ CR+ UF+ DT-");
        assertThat(t.devices().get("0000:03:00.0").portType()).isEqualTo(Topology.PortType.UPSTREAM);
        assertThat(t.devices().get("0000:03:00.0").acs()).isNull();
        assertThat(t.devices().get("0000:00:01.0").portType()).isEqualTo(Topology.PortType.ROOT_PORT);
        assertThat(t.devices().get("0000:00:01.0").parent()).isNull();
        assertThat(t.devices().get("0000:06:00.0").kind()).isEqualTo("nvme");
        assertThat(t.devices().get("0000:06:00.0").p2pmemSize()).isEqualTo(64L << 20);
        assertThat(t.iommuGroups().get("5")).containsExactly("0000:00:1f.0", "0000:00:1f.2", "0000:00:1f.3");
        assertThat(t.iommuGroups().keySet()).startsWith("0", "1", "2");   // numeric order, not "1", "10"
        assertThat(t.p2plabIds()).containsExactlyInAnyOrderEntriesOf(Map.of("0000:08:00.0", 0, "0000:07:00.0", 1, "0000:02:00.0", 2));
        assertThat(t.pairs()).hasSize(6).allMatch(p -> p.map().equals("host-bridge") && p.error() == null);
        assertThat(t.pair("0000:08:00.0", "0000:07:00.0").distance()).isEqualTo(4);
        assertThat(t.pair("0000:08:00.0", "0000:02:00.0").distance()).isEqualTo(6);
        assertThat(t.providers()).containsExactly("0000:02:00.0", "0000:06:00.0", "0000:07:00.0", "0000:08:00.0");
        assertThat(t.notes()).isEmpty();
        // depth-first order follows the tree
        List<String> order = t.depthFirst().stream().map(e -> e.getKey().bdf()).toList();
        assertThat(order.indexOf("0000:08:00.0")).isEqualTo(order.indexOf("0000:04:00.0") + 1);
    }

    @Test
    void rendersTableAndWellFormedSvg() throws Exception {
        Topology t = TopoCapture.parse(real()).withQdevIds(Map.of("0000:08:00.0", "p2p0", "0000:07:00.0", "p2p1",
                "0000:04:00.0", "dp1", "0000:00:01.0", "rp1"));
        String txt = TopoRender.text(t);
        assertThat(txt).contains("rp1 (root port)", "│  └─ p2p0 (p2plab)", "SV+ TB- RR+ CR+ UF+ DT-")
                .containsPattern("p2p0 08:00.0 \\(p2plab0\\)\\s+-\\s+host-bridge d=4\\s+host-bridge d=6")
                .contains("Other P2PDMA providers", "06:00.0 nvme")
                .contains("IOMMU groups: 0: 00:00.0; 1: rp1 00:01.0;");
        String svg = TopoRender.svg(t, "case <x> & y");
        var doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
        assertThat(doc.getDocumentElement().getTagName()).isEqualTo("svg");
        assertThat(svg).contains("case &lt;x&gt; &amp; y", ">host-bridge d=4<", "ACS RR+", "#c62828", "p2p0 · p2plab");
        assertThat(TopoRender.html(t, "t")).startsWith("<!DOCTYPE html>").contains("<svg", "<pre>PCI tree");
    }

    static final String MINI = """
            @dev 0000:00:01.0
            path /sys/devices/pci0000:00/0000:00:01.0
            ids 0x1234 0x11f0 0x058000
            p2pmem 1048576 1
            @dev 0000:00:02.0
            path /sys/devices/pci0000:00/0000:00:02.0
            ids 0x1234 0x11f0 0x058000
            p2pmem 1048576 1
            @kernel
            config 0000:00:01.0 3412f011
            config 0000:00:02.0 3412f011
            dev 0 0000:00:01.0 flags=0x1 p2p_size=1048576 mem_size=2097152
            dev 1 0000:00:02.0 flags=0x1 p2p_size=1048576 mem_size=2097152
            pair 0 1 0000:00:01.0 0000:00:02.0 map=not-supported distance=-1 bus_offset=0
            pair 1 0 0000:00:02.0 0000:00:01.0 error=EOPNOTSUPP
            """;

    @Test
    void toolErrorsAndMissingToolAreShownNotHidden() {
        Topology t = TopoCapture.parse(MINI);
        assertThat(t.pair("0000:00:01.0", "0000:00:02.0").verdict()).isEqualTo("not-supported");
        assertThat(t.pair("0000:00:02.0", "0000:00:01.0").verdict()).isEqualTo("error EOPNOTSUPP");
        assertThat(TopoRender.text(t)).contains("error EOPNOTSUPP");
        // a guest without the tool: config spaces through od, no verdicts, and the note says why
        String noTool = MINI.substring(0, MINI.indexOf("config ")) + "@missing-tool\n@od 0000:00:01.0\n000000 34 12 f0 11\n000004\n"
                + "@od 0000:00:02.0\n000000 34 12 f0 11 00 00 10 00\n000008\n";
        Topology old = TopoCapture.parse(noTool);
        assertThat(old.pairs()).isEmpty();
        assertThat(old.notes()).singleElement().asString().contains("no " + TopoCapture.TOOL);
        assertThat(TopoRender.text(old)).contains("note: the guest has no", "fewer than two p2plab devices");
        // an older tool without --config: no ACS, and a note instead of a silent "-"
        Topology noConfig = TopoCapture.parse(MINI.replaceAll("config 0000:00:0[12].0 3412f011\n", ""));
        assertThat(noConfig.notes()).singleElement().asString().contains("predates --config");
    }

    @Test
    void malformedOutputIsAnErrorNamingTheLine() throws Exception {
        String real = real();
        assertThatThrownBy(() -> TopoCapture.parse(real.substring(0, real.indexOf("@driver"))))
                .isInstanceOf(TopoException.class).hasMessageContaining("ends before the kernel's P2P verdicts");
        assertThatThrownBy(() -> TopoCapture.parse("")).isInstanceOf(TopoException.class).hasMessageContaining("no PCI device");
        assertThatThrownBy(() -> TopoCapture.parse(MINI.replaceFirst("ids 0x1234", "ids 0xzz")))
                .isInstanceOf(TopoException.class).hasMessageContaining("line 3 'ids 0xzz");
        assertThatThrownBy(() -> TopoCapture.parse(MINI.replace("config 0000:00:01.0 3412f011", "config 0000:00:01.0 3412f01")))
                .isInstanceOf(TopoException.class).hasMessageContaining("line 10 'config 0000:00:01.0 3412f01': unexpected line");
        assertThatThrownBy(() -> TopoCapture.parse(MINI.replace("config 0000:00:01.0 3412f011", "@od 0000:00:01.0\n001ff0 00 01")))
                .isInstanceOf(TopoException.class).hasMessageContaining("beyond 4096");
        assertThatThrownBy(() -> TopoCapture.parse(MINI.replace("pair 1 0", "pair oops")))
                .isInstanceOf(TopoException.class).hasMessageContaining("unexpected line from");
        assertThatThrownBy(() -> TopoCapture.parse(MINI.replace("0000:00:02.0 0000:00:01.0 error", "0000:00:09.0 0000:00:01.0 error")))
                .isInstanceOf(TopoException.class).hasMessageContaining("names 0000:00:09.0, which sysfs does not list");
        assertThatThrownBy(() -> TopoCapture.parse(MINI.replace("path /sys/devices/pci0000:00/0000:00:02.0", "path /sys/devices/x")))
                .isInstanceOf(TopoException.class).hasMessageContaining("does not end with 0000:00:02.0");
    }

    @Test
    void odRepeatLinesExpandToTheWholeConfigSpace() {
        TopoCapture.OdDump d = new TopoCapture.OdDump();
        for (String l : List.of("0000000 86 80 c0 29 00 00 00 00 00 00 00 06 00 00 00 00", "0000010 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
                "*", "0000100 0d 00 01 00 03 00 05 00 00 00 00 00 00 00 00 00", "0000110 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", "*", "0001000"))
            d.line(l);
        byte[] b = d.bytes();
        assertThat(b).hasSize(4096);
        assertThat(b[0] & 0xff).isEqualTo(0x86);
        assertThat(b[0x100] & 0xff).isEqualTo(0x0d);
        assertThat(b[0x104] & 0xff).isEqualTo(0x03);
        assertThat(b[0x80]).isZero();
        assertThat(b[0xfff]).isZero();
    }

    @Test
    void aFailedGuestCommandIsAnError() {
        assertThatThrownBy(() -> TopoCapture.capture((argv, budget) -> new GuestAgent.ExecResult(1, 3, null, new byte[0],
                "no /sys/bus/pci/devices in the guest\n".getBytes(StandardCharsets.UTF_8), false), Duration.ofSeconds(1)))
                .isInstanceOf(TopoException.class).hasMessageContaining("exited with 3: no /sys/bus/pci/devices");
    }
}
