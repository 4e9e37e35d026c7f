package io.p2plab.scenario;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Outcome of one case.
 *
 * @param rerunnable the case failed only in ways the emulator produces on its own, so the engine
 *                   runs it once more ({@link StallRerun}): RCU stall / soft-lockup reports only (no
 *                   other splat kind, no missing expected splat, no timeout), or QEMU aborting on an
 *                   assertion in its own core code (not in the p2plab device) with a clean kernel log
 * @param firstAttempt the failed first run when this result is a rerun (its artefacts stay in
 *                     {@code firstAttempt.dir()}), else null
 */
public record CaseResult(Scenario.Case scenarioCase, Status status, String message, String excerpt, Duration time,
                         Path dir, boolean rerunnable, CaseResult firstAttempt) {
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
