#!/usr/bin/env bash
# Controller unit tests (fake QMP/qemu-ga servers for protocol edge cases) and integration tests
# against the project's own QEMU build (controller/test.sh does the work).
source "$(dirname "$0")/lib.sh"
P2PLAB_QEMU=$(lab_qemu)
export P2PLAB_QEMU
log "controller tests against $P2PLAB_QEMU"
exec "$P2PLAB_ROOT/controller/test.sh"
