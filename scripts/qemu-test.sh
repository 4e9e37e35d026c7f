#!/usr/bin/env bash
# Build QEMU with the p2plab device if needed (scripts/build-qemu.sh) and run the device qtests.
#
#   scripts/qemu-test.sh                 # all qtests
#   scripts/qemu-test.sh -p /x86_64/p2plab/batch    # extra arguments go to the GLib test binary
#   P2PLAB_BENCH=1 scripts/qemu-test.sh -p /x86_64/p2plab/bench  # bandwidth benchmark (see qemu-bench.sh)
#
# Prints the TAP stream and a summary line "qtest: N passed, N failed, N skipped"; writes the TAP to
# $P2PLAB_RESULTS/qemu/qtest.tap (default build/test-results/qemu/); exits non-zero on failure.
source "$(dirname "$0")/lib.sh"

qemu=$(lab_qemu)
test_bin=$(dirname "$qemu")/p2plab-test
[ -x "$test_bin" ] || die "missing $test_bin"

export QTEST_QEMU_BINARY=$qemu
P2PLAB_QEMU_ARGS=${P2PLAB_QEMU_ARGS:-$(qemu_firmware_args)}
export P2PLAB_QEMU_ARGS
export G_TEST_DBUS_DAEMON=/bin/true
# for P2PLAB_QEMU_SANITIZE=1 builds: QEMU's exit-time leaks are not the device's
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# QEMU reports guest errors (bad registers, failed descriptors) to stderr only with -d guest_errors;
# the tests provoke them on purpose, so keep the TAP output readable.
log "running $test_bin against $qemu"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
timeout "${P2PLAB_QTEST_TIMEOUT:-600}" "$test_bin" --tap -k "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
read -r pass fail skip < <(tap_totals "$out")
[ "$rc" -eq 0 ] || [ "$fail" -gt 0 ] || fail=$((fail + 1))   # crash/timeout without a TAP line
# the TAP for `make test`'s tally (scripts/test-all.sh): build/test-results/qemu/qtest.tap
res=${P2PLAB_RESULTS:-$P2PLAB_ROOT/build/test-results}/qemu
mkdir -p "$res"
{ grep -E '^(ok|not ok|1\.\.|Bail out)' "$out" || true
  [ "$rc" -eq 0 ] || [ "$(grep -c '^not ok ' "$out" || true)" -gt 0 ] ||
      echo "not ok - p2plab-test exited with status $rc without reporting a failure"; } >"$res/qtest.tap"
echo "qtest: $pass passed, $fail failed, $skip skipped"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
