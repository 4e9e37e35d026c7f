"""Runs the QMP clients side by side: each is started once (and warmed up once) in serve mode, then they
take turns, batch after batch, each doing COUNT query-status at one depth while the others wait. A
client's ratio to the raw loop is taken per round (the two batches ran seconds apart, under the same load
of a shared machine) and the median of those paired ratios is reported with the median rates.
  alternate.py ROUNDS COUNT DEPTHS NAME=CMD...   (each CMD: reads "DEPTH COUNT" lines, answers
                                                 "NAME DEPTH COUNT SECONDS RATE", prints "ready" first)
"""
import shlex, statistics, subprocess, sys

def main():
    rounds, count = int(sys.argv[1]), int(sys.argv[2])
    depths = [int(d) for d in sys.argv[3].split()]
    clients = []
    for spec in sys.argv[4:]:
        name, cmd = spec.split('=', 1)
        p = subprocess.Popen(cmd, shell=True, executable='/bin/bash', stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        line = p.stdout.readline().strip()
        if line != 'ready':
            print(f"bench: {name} did not start (said {line!r}); left out", file=sys.stderr)
            p.kill()
            continue
        clients.append((name, p))
    if not clients or clients[0][0] != 'raw-socket-python':
        sys.exit("bench: the raw socket loop must be first and must start")
    rates = {}   # (name, depth) -> [rate per round]
    for r in range(rounds):
        order = clients[r % len(clients):] + clients[:r % len(clients)]   # rotate who goes first
        for d in depths:
            for name, p in order:
                p.stdin.write(f"{d} {count}\n")
                p.stdin.flush()
                out = p.stdout.readline().split()
                if len(out) != 5:
                    sys.exit(f"bench: {name} failed at depth {d} (round {r + 1})")
                print(' '.join(out), file=sys.stderr, flush=True)
                rates.setdefault((name, d), []).append(float(out[4]))
    for _, p in clients:
        p.stdin.close()
        p.wait()
    print(f"{'client':<18} {'depth':>5} {'count':>6} {'median/s':>9} {'min/s':>7} {'max/s':>7} {'vs raw':>7} {'paired':>7}")
    for name, _ in clients:
        for d in depths:
            v, raw = rates[(name, d)], rates[('raw-socket-python', d)]
            m = statistics.median(v)
            paired = statistics.median(x / y for x, y in zip(v, raw))
            print(f"{name:<18} {d:>5} {count:>6} {m:>9.0f} {min(v):>7.0f} {max(v):>7.0f} "
                  f"{m / statistics.median(raw):>6.2f}x {paired:>6.2f}x")

main()
