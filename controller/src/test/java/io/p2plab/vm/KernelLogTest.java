package io.p2plab.vm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The splat classifier on real-format reports (src/test/resources/kernel-logs) and on benign lines. */
class KernelLogTest {
    static final Path DIR = Path.of("src/test/resources/kernel-logs");

    static String read(String name) throws IOException {
        return Files.readString(DIR.resolve(name));
    }

    /** file | kind | headline starts with | first line of the report | last line of the report */
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "warning.log              | WARNING     | WARNING: CPU: 1 PID: 312 at lib/refcount.c:28 refcount_warn_saturate | [ cut here ] | ---[ end trace 0000000000000000 ]---",
            "kasan.log                | KASAN       | BUG: KASAN: wild-memory-access in do_raw_spin_lock+0x11c/0x270 | ====== | ======",
            "lockdep-circular.log     | LOCKDEP     | WARNING: possible circular locking dependency detected | ====== | </TASK>",
            "lockdep-inconsistent.log | LOCKDEP     | WARNING: inconsistent lock state | ====== | </TASK>",
            "rcu-stall-tcg.log        | RCU_STALL   | rcu: INFO: rcu_preempt detected stalls on CPUs/tasks: | rcu: INFO: rcu_preempt | </TASK>",
            "rcu-stall.log            | RCU_STALL   | rcu: INFO: rcu_preempt self-detected stall on CPU | rcu: INFO: rcu_preempt | </TASK>",
            "soft-lockup.log          | SOFT_LOCKUP | watchdog: BUG: soft lockup - CPU#0 stuck for 26s! | watchdog: BUG: soft lockup | </TASK>",
            "hung-task.log            | HUNG_TASK   | INFO: task kworker/u4:2:88 blocked for more than 122 seconds. | INFO: task | </TASK>",
            "kernel-bug.log           | BUG         | kernel BUG at include/linux/mm.h:1490! | [ cut here ] | ---[ end trace",
            "ubsan.log                | UBSAN       | UBSAN: shift-out-of-bounds in kmod/p2plab_dma.c:88:20 | [ cut here ] | ---[ end trace ]---",
            "kmemleak.log             | KMEMLEAK    | kmemleak: 2 new suspected memory leaks | kmemleak: | kmemleak:",
    })
    void findsTheWholeReport(String file, String kind, String headline, String first, String last) throws IOException {
        List<KernelLog.Splat> s = KernelLog.find(read(file.trim()));
        assertThat(s).as(file).hasSize(1);
        KernelLog.Splat r = s.get(0);
        assertThat(r.kind()).isEqualTo(KernelLog.Kind.valueOf(kind.trim()));
        assertThat(r.headline()).startsWith(headline.trim());
        List<String> lines = r.report().lines().toList();
        assertThat(lines.get(0)).contains(first.trim());
        assertThat(lines.get(lines.size() - 1)).contains(last.trim());
        // the surrounding driver messages are not part of it
        assertThat(r.report()).doesNotContain("p2plab 0000:", "Performance Events", "smpboot:");
    }

    /**
     * Captured on the lab's own guest (Debian 7.3.4, TCG) with provoke/splat_provoke.c: what this
     * kernel really prints. Note 7.3's WARN headline ("WARNING: FILE:LINE at FUNC, CPU#0: COMM/PID") and
     * the console's shell prompt in front of a kernel line.
     */
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "real-warning.log        | WARNING   | 1 | WARNING: splat_provoke.c:38 at provoke_write+0x196/0x1ec [splat_provoke], CPU#0: sh/148 | [ cut here ] | ---[ end trace 0000000000000000 ]---",
            "real-ubsan.log          | UBSAN     | 1 | UBSAN: array-index-out-of-bounds in splat_provoke.c:21:10 | [ cut here ] | ---[ end trace ]---",
            "real-hung-task.log      | HUNG_TASK | 2 | INFO: task splat_hung:149 blocked for more than 5 seconds. | INFO: task splat_hung | </TASK>",
            "real-rcu-self-stall.log | RCU_STALL | 1 | rcu: INFO: rcu_preempt self-detected stall on CPU | rcu: INFO: | </TASK>",
            "real-oops-panic-console.log | OOPS  | 2 | BUG: kernel NULL pointer dereference, address: 0000000000000000 | BUG: kernel NULL | ---[ end trace",
    })
    void realReportsFromTheLabKernel(String file, String kind, int count, String headline, String first, String last) throws IOException {
        List<KernelLog.Splat> s = KernelLog.find(read(file.trim()));
        assertThat(s).as(file).hasSize(count);
        KernelLog.Splat r = s.get(0);
        assertThat(r.kind()).isEqualTo(KernelLog.Kind.valueOf(kind.trim()));
        assertThat(r.headline()).isEqualTo(headline.trim());
        List<String> lines = r.report().lines().toList();
        assertThat(lines.get(0)).contains(first.trim());
        assertThat(lines.get(lines.size() - 1)).contains(last.trim());
        assertThat(r.report()).contains("Call Trace:").doesNotContain("p2plab-hmm:", "splat_provoke: -");
    }

    @Test
    void realOopsOnTheConsoleThenThePanicAndTheReboot() throws IOException {
        List<KernelLog.Splat> s = KernelLog.find(read("real-oops-panic-console.log"));
        assertThat(s).extracting(KernelLog.Splat::kind).containsExactly(KernelLog.Kind.OOPS, KernelLog.Kind.PANIC);
        assertThat(s.get(0).report()).contains("Oops: Oops: 0000 [#1] SMP NOPTI", "provoke_write");
        // the shell prompt the kernel line landed after is not part of the key (the same report in kernel.log)
        assertThat(s.get(0).key()).startsWith("[    5.993416] BUG: kernel NULL pointer dereference");
        assertThat(s.get(1).headline()).startsWith("Kernel panic - not syncing: Fatal exception");
        assertThat(s.get(1).report()).doesNotContain("BIOS-e820");
    }

    @Test
    void reportsKeepTheirStackTraces() throws IOException {
        assertThat(KernelLog.find(read("warning.log")).get(0).report())
                .contains("refcount_t: underflow", "Call Trace:", "p2plab_dmirror_release+0x1a0/0x2f0 [p2plab]", "do_exit");
        assertThat(KernelLog.find(read("kasan.log")).get(0).report())
                .contains("Write of size 4 at addr ff1100010009a0a8", "<IRQ>", "handle_edge_irq", "identify_cpu");
        KernelLog.Splat lockdep = KernelLog.find(read("lockdep-circular.log")).get(0);
        assertThat(lockdep.report()).contains("-> #1 (&dmirror->mutex)", "*** DEADLOCK ***", "stack backtrace:",
                "dmirror_fault+0x1a0/0x2f0 [p2plab]");
        // text: the messages without timestamps, for expected-splat patterns
        assertThat(lockdep.text()).contains("\nWARNING: possible circular locking dependency detected\n")
                .contains("\n dump_stack_lvl+0x77/0xb0\n")     // stack frames keep their indentation
                .doesNotContain("[   33.");
        assertThat(KernelLog.find(read("hung-task.log")).get(0).report()).contains("state:D", "p2plab_remove+0x9c/0x1a0");
        // captured on the lab's guest (TCG, overloaded host): CPU 1's NMI backtrace and the GP kthread's
        // starvation and stack belong to the one stall report
        assertThat(KernelLog.find(read("rcu-stall-tcg.log")).get(0).report()).contains("NMI backtrace for cpu 1",
                "Possible timer handling issue on cpu=1", "rcu_preempt kthread starved for 5248 jiffies", "rcu_gp_kthread+0x9f/0x140");
    }

    @Test
    void oopsAndThePanicItCausesAreTwoReports() throws IOException {
        List<KernelLog.Splat> s = KernelLog.find(read("oops-null.log"));
        assertThat(s).extracting(KernelLog.Splat::kind).containsExactly(KernelLog.Kind.OOPS, KernelLog.Kind.PANIC);
        assertThat(s.get(0).headline()).isEqualTo("BUG: kernel NULL pointer dereference, address: 0000000000000008");
        // the "Oops: Oops: 0000 [#1]" line belongs to the BUG: line's report
        assertThat(s.get(0).report()).contains("#PF: supervisor read access", "Oops: Oops: 0000 [#1] SMP NOPTI",
                "__fput+0xe6/0x2b0", "CR2: 0000000000000008").endsWith("---[ end trace 0000000000000000 ]---");
        assertThat(s.get(1).headline()).startsWith("Kernel panic - not syncing: Fatal exception");
        assertThat(s.get(1).report()).endsWith("---[ end Kernel panic - not syncing: Fatal exception ]---");
    }

    @Test
    void aLogWithEverySplatFindsThemAllInOrder() throws IOException {
        String all = String.join("\n", read("benign-default-boot.log"), read("warning.log"), read("lockdep-circular.log"),
                read("kasan.log"), read("rcu-stall.log"), read("hung-task.log"), read("soft-lockup.log"),
                read("kernel-bug.log"), read("ubsan.log"), read("oops-null.log"), read("lockdep-inconsistent.log"),
                read("kmemleak.log"));
        assertThat(KernelLog.find(all)).extracting(KernelLog.Splat::kind).containsExactly(
                KernelLog.Kind.WARNING, KernelLog.Kind.LOCKDEP, KernelLog.Kind.KASAN, KernelLog.Kind.RCU_STALL,
                KernelLog.Kind.HUNG_TASK, KernelLog.Kind.SOFT_LOCKUP, KernelLog.Kind.BUG, KernelLog.Kind.UBSAN,
                KernelLog.Kind.OOPS, KernelLog.Kind.PANIC, KernelLog.Kind.LOCKDEP, KernelLog.Kind.KMEMLEAK);
    }

    @Test
    void everyLogFormatAndLevelCounts() {
        // dmesg -r, /dev/kmsg records, console without timestamps, caller ids; the level is irrelevant
        assertThat(KernelLog.headline("<4>[   12.3] WARNING: CPU: 0 PID: 1 at mm/hmm.c:1 planted+0x0/0x0")).isEqualTo(KernelLog.Kind.WARNING);
        assertThat(KernelLog.headline("12,812,2539940,-;WARNING: CPU: 0 PID: 1 at mm/hmm.c:1 planted+0x0/0x0")).isEqualTo(KernelLog.Kind.WARNING);
        assertThat(KernelLog.headline("WARNING: CPU: 0 PID: 1 at mm/hmm.c:1 planted+0x0/0x0\r")).isEqualTo(KernelLog.Kind.WARNING);
        assertThat(KernelLog.headline("[   12.300000][    T1] BUG: Bad page state in process hmm-tests  pfn:10a40")).isEqualTo(KernelLog.Kind.BUG);
        assertThat(KernelLog.headline("[    7.1] ------------[ cut here ]------------")).isNull();
        assertThat(KernelLog.message("<4>[   12.300000] WARNING: x")).isEqualTo("WARNING: x");
        List<KernelLog.Splat> s = KernelLog.find(List.of("4,100,1,-;------------[ cut here ]------------",
                "4,101,2,-;WARNING: CPU: 0 PID: 1 at mm/hmm.c:1 planted+0x0/0x0", "4,102,3,-;Call Trace:",
                "4,103,4,-; <TASK>", "4,104,5,-; planted_caller+0x0/0x0", "4,105,6,-; </TASK>",
                "4,106,7,-;---[ end trace 0000000000000000 ]---", "6,107,8,-;p2plab 0000:01:00.0: next"));
        assertThat(s).hasSize(1);
        assertThat(s.get(0).start()).isZero();
        assertThat(s.get(0).end()).isEqualTo(7);
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "[    2.5] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580",
            "[    2.5] BUG: scheduling while atomic: p2plab-tests/77/0x00000002",
            "[    2.5] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!",
            "[    2.5] BUG: KFENCE: use-after-free read in p2plab_release+0x1c/0x90",
            "[    2.5] BUG kmalloc-128 (Tainted: G           OE     ): Object already free",
            "[    2.5] list_del corruption. prev->next should be ffff888104d2c118, but was dead000000000100",
            "[    2.5] Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] SMP KASAN NOPTI",
            "[    2.5] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP",
            "[    2.5] WARNING: suspicious RCU usage",
            "[    2.5] WARNING: possible recursive locking detected",
            "[    2.5] WARNING: bad unlock balance detected!",
            "[    2.5] INFO: trying to register non-static key.",
            "[    2.5] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "[    2.5] INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 1-... } 21003 jiffies s: 297 root: 0x1/.",
            "[    2.5] rcu: rcu_preempt kthread starved for 10502 jiffies! g9877 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x0 ->cpu=1",
            "[    2.5] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
            "[    2.5] Kernel panic - not syncing: hung_task: blocked tasks",
            "[    2.5] unreferenced object 0xffff888104d2c000 (size 64):",
            "[    2.5] p2plab 0000:01:00.0: WARNING: descriptor ring overflow",
    })
    void otherHeadlinesAreSplats(String line) {
        assertThat(KernelLog.headline(line)).as(line).isNotNull();
    }

    @Test
    void lockdepBeforeWarning() {
        assertThat(KernelLog.headline("WARNING: possible circular locking dependency detected")).isEqualTo(KernelLog.Kind.LOCKDEP);
        assertThat(KernelLog.headline("WARNING: CPU: 1 PID: 3 at kernel/locking/lockdep.c:4833 lock_release+0x1a/0x2f0"))
                .isEqualTo(KernelLog.Kind.WARNING);
    }

    /** What the lab's drivers and kernel print in passing runs: not splats. */
    @ParameterizedTest
    @ValueSource(strings = {
            "[    3.649165] p2plab: loading out-of-tree module taints kernel.",
            "[    3.649329] p2plab: module verification failed: signature and/or required key missing - tainting kernel",
            "[   12.1] p2plab 0000:02:00.0: DMA error: descriptor 3 failed with code 0x2 (SRC_RANGE)",
            "[   12.1] p2plab 0000:02:00.0: link down: device returned all-ones, failing I/O with -ENODEV",
            "[   12.1] p2plab 0000:02:00.0: timeout waiting for completion interrupt, polling",
            "[   12.1] p2plab 0000:03:00.0: evicted 16384 pages to system memory",
            "[    0.0] kasan: KernelAddressSanitizer initialized (generic)",
            "[    0.0] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
            "[    0.0] ... MAX_LOCKDEP_SUBCLASSES:  8",
            "[    0.0] rcu: Preemptible hierarchical RCU implementation.",
            "[    0.0] rcu: 	RCU restricting CPUs from NR_CPUS=8192 to nr_cpu_ids=2.",
            "[    0.0] kmemleak: Kernel memory leak detector initialized (mem pool available: 15906)",
            "[    0.0] PCI: Using host bridge windows from ACPI; if necessary, use \"pci=nocrs\" and report a bug",
            "[    0.0] Speculative Store Bypass: Vulnerable",
            "[    2.1] clocksource: Watchdog remote CPU 1 read timed out",
            "[    5.0] DMAR: DRHD: handling fault status reg 2",
            "[    5.0] pcieport 0000:00:02.0: pciehp: Slot(0-3): Card present",
            "[    5.0] hung_task: hung_task_timeout_secs=120",
            "ok 12 hmm.hmm_device_private.anon_write_huge # WARNING: slow",
            "# Totals: pass:76 fail:0 xfail:0 xpass:0 skip:2 error:0",
            "P2PLAB-READY uptime=3.90s p2plab=3 nvme=1",
            "[    9.9]  ? report_bug+0x164/0x190",
    })
    void benignLinesAreNot(String line) {
        assertThat(KernelLog.headline(line)).as(line).isNull();
    }

    @Test
    void realLabGuestLogsHaveNoSplat() throws IOException {
        try (var files = Files.list(DIR)) {
            List<Path> benign = files.filter(p -> p.getFileName().toString().startsWith("benign-")).toList();
            assertThat(benign).isNotEmpty();
            for (Path p : benign) assertThat(KernelLog.find(Files.readString(p))).as(p.toString()).isEmpty();
        }
    }

    @Test
    void taintLetters() {
        assertThat(KernelLog.taintLetters(12288 | 512, KernelLog.SPLAT_TAINTS)).isEqualTo("W");
        assertThat(KernelLog.taintLetters(12288, KernelLog.SPLAT_TAINTS)).isEmpty();
        assertThat(KernelLog.taintLetters(12288 | 128 | 16384, ~0L)).isEqualTo("DOEL");
    }

    /** The blocked-task dump a timed-out step asks for (sysrq 'w') is no splat; a report after it is. */
    @Test
    void sysrqTaskDumpIsNotASplat() throws IOException {
        String dump = read("sysrq-blocked.log");
        assertThat(dump).contains("sysrq: Show Blocked State", "Call Trace:", "task:kworker");
        assertThat(KernelLog.find(dump)).isEmpty();
        // two dumped tasks in a row, then a real warning: only the warning
        String two = dump.replace("[    6.743137] p2plab-hmm", "[    6.700000] task:insmod          state:D stack:0     pid:99\n"
                + "[    6.700001] Call Trace:\n[    6.700002]  <TASK>\n[    6.700003]  schedule+0x28/0xa0\n"
                + "[    6.700004]  </TASK>\n[    6.743137] p2plab-hmm");
        List<KernelLog.Splat> s = KernelLog.find(two + read("warning.log"));
        assertThat(s).extracting(KernelLog.Splat::kind).containsExactly(KernelLog.Kind.WARNING);
        // without the sysrq header the same stack is a report
        assertThat(KernelLog.find(dump.replace("sysrq: Show Blocked State", "some message")))
                .extracting(KernelLog.Splat::kind).containsExactly(KernelLog.Kind.CALL_TRACE);
    }
}
