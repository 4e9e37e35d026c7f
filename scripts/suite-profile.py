#!/usr/bin/env python3
"""Where a suite's time goes, per case and in all, from the artefacts of `./p2plab run|suite --out DIR`.

    scripts/suite-profile.py DIR [DIR ...]        (a case dir, or a run dir holding case dirs)

Phases of a case, from its steps.log (controller timestamps) and console.log (guest kernel timestamps):
  qemu+fw    QEMU start, firmware, kernel decompression: the boot step minus the guest's uptime at
             P2PLAB-READY and minus the topology capture
  kernel     guest kernel start to `Run /init`
  init       /init: kernel modules (insmod of the load order and p2plab.ko), qemu-ga, P2PLAB-READY
  topo       the per-case topology capture (topo.txt / topo.svg; P2PLAB_TOPO=0 turns it off)
  steps      the scenario's own steps after the boot
  end        the kernel log read, the kernel check and QEMU's exit
A case that booted more than once (a reboot or hotplug scenario) or none is counted under steps/end only.
"""
import re
import sys
from datetime import datetime
from pathlib import Path

TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d+)Z (.*)$")
PHASES = ["qemu+fw", "kernel", "init", "topo", "steps", "end"]


def ts(line):
    m = TS.match(line)
    if not m:
        return None, None
    frac = float("0." + m.group(2))
    t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").timestamp() + frac
    return t, m.group(3)


def profile(case: Path):
    steps = (case / "steps.log").read_text(errors="replace").splitlines()
    first = last = None
    boot_ms = topo_ms = None
    step_ms = 0.0
    result_t = last_step_t = None
    for line in steps:
        t, msg = ts(line)
        if t is None:
            continue
        first = first if first is not None else t
        last = t
        m = re.match(r"step (\d+) ok \((\d+) ms\)", msg)
        if m:
            last_step_t = t
            if m.group(1) == "1" and boot_ms is None and any("step 1 boot" in s for s in steps):
                boot_ms = int(m.group(2))
            else:
                step_ms += int(m.group(2))
        m = re.match(r"topology: .*\((\d+) ms\)", msg)
        if m:
            topo_ms = int(m.group(1))
        if msg.startswith("result:"):
            result_t = t
    if first is None or result_t is None:
        return None
    total = (result_t - first) * 1000
    out = dict.fromkeys(PHASES, 0.0)
    out["steps"] = step_ms
    out["end"] = (result_t - (last_step_t or first)) * 1000
    con = case / "console.log"
    ready = init = None
    if con.exists():
        text = con.read_text(errors="replace")
        m = re.search(r"P2PLAB-READY uptime=([\d.]+)s", text)
        ready = float(m.group(1)) * 1000 if m else None
        m = re.search(r"\[\s*([\d.]+)\] Run /init as init process", text)
        init = float(m.group(1)) * 1000 if m else None
    if boot_ms is not None and ready is not None and init is not None:
        topo = topo_ms or 0
        out["topo"] = topo
        out["kernel"] = init
        out["init"] = ready - init
        out["qemu+fw"] = max(0.0, boot_ms - topo - ready)
    elif boot_ms is not None:
        out["steps"] += boot_ms
    out["total"] = total
    return out


def cases(paths):
    for p in map(Path, paths):
        if (p / "steps.log").exists():
            yield p
        else:
            yield from sorted(d for d in p.iterdir() if (d / "steps.log").exists())


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rows = []
    for c in cases(argv[1:]):
        p = profile(c)
        if p:
            rows.append((c.name, p))
    if not rows:
        print("no case with a steps.log and a result under " + " ".join(argv[1:]), file=sys.stderr)
        return 1
    w = max(len(n) for n, _ in rows)
    print(f"{'case':<{w}} " + " ".join(f"{h:>8}" for h in PHASES + ["total"]) + "   (seconds)")
    sums = dict.fromkeys(PHASES + ["total"], 0.0)
    for n, p in rows:
        print(f"{n:<{w}} " + " ".join(f"{p[h] / 1000:8.1f}" for h in PHASES + ["total"]))
        for h in sums:
            sums[h] += p[h]
    print(f"{'all ' + str(len(rows)) + ' cases':<{w}} " + " ".join(f"{sums[h] / 1000:8.1f}" for h in PHASES + ["total"]))
    tot = sums["total"] or 1
    print(f"{'share':<{w}} " + " ".join(f"{100 * sums[h] / tot:7.0f}%" for h in PHASES) + f" {100:7.0f}%")
    boot = sums["qemu+fw"] + sums["kernel"] + sums["init"] + sums["topo"]
    print(f"boot to ready (qemu+fw+kernel+init+topo): {boot / 1000:.1f} s of {tot / 1000:.1f} s "
          f"({100 * boot / tot:.0f}%), {boot / 1000 / len(rows):.1f} s a case")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
