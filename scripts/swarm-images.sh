#!/bin/sh
# Carries dan's images to the nodes of a Swarm that reaches no registry (README, Across machines):
# `docker save` here, `docker load` there, over ssh or straight to another engine's DOCKER_HOST.
#
#   scripts/swarm-images.sh user@node2 node3             # over ssh: the remote user may run `docker load`
#   scripts/swarm-images.sh tcp://10.0.0.7:2375           # to that engine's API (DOCKER_HOST syntax)
#   DAN_IMAGES="dan-agent:1.2 redis:7-alpine" scripts/swarm-images.sh user@node2
#
# The images: DAN_IMAGES, else DAN_AGENT_IMAGE (default dan-agent:latest) and DAN_REDIS_IMAGE (default
# redis:7-alpine). A node that already has an image with the same id is skipped. Exit 1 if any node failed.
set -eu

usage() {
  printf 'usage: %s TARGET...   (TARGET: [user@]host for ssh, or tcp://host:port | unix:///path | ssh://[user@]host for DOCKER_HOST)\n' "$0" >&2
  exit 2
}
[ "$#" -gt 0 ] || usage
case "$1" in -h | --help) usage ;; esac

images="${DAN_IMAGES:-${DAN_AGENT_IMAGE:-dan-agent:latest} ${DAN_REDIS_IMAGE:-redis:7-alpine}}"
for image in $images; do
  docker image inspect "$image" >/dev/null 2>&1 || { printf 'swarm-images: %s is not on this machine (build it: scripts/build-image.sh)\n' "$image" >&2; exit 2; }
done

# Runs `docker "$@"` on a target: through ssh for a bare host, else with DOCKER_HOST set to the target.
on() {
  target="$1"
  shift
  case "$target" in
    tcp://* | unix://* | ssh://*) DOCKER_HOST="$target" docker "$@" ;;
    *) ssh -o BatchMode=yes "$target" docker "$@" ;;
  esac
}

failed=0
for target in "$@"; do
  missing=''
  for image in $images; do
    here=$(docker image inspect --format '{{.Id}}' "$image")
    there=$(on "$target" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    [ "$here" = "$there" ] || missing="$missing $image"
  done
  if [ -z "$missing" ]; then
    printf 'swarm-images: %s already has%s\n' "$target" " $images"
    continue
  fi
  printf 'swarm-images: %s <-%s\n' "$target" "$missing"
  # shellcheck disable=SC2086 # the list is word-split on purpose: image names hold no spaces
  if ! docker save $missing | on "$target" load >/dev/null; then
    printf 'swarm-images: loading into %s failed\n' "$target" >&2
    failed=1
  fi
done
exit "$failed"
