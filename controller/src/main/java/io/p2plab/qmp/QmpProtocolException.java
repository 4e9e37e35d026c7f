package io.p2plab.qmp;

/** The peer sent something that violates the protocol (id-less error, bad JSON, oversize reply...). */
public final class QmpProtocolException extends QmpException {
    public QmpProtocolException(String message) { super(message); }
    public QmpProtocolException(String message, Throwable cause) { super(message, cause); }
}
