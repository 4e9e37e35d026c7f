package io.p2plab.console;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.util.Json;

import java.util.ArrayList;
import java.util.List;

/**
 * qmp-shell conventions: {@code cmd key=value key2=value2}; values are JSON when they parse as JSON
 * (numbers, true/false/null, {...}, [...], "quoted"), else plain strings; dotted keys a.b=1 build
 * nested objects. A line starting with '{' is a raw QMP request.
 */
public final class QmpShellSyntax {
    private QmpShellSyntax() {}

    public record Parsed(String command, ObjectNode args) {}

    public static Parsed parse(String line) {
        String t = line.trim();
        if (t.startsWith("{")) {
            JsonNode n = Json.parse(t);
            if (!n.has("execute") && !n.has("exec-oob")) throw new IllegalArgumentException("raw JSON needs an \"execute\" key");
            String cmd = n.has("execute") ? n.get("execute").asText() : n.get("exec-oob").asText();
            JsonNode a = n.get("arguments");
            if (a != null && !a.isObject()) throw new IllegalArgumentException("\"arguments\" must be an object");
            return new Parsed(cmd, a == null ? Json.object() : (ObjectNode) a);
        }
        List<String> words = split(t);
        if (words.isEmpty()) throw new IllegalArgumentException("empty command");
        ObjectNode args = Json.object();
        for (String w : words.subList(1, words.size())) {
            int eq = w.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("expected key=value, got '" + w + "'");
            put(args, w.substring(0, eq), value(w.substring(eq + 1)));
        }
        return new Parsed(words.get(0), args);
    }

    static void put(ObjectNode o, String dotted, JsonNode v) {
        String[] parts = dotted.split("\\.");
        ObjectNode cur = o;
        for (int i = 0; i < parts.length - 1; i++) {
            JsonNode n = cur.get(parts[i]);
            if (n == null) n = cur.putObject(parts[i]);
            else if (!n.isObject()) throw new IllegalArgumentException("'" + parts[i] + "' is both a value and an object");
            cur = (ObjectNode) n;
        }
        if (cur.has(parts[parts.length - 1])) throw new IllegalArgumentException("duplicate key '" + dotted + "'");
        cur.set(parts[parts.length - 1], v);
    }

    static JsonNode value(String s) {
        if (s.isEmpty()) return Json.NODES.textNode("");
        char c = s.charAt(0);
        if (c == '{' || c == '[' || c == '"' || c == '-' || Character.isDigit(c) || s.equals("true") || s.equals("false")
                || s.equals("null")) {
            try {
                return Json.MAPPER.readTree(s);
            } catch (Exception ignored) {
                // fall through: plain string
            }
        }
        return Json.NODES.textNode(s);
    }

    /** Splits on whitespace, keeping {...}, [...] and "..." together. */
    static List<String> split(String s) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        int depth = 0;
        boolean str = false, esc = false;
        for (char c : s.toCharArray()) {
            if (str) {
                cur.append(c);
                if (esc) esc = false;
                else if (c == '\\') esc = true;
                else if (c == '"') str = false;
                continue;
            }
            if (c == '"') { str = true; cur.append(c); continue; }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') depth--;
            if (Character.isWhitespace(c) && depth == 0) {
                if (cur.length() > 0) { out.add(cur.toString()); cur.setLength(0); }
            } else {
                cur.append(c);
            }
        }
        if (str || depth != 0) throw new IllegalArgumentException("unbalanced quotes or brackets");
        if (cur.length() > 0) out.add(cur.toString());
        return out;
    }
}
