#!/bin/sh
# The agent image's HEALTHCHECK: cheap, shell only, no Redis.
# Healthy when a `node .../dan.js` process runs in the container and, if the agent keeps a liveness file
# ($DAN_HEALTH_FILE, default /tmp/dan-alive, touched on every successful heartbeat), that file changed within
# half the heartbeat TTL (DAN_HEARTBEAT_TTL_MS, default 30000), but at least two heartbeats (DAN_HEARTBEAT_MS,
# default 5000) plus one second. Half, so that with the image's HEALTHCHECK (every 10 s, unhealthy at the first
# failure) a process cut off from Redis shows unhealthy within one TTL: max age + interval <= TTL.
# Without the file only the process is checked.
set -eu

file="${DAN_HEALTH_FILE:-/tmp/dan-alive}"
ttl_ms=${DAN_HEARTBEAT_TTL_MS:-30000}
beat_ms=${DAN_HEARTBEAT_MS:-5000}
max_ms=$(( ttl_ms / 2 ))
[ "$max_ms" -ge $(( 2 * beat_ms + 1000 )) ] || max_ms=$(( 2 * beat_ms + 1000 ))
ttl_s=$(( max_ms / 1000 ))

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
  [ "$age" -le "$ttl_s" ] || { echo "last heartbeat ${age}s ago (more than ${ttl_s}s: Redis unreachable, or the process is wedged)"; exit 1; }
fi
echo ok
