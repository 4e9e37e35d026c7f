package io.p2plab.scenario;

import java.nio.file.Path;
import java.time.Duration;

/** Outcome of one case. */
public record CaseResult(Scenario.Case scenarioCase, Status status, String message, String excerpt, Duration time,
                         Path dir) {
    public enum Status {
        PASSED, FAILED, SKIPPED, XFAIL, XPASS;

        public boolean failed() { return this == FAILED || this == XPASS; }
    }
}
