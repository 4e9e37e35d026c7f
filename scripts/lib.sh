# shellcheck shell=bash
# The lab's shell idioms, one way each; every script sources this file: logging, cache keys, atomic
# cache entries and locks, the private trixie apt configuration, host and build-root package installs,
# QEMU firmware arguments, the lab's QEMU and guest (built or cached), TAP output.
set -euo pipefail

P2PLAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
P2PLAB_CACHE=${P2PLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/p2plab}
mkdir -p "$P2PLAB_CACHE"

log()  { printf '[p2plab] %s\n' "$*" >&2; }
die()  { printf '[p2plab] ERROR: %s\n' "$*" >&2; exit 1; }

# hash_inputs FILE|DIR... -> short sha256 over file names and contents (sorted, stable)
hash_inputs() {
    local p
    for p in "$@"; do
        if [ -d "$p" ]; then
            (cd "$p" && find . -type f ! -name '*~' -print0 | LC_ALL=C sort -z |
                xargs -0 sha256sum)
        elif [ -e "$p" ]; then
            sha256sum "$p" | sed "s|  .*/|  |"
        else
            printf '%s\n' "$p"
        fi
    done | sha256sum | cut -c1-16
}
# hash_strings STR... -> short sha256 over the strings, one a line (a cache key made of several parts)
hash_strings() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

# A project-private apt configuration that can see trixie and trixie-backports for
# `apt-get source` / `apt-get download` only. The system's sources are never touched.
P2PLAB_APT=$P2PLAB_CACHE/apt
apt_private_init() {
    local d=$P2PLAB_APT
    mkdir -p "$d/etc/sources.list.d" "$d/lists/partial" "$d/cache/archives/partial"
    cat >"$d/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
SRC
    # refresh at most once a day
    if [ -z "$(find "$d/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
        log "updating private apt lists (trixie, trixie-backports)"
        apt_private update -qq >&2 || die "private apt update failed (registry unreachable?)"
    fi
}
apt_private() {
    local d=$P2PLAB_APT
    apt-get -o Dir::Etc::SourceList="$d/etc/sources.list" \
        -o Dir::Etc::SourceParts="$d/etc/sources.list.d" \
        -o Dir::State::Lists="$d/lists" \
        -o Dir::Cache="$d/cache" \
        -o Acquire::Check-Valid-Until=false \
        -o APT::Get::Only-Source=false \
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

# ---- packages --------------------------------------------------------------------------------------
# missing_pkgs ROOT PKG...: the PKGs not installed in the system at ROOT ("" = this host)
missing_pkgs() {
    local root=$1 p; shift
    for p in "$@"; do
        dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed" || echo "$p"
    done
}

# host_deps PKG...: install the host (bookworm) packages that are missing. Never adds sources.
host_deps() {
    local missing
    missing=$(missing_pkgs "" "$@" | tr '\n' ' ')
    [ -z "$missing" ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages ($missing); run as root or install them"
    log "installing host packages: $missing"
    if [ ! -e "$P2PLAB_CACHE/.apt-updated" ] || [ -n "$(find "$P2PLAB_CACHE/.apt-updated" -mmin +720)" ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 && touch "$P2PLAB_CACHE/.apt-updated"
    fi
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends $missing >&2 || die "apt-get install $missing failed"
}

# buildroot_deps ROOT PKG...: install the packages missing in the trixie build root at ROOT
# (scripts/buildroot.sh), from its own sources.
buildroot_deps() {
    local root=$1 missing; shift
    missing=$(missing_pkgs "$root" "$@" | tr '\n' ' ')
    [ -z "$missing" ] && return 0
    log "installing $missing in the build root $root"
    chroot "$root" apt-get update -qq >&2 || true
    # shellcheck disable=SC2086
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        $missing >&2 || die "apt-get install $missing in the build root failed"
}

# deb_extract DIR PKG...: download the PKGs (any version spec apt takes: name=version) through the
# private trixie apt configuration and unpack them into DIR/root; DIR is a cache entry (below).
deb_extract() {
    local dir=$1 d; shift
    cache_ready "$dir" && return 0
    apt_private_init
    cache_begin "$dir"
    mkdir -p "$dir.tmp/deb"; chmod 755 "$dir.tmp/deb"   # apt's _apt user downloads into it
    (cd "$dir.tmp/deb" && apt_private download -qq "$@" >&2) || die "apt-get download $* failed"
    for d in "$dir.tmp"/deb/*.deb; do dpkg-deb -x "$d" "$dir.tmp/root"; done
    cache_publish "$dir"
}

# ---- cache entries ---------------------------------------------------------------------------------
# An entry DIR under $P2PLAB_CACHE is written in DIR.tmp and published by one rename, with
# DIR/.complete inside: a reader never sees half an entry, an interrupted build leaves only DIR.tmp.
#   cache_ready DIR || { cache_begin DIR; ...fill DIR.tmp...; cache_publish DIR; }
cache_ready()   { [ -e "$1/.complete" ]; }
cache_begin()   { rm -rf "$1.tmp"; mkdir -p "$1.tmp"; }
cache_publish() { touch "$1.tmp/.complete"; rm -rf "$1"; mv "$1.tmp" "$1"; }
# exit_if_cached DIR WHAT [FILE]: DIR complete -> log "WHAT up to date", print DIR[/FILE], exit 0
exit_if_cached() {
    cache_ready "$1" || return 0
    [ -z "$2" ] || log "$2 up to date: $1"
    echo "$1${3:+/$3}"
    exit 0
}

# cache_lock NAME: hold an exclusive lock on $P2PLAB_CACHE/.NAME.lock for the rest of this process,
# so two builds of the same cache entry (two shells, two users) never step on each other.
cache_lock() {
    local fd
    exec {fd}>"$P2PLAB_CACHE/.$1.lock"
    flock -n "$fd" && return 0
    log "waiting for another $1 (lock $P2PLAB_CACHE/.$1.lock)"
    flock "$fd" || die "cannot lock $P2PLAB_CACHE/.$1.lock"
}

# ---- the lab's QEMU and guest ------------------------------------------------------------------------
# Firmware search path for QEMU (-L DIR each), colon-separated; the controller reads the same variable.
P2PLAB_QEMU_DATADIRS=${P2PLAB_QEMU_DATADIRS:-/usr/share/qemu:/usr/share/seabios}
qemu_firmware_args() {   # -> "-L DIR -L DIR" (for P2PLAB_QEMU_ARGS, which the qtests split on spaces)
    local d out=() IFS=:
    for d in $P2PLAB_QEMU_DATADIRS; do [ -d "$d" ] && out+=(-L "$d"); done
    IFS=' '; echo "${out[*]}"
}
# lab_qemu / lab_guest: print $P2PLAB_QEMU / $P2PLAB_GUEST, else build (or find cached) and print it.
lab_qemu() {
    local q=${P2PLAB_QEMU:-}
    [ -n "$q" ] || q=$("$P2PLAB_ROOT/scripts/build-qemu.sh" | tail -1) || die "QEMU build failed"
    [ -x "$q" ] || die "no QEMU binary at '$q'"
    echo "$q"
}
lab_guest() {
    local g=${P2PLAB_GUEST:-}
    [ -n "$g" ] || g=$("$P2PLAB_ROOT/scripts/build-guest.sh" | tail -1) || die "guest build failed"
    [ -f "$g/vmlinuz" ] && [ -f "$g/initramfs.cpio.gz" ] || die "guest folder '$g' lacks vmlinuz/initramfs.cpio.gz"
    echo "$g"
}

# ---- TAP -----------------------------------------------------------------------------------------
# tap_open FILE; tap_check NAME CMD... (one "ok N - NAME" / "not ok N - NAME" line, on failure the
# command's last 20 output lines as comments; output kept in FILE's dir as N.log); tap_close (plan
# line; fails if any check failed).
tap_open() { TAP_FILE=$1; TAP_N=0; TAP_FAILS=0; mkdir -p "$(dirname "$1")"; : >"$1"; }
tap_check() {
    local name=$1 logf; shift
    TAP_N=$((TAP_N + 1)); logf=$(dirname "$TAP_FILE")/$TAP_N.log
    if "$@" >"$logf" 2>&1; then
        echo "ok $TAP_N - $name" | tee -a "$TAP_FILE"
    else
        echo "not ok $TAP_N - $name" | tee -a "$TAP_FILE"
        sed 's/^/#   /' "$logf" | tail -20 | tee -a "$TAP_FILE"
        TAP_FAILS=$((TAP_FAILS + 1))
    fi
}
tap_close() { echo "1..$TAP_N" >>"$TAP_FILE"; [ "$TAP_FAILS" -eq 0 ]; }
# tap_totals FILE -> "PASS FAIL SKIP" counted from its ok / not ok / # SKIP lines
tap_totals() {
    awk '/^ok .*# [Ss][Kk][Ii][Pp]/ {s++; next} /^ok / {p++} /^not ok / {f++}
         END {printf "%d %d %d\n", p, f, s}' "$1"
}
