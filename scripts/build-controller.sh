#!/usr/bin/env bash
# Build the controller's runnable jar (controller/target/p2plab-controller.jar) if its sources changed.
source "$(dirname "$0")/lib.sh"
cd "$P2PLAB_ROOT/controller"
stamp=target/.src-hash
h=$(hash_inputs pom.xml src/main)
if [ -e "$stamp" ] && [ "$(cat "$stamp")" = "$h" ] && ls target/*.jar >/dev/null 2>&1; then
    exit 0
fi
log "building the controller (maven)"
mvn -B -q -T1 -DskipTests package >&2 || die "controller build failed (mvn package)"
echo "$h" >"$stamp"
