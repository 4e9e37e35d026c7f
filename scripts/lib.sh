# shellcheck shell=bash
# Common helpers for p2plab build scripts. Source this file.
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

# Install host (bookworm) packages that are missing. Never adds sources.
host_deps() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or install them"
    log "installing host packages: ${missing[*]}"
    if [ ! -e "$P2PLAB_CACHE/.apt-updated" ] || [ -n "$(find "$P2PLAB_CACHE/.apt-updated" -mmin +720)" ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 && touch "$P2PLAB_CACHE/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
}

# cache_lock NAME: hold an exclusive lock on $P2PLAB_CACHE/.NAME.lock for the rest of this process,
# so two builds of the same cache entry (two shells, two engineers) never step on each other.
cache_lock() {
    local fd
    exec {fd}>"$P2PLAB_CACHE/.$1.lock"
    flock "$fd" || die "cannot lock $P2PLAB_CACHE/.$1.lock"
}
