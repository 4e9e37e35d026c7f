package io.p2plab.scenario;

import io.p2plab.cli.Main;
import io.p2plab.spec.SpecException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ScenarioParseTest {
    static final Path DIR = Path.of("src/test/resources/scenarios");

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "unknown-key.yaml    | unknown-key.yaml:5:7    | unknown key 'exepct'",
            "unknown-kind.yaml   | unknown-kind.yaml:4:5   | unknown step kind 'qmpp'",
            "wrong-type.yaml     | wrong-type.yaml:4:7     | expected an integer, got a string 'many'",
            "missing-field.yaml  | missing-field.yaml:3:5  | missing required key 'value'",
            "syntax.yaml         | syntax.yaml:4:            | syntax error",
            "undefined-var.yaml  | undefined-var.yaml:5:3  | undefined variable ${iomu}",
            "bad-regex.yaml      | bad-regex.yaml:3:22     | invalid regular expression",
            "no-steps.yaml       | no-steps.yaml:1:1       | missing required key 'steps'",
            "bad-machine.yaml    | bad-machine.yaml:5:34   | bus 'dp9' is neither a root port",
            "two-kinds.yaml      | two-kinds.yaml:3:5      | exactly one key",
    })
    void malformedScenariosSayFileLineAndWhat(String file, String where, String what) {
        assertThatThrownBy(() -> Scenario.load(DIR.resolve("bad").resolve(file)))
                .isInstanceOf(SpecException.class)
                .hasMessageContaining(where.trim())
                .hasMessageContaining(what.trim());
    }

    @Test
    void validateCommandExitsTwoAndPrintsEveryError() {
        PrintStream err = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true));
        try {
            int rc = Main.execute("validate", DIR.resolve("bad").toString(), DIR.resolve("qemu-basics.yaml").toString());
            assertThat(rc).isEqualTo(2);
        } finally {
            System.setErr(err);
        }
        assertThat(buf.toString()).contains("unknown-key.yaml:5:7", "two-kinds.yaml:3:5", "syntax.yaml:4:");
        assertThat(buf.toString().lines().filter(l -> l.startsWith("error: ")).count()).isEqualTo(10);
        assertThat(Main.execute("validate", DIR.resolve("qemu-basics.yaml").toString())).isZero();
        assertThat(Main.execute("run", "--bogus-option", "x.yaml")).isEqualTo(2);
        assertThat(Main.execute("run", DIR.resolve("bad/unknown-kind.yaml").toString())).isEqualTo(2);
    }

    @Test
    void matrixExpandsWithSubstitutionSkipAndExpectFail(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("m.yaml");
        Files.writeString(f, """
                name: m
                machine: {type: q35, cpu: "${cpu}", iommu: "${iommu}", memory: "${mem}"}
                vars: {mem: 256M}
                matrix:
                  cpu: [max, EPYC, Skylake-Server]
                  iommu: [off, on]
                skip-if: [{cpu: EPYC, iommu: "off", reason: not interesting}]
                expect-fail: [{cpu: max, iommu: "on"}]
                steps:
                  - qmp: {execute: qom-get, args: {path: /machine, property: "${cpu}-${case}"}}
                """);
        List<Scenario.Case> cases = Scenario.load(f);
        assertThat(cases).extracting(Scenario.Case::name).containsExactly(
                "m[cpu=max,iommu=off]", "m[cpu=max,iommu=on]", "m[cpu=EPYC,iommu=off]", "m[cpu=EPYC,iommu=on]",
                "m[cpu=Skylake-Server,iommu=off]", "m[cpu=Skylake-Server,iommu=on]");
        Scenario.Case c = cases.get(3);
        assertThat(c.machine().cpu()).isEqualTo("EPYC");
        assertThat(c.machine().iommu()).isTrue();
        assertThat(c.machine().memory()).isEqualTo("256M");
        assertThat(((Step.Qmp) c.steps().get(0)).args().path("property").asText()).isEqualTo("EPYC-m[cpu=EPYC,iommu=on]");
        assertThat(cases.get(2).skip()).isEqualTo("not interesting");
        assertThat(cases.get(1).expectFail()).isNotNull();
        assertThat(cases.get(0).expectFail()).isNull();
        // shards are disjoint, cover everything and are stable
        List<Scenario.Case> s1 = Main.shard(cases, 1, 2), s2 = Main.shard(cases, 2, 2);
        assertThat(s1.size() + s2.size()).isEqualTo(6);
        assertThat(s1).doesNotContainAnyElementsOf(s2);
        assertThat(Main.shard(Scenario.load(f), 1, 2)).extracting(Scenario.Case::name)
                .isEqualTo(s1.stream().map(Scenario.Case::name).toList());
    }

    @Test
    void consoleSpecLoadsMachineFilesWithVariablesAndScenarios(@TempDir Path tmp) throws Exception {
        Path m = tmp.resolve("m.yaml");
        Files.writeString(m, "type: q35\naccel: ${env.P2PLAB_NO_SUCH_VAR:-tcg}\nmemory: 256M\n");
        Scenario.LoadedMachine lm = Scenario.loadMachine(m);
        assertThat(lm.spec().accel()).isEqualTo("tcg");
        assertThat(lm.json().path("accel").asText()).isEqualTo("tcg");
        Path wrapped = tmp.resolve("w.yaml");
        Files.writeString(wrapped, "machine: {ref: m.yaml, overrides: {memory: 512M}}\n");
        assertThat(Scenario.loadMachine(wrapped).spec().memory()).isEqualTo("512M");
        assertThat(Scenario.loadMachine(DIR.resolve("qemu-basics.yaml")).spec().type()).isEqualTo("q35");
        Files.writeString(m, "type: q35\nmemory: ${nope}\n");
        assertThatThrownBy(() -> Scenario.loadMachine(m)).hasMessageContaining("m.yaml:2:").hasMessageContaining("${nope}");
    }

    @Test
    void everyStepKindParses() {
        List<Scenario.Case> cases = Scenario.load(Path.of("src/test/resources/scenarios/example-all-steps.yaml"));
        assertThat(cases).hasSize(4);
        java.util.Set<String> kinds = new java.util.HashSet<>();
        collect(cases.get(0).steps(), kinds);
        assertThat(kinds).containsExactlyInAnyOrder("Boot", "WaitReady", "Qmp", "Hmp", "Guest", "Inject", "QomGet",
                "Hotplug", "Unplug", "WaitEvent", "ConsoleExpect", "Sleep", "Repeat");
        assertThat(cases.get(0).machine().switches()).hasSize(1);
    }

    private static void collect(List<Step> steps, java.util.Set<String> kinds) {
        for (Step s : steps) {
            kinds.add(s.getClass().getSimpleName());
            if (s instanceof Step.Repeat r) collect(r.steps(), kinds);
        }
    }
}
