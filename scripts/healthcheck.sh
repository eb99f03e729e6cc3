#!/bin/sh
# The agent image's HEALTHCHECK: cheap, shell only, no Redis.
# Healthy when a `node .../dan.js` process runs in the container and, if the agent keeps a liveness file
# ($DAN_HEALTH_FILE, default /tmp/dan-alive, touched on every successful heartbeat), that file changed within
# the heartbeat TTL (DAN_HEARTBEAT_TTL_MS, default 30000). Without the file only the process is checked.
set -eu

file="${DAN_HEALTH_FILE:-/tmp/dan-alive}"
ttl_s=$(( ${DAN_HEARTBEAT_TTL_MS:-30000} / 1000 ))

alive=0
for cmdline in /proc/[0-9]*/cmdline; do
  if tr '\0' ' ' <"$cmdline" 2>/dev/null | grep -q 'dist/bin/dan\.js'; then
    alive=1
    break
  fi
done
[ "$alive" = 1 ] || { echo 'no dan process'; exit 1; }

if [ -f "$file" ]; then
  age=$(( $(date +%s) - $(stat -c %Y "$file") ))
  [ "$age" -le "$ttl_s" ] || { echo "last heartbeat ${age}s ago (TTL ${ttl_s}s)"; exit 1; }
fi
echo ok
