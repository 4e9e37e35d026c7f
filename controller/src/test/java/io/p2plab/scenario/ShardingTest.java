package io.p2plab.scenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class ShardingTest {
    @TempDir
    Path tmp;

    /** Cases named s[n=a] ... from a matrix (machine none: nothing is booted). */
    List<Scenario.Case> cases(String... labels) throws Exception {
        Path f = tmp.resolve("s.yaml");
        Files.writeString(f, "name: s\nmatrix:\n  n: [" + String.join(", ", labels) + "]\nsteps:\n  - sleep: 0\n");
        return Scenario.load(f);
    }

    static List<String> names(List<Scenario.Case> cs) {
        return cs.stream().map(Scenario.Case::name).toList();
    }

    @Test
    void longCaseGetsAShardOfItsOwn() throws Exception {
        List<Scenario.Case> cs = cases("a", "b", "c", "d", "e", "f", "g", "h", "hmm");
        Map<String, Double> d = new java.util.HashMap<>();
        for (String l : List.of("a", "b", "c", "d", "e", "f", "g", "h")) d.put("s[n=" + l + "]", 10.0);
        d.put("s[n=hmm]", 200.0);
        // round robin would put s[n=hmm] (9th by name) with 4 other cases: 240 s vs 40 s
        assertThat(names(Sharding.shard(cs, 1, 2, null))).contains("s[n=hmm]").hasSize(5);
        assertThat(names(Sharding.shard(cs, 1, 2, d))).containsExactly("s[n=hmm]");
        assertThat(names(Sharding.shard(cs, 2, 2, d))).hasSize(8).doesNotContain("s[n=hmm]");
        assertThat(Sharding.loads(cs, 2, d)).containsExactly(200.0, 80.0);
    }

    @Test
    void lptAssignsLongestFirstToTheLeastLoadedShard() throws Exception {
        List<Scenario.Case> cs = cases("a", "b", "c", "d", "e");
        Map<String, Double> d = Map.of("s[n=a]", 7.0, "s[n=b]", 5.0, "s[n=c]", 4.0, "s[n=d]", 3.0, "s[n=e]", 1.0);
        // 7 -> 1, 5 -> 2, 4 -> 2 (9), 3 -> 1 (10), 1 -> 2 (10): loads 10 / 10
        assertThat(names(Sharding.shard(cs, 1, 2, d))).containsExactly("s[n=a]", "s[n=d]");
        assertThat(names(Sharding.shard(cs, 2, 2, d))).containsExactly("s[n=b]", "s[n=c]", "s[n=e]");
        assertThat(Sharding.loads(cs, 2, d)).containsExactly(10.0, 10.0);
    }

    @Test
    void unknownCasesWeighTheMedianOfTheKnownOnes() throws Exception {
        List<Scenario.Case> cs = cases("a", "b", "c", "new1", "new2");
        // known 10, 20, 90: median 20 (not the mean, 40); a duration of a case not in the run does not count
        Map<String, Double> d = Map.of("s[n=a]", 10.0, "s[n=b]", 20.0, "s[n=c]", 90.0, "other[x=1]", 1000.0);
        double[] w = Sharding.weights(sortedByName(cs), d);
        assertThat(w).containsExactly(10.0, 20.0, 90.0, 20.0, 20.0);
        assertThat(Sharding.loads(cs, 3, d)).containsExactly(90.0, 40.0, 30.0);
        // even count: mean of the two middle ones
        assertThat(Sharding.weights(sortedByName(cases("a", "b", "x")), Map.of("s[n=a]", 10.0, "s[n=b]", 30.0)))
                .containsExactly(10.0, 30.0, 20.0);
        // nothing known: every case weighs the same
        assertThat(Sharding.weights(sortedByName(cases("a", "b")), Map.of())).containsExactly(1.0, 1.0);
    }

    static List<Scenario.Case> sortedByName(List<Scenario.Case> cs) {
        List<Scenario.Case> s = new ArrayList<>(cs);
        s.sort(java.util.Comparator.comparing(Scenario.Case::name));
        return s;
    }

    @Test
    void shardsAreDisjointCompleteAndIndependentOfInputOrder() throws Exception {
        List<String> labels = new ArrayList<>();
        for (int i = 0; i < 23; i++) labels.add("c" + i);
        List<Scenario.Case> cs = cases(labels.toArray(String[]::new));
        Random rnd = new Random(7);
        Map<String, Double> d = new java.util.HashMap<>();
        for (int i = 0; i < 20; i++) d.put("s[n=c" + i + "]", (double) (1 + rnd.nextInt(5)));   // many ties
        for (int n : new int[]{1, 2, 3, 4, 7}) {
            Set<String> all = new HashSet<>();
            int total = 0;
            for (int k = 1; k <= n; k++) {
                List<String> s = names(Sharding.shard(cs, k, n, d));
                List<Scenario.Case> shuffled = new ArrayList<>(cs);
                Collections.shuffle(shuffled, new Random(k * 31L + n));
                assertThat(names(Sharding.shard(shuffled, k, n, d))).isEqualTo(s);
                total += s.size();
                all.addAll(s);
            }
            assertThat(total).isEqualTo(cs.size());
            assertThat(all).hasSize(cs.size());
            double[] load = Sharding.loads(cs, n, d);
            double max = java.util.Arrays.stream(load).max().orElseThrow(), min = java.util.Arrays.stream(load).min().orElseThrow();
            // LPT: no shard exceeds another by more than the largest single case
            assertThat(max - min).isLessThanOrEqualTo(5.0);
            assertThat(java.util.Arrays.stream(load).sum()).isCloseTo(java.util.Arrays.stream(Sharding.weights(sortedByName(cs), d)).sum(), within(1e-9));
        }
    }
}
