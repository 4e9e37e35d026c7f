package io.p2plab.cli;

import io.p2plab.scenario.JunitXml;
import io.p2plab.spec.SpecException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "merge-junit", mixinStandardHelpOptions = true,
        description = "Merge JUnit XML files (one per shard) into one: suites of the same name joined, counts recomputed, "
                + "suites and cases sorted by name. Exit 0 when merged (failed cases included: the shard jobs report "
                + "those), 2 on bad input (a file that is not JUnit XML, a case in two shards).")
public final class MergeJunitCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "OUT", description = "merged JUnit XML to write")
    Path out;
    @Parameters(index = "1..*", arity = "1..*", paramLabel = "SHARD_XML")
    List<Path> inputs;

    @Override
    public Integer call() {
        List<JunitXml.TestCase> cases;
        try {
            cases = JunitXml.merge(inputs, out);
        } catch (SpecException e) {
            System.err.println("error: " + e.getMessage());
            return Main.USAGE;
        } catch (IOException e) {
            System.err.println("error: cannot write " + out + ": " + e.getMessage());
            return Main.USAGE;
        }
        long failed = cases.stream().filter(c -> c.status().equals("failure") || c.status().equals("error")).count();
        long skipped = cases.stream().filter(c -> c.status().equals("skipped")).count();
        System.out.println(out + ": " + cases.size() + " cases from " + inputs.size() + " files: "
                + (cases.size() - failed - skipped) + " passed, " + failed + " failed, " + skipped + " skipped");
        return Main.OK;
    }
}
