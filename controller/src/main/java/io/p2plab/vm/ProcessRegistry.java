package io.p2plab.vm;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/** Every QEMU we start is registered here; a JVM shutdown hook SIGKILLs whatever is left. */
public final class ProcessRegistry {
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(ProcessRegistry::killAll, "p2plab-reaper"));
    }

    private ProcessRegistry() {}

    public static void register(Process p) { LIVE.add(p); }

    public static void unregister(Process p) { LIVE.remove(p); }

    public static int live() {
        LIVE.removeIf(p -> !p.isAlive());
        return LIVE.size();
    }

    public static void killAll() {
        for (Process p : LIVE) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        for (Process p : LIVE) {
            try { p.waitFor(2, TimeUnit.SECONDS); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
        }
        LIVE.clear();
    }
}
