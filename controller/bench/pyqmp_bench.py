"""QEMU's own python qemu.qmp (asyncio) doing COUNT query-status at each DEPTH."""
import asyncio, sys, time
from qemu.qmp import QMPClient

async def main(sock, count, depths):
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
    for d in depths:
        s = await run(count, d)
        print(f"qemu.qmp-python {d} {count} {s:.3f} {count / s:.0f}", flush=True)
    await qmp.disconnect()

async def serve(sock):
    """Serve mode (alternate.py): warm up, say ready, then one "DEPTH COUNT" batch per input line."""
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
    await run(1000, 8)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        d, n = (int(x) for x in line.split())
        s = await run(n, d)
        print(f"qemu.qmp-python {d} {n} {s:.3f} {n / s:.0f}", flush=True)
    await qmp.disconnect()

if sys.argv[2] == 'serve':
    asyncio.run(serve(sys.argv[1]))
else:
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3:]]))
