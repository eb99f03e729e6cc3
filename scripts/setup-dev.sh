#!/usr/bin/env bash
# The development environment in one command, from a fresh clone. Idempotent: run it again any time.
#   1. npm ci (the committed lock, unchanged) and npm run build; `npm link` puts `dan` on PATH when the global
#      prefix is writable (else it says how)
#   2. .env from .env.example when there is none: a random REDIS_PASSWORD (also written into REDIS_URL), the
#      Docker socket's group (DOCKER_GID), and ANTHROPIC_API_KEY when your shell has it. An existing .env is
#      left alone.
#   3. the workspace writable by uid 1000, the user agents run as (chown when run as root, else the command)
#   4. images: where the registry's Redis and Node images cannot be pulled, the air-gapped ones
#      (scripts/airgap-images.sh; needs root and debootstrap), their names written into .env; then the agent
#      image with scripts/build-image.sh (no network inside the build); with --compose-build, with
#      `docker compose build` instead (builds from source inside Docker: needs a registry and npm)
#   5. scripts/check-prerequisites.sh, then the next steps
#
# Usage: scripts/setup-dev.sh [--compose-build] [--no-images]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGES=build-image
for arg in "$@"; do
  case "$arg" in
    --compose-build) IMAGES=compose ;;
    --no-images) IMAGES=none ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'setup-dev: unknown argument %s (try --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }
die() { printf 'setup-dev: error: %s\n' "$*" >&2; exit 1; }
cd "$ROOT"

command -v node >/dev/null 2>&1 || die "Node is not installed: install Node 20 or newer (https://nodejs.org)"
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || die "Node $(node --version) is too old: install Node 20 or newer"
command -v docker >/dev/null 2>&1 || die "the docker client is not installed: install Docker Engine or Docker Desktop"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: start it (sudo systemctl start docker, or Docker Desktop), then run this again"

say "npm ci, build"
# npm ci installs exactly the committed lock (npm install would rewrite it on a fresh clone).
npm ci --no-audit --no-fund
npm run build
if command -v dan >/dev/null 2>&1 && [ "$(readlink -f "$(command -v dan)")" = "$ROOT/dist/bin/dan.js" ]; then
  echo "dan is on PATH (npm link)"
elif prefix="$(npm prefix -g)" && { [ -d "$prefix/bin" ] && [ -w "$prefix/bin" ] || { [ ! -e "$prefix/bin" ] && [ -w "$prefix" ]; }; }; then
  npm link --no-audit --no-fund >/dev/null 2>&1 && echo "npm link: dan is on PATH ($(command -v dan || echo "$(npm prefix -g)/bin/dan"))" ||
    echo "npm link failed: run it yourself to get dan on PATH (meanwhile: node dist/bin/dan.js)"
else
  echo "dan is not on PATH: run \`npm link\` (or \`npm install -g .\`) here, as a user who may write to $(npm prefix -g)"
fi

say ".env"
if [ -f .env ]; then
  echo ".env exists: left as it is"
else
  password="$(node -e 'process.stdout.write(require("node:crypto").randomBytes(16).toString("hex"))')"
  if docker info --format '{{.OperatingSystem}}' 2>/dev/null | grep -qi 'docker desktop'; then
    gid=0 # Docker Desktop: the socket belongs to root's group inside containers
  elif [ -S /var/run/docker.sock ]; then
    gid="$(stat -c %g /var/run/docker.sock 2>/dev/null || stat -f %g /var/run/docker.sock)"
  else
    gid=0
  fi
  sed -e "s/change-me/$password/g" -e "s/^DOCKER_GID=.*/DOCKER_GID=$gid/" .env.example >.env
  if [ -n "${ANTHROPIC_API_KEY:-}" ]; then
    # The key goes through a file descriptor, never through a command line.
    node -e 'const fs = require("node:fs"); const t = fs.readFileSync(".env", "utf8");
      fs.writeFileSync(".env", t.replace(/^ANTHROPIC_API_KEY=.*$/m, () => "ANTHROPIC_API_KEY=" + process.env.ANTHROPIC_API_KEY));'
    echo "wrote .env: a new Redis password, DOCKER_GID=$gid, and ANTHROPIC_API_KEY from your shell"
  else
    echo "wrote .env: a new Redis password, DOCKER_GID=$gid; put your ANTHROPIC_API_KEY in it"
  fi
  chmod 600 .env
fi

say "workspace (agents write there as uid 1000)"
mkdir -p workspace
if [ "$(stat -c %u workspace 2>/dev/null || stat -f %u workspace)" = 1000 ]; then
  echo "workspace belongs to uid 1000"
elif [ "$(uname -s)" = Darwin ]; then
  echo "macOS: Docker Desktop maps file ownership; nothing to do"
elif [ "$(id -u)" = 0 ]; then
  chown -R 1000:1000 workspace
  echo "chown -R 1000:1000 workspace"
else
  echo "workspace belongs to uid $(id -u), agents write as uid 1000. Give it to them with:"
  echo "  sudo chown -R 1000:1000 $ROOT/workspace"
  echo "(or, to keep it yours: sudo setfacl -R -m u:1000:rwX -m d:u:1000:rwX $ROOT/workspace)"
fi

# set_env NAME VALUE: NAME=VALUE in .env, replacing a line (commented out or not) that sets it, else appended.
set_env() {
  if grep -qE "^#? *$1=" .env; then sed -i.bak -E "s|^#? *$1=.*|$1=$2|" .env && rm -f .env.bak; else printf '%s=%s\n' "$1" "$2" >>.env; fi
}
# env_value NAME: the value .env gives NAME (empty when unset or commented out).
env_value() { sed -n "s/^$1=//p" .env | tail -n 1; }
image_here_or_pulled() { docker image inspect "$1" >/dev/null 2>&1 || timeout 60 docker pull -q "$1" >/dev/null 2>&1; }

if [ "$IMAGES" = build-image ]; then
  say "base images"
  redis_image="${DAN_REDIS_IMAGE:-$(env_value DAN_REDIS_IMAGE)}"
  base_image="${DAN_BASE_IMAGE:-$(env_value DAN_BASE_IMAGE)}"
  if [ -n "$redis_image" ] && [ -n "$base_image" ]; then
    echo "named in .env or the environment: $redis_image, $base_image"
  elif image_here_or_pulled "${redis_image:-redis:7-alpine}" && image_here_or_pulled "${base_image:-node:22-bookworm-slim}"; then
    echo "${redis_image:-redis:7-alpine} and ${base_image:-node:22-bookworm-slim} are here"
  else
    # No registry: build local images, as build-image.sh already falls back for the base, and name them in
    # .env so that compose uses them with nothing to edit.
    echo "the registry's images cannot be pulled: building air-gapped ones (scripts/airgap-images.sh)"
    DAN_REDIS_IMAGE=dan-airgap/redis:7 DAN_BASE_IMAGE=dan-airgap/node:bookworm scripts/airgap-images.sh
    [ -n "$redis_image" ] || { set_env DAN_REDIS_IMAGE dan-airgap/redis:7; redis_image=dan-airgap/redis:7; }
    [ -n "$base_image" ] || { set_env DAN_BASE_IMAGE dan-airgap/node:bookworm; base_image=dan-airgap/node:bookworm; }
    echo "wrote into .env: DAN_REDIS_IMAGE=$redis_image DAN_BASE_IMAGE=$base_image"
  fi
  [ -z "$base_image" ] || export DAN_BASE_IMAGE="$base_image"
fi

case "$IMAGES" in
  build-image) say "agent image (scripts/build-image.sh)"; scripts/build-image.sh ;;
  compose)
    say "agent image (compose build, from source)"
    if docker compose version >/dev/null 2>&1; then docker compose build; else docker-compose build; fi
    ;;
  none) say "images: skipped (--no-images)" ;;
esac

say "checks"
scripts/check-prerequisites.sh || true

compose="docker compose"
docker compose version >/dev/null 2>&1 || compose=docker-compose
cat <<EOF

Next:
  $compose up -d                                   # Redis and the orchestrator
  dan send-task backend "Write hello.txt saying hello" --wait
  dan agents; dan tasks; ls workspace
  dan domain new data                              # a domain of your own, ready for tasks
  $compose down                                    # stops the agents too
EOF
