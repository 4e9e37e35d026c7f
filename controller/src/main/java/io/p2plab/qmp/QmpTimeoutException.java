package io.p2plab.qmp;

/** No reply within the command's timeout. The connection stays usable; a late reply is discarded. */
public final class QmpTimeoutException extends QmpException {
    public QmpTimeoutException(String message) { super(message); }
}
