package io.p2plab.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import io.netty.channel.unix.FileDescriptor;
import io.p2plab.util.Json;
import io.p2plab.vm.MachineSpec;
import io.p2plab.vm.ProcessRegistry;
import io.p2plab.vm.Vm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Integration tests against a real qemu-system-x86_64 (-machine none). */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RealQemuQmpTest {
    @TempDir
    Path tmp;

    @Test
    void negotiatesAndQueriesStatusAndSchema() {
        try (Vm vm = Vm.launch(MachineSpec.none(), tmp, null)) {
            QmpClient q = vm.qmp();
            assertThat(q.greeting().path("QMP").path("version").path("qemu").has("major")).isTrue();
            assertThat(q.oobEnabled()).isTrue();
            assertThat(q.call("query-status").path("status").asText()).isIn("running", "prelaunch");
            JsonNode schema = q.call("query-qmp-schema");
            assertThat(schema.isArray()).isTrue();
            assertThat(schema.size()).isGreaterThan(100);
            assertThat(q.hmp("info version").join()).contains(".");
        }
        assertThat(ProcessRegistry.live()).isZero();
    }

    @Test
    void errorsAreTyped() {
        try (Vm vm = Vm.launch(MachineSpec.none(), tmp, null)) {
            assertThatThrownBy(() -> vm.qmp().call("no-such-command"))
                    .isInstanceOf(QmpErrorException.CommandNotFound.class)
                    .hasMessageContaining("no-such-command");
            assertThatThrownBy(() -> vm.qmp().call("device_del", Json.object().put("id", "nope")))
                    .isInstanceOfSatisfying(QmpErrorException.class, e -> {
                        assertThat(e.errorClass()).isIn("DeviceNotFound", "GenericError");
                        assertThat(e.description()).contains("nope");
                    });
        }
    }

    @Test
    void execOobReachesQemu() {
        try (Vm vm = Vm.launch(MachineSpec.none(), tmp, null)) {
            // migrate-pause is allowed out-of-band; with no migration running QEMU answers with an error
            assertThatThrownBy(() -> QmpClient.join(vm.qmp().executeOob("migrate-pause", null, Duration.ofSeconds(10))))
                    .isInstanceOf(QmpErrorException.GenericError.class).hasMessageContaining("migrate-pause");
            // a command that does not allow oob is refused by QEMU
            assertThatThrownBy(() -> QmpClient.join(vm.qmp().executeOob("query-status", null, Duration.ofSeconds(10))))
                    .isInstanceOf(QmpErrorException.class).hasMessageContaining("does not support OOB");
        }
    }

    @Test
    void manyCommandsInFlight() {
        try (Vm vm = Vm.launch(MachineSpec.none(), tmp, null)) {
            List<CompletableFuture<JsonNode>> fs = new ArrayList<>();
            for (int i = 0; i < 500; i++) fs.add(vm.qmp().execute("query-status"));
            for (var f : fs) assertThat(f.join().path("running").isBoolean()).isTrue();
            assertThat(vm.qmp().inFlight()).isZero();
        }
    }

    @Test
    void getfdAndAddFdPassRealDescriptors() throws Exception {
        try (Vm vm = Vm.launch(MachineSpec.none(), tmp, null)) {
            FileDescriptor[] pipe = FileDescriptor.pipe();
            try {
                QmpClient q = vm.qmp();
                q.getfd("myfd", pipe[1].intValue()).join();
                q.call("closefd", Json.object().put("fdname", "myfd"));
                assertThatThrownBy(() -> q.call("closefd", Json.object().put("fdname", "myfd")))
                        .isInstanceOf(QmpErrorException.GenericError.class);
                JsonNode added = q.addFd(pipe[0].intValue(), 7, "test-pipe").join();
                assertThat(added.path("fdset-id").asInt()).isEqualTo(7);
                JsonNode sets = q.call("query-fdsets");
                assertThat(Json.compact(sets)).contains("test-pipe");
                // the connection is still in sync (no stray parse errors)
                assertThat(q.call("query-status").path("running").isBoolean()).isTrue();
            } finally {
                pipe[0].close();
                pipe[1].close();
            }
        }
    }

    @Test
    void deviceAddDelEvents() {
        MachineSpec pc = io.p2plab.vm.MachineSpecs.parse(
                "type: q35\nmemory: 128M\nextra-args: [-S, -device, 'virtio-serial-pci,id=vser1']\n");
        try (Vm vm = Vm.launch(pc, tmp, null)) {
            QmpClient q = vm.qmp();
            long seq = q.lastEventSeq();
            q.call("chardev-add", Json.parse("{\"id\": \"c0\", \"backend\": {\"type\": \"null\", \"data\": {}}}"));
            q.call("device_add", Json.object().put("driver", "virtserialport").put("id", "rng0")
                    .put("bus", "vser1.0").put("chardev", "c0"));
            assertThat(Json.compact(q.call("qom-list", Json.object().put("path", "/machine/peripheral"))))
                    .contains("rng0");
            q.call("device_del", Json.object().put("id", "rng0"));
            QmpEvent e = q.awaitEvent("DEVICE_DELETED", Json.object().put("device", "rng0"), seq,
                    Duration.ofSeconds(20)).join();
            assertThat(e.data().path("device").asText()).isEqualTo("rng0");
            assertThat(e.timestampMicros()).isPositive();
        }
    }

    @Test
    void kill9MidCommandFailsPendingWithClearError() throws Exception {
        try (Vm vm = Vm.launch(MachineSpec.none(), tmp, null)) {
            QmpClient q = vm.qmp();
            // stop the process so the command cannot be answered, then kill it
            new ProcessBuilder("kill", "-STOP", String.valueOf(vm.pid())).start().waitFor();
            CompletableFuture<JsonNode> f = q.execute("query-status");
            Thread.sleep(100);
            assertThat(f).isNotDone();
            new ProcessBuilder("kill", "-9", String.valueOf(vm.pid())).start().waitFor();
            assertThatThrownBy(() -> QmpClient.join(f))
                    .isInstanceOf(QmpClosedException.class)
                    .hasMessageContaining("closed the connection");
            assertThatThrownBy(() -> q.call("query-status")).isInstanceOf(QmpClosedException.class);
        }
        assertThat(ProcessRegistry.live()).isZero();
    }
}
