#!/usr/bin/env bash
# Guest smoke test: boot the default topology (scripts/boot.sh) under several CPU/IOMMU setups, run
# /opt/p2plab/bin/p2plab-tests on the console (p2plab.autotest=1), then on the first VM the
# fault-injection phases (QMP qom-set + qemu-ga guest-exec) and the bandwidth probe. Fails on any
# test failure or kernel splat (BUG, WARNING, Oops, KASAN, lockdep, Call Trace) in the console or
# dmesg.
#
#   scripts/guest-smoke.sh                 all setups
#   SMOKE_SETUPS="intel epyc-iommu" scripts/guest-smoke.sh
# Setups: intel (Nehalem CPU: far pair refused), epyc (AMD Zen: far pair through the host bridge),
#         intel-iommu, epyc-iommu (intel-iommu + intel_iommu=on), intx (p2plab.use_msix=0: legacy
#         INTx), max (TCG's default -cpu max), intel-iommu-acs, epyc-iommu-acs (ACS on the switch
#         downstream ports: Linux sets P2P redirect with the IOMMU on).
# Logs: $SMOKE_OUT (default build/guest-smoke/<setup>/{console.log,dmesg.log,tests.tap,...}).
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"

SETUPS=${SMOKE_SETUPS:-intel epyc intel-iommu epyc-iommu intx}
OUT=${SMOKE_OUT:-$P2PLAB_ROOT/build/guest-smoke}
VMCTL=$P2PLAB_ROOT/scripts/guest-vmctl.py
SPLAT='BUG:|WARNING:|Oops|KASAN|UBSAN|lockdep|circular locking|Call Trace|general protection|Kernel panic|soft lockup|hung_task|cut here'

t=$(date +%s)
QEMU=${P2PLAB_QEMU:-$(scripts/build-qemu.sh | tail -1)} || die "QEMU build failed"
t_k0=$(date +%s.%N)
scripts/build-kmod.sh >/dev/null || die "kmod build failed"
t_k1=$(date +%s.%N)
GUEST=$(scripts/build-guest.sh | tail -1) || die "guest build failed"
log "qemu $QEMU, guest $GUEST (builds took $(( $(date +%s) - t )) s)"
mkdir -p "$OUT"
summary=$OUT/summary.txt
: >"$summary"
fail=0
qpid=""
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; true; }
trap cleanup EXIT

tap_totals() {  # file -> "pass fail skip"
    sed -n 's/^# Totals: pass:\([0-9]*\) fail:\([0-9]*\) xfail:[0-9]* xpass:[0-9]* skip:\([0-9]*\).*/\1 \2 \3/p' "$1" | tail -1
}

run_setup() {
    local name=$1 cpu iommu=0 acs=0 append="" d=$OUT/$1 t0 tready ttests rc ready
    case $name in
    intel) cpu=Nehalem ;;
    epyc) cpu=EPYC ;;
    intel-iommu) cpu=Nehalem; iommu=1 ;;
    epyc-iommu) cpu=EPYC; iommu=1 ;;
    max) cpu=max ;;
    intx) cpu=Nehalem; append="p2plab.use_msix=0" ;;
    intel-iommu-acs) cpu=Nehalem; iommu=1; acs=1 ;;
    epyc-iommu-acs) cpu=EPYC; iommu=1; acs=1 ;;
    *) die "unknown setup $name" ;;
    esac
    rm -rf "$d"; mkdir -p "$d"
    log "[$name] boot: -cpu $cpu iommu=$iommu"
    t0=$(date +%s.%N)
    P2PLAB_QEMU=$QEMU P2PLAB_GUEST=$GUEST P2PLAB_RUN=$d P2PLAB_SERIAL=$d/console.log \
        P2PLAB_CPU=$cpu P2PLAB_IOMMU=$iommu P2PLAB_ACS=$acs P2PLAB_APPEND="p2plab.autotest=1 $append" \
        scripts/boot.sh >"$d/qemu.log" 2>&1 &
    qpid=$!
    ready="" ; tready=""
    for _ in $(seq 1 1200); do
        if [ -z "$tready" ] && grep -q '^P2PLAB-READY' "$d/console.log" 2>/dev/null; then
            tready=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
            log "[$name] P2PLAB-READY after $tready s wall ($(grep -m1 '^P2PLAB-READY' "$d/console.log"))"
        fi
        grep -q '^P2PLAB-TESTS-DONE' "$d/console.log" 2>/dev/null && { ready=1; break; }
        kill -0 "$qpid" 2>/dev/null || break
        sleep 0.5
    done
    ttests=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    if [ -z "$ready" ]; then
        log "[$name] FAIL: no P2PLAB-TESTS-DONE (see $d/console.log, $d/qemu.log)"
        tail -20 "$d/console.log" >&2; fail=1
        kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=""
        echo "$name: NO RESULT" >>"$summary"; return
    fi
    sed -n '/^TAP version/,/^P2PLAB-TESTS-DONE/p' "$d/console.log" | tr -d '\r' >"$d/tests.tap"
    rc=$(sed -n 's/^P2PLAB-TESTS-DONE rc=\([0-9]*\).*/\1/p' "$d/console.log" | tr -d '\r')
    read -r p f s < <(tap_totals "$d/tests.tap")
    log "[$name] p2plab-tests rc=$rc pass=$p fail=$f skip=$s (boot+tests $ttests s)"
    grep -E '^not ok' "$d/tests.tap" >&2 || true
    [ "$rc" = 0 ] || fail=1
    local extra=""
    "$VMCTL" "$d" ping 60 >/dev/null 2>&1 || log "[$name] guest agent not answering"
    "$VMCTL" "$d" exec --timeout 300 -- /opt/p2plab/bin/p2plab-bw 64 3 >"$d/bw.txt" 2>&1 || true
    sed 's/^/    /' "$d/bw.txt" >&2
    if [ "$name" = "${SETUPS%% *}" ]; then
        fault_phases "$d" || fail=1
        extra=" faults=$(cat "$d/faults.result")"
    fi
    "$VMCTL" "$d" exec -- /bin/dmesg >"$d/dmesg.log" 2>&1 || true
    "$VMCTL" "$d" qmp '{"execute":"quit"}' >/dev/null 2>&1 || kill "$qpid"
    wait "$qpid" 2>/dev/null; qpid=""
    if grep -Eq "$SPLAT" "$d/console.log" "$d/dmesg.log"; then
        log "[$name] FAIL: kernel splat:"; grep -En "$SPLAT" "$d/console.log" "$d/dmesg.log" | head -20 >&2
        fail=1; extra+=" SPLAT"
    fi
    echo "$name: cpu=$cpu iommu=$iommu acs=$acs rc=$rc pass=$p fail=$f skip=$s ready=${tready}s total=${ttests}s$extra" >>"$summary"
}

# fault injection on p2plab0 (QOM id p0): QMP qom-set, then the matching p2plab-tests case
fault_phases() {
    local d=$1 k r ok=0 bad=0
    "$VMCTL" "$d" ping 60 || { log "guest agent not answering"; echo "no-agent" >"$d/faults.result"; return 1; }
    for k in fail-nth corrupt-next drop-irqs timeout link-down link-up; do
        case $k in
        fail-nth) "$VMCTL" "$d" qom-set p0 fail-nth 1 ;;
        corrupt-next) "$VMCTL" "$d" qom-set p0 corrupt-next true ;;
        # slow the device down so the driver really waits for the (dropped) interrupt
        drop-irqs) "$VMCTL" "$d" qom-set p0 latency-us 100000 && "$VMCTL" "$d" qom-set p0 drop-irqs 1 ;;
        timeout) "$VMCTL" "$d" qom-set p0 latency-us 2000000 ;;
        link-down) "$VMCTL" "$d" qom-set p0 link-down true ;;
        link-up) "$VMCTL" "$d" qom-set p0 link-down false ;;
        esac
        "$VMCTL" "$d" exec --timeout 120 --env P2PLAB_FAULT=$k --env P2PLAB_FAULT_DEV=0 -- \
            /opt/p2plab/bin/p2plab-tests -f fault >"$d/fault-$k.tap" 2>&1
        r=$?
        case $k in drop-irqs|timeout) "$VMCTL" "$d" qom-set p0 latency-us 0 ;; esac
        if [ $r = 0 ] && grep -q '^ok 1 fault.injected$' "$d/fault-$k.tap"; then
            ok=$((ok + 1)); log "  fault $k: ok"
        else
            bad=$((bad + 1)); log "  fault $k: FAILED (rc $r)"; sed 's/^/    /' "$d/fault-$k.tap" >&2
        fi
    done
    # the whole suite again after the faults: the system stayed healthy
    "$VMCTL" "$d" exec --timeout 300 -- /opt/p2plab/bin/p2plab-tests >"$d/after-faults.tap" 2>&1
    r=$?
    read -r p f s < <(tap_totals "$d/after-faults.tap")
    log "  suite after faults: rc=$r pass=$p fail=$f skip=$s"
    [ $r = 0 ] || bad=$((bad + 1))
    # driver unbind/rebind: rmmod + insmod (remove() for every device, HMM eviction, then probe)
    if "$VMCTL" "$d" exec --timeout 120 -- /bin/sh -c \
        'rmmod p2plab && insmod /lib/modules/p2plab.ko && sleep 1 && ls /dev/p2plab* && p2plab-tests -f dev -f dma' \
        >"$d/reload.tap" 2>&1; then
        ok=$((ok + 1)); log "  rmmod/insmod + tests: ok"
    else
        bad=$((bad + 1)); log "  rmmod/insmod + tests: FAILED"; tail -20 "$d/reload.tap" >&2
    fi
    # surprise-free hot-unplug of p2plab2 (own root port, pciehp) with the others busy afterwards
    "$VMCTL" "$d" qmp '{"execute":"device_del","arguments":{"id":"p2"}}' >"$d/unplug.log" 2>&1
    if "$VMCTL" "$d" exec --timeout 60 -- /bin/sh -c \
        'for i in $(seq 1 40); do [ -e /dev/p2plab2 ] || break; sleep 0.5; done; [ ! -e /dev/p2plab2 ] && p2plab-tests -f pair' \
        >>"$d/unplug.log" 2>&1; then
        ok=$((ok + 1)); log "  hot-unplug of p2plab2: ok"
    else
        bad=$((bad + 1)); log "  hot-unplug of p2plab2: FAILED"; tail -20 "$d/unplug.log" >&2
    fi
    echo "$ok/$((ok + bad))" >"$d/faults.result"
    [ $bad = 0 ]
}

for s in $SETUPS; do run_setup "$s"; done
{
    echo "module build: $(awk -v a="$t_k0" -v b="$t_k1" 'BEGIN{printf "%.1f", b-a}') s (cached if ~0)"
} >>"$summary"
log "summary ($summary):"; cat "$summary" >&2
[ $fail = 0 ] && log "guest smoke: PASS" || log "guest smoke: FAIL"
exit $fail
