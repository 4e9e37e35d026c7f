#!/usr/bin/env bash
# Controller test suite: unit tests (fake QMP/qemu-ga servers) + integration tests against a real
# qemu-system-x86_64 (found via $P2PLAB_QEMU, then PATH; Debian's is installed if absent).
#   controller/test.sh [extra mvn args, e.g. -Dtest=FakeQmpClientTest]
# With the lab's guest ($P2PLAB_GUEST, else built by scripts/build-guest.sh) the real-guest tests run too.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# host packages the tests use, installed the lab's one way (scripts/lib.sh host_deps)
source "$HERE/../scripts/lib.sh"
need_pkgs=(tmux qemu-guest-agent maven openjdk-17-jdk-headless)
if [ -z "${P2PLAB_QEMU:-}" ] && ! command -v qemu-system-x86_64 >/dev/null; then
    need_pkgs+=(qemu-system-x86 qemu-system-data)
fi
host_deps "${need_pkgs[@]}"
if [ -n "${P2PLAB_QEMU:-}" ] && [ ! -x "$P2PLAB_QEMU" ]; then
    echo "[controller-test] P2PLAB_QEMU=$P2PLAB_QEMU is not executable" >&2
    exit 2
fi

# The real-guest tests (GuestBootTest, SplatWatchdogTest: a planted kernel splat must fail its case)
# need the lab's guest: build it (cached; the guest stage of `make test` reuses it) unless
# $P2PLAB_GUEST is given or P2PLAB_TEST_GUEST=0. If it cannot be built they are skipped, loudly.
if [ -z "${P2PLAB_GUEST:-}" ] && [ "${P2PLAB_TEST_GUEST:-1}" = 1 ] && [ -x "$HERE/../scripts/build-guest.sh" ]; then
    mkdir -p "$HERE/target"
    if g=$("$HERE/../scripts/build-guest.sh" 2>"$HERE/target/build-guest.log" | tail -1) && [ -f "$g/initramfs.cpio.gz" ]; then
        export P2PLAB_GUEST=$g
        echo "[controller-test] guest: $g" >&2
    else
        echo "[controller-test] WARNING: guest build failed (controller/target/build-guest.log):" \
             "the real-guest tests (GuestBootTest, SplatWatchdogTest) will be SKIPPED" >&2
    fi
fi

cd "$HERE"
# offline first (fast, no network); online if the local repository lacks something
if ! mvn -B -o -T1 -q dependency:go-offline >/dev/null 2>&1; then
    mvn -B -T1 -q dependency:go-offline >/dev/null
fi
# online: surefire resolves its JUnit platform provider at test time, which go-offline does not fetch
exec mvn -B -T1 test "$@"
