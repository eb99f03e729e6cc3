#!/usr/bin/env bash
# Gets a Docker engine and dan's images on a fresh Debian machine (what CI calls; ENVIRONMENT.md, Docker).
# Idempotent: what is installed, running or built already is left alone.
#
#   1. docker.io (engine and client) and docker-compose, with apt-get, if missing
#   2. dockerd in the background (log: /var/log/dockerd.log) if `docker info` fails; waits until it answers
#   3. base images (DAN_IMAGES, default auto):
#        airgap    build them locally with scripts/airgap-images.sh (dan-airgap/node:bookworm, dan-airgap/redis:7)
#        registry  use the official node:22-bookworm-slim and redis:7-alpine, pulled
#        auto      airgap when CI=true: no dependency on a registry's reachability or rate limits, and the same
#                  images every run; elsewhere the official images when they can be pulled, else airgap
#      Images named in DAN_BASE_IMAGE / DAN_REDIS_IMAGE that exist locally are used as they are.
#   4. the agent image with scripts/build-image.sh, when node_modules is installed (skip: --no-agent-image)
#
# Prints `export DAN_BASE_IMAGE=... DAN_REDIS_IMAGE=... DAN_AGENT_IMAGE=...` on stdout (all else goes to stderr)
# and appends them to $GITHUB_ENV when set. Use: eval "$(scripts/ci-docker.sh)"
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TIMEOUT="${DAN_DOCKERD_TIMEOUT:-60}"
MODE="${DAN_IMAGES:-auto}"
AGENT_IMAGE="${DAN_AGENT_IMAGE:-dan-agent:latest}"
BUILD_AGENT=1

say() { printf 'ci-docker: %s\n' "$*" >&2; }
die() { printf 'ci-docker: error: %s\n' "$*" >&2; exit 1; }

for arg in "$@"; do
  case "$arg" in
    --no-agent-image) BUILD_AGENT=0 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# 1. Engine, client, compose.
packages=()
{ command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1; } || packages+=(docker.io)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || packages+=(docker-compose)
[ "${#packages[@]}" -eq 0 ] || apt_install "${packages[@]}"

# 2. A running engine.
if ! docker info >/dev/null 2>&1; then
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is starting; waiting for it"
  else
    say "starting dockerd (log: /var/log/dockerd.log)"
    as_root sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  waited=0
  until docker info >/dev/null 2>&1; do
    if [ "$waited" -ge "$TIMEOUT" ]; then
      tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || true
      die "dockerd did not answer within ${TIMEOUT}s (see /var/log/dockerd.log; raise DAN_DOCKERD_TIMEOUT if the machine is slow)"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "dockerd answers after ${waited}s"
else
  say "the Docker engine is running"
fi

# 3. Base images.
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
pull() { timeout 120 docker pull -q "$1" >/dev/null 2>&1; }

if [ -n "${DAN_BASE_IMAGE:-}" ] && [ -n "${DAN_REDIS_IMAGE:-}" ] && image_exists "$DAN_BASE_IMAGE" && image_exists "$DAN_REDIS_IMAGE"; then
  MODE=given
elif [ "$MODE" = auto ]; then
  if [ "${CI:-}" = true ]; then
    MODE=airgap
  elif pull node:22-bookworm-slim && pull redis:7-alpine; then
    MODE=registry
  else
    say "the official images cannot be pulled here; building local ones"
    MODE=airgap
  fi
fi
case "$MODE" in
  given) BASE_IMAGE="$DAN_BASE_IMAGE"; REDIS_IMAGE="$DAN_REDIS_IMAGE" ;;
  registry)
    BASE_IMAGE="${DAN_BASE_IMAGE:-node:22-bookworm-slim}"
    REDIS_IMAGE="${DAN_REDIS_IMAGE:-redis:7-alpine}"
    for image in "$BASE_IMAGE" "$REDIS_IMAGE"; do
      image_exists "$image" || pull "$image" || die "cannot pull $image (try DAN_IMAGES=airgap)"
    done
    ;;
  airgap)
    BASE_IMAGE="${DAN_BASE_IMAGE:-dan-airgap/node:bookworm}"
    REDIS_IMAGE="${DAN_REDIS_IMAGE:-dan-airgap/redis:7}"
    if ! image_exists "$BASE_IMAGE" || ! image_exists "$REDIS_IMAGE"; then
      command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    fi
    DAN_BASE_IMAGE="$BASE_IMAGE" DAN_REDIS_IMAGE="$REDIS_IMAGE" as_root "$ROOT/scripts/airgap-images.sh" >&2
    ;;
  *) die "DAN_IMAGES=$MODE is unknown: use auto, airgap or registry" ;;
esac
say "base images ($MODE): $BASE_IMAGE, $REDIS_IMAGE"

# 4. The agent image.
if [ "$BUILD_AGENT" = 1 ]; then
  if [ -x "$ROOT/node_modules/.bin/tsc" ]; then
    DAN_BASE_IMAGE="$BASE_IMAGE" DAN_AGENT_IMAGE="$AGENT_IMAGE" "$ROOT/scripts/build-image.sh" >&2
  else
    say "node_modules is not installed (npm ci): not building $AGENT_IMAGE; run scripts/build-image.sh after npm ci"
  fi
fi

exports="export DAN_BASE_IMAGE=$BASE_IMAGE DAN_REDIS_IMAGE=$REDIS_IMAGE DAN_AGENT_IMAGE=$AGENT_IMAGE"
printf '%s\n' "$exports"
if [ -n "${GITHUB_ENV:-}" ]; then
  printf 'DAN_BASE_IMAGE=%s\nDAN_REDIS_IMAGE=%s\nDAN_AGENT_IMAGE=%s\n' "$BASE_IMAGE" "$REDIS_IMAGE" "$AGENT_IMAGE" >>"$GITHUB_ENV"
fi
