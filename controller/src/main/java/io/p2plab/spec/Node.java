package io.p2plab.spec;

import com.fasterxml.jackson.databind.JsonNode;
import io.p2plab.util.Json;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** A cursor into a spec tree: typed, validating accessors whose errors carry file:line:col and path. */
public final class Node {
    private final JsonNode n;
    private final String ptr;
    private final Function<String, String> where;

    public Node(JsonNode n, String ptr, Function<String, String> where) {
        this.n = n;
        this.ptr = ptr;
        this.where = where;
    }

    public JsonNode json() { return n; }
    public String pointer() { return ptr; }
    public String path() { return ptr.isEmpty() ? "(top level)" : ptr.substring(1).replace('/', '.'); }
    public String where() { return where.apply(ptr); }
    public Function<String, String> locator() { return where; }

    public SpecException error(String msg) {
        return new SpecException(where(), path() + ": " + msg);
    }

    public boolean isObject() { return n.isObject(); }
    public boolean isArray() { return n.isArray(); }
    public boolean isText() { return n.isTextual(); }
    public boolean isNull() { return n == null || n.isNull() || n.isMissingNode(); }

    public Node requireObject() {
        if (!n.isObject()) throw error("expected a mapping, got " + kind(n));
        return this;
    }

    /** Rejects keys that are not in {@code allowed}. */
    public Node checkKeys(String... allowed) {
        requireObject();
        Set<String> ok = new LinkedHashSet<>(Arrays.asList(allowed));
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!ok.contains(k)) {
                throw child(k).error("unknown key '" + k + "' (allowed: " + String.join(", ", ok) + ")");
            }
        }
        return this;
    }

    public boolean has(String key) { return n.isObject() && n.has(key) && !n.get(key).isNull(); }

    public Node child(String key) {
        return new Node(n.get(key), ptr + "/" + Doc.escape(key), where);
    }

    public Node get(String key) {
        requireObject();
        if (!n.has(key)) throw error("missing required key '" + key + "'");
        return child(key);
    }

    public Node opt(String key) { return has(key) ? child(key) : null; }

    public List<Node> items() {
        if (!n.isArray()) throw error("expected a list, got " + kind(n));
        List<Node> out = new ArrayList<>();
        for (int i = 0; i < n.size(); i++) out.add(new Node(n.get(i), ptr + "/" + i, where));
        return out;
    }

    public List<String> keys() {
        requireObject();
        List<String> out = new ArrayList<>();
        n.fieldNames().forEachRemaining(out::add);
        return out;
    }

    public String text() {
        if (!n.isValueNode() || n.isNull()) throw error("expected a scalar, got " + kind(n));
        return n.asText();
    }

    public String str() {
        if (!n.isTextual()) {
            if (n.isNumber() || n.isBoolean()) return n.asText();
            throw error("expected a string, got " + kind(n));
        }
        return n.asText();
    }

    public long integer() {
        if (n.isIntegralNumber()) return n.asLong();
        if (n.isTextual() && n.asText().matches("-?\\d+")) return Long.parseLong(n.asText());
        throw error("expected an integer, got " + kind(n) + (n.isValueNode() ? " '" + n.asText() + "'" : ""));
    }

    public boolean bool() {
        if (n.isBoolean()) return n.asBoolean();
        if (n.isTextual()) {
            switch (n.asText().toLowerCase()) {
                case "on", "yes", "true" -> { return true; }
                case "off", "no", "false" -> { return false; }
                default -> { }
            }
        }
        throw error("expected a boolean (true/false/on/off), got " + kind(n) + (n.isValueNode() ? " '" + n.asText() + "'" : ""));
    }

    /** Seconds as a number (1.5) or a string with unit: 500ms, 2s, 3m. */
    public Duration duration() {
        if (n.isNumber()) return Duration.ofMillis(Math.round(n.asDouble() * 1000));
        if (n.isTextual()) {
            Duration d = io.p2plab.util.Durations.parseOrNull(n.asText());
            if (d != null) return d;
        }
        throw error("expected a duration (seconds, or e.g. 500ms, 2s, 1m), got " + kind(n)
                + (n.isValueNode() ? " '" + n.asText() + "'" : ""));
    }

    public Pattern regex() {
        String s = str();
        try {
            return Pattern.compile(s, Pattern.MULTILINE);
        } catch (PatternSyntaxException e) {
            throw error("invalid regular expression: " + e.getDescription() + " in '" + s + "'");
        }
    }

    public String optStr(String key, String dflt) { return has(key) ? child(key).str() : dflt; }
    public long optInt(String key, long dflt) { return has(key) ? child(key).integer() : dflt; }
    public boolean optBool(String key, boolean dflt) { return has(key) ? child(key).bool() : dflt; }
    public Duration optDuration(String key, Duration dflt) { return has(key) ? child(key).duration() : dflt; }

    public List<String> strList() {
        if (n.isTextual()) return List.of(n.asText());
        List<String> out = new ArrayList<>();
        for (Node i : items()) out.add(i.str());
        return out;
    }

    public static String kind(JsonNode n) {
        if (n == null || n.isMissingNode()) return "nothing";
        if (n.isNull()) return "null";
        if (n.isObject()) return "a mapping";
        if (n.isArray()) return "a list";
        if (n.isTextual()) return "a string";
        if (n.isNumber()) return "a number";
        if (n.isBoolean()) return "a boolean";
        return n.getNodeType().toString();
    }

    @Override
    public String toString() { return path() + "=" + Json.compact(n); }
}
