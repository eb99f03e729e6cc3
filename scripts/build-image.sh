#!/usr/bin/env bash
# Builds the agent image with no network inside the build (DESIGN.md, Images): prepares on the host what the
# `prebuilt` target of Dockerfile.agent copies, then builds that target.
#
#   .build/image/dist/           the compiled CLI and library, and the dashboard in dist/web (npm run build; no tests, no source maps)
#   .build/image/package.json
#   .build/image/node_modules/   production dependencies, the native claude binary's platform package included
#   .build/image/agents/         domain and orchestrator templates
#   .build/image/scripts/        entrypoint.sh, healthcheck.sh
#
# Usage: scripts/build-image.sh [--no-cache] [--skip-smoke]
# Settings: DAN_AGENT_IMAGE (default dan-agent:latest), DAN_BASE_IMAGE (default node:22-bookworm-slim when it
# is present or can be pulled, else dan-airgap/node:bookworm from scripts/airgap-images.sh), from the
# environment or else from .env (DAN_ENV_FILE names another), as compose reads them. The image it replaces, left untagged, is removed.
# Idempotent: compiles only when sources changed and re-stages node_modules only when the lockfile changed;
# Docker's layer cache does the rest.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STAGE="$ROOT/.build/image"
# A setting from .env (the last NAME=value line, quotes stripped), for what the environment does not set.
# DAN_ENV_FILE names another file, as for the dan CLI (empty: none).
ENV_FILE="${DAN_ENV_FILE-$ROOT/.env}"
from_env_file() {
  [ -n "$ENV_FILE" ] && [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1=//p" "$ENV_FILE" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}
DAN_AGENT_IMAGE="${DAN_AGENT_IMAGE:-$(from_env_file DAN_AGENT_IMAGE)}"
DAN_BASE_IMAGE="${DAN_BASE_IMAGE:-$(from_env_file DAN_BASE_IMAGE)}"
AGENT_IMAGE="${DAN_AGENT_IMAGE:-dan-agent:latest}"
NO_CACHE=()
SMOKE=1

say() { printf 'build-image: %s\n' "$*"; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }

# One build at a time: test suites running in parallel may each ask for the image.
mkdir -p "$ROOT/.build"
exec 9>"$ROOT/.build/build-image.lock"
flock 9

for arg in "$@"; do
  case "$arg" in
    --no-cache) NO_CACHE=(--no-cache) ;;
    --skip-smoke) SMOKE=0 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

cd "$ROOT"
command -v docker >/dev/null 2>&1 || die "the docker client is not installed"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine: start it (scripts/ci-docker.sh) or set DOCKER_HOST"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if [ -n "${DAN_BASE_IMAGE:-}" ]; then
  BASE_IMAGE="$DAN_BASE_IMAGE"
elif image_exists node:22-bookworm-slim || timeout 60 docker pull -q node:22-bookworm-slim >/dev/null 2>&1; then
  BASE_IMAGE=node:22-bookworm-slim
else
  BASE_IMAGE=dan-airgap/node:bookworm
  say "node:22-bookworm-slim cannot be pulled; using the local $BASE_IMAGE"
fi
image_exists "$BASE_IMAGE" || timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1 ||
  die "base image $BASE_IMAGE is not here and cannot be pulled: build it with scripts/airgap-images.sh"

# 1. Compile, when a source is newer than the last build.
stamp=dist/.dan-build-stamp
if [ ! -f dist/bin/dan.js ] || [ ! -f "$stamp" ] ||
  [ ! -f dist/web/index.html ] ||
  [ -n "$(find bin lib web package.json tsconfig.json tsconfig.build.json -newer "$stamp" -print -quit)" ]; then
  say "compiling (npm run build)"
  npm run build --silent
  touch "$stamp"
else
  say "dist/ is up to date"
fi
[ -f dist/bin/dan.js ] || die "npm run build produced no dist/bin/dan.js"
[ -f dist/web/index.html ] || die "npm run build produced no dashboard (dist/web/index.html)"

mkdir -p "$STAGE"

# 2. Production dependencies, when the lockfile or the installed tree changed. Copying the host's installed
# tree and pruning it works offline and keeps the platform package npm chose here (the claude binary);
# without a local node_modules, npm ci --omit=dev installs into the staging dir (needs the npm registry).
deps_key="$(cat package-lock.json node_modules/.package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)"
deps_stamp="$ROOT/.build/image-deps-stamp"
if [ -d "$STAGE/node_modules" ] && [ "$(cat "$deps_stamp" 2>/dev/null)" = "$deps_key" ]; then
  say "node_modules is up to date"
else
  rm -rf "$STAGE/node_modules" "$deps_stamp" "$STAGE/.deps-stamp"
  cp package.json package-lock.json "$STAGE/"
  if [ -d node_modules ]; then
    say "staging production node_modules (copy and prune)"
    cp -a node_modules "$STAGE/node_modules"
    (cd "$STAGE" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  else
    say "staging production node_modules (npm ci --omit=dev)"
    (cd "$STAGE" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  find "$STAGE/node_modules" -name '*.map' -type f -delete
  rm -f "$STAGE/package-lock.json"
  printf '%s\n' "$deps_key" >"$deps_stamp"
fi
claude="$STAGE/node_modules/.bin/claude"
[ -e "$claude" ] || die "no claude binary in the staged node_modules (is @anthropic-ai/claude-code installed with its optional dependencies?)"
"$claude" --version >/dev/null 2>&1 || die "the staged claude binary does not run: $("$claude" --version 2>&1 | head -n 1)"

# 3. Compiled code, templates, scripts: cheap, so always refreshed.
rm -rf "$STAGE/dist" "$STAGE/agents" "$STAGE/scripts"
mkdir -p "$STAGE/dist" "$STAGE/scripts"
cp -a dist/bin dist/lib dist/web "$STAGE/dist/"
find "$STAGE/dist" -name '*.map' -type f -delete
cp package.json "$STAGE/"
cp -a agents "$STAGE/agents"
cp scripts/entrypoint.sh scripts/healthcheck.sh "$STAGE/scripts/"
say "staged .build/image ($(du -sh "$STAGE" | cut -f1))"

# 4. The image. Without buildx, the classic builder; it builds only the stages up to --target.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
previous="$(docker image inspect -f '{{.Id}}' "$AGENT_IMAGE" 2>/dev/null || true)"
say "docker build --target prebuilt --build-arg BASE_IMAGE=$BASE_IMAGE -t $AGENT_IMAGE"
docker build "${NO_CACHE[@]}" --target prebuilt --build-arg BASE_IMAGE="$BASE_IMAGE" \
  -t "$AGENT_IMAGE" -f Dockerfile.agent . >"$ROOT/.build/docker-build.log" 2>&1 ||
  { tail -n 30 "$ROOT/.build/docker-build.log" >&2; die "docker build failed (log: .build/docker-build.log)"; }

# The image this one replaced keeps ~540 MB as an untagged <none> image: remove it, unless something still uses
# it (a running container, another tag), which Docker refuses and which is then left alone.
current="$(docker image inspect -f '{{.Id}}' "$AGENT_IMAGE")"
if [ -n "$previous" ] && [ "$previous" != "$current" ] && [ "$(docker image inspect -f '{{len .RepoTags}}' "$previous" 2>/dev/null)" = 0 ]; then
  if docker image rm "$previous" >/dev/null 2>&1; then
    say "removed the previous $AGENT_IMAGE (${previous#sha256:}), now untagged"
  else
    say "kept the previous $AGENT_IMAGE (${previous#sha256:}): a container still uses it"
  fi
fi

if [ "$SMOKE" = 1 ]; then
  out="$(docker run --rm --entrypoint sh "$AGENT_IMAGE" -c 'id -u; node --version; claude --version' 2>&1)" ||
    die "the image does not run: $out"
  [ "$(printf '%s\n' "$out" | head -n 1)" = 1000 ] || die "the image does not run as uid 1000: $out"
  say "smoke test: uid 1000, node $(printf '%s\n' "$out" | sed -n 2p), claude $(printf '%s\n' "$out" | sed -n 3p | cut -d' ' -f1)"
fi
say "built $AGENT_IMAGE ($(docker image inspect -f '{{.Size}}' "$AGENT_IMAGE" | awk '{ printf "%d MB", $1 / 1000000 }')) from $BASE_IMAGE"
