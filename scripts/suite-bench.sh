#!/usr/bin/env bash
# make bench, part 5: suite wall time. The same cases run with --jobs 1 and --jobs J (default 2),
# alternating, SUITE_BENCH_ROUNDS rounds (default 2); then where a case's time goes (scripts/suite-profile.py)
# in the first one-at-a-time round. Output: the lines BenchParsers.suite reads ("round R jobs J wall S s
# passed P failed F"), the profile, a median line.
#   SUITE_BENCH_FILTER  regex of the cases (default: ten short guest cases of four scenarios)
#   SUITE_BENCH_DIR     scenario folder (default scenarios/guest)
#   SUITE_BENCH_JOBS    J (default 2)
#   OUT                 artefacts (default: a temporary folder)
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"
filter=${SUITE_BENCH_FILTER:-smoke|fault-injection|p2p-matrix|hmm-p2pmem}
dir=${SUITE_BENCH_DIR:-scenarios/guest}
rounds=${SUITE_BENCH_ROUNDS:-2}
jobs=${SUITE_BENCH_JOBS:-2}
out=${1:-$(mktemp -d /tmp/p2plab-suite-bench.XXXXXX)}
mkdir -p "$out"
n=$(scripts/lab-env.sh ./p2plab suite "$dir" --filter "$filter" --list 2>/dev/null | wc -l)
[ "$n" -gt 0 ] || die "no cases match '$filter' in $dir"
echo "suite bench: $n cases of $dir matching /$filter/, --jobs 1 vs --jobs $jobs, $rounds interleaved rounds, host $(nproc) CPUs"
rc=0
for r in $(seq 1 "$rounds"); do
    for j in 1 "$jobs"; do
        o=$out/r$r-j$j
        t0=$(date +%s.%N)
        scripts/lab-env.sh ./p2plab suite "$dir" --filter "$filter" --jobs "$j" --out "$o" >"$o.log" 2>&1 || rc=1
        t1=$(date +%s.%N)
        printf 'round %d jobs %d wall %.1f s passed %d failed %d load %s\n' "$r" "$j" "$(echo "$t1 - $t0" | bc)" \
            "$(grep -cE '^\S+ +(PASSED|FLAKY|XFAIL) ' "$o.log")" "$(grep -cE '^\S+ +(FAILED|XPASS) ' "$o.log")" \
            "$(cut -d' ' -f1 /proc/loadavg)"
    done
done
echo "profile (round 1, --jobs 1):"
python3 scripts/suite-profile.py "$out/r1-j1"
echo "artefacts: $out"
exit $rc
