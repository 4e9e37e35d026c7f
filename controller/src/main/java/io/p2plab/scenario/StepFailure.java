package io.p2plab.scenario;

/** A step did not meet its expectation. */
public final class StepFailure extends RuntimeException {
    private final String excerpt;

    public StepFailure(String message) { this(message, null); }

    public StepFailure(String message, String excerpt) {
        super(message);
        this.excerpt = excerpt;
    }

    public String excerpt() { return excerpt; }
}
