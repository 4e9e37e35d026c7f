#!/usr/bin/env bash
# Build the HMM test programs the guest runs, as static binaries inside the trixie build root:
#   hmm-tests          the UNMODIFIED upstream selftest tools/testing/selftests/mm/hmm-tests.c of the
#                      Linux 7.3 source (scripts/fetch-kernel-src.sh)
#   hmm-tests-timeout10x  the same unmodified source with the kselftest harness's per-test timeouts ten
#                      times longer: 300 s instead of the fixed 30 s (TEST_TIMEOUT_DEFAULT), 1200 s instead
#                      of benchmark_thp_migration's 120 s (TEST_F_TIMEOUT). For the debug kernel, where
#                      three cases take longer (docs/debug-kernel.md). A shim kselftest_harness.h ahead in
#                      the include path includes the real one and redefines both macros, which TEST_F() and
#                      TEST_F_TIMEOUT() expand in hmm-tests.c after the include: the test and the harness
#                      are not changed.
#   hmm-p2plab-tests   p2plab's own HMM tests (guest/tests/hmm-p2plab-tests.c, the kselftest harness
#                      of the same tree)
#   hmm-stress         the seeded HMM race stress (guest/tests/hmm-stress.c)
# Cached by inputs. Prints the path of hmm-tests; the other two are in the same directory.
# (test_hmm.ko, the upstream kernel module these programs can also drive: scripts/build-test-hmm-module.sh)
source "$(dirname "$0")/lib.sh"

src=$("$P2PLAB_ROOT/scripts/fetch-kernel-src.sh")
[ -f "$src/tools/testing/selftests/mm/hmm-tests.c" ] || die "no hmm-tests.c in $src"
cache_lock hmm-tests-build

tests=$P2PLAB_ROOT/guest/tests
slow=timeout10x   # hmm-tests-timeout10x: scenarios/hmm/hmm-tests.yaml runs it on a KASAN kernel
key=$(hash_inputs "$src/tools/testing/selftests/mm/hmm-tests.c" "$src/lib/test_hmm_uapi.h" \
      "$src/Makefile" "$0" "$tests/hmm-p2plab-tests.c" "$tests/hmm-stress.c" "$tests/dmirror-lib.h" \
      "$tests/p2plab-lib.h" "$P2PLAB_ROOT/include/uapi/p2plab_ioctl.h" "$P2PLAB_ROOT/include/p2plab_hw.h")
out=$P2PLAB_CACHE/hmm-tests-$key
if ! cache_ready "$out"; then
    root=$("$P2PLAB_ROOT/scripts/buildroot.sh")
    # make headers needs rsync-free headers_install (7.x) and a host compiler: both in the root
    mnt=$root/build/linux-src
    mkdir -p "$mnt" "$root/build/hmm-tests-out"
    mountpoint -q "$mnt" || mount --bind "$src" "$mnt" || die "bind mount of $src failed"
    trap 'umount "$mnt" 2>/dev/null || true' EXIT
    log "make headers (7.3 uAPI) in the build root"
    chroot "$root" make -s -C /build/linux-src HOSTCC=gcc-14 CC=gcc-14 headers >&2 || die "make headers failed"
    log "building hmm-tests (static)"
    rm -rf "$root/build/hmm-tests-out"; mkdir -p "$root/build/hmm-tests-out"
    chroot "$root" make -s -C /build/linux-src/tools/testing/selftests/mm CC=gcc-14 \
        OUTPUT=/build/hmm-tests-out LDLIBS="-static -lpthread -lrt -lm" \
        /build/hmm-tests-out/hmm-tests >&2 || die "building hmm-tests failed"
    file "$root/build/hmm-tests-out/hmm-tests" 2>/dev/null | grep -q "statically linked" \
        || log "warning: hmm-tests does not look statically linked"
    log "building hmm-tests-$slow (static, per-test timeouts x10)"
    mkdir -p "$root/build/hmm-tests-shim"
    printf '%s\n' \
        '/* p2plab (scripts/build-hmm-test-programs.sh): the upstream harness, per-test timeouts x10 */' \
        '#ifndef P2PLAB_HARNESS_SHIM_H' '#define P2PLAB_HARNESS_SHIM_H' '#include_next "kselftest_harness.h"' \
        '#undef TEST_TIMEOUT_DEFAULT' '#define TEST_TIMEOUT_DEFAULT 300' \
        '#undef TEST_F_TIMEOUT' \
        '#define TEST_F_TIMEOUT(fixture_name, test_name, timeout) __TEST_F_IMPL(fixture_name, test_name, -1, (timeout) * 10)' \
        '#endif' >"$root/build/hmm-tests-shim/kselftest_harness.h"
    rm -rf "$root/build/hmm-tests-slow-out"; mkdir -p "$root/build/hmm-tests-slow-out"
    chroot "$root" make -s -C /build/linux-src/tools/testing/selftests/mm CC=gcc-14 \
        OUTPUT=/build/hmm-tests-slow-out EXTRA_CFLAGS="-I /build/hmm-tests-shim" \
        LDLIBS="-static -lpthread -lrt -lm" /build/hmm-tests-slow-out/hmm-tests >&2 \
        || die "building hmm-tests-$slow failed"
    # the timeouts are data in the binary: the same bytes mean the harness no longer uses these macros
    cmp -s "$root/build/hmm-tests-out/hmm-tests" "$root/build/hmm-tests-slow-out/hmm-tests" \
        && die "hmm-tests-$slow is identical to hmm-tests: the kselftest_harness.h shim changed no timeout"
    log "building hmm-p2plab-tests (static)"
    # the dmirror uAPI straight from the kernel source (lib/test_hmm_uapi.h), as hmm-tests.c uses it
    cp "$tests/hmm-p2plab-tests.c" "$tests/hmm-stress.c" "$tests/dmirror-lib.h" "$tests/p2plab-lib.h" "$src/lib/test_hmm_uapi.h" \
        "$P2PLAB_ROOT/include/uapi/p2plab_ioctl.h" "$P2PLAB_ROOT/include/p2plab_hw.h" "$root/build/hmm-tests-out/"
    chroot "$root" gcc-14 -O2 -Wall -static -o /build/hmm-tests-out/hmm-p2plab-tests \
        -I /build/linux-src/tools/testing/selftests -isystem /build/linux-src/usr/include \
        /build/hmm-tests-out/hmm-p2plab-tests.c -lpthread >&2 || die "building hmm-p2plab-tests failed"
    log "building hmm-stress (static)"
    chroot "$root" gcc-14 -O2 -Wall -static -o /build/hmm-tests-out/hmm-stress \
        /build/hmm-tests-out/hmm-stress.c -lpthread >&2 || die "building hmm-stress failed"
    cache_begin "$out"
    cp "$root/build/hmm-tests-out/hmm-tests" "$root/build/hmm-tests-out/hmm-p2plab-tests" \
        "$root/build/hmm-tests-out/hmm-stress" "$out.tmp/"
    cp "$root/build/hmm-tests-slow-out/hmm-tests" "$out.tmp/hmm-tests-$slow"
    cache_publish "$out"
fi
echo "$out/hmm-tests"
