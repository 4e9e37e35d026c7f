package io.p2plab.util;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;

import java.util.Iterator;
import java.util.Map;

/** The one configured ObjectMapper (JSON) and its YAML sibling. */
public final class Json {
    public static final ObjectMapper MAPPER = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true)
            .configure(SerializationFeature.FAIL_ON_EMPTY_BEANS, false);
    public static final YAMLMapper YAML = YAMLMapper.builder(
                    YAMLFactory.builder()
                            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
                            .build())
            .build();
    public static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private Json() {}

    public static ObjectNode object() { return NODES.objectNode(); }

    public static String compact(JsonNode n) {
        try {
            return MAPPER.writeValueAsString(n);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String pretty(JsonNode n) {
        try {
            return MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(n);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static JsonNode parse(String s) {
        try {
            return MAPPER.readTree(s);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("invalid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /**
     * Subset match: every field in {@code expected} must be present in {@code actual} with a matching
     * value (objects recursively subset-matched, arrays element-wise with equal length, scalars equal;
     * numbers compared numerically; a string expected value also matches the textual form of a scalar).
     * Returns null on match, else a description of the first mismatch.
     */
    public static String subsetMismatch(JsonNode expected, JsonNode actual, String path) {
        if (expected == null || expected.isMissingNode()) return null;
        if (actual == null || actual.isMissingNode()) return path + ": missing (expected " + compact(expected) + ")";
        if (expected.isObject()) {
            if (!actual.isObject()) return path + ": expected an object, got " + compact(actual);
            Iterator<Map.Entry<String, JsonNode>> it = expected.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                String m = subsetMismatch(e.getValue(), actual.get(e.getKey()), path + "." + e.getKey());
                if (m != null) return m;
            }
            return null;
        }
        if (expected.isArray()) {
            if (!actual.isArray()) return path + ": expected an array, got " + compact(actual);
            if (expected.size() != actual.size())
                return path + ": expected " + expected.size() + " elements, got " + actual.size() + ": " + compact(actual);
            for (int i = 0; i < expected.size(); i++) {
                String m = subsetMismatch(expected.get(i), actual.get(i), path + "[" + i + "]");
                if (m != null) return m;
            }
            return null;
        }
        if (expected.isNumber() && actual.isNumber()) {
            if (expected.decimalValue().compareTo(actual.decimalValue()) == 0) return null;
        } else if (expected.equals(actual)) {
            return null;
        } else if (expected.isTextual() && actual.isValueNode() && expected.asText().equals(actual.asText())) {
            return null;
        }
        return path + ": expected " + compact(expected) + ", got " + compact(actual);
    }
}
