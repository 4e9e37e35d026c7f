package io.p2plab.vm;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds kernel splats (BUG, Oops, WARNING, KASAN, UBSAN, lockdep, RCU stall, soft/hard lockup, hung
 * task, panic, kmemleak, stray stack dumps) in a kernel log and cuts out each whole report, stack trace
 * included. Input is a log as `dmesg` prints it ({@code [    1.234567] msg}), the serial console (the
 * same, mixed with userspace output), `dmesg -r` ({@code <4>[...] msg}) or /dev/kmsg records
 * ({@code 4,123,4567,-;msg}); the printk level does not matter (a WARN is level 4 and counts as much as
 * an Oops).
 *
 * <p>Only report headlines count: a driver's dev_err()/dev_info() (e.g. "p2plab 0000:01:00.0: DMA
 * error") is not a splat, nor is a benign line that merely contains the word "BUG" or "KASAN" (e.g.
 * "kasan: KernelAddressSanitizer initialized"). The patterns follow what the kernel prints in
 * lib/bug.c, kernel/panic.c (__warn), arch/x86/mm/fault.c, arch/x86/kernel/dumpstack.c, mm/kasan/report.c,
 * lib/ubsan.c, kernel/locking/lockdep.c, kernel/rcu/tree_stall.h, kernel/watchdog.c, kernel/hung_task.c,
 * mm/kmemleak.c and mm/slub.c.
 */
public final class KernelLog {
    private KernelLog() {}

    public enum Kind { WARNING, BUG, OOPS, KASAN, UBSAN, LOCKDEP, RCU_STALL, SOFT_LOCKUP, HARD_LOCKUP, HUNG_TASK,
        PANIC, KMEMLEAK, CALL_TRACE }

    /**
     * One report: {@code lines[start, end)} of the input, {@code headline} is the message of the line that
     * identifies it (timestamp stripped), {@code report} the raw lines, {@code text} the messages (prefixes
     * stripped) joined with newlines: what expected-splat patterns are matched against.
     */
    public record Splat(Kind kind, String headline, String headlineLine, int start, int end, String report, String text) {
        /** A key that identifies the report across the kernel log and the console (timestamp + headline). */
        public String key() { return normalize(headlineLine).strip(); }
    }

    /**
     * printk prefixes: syslog level, /dev/kmsg record header, timestamp + caller id + the one space after
     * them. The message keeps its own indentation (" planted_caller+0x10/0x20" in a stack trace).
     */
    private static final Pattern PREFIX = Pattern.compile(
            "^(?:<\\d{1,3}>)?(?:\\d{1,3},\\d+,\\d+,[^;]*;)?(?:\\[\\s*\\d+\\.\\d+\\](?:\\[\\s*[TC]\\d+\\])? ?)?");

    private record Rule(Kind kind, Pattern p) {}

    /** Headline rules, most specific first (a lockdep report also starts with "WARNING:"). */
    private static final List<Rule> RULES = List.of(
            rule(Kind.PANIC, "^Kernel panic - not syncing"),
            rule(Kind.KASAN, "(?:^|: )BUG: (?:KASAN|KMSAN|KCSAN|KFENCE): "),
            rule(Kind.SOFT_LOCKUP, "(?:^|: )BUG: soft lockup - CPU#?\\d+ stuck"),
            rule(Kind.HARD_LOCKUP, "Watchdog detected hard LOCKUP on cpu"),
            rule(Kind.LOCKDEP, "^WARNING: (?!CPU: )(?:possible (?:circular|recursive) locking|inconsistent lock state"
                    + "|possible irq lock inversion|suspicious RCU usage|bad unlock balance|held lock freed"
                    + "|lock held |Nested lock was not taken|[A-Z]+-safe -> [A-Z]+-unsafe lock order"
                    + "|\\S+ lock held|.*lock.*detected)"),
            rule(Kind.LOCKDEP, "^INFO: trying to register non-static key"),
            rule(Kind.LOCKDEP, "(?:^|: )BUG: (?:MAX_LOCKDEP_|MAX_STACK_TRACE_ENTRIES|looking up invalid subclass|key \\S+ has not been registered)"),
            rule(Kind.OOPS, "(?:^|: )BUG: (?:unable to handle|kernel NULL pointer dereference)"),
            rule(Kind.OOPS, "^Oops(?::|\\s*-|\\s*\\[#)"),
            rule(Kind.OOPS, "^(?:general protection fault|stack guard page was hit|kernel stack overflow|Unable to handle kernel)"),
            rule(Kind.BUG, "(?:^|: )BUG: "),
            rule(Kind.BUG, "^kernel BUG at "),
            rule(Kind.BUG, "^BUG [\\w.:-]+ \\((?:Not tainted|Tainted: [^)]*)\\): "),
            rule(Kind.BUG, "^list_(?:add|del) corruption"),
            rule(Kind.WARNING, "(?:^|: )WARNING: "),
            rule(Kind.UBSAN, "^UBSAN: "),
            rule(Kind.RCU_STALL, "INFO: rcu_\\w+ (?:self-)?detected (?:expedited )?stalls?"),
            rule(Kind.RCU_STALL, "^(?:rcu: )?rcu_\\w+ kthread (?:starved for|timer wakeup didn't happen)"),
            rule(Kind.HUNG_TASK, "INFO: task .+ blocked for more than \\d+ seconds"),
            rule(Kind.KMEMLEAK, "kmemleak: \\d+ new suspected memory leaks"),
            rule(Kind.KMEMLEAK, "^unreferenced object 0x[0-9a-f]+ \\(size"),
            rule(Kind.CALL_TRACE, "^Call Trace:\\s*$"));

    private static final Pattern END_TRACE = Pattern.compile("^---\\[ end (?:trace|Kernel panic)");
    private static final Pattern SEPARATOR = Pattern.compile("^={20,}\\s*$");
    private static final Pattern CUT_HERE = Pattern.compile("^-+\\[ cut here \\]-+\\s*$");
    private static final Pattern TRACE_END = Pattern.compile("^\\s*(?:</(?:TASK|IRQ|NMI|SOFTIRQ)>|Kernel Offset:|---\\[ end )");
    /** A report is cut after this many lines if nothing ends it earlier. */
    static final int MAX_REPORT_LINES = 400;
    /** Without any end marker: this many lines from the headline. */
    static final int UNTERMINATED_LINES = 60;

    private static Rule rule(Kind k, String re) { return new Rule(k, Pattern.compile(re)); }

    /** A printk timestamp anywhere in a line. */
    private static final Pattern TIMESTAMP = Pattern.compile("\\[\\s*\\d+\\.\\d{6}\\]");

    /**
     * The line without a carriage return and without what the serial console put before the kernel's
     * timestamp: a shell prompt or an escape sequence the kernel line landed after
     * ({@code p2plab# \e[6n[    5.993416] BUG: kernel NULL pointer dereference, ...}).
     */
    public static String normalize(String line) {
        String l = line.replace("\r", "");
        if (!l.startsWith("[")) {
            Matcher t = TIMESTAMP.matcher(l);
            if (t.find() && t.start() > 0) l = l.substring(t.start());
        }
        return l;
    }

    /** The message of a log line: printk level, record header, timestamp and caller id stripped. */
    public static String message(String line) {
        String l = normalize(line);
        Matcher m = PREFIX.matcher(l);
        return m.find() ? l.substring(m.end()) : l;
    }

    /** The kind of report a line starts, or null when it is not a splat headline. */
    public static Kind headline(String line) {
        String msg = message(line);
        if (msg.isEmpty()) return null;
        for (Rule r : RULES) if (r.p.matcher(msg).find()) return r.kind;
        return null;
    }

    /** "sysrq: Show Blocked State" / "sysrq: Show State": the start of a requested task dump. */
    private static final Pattern SYSRQ_DUMP = Pattern.compile("^sysrq: Show (Blocked )?State");
    /** The lines of such a dump: task headers, workqueue names, stacks (frames start with a space). */
    private static final Pattern SYSRQ_DUMP_LINE = Pattern.compile("^(task:|Workqueue:|Call Trace:|\\s|$)");

    public static List<Splat> find(String log) {
        return find(log.isEmpty() ? List.of() : List.of(log.split("\r?\n", -1)));
    }

    /** Every report in {@code lines}, in order. */
    public static List<Splat> find(List<String> lines) {
        int n = lines.size();
        String[] msg = new String[n];
        Kind[] kind = new Kind[n];
        for (int i = 0; i < n; i++) {
            msg[i] = message(lines.get(i));
            kind[i] = headline(lines.get(i));
        }
        // stacks the lab asked for (sysrq 'w' / 't': the blocked-task dump of a timed-out step) are not
        // reports: their "Call Trace:" lines are no splat
        boolean sysrq = false;
        for (int i = 0; i < n; i++) {
            if (SYSRQ_DUMP.matcher(msg[i]).find()) sysrq = true;
            else if (sysrq && !SYSRQ_DUMP_LINE.matcher(msg[i]).find()) sysrq = false;
            if (sysrq && kind[i] == Kind.CALL_TRACE) kind[i] = null;
        }
        List<Splat> out = new ArrayList<>();
        int i = 0;
        while (i < n) {
            if (kind[i] == null) { i++; continue; }
            int h = i;
            Kind k = kind[h];
            // the report starts at a "cut here" (WARN/BUG) or "=====" (KASAN, UBSAN, lockdep) just before
            int start = h;
            for (int b = h - 1; b >= Math.max(0, h - 3); b--) {
                if (CUT_HERE.matcher(msg[b]).find() || SEPARATOR.matcher(msg[b]).find()) { start = b; break; }
                if (kind[b] != null || END_TRACE.matcher(msg[b]).find()) break;
            }
            if (!out.isEmpty() && start < out.get(out.size() - 1).end()) start = h;
            boolean closingSeparator = (k == Kind.KASAN || k == Kind.UBSAN) && SEPARATOR.matcher(msg[start]).find();
            int limit = Math.min(n, h + MAX_REPORT_LINES);
            int end = -1;       // exclusive, when an end marker is found
            int boundary = limit;
            for (int j = h + 1; j < limit; j++) {
                if (END_TRACE.matcher(msg[j]).find() || (closingSeparator && SEPARATOR.matcher(msg[j]).find())) {
                    end = j + 1;
                    break;
                }
                Kind kj = kind[j];
                if (kj == null || continuation(k, kj, j - h)) continue;
                // a new report; its "cut here"/"=====" line belongs to it
                boundary = j;
                if (j - 1 > h && (CUT_HERE.matcher(msg[j - 1]).find() || SEPARATOR.matcher(msg[j - 1]).find())) boundary = j - 1;
                break;
            }
            if (end < 0) {
                int last = -1;
                for (int j = h + 1; j < boundary; j++) if (TRACE_END.matcher(msg[j]).find()) last = j;
                end = last >= 0 ? last + 1 : Math.min(boundary, h + UNTERMINATED_LINES);
            }
            end = Math.max(end, h + 1);
            String report = String.join("\n", lines.subList(start, end)).replace("\r", "");
            StringBuilder text = new StringBuilder();
            for (int j = start; j < end; j++) text.append(msg[j]).append('\n');
            out.add(new Splat(k, msg[h], lines.get(h), start, end, report, text.toString()));
            i = end;
        }
        return out;
    }

    /**
     * A headline inside an open report that belongs to it: the Oops line after "BUG: unable to handle
     * page fault" / "BUG: kernel NULL pointer dereference" or a KASAN general protection fault, a stack
     * dump (the report's own "Call Trace:"), a panic the report caused, the RCU grace-period kthread
     * lines of an RCU stall report.
     */
    private static boolean continuation(Kind open, Kind next, int distance) {
        return switch (next) {
            case CALL_TRACE, PANIC -> true;
            // an RCU stall report's own "kthread starved" / "timer wakeup didn't happen" lines
            case RCU_STALL -> open == Kind.RCU_STALL;
            case OOPS -> distance <= 12 && (open == Kind.OOPS || open == Kind.BUG || open == Kind.KASAN);
            default -> false;
        };
    }

    /**
     * Kernel taint flags (/proc/sys/kernel/tainted) that a splat leaves behind: B bad page, D died (Oops),
     * W warning, L soft lockup. Others (O out-of-tree, E unsigned module, ...) are expected in the lab.
     */
    public static final long SPLAT_TAINTS = (1L << 5) | (1L << 7) | (1L << 9) | (1L << 14);
    private static final String TAINT_LETTERS = "PFSRMBUDAWCIOELKXTNJ";

    /** Taint letters as the kernel prints them ("W", "DW", ...) for the set bits among {@code mask}. */
    public static String taintLetters(long taint, long mask) {
        StringBuilder b = new StringBuilder();
        for (int bit = 0; bit < TAINT_LETTERS.length(); bit++)
            if ((taint & mask & (1L << bit)) != 0) b.append(TAINT_LETTERS.charAt(bit));
        return b.toString();
    }
}
