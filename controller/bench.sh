#!/usr/bin/env bash
# QMP throughput: COUNT (default 10000) query-status at 1 and 8 commands in flight against one real
# QEMU (-machine none), for the p2plab Java client, QEMU's python qemu.qmp and a raw-socket loop, in
# ROUNDS (default 5) interleaved rounds; medians and their ratio to the raw loop. The Java client warms up
# until the JIT is quiet (QmpBench: at least 5000 commands per depth, at most 10 s) so that a C2 compile
# does not run on the 2 cores during the measurement; it also reports the most commands it saw in flight.
#   controller/bench.sh [COUNT]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
COUNT=${1:-10000}
DEPTHS="1 8"
QEMU=${P2PLAB_QEMU:-$(command -v qemu-system-x86_64 || true)}
[ -n "$QEMU" ] || { echo "bench: qemu-system-x86_64 not found (set P2PLAB_QEMU)" >&2; exit 2; }
PYQMP=${P2PLAB_PYQMP:-${P2PLAB_CACHE:-$HOME/.cache/p2plab}/src/qemu-10.0.13/python}

"$ROOT/p2plab" --version >/dev/null   # builds the jar if needed
JAR=$HERE/target/p2plab.jar

RUN=$(mktemp -d /tmp/p2plab-bench.XXXXXX)
chmod 700 "$RUN"
cleanup() { [ -n "${QPID:-}" ] && kill "$QPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
"$QEMU" -machine none -nodefaults -display none -qmp "unix:$RUN/qmp.sock,server=on,wait=off" &
QPID=$!
for _ in $(seq 100); do [ -S "$RUN/qmp.sock" ] && break; sleep 0.05; done
[ -S "$RUN/qmp.sock" ] || { echo "bench: QEMU did not start" >&2; exit 1; }

: >"$RUN/results"
ROUNDS=${ROUNDS:-5}
echo "QEMU $("$QEMU" --version | head -1 | awk '{print $4}'), $COUNT query-status per run, depths: $DEPTHS," \
     "$ROUNDS interleaved rounds (median reported; the machine is shared, so rounds vary)" >&2
for round in $(seq "$ROUNDS"); do
    python3 "$HERE/bench/raw_bench.py" "$RUN/qmp.sock" "$COUNT" $DEPTHS | tee -a "$RUN/results" >&2
    java --add-modules=jdk.incubator.foreign --enable-native-access=ALL-UNNAMED -cp "$JAR" io.p2plab.bench.QmpBench \
        "$RUN/qmp.sock" "$COUNT" $DEPTHS 2> >(grep -v 'incubator modules' >&2) | tee -a "$RUN/results" >&2
    if [ -d "$PYQMP/qemu/qmp" ]; then
        PYTHONPATH=$PYQMP python3 "$HERE/bench/pyqmp_bench.py" "$RUN/qmp.sock" "$COUNT" $DEPTHS | tee -a "$RUN/results" >&2 \
            || echo "bench: qemu.qmp run failed" >&2
    elif [ "$round" = 1 ]; then
        echo "bench: $PYQMP has no qemu.qmp (run scripts/fetch-qemu-src.sh); skipping it" >&2
    fi
done

python3 - "$RUN/results" <<'PY'
import sys, collections
import statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
runs = collections.OrderedDict()
for name, d, n, s, rate in rows:
    runs.setdefault((name, int(d)), []).append(float(rate))
raw = {d: statistics.median(v) for (name, d), v in runs.items() if name == 'raw-socket-python'}
print(f"{'client':<18} {'depth':>5} {'count':>6} {'median/s':>9} {'min/s':>7} {'max/s':>7} {'vs raw':>7}")
for (name, d), v in runs.items():
    m = statistics.median(v)
    print(f"{name:<18} {d:>5} {rows[0][2]:>6} {m:>9.0f} {min(v):>7.0f} {max(v):>7.0f} {m / raw[d]:>6.2f}x")
PY
