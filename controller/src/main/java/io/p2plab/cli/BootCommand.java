package io.p2plab.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.scenario.Scenario;
import io.p2plab.util.Json;
import io.p2plab.vm.MachineSpec;
import io.p2plab.vm.Vm;
import org.jline.terminal.Attributes;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import org.jline.utils.NonBlockingReader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code p2plab boot}: boot one machine and put its serial console on this terminal, as {@code -serial
 * mon:stdio} would: the guest's output on stdout, keystrokes (Ctrl-C included) to the guest, Ctrl-a x
 * quits (Ctrl-a a sends a Ctrl-a). Without a terminal on stdin the console is only shown; the VM runs
 * until it powers off or this process is stopped. QMP and qemu-ga sockets are printed for
 * {@code p2plab console --attach}.
 */
@Command(name = "boot", mixinStandardHelpOptions = true,
        description = "Boot a machine with its serial console on this terminal (Ctrl-a x quits).")
public final class BootCommand implements Callable<Integer> {
    private static final int CTRL_A = 1;

    @Option(names = "--machine", paramLabel = "FILE", required = true,
            description = "machine spec (e.g. scenarios/machines/default.yaml), or a file with machine: {ref, overrides}")
    Path machine;
    @Option(names = "--append", paramLabel = "ARGS", description = "extra kernel command line arguments")
    String append;
    @Option(names = "--set", paramLabel = "KEY=VALUE",
            description = "override a machine key (value parsed as YAML/JSON scalar: --set cpu=EPYC --set iommu=true)")
    List<String> sets = new ArrayList<>();
    @Option(names = "--out", paramLabel = "DIR", description = "artifact dir (default build/p2plab-runs/boot-<timestamp>)")
    Path out;

    @Override
    public Integer call() throws Exception {
        MachineSpec spec = load();
        Path dir = out != null ? out : Main.defaultOut().resolveSibling(
                "boot-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        try (Vm vm = Vm.launch(spec, dir, System.err::println)) {
            System.err.println("[p2plab] QEMU pid " + vm.pid() + "; artifacts in " + dir.toAbsolutePath()
                    + "; QMP " + vm.runDir().resolve("qmp.sock")
                    + (spec.guestAgent() ? ", qemu-ga " + vm.runDir().resolve("qga.sock") : "")
                    + (System.console() != null ? "; Ctrl-a x quits" : ""));
            Thread tail = new Thread(() -> tail(dir.resolve("console.log"), vm), "p2plab-boot-tail");
            tail.setDaemon(true);
            tail.start();
            if (System.console() != null) interactive(vm);
            vm.process().waitFor();
            tail.join(2000);
            System.err.println("[p2plab] QEMU exited (" + (vm.process().isAlive() ? "killed" : vm.process().exitValue()) + ")");
        }
        return Main.OK;
    }

    /** The machine file, with --set overrides and --append folded in through a {ref, overrides} document. */
    MachineSpec load() throws IOException {
        if (sets.isEmpty() && append == null) return Scenario.loadMachine(machine).spec();
        ObjectNode over = Json.object();
        for (String s : sets) {
            int eq = s.indexOf('=');
            if (eq <= 0) throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this),
                    "--set wants KEY=VALUE, got '" + s + "'");
            String v = s.substring(eq + 1);
            com.fasterxml.jackson.databind.JsonNode n;
            try {
                n = Json.YAML.readTree(v);
            } catch (IOException notYaml) {
                n = null;
            }
            if (n != null && (n.isValueNode() || n.isArray())) over.set(s.substring(0, eq), n);
            else over.put(s.substring(0, eq), v);
        }
        if (append != null) {
            String base = Scenario.loadMachine(machine).spec().append();
            over.put("append", (base == null ? "" : base + " ") + append);
        }
        ObjectNode ref = Json.object();
        ref.putObject("machine").put("ref", machine.toAbsolutePath().toString()).set("overrides", over);
        Path tmp = Files.createTempFile("p2plab-boot-", ".yaml");
        try {
            Files.writeString(tmp, Json.MAPPER.writeValueAsString(ref));
            return Scenario.loadMachine(tmp).spec();
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Copies the console log to stdout byte for byte as it grows, until QEMU is gone and the log drained. */
    private static void tail(Path log, Vm vm) {
        byte[] buf = new byte[8192];
        try {
            while (!Files.exists(log) && vm.isAlive()) Thread.sleep(20);
            try (RandomAccessFile f = new RandomAccessFile(log.toFile(), "r")) {
                while (true) {
                    boolean alive = vm.isAlive();
                    int n;
                    boolean any = false;
                    while ((n = f.read(buf)) > 0) {
                        System.out.write(buf, 0, n);
                        any = true;
                    }
                    if (any) System.out.flush();
                    if (!alive) return;
                    Thread.sleep(20);
                }
            }
        } catch (IOException | InterruptedException ignored) {
            // console gone
        }
    }

    /** Raw terminal: every key goes to the guest's serial port; Ctrl-a x quits, Ctrl-a a sends Ctrl-a. */
    private static void interactive(Vm vm) throws IOException, InterruptedException {
        try (Terminal t = TerminalBuilder.builder().system(true).build()) {
            Attributes saved = t.getAttributes();
            Attributes raw = new Attributes(saved);
            raw.setLocalFlags(java.util.EnumSet.of(Attributes.LocalFlag.ICANON, Attributes.LocalFlag.ECHO,
                    Attributes.LocalFlag.IEXTEN, Attributes.LocalFlag.ISIG), false);
            raw.setInputFlags(java.util.EnumSet.of(Attributes.InputFlag.IXON, Attributes.InputFlag.ICRNL,
                    Attributes.InputFlag.INLCR), false);
            raw.setControlChar(Attributes.ControlChar.VMIN, 0);
            raw.setControlChar(Attributes.ControlChar.VTIME, 1);
            t.setAttributes(raw);
            OutputStream guest = vm.process().getOutputStream();
            NonBlockingReader in = t.reader();
            boolean escape = false;
            try {
                while (vm.isAlive()) {
                    int c = in.read(100);
                    if (c == NonBlockingReader.READ_EXPIRED) continue;
                    if (c < 0) break;
                    if (escape) {
                        escape = false;
                        if (c == 'x' || c == 'X') {
                            System.err.print("\r\n[p2plab] quitting\r\n");
                            break;
                        }
                        if (c != 'a' && c != CTRL_A) continue;
                    } else if (c == CTRL_A) {
                        escape = true;
                        continue;
                    }
                    guest.write(new String(Character.toChars(c)).getBytes(StandardCharsets.UTF_8));
                    guest.flush();
                }
            } catch (IOException guestGone) {
                // QEMU exited
            } finally {
                t.setAttributes(saved);
            }
            vm.close();
        }
    }
}
