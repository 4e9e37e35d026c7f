package io.p2plab.spec;

/** A malformed scenario / machine spec: message carries "file:line:col: path: what is wrong". */
public final class SpecException extends RuntimeException {
    private final String where;

    public SpecException(String where, String message) {
        super(where == null ? message : where + ": " + message);
        this.where = where;
    }

    public String where() { return where; }
}
