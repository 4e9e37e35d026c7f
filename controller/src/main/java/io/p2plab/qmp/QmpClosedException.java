package io.p2plab.qmp;

/** The connection went away (QEMU closed the socket, died, or the client was closed). */
public final class QmpClosedException extends QmpException {
    public QmpClosedException(String message) { super(message); }
    public QmpClosedException(String message, Throwable cause) { super(message, cause); }
}
