"""Raw-socket QMP loop: the floor any client can reach. Pipelines DEPTH requests, one reply per line.
The fewest bytes a request can be (no id, no newline: QEMU's monitor reads one byte per main-loop
turn and takes a command at its closing brace) and the capabilities a client would ask for: with
"oob" QEMU reads and parses QMP in its monitor I/O thread and queues commands for the main loop, so
pipelined requests overlap with execution. Without it (as this loop was until 2026-11-26) QEMU
handled one command per main-loop turn and the loop ran at ~6.5k/s at every depth, while the
p2plab client (oob by default) reached ~12k/s at depth 2 and more: that was no floor."""
import json, socket, sys, time

def connect(sock):
    """A QMP session in command mode, warmed up; returns run(n, depth) -> seconds for n commands."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile('rb')
    greeting = json.loads(f.readline())
    caps = greeting.get("QMP", {}).get("capabilities", [])
    if "oob" in caps:
        s.sendall(b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n')
    else:
        s.sendall(b'{"execute":"qmp_capabilities"}\n')
    f.readline()
    req = b'{"execute":"query-status"}'
    def run(n, depth):
        t0 = time.perf_counter()
        sent = min(depth, n)
        s.sendall(req * sent)
        got = 0
        while got < n:
            line = f.readline()
            if not line:
                raise SystemExit("QEMU closed the socket")
            if b'"return"' not in line:
                continue
            got += 1
            if sent < n:
                s.sendall(req)
                sent += 1
        return time.perf_counter() - t0
    run(1000, 8)  # warm-up
    return s, run

def report(d, n, t):
    print(f"raw-socket-python {d} {n} {t:.3f} {n / t:.0f}", flush=True)

def main(sock, count, depths):
    s, run = connect(sock)
    for d in depths:
        report(d, count, run(count, d))
    s.close()

def serve(sock):
    """Serve mode (alternate.py): warm up, say ready, then one "DEPTH COUNT" batch per input line."""
    s, run = connect(sock)
    print("ready", flush=True)
    for line in sys.stdin:
        d, n = (int(x) for x in line.split())
        report(d, n, run(n, d))

if sys.argv[2] == 'serve':
    serve(sys.argv[1])
else:
    main(sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3:]])
