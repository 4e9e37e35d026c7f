#!/usr/bin/env bash
# QMP throughput: COUNT (default 10000) query-status at 1 and 8 commands in flight against one real
# QEMU (-machine none), for the p2plab Java client, QEMU's python qemu.qmp and a raw-socket loop. Each
# client starts once and warms up once, then they take turns batch by batch (bench/alternate.py) for
# ROUNDS (default 10) rounds: medians, and the median of the per-round ratios to the raw loop ("paired":
# batches seconds apart see the same load of a shared machine). The Java client warms up until the JIT is
# quiet (QmpBench: at least 5000 commands per depth through its serve loop's own code, then 3 quiet rounds
# in a row, at most 20 s) so that a C2 compile does not run on the 2 cores during the measurement, and
# says so if a batch did not keep DEPTH commands in flight.
#   controller/bench.sh [COUNT]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
COUNT=${1:-10000}
DEPTHS=${QMP_DEPTHS:-1 8}   # make bench: 1 2 4 8 16 (throughput vs depth in report.html)
QEMU=${P2PLAB_QEMU:-$(command -v qemu-system-x86_64 || true)}
[ -n "$QEMU" ] || { echo "bench: qemu-system-x86_64 not found (set P2PLAB_QEMU)" >&2; exit 2; }
PYQMP=${P2PLAB_PYQMP:-${P2PLAB_CACHE:-$HOME/.cache/p2plab}/src/qemu-10.0.13/python}

"$ROOT/p2plab" --version >/dev/null   # builds the jar if needed
JAR=$HERE/target/p2plab.jar

RUN=$(mktemp -d /tmp/p2plab-bench.XXXXXX)
chmod 700 "$RUN"
cleanup() { [ -n "${QPID:-}" ] && kill "$QPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
# one QMP monitor per client (a QMP socket serves one connection at a time), all in the same QEMU
"$QEMU" -machine none -nodefaults -display none -qmp "unix:$RUN/raw.sock,server=on,wait=off" \
    -qmp "unix:$RUN/java.sock,server=on,wait=off" -qmp "unix:$RUN/pyqmp.sock,server=on,wait=off" &
QPID=$!
for _ in $(seq 100); do [ -S "$RUN/pyqmp.sock" ] && break; sleep 0.05; done
[ -S "$RUN/pyqmp.sock" ] || { echo "bench: QEMU did not start" >&2; exit 1; }

ROUNDS=${ROUNDS:-10}
echo "QEMU $("$QEMU" --version | head -1 | awk '{print $4}'), $COUNT query-status per batch, depths: $DEPTHS," \
     "$ROUNDS rounds; the clients take turns batch by batch (paired = median of per-round ratios to raw)" >&2
clients=("raw-socket-python=python3 $HERE/bench/raw_bench.py $RUN/raw.sock serve"
         "p2plab-java=java --add-modules=jdk.incubator.foreign --enable-native-access=ALL-UNNAMED -cp $JAR io.p2plab.bench.QmpBench --serve $RUN/java.sock $DEPTHS 2> >(grep -v 'incubator modules' >&2)")
if [ -d "$PYQMP/qemu/qmp" ]; then
    clients+=("qemu.qmp-python=PYTHONPATH=$PYQMP python3 $HERE/bench/pyqmp_bench.py $RUN/pyqmp.sock serve")
else
    echo "bench: $PYQMP has no qemu.qmp (run scripts/fetch-qemu-src.sh); skipping it" >&2
fi
python3 "$HERE/bench/alternate.py" "$ROUNDS" "$COUNT" "$DEPTHS" "${clients[@]}"
