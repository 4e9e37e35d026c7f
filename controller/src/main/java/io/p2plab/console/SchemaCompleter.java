package io.p2plab.console;

import com.fasterxml.jackson.databind.JsonNode;
import org.jline.reader.Candidate;
import org.jline.reader.Completer;
import org.jline.reader.LineReader;
import org.jline.reader.ParsedLine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** Completes command names and argument names (key=, nested a.b=) from query-qmp-schema. */
public final class SchemaCompleter implements Completer {
    private final TreeSet<String> commands = new TreeSet<>();
    private final Map<String, String> commandArgType = new HashMap<>();
    private final Map<String, JsonNode> types = new HashMap<>();
    private final List<String> builtins;

    public SchemaCompleter(JsonNode schema, List<String> builtins) {
        this.builtins = builtins;
        for (JsonNode e : schema) {
            String meta = e.path("meta-type").asText();
            if (meta.equals("command")) {
                commands.add(e.path("name").asText());
                commandArgType.put(e.path("name").asText(), e.path("arg-type").asText());
            } else {
                types.put(e.path("name").asText(), e);
            }
        }
    }

    public TreeSet<String> commands() { return commands; }

    /** Argument names of {@code command}, with nested objects as a.b (two levels deep). */
    public List<String> argNames(String command) {
        List<String> out = new ArrayList<>();
        addMembers(commandArgType.get(command), "", out, 0);
        return out;
    }

    private void addMembers(String type, String prefix, List<String> out, int depth) {
        JsonNode t = type == null ? null : types.get(type);
        if (t == null || depth > 2) return;
        if (t.path("meta-type").asText().equals("object")) {
            for (JsonNode m : t.path("members")) {
                String name = prefix + m.path("name").asText();
                JsonNode mt = types.get(m.path("type").asText());
                if (mt != null && mt.path("meta-type").asText().equals("object")) addMembers(m.path("type").asText(), name + ".", out, depth + 1);
                else out.add(name);
            }
            // flat unions: variant members
            for (JsonNode v : t.path("variants")) addMembers(v.path("type").asText(), prefix, out, depth + 1);
        }
    }

    @Override
    public void complete(LineReader reader, ParsedLine line, List<Candidate> candidates) {
        if (line.wordIndex() == 0) {
            for (String b : builtins) candidates.add(new Candidate(b, b, "console", null, null, null, true));
            for (String c : commands) candidates.add(new Candidate(c, c, "qmp", null, null, null, true));
            return;
        }
        String cmd = line.words().get(0);
        for (String a : new TreeSet<>(argNames(cmd))) {
            candidates.add(new Candidate(a + "=", a, null, null, null, null, false));
        }
    }
}
