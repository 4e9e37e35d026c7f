package io.p2plab.scenario;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.qmp.QmpClient;
import io.p2plab.util.Json;

import java.math.BigInteger;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * QMP device_add / qom-set are strictly typed (a size property rejects "64M"), scenarios are written
 * like the command line. Property types come from device-list-properties / qom-list and string values
 * are converted: sizes with K/M/G/T suffixes and integers to numbers, on/off/yes/no to booleans.
 */
final class PropertyTypes {
    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([KMGTkmgt]?)(?:i?B)?");
    private static final Pattern INT = Pattern.compile("-?(?:0x[0-9a-fA-F]+|\\d+)");
    private final Map<String, Map<String, String>> cache = new HashMap<>();

    Map<String, String> deviceTypes(QmpClient q, String driver) {
        return cache.computeIfAbsent("dev:" + driver, k -> {
            Map<String, String> m = new HashMap<>();
            try {
                for (JsonNode p : q.call("device-list-properties", Json.object().put("typename", driver)))
                    m.put(p.path("name").asText(), p.path("type").asText());
            } catch (RuntimeException ignored) {
                // unknown driver: device_add will say so
            }
            return m;
        });
    }

    Map<String, String> objectTypes(QmpClient q, String path) {
        Map<String, String> m = new HashMap<>();
        try {
            for (JsonNode p : q.call("qom-list", Json.object().put("path", path)))
                m.put(p.path("name").asText(), p.path("type").asText());
        } catch (RuntimeException ignored) {
            // bad path: qom-set will say so
        }
        return m;
    }

    /** Converts string values of {@code args} in place according to {@code types}. */
    static void coerce(ObjectNode args, Map<String, String> types) {
        for (var it = args.fields(); it.hasNext(); ) {
            var e = it.next();
            JsonNode c = coerce(e.getValue(), types.get(e.getKey()));
            if (c != e.getValue()) e.setValue(c);
        }
    }

    static JsonNode coerce(JsonNode v, String type) {
        if (type == null || v == null || !v.isTextual()) return v;
        String s = v.asText().trim();
        switch (type) {
            case "bool" -> {
                switch (s.toLowerCase()) {
                    case "on", "yes", "true" -> { return Json.NODES.booleanNode(true); }
                    case "off", "no", "false" -> { return Json.NODES.booleanNode(false); }
                    default -> { return v; }
                }
            }
            case "size" -> {
                Matcher m = SIZE.matcher(s);
                if (!m.matches()) return v;
                int shift = switch (m.group(2).toUpperCase()) {
                    case "K" -> 10;
                    case "M" -> 20;
                    case "G" -> 30;
                    case "T" -> 40;
                    default -> 0;
                };
                return Json.NODES.numberNode(new BigInteger(m.group(1)).shiftLeft(shift));
            }
            case "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "int", "number" -> {
                if (!INT.matcher(s).matches()) return v;
                boolean neg = s.startsWith("-");
                String d = neg ? s.substring(1) : s;
                BigInteger b = d.startsWith("0x") ? new BigInteger(d.substring(2), 16) : new BigInteger(d);
                return Json.NODES.numberNode(neg ? b.negate() : b);
            }
            default -> { return v; }
        }
    }
}
