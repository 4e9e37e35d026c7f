package io.p2plab.scenario;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Splits the expanded cases into N shards. Without durations: sorted by name, the i-th goes to shard
 * (i mod N) + 1. With durations (seconds by case name, from a previous run's JUnit XML): greedy
 * longest-processing-time partition: cases by decreasing duration (ties by name, then file), each to the
 * shard with the least total so far (ties: the lowest shard number). A case the durations do not know
 * weighs the median of the known durations of these cases (1 s if none is known). Deterministic: the
 * same cases and durations give the same shards on every machine, so N jobs together run every case
 * exactly once.
 */
public final class Sharding {
    private Sharding() {}

    private static final Comparator<Scenario.Case> BY_NAME =
            Comparator.comparing((Scenario.Case c) -> c.name()).thenComparing(c -> c.file().toString());

    /** Shard {@code k} (1-based) of {@code n}; its cases in name order. */
    public static List<Scenario.Case> shard(List<Scenario.Case> cases, int k, int n, Map<String, Double> durations) {
        if (n < 1 || k < 1 || k > n) throw new IllegalArgumentException("shard K/N needs 1 <= K <= N, got " + k + "/" + n);
        List<Scenario.Case> sorted = new ArrayList<>(cases);
        sorted.sort(BY_NAME);
        List<Scenario.Case> out = new ArrayList<>();
        if (durations == null) {
            for (int i = 0; i < sorted.size(); i++) if (i % n == k - 1) out.add(sorted.get(i));
            return out;
        }
        int[] owner = assign(sorted, n, durations);
        for (int i = 0; i < sorted.size(); i++) if (owner[i] == k - 1) out.add(sorted.get(i));
        return out;
    }

    /** The estimated seconds of each shard (1-based index = array index + 1), for the plan's printout. */
    public static double[] loads(List<Scenario.Case> cases, int n, Map<String, Double> durations) {
        List<Scenario.Case> sorted = new ArrayList<>(cases);
        sorted.sort(BY_NAME);
        int[] owner = assign(sorted, n, durations);
        double[] w = weights(sorted, durations);
        double[] load = new double[n];
        for (int i = 0; i < sorted.size(); i++) load[owner[i]] += w[i];
        return load;
    }

    /** The weight of each case: its known duration, or the median of the known ones. */
    static double[] weights(List<Scenario.Case> sorted, Map<String, Double> durations) {
        double[] known = sorted.stream().map(c -> durations.get(c.name())).filter(d -> d != null)
                .mapToDouble(Double::doubleValue).sorted().toArray();
        double median = known.length == 0 ? 1.0
                : known.length % 2 == 1 ? known[known.length / 2]
                : (known[known.length / 2 - 1] + known[known.length / 2]) / 2;
        double[] w = new double[sorted.size()];
        for (int i = 0; i < w.length; i++) {
            Double d = durations.get(sorted.get(i).name());
            w[i] = d != null ? d : median;
        }
        return w;
    }

    /** Owner shard (0-based) of each case of {@code sorted} (name order). */
    static int[] assign(List<Scenario.Case> sorted, int n, Map<String, Double> durations) {
        double[] w = weights(sorted, durations);
        Integer[] order = new Integer[sorted.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        // decreasing weight; ties keep name order (the sort is stable and 'sorted' is by name)
        Arrays.sort(order, (a, b) -> Double.compare(w[b], w[a]));
        double[] load = new double[n];
        int[] owner = new int[sorted.size()];
        for (int i : order) {
            int best = 0;
            for (int s = 1; s < n; s++) if (load[s] < load[best]) best = s;
            owner[i] = best;
            load[best] += w[i];
        }
        return owner;
    }
}
