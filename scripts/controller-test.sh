#!/usr/bin/env bash
# Controller unit tests (fake QMP server for protocol edge cases) and integration tests against the
# project's own QEMU build.
source "$(dirname "$0")/lib.sh"
P2PLAB_QEMU=${P2PLAB_QEMU:-$("$P2PLAB_ROOT/scripts/build-qemu.sh" | tail -1)}
export P2PLAB_QEMU
cd "$P2PLAB_ROOT/controller"
log "controller tests against $P2PLAB_QEMU"
mvn -B -T1 test
