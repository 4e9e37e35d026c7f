package io.p2plab.console;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.cli.Converters;
import io.p2plab.ga.GuestAgent;
import io.p2plab.qmp.QmpClient;
import io.p2plab.rpc.ConnectionOptions;
import io.p2plab.rpc.Transport;
import io.p2plab.vm.MachineSpec;
import io.p2plab.vm.Vm;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

@Command(name = "console", mixinStandardHelpOptions = true,
        description = "Interactive QMP shell (qmp-shell syntax, completion, history, events, hmp, guest, record).")
public final class ConsoleCommand implements Callable<Integer> {
    @Option(names = "--attach", paramLabel = "SOCKET", description = "attach to a running QEMU's QMP socket (path or tcp:HOST:PORT)")
    String attach;
    @Option(names = "--ga", paramLabel = "SOCKET", description = "qemu-ga socket when attaching")
    Path gaSocket;
    @Option(names = "--spec", paramLabel = "FILE", description = "machine spec (or scenario) to boot; default: -machine none")
    Path spec;
    @Option(names = "--history", paramLabel = "FILE", description = "history file (default ~/.p2plab_history)")
    Path history;
    @Option(names = "--out", paramLabel = "DIR", description = "artifact dir for a booted VM (default: a temp dir)")
    Path out;
    @Option(names = "--no-wait", description = "do not wait for the guest's ready line before the prompt")
    boolean noWait;
    @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "60s", converter = Converters.DurationConverter.class,
            description = "with --attach: QMP and guest agent command timeout (e.g. 90s, 10m; default ${DEFAULT-VALUE})")
    Duration timeout;
    @Option(names = "--connect-timeout", paramLabel = "DURATION", defaultValue = "10s", converter = Converters.DurationConverter.class,
            description = "with --attach: connect and QMP greeting timeout (default ${DEFAULT-VALUE})")
    Duration connectTimeout;

    @Override
    public Integer call() throws Exception {
        Path hist = history != null ? history : Path.of(System.getProperty("user.home"), ".p2plab_history");
        if (attach != null) {
            ConnectionOptions opts = ConnectionOptions.defaults().withTimeout(timeout).withConnectTimeout(connectTimeout);
            try (QmpClient q = QmpClient.connect(Transport.parse(attach), opts);
                 Terminal t = TerminalBuilder.builder().system(true).build()) {
                GuestAgent[] ga = new GuestAgent[1];
                Supplier<GuestAgent> gs = () -> {
                    if (gaSocket == null) throw new IllegalStateException("no guest agent: pass --ga SOCKET");
                    if (ga[0] == null) ga[0] = GuestAgent.connect(Transport.unix(gaSocket), opts);
                    return ga[0];
                };
                return new ConsoleRepl(t, q, gs, hist, null, null).run();
            }
        }
        MachineSpec ms;
        JsonNode machineJson = null;
        if (spec != null) {
            io.p2plab.scenario.Scenario.LoadedMachine lm = io.p2plab.scenario.Scenario.loadMachine(spec);
            ms = lm.spec();
            machineJson = lm.json() != null ? lm.json()
                    : io.p2plab.util.Json.object().put("ref", spec.toAbsolutePath().toString());
        } else {
            ms = MachineSpec.none();
            machineJson = io.p2plab.util.Json.object().put("type", "none");
        }
        Path dir = out != null ? out : java.nio.file.Files.createTempDirectory("p2plab-console-");
        try (Vm vm = Vm.launch(ms, dir, System.err::println);
             Terminal t = TerminalBuilder.builder().system(true).build()) {
            System.err.println("QEMU pid " + vm.pid() + ", artifacts in " + dir);
            if (ms.ready() != null && !noWait) {
                // show the boot on the terminal until the guest is ready, then hand over to the REPL
                java.util.function.Consumer<String> tee = l -> System.out.println(l);
                vm.console().addLineListener(tee);
                try {
                    vm.waitReady();
                } finally {
                    vm.console().removeLineListener(tee);
                }
            }
            return new ConsoleRepl(t, vm.qmp(), vm::guestAgent, hist, machineJson, vm.console()).run();
        }
    }
}
