"""QEMU's own python qemu.qmp (asyncio) doing COUNT query-status at each DEPTH."""
import asyncio, sys, time
from qemu.qmp import QMPClient

async def connect(sock):
    """A connected, warmed-up client; returns (qmp, run) with run(n, depth) -> seconds."""
    qmp = QMPClient('bench')
    await qmp.connect(sock)
    async def run(n, depth):
        left = [n]
        async def worker():
            while left[0] > 0:
                left[0] -= 1
                await qmp.execute('query-status')
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(depth)))
        return time.perf_counter() - t0
    await run(1000, 8)  # warm-up
    return qmp, run

def report(d, n, s):
    print(f"qemu.qmp-python {d} {n} {s:.3f} {n / s:.0f}", flush=True)

async def main(sock, count, depths):
    qmp, run = await connect(sock)
    for d in depths:
        report(d, count, await run(count, d))
    await qmp.disconnect()

async def serve(sock):
    """Serve mode (alternate.py): warm up, say ready, then one "DEPTH COUNT" batch per input line."""
    qmp, run = await connect(sock)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        d, n = (int(x) for x in line.split())
        report(d, n, await run(n, d))
    await qmp.disconnect()

if sys.argv[2] == 'serve':
    asyncio.run(serve(sys.argv[1]))
else:
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3:]]))
