package io.p2plab.bench.report;

import java.nio.file.Path;

/** A bench part's output that is missing or not what its parser expects; the message names the file. */
public final class BenchReportException extends Exception {
    private final Path file;

    public BenchReportException(Path file, String what) {
        super(file + ": " + what);
        this.file = file;
    }

    public Path file() { return file; }
}
