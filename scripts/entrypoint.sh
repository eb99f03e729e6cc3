#!/bin/sh
# The agent image's entrypoint: one image serves the orchestrator and every domain (DESIGN.md, Images).
#
#   (no arguments)     AGENT_ROLE=main   -> dan orchestrator
#                      AGENT_ROLE=domain -> dan agent --domain "$DOMAIN_TYPE"
#                      AGENT_ROLE=planner -> dan planner (one planning run; the orchestrator starts it)
#   -x ...             the role's command with these extra arguments appended
#   dan SUBCOMMAND ... dan with those arguments (docker run IMAGE dan doctor)
#   COMMAND ...        a command on PATH runs as is (sh, node, claude, sleep ...)
#   SUBCOMMAND ...     anything else is taken as a dan subcommand (docker run IMAGE doctor)
#
# When this script is PID 1 (no `docker run --init`, no HostConfig.Init) and tini is installed, it re-runs
# itself under tini, so signals reach dan and zombies are reaped; the docker runtime sets Init anyway.
set -eu

APP_DIR="${DAN_APP_DIR:-/app}"
DAN="$APP_DIR/dist/bin/dan.js"

if [ "$$" = 1 ] && [ -z "${DAN_UNDER_INIT:-}" ] && command -v tini >/dev/null 2>&1; then
  DAN_UNDER_INIT=1 exec tini -- "$0" "$@"
fi

die() {
  printf 'dan entrypoint: %s\n' "$*" >&2
  exit 64
}

# Started as root (the docker runtime starts agents so, with no capability but SETUID, SETGID and KILL): become
# the agent's uid at once, keeping those three as ambient capabilities for the agent alone, which runs the CLI
# under another uid with none (DAN_CLI_USER, lib/executor/claude-executor.ts). Nothing runs as root past here.
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is missing: the image cannot drop root"
  umask 002
  exec setpriv --reuid=1000 --regid=1000 --clear-groups \
    --inh-caps=-all,+setuid,+setgid,+kill --ambient-caps=-all,+setuid,+setgid,+kill -- "$0" "$@" \
    || die "cannot switch to uid 1000 (setpriv needs CAP_SETUID and CAP_SETGID: CapAdd them, or run as --user 1000:1000)"
fi

dan() {
  [ -f "$DAN" ] || die "$DAN is missing: the image was built without the compiled CLI"
  exec node "$DAN" "$@"
}

run_role() {
  case "${AGENT_ROLE:-}" in
    main) dan orchestrator "$@" ;;
    domain)
      [ -n "${DOMAIN_TYPE:-}" ] || die "AGENT_ROLE=domain needs DOMAIN_TYPE (the domain folder name, e.g. backend)"
      dan agent --domain "$DOMAIN_TYPE" "$@"
      ;;
    planner) dan planner "$@" ;;
    '') die "AGENT_ROLE is not set: use AGENT_ROLE=main (orchestrator) or AGENT_ROLE=domain with DOMAIN_TYPE, or give a command (dan doctor, sh)" ;;
    *) die "AGENT_ROLE=${AGENT_ROLE} is unknown: use main or domain (planner runs are started by the orchestrator)" ;;
  esac
}

if [ "$#" -eq 0 ]; then
  run_role
fi
case "$1" in
  -*) run_role "$@" ;;
  dan) shift; dan "$@" ;;
esac
if command -v "$1" >/dev/null 2>&1; then
  exec "$@"
fi
dan "$@"
