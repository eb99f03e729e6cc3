#!/usr/bin/env bash
# Checks what `docker compose up` and the `dan` CLI need on this machine. One line per check:
#   ok    what was found
#   warn  what may bite later, and what to do
#   FAIL  what is missing, and the command that fixes it
# Exit status: 0 when nothing failed, 1 otherwise. Reads .env in the repository (variables set in the shell win);
# never prints a secret.
#
# Usage: scripts/check-prerequisites.sh [--env-file FILE]
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ENV_FILE="$ROOT/.env"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --env-file) ENV_FILE="${2:?--env-file needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'check-prerequisites: unknown argument %s (try --help)\n' "$1" >&2; exit 2 ;;
  esac
done

failed=0
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then G=$'\e[32m' Y=$'\e[33m' R=$'\e[31m' N=$'\e[0m'; else G='' Y='' R='' N=''; fi
ok() { printf '%sok%s    %s\n' "$G" "$N" "$*"; }
warn() { printf '%swarn%s  %s\n' "$Y" "$N" "$1"; [ -z "${2:-}" ] || printf '      fix: %s\n' "$2"; }
fail() { printf '%sFAIL%s  %s\n' "$R" "$N" "$1"; printf '      fix: %s\n' "$2"; failed=1; }

# setting NAME: the shell's value, else the last NAME=... line of the env file, else empty.
setting() {
  local name="$1"
  if [ -n "${!name+x}" ]; then printf '%s' "${!name}"; return; fi
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^[[:space:]]*$name[[:space:]]*=[[:space:]]*//p" "$ENV_FILE" | tail -n 1 | sed -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

# ---- Node (the dan CLI on the host) ----
if command -v node >/dev/null 2>&1; then
  node_version="$(node --version 2>/dev/null | sed 's/^v//')"
  if version_ge "$node_version" 20.0.0; then ok "Node $node_version"
  else fail "Node $node_version is too old: dan needs Node 20 or newer" "install Node 20 LTS or newer (https://nodejs.org, or nvm install 20)"; fi
else
  fail "Node is not installed: the dan CLI needs Node 20 or newer" "install Node 20 LTS or newer (https://nodejs.org, or nvm install 20)"
fi

# ---- Docker engine ----
docker_ok=0
if ! command -v docker >/dev/null 2>&1; then
  fail "the docker client is not installed" "install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop"
elif docker_error="$(docker info --format '{{.ServerVersion}}' 2>&1)"; then
  docker_ok=1
  ok "Docker engine $docker_error"
elif printf '%s' "$docker_error" | grep -qi 'permission denied'; then
  fail "the Docker socket refuses you (permission denied)" "sudo usermod -aG docker \"\$USER\", then log out and in (or run with sudo)"
else
  fail "the Docker engine does not answer: $(printf '%s' "$docker_error" | head -n 1)" "start it: sudo systemctl start docker (Linux) or open Docker Desktop; or set DOCKER_HOST"
fi

# ---- Compose: v2 plugin or v1 1.28+ (profiles, --env-file) ----
compose_cmd='docker compose'
if docker compose version >/dev/null 2>&1; then
  ok "docker compose $(docker compose version --short 2>/dev/null | sed 's/^v//')"
elif command -v docker-compose >/dev/null 2>&1; then
  v1="$(docker-compose version --short 2>/dev/null | sed 's/^v//')"
  compose_cmd=docker-compose
  if version_ge "${v1:-0}" 1.28.0; then ok "docker-compose $v1 (v1; use docker-compose where the README says docker compose)"
  else fail "docker-compose ${v1:-?} is too old: dan's compose file needs 1.28 or newer" "install the compose plugin: https://docs.docker.com/compose/install/"; fi
else
  fail "neither docker compose (v2) nor docker-compose (v1) is installed" "install the compose plugin: https://docs.docker.com/compose/install/ (Debian: apt-get install docker-compose)"
fi

# ---- .env: Redis password, API key ----
if [ -f "$ENV_FILE" ]; then
  ok ".env found ($ENV_FILE)"
else
  fail "no .env ($ENV_FILE)" "cp .env.example .env and fill it in (scripts/setup-dev.sh does both)"
fi
redis_password="$(setting REDIS_PASSWORD)"
if [ -z "$redis_password" ] || [ "$redis_password" = change-me ]; then
  fail "REDIS_PASSWORD is not set (or is still change-me)" "put a password in .env, in REDIS_PASSWORD and in REDIS_URL: openssl rand -hex 16"
elif ! printf '%s' "$redis_password" | grep -Eq '^[A-Za-z0-9._~-]+$'; then
  fail "REDIS_PASSWORD has characters that break redis:// URLs" "use letters and digits only: openssl rand -hex 16"
else
  redis_url="$(setting REDIS_URL)"
  case "$redis_url" in
    *":$redis_password@"*) ok "REDIS_PASSWORD set, and REDIS_URL uses it" ;;
    '') fail "REDIS_URL is not set: the dan CLI on this machine will not find the compose Redis" "add to .env: REDIS_URL=redis://:<REDIS_PASSWORD>@127.0.0.1:$(setting DAN_REDIS_PORT | grep . || echo 6379)" ;;
    *) warn "REDIS_URL does not carry REDIS_PASSWORD: the dan CLI will not authenticate to the compose Redis" "in .env: REDIS_URL=redis://:<REDIS_PASSWORD>@127.0.0.1:$(setting DAN_REDIS_PORT | grep . || echo 6379)" ;;
  esac
fi
# ---- How agents reach a model: any one method (README, Authentication, limits and budgets) ----
is_on() { case "$(setting "$1")" in ''|0|false|FALSE|False) return 1 ;; *) return 0 ;; esac; }
if is_on CLAUDE_CODE_USE_BEDROCK; then
  if [ -z "$(setting AWS_REGION)" ]; then fail "CLAUDE_CODE_USE_BEDROCK is set but AWS_REGION is not" "put AWS_REGION=<your Bedrock region> in .env"
  else ok "model access: Amazon Bedrock in $(setting AWS_REGION) (credentials not shown)"; fi
elif is_on CLAUDE_CODE_USE_VERTEX; then
  gac="$(setting GOOGLE_APPLICATION_CREDENTIALS)"
  if [ -z "$(setting ANTHROPIC_VERTEX_PROJECT_ID)" ] || [ -z "$(setting CLOUD_ML_REGION)" ]; then
    fail "CLAUDE_CODE_USE_VERTEX is set but ANTHROPIC_VERTEX_PROJECT_ID or CLOUD_ML_REGION is not" "put both in .env"
  elif [ -n "$gac" ] && [ ! -f "$gac" ]; then
    fail "GOOGLE_APPLICATION_CREDENTIALS=$gac does not exist" "point it at your service account key file"
  else ok "model access: Google Vertex AI, project $(setting ANTHROPIC_VERTEX_PROJECT_ID)"; fi
elif [ -n "$(setting ANTHROPIC_API_KEY)" ]; then
  ok "model access: ANTHROPIC_API_KEY is set (not shown)"
  [ -z "$(setting CLAUDE_CODE_OAUTH_TOKEN)" ] || warn "ANTHROPIC_API_KEY wins over CLAUDE_CODE_OAUTH_TOKEN: the subscription is not used" "remove ANTHROPIC_API_KEY from .env to use the subscription"
elif [ -n "$(setting ANTHROPIC_AUTH_TOKEN)" ]; then
  ok "model access: ANTHROPIC_AUTH_TOKEN is set (not shown)"
elif [ -n "$(setting CLAUDE_CODE_OAUTH_TOKEN)" ]; then
  tokens="$(setting CLAUDE_CODE_OAUTH_TOKEN)"
  if ! printf '%s' "$tokens" | grep -Eq '^[^,[:space:]]+(,[^,[:space:]]+)*$'; then
    fail "CLAUDE_CODE_OAUTH_TOKEN is malformed (not shown)" "one token, or several separated by commas, no spaces: claude setup-token prints one"
  else
    ok "model access: subscription, CLAUDE_CODE_OAUTH_TOKEN holds $(printf '%s\n' "$tokens" | awk -F, '{print NF}') token(s) (not shown)"
  fi
else
  fail "no way to reach a model: set one of ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, CLAUDE_CODE_USE_BEDROCK, CLAUDE_CODE_USE_VERTEX, in the shell or in .env" "put your key in .env: ANTHROPIC_API_KEY=sk-ant-... (https://console.anthropic.com), or CLAUDE_CODE_OAUTH_TOKEN=<the output of claude setup-token>"
fi

# ---- The Docker socket's group (the orchestrator runs as uid 1000) ----
socket="$(setting DOCKER_SOCKET)"
socket="${socket:-/var/run/docker.sock}"
docker_gid="$(setting DOCKER_GID)"
desktop=0
[ "$docker_ok" = 1 ] && docker info --format '{{.OperatingSystem}}' 2>/dev/null | grep -qi 'docker desktop' && desktop=1
if [ "$desktop" = 1 ]; then
  if [ "${docker_gid:-0}" = 0 ]; then ok "Docker Desktop: DOCKER_GID=0 (the socket's group inside containers)"
  else warn "Docker Desktop: the socket belongs to group 0 inside containers, DOCKER_GID is $docker_gid" "set DOCKER_GID=0 in .env"; fi
elif [ -S "$socket" ]; then
  socket_gid="$(stat -c %g "$socket" 2>/dev/null || stat -f %g "$socket")"
  if [ "${docker_gid:-0}" = "$socket_gid" ]; then ok "DOCKER_GID=$socket_gid matches $socket"
  else fail "DOCKER_GID is ${docker_gid:-unset (0)}, but $socket belongs to group $socket_gid: the orchestrator could not start agents" "set DOCKER_GID=$socket_gid in .env"; fi
else
  warn "no Docker socket at $socket: the orchestrator mounts it to start agents" "set DOCKER_SOCKET in .env to your engine's socket (rootless: \$XDG_RUNTIME_DIR/docker.sock, with DOCKER_GID=0)"
fi

# ---- Free ports (127.0.0.1) ----
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# held_by_compose PORT: a container of this compose project publishes it (compose is already up).
held_by_compose() {
  [ "$docker_ok" = 1 ] || return 1
  docker ps --filter "publish=$1" --format '{{.Label "com.docker.compose.project"}}' 2>/dev/null | grep -qx "$(setting COMPOSE_PROJECT_NAME | grep . || basename "$ROOT" | tr '[:upper:]' '[:lower:]')"
}
redis_port="$(setting DAN_REDIS_PORT)"
redis_port="${redis_port:-6379}"
if ! port_in_use "$redis_port"; then ok "port $redis_port is free (Redis, on 127.0.0.1)"
elif held_by_compose "$redis_port"; then ok "port $redis_port: dan's Redis is already up"
else fail "port $redis_port is taken on 127.0.0.1 (another Redis?)" "stop what listens there, or set DAN_REDIS_PORT=6380 in .env and the same port in REDIS_URL"; fi
ui_port="$(setting DAN_REDIS_UI_PORT)"
ui_port="${ui_port:-8081}"
if ! port_in_use "$ui_port" || held_by_compose "$ui_port"; then ok "port $ui_port is free (Redis web UI, --profile debug)"
else warn "port $ui_port is taken: only --profile debug needs it" "set DAN_REDIS_UI_PORT in .env"; fi

# ---- The workspace: agents run as uid 1000 and write there ----
workspace="$ROOT/workspace"
if [ ! -d "$workspace" ]; then
  fail "no workspace directory ($workspace)" "mkdir -p workspace && sudo chown 1000:1000 workspace"
elif [ "$desktop" = 1 ]; then
  ok "workspace: Docker Desktop maps file ownership, uid 1000 can write"
else
  read -r owner group mode < <(stat -c '%u %g %a' "$workspace" 2>/dev/null || stat -f '%u %g %Lp' "$workspace")
  mode=$((8#$mode))
  if { [ "$owner" = 1000 ] && (( mode & 8#200 )); } || { [ "$group" = 1000 ] && (( mode & 8#020 )); } || (( mode & 8#002 )); then
    ok "workspace is writable by uid 1000 (agents' user)"
  else
    fail "workspace ($workspace) is owned by uid $owner and not writable by uid 1000, the user agents run as" "sudo chown -R 1000:1000 workspace"
  fi
fi

# ---- Images ----
if [ "$docker_ok" = 1 ]; then
  agent_image="$(setting DAN_AGENT_IMAGE)"
  agent_image="${agent_image:-dan-agent:latest}"
  if docker image inspect "$agent_image" >/dev/null 2>&1; then ok "agent image $agent_image is built"
  else warn "agent image $agent_image is not built yet: \`docker compose up\` builds it from source (needs a registry and npm)" "air-gapped: scripts/build-image.sh"; fi
  redis_image="$(setting DAN_REDIS_IMAGE)"
  redis_image="${redis_image:-redis:7-alpine}"
  if docker image inspect "$redis_image" >/dev/null 2>&1; then ok "Redis image $redis_image is here"
  else warn "Redis image $redis_image is not here: compose pulls it" "air-gapped: scripts/airgap-images.sh, then DAN_REDIS_IMAGE=dan-airgap/redis:7 in .env"; fi
fi

if [ "$failed" = 0 ]; then printf '\nall set: %s up -d\n' "$compose_cmd"; else printf '\nfix the FAIL lines above, then run this again\n'; fi
exit "$failed"
