#!/usr/bin/env bash
# Static checks that keep the project's contracts in step. Writes TAP to $P2PLAB_RESULTS/lint/lint.tap.
#  - compose.yaml parses and validates (docker-compose config)
#  - every register, flag and error code in include/p2plab_hw.h is documented in docs/device.md
#  - every scripts/... file named in the tree exists (nothing points at a removed or renamed script)
#  - every scenario file validates (./p2plab validate)
#  - every make-prove mutant (prove/mutants/*.patch) parses and still applies to the kernel source
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"
tap_open "${P2PLAB_RESULTS:-build/test-results}/lint/lint.tap"

tap_check "compose.yaml validates" docker-compose -f compose.yaml config -q

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
tap_check "docs/device.md documents every symbol of include/p2plab_hw.h" doc_covers_header

named_files_exist() {
    local bad=0 f
    for f in $(git grep -h -o -P '(?<![A-Za-z0-9_./-])scripts/[A-Za-z0-9_.-]+\.(sh|py)' -- . ':!*.patch' | sort -u); do
        [ -e "$f" ] || { echo "missing: $f, named in: $(git grep -l -F "$f" | tr '\n' ' ')"; bad=1; }
    done
    return $bad
}
git rev-parse --git-dir >/dev/null 2>&1 && tap_check "scripts named in the tree exist" named_files_exist

if [ -x ./p2plab ] && [ -d scenarios ]; then
    tap_check "scenario files validate" ./p2plab validate scenarios
fi
prove_mutants_apply() {
    local src
    src=$(scripts/fetch-kernel-src.sh | tail -1) || { echo "kernel source unavailable"; return 1; }
    python3 scripts/prove.py --list >/dev/null && python3 scripts/prove.py --check-apply "$src"
}
[ -d prove/mutants ] && tap_check "make prove's mutants parse and apply to linux-source-7.3" prove_mutants_apply
tap_close
