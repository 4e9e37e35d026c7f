package io.p2plab.vm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The host's TSC frequency, for the guest kernel's {@code tsc_early_khz=}.
 *
 * <p>Under TCG the guest's TSC is the host's own counter (QEMU's {@code cpu_get_ticks()} reads the host
 * TSC), but the guest kernel calibrates its rate at boot against the emulated PIT. On a loaded host
 * that calibration can be wildly wrong: "tsc: PIT calibration deviates from PMTIMER: 171569 2600030 /
 * Using PIT calibration value / Detected 171.569 MHz processor" (2 of 533 lab boots, both under load),
 * and the later refinement keeps it (it only corrects within 1 %). The guest clock then runs 6-15x too
 * fast: a 30 s stress measured 460 s, and every guest timeout, the RCU stall detector (21 s) and the
 * soft-lockup watchdog (20 s) fire after a few real seconds. Passing the host's rate skips the early
 * calibration (the refinement against the PM timer still runs).
 *
 * <p>Source: P2PLAB_TSC_KHZ (a number, or 0 to pass nothing), else the host kernel's own calibration in
 * its log ("tsc: Refined TSC clocksource calibration: 2600.001 MHz", else "tsc: Detected 2600.000 MHz
 * processor"), else /proc/cpuinfo's "cpu MHz" when the CPU has an invariant TSC (constant_tsc and
 * nonstop_tsc: the TSC then ticks at the nominal rate). Unknown: nothing is passed (the guest calibrates).
 */
public final class HostTsc {
    private HostTsc() {}

    private static final Pattern REFINED = Pattern.compile("tsc: Refined TSC clocksource calibration: (\\d+)\\.(\\d{1,3})\\d* MHz");
    private static final Pattern DETECTED = Pattern.compile("tsc: Detected (\\d+)\\.(\\d{1,3})\\d* MHz processor");
    private static final Pattern CPU_MHZ = Pattern.compile("(?m)^cpu MHz\\s*:\\s*(\\d+)\\.(\\d{1,3})");
    private static volatile OptionalLong cached;

    /** The host TSC rate in kHz, or empty when it is not known (or P2PLAB_TSC_KHZ=0). */
    public static OptionalLong khz() {
        OptionalLong c = cached;
        if (c == null) cached = c = find(System.getenv("P2PLAB_TSC_KHZ"), HostTsc::hostKernelLog, HostTsc::cpuinfo);
        return c;
    }

    static OptionalLong find(String env, java.util.function.Supplier<String> kernelLog, java.util.function.Supplier<String> cpuinfo) {
        if (env != null && !env.isBlank()) {
            try {
                long v = Long.parseLong(env.trim());
                return v > 0 ? OptionalLong.of(v) : OptionalLong.empty();
            } catch (NumberFormatException e) {
                throw new VmException("P2PLAB_TSC_KHZ must be the host TSC rate in kHz (or 0), not '" + env + "'");
            }
        }
        OptionalLong k = fromKernelLog(kernelLog.get());
        return k.isPresent() ? k : fromCpuinfo(cpuinfo.get());
    }

    /** The last refined calibration in a kernel log, else the last "Detected ... MHz processor". */
    static OptionalLong fromKernelLog(String log) {
        if (log == null) return OptionalLong.empty();
        OptionalLong v = last(REFINED.matcher(log));
        return v.isPresent() ? v : last(DETECTED.matcher(log));
    }

    static OptionalLong fromCpuinfo(String cpuinfo) {
        if (cpuinfo == null) return OptionalLong.empty();
        Matcher flags = Pattern.compile("(?m)^flags\\s*:(.*)$").matcher(cpuinfo);
        if (!flags.find()) return OptionalLong.empty();
        List<String> f = List.of(flags.group(1).trim().split("\\s+"));
        if (!f.contains("constant_tsc") || !f.contains("nonstop_tsc")) return OptionalLong.empty();
        Matcher m = CPU_MHZ.matcher(cpuinfo);
        return m.find() ? OptionalLong.of(khz(m)) : OptionalLong.empty();
    }

    private static OptionalLong last(Matcher m) {
        OptionalLong v = OptionalLong.empty();
        while (m.find()) v = OptionalLong.of(khz(m));
        return v.isPresent() && v.getAsLong() > 0 ? v : OptionalLong.empty();
    }

    private static long khz(Matcher m) {
        String frac = (m.group(2) + "00").substring(0, 3);
        return Long.parseLong(m.group(1)) * 1000 + Long.parseLong(frac);
    }

    /** The host kernel's log (dmesg), or null when it cannot be read (no permission, no dmesg). */
    private static String hostKernelLog() {
        try {
            Process p = new ProcessBuilder("dmesg").redirectErrorStream(false)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return null;
            }
            return p.exitValue() == 0 ? new String(out, StandardCharsets.UTF_8) : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    private static String cpuinfo() {
        try {
            return Files.readString(Path.of("/proc/cpuinfo"));
        } catch (IOException e) {
            return null;
        }
    }
}
