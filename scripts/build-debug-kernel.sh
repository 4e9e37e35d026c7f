#!/usr/bin/env bash
# PROFILE=debug guest kernel: Debian's linux-source-7.3 configured as `make allnoconfig` + exactly what
# the lab boots + heavy debugging (scripts/debug-kernel.config: KASAN, lockdep, DEBUG_VM, DMA_API_DEBUG,
# kmemleak, DEBUG_OBJECTS, hung-task/soft-lockup detectors, TEST_HMM=m). Every option of the fragment is
# checked after configuration: one that a dependency dropped fails the build here, not a test later.
# Cached by (source version, this script, the fragment). Cold build on 2 cores: see docs/debug-kernel.md.
# Prints the built tree (usable as KERNEL_SRC: arch/x86/boot/bzImage, Module.symvers, *.ko).
# Built in place in its cache entry (an interrupted build resumes: .copied, then make), so it is marked
# .complete at the end rather than published by a rename.
#   scripts/build-debug-kernel.sh                 build (or find cached) and print the tree
#   scripts/build-debug-kernel.sh --config-only   configure + check the options, no build
# Used by `PROFILE=debug scripts/build-guest.sh` / `make guest PROFILE=debug` / `make debug-test`.
source "$(dirname "$0")/lib.sh"

FRAG=$P2PLAB_ROOT/scripts/debug-kernel.config
SRC=$("$P2PLAB_ROOT/scripts/fetch-kernel-src.sh" | tail -1) || die "kernel source unavailable"
key=$(hash_strings "$SRC" "$(hash_inputs "$0" "$FRAG" "$SRC/Makefile")")
T=$P2PLAB_CACHE/kernel-debug-$key
config_only=0; [ "${1:-}" = --config-only ] && config_only=1
[ "$config_only" = 1 ] || exit_if_cached "$T" ""
host_deps gcc make bc flex bison libelf-dev libssl-dev cpio xz-utils
cache_lock kernel-debug
[ "$config_only" = 1 ] || exit_if_cached "$T" ""
if [ ! -e "$T/.copied" ]; then
    rm -rf "$T"; mkdir -p "$T"
    log "copying $SRC to $T"
    cp -a "$SRC/." "$T/"; touch "$T/.copied"
fi
cd "$T"
# DRM_GPUSVM is a prompt-less tristate that only xe selects; give it a prompt in this copy so the
# helpers build without the whole xe driver (idempotent: the tree is reused on a resumed build)
grep -q '^config DRM_GPUSVM$' drivers/gpu/drm/Kconfig || die "no DRM_GPUSVM in drivers/gpu/drm/Kconfig"
sed -i '/^config DRM_GPUSVM$/{n;s/^\ttristate$/\ttristate "DRM GPU SVM helpers (p2plab: selectable without xe)"/}' \
    drivers/gpu/drm/Kconfig
make -s ARCH=x86_64 KCONFIG_ALLCONFIG="$FRAG" allnoconfig >&2

# every line of the fragment must have survived
missing=0
while IFS= read -r line; do
    case "$line" in
    CONFIG_*=*)
        opt=${line%%=*} want=${line#*=}
        got=$(sed -n "s/^$opt=//p" .config)
        if [ "$got" = "$want" ] || { [ "$want" = m ] && [ "$got" = y ]; }; then continue; fi
        log "config: $opt=$want wanted, got ${got:-not set}"; missing=1 ;;
    "# CONFIG_"*" is not set")
        opt=${line#\# }; opt=${opt%% *}
        if grep -q "^$opt=" .config; then log "config: $opt wanted off, got $(grep "^$opt=" .config)"; missing=1; fi ;;
    esac
done <"$FRAG"
[ "$missing" = 0 ] || die "the debug kernel config lost options of $FRAG (dependencies?): fix the fragment"
log "debug kernel config: $(grep -c '=[ym]$' .config) options on, all $(grep -c '^CONFIG_' "$FRAG") of the fragment as asked"
[ "$config_only" = 0 ] || { echo "$T/.config"; exit 0; }

jobs=${P2PLAB_BUILD_JOBS:-2}
log "building the debug kernel in $T (nice make -j$jobs bzImage modules; log: $T/build.log)"
t0=$(date +%s)
nice -n 10 make -j"$jobs" ARCH=x86_64 bzImage modules >"$T/build.log" 2>&1 \
    || { tail -30 "$T/build.log" >&2; die "debug kernel build failed (log: $T/build.log)"; }
secs=$(( $(date +%s) - t0 ))
echo "built: $(date -u +%FT%TZ) in $secs s (make -j$jobs, $(nproc) cores)" >"$T/BUILD-TIME"
log "debug kernel built in $secs s"
touch "$T/.complete"
echo "$T"
