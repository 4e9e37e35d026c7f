package io.p2plab.rpc;

import io.p2plab.qmp.QmpException;
import jdk.incubator.foreign.CLinker;
import jdk.incubator.foreign.FunctionDescriptor;
import jdk.incubator.foreign.MemoryAccess;
import jdk.incubator.foreign.MemoryAddress;
import jdk.incubator.foreign.MemorySegment;
import jdk.incubator.foreign.ResourceScope;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodType;

/**
 * sendmsg(2) with one SCM_RIGHTS file descriptor and a single space byte as payload (what QEMU's own
 * python client sends). Netty's own sendFd sends one uninitialised byte, which QEMU's JSON lexer may
 * treat as garbage (a parse error, or worse the start of a token), so it is not used.
 * Uses the JDK 17 incubating foreign linker (run with --add-modules jdk.incubator.foreign).
 */
public final class FdPassing {
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_DONTWAIT = 0x40;
    private static final MethodHandle SENDMSG;
    private static final Throwable UNAVAILABLE;

    static {
        MethodHandle h = null;
        Throwable why = null;
        try {
            MemoryAddress sym = CLinker.systemLookup().lookup("sendmsg")
                    .orElseThrow(() -> new IllegalStateException("sendmsg not found in libc"));
            h = CLinker.getInstance().downcallHandle(sym,
                    MethodType.methodType(long.class, int.class, MemoryAddress.class, int.class),
                    FunctionDescriptor.of(CLinker.C_LONG, CLinker.C_INT, CLinker.C_POINTER, CLinker.C_INT));
        } catch (Throwable t) {
            why = t;
        }
        SENDMSG = h;
        UNAVAILABLE = why;
    }

    private FdPassing() {}

    public static boolean available() { return SENDMSG != null; }

    public static String unavailableReason() {
        return UNAVAILABLE == null ? null : UNAVAILABLE.toString()
                + " (run the JVM with --add-modules=jdk.incubator.foreign --enable-native-access=ALL-UNNAMED)";
    }

    /**
     * Sends {@code fd} over the connected Unix socket {@code sock} together with one ' ' byte.
     * @return true if sent, false if the socket would block (retry later)
     */
    public static boolean send(int sock, int fd) {
        if (SENDMSG == null) throw new QmpException("fd passing unavailable: " + unavailableReason());
        try (ResourceScope scope = ResourceScope.newConfinedScope()) {
            MemorySegment data = MemorySegment.allocateNative(8, 8, scope);
            MemoryAccess.setByteAtOffset(data, 0, (byte) ' ');
            MemorySegment iov = MemorySegment.allocateNative(16, 8, scope);
            MemoryAccess.setAddressAtOffset(iov, 0, data.address());
            MemoryAccess.setLongAtOffset(iov, 8, 1);
            MemorySegment cmsg = MemorySegment.allocateNative(24, 8, scope); // CMSG_SPACE(sizeof(int))
            MemoryAccess.setLongAtOffset(cmsg, 0, 20);                      // CMSG_LEN(sizeof(int))
            MemoryAccess.setIntAtOffset(cmsg, 8, SOL_SOCKET);
            MemoryAccess.setIntAtOffset(cmsg, 12, SCM_RIGHTS);
            MemoryAccess.setIntAtOffset(cmsg, 16, fd);
            MemorySegment msg = MemorySegment.allocateNative(56, 8, scope);  // struct msghdr
            msg.fill((byte) 0);
            MemoryAccess.setAddressAtOffset(msg, 16, iov.address());
            MemoryAccess.setLongAtOffset(msg, 24, 1);
            MemoryAccess.setAddressAtOffset(msg, 32, cmsg.address());
            MemoryAccess.setLongAtOffset(msg, 40, 24);
            long r = (long) SENDMSG.invokeExact(sock, msg.address(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r == 1) return true;
            if (r < 0) return false;
            throw new QmpException("sendmsg(SCM_RIGHTS) sent " + r + " bytes");
        } catch (QmpException e) {
            throw e;
        } catch (Throwable t) {
            throw new QmpException("sendmsg(SCM_RIGHTS) failed: " + t, t);
        }
    }
}
