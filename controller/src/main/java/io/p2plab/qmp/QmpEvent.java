package io.p2plab.qmp;

import com.fasterxml.jackson.databind.JsonNode;

/** An asynchronous QMP event; {@code seq} numbers events in arrival order (starting at 1). */
public record QmpEvent(long seq, String name, JsonNode data, long timestampMicros, JsonNode raw) {}
