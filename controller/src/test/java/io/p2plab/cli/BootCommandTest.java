package io.p2plab.cli;

import io.p2plab.vm.MachineSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** p2plab boot: the machine file with --set overrides and --append (no QEMU started). */
class BootCommandTest {
    @TempDir
    Path tmp;

    private MachineSpec load(Path machine, String... extra) throws Exception {
        BootCommand b = new BootCommand();
        String[] args = new String[extra.length + 2];
        args[0] = "--machine";
        args[1] = machine.toString();
        System.arraycopy(extra, 0, args, 2, extra.length);
        new CommandLine(b).parseArgs(args);
        return b.load();
    }

    @Test
    void setAndAppendOverrideTheMachineFile() throws Exception {
        Path m = tmp.resolve("m.yaml");
        Files.writeString(m, """
                type: q35
                cpu: max
                memory: 1G
                kernel: /k/vmlinuz
                append: console=ttyS0 quiet
                devices:
                  - {driver: p2plab, id: p2p0}
                """);
        MachineSpec plain = load(m);
        assertThat(plain.cpu()).isEqualTo("max");
        assertThat(plain.iommu()).isFalse();

        MachineSpec s = load(m, "--set", "cpu=EPYC", "--set", "iommu=true", "--set", "smp=2",
                "--append", "p2plab.dmirror=1");
        assertThat(s.cpu()).isEqualTo("EPYC");
        assertThat(s.iommu()).isTrue();
        assertThat(s.smp()).isEqualTo(2);
        assertThat(s.append()).isEqualTo("console=ttyS0 quiet p2plab.dmirror=1");
        assertThat(s.memory()).isEqualTo("1G");
        assertThat(s.devices()).hasSize(1);
    }

    @Test
    void theDefaultMachineLoads() throws Exception {
        Path root = Path.of(System.getProperty("user.dir")).getParent();
        MachineSpec d = load(root.resolve("scenarios/machines/default.yaml"), "--set", "cpu=Nehalem");
        assertThat(d.cpu()).isEqualTo("Nehalem");
        assertThat(d.ready().pattern()).isEqualTo("P2PLAB-READY");
        assertThat(d.devices()).extracting(MachineSpec.Device::id).contains("p2p0", "p2p1", "p2p2", "nvme0");
    }
}
