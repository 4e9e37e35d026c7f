#!/usr/bin/env bash
# `make prove`: mutation proofs of the seed guards (docs/seed-guards.md, "make prove"). Each
# prove/mutants/*.patch brings one old behaviour of mm/hmm.c (or of the DMA code it calls) back into
# the kernel; its header names the guards (test commands) that must catch it. For each mutant:
# apply the patch to a work copy of the built kernel tree, rebuild incrementally (the touched objects
# and the vmlinux link: ~10-20 s on 2 cores), boot the mutant with the base guest's initramfs and
# run its guards. A guard counts only if it passes on the unmutated kernel (run first, same guards)
# and fails on the mutant. Prints the table (and writes prove.md / prove.json in OUT).
#   scripts/prove.sh [OUT]                 every mutant, on the debug kernel (PROFILE=debug tree)
#   MUTANT=09-walk-write-lock scripts/prove.sh   one (a name, or a regex over the names)
#   KERNEL_SRC=~/linux scripts/prove.sh    your built tree (make bzImage modules done) as the base
#   scripts/prove.sh --list                the mutants and their guards, nothing run
# Exit status: 0 when every guard passes on the base kernel and every mutant marked "Expect: killed"
# is killed; 1 otherwise. Not part of make test (time: docs/ci.md).
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT"

if [ "${1:-}" = --list ]; then
    exec python3 scripts/prove.py --list ${MUTANT:+--mutant "$MUTANT"}
fi
command -v unshare >/dev/null || die "make prove needs unshare(1) (util-linux) to build mutants in a private mount namespace"
[ "$(id -u)" = 0 ] || die "make prove builds mutants in a private mount namespace (unshare -m + bind mount): run it as root"
host_deps gcc make bc flex bison libelf-dev libssl-dev cpio xz-utils patch python3

if [ -n "${KERNEL_SRC:-}" ]; then
    base=$(cd "$KERNEL_SRC" && pwd) || die "KERNEL_SRC=$KERNEL_SRC is not a directory"
    [ -f "$base/arch/x86/boot/bzImage" ] && [ -f "$base/System.map" ] \
        || die "KERNEL_SRC=$base is not a built tree (no arch/x86/boot/bzImage / System.map): make bzImage modules first"
    unset PROFILE
else
    export PROFILE=debug
    base=$(scripts/build-debug-kernel.sh | tail -1) || die "debug kernel build failed"
fi
export KERNEL_SRC=$base
# no 5-level paging on the machines' `cpu: max`, as the debug stage: a KASAN kernel (the debug one, or
# yours) reports a false wild-memory-access at boot with la57 (docs/debug-kernel.md)
export P2PLAB_CPU=${P2PLAB_CPU:-max,la57=off}
guest=$(scripts/build-guest.sh | tail -1) || die "guest build against $base failed"
out=${1:-build/prove/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log "make prove: base kernel tree $base, base guest $guest, results in $out"
exec scripts/lab-env.sh python3 scripts/prove.py --base "$base" --base-guest "$guest" --out "$out" \
    ${MUTANT:+--mutant "$MUTANT"} --cache "$P2PLAB_CACHE"
