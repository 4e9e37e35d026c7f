package io.p2plab.scenario;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.spec.Doc;
import io.p2plab.spec.Node;
import io.p2plab.spec.SpecException;
import io.p2plab.util.Json;
import io.p2plab.vm.MachineSpec;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Loads a scenario file and expands it into validated {@link Case}s (one per matrix combination). */
public final class Scenario {
    public static final String[] TOP_KEYS = {"name", "description", "machine", "matrix", "vars", "timeout",
            "expect-fail", "skip-if", "expect-splats", "steps"};
    public static final String[] STEP_KINDS = {"boot", "wait-ready", "qmp", "hmp", "guest", "inject", "qom-get",
            "hotplug", "unplug", "wait-event", "console-expect", "sleep", "repeat"};
    private static final Pattern VAR = Pattern.compile("\\$\\{([A-Za-z_][A-Za-z0-9_.-]*(?::-[^}]*)?)}");

    /** One runnable case. */
    public record Case(Path file, String scenario, String name, Map<String, String> vars, MachineSpec machine,
                       List<Step> steps, Duration timeout, String expectFail, String skip,
                       List<ExpectedSplat> expectSplats) {
        public String id() { return scenario + (vars.isEmpty() ? "" : name.substring(scenario.length())); }
    }

    private Scenario() {}

    public static List<Case> load(Path file) {
        Doc doc = Doc.load(file);
        Node root = doc.node();
        root.requireObject().checkKeys(TOP_KEYS);
        String name = root.optStr("name", stripExt(file.getFileName().toString()));
        if (!root.has("steps")) throw root.error("missing required key 'steps'");
        root.get("steps").items();

        // matrix axes: list of scalars/values, or mapping label -> value
        List<String> axes = new ArrayList<>();
        List<List<Map.Entry<String, JsonNode>>> values = new ArrayList<>();
        if (root.has("matrix")) {
            Node m = root.get("matrix").requireObject();
            for (String axis : m.keys()) {
                Node a = m.child(axis);
                List<Map.Entry<String, JsonNode>> vs = new ArrayList<>();
                if (a.isArray()) {
                    for (Node v : a.items()) {
                        if (!v.json().isValueNode()) throw v.error("matrix values in a list must be scalars; use a mapping label: value for structured values");
                        vs.add(Map.entry(v.json().asText(), v.json()));
                    }
                } else if (a.isObject()) {
                    for (String label : a.keys()) vs.add(Map.entry(label, a.child(label).json()));
                } else {
                    throw a.error("a matrix axis must be a list of values or a mapping label: value");
                }
                if (vs.isEmpty()) throw a.error("matrix axis '" + axis + "' has no values");
                axes.add(axis);
                values.add(vs);
            }
        }
        Map<String, JsonNode> baseVars = new LinkedHashMap<>();
        if (root.has("vars")) {
            Node v = root.get("vars").requireObject();
            for (String k : v.keys()) baseVars.put(k, v.child(k).json());
        }
        List<Case> out = new ArrayList<>();
        List<int[]> combos = new ArrayList<>();
        combine(values, 0, new int[axes.size()], combos);
        for (int[] combo : combos) {
            Map<String, JsonNode> vars = new LinkedHashMap<>(baseVars);
            Map<String, String> labels = new LinkedHashMap<>();
            for (int i = 0; i < axes.size(); i++) {
                var e = values.get(i).get(combo[i]);
                vars.put(axes.get(i), e.getValue());
                labels.put(axes.get(i), e.getKey());
            }
            String caseName = name + (labels.isEmpty() ? "" : "[" + String.join(",",
                    labels.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).toList()) + "]");
            vars.put("case", Json.NODES.textNode(caseName));
            ObjectNode tree = (ObjectNode) root.json().deepCopy();
            tree.remove("matrix");
            tree.remove("vars");
            JsonNode subst = substitute(tree, vars, "", doc::where);
            Node n = new Node(subst, "", doc::where);
            out.add(buildCase(file, doc, n, name, caseName, labels, vars));
        }
        return out;
    }

    /** A machine spec and its JSON (after variable substitution), for the console. */
    public record LoadedMachine(MachineSpec spec, JsonNode json) {}

    /**
     * Loads a machine for `p2plab console --spec FILE`: a scenario (its first case's machine), a file
     * with a top-level machine: key (which may use ref/overrides), or a bare machine mapping.
     * ${env.NAME} and ${name:-default} are substituted.
     */
    public static LoadedMachine loadMachine(Path file) {
        Doc doc = Doc.load(file);
        Node root = doc.node().requireObject();
        if (root.has("steps")) {
            Case c = load(file).get(0);
            return new LoadedMachine(c.machine(), null);
        }
        Map<String, JsonNode> vars = new LinkedHashMap<>();
        if (root.has("machine")) {
            JsonNode subst = substitute(root.json(), vars, "", doc::where);
            Node m = new Node(subst, "", doc::where).get("machine");
            return new LoadedMachine(machine(file, doc, m, vars), m.json());
        }
        JsonNode subst = substitute(root.json(), vars, "", doc::where);
        return new LoadedMachine(MachineSpec.parse(new Node(subst, "", doc::where)), subst);
    }

    private static void combine(List<List<Map.Entry<String, JsonNode>>> values, int i, int[] cur, List<int[]> out) {
        if (i == values.size()) { out.add(cur.clone()); return; }
        for (int k = 0; k < values.get(i).size(); k++) { cur[i] = k; combine(values, i + 1, cur, out); }
    }

    private static String stripExt(String s) {
        int i = s.lastIndexOf('.');
        return i > 0 ? s.substring(0, i) : s;
    }

    /** Replaces ${var} in every string; a string that is exactly "${var}" takes the variable's JSON value. */
    static JsonNode substitute(JsonNode n, Map<String, JsonNode> vars, String ptr, Function<String, String> where) {
        if (n.isObject()) {
            ObjectNode o = Json.object();
            for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
                var e = it.next();
                o.set(e.getKey(), substitute(e.getValue(), vars, ptr + "/" + Doc.escape(e.getKey()), where));
            }
            return o;
        }
        if (n.isArray()) {
            ArrayNode a = Json.NODES.arrayNode();
            for (int i = 0; i < n.size(); i++) a.add(substitute(n.get(i), vars, ptr + "/" + i, where));
            return a;
        }
        if (!n.isTextual() || !n.asText().contains("${")) return n;
        String s = n.asText();
        Matcher whole = VAR.matcher(s);
        if (whole.matches()) return lookup(vars, whole.group(1), ptr, where);
        Matcher m = VAR.matcher(s);
        StringBuilder b = new StringBuilder();
        while (m.find()) {
            JsonNode v = lookup(vars, m.group(1), ptr, where);
            if (!v.isValueNode()) throw new SpecException(where.apply(ptr), "variable ${" + m.group(1)
                    + "} holds a structured value and can only be used as a whole value, not inside '" + s + "'");
            m.appendReplacement(b, Matcher.quoteReplacement(v.asText()));
        }
        m.appendTail(b);
        return Json.NODES.textNode(b.toString());
    }

    private static JsonNode lookup(Map<String, JsonNode> vars, String name, String ptr, Function<String, String> where) {
        int dflt = name.indexOf(":-");
        if (dflt >= 0) {   // ${name:-default}: the default when name is undefined or empty
            String key = name.substring(0, dflt);
            JsonNode v = key.startsWith("env.") ? textOrNull(System.getenv(key.substring(4))) : vars.get(key);
            return v == null || v.asText().isEmpty() ? Json.NODES.textNode(name.substring(dflt + 2)) : v;
        }
        JsonNode v = vars.get(name);
        if (v == null && name.contains(".") && vars.containsKey(name.substring(0, name.indexOf('.')))) {
            v = vars.get(name.substring(0, name.indexOf('.')));
            for (String f : name.substring(name.indexOf('.') + 1).split("\\.")) {
                v = v == null ? null : v.get(f);
            }
            if (v == null) throw new SpecException(where.apply(ptr), "variable ${" + name + "}: no such field");
            return v;
        }
        if (v == null && name.startsWith("env.")) {
            String e = System.getenv(name.substring(4));
            if (e != null) return Json.NODES.textNode(e);
        }
        if (v == null) throw new SpecException(where.apply(ptr), "undefined variable ${" + name + "} (defined: "
                + String.join(", ", vars.keySet()) + ")");
        return v;
    }

    private static JsonNode textOrNull(String s) {
        return s == null ? null : Json.NODES.textNode(s);
    }

    private static Case buildCase(Path file, Doc doc, Node n, String scenario, String caseName,
                                  Map<String, String> labels, Map<String, JsonNode> vars) {
        MachineSpec machine = n.has("machine") ? machine(file, doc, n.get("machine"), vars) : MachineSpec.none();
        List<Step> steps = Steps.parseList(n.get("steps"));
        if (steps.isEmpty()) throw n.get("steps").error("a scenario needs at least one step");
        Duration timeout = n.optDuration("timeout", Duration.ofMinutes(10));
        String xfail = matchCondition(n.opt("expect-fail"), labels);
        String skip = matchCondition(n.opt("skip-if"), labels);
        return new Case(file, scenario, caseName, labels, machine, steps, timeout, xfail, skip,
                expectSplats(n.opt("expect-splats"), labels));
    }

    /**
     * expect-splats: a list of {match: REGEX, reason: TEXT, required?: true, AXIS: LABEL...}; an entry
     * applies to the cases whose matrix labels equal every AXIS: LABEL it lists (like expect-fail).
     */
    private static List<ExpectedSplat> expectSplats(Node list, Map<String, String> labels) {
        if (list == null) return List.of();
        List<ExpectedSplat> out = new ArrayList<>();
        for (Node e : list.items()) {
            e.requireObject();
            if (!e.has("match")) throw e.error("an expected splat needs 'match' (a regex searched in each report)");
            if (!e.has("reason")) throw e.error("an expected splat needs 'reason' (why the scenario provokes it)");
            boolean applies = true;
            for (String k : e.keys()) {
                if (k.equals("match") || k.equals("reason") || k.equals("required")) continue;
                if (!labels.containsKey(k)) throw e.child(k).error("'" + k + "' is not a matrix axis (axes: "
                        + String.join(", ", labels.keySet()) + "; keys: match, reason, required)");
                if (!labels.get(k).equals(e.child(k).text())) applies = false;
            }
            if (applies) out.add(new ExpectedSplat(e.get("match").regex(), e.get("reason").str(),
                    e.optBool("required", true), e.where()));
        }
        return List.copyOf(out);
    }

    /**
     * expect-fail / skip-if: true/false, a reason string, or a list of {var: value} mappings (one matching
     * mapping suffices; every key in it must equal the case's matrix label), optionally with 'reason'.
     */
    private static String matchCondition(Node c, Map<String, String> labels) {
        if (c == null) return null;
        if (c.json().isBoolean()) return c.json().asBoolean() ? "expected" : null;
        if (c.isText()) return c.str();
        List<Node> conds = c.isArray() ? c.items() : List.of(c);
        for (Node m : conds) {
            m.requireObject();
            boolean all = true;
            String reason = null;
            for (String k : m.keys()) {
                if (k.equals("reason")) { reason = m.child(k).str(); continue; }
                if (!labels.containsKey(k)) throw m.child(k).error("'" + k + "' is not a matrix axis (axes: "
                        + String.join(", ", labels.keySet()) + ")");
                if (!labels.get(k).equals(m.child(k).text())) all = false;
            }
            if (all) return reason != null ? reason : "matches " + Json.compact(m.json());
        }
        return null;
    }

    /** machine: a mapping, or {ref: FILE, overrides: {...}} (ref relative to the scenario file). */
    private static MachineSpec machine(Path file, Doc doc, Node m, Map<String, JsonNode> vars) {
        m.requireObject();
        if (!m.has("ref")) return MachineSpec.parse(m);
        m.checkKeys("ref", "overrides");
        Path refPath = file.toAbsolutePath().getParent().resolve(m.get("ref").str());
        Doc ref;
        try {
            ref = Doc.load(refPath);
        } catch (SpecException e) {
            throw m.child("ref").error("cannot load machine ref: " + e.getMessage());
        }
        JsonNode base = ref.root();
        String basePtr = "";
        if (base.isObject() && base.has("machine")) { base = base.get("machine"); basePtr = "/machine"; }
        if (!base.isObject()) throw m.child("ref").error(refPath + " does not contain a machine mapping");
        // the referenced file sees the same variables as the scenario (matrix, vars, ${env.NAME:-default})
        JsonNode merged = substitute(base, vars, basePtr, ref::where);
        if (m.has("overrides")) merged = merge(merged, m.get("overrides").requireObject().json());
        String mptr = m.pointer();
        String bp = basePtr;
        Function<String, String> where = p -> {
            String rest = p.substring(Math.min(p.length(), mptr.length()));
            if (doc.has(mptr + "/overrides" + rest)) return doc.where(mptr + "/overrides" + rest);
            return ref.where(bp + rest);
        };
        return MachineSpec.parse(new Node(merged, mptr, where));
    }

    /** Deep merge: mappings merge recursively, anything else (lists too) replaces. */
    static JsonNode merge(JsonNode base, JsonNode over) {
        if (!base.isObject() || !over.isObject()) return over.deepCopy();
        ObjectNode o = (ObjectNode) base.deepCopy();
        over.fields().forEachRemaining(e -> {
            JsonNode b = o.get(e.getKey());
            o.set(e.getKey(), b == null ? e.getValue().deepCopy() : merge(b, e.getValue()));
        });
        return o;
    }
}
