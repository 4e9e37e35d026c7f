#!/usr/bin/env bash
# Static checks that keep the project's contracts in step. Writes TAP to $P2PLAB_RESULTS/lint/lint.tap.
#  - compose.yaml parses and validates (docker-compose config)
#  - every register, flag and error code in include/p2plab_hw.h is documented in docs/device.md
#  - every scenario file validates (./p2plab validate)
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"
out=${P2PLAB_RESULTS:-build/test-results}/lint; mkdir -p "$out"
tap=$out/lint.tap; : >"$tap"
n=0; fails=0
check() {  # check NAME CMD...
    local name=$1; shift
    n=$((n + 1))
    if "$@" >"$out/$n.log" 2>&1; then echo "ok $n - $name" | tee -a "$tap"
    else echo "not ok $n - $name" | tee -a "$tap"; sed 's/^/#   /' "$out/$n.log" | tail -20 | tee -a "$tap"; fails=$((fails + 1)); fi
}

check "compose.yaml validates" docker-compose -f compose.yaml config -q

doc_covers_header() {
    local missing=0 sym
    [ -f docs/device.md ] || { echo "docs/device.md missing"; return 1; }
    for sym in $(grep -oE '^#define P2PLAB_(REG|ERR|CTRL|STATUS|INT|DESC_F|CAP)_[A-Z0-9_]+' include/p2plab_hw.h |
                 awk '{print $2}' | grep -v '_MASK$'); do
        local short=${sym#P2PLAB_}; short=${short#REG_}; short=${short#ERR_}
        if ! grep -qE "(${sym}|\b${short}\b)" docs/device.md; then echo "undocumented: $sym"; missing=1; fi
    done
    return $missing
}
check "docs/device.md documents every symbol of include/p2plab_hw.h" doc_covers_header

if [ -x ./p2plab ] && [ -d scenarios ]; then
    check "scenario files validate" ./p2plab validate scenarios
fi
echo "1..$n" >>"$tap"
[ "$fails" -eq 0 ]
