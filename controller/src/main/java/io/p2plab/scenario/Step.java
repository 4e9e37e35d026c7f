package io.p2plab.scenario;

import com.fasterxml.jackson.databind.JsonNode;

import java.time.Duration;
import java.util.List;
import java.util.regex.Pattern;

/** One scenario step (parsed and validated). {@code where} is file:line:col of the step. */
public sealed interface Step {
    String where();
    String label();

    record Boot(String where, String label, boolean waitReady, Duration timeout) implements Step {}
    record WaitReady(String where, String label, Duration timeout) implements Step {}
    record Qmp(String where, String label, String execute, JsonNode args, JsonNode expect, String expectErrorClass,
               Pattern expectErrorDesc, Duration timeout, boolean oob) implements Step {}
    record Hmp(String where, String label, String command, Pattern expect, Duration timeout) implements Step {}
    record Guest(String where, String label, List<String> argv, String shell, Duration timeout, Integer expectExit,
                 Pattern stdout, Pattern stderr, String save, Boolean stream) implements Step {
        /** Streams when asked, or by default for long commands (timeout of 5 min or more). */
        public boolean streams() {
            return stream != null ? stream : timeout.compareTo(STREAM_AUTO) >= 0;
        }
    }
    Duration STREAM_AUTO = Duration.ofMinutes(5);
    record Inject(String where, String label, String path, String property, JsonNode value, String expectErrorClass) implements Step {}
    record QomGet(String where, String label, String path, String property, JsonNode expect, Pattern expectMatch) implements Step {}
    record Hotplug(String where, String label, JsonNode args, String waitEvent, Duration timeout) implements Step {}
    record Unplug(String where, String label, String id, Duration timeout, boolean awaitDeleted) implements Step {}
    record WaitEvent(String where, String label, String event, JsonNode data, Duration timeout) implements Step {}
    record ConsoleExpect(String where, String label, Pattern regex, Duration timeout) implements Step {}
    record Sleep(String where, String label, Duration duration) implements Step {}
    record Repeat(String where, String label, int count, List<Step> steps) implements Step {}
}
