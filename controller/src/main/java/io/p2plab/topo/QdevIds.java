package io.p2plab.topo;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/** BDF -> QEMU device id, from QMP query-pci (bus numbers are the ones the guest programmed). */
public final class QdevIds {
    private QdevIds() {}

    public static Map<String, String> fromQueryPci(JsonNode ret) {
        Map<String, String> out = new HashMap<>();
        if (ret != null && ret.isArray()) for (JsonNode bus : ret) devices(bus.path("devices"), out);
        return out;
    }

    private static void devices(JsonNode devs, Map<String, String> out) {
        if (!devs.isArray()) return;
        for (JsonNode d : devs) {
            String id = d.path("qdev_id").asText("");
            if (!id.isEmpty())
                out.put(String.format(Locale.ROOT, "0000:%02x:%02x.%d", d.path("bus").asInt(), d.path("slot").asInt(),
                        d.path("function").asInt()), id);
            JsonNode br = d.path("pci_bridge");
            if (br.isObject()) devices(br.path("devices"), out);
        }
    }
}
