#!/usr/bin/env bash
# Install the host (Debian 12 bookworm) packages the lab needs. Idempotent; never adds apt sources.
source "$(dirname "$0")/lib.sh"

[ -r /etc/debian_version ] || die "p2plab needs a Debian 12 (bookworm) host; /etc/debian_version is missing"
case "$(cut -d. -f1 /etc/debian_version)" in
    12) ;;
    *) log "warning: tested on Debian 12 (bookworm); this host is $(cat /etc/debian_version)" ;;
esac
[ "$(uname -m)" = x86_64 ] || die "p2plab needs an x86_64 host (found $(uname -m))"

host_deps \
    build-essential git make pkg-config ninja-build flex bison python3 python3-venv \
    libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev \
    seabios qemu-system-data \
    debootstrap cpio xz-utils zstd dpkg-dev gzip \
    openjdk-17-jdk-headless maven \
    tmux docker-compose

java -version 2>&1 | grep -q 'version "17' || log "warning: default java is not 17: $(java -version 2>&1 | head -1)"
[ -e /usr/share/qemu/qboot.rom ] || die "qboot.rom missing (package qemu-system-data)"
