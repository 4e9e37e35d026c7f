package io.p2plab.cli;

import io.p2plab.ga.GuestAgent;
import io.p2plab.qmp.QmpClient;
import io.p2plab.scenario.Engine;
import io.p2plab.scenario.Scenario;
import io.p2plab.spec.SpecException;
import io.p2plab.topo.QdevIds;
import io.p2plab.topo.TopoCapture;
import io.p2plab.topo.TopoException;
import io.p2plab.topo.TopoRender;
import io.p2plab.topo.Topology;
import io.p2plab.vm.Vm;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "topo", mixinStandardHelpOptions = true,
        description = {"The guest's PCI tree (root ports, switches, devices, ACS, IOMMU groups) and the kernel's P2P verdict "
                + "for every pair of p2plab devices: a table on stdout, topo.txt / topo.svg / topo.html in --out.",
                "Without --machine it attaches to a running lab: the one whose qemu-ga socket answers (make boot: "
                        + "/tmp/p2plab-vm.*/, controller VMs: $XDG_RUNTIME_DIR or $TMPDIR /p2plab-*/), or --run-dir / --ga."})
public final class TopoCommand implements Callable<Integer> {
    @Option(names = "--machine", paramLabel = "FILE", description = "boot this machine file (or a scenario's machine), capture, quit")
    Path machine;
    @Option(names = "--run-dir", paramLabel = "DIR", description = "a running lab's socket dir (qga.sock, qmp.sock)")
    Path runDir;
    @Option(names = "--ga", paramLabel = "SOCKET", description = "a running guest's qemu-ga socket")
    Path ga;
    @Option(names = "--qmp", paramLabel = "SOCKET", description = "its QMP socket (QEMU device ids in the picture; optional)")
    Path qmp;
    @Option(names = "--out", paramLabel = "DIR", description = "where topo.txt, topo.svg, topo.html go (default build/topo)")
    Path out;
    @Option(names = "--raw", paramLabel = "FILE", description = "also save the guest command's raw output (for bug reports)")
    Path raw;
    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "30", description = "for the guest command (default 30)")
    int timeout;

    @Override
    public Integer call() {
        Path dir = out != null ? out : defaultOut();
        try {
            Topology t;
            String title;
            if (machine != null) {
                Scenario.LoadedMachine lm = Scenario.loadMachine(machine);
                if (!lm.spec().guestAgent() || lm.spec().kernel() == null)
                    throw new TopoException(machine + ": the machine needs a guest kernel and the guest agent");
                Path caseDir = Files.createDirectories(dir.resolve("boot"));
                System.err.println("booting " + machine + " (artefacts in " + caseDir + ") ...");
                try (Vm vm = Vm.launch(lm.spec(), caseDir, System.err::println)) {
                    vm.waitReady();
                    t = capture(vm.guestAgent());
                    t = withIds(t, vm.qmp());
                }
                title = "topology of " + machine;
            } else {
                Path gaSock = ga;
                Path qmpSock = qmp;
                if (gaSock == null) {
                    Path rd = runDir != null ? runDir : discover();
                    gaSock = rd.resolve("qga.sock");
                    if (!Files.exists(gaSock)) throw new TopoException(rd + " has no qga.sock");
                    if (qmpSock == null && Files.exists(rd.resolve("qmp.sock"))) qmpSock = rd.resolve("qmp.sock");
                }
                if (!Files.exists(gaSock)) throw new TopoException("no guest agent socket at " + gaSock + " (is the VM running?)");
                System.err.println("guest agent: " + gaSock + (qmpSock != null ? ", QMP: " + qmpSock : ""));
                GuestAgent g;
                try {
                    g = GuestAgent.connect(gaSock);
                } catch (RuntimeException e) {
                    throw new TopoException("cannot connect to the guest agent at " + gaSock + " (is the VM running?): "
                            + describe(e));
                }
                try (g) {
                    t = capture(g);
                }
                if (qmpSock != null) {
                    try (QmpClient q = connectQmp(qmpSock)) {
                        t = withIds(t, q);
                    } catch (RuntimeException e) {
                        System.err.println("note: no QEMU device ids (QMP at " + qmpSock + ": " + describe(e)
                                + "; another client such as a console session may hold it)");
                    }
                }
                title = "topology of the lab at " + gaSock.getParent();
            }
            System.out.print(TopoRender.text(t));
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("topo.txt"), TopoRender.text(t));
            Files.writeString(dir.resolve("topo.svg"), TopoRender.svg(t, title));
            Files.writeString(dir.resolve("topo.html"), TopoRender.html(t, title));
            System.err.println("wrote " + dir.resolve("topo.txt") + ", topo.svg, topo.html");
            return Main.OK;
        } catch (TopoException | SpecException e) {
            System.err.println("error: " + e.getMessage());
            return Main.USAGE;
        } catch (IOException e) {
            System.err.println("error: " + e.getMessage());
            return Main.USAGE;
        } catch (RuntimeException e) {
            System.err.println("error: " + describe(e));
            return Main.FAILED;
        }
    }

    private Topology capture(GuestAgent g) {
        try {
            return TopoCapture.capture((argv, budget) -> {
                var r = Engine.guestExec(g, argv, budget);
                if (raw != null) {
                    try {
                        Files.write(raw, r.stdout());
                    } catch (IOException e) {
                        System.err.println("warning: cannot write " + raw + ": " + e.getMessage());
                    }
                }
                return r;
            }, Duration.ofSeconds(timeout));
        } catch (TopoException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new TopoException("the guest agent did not run the topology command: " + describe(e));
        }
    }

    /** QMP takes one client at a time: when another one holds it, the greeting never comes; give up after 4 s. */
    private static QmpClient connectQmp(Path sock) {
        java.util.concurrent.CompletableFuture<QmpClient> f = java.util.concurrent.CompletableFuture.supplyAsync(() -> QmpClient.connect(sock));
        try {
            return f.get(4, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            f.thenAccept(QmpClient::close);
            throw new TopoException("no QMP greeting within 4 s");
        } catch (java.util.concurrent.ExecutionException e) {
            throw new TopoException(describe(e.getCause()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TopoException("interrupted");
        }
    }

    private static Topology withIds(Topology t, QmpClient q) {
        Map<String, String> ids = QdevIds.fromQueryPci(QmpClient.join(q.execute("query-pci", null, Duration.ofSeconds(10))));
        return t.withQdevIds(ids);
    }

    static String describe(Throwable e) {
        Throwable t = QmpClient.unwrap(e);
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }

    static Path defaultOut() {
        String root = System.getenv("P2PLAB_ROOT");
        return root != null ? Path.of(root, "build", "topo") : Path.of("build", "topo");
    }

    /** Socket dirs of running labs: the ones whose qga.sock accepts a connection. */
    static List<Path> liveRunDirs() {
        Set<Path> bases = new LinkedHashSet<>();
        String xdg = System.getenv("XDG_RUNTIME_DIR");
        if (xdg != null) bases.add(Path.of(xdg));
        bases.add(Path.of(System.getProperty("java.io.tmpdir")));
        String tmp = System.getenv("TMPDIR");
        if (tmp != null) bases.add(Path.of(tmp));
        bases.add(Path.of("/tmp"));
        List<Path> live = new ArrayList<>();
        for (Path b : bases) {
            if (!Files.isDirectory(b)) continue;
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(b, "p2plab-*")) {
                for (Path d : ds) {
                    Path s = d.resolve("qga.sock");
                    if (Files.exists(s) && accepts(s) && !live.contains(d.toAbsolutePath().normalize())) live.add(d.toAbsolutePath().normalize());
                }
            } catch (IOException ignored) {
                // unreadable base: nothing there for us
            }
        }
        return live;
    }

    /** "  (QEMU pid N since HH:MM:SS, artefacts DIR)" for the QEMU that owns a socket dir, when visible. */
    static String describeLab(Path dir) {
        String qmp = dir.resolve("qmp.sock").toString();
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().arguments().map(a -> java.util.Arrays.stream(a).anyMatch(x -> x.contains(qmp))).orElse(false))
                .findFirst().map(p -> {
                    String[] a = p.info().arguments().orElse(new String[0]);
                    String art = java.util.Arrays.stream(a).filter(x -> x.contains("file=") && x.contains(".img"))
                            .map(x -> x.replaceAll(".*file=([^,]*)/[^/,]*\\.img.*", "$1")).findFirst().orElse(null);
                    String since = p.info().startInstant().map(t -> java.time.LocalTime.ofInstant(t, java.time.ZoneId.systemDefault())
                            .withNano(0).toString()).orElse("?");
                    return "  (QEMU pid " + p.pid() + " since " + since + (art != null ? ", artefacts " + art : "") + ")";
                }).orElse("");
    }

    static boolean accepts(Path sock) {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            return ch.connect(UnixDomainSocketAddress.of(sock));
        } catch (IOException e) {
            return false;
        }
    }

    private static Path discover() {
        List<Path> live = liveRunDirs();
        if (live.isEmpty())
            throw new TopoException("no running lab found (no qga.sock that accepts a connection under /tmp/p2plab-vm.* or "
                    + "p2plab-* runtime dirs): boot one (make boot, make console) or use --machine FILE");
        if (live.size() > 1)
            throw new TopoException("several running labs: pick one with --run-dir DIR:\n  " + String.join("\n  ",
                    live.stream().map(d -> d + describeLab(d)).toList()));
        return live.get(0);
    }
}
