package io.p2plab.rpc;

import io.netty.handler.codec.DecoderException;

/** A reply/event exceeded the configured size cap; the connection is closed. */
public final class ReplyTooLargeException extends DecoderException {
    public ReplyTooLargeException(int cap) {
        super("QMP message exceeds the reply size cap of " + cap + " bytes; connection closed");
    }
}
