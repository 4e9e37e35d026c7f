package io.p2plab.spec;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.util.Json;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * A YAML (or JSON: YAML is a superset) document parsed into a JsonNode tree with the source line and
 * column of every node, keyed by JSON pointer, so validation errors can say file:line:col.
 */
public final class Doc {
    private final Path file;
    private final JsonNode root;
    private final Map<String, int[]> locations;

    private Doc(Path file, JsonNode root, Map<String, int[]> locations) {
        this.file = file;
        this.root = root;
        this.locations = locations;
    }

    public Path file() { return file; }
    public JsonNode root() { return root; }

    public static Doc load(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new SpecException(file.toString(), "no such file");
        } catch (IOException e) {
            throw new SpecException(file.toString(), "cannot read: " + e.getMessage());
        }
        return parse(file, text);
    }

    public static Doc parse(Path file, String text) {
        Map<String, int[]> locs = new HashMap<>();
        try (JsonParser p = Json.YAML.getFactory().createParser(text)) {
            JsonToken t = p.nextToken();
            if (t == null) throw new SpecException(file + ":1:1", "empty document");
            JsonNode root = read(file, p, "", locs);
            return new Doc(file, root, locs);
        } catch (JsonProcessingException e) {
            JsonLocation l = e.getLocation();
            String where = file + (l == null ? "" : ":" + l.getLineNr() + ":" + l.getColumnNr());
            throw new SpecException(where, "syntax error: " + firstLine(e.getOriginalMessage()));
        } catch (IOException e) {
            throw new SpecException(file.toString(), "cannot parse: " + e.getMessage());
        }
    }

    private static String firstLine(String s) {
        if (s == null) return "?";
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    private static JsonNode read(Path file, JsonParser p, String ptr, Map<String, int[]> locs) throws IOException {
        JsonLocation l = p.currentTokenLocation();
        locs.putIfAbsent(ptr, new int[]{l.getLineNr(), l.getColumnNr()});
        JsonToken t = p.currentToken();
        switch (t) {
            case START_OBJECT -> {
                ObjectNode o = Json.object();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    JsonLocation kl = p.currentTokenLocation();
                    if (o.has(name)) throw new SpecException(file + ":" + kl.getLineNr() + ":" + kl.getColumnNr(),
                            "duplicate key '" + name + "'");
                    // errors about a key point at the key itself
                    locs.put(ptr + "/" + escape(name), new int[]{kl.getLineNr(), kl.getColumnNr()});
                    p.nextToken();
                    o.set(name, read(file, p, ptr + "/" + escape(name), locs));
                }
                return o;
            }
            case START_ARRAY -> {
                ArrayNode a = Json.NODES.arrayNode();
                int i = 0;
                while (p.nextToken() != JsonToken.END_ARRAY) {
                    a.add(read(file, p, ptr + "/" + i++, locs));
                }
                return a;
            }
            case VALUE_STRING -> { return Json.NODES.textNode(p.getText()); }
            case VALUE_NUMBER_INT -> { return Json.NODES.numberNode(p.getLongValue()); }
            case VALUE_NUMBER_FLOAT -> { return Json.NODES.numberNode(p.getDoubleValue()); }
            // YAML 1.2 semantics: only true/false are booleans; on/off/yes/no stay strings
            case VALUE_TRUE, VALUE_FALSE -> {
                String raw = p.getText();
                if (raw != null && !raw.equalsIgnoreCase("true") && !raw.equalsIgnoreCase("false"))
                    return Json.NODES.textNode(raw);
                return Json.NODES.booleanNode(t == JsonToken.VALUE_TRUE);
            }
            case VALUE_NULL -> { return Json.NODES.nullNode(); }
            default -> throw new SpecException(file + ":" + l.getLineNr() + ":" + l.getColumnNr(),
                    "unexpected token " + t);
        }
    }

    public static String escape(String key) {
        return key.replace("~", "~0").replace("/", "~1");
    }

    /** "file:line:col" of the node at pointer {@code ptr}, or of its nearest located ancestor. */
    public String where(String ptr) {
        String p = ptr;
        while (true) {
            int[] l = locations.get(p);
            if (l != null) return file + ":" + l[0] + ":" + l[1];
            if (p.isEmpty()) return file.toString();
            p = p.substring(0, p.lastIndexOf('/'));
        }
    }

    public boolean has(String ptr) { return locations.containsKey(ptr); }

    public Node node() { return new Node(root, "", this::where); }
}
