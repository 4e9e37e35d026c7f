package io.p2plab.console;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.ga.GuestAgent;
import io.p2plab.qmp.QmpClient;
import io.p2plab.qmp.QmpErrorException;
import io.p2plab.qmp.QmpEvent;
import io.p2plab.util.Json;
import org.jline.reader.EndOfFileException;
import org.jline.reader.LineReader;
import org.jline.reader.LineReaderBuilder;
import org.jline.reader.UserInterruptException;
import org.jline.reader.impl.DefaultParser;
import org.jline.terminal.Terminal;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Supplier;

/** The interactive QMP shell. */
public final class ConsoleRepl {
    static final List<String> BUILTINS = List.of("help", "hmp", "guest", "ga", "events", "log", "record", "quit", "exit");

    private final Terminal terminal;
    private final QmpClient qmp;
    private final Supplier<GuestAgent> ga;
    private final Path historyFile;
    private final JsonNode machine;
    private final io.p2plab.vm.Console guestConsole;
    private Path recordFile;
    private ArrayNode recorded;

    public ConsoleRepl(Terminal terminal, QmpClient qmp, Supplier<GuestAgent> ga, Path historyFile, JsonNode machine,
                       io.p2plab.vm.Console guestConsole) {
        this.guestConsole = guestConsole;
        this.terminal = terminal;
        this.qmp = qmp;
        this.ga = ga;
        this.historyFile = historyFile;
        this.machine = machine;
    }

    public int run() {
        PrintWriter out = terminal.writer();
        SchemaCompleter completer = new SchemaCompleter(qmp.call("query-qmp-schema"), BUILTINS);
        DefaultParser parser = new DefaultParser();
        parser.setEscapeChars(null);
        parser.setQuoteChars(new char[0]);
        LineReaderBuilder b = LineReaderBuilder.builder().terminal(terminal).appName("p2plab").completer(completer)
                .parser(parser);
        if (historyFile != null) b.variable(LineReader.HISTORY_FILE, historyFile);
        LineReader reader = b.build();
        reader.unsetOpt(LineReader.Option.INSERT_TAB);
        JsonNode ver = qmp.greeting().path("QMP").path("version").path("qemu");
        out.println("p2plab console: QEMU " + ver.path("major").asInt() + "." + ver.path("minor").asInt() + "."
                + ver.path("micro").asInt() + " at " + qmp.peer() + " (" + completer.commands().size()
                + " commands; 'help' for help, Tab completes)");
        out.flush();
        Runnable unsub = qmp.addEventListener(e -> reader.printAbove("event " + e.name() + " " + Json.compact(e.data())));
        try {
            while (true) {
                String line;
                try {
                    line = reader.readLine("(QEMU) ");
                } catch (UserInterruptException e) {
                    continue;
                } catch (EndOfFileException e) {
                    break;
                }
                line = line.trim();
                if (line.isEmpty() || line.startsWith("#")) continue;
                if (line.equals("quit") || line.equals("exit")) break;
                try {
                    handle(line, out);
                } catch (QmpErrorException e) {
                    out.println("error: " + e.errorClass() + ": " + e.description());
                    record(line, e.errorClass());
                } catch (RuntimeException e) {
                    Throwable t = QmpClient.unwrap(e);
                    out.println("error: " + (t.getMessage() == null ? t.toString() : t.getMessage()));
                    if (!qmp.isOpen()) { out.flush(); return 1; }
                }
                out.flush();
            }
        } finally {
            unsub.run();
            try { reader.getHistory().save(); } catch (IOException ignored) { }
        }
        return 0;
    }

    void handle(String line, PrintWriter out) {
        String word = line.split("\\s+", 2)[0];
        String rest = line.length() > word.length() ? line.substring(word.length()).trim() : "";
        switch (word) {
            case "help" -> out.println("""
                    cmd key=value ...      run a QMP command (dotted keys a.b=1 nest, values parse as JSON if they can)
                    {"execute": ...}       raw QMP request
                    hmp COMMAND            HMP passthrough (human-monitor-command), e.g. hmp info pci
                    guest SHELL-COMMAND    run a shell command in the guest via qemu-ga
                    ga CMD key=value ...   raw qemu-ga command, e.g. ga guest-info
                    events                 list the events received so far
                    log [N]                last N (default 30) lines of the guest serial console
                    record FILE | stop     record this session's commands as a replayable scenario YAML
                    quit                   leave (Ctrl-D too)""");
            case "hmp" -> {
                String r = qmp.hmp(rest).join();
                out.print(r.endsWith("\n") || r.isEmpty() ? r : r + "\n");
                recordStep(Json.object().set("hmp", Json.object().put("command", rest)));
            }
            case "guest" -> {
                GuestAgent.ExecResult r = ga.get().shell(rest, Duration.ofSeconds(60));
                out.print(r.out());
                if (!r.err().isEmpty()) out.print(r.err());
                out.println("[exit " + r.exitCode() + "]");
                ObjectNode g = Json.object().put("shell", rest).put("expect-exit", r.exitCode());
                recordStep(Json.object().set("guest", g));
            }
            case "ga" -> {
                QmpShellSyntax.Parsed p = QmpShellSyntax.parse(rest);
                out.println(Json.pretty(ga.get().call(p.command(), p.args())));
            }
            case "log" -> {
                if (guestConsole == null) throw new IllegalStateException("no guest console (attached mode)");
                out.println(guestConsole.tail(rest.isEmpty() ? 30 : Integer.parseInt(rest)));
            }
            case "events" -> {
                for (QmpEvent e : qmp.eventHistory()) out.println("#" + e.seq() + " " + e.name() + " " + Json.compact(e.data()));
            }
            case "record" -> {
                if (rest.isEmpty()) throw new IllegalArgumentException("usage: record FILE | record stop");
                if (rest.equals("stop")) {
                    out.println(recordFile == null ? "not recording" : "recorded " + recorded.size() + " steps to " + recordFile);
                    recordFile = null;
                    recorded = null;
                } else {
                    recordFile = Path.of(rest);
                    recorded = Json.NODES.arrayNode();
                    saveRecording();
                    out.println("recording to " + recordFile);
                }
            }
            default -> {
                QmpShellSyntax.Parsed p = QmpShellSyntax.parse(line);
                JsonNode r = qmp.call(p.command(), p.args());
                out.println(Json.pretty(r));
                ObjectNode q = Json.object().put("execute", p.command());
                if (!p.args().isEmpty()) q.set("args", p.args());
                recordStep(Json.object().set("qmp", q));
            }
        }
    }

    private void record(String line, String errorClass) {
        if (recorded == null) return;
        try {
            QmpShellSyntax.Parsed p = QmpShellSyntax.parse(line);
            ObjectNode q = Json.object().put("execute", p.command());
            if (!p.args().isEmpty()) q.set("args", p.args());
            q.put("expect-error", errorClass);
            recordStep(Json.object().set("qmp", q));
        } catch (RuntimeException ignored) { }
    }

    private void recordStep(JsonNode step) {
        if (recorded == null) return;
        recorded.add(step);
        saveRecording();
    }

    private void saveRecording() {
        ObjectNode doc = Json.object().put("name", "recorded-" + Instant.now().toString().replace(':', '-'));
        if (machine != null) doc.set("machine", machine);
        doc.set("steps", recorded);
        try {
            Files.writeString(recordFile, "# recorded by p2plab console\n" + Json.YAML.writeValueAsString(doc));
        } catch (IOException e) {
            throw new IllegalStateException("cannot write " + recordFile + ": " + e.getMessage(), e);
        }
    }
}
