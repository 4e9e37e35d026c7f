package io.p2plab.vm;

/** Launching or managing a VM failed. */
public class VmException extends RuntimeException {
    public VmException(String message) { super(message); }
    public VmException(String message, Throwable cause) { super(message, cause); }
}
