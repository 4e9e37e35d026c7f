package io.p2plab.topo;

/** The guest's topology could not be read or parsed; the message says why. */
public final class TopoException extends RuntimeException {
    public TopoException(String message) {
        super(message);
    }

    public TopoException(String message, Throwable cause) {
        super(message, cause);
    }
}
