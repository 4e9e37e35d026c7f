package io.p2plab.scenario;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.spec.Node;
import io.p2plab.util.Json;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;

/** Parses and validates steps. Each step is a mapping with exactly one key: the step kind. */
public final class Steps {
    private Steps() {}

    static final Duration QMP_TIMEOUT = Duration.ofSeconds(30);

    public static List<Step> parseList(Node list) {
        List<Step> out = new ArrayList<>();
        for (Node s : list.items()) out.add(parse(s));
        return out;
    }

    static Step parse(Node s) {
        if (!s.isObject()) throw s.error("a step must be a mapping like '- qmp: {...}', got " + Node.kind(s.json()));
        List<String> keys = s.keys();
        if (keys.size() != 1) throw s.error("a step must have exactly one key (the step kind), got "
                + (keys.isEmpty() ? "none" : String.join(", ", keys)) + "; known kinds: " + String.join(", ", Scenario.STEP_KINDS));
        String kind = keys.get(0);
        Node b = s.child(kind);
        String w = b.where();
        return switch (kind) {
            case "boot" -> {
                Node o = body(b, "wait-ready", "timeout", "name");
                yield new Step.Boot(w, label(o, "boot"), o == null || o.optBool("wait-ready", true),
                        o == null ? null : o.optDuration("timeout", null));
            }
            case "wait-ready" -> {
                Node o = body(b, "timeout", "name");
                yield new Step.WaitReady(w, label(o, "wait-ready"), o == null ? null : o.optDuration("timeout", null));
            }
            case "qmp" -> {
                if (b.isText()) yield new Step.Qmp(w, "qmp " + b.str(), command(b), null, null, null, null, QMP_TIMEOUT, false);
                b.checkKeys("execute", "args", "expect", "expect-error", "timeout", "oob", "name");
                String cmd = command(b.get("execute"));
                JsonNode args = b.has("args") ? b.get("args").requireObject().json() : null;
                String errCls = null;
                Pattern errDesc = null;
                if (b.has("expect-error")) {
                    Node e = b.get("expect-error");
                    if (e.isObject()) {
                        e.checkKeys("class", "desc");
                        errCls = e.optStr("class", "*");
                        errDesc = e.has("desc") ? e.child("desc").regex() : null;
                    } else if (e.json().isBoolean()) {
                        if (!e.bool()) throw e.error("expect-error: false makes no sense; omit it");
                        errCls = "*";
                    } else {
                        errCls = e.str();
                    }
                    if (b.has("expect")) throw b.error("use either 'expect' or 'expect-error', not both");
                }
                yield new Step.Qmp(w, label(b, "qmp " + cmd), cmd, args, b.has("expect") ? b.get("expect").json() : null,
                        errCls, errDesc, b.optDuration("timeout", QMP_TIMEOUT), b.optBool("oob", false));
            }
            case "hmp" -> {
                if (b.isText()) yield new Step.Hmp(w, "hmp " + b.str(), b.str(), null, QMP_TIMEOUT);
                b.checkKeys("command", "expect", "timeout", "name");
                String c = b.get("command").str();
                yield new Step.Hmp(w, label(b, "hmp " + c), c, b.has("expect") ? b.get("expect").regex() : null,
                        b.optDuration("timeout", QMP_TIMEOUT));
            }
            case "guest" -> {
                if (b.isText()) yield new Step.Guest(w, "guest " + b.str(), null, b.str(), Duration.ofSeconds(60), 0, null, null, null, null);
                b.checkKeys("exec", "shell", "timeout", "expect-exit", "stdout", "stderr", "save", "stream", "name");
                List<String> argv = b.has("exec") ? b.get("exec").strList() : null;
                String sh = b.optStr("shell", null);
                if ((argv == null) == (sh == null)) throw b.error("a guest step needs exactly one of 'exec' (argv list) or 'shell' (string)");
                if (argv != null && argv.isEmpty()) throw b.child("exec").error("empty argv");
                Integer exit = 0;
                if (b.has("expect-exit")) {
                    Node e = b.get("expect-exit");
                    exit = e.isText() && e.str().equals("any") ? null : (int) e.integer();
                }
                String save = b.optStr("save", null);
                if (save != null && !save.matches("[A-Za-z0-9._-]+")) throw b.child("save").error("save must be a plain file name");
                yield new Step.Guest(w, label(b, "guest " + (sh != null ? sh : String.join(" ", argv))), argv, sh,
                        b.optDuration("timeout", Duration.ofSeconds(60)), exit,
                        b.has("stdout") ? b.get("stdout").regex() : null, b.has("stderr") ? b.get("stderr").regex() : null, save,
                        b.has("stream") ? b.get("stream").bool() : null);
            }
            case "inject" -> {
                b.checkKeys("device", "path", "property", "value", "expect-error", "name");
                String path = qomPath(b);
                String prop = b.get("property").str();
                if (!b.json().has("value")) throw b.error("missing required key 'value'");
                yield new Step.Inject(w, label(b, "inject " + path + "." + prop + "=" + Json.compact(b.json().get("value"))),
                        path, prop, b.json().get("value"), b.optStr("expect-error", null));
            }
            case "qom-get" -> {
                b.checkKeys("device", "path", "property", "expect", "match", "name");
                String path = qomPath(b);
                String prop = b.get("property").str();
                yield new Step.QomGet(w, label(b, "qom-get " + path + "." + prop), path, prop,
                        b.json().has("expect") ? b.json().get("expect") : null, b.has("match") ? b.get("match").regex() : null);
            }
            case "hotplug" -> {
                b.checkKeys("driver", "id", "bus", "props", "wait-event", "timeout", "name");
                ObjectNode args = Json.object();
                args.put("driver", b.get("driver").str());
                args.put("id", b.get("id").str());
                if (b.has("bus")) args.put("bus", b.get("bus").str());
                if (b.has("props")) b.get("props").requireObject().json().fields()
                        .forEachRemaining(e -> args.set(e.getKey(), e.getValue()));
                yield new Step.Hotplug(w, label(b, "hotplug " + args.get("driver").asText() + " id=" + args.get("id").asText()),
                        args, b.optStr("wait-event", null), b.optDuration("timeout", QMP_TIMEOUT));
            }
            case "unplug" -> {
                if (b.isText()) yield new Step.Unplug(w, "unplug " + b.str(), b.str(), QMP_TIMEOUT, true);
                b.checkKeys("id", "timeout", "wait", "name");
                String id = b.get("id").str();
                yield new Step.Unplug(w, label(b, "unplug " + id), id, b.optDuration("timeout", QMP_TIMEOUT), b.optBool("wait", true));
            }
            case "wait-event" -> {
                if (b.isText()) yield new Step.WaitEvent(w, "wait-event " + b.str(), b.str(), null, QMP_TIMEOUT);
                b.checkKeys("event", "data", "timeout", "name");
                String ev = b.get("event").str();
                yield new Step.WaitEvent(w, label(b, "wait-event " + ev), ev, b.has("data") ? b.get("data").requireObject().json() : null,
                        b.optDuration("timeout", QMP_TIMEOUT));
            }
            case "console-expect" -> {
                if (b.isText()) yield new Step.ConsoleExpect(w, "console-expect /" + b.str() + "/", b.regex(), Duration.ofSeconds(60));
                b.checkKeys("regex", "timeout", "name");
                Pattern p = b.get("regex").regex();
                yield new Step.ConsoleExpect(w, label(b, "console-expect /" + p.pattern() + "/"), p,
                        b.optDuration("timeout", Duration.ofSeconds(60)));
            }
            case "sleep" -> {
                if (b.isObject()) {
                    b.checkKeys("duration", "name");
                    yield new Step.Sleep(w, label(b, "sleep"), b.get("duration").duration());
                }
                Duration d = b.duration();
                yield new Step.Sleep(w, "sleep " + b.text(), d);
            }
            case "repeat" -> {
                b.checkKeys("count", "steps", "name");
                long count = b.get("count").integer();
                if (count < 0 || count > 1_000_000) throw b.child("count").error("count must be between 0 and 1000000");
                List<Step> inner = parseList(b.get("steps"));
                if (inner.isEmpty()) throw b.child("steps").error("repeat needs at least one step");
                yield new Step.Repeat(w, label(b, "repeat x" + count), (int) count, inner);
            }
            default -> throw b.error("unknown step kind '" + kind + "' (known: " + String.join(", ", Scenario.STEP_KINDS) + ")");
        };
    }

    private static Node body(Node b, String... keys) {
        if (b.isNull()) return null;
        if (b.isObject()) { b.checkKeys(keys); return b; }
        throw b.error("expected a mapping (keys: " + String.join(", ", Arrays.asList(keys)) + ") or nothing");
    }

    private static String label(Node o, String dflt) {
        return o != null && o.has("name") ? o.get("name").str() : dflt;
    }

    private static String command(Node n) {
        String c = n.str();
        if (!c.matches("[A-Za-z0-9_-]+")) throw n.error("invalid QMP command name '" + c + "'");
        return c;
    }

    private static String qomPath(Node b) {
        if (b.has("device") == b.has("path")) throw b.error("give exactly one of 'device' (a device id) or 'path' (a QOM path)");
        if (b.has("path")) return b.get("path").str();
        String d = b.get("device").str();
        return d.startsWith("/") ? d : "/machine/peripheral/" + d;
    }
}
