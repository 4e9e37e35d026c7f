package io.p2plab.cli;

import io.p2plab.console.ConsoleCommand;
import io.p2plab.scenario.CaseResult;
import io.p2plab.scenario.Engine;
import io.p2plab.scenario.Reports;
import io.p2plab.scenario.Scenario;
import io.p2plab.spec.SpecException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.stream.Stream;

@Command(name = "p2plab", mixinStandardHelpOptions = true, version = "p2plab controller 0.1",
        description = "p2plab controller: run QEMU scenarios, drive QMP / qemu-ga interactively.",
        subcommands = {Main.Run.class, Main.Suite.class, Main.Validate.class, ConsoleCommand.class, BootCommand.class})
public final class Main implements Callable<Integer> {
    public static final int OK = 0, FAILED = 1, USAGE = 2;

    @Override
    public Integer call() {
        new CommandLine(this).usage(System.err);
        return USAGE;
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    public static int execute(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.addSubcommand("topo", new TopoCommand());
        cl.addSubcommand("merge-junit", new MergeJunitCommand());
        cl.addSubcommand("bench-report", new io.p2plab.bench.report.BenchReportCommand());
        cl.setExitCodeExceptionMapper(t -> USAGE);
        cl.setExecutionExceptionHandler((ex, cmd, parse) -> {
            if (ex instanceof SpecException) {
                cmd.getErr().println("error: " + ex.getMessage());
                return USAGE;
            }
            cmd.getErr().println("error: " + ex);
            ex.printStackTrace(cmd.getErr());
            return USAGE;
        });
        return cl.execute(args);
    }

    /** Options shared by run and suite. */
    static class RunOptions {
        Path out;
        Path junit;
        Converters.Shard shard;
        List<Path> durations;
        String filter;
        boolean list;
        boolean console;
        String jobs;
    }

    static List<Scenario.Case> loadAll(List<Path> files, PrintWriter err) {
        List<Scenario.Case> cases = new ArrayList<>();
        List<String> errors = new ArrayList<>();
        for (Path f : files) {
            try {
                cases.addAll(Scenario.load(f));
            } catch (SpecException e) {
                errors.add(e.getMessage());
            }
        }
        if (!errors.isEmpty()) {
            errors.forEach(e -> err.println("error: " + e));
            return null;
        }
        return cases;
    }

    /** --jobs / P2PLAB_JOBS: a positive count, "auto" (host CPUs / 2, at least 1); null or blank: 1; else -1. */
    public static int parseJobs(String v, int cpus) {
        if (v == null || v.isBlank()) return 1;
        if (v.strip().equals("auto")) return Math.max(1, cpus / 2);
        try {
            int n = Integer.parseInt(v.strip());
            return n >= 1 && n <= 64 ? n : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Runs the cases; errors and warnings go to {@code err} (picocli's err stream), progress to stderr. */
    static int runCases(List<Path> files, RunOptions o, PrintWriter err) {
        int jobs = parseJobs(o.jobs, Runtime.getRuntime().availableProcessors());
        if (jobs < 0) {
            err.println("error: --jobs / P2PLAB_JOBS: '" + o.jobs + "' is not a count from 1 to 64 or 'auto'");
            return USAGE;
        }
        List<Scenario.Case> cases = loadAll(files, err);
        if (cases == null) return USAGE;
        if (o.filter != null) {
            Pattern p = Pattern.compile(o.filter);
            cases = cases.stream().filter(c -> p.matcher(c.name()).find()).toList();
        }
        if (o.shard != null) {
            int k = o.shard.k(), n = o.shard.n();   // checked by Converters.ShardConverter
            java.util.Map<String, Double> d = null;
            if (o.durations != null && !o.durations.isEmpty()) {
                try {
                    d = io.p2plab.scenario.JunitXml.durations(o.durations);
                } catch (SpecException e) {
                    err.println("error: --durations: " + e.getMessage());
                    return USAGE;
                }
                double[] load = io.p2plab.scenario.Sharding.loads(cases, n, d);
                err.printf(java.util.Locale.ROOT, "shard %d/%d balanced by %s: estimated %.0f s (all shards: %s s)%n", k, n,
                        o.durations, load[k - 1], java.util.Arrays.stream(load).mapToObj(x -> String.format(java.util.Locale.ROOT, "%.0f", x)).toList());
            }
            cases = io.p2plab.scenario.Sharding.shard(cases, k, n, d);
        } else if (o.durations != null) {
            err.println("warning: --durations only matters with --shard K/N");
        }
        if (o.list) {
            cases.forEach(c -> System.out.println(c.name()));
            return OK;
        }
        if (cases.isEmpty()) {
            err.println("no cases to run");
            return OK;
        }
        Path out = o.out != null ? o.out : defaultOut();
        err.println("artifacts: " + out.toAbsolutePath());
        List<CaseResult> results = new Engine(out, System.err).teeConsole(o.console).jobs(jobs).run(cases);
        Reports.summary(results, System.out);
        if (o.junit != null) {
            try {
                Reports.junit(results, o.junit);
            } catch (IOException e) {
                err.println("error: cannot write " + o.junit + ": " + e.getMessage());
                return USAGE;
            }
        }
        // report.html in the artefact dir, and next to the JUnit XML when that is elsewhere
        java.util.Set<Path> reports = new java.util.LinkedHashSet<>();
        reports.add(out.resolve("report.html").toAbsolutePath().normalize());
        if (o.junit != null) reports.add(o.junit.toAbsolutePath().normalize().resolveSibling("report.html"));
        for (Path h : reports) {
            try {
                io.p2plab.scenario.HtmlReport.write(results, h, "p2plab run " + out.getFileName());
                err.println("report: " + h);
            } catch (IOException e) {
                err.println("warning: cannot write " + h + ": " + e.getMessage());
            }
        }
        return results.stream().anyMatch(r -> r.status().failed()) ? FAILED : OK;
    }

    /** Deterministic split: cases sorted by name, the i-th (0-based) goes to shard (i mod N) + 1. */
    public static List<Scenario.Case> shard(List<Scenario.Case> cases, int k, int n) {
        return io.p2plab.scenario.Sharding.shard(cases, k, n, null);
    }

    static Path defaultOut() {
        String root = System.getenv("P2PLAB_ROOT");
        Path base = root != null ? Path.of(root, "build", "p2plab-runs") : Path.of("build", "p2plab-runs");
        return base.resolve(LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
    }

    @Command(name = "run", mixinStandardHelpOptions = true, description = "Run scenario files.")
    static final class Run implements Callable<Integer> {
        @Parameters(arity = "1..*", paramLabel = "FILE")
        List<Path> files;
        @CommandLine.Mixin
        RunOptionsMixin opts;
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            return runCases(files, opts.o(), spec.commandLine().getErr());
        }
    }

    @Command(name = "suite", mixinStandardHelpOptions = true,
            description = "Run every scenario (*.yaml, *.yml) under DIR; files under a 'machines' dir or named *.machine.yaml are machine specs, not scenarios.")
    static final class Suite implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "DIR")
        Path dir;
        @CommandLine.Mixin
        RunOptionsMixin opts;
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter err = spec.commandLine().getErr();
            if (!Files.isDirectory(dir)) {
                err.println("error: " + dir + " is not a directory");
                return USAGE;
            }
            List<Path> files = scenarioFiles(dir);
            if (files.isEmpty()) {
                err.println("error: no scenario files (*.yaml, *.yml) under " + dir);
                return USAGE;
            }
            return runCases(files, opts.o(), err);
        }
    }

    static List<Path> scenarioFiles(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile)
                    .filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml"))
                    .filter(p -> !p.getFileName().toString().matches(".*\\.machine\\.ya?ml"))
                    .filter(p -> { for (Path q : dir.relativize(p)) if (q.toString().equals("machines")) return false; return true; })
                    .sorted().toList();
        } catch (IOException e) {
            throw new SpecException(dir.toString(), "cannot list: " + e.getMessage());
        }
    }

    static final class RunOptionsMixin {
        @Option(names = "--out", description = "artifact dir (default build/p2plab-runs/<timestamp>)")
        Path out;
        @Option(names = "--junit", description = "write JUnit XML to this file")
        Path junit;
        @Option(names = "--shard", paramLabel = "K/N", converter = Converters.ShardConverter.class,
                description = "run only the K-th of N deterministic shards (1 <= K <= N)")
        Converters.Shard shard;
        @Option(names = "--durations", paramLabel = "JUNIT", description = "balance --shard by the case times of previous "
                + "JUnit XML (repeatable): longest first to the least loaded shard; unknown cases weigh the median")
        List<Path> durations;
        @Option(names = "--filter", description = "only cases whose name matches this regex")
        String filter;
        @Option(names = "--list", description = "list the (expanded) cases and exit")
        boolean list;
        @Option(names = {"-c", "--console"}, description = "stream the guest serial console to stderr")
        boolean console;
        @Option(names = {"-j", "--jobs"}, paramLabel = "N|auto", description = "cases run at once, each in its own VM "
                + "(default: env P2PLAB_JOBS, else 1); auto: one per two host CPUs (a guest has two vCPUs). With -c, 1")
        String jobs;

        RunOptions o() {
            RunOptions r = new RunOptions();
            r.out = out; r.junit = junit; r.shard = shard; r.durations = durations; r.filter = filter; r.list = list; r.console = console;
            r.jobs = jobs != null ? jobs : System.getenv("P2PLAB_JOBS");
            return r;
        }
    }

    @Command(name = "validate", mixinStandardHelpOptions = true, description = "Check scenario files without running them.")
    static final class Validate implements Callable<Integer> {
        @Parameters(arity = "1..*", paramLabel = "FILE|DIR")
        List<Path> files;
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            int rc = OK;
            for (Path f : files) {
                List<Path> fs = Files.isDirectory(f) ? scenarioFiles(f) : List.of(f);
                for (Path x : fs) {
                    try {
                        List<Scenario.Case> cs = Scenario.load(x);
                        System.out.println("ok: " + x + " (" + cs.size() + " case" + (cs.size() == 1 ? "" : "s") + ")");
                    } catch (SpecException e) {
                        spec.commandLine().getErr().println("error: " + e.getMessage());
                        rc = USAGE;
                    }
                }
            }
            return rc;
        }
    }
}
