package io.p2plab.scenario;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.p2plab.util.Json;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class PropertyTypesTest {
    @Test
    void convertsCommandLineStyleValuesToTypedJson() {
        ObjectNode a = (ObjectNode) Json.parse("{\"driver\": \"p2plab\", \"mem-size\": \"64M\", \"fail-nth\": \"3\","
                + " \"link-down\": \"on\", \"id\": \"12\", \"addr\": \"0x1f\", \"big\": \"2G\", \"n\": 5}");
        PropertyTypes.coerce(a, Map.of("mem-size", "size", "fail-nth", "uint32", "link-down", "bool", "id", "str",
                "addr", "int32", "big", "size", "n", "uint32"));
        assertThat(Json.compact(a)).isEqualTo("{\"driver\":\"p2plab\",\"mem-size\":67108864,\"fail-nth\":3,"
                + "\"link-down\":true,\"id\":\"12\",\"addr\":31,\"big\":2147483648,\"n\":5}");
        // values that do not fit the type are left for QEMU to reject with its own message
        ObjectNode b = (ObjectNode) Json.parse("{\"mem-size\": \"lots\", \"link-down\": \"maybe\"}");
        PropertyTypes.coerce(b, Map.of("mem-size", "size", "link-down", "bool"));
        assertThat(Json.compact(b)).isEqualTo("{\"mem-size\":\"lots\",\"link-down\":\"maybe\"}");
    }
}
