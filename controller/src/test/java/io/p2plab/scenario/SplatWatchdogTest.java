package io.p2plab.scenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The splat watchdog against a real guest: a WARN-format report planted in the guest's kernel log at
 * warning level (KERN_WARNING, /dev/kmsg), which a loglevel=4 console never shows, must fail its case
 * with the splat in the failure message and the whole report (stack included) in kernel.log and
 * kernel-splats.txt; a case that declares it in expect-splats passes; a declared, required splat that
 * never comes fails; expect-fail does not hide a splat; a case that times out after a splat still reports it (the log is read before the
 * kill); a hang report on the console ends a running guest command's wait at once. Needs the lab's guest (`make guest`), like {@link GuestBootTest}; skipped otherwise.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class SplatWatchdogTest {
    @TempDir
    Path tmp;

    /** A WARN()'s report as lib/bug.c prints it, written line by line at level 4 (user facility). */
    static final String PLANT = "for l in '------------[ cut here ]------------'"
            + " 'WARNING: CPU: 0 PID: 1 at mm/hmm.c:1 planted+0x0/0x0'"
            + " 'Modules linked in: p2plab(OE)' 'Call Trace:' ' <TASK>' ' planted_caller+0x10/0x20 [p2plab]'"
            + " ' do_syscall_64+0x82/0x190' ' </TASK>' '---[ end trace 0000000000000000 ]---';"
            + " do echo \"<4>$l\" >/dev/kmsg; done";

    @Test
    void aWarningLevelSplatInTheKernelLogFailsItsCase() throws Exception {
        Path g = GuestBootTest.guest();
        assumeTrue(g != null, "no guest build (make guest)");
        Path gc = Files.createDirectories(tmp.resolve("guest"));
        Files.copy(g.resolve("vmlinuz"), gc.resolve("vmlinuz"));
        Files.copy(g.resolve("initramfs.cpio.gz"), gc.resolve("initramfs.cpio.gz"));
        String plant = PLANT.replace("\\", "\\\\").replace("\"", "\\\"");
        Path f = tmp.resolve("splat.yaml");
        Files.writeString(f, """
                name: splat
                timeout: 200
                matrix:
                  plant: [unexpected, expected, missing, xfail]
                expect-fail: [{plant: xfail, reason: the last step fails on purpose}]
                vars:
                  plant_cmd: "%2$s"
                expect-splats:
                  - {plant: expected, match: '^ planted_caller\\+', reason: the test plants it}
                  - {plant: missing, match: 'never_printed', reason: the test expects what never comes}
                machine:
                  kernel: %1$s/vmlinuz
                  initrd: %1$s/initramfs.cpio.gz
                  # loglevel=4: a warning-level message never reaches the serial console
                  append: console=ttyS0 panic=-1 loglevel=4 p2plab.noload=1
                  memory: 512M
                steps:
                  - boot: {}
                  - guest: {shell: "case ${plant} in missing) exit 0;; esac; ${plant_cmd}", save: plant}
                  - guest: {shell: "case ${plant} in xfail) exit 1;; esac; echo fine", stdout: fine}
                """.formatted(gc, plant));
        // 4. a case that times out after a splat: the log is read before the kill
        Path t = tmp.resolve("splat-timeout.yaml");
        Files.writeString(t, """
                name: splat-timeout
                timeout: 40
                machine:
                  kernel: %1$s/vmlinuz
                  initrd: %1$s/initramfs.cpio.gz
                  append: console=ttyS0 panic=-1 loglevel=4 p2plab.noload=1
                  memory: 512M
                steps:
                  - boot: {}
                  - guest: {shell: "%2$s", save: plant}
                  - guest: {shell: "sleep 600", timeout: 700}
                """.formatted(gc, plant));
        // 5. a hang report on the console while a guest command runs: the step stops waiting at once
        Path h = tmp.resolve("splat-stuck.yaml");
        Files.writeString(h, """
                name: splat-stuck
                timeout: 200
                machine:
                  kernel: %1$s/vmlinuz
                  initrd: %1$s/initramfs.cpio.gz
                  append: console=ttyS0 panic=-1 loglevel=4 p2plab.noload=1
                  memory: 512M
                steps:
                  - boot: {}
                  - guest: {shell: "(sleep 2; echo '<3>INFO: task planted:1 blocked for more than 120 seconds.' >/dev/kmsg) >/dev/null 2>&1 &"}
                  - guest: {shell: "sleep 150", timeout: 170}
                """.formatted(gc));
        Path junit = tmp.resolve("j.xml");
        Path out = tmp.resolve("out");
        EngineRealQemuTest.Run r = EngineRealQemuTest.main("run", "--out", out.toString(), "--junit", junit.toString(),
                f.toString(), t.toString(), h.toString());
        assertThat(r.rc()).as(r.out() + r.err()).isEqualTo(1);
        assertThat(r.out()).contains("1 passed, 5 failed, 0 skipped");

        // 1. planted, not expected: FAILED with the splat in the message and the whole report kept
        Path un = out.resolve("splat_plant=unexpected_");
        assertThat(r.out()).containsPattern("splat\\[plant=unexpected\\] +FAILED .*kernel splat \\(WARNING, kernel.log\\): "
                + "WARNING: CPU: 0 PID: 1 at mm/hmm.c:1 planted\\+0x0/0x0");
        String xml = Files.readString(junit);
        assertThat(xml).contains("<failure message=\"kernel splat (WARNING, kernel.log): WARNING: CPU: 0 PID: 1 at mm/hmm.c:1 planted+0x0/0x0\"",
                " planted_caller+0x10/0x20 [p2plab]", "---[ end trace 0000000000000000 ]---");
        assertThat(Files.readString(un.resolve("kernel.log"))).contains("Linux version", "WARNING: CPU: 0 PID: 1 at mm/hmm.c:1",
                "planted_caller+0x10/0x20", "---[ end trace");
        assertThat(Files.readString(un.resolve("kernel-splats.txt"))).contains("UNEXPECTED", "[ cut here ]",
                "Modules linked in: p2plab(OE)", "planted_caller", "do_syscall_64", "---[ end trace");
        // the console (loglevel=4) never saw it: only reading the kernel log catches it
        assertThat(Files.readString(un.resolve("console.log"))).contains("P2PLAB-READY").doesNotContain("planted");
        assertThat(Files.readString(un.resolve("steps.log"))).contains("kernel splat WARNING (kernel.log) UNEXPECTED");

        // 2. planted and declared in expect-splats (matched on a stack frame): PASSED, report still kept
        assertThat(r.out()).containsPattern("splat\\[plant=expected\\] +PASSED");
        assertThat(Files.readString(out.resolve("splat_plant=expected_/kernel-splats.txt")))
                .contains("expected: the test plants it", "planted_caller");

        // 3. declared, required, never printed: FAILED
        assertThat(xml).contains("expected kernel splat /never_printed/ (the test expects what never comes");

        // 3b. an expected failure does not hide an unexpected splat: FAILED, not XFAIL
        assertThat(r.out()).containsPattern("splat\\[plant=xfail\\] +FAILED .*kernel splat \\(WARNING, kernel.log\\)");
        assertThat(xml).contains("expect-fail covers step failures, not kernel splats");

        // 4. timed out after the splat: both in the message, the report from the log read before the kill
        assertThat(r.out()).containsPattern("splat-timeout +FAILED .*kernel splat \\(WARNING, kernel.log\\): WARNING: CPU: 0 "
                + "PID: 1 at mm/hmm.c:1 planted\\+0x0/0x0 \\| case timeout of 40 s exceeded in step 3");
        assertThat(Files.readString(out.resolve("splat-timeout/kernel-splats.txt"))).contains("planted_caller");

        // 5. failed within seconds, not after the 150 s command
        assertThat(r.out()).containsPattern("splat-stuck +FAILED +([0-9]|[1-5][0-9])\\.[0-9]s +kernel splat \\(HUNG_TASK, kernel.log\\): "
                + "INFO: task planted:1 blocked for more than 120 seconds\\. \\| step 3 ");
        assertThat(xml).containsPattern("console watchdog: the guest is stuck while the command runs: \\[ *[0-9.]+\\] "
                + "INFO: task planted:1 blocked");

        assertThat(EngineRealQemuTest.qemuChildren()).isZero();
    }
}
