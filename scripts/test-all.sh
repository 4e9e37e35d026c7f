#!/usr/bin/env bash
# `make test`: every test stage of the lab, in dependency order, each bounded in time. A failing stage
# does not stop the later ones (unless they need what it failed to build); the run fails if any did.
# Prints a summary table and a closing "N passed, N failed, N skipped" line counted from the JUnit XML
# and TAP every stage leaves in build/test-results/<stage>/.
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"

results=$P2PLAB_ROOT/build/test-results
rm -rf "$results"; mkdir -p "$results"
export P2PLAB_RESULTS=$results

# stage name : make target : time limit (s)
stages=(
    "lint:lint:600"
    "controller:controller-test:1500"
    "qemu:qemu-test:2400"
    "guest:guest-test:1800"
    "hmm:hmm-test:1800"
    "stress:stress-test:900"
    "svm:svm-test:1800"
    "debug:debug-test:3000"     # the PROFILE=debug kernel: its cold build + a selection (docs/debug-kernel.md)
)
[ -n "${P2PLAB_STAGES:-}" ] && IFS=',' read -r -a only <<<"$P2PLAB_STAGES"

declare -A rc_of time_of
failed=0
for s in "${stages[@]}"; do
    IFS=: read -r name target limit <<<"$s"
    if [ -n "${only:-}" ] && ! printf '%s\n' "${only[@]}" | grep -qx "$name"; then continue; fi
    mkdir -p "$results/$name"
    log "=== stage $name (make $target, limit ${limit}s) ==="
    t0=$(date +%s)
    set +e
    timeout --kill-after=30 "$limit" make --no-print-directory "$target" OUT="$results/$name/out" \
        2>&1 | tee "$results/$name/log.txt"
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 124 ] && log "stage $name hit its ${limit}s limit"
    rc_of[$name]=$rc; time_of[$name]=$(( $(date +%s) - t0 ))
    # the guest programs' own TAP (kselftest) saved by the scenarios counts test by test in the tally
    # (a stage may have none: grep's "no match" must not end the run under set -e / pipefail)
    { find "$results/$name" -name 'guest-*.stdout' -exec grep -l '^TAP version' {} + 2>/dev/null || true; } |
        while read -r f; do cp "$f" "${f%.stdout}.tap"; done
    [ "$rc" -eq 0 ] || failed=1
done

python3 "$P2PLAB_ROOT/scripts/tally.py" "$results" \
    $(for s in "${stages[@]}"; do IFS=: read -r n _ _ <<<"$s"; [ -n "${rc_of[$n]:-}" ] && echo "$n=${rc_of[$n]}:${time_of[$n]}"; done)
tally_rc=$?
[ "$failed" -eq 0 ] && [ "$tally_rc" -eq 0 ] || exit 1
