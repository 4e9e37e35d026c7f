#!/usr/bin/env bash
# HMM migration benchmark: p2plab.ko (device-private memory in BAR2, every copy on the device's DMA
# engine) vs upstream test_hmm.ko (CPU memcpy into system RAM pretending to be device memory), in
# the SAME guest boot, with the same harness: upstream hmm-tests' benchmark_thp_migration
# (hmm_device_private fixture, /dev/hmm_dmirror0).  Reports the 256 MiB case (THP and 4 KiB pages,
# system->device and device->system) and prints the p2plab/test_hmm throughput ratios.
#   scripts/bench-hmm.sh [OUTDIR]       (default build/bench/hmm-<date>)
# The guest is booted by the controller (./p2plab run OUTDIR/hmm-bench.yaml, a scenario written here
# from scenarios/machines/default.yaml). Output: OUTDIR/run/hmm-bench/ (console.log,
# guest-hmm-bench.stdout, ...), OUTDIR/hmm-bench.txt (the table); the table also goes to stdout.
# The two drivers create the same /dev/hmm_dmirrorN nodes: test_hmm runs first and is unloaded
# before p2plab.ko is loaded with dmirror=1.
source "$(dirname "$0")/lib.sh"

OUT=${1:-$P2PLAB_ROOT/build/bench/hmm-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
# The default machine cut down to one p2plab with a 1 GiB BAR on a root port, 4 GiB RAM, one vCPU,
# and the guest's init not loading p2plab.ko (p2plab.noload=1): the bench loads one driver at a time.
cat >"$OUT/hmm-bench.yaml" <<EOF
name: hmm-bench
timeout: 30m
machine:
  ref: $P2PLAB_ROOT/scenarios/machines/default.yaml
  overrides:
    memory: 4G
    smp: 1
    append: console=ttyS0 panic=-1 no_timer_check loglevel=4 p2plab.noload=1
    root-ports: [{id: rp1}]
    switches: []
    devices: [{driver: p2plab, id: p2p0, bus: rp1, props: {mem-size: 1G}}]
steps:
  - boot: {}
  - guest:
      timeout: 1500
      save: hmm-bench
      shell: |
        T=hmm.hmm_device_private.benchmark_thp_migration
        # alternate the drivers twice: the host is shared, averaging ABAB evens out load drift
        for round in 1 2; do
            echo "BENCH-BEGIN test_hmm"
            if insmod /lib/modules/extra/test_hmm.ko; then /opt/p2plab/bin/hmm-tests -r \$T; rmmod test_hmm || echo "BENCH-ERROR rmmod test_hmm"; else echo "BENCH-ERROR test_hmm.ko"; fi
            echo "BENCH-END test_hmm"
            echo "BENCH-BEGIN p2plab"
            # test_hmm still loaded would own /dev/hmm_dmirror0: the round would measure it, not p2plab
            if [ -e /sys/module/test_hmm ]; then echo "BENCH-ERROR test_hmm still loaded: p2plab round skipped"
            elif insmod /lib/modules/p2plab.ko dmirror=1 p2p_size=64M && [ -e /sys/kernel/debug/p2plab-dmirror/migrate_profile ]; then
                /opt/p2plab/bin/hmm-tests -r \$T; cat /sys/kernel/debug/p2plab-hmm/p2plab0
                echo "BENCH-PROFILE"; cat /sys/kernel/debug/p2plab-dmirror/migrate_profile; rmmod p2plab
            else echo "BENCH-ERROR p2plab.ko (or its dmirror uAPI) did not come up"; rmmod p2plab 2>/dev/null; fi
            echo "BENCH-END p2plab"
        done
EOF
log "running the benchmark guest through the controller (TCG, ~2-5 min)"
"$P2PLAB_ROOT/scripts/lab-env.sh" "$P2PLAB_ROOT/p2plab" run "$OUT/hmm-bench.yaml" --out "$OUT/run" >&2 ||
    log "the benchmark case failed (see $OUT/run/hmm-bench/); parsing what it printed"
res=$OUT/run/hmm-bench/guest-hmm-bench.stdout
[ -f "$res" ] || die "no benchmark output ($res)"

python3 - "$res" "$OUT/hmm-bench.json" >"$OUT/hmm-bench.txt" <<'PY' || { cat "$OUT/hmm-bench.txt"; die "benchmark output incomplete (see $res)"; }
import re, sys
log = open(sys.argv[1], errors="replace").read()
res = {}
for drv in ("test_hmm", "p2plab"):
    secs = re.findall(r"BENCH-BEGIN %s(.*?)BENCH-END %s" % (drv, drv), log, re.S)
    if not secs:
        sys.exit("no %s section" % drv)
    runs = []
    for sec in secs:
        if not re.search(r"^ok \d+ hmm\.hmm_device_private\.benchmark_thp_migration", sec, re.M):
            print("%s: a benchmark_thp_migration run did not pass" % drv)
        b = re.search(r"=== One twenty eight THP Size \(256\.0 MB\) ===(.*?)D->S Throughput[^\n]*", sec, re.S)
        if not b:
            continue
        blk = b.group(0)
        def row(name):
            r = re.search(re.escape(name) + r"\s*\|\s*([\d.]+) \S+\s*\|\s*([\d.]+)", blk)
            return float(r.group(1)), float(r.group(2))
        runs.append({"s2d_ms": row("Sys->Dev Migration"), "d2s_ms": row("Dev->Sys Migration")})
    if not runs:
        sys.exit("no 256 MiB result for %s" % drv)
    res[drv] = {k: tuple(sum(r[k][i] for r in runs) / len(runs) for i in (0, 1)) for k in runs[0]}
    res[drv]["n"] = len(runs)
    res[drv]["runs"] = runs
mib = 256.0
print("HMM migration, 256 MiB, hmm-tests benchmark_thp_migration (5 iterations each, mean of %d/%d runs)" % (res["test_hmm"]["n"], res["p2plab"]["n"]))
print("%-22s %12s %12s %9s" % ("case", "test_hmm", "p2plab", "ratio"))
ratios = []
for key, label in (("s2d_ms", "sys->dev"), ("d2s_ms", "dev->sys")):
    for idx, kind in ((0, "THP"), (1, "4K")):
        t = res["test_hmm"][key][idx]; p = res["p2plab"][key][idx]
        tm, pm = mib / (t / 1000.0), mib / (p / 1000.0)
        ratios.append(pm / tm)
        print("%-22s %8.0f MiB/s %8.0f MiB/s %8.2fx" % ("%s %s" % (label, kind), tm, pm, pm / tm))
print("throughput ratio p2plab/test_hmm (geometric mean): %.2f" %
      (ratios[0] * ratios[1] * ratios[2] * ratios[3]) ** 0.25)
# the same numbers for the report (./p2plab bench-report): one row per case, with every round's MiB/s
# (round i of test_hmm ran just before round i of p2plab: "paired" is the median of their ratios)
import json, statistics
rows = []
for key, label in (("s2d_ms", "sys->dev"), ("d2s_ms", "dev->sys")):
    for idx, kind in ((0, "THP"), (1, "4K")):
        rt = [mib / (r[key][idx] / 1000.0) for r in res["test_hmm"]["runs"]]
        rp = [mib / (r[key][idx] / 1000.0) for r in res["p2plab"]["runs"]]
        tm = mib / (res["test_hmm"][key][idx] / 1000.0); pm = mib / (res["p2plab"][key][idx] / 1000.0)
        rows.append({"case": "%s %s" % (label, kind), "direction": label, "pages": kind,
                     "test_hmm_mib_s": round(tm, 1), "p2plab_mib_s": round(pm, 1), "ratio": round(pm / tm, 3),
                     "paired_ratio": round(statistics.median(p / t for p, t in zip(rp, rt)), 3),
                     "test_hmm_rounds_mib_s": [round(x, 1) for x in rt], "p2plab_rounds_mib_s": [round(x, 1) for x in rp]})
# where p2plab's time went (debugfs p2plab-dmirror/migrate_profile, summed over the last p2plab round:
# every buffer size of the benchmark, THP and 4K together)
prof = re.findall(r"BENCH-PROFILE\n(to_dev:[^\n]*)\n(to_sys:[^\n]*)", log)
if prof:
    print("p2plab migration profile, last round (all sizes, THP + 4K): share of each direction's time")
    for line in prof[-1]:
        d = line.split(":")[0]
        shares = re.findall(r"(\w+)_ms \d+ \((\d+)%", line)
        dma = re.search(r"total_ms (\d+) copy_dma_ms (\d+)(?: copy_alloc_ms (\d+))?", line)
        print("  %-7s %s%s" % (d, ", ".join("%s %s%%" % (n, v) for n, v in shares if v != "0"),
                               " (of %s ms: DMA engine wait %s ms, page allocation %s ms)" % (dma.group(1), dma.group(2), dma.group(3) or "?") if dma else ""))
profile = []
for line in (prof[-1] if prof else ()):
    dma = re.search(r"total_ms (\d+) copy_dma_ms (\d+)(?: copy_alloc_ms (\d+))?", line)
    profile.append({"direction": line.split(":")[0],
                    "total_ms": int(dma.group(1)) if dma else None,
                    "copy_dma_ms": int(dma.group(2)) if dma else None,
                    "copy_alloc_ms": int(dma.group(3)) if dma and dma.group(3) else None,
                    "phases": [{"phase": n, "ms": int(ms), "percent": int(pc)}
                               for n, ms, pc in re.findall(r"(\w+)_ms (\d+) \((\d+)%", line)]})
with open(sys.argv[2], "w") as f:
    json.dump({"part": "hmm", "source": sys.argv[1], "size_mib": mib,
               "benchmark": "hmm-tests hmm.hmm_device_private.benchmark_thp_migration (256 MiB block)",
               "rounds": {"test_hmm": res["test_hmm"]["n"], "p2plab": res["p2plab"]["n"]},
               "rows": rows, "geomean_ratio": round((ratios[0] * ratios[1] * ratios[2] * ratios[3]) ** 0.25, 3),
               "profile": profile}, f, indent=1)
    f.write("\n")
PY
cat "$OUT/hmm-bench.txt"
