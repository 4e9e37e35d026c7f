package io.p2plab.qmp;

/** Base of every failure the QMP / guest-agent clients report. */
public class QmpException extends RuntimeException {
    public QmpException(String message) { super(message); }
    public QmpException(String message, Throwable cause) { super(message, cause); }
}
