package io.p2plab.scenario;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Outcome of one case.
 *
 * @param stallOnly the case failed only because of RCU stall / soft or hard lockup reports (no other
 *                  splat kind, no missing expected splat, no timeout): what a vCPU the emulator did not
 *                  run or wake looks like under TCG, so the engine runs such a case once more
 *                  ({@link StallRerun})
 * @param firstAttempt the failed first run when this result is a rerun (its artefacts stay in
 *                     {@code firstAttempt.dir()}), else null
 */
public record CaseResult(Scenario.Case scenarioCase, Status status, String message, String excerpt, Duration time,
                         Path dir, boolean stallOnly, CaseResult firstAttempt) {
    public enum Status {
        PASSED, FAILED, SKIPPED, XFAIL, XPASS;

        public boolean failed() { return this == FAILED || this == XPASS; }
    }

    public CaseResult(Scenario.Case scenarioCase, Status status, String message, String excerpt, Duration time, Path dir) {
        this(scenarioCase, status, message, excerpt, time, dir, false, null);
    }

    /** Passed (or xfailed) only on its rerun: reported as flaky, with the first attempt's failure. */
    public boolean flaky() { return firstAttempt != null && !status.failed(); }
}
