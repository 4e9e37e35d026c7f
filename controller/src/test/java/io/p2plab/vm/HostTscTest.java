package io.p2plab.vm;

import org.junit.jupiter.api.Test;

import java.util.OptionalLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Where the host TSC rate for the guest's tsc_early_khz= comes from. */
class HostTscTest {
    static final String LOG = """
            [    0.000065] tsc: Detected 2600.000 MHz processor
            [    0.398031] clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x257a3c3232d
            [    2.429525] tsc: Refined TSC clocksource calibration: 2600.001 MHz
            """;
    static final String CPUINFO = """
            processor	: 0
            cpu MHz		: 2599.998
            flags		: fpu vme tsc msr constant_tsc nonstop_tsc tsc_known_freq
            """;

    @Test
    void refinedCalibrationWinsThenDetectedThenInvariantCpuinfo() {
        assertThat(HostTsc.fromKernelLog(LOG)).isEqualTo(OptionalLong.of(2_600_001));
        assertThat(HostTsc.fromKernelLog("[    0.000065] tsc: Detected 3417.6 MHz processor\n")).isEqualTo(OptionalLong.of(3_417_600));
        assertThat(HostTsc.find(null, () -> null, () -> CPUINFO)).isEqualTo(OptionalLong.of(2_599_998));
        assertThat(HostTsc.find(null, () -> LOG, () -> CPUINFO)).isEqualTo(OptionalLong.of(2_600_001));
    }

    @Test
    void aTscThatIsNotInvariantOrNothingKnownGivesNothing() {
        assertThat(HostTsc.fromCpuinfo(CPUINFO.replace(" nonstop_tsc", ""))).isEmpty();
        assertThat(HostTsc.find(null, () -> "no tsc lines", () -> null)).isEmpty();
        assertThat(HostTsc.fromKernelLog(null)).isEmpty();
    }

    @Test
    void theEnvironmentOverridesAndZeroTurnsItOff() {
        assertThat(HostTsc.find("1999999", () -> LOG, () -> CPUINFO)).isEqualTo(OptionalLong.of(1_999_999));
        assertThat(HostTsc.find("0", () -> LOG, () -> CPUINFO)).isEmpty();
        assertThatThrownBy(() -> HostTsc.find("fast", () -> LOG, () -> CPUINFO)).hasMessageContaining("P2PLAB_TSC_KHZ");
    }

    @Test
    void tcgCommandLinesCarryTheHostRateKvmOnesAndExplicitOnesDoNot(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        MachineSpec s = MachineSpecs.parse("type: q35\nmemory: 512M\nkernel: /nonexistent/vmlinuz\nappend: console=ttyS0\n");
        String tcg = String.join(" ", QemuCommand.build(s, "qemu", tmp, tmp, false));
        OptionalLong host = HostTsc.khz();
        if (host.isPresent())
            assertThat(tcg).contains("-append console=ttyS0 tsc_early_khz=" + host.getAsLong());
        else
            assertThat(tcg).contains("-append console=ttyS0").doesNotContain("tsc_early_khz");
        assertThat(String.join(" ", QemuCommand.build(s, "qemu", tmp, tmp, true))).doesNotContain("tsc_early_khz");
        MachineSpec own = MachineSpecs.parse("type: q35\nmemory: 512M\nkernel: /nonexistent/vmlinuz\nappend: console=ttyS0 tsc_early_khz=1000\n");
        assertThat(String.join(" ", QemuCommand.build(own, "qemu", tmp, tmp, false)))
                .contains("tsc_early_khz=1000").doesNotContain("tsc_early_khz=1000 tsc_early_khz");
    }
}
