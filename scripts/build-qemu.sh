#!/usr/bin/env bash
# Build qemu-system-x86_64 with the p2plab PCIe device (qemu-device/) and its qtest.
#
#   scripts/build-qemu.sh            # Debian trixie QEMU 10.0.13 (scripts/fetch-qemu-src.sh)
#   QEMU_SRC=/path/to/qemu scripts/build-qemu.sh   # a user's tree (e.g. upstream git)
#
# Prints the path of the installed qemu-system-x86_64 as the LAST line on stdout; logs go to stderr.
# Install layout: $P2PLAB_CACHE/qemu-<key>/bin/{qemu-system-x86_64,p2plab-test}
#   key = hash(QEMU source id, qemu-device/, include/p2plab_hw.h, this script)
# An unchanged build is a no-op. The pristine source is never modified: the build happens in a
# hardlinked copy $P2PLAB_CACHE/qemu-build-<treekey>/ (treekey = source id, this script, patches)
# into which qemu-device/ is overlaid (every modified file is replaced, never written in place);
# changing only the device re-uses that tree and rebuilds incrementally.
# Environment: QEMU_SRC, P2PLAB_BUILD_JOBS (default 2), P2PLAB_NICE (default 10),
#              P2PLAB_QEMU_DEBUG=1 (keep debug info), P2PLAB_QEMU_SANITIZE=1 (ASan + UBSan build).
source "$(dirname "$0")/lib.sh"

DEV=$P2PLAB_ROOT/qemu-device
HDR=$P2PLAB_ROOT/include/p2plab_hw.h
SELF=$P2PLAB_ROOT/scripts/build-qemu.sh
JOBS=${P2PLAB_BUILD_JOBS:-2}
NICE=${P2PLAB_NICE:-10}
MESON_PY=$P2PLAB_CACHE/tools/meson-1.7.0/root/usr/lib/python3/dist-packages

# What the build tree is configured with (part of the tree key; see below).
CONFIGURE_ARGS=(--python=/usr/bin/python3 --target-list=x86_64-softmmu
    --without-default-features --without-default-devices --with-devices-x86_64=p2plab
    --disable-download --disable-install-blobs --disable-docs --disable-tools
    --disable-werror --enable-trace-backends=log --disable-user --disable-guest-agent)
if [ "${P2PLAB_QEMU_DEBUG:-0}" = 1 ]; then CONFIGURE_ARGS+=(--enable-debug-info); else CONFIGURE_ARGS+=(--disable-debug-info); fi
# P2PLAB_QEMU_SANITIZE=1: AddressSanitizer + UBSan build (a separate tree and install)
if [ "${P2PLAB_QEMU_SANITIZE:-0}" = 1 ]; then CONFIGURE_ARGS+=(--enable-asan --enable-ubsan); fi
DEVICES_MAK='# p2plab lab machine: q35 + PCIe switch + VT-d + nvme + virtio-serial + isa serial + p2plab
CONFIG_Q35=y
CONFIG_PCIE_PORT=y
CONFIG_XIO3130=y
CONFIG_VTD=y
CONFIG_NVME_PCI=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_SERIAL_ISA=y
CONFIG_P2PLAB=y'
TREE_FORMAT=1   # bump when the way the tree is prepared changes

[ -f "$DEV/p2plab.c" ] || die "missing $DEV/p2plab.c"
[ -f "$HDR" ] || die "missing $HDR"

# ---- source and its identity ----------------------------------------------------------------
if [ -n "${QEMU_SRC:-}" ]; then
    SRC=$(cd "$QEMU_SRC" 2>/dev/null && pwd) || die "QEMU_SRC=$QEMU_SRC is not a directory"
    [ -f "$SRC/configure" ] && [ -f "$SRC/hw/misc/meson.build" ] || die "QEMU_SRC=$SRC is not a QEMU source tree"
    src_id="user:$SRC:$(cat "$SRC/VERSION" 2>/dev/null)"
    if git -C "$SRC" rev-parse HEAD >/dev/null 2>&1; then
        src_id+=":$(git -C "$SRC" rev-parse HEAD):$(git -C "$SRC" diff HEAD 2>/dev/null | sha256sum | cut -c1-16)"
    fi
else
    SRC=$("$P2PLAB_ROOT/scripts/fetch-qemu-src.sh") || die "fetch-qemu-src.sh failed"
    src_id="debian:$(cat "$SRC/VERSION"):$(hash_inputs "$P2PLAB_ROOT/scripts/fetch-qemu-src.sh")"
fi
[ -d "$MESON_PY/mesonbuild" ] || "$P2PLAB_ROOT/scripts/fetch-qemu-src.sh" >/dev/null || die "meson fetch failed"
# QEMU's configure also wants pycotap (the Debian source has no python/wheels): trixie's package.
PYCOTAP_DIR=$P2PLAB_CACHE/tools/pycotap-1.3.1
deb_extract "$PYCOTAP_DIR" python3-pycotap

# The build tree only depends on the source, the patches and the configuration, so that changing the
# device (or unrelated parts of this script) rebuilds incrementally in the same tree.
tree_key=$(hash_strings "$src_id" "$(hash_inputs "$DEV/patches")" "${CONFIGURE_ARGS[*]}" "$DEVICES_MAK" "$TREE_FORMAT")
key=$(hash_strings "$src_id" "$tree_key" "$(hash_inputs "$SELF" "$DEV" "$HDR")")
OUT=$P2PLAB_CACHE/qemu-$key
TREE=$P2PLAB_CACHE/qemu-build-$tree_key

exit_if_cached "$OUT" qemu bin/qemu-system-x86_64

# One build at a time on this machine (2 cores, shared).
cache_lock qemu-build
exit_if_cached "$OUT" "" bin/qemu-system-x86_64

# ---- host dependencies (build + runtime firmware) ----------------------------------------------
host_deps gcc make pkg-config ninja-build python3-venv flex bison libglib2.0-dev libpixman-1-dev \
    libfdt-dev zlib1g-dev patch seabios qemu-system-data

t0=$(date +%s)

# ---- build tree: hardlinked copy of the pristine source + patches --------------------------------
# replace_file DST: atomically replace DST with stdin (never writes into a possibly hardlinked file)
replace_file() {
    local dst=$1 tmp
    tmp=$(mktemp "$dst.p2plab.XXXXXX")
    cat >"$tmp"
    if [ -e "$dst" ] && cmp -s "$tmp" "$dst"; then rm -f "$tmp"; return 0; fi
    [ -e "$dst" ] && chmod --reference="$dst" "$tmp" || chmod 644 "$tmp"
    mv -f "$tmp" "$dst"
}
# unshare FILE: break a hardlink by copying the file over itself (new inode)
unshare() { local f=$1; cp -p "$f" "$f.p2plab.tmp" && mv -f "$f.p2plab.tmp" "$f"; }

if [ ! -e "$TREE/.tree-complete" ]; then
    log "creating build tree $TREE (hardlinked copy of $SRC)"
    rm -rf "$TREE" "$TREE.tmp"
    mkdir -p "$TREE.tmp"
    cp -al "$SRC/." "$TREE.tmp/src" 2>/dev/null || { log "hardlink copy failed; copying"; rm -rf "$TREE.tmp/src"; cp -a "$SRC/." "$TREE.tmp/src"; }
    rm -rf "$TREE.tmp/src/build" "$TREE.tmp/src/.git"   # a user's in-tree build dir / git metadata are not needed
    for p in "$DEV"/patches/*.patch; do
        [ -e "$p" ] || continue
        files=$(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p")
        if (cd "$TREE.tmp/src" && patch -p1 --dry-run -s -f <"$p" >/dev/null 2>&1); then
            for f in $files; do [ -e "$TREE.tmp/src/$f" ] && unshare "$TREE.tmp/src/$f"; done
            (cd "$TREE.tmp/src" && patch -p1 -s -f --no-backup-if-mismatch <"$p" >&2) || die "patch $p failed"
            log "applied $(basename "$p")"
        else
            log "WARNING: $(basename "$p") does not apply to this QEMU tree; skipped (feature it adds is unavailable)"
        fi
    done
    mv "$TREE.tmp" "$TREE"
    touch "$TREE/.tree-complete"
fi
S=$TREE/src

# ---- overlay qemu-device/ -----------------------------------------------------------------------
# device sources (p2plab.c, p2plab-mmu.c, p2plab-internal.h) -> hw/misc; qtest sources
# (*-test.c, the shared lab helpers p2plab-qtest.[ch]) -> tests/qtest
for f in "$DEV"/*.c "$DEV"/*.h; do
    [ -e "$f" ] || continue
    case $(basename "$f") in
        *-test.c|p2plab-qtest.*) replace_file "$S/tests/qtest/$(basename "$f")" <"$f" ;;
        *) replace_file "$S/hw/misc/$(basename "$f")" <"$f" ;;
    esac
done
replace_file "$S/hw/misc/p2plab_hw.h" <"$HDR"
replace_file "$S/tests/qtest/p2plab_hw.h" <"$HDR"
# Kconfig / meson / trace-events: pristine content + our snippet
{ cat "$SRC/hw/misc/Kconfig"; echo; cat "$DEV/Kconfig"; } | replace_file "$S/hw/misc/Kconfig"
{ cat "$SRC/hw/misc/meson.build"; echo; cat "$DEV/meson.build"; } | replace_file "$S/hw/misc/meson.build"
{ cat "$SRC/hw/misc/trace-events"; echo; cat "$DEV/trace-events"; } | replace_file "$S/hw/misc/trace-events"
grep -q '^qtest_executables = {}' "$SRC/tests/qtest/meson.build" || die "tests/qtest/meson.build has no 'qtest_executables = {}' line to hook into"
awk -v snip="$DEV/qtest-meson.build" '
    /^qtest_executables = \{\}/ { while ((getline l < snip) > 0) print l; print "" }
    { print }' "$SRC/tests/qtest/meson.build" | replace_file "$S/tests/qtest/meson.build"
# Debian's +ds source drops the prebuilt edk2 images that pc-bios/meson.build lists; meson only
# checks that they exist (nothing we build uses them), so give it empty placeholders.
for f in $(sed -n "s/^ *'\(edk2-[a-z0-9_-]*\.fd\)',/\1/p" "$S/pc-bios/meson.build"); do
    [ -e "$S/pc-bios/$f.bz2" ] || : >"$S/pc-bios/$f.bz2"
done
# device configuration: only what the lab needs
printf '%s\n' "$DEVICES_MAK" | replace_file "$S/configs/devices/x86_64-softmmu/p2plab.mak"

# ---- configure (once per tree) ------------------------------------------------------------------
export PYTHONPATH=$MESON_PY:$PYCOTAP_DIR/root/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
B=$S/build
if [ ! -e "$B/.configured" ]; then
    rm -rf "$B"; mkdir -p "$B"
    log "configuring QEMU in $B"
    (cd "$B" && nice -n "$NICE" ../configure "${CONFIGURE_ARGS[@]}" \
        >"$B/configure.log" 2>&1) || { tail -40 "$B/configure.log" >&2; die "configure failed (log: $B/configure.log)"; }
    touch "$B/.configured"
fi

# ---- build only what the lab needs --------------------------------------------------------------
log "building qemu-system-x86_64 + tests/qtest/p2plab-test (-j$JOBS, nice $NICE)"
(cd "$B" && nice -n "$NICE" ninja -j"$JOBS" qemu-system-x86_64 tests/qtest/p2plab-test >"$B/ninja.log" 2>&1) \
    || { grep -A8 -m5 -E 'FAILED|error:' "$B/ninja.log" >&2 || tail -40 "$B/ninja.log" >&2; die "build failed (log: $B/ninja.log)"; }

# ---- install into the keyed cache dir -----------------------------------------------------------
cache_begin "$OUT"; mkdir -p "$OUT.tmp/bin"
cp "$B/qemu-system-x86_64" "$B/tests/qtest/p2plab-test" "$OUT.tmp/bin/"
cat >"$OUT.tmp/BUILD-INFO" <<EOF
source: $src_id
tree: $TREE
built: $(date -u +%FT%TZ) in $(( $(date +%s) - t0 )) s
firmware: $(qemu_firmware_args) (q35: -bios qboot.rom)
EOF
cache_publish "$OUT"
# keep the 8 most recent installs (each is small) and trees of the last 3 source/config keys
ls -1dt "$P2PLAB_CACHE"/qemu-[0-9a-f]*[0-9a-f] 2>/dev/null | grep -E '/qemu-[0-9a-f]{16}$' | tail -n +9 |
    while read -r d; do rm -rf "$d"; done
ls -1dt "$P2PLAB_CACHE"/qemu-build-* 2>/dev/null | grep -E '/qemu-build-[0-9a-f]{16}$' | tail -n +4 |
    while read -r d; do log "pruning old build tree $d"; rm -rf "$d"; done
log "built in $(( $(date +%s) - t0 )) s: $OUT"
echo "$OUT/bin/qemu-system-x86_64"
