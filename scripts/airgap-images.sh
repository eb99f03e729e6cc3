#!/usr/bin/env bash
# Builds dan's base images locally, for machines where no container registry can be reached
# (ENVIRONMENT.md, Docker): a Debian bookworm minbase root filesystem made by debootstrap, imported with
# `docker import`. Nothing is pulled from a registry; only Debian packages are fetched, on the host.
#
#   DAN_BASE_IMAGE   (default dan-airgap/node:bookworm)  the host's node, git, ca-certificates, procps, tini,
#                    user agent (uid 1000, home /home/agent), /workspace owned by agent
#   DAN_REDIS_IMAGE  (default dan-airgap/redis:7)        Debian's redis-server; CMD redis-server
#
# Usage: scripts/airgap-images.sh [--force] [--clean] [--base-only | --redis-only]
#   --force   re-import the images even if they exist (reuses the cached root filesystems)
#   --clean   also drop the cached root filesystems and bootstrap again
# Other settings: DAN_AIRGAP_CACHE (default /var/cache/dan-airgap), DAN_DEBIAN_MIRROR
# (default http://deb.debian.org/debian), DAN_NODE_BIN (default the `node` on PATH).
# Idempotent: an existing image is skipped, a cached root filesystem is reused.
set -euo pipefail

BASE_IMAGE="${DAN_BASE_IMAGE:-dan-airgap/node:bookworm}"
REDIS_IMAGE="${DAN_REDIS_IMAGE:-dan-airgap/redis:7}"
CACHE="${DAN_AIRGAP_CACHE:-/var/cache/dan-airgap}"
MIRROR="${DAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
BASE_PACKAGES="ca-certificates,git,procps,tini"
REDIS_PACKAGES="redis-server"
FORCE=0
CLEAN=0
WANT_BASE=1
WANT_REDIS=1

say() { printf 'airgap-images: %s\n' "$*"; }
die() { printf 'airgap-images: error: %s\n' "$*" >&2; exit 1; }

for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --clean) CLEAN=1; FORCE=1 ;;
    --base-only) WANT_REDIS=0 ;;
    --redis-only) WANT_BASE=0 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

command -v docker >/dev/null 2>&1 || die "the docker client is not installed (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine: start dockerd (scripts/ci-docker.sh does) or set DOCKER_HOST"

todo=()
if [ "$WANT_BASE" = 1 ]; then
  if [ "$FORCE" = 0 ] && image_exists "$BASE_IMAGE"; then say "$BASE_IMAGE exists, skipped (--force rebuilds)"; else todo+=(base); fi
fi
if [ "$WANT_REDIS" = 1 ]; then
  if [ "$FORCE" = 0 ] && image_exists "$REDIS_IMAGE"; then say "$REDIS_IMAGE exists, skipped (--force rebuilds)"; else todo+=(redis); fi
fi
[ "${#todo[@]}" -gt 0 ] || exit 0

[ "$(id -u)" = 0 ] || die "debootstrap and chroot need root: run this script as root (sudo $0)"
if ! command -v debootstrap >/dev/null 2>&1; then
  printf 'airgap-images: error: debootstrap is not installed. Install it with:\n  apt-get update && apt-get install -y debootstrap\n' >&2
  exit 2
fi

# Unmounts whatever debootstrap left mounted under a directory (proc, sys, dev after an interrupted run),
# so that removing the directory can never reach into the host's /proc or /sys.
unmount_under() {
  local dir="$1"
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount -l "$mnt" || true
  done
}

# bootstrap NAME PACKAGES: a cached minbase root filesystem at $CACHE/NAME with PACKAGES included.
bootstrap() {
  local name="$1" packages="$2" dir="$CACHE/$1"
  if [ "$CLEAN" = 0 ] && [ -f "$dir/.dan-rootfs" ] && [ "$(cat "$dir/.dan-rootfs")" = "$SUITE $packages" ]; then
    say "reusing the cached $name root filesystem ($dir)"
    return
  fi
  mkdir -p "$CACHE/debs"
  unmount_under "$dir"
  unmount_under "$dir.tmp"
  rm -rf --one-file-system "$dir" "$dir.tmp"
  say "debootstrap $SUITE minbase + $packages into $dir (about a minute)"
  local started=$SECONDS
  if ! debootstrap --variant=minbase --include="$packages" --cache-dir="$CACHE/debs" \
    "$SUITE" "$dir.tmp" "$MIRROR" >"$CACHE/$name-debootstrap.log" 2>&1; then
    unmount_under "$dir.tmp"
    tail -n 20 "$CACHE/$name-debootstrap.log" >&2
    die "debootstrap failed (full log: $CACHE/$name-debootstrap.log)"
  fi
  unmount_under "$dir.tmp"
  # What a container never needs: package lists, documentation, manuals, translations.
  rm -rf "$dir.tmp"/var/lib/apt/lists/* "$dir.tmp"/var/cache/apt/*.bin "$dir.tmp"/var/cache/apt/archives/*.deb \
    "$dir.tmp"/usr/share/doc/* "$dir.tmp"/usr/share/man/* "$dir.tmp"/usr/share/info/* "$dir.tmp"/usr/share/locale/* \
    "$dir.tmp"/var/log/*.log "$dir.tmp"/var/log/apt/*
  printf '%s %s\n' "$SUITE" "$packages" >"$dir.tmp/.dan-rootfs"
  mv "$dir.tmp" "$dir"
  say "bootstrapped $name in $((SECONDS - started)) s"
}

# import DIR IMAGE CHANGES...: the directory as a one-layer image.
import_rootfs() {
  local dir="$1" image="$2"
  shift 2
  local changes=() old
  for change in "$@"; do changes+=(--change "$change"); done
  old="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
  tar --numeric-owner --exclude=./.dan-rootfs -C "$dir" -c . | docker import "${changes[@]}" - "$image" >/dev/null
  # The image it replaces, now untagged; still in use by images built on it, it stays.
  [ -z "$old" ] || [ "$old" = "$(docker image inspect -f '{{.Id}}' "$image")" ] || docker image rm "$old" >/dev/null 2>&1 || true
  say "imported $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%d MB", $1 / 1000000 }'))"
}

PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

build_base() {
  local node_bin dir="$CACHE/base"
  node_bin="$(readlink -f "${DAN_NODE_BIN:-$(command -v node || true)}")"
  [ -x "$node_bin" ] || die "no node binary on the host to copy (install Node 20+ or set DAN_NODE_BIN)"
  bootstrap base "$BASE_PACKAGES"
  install -m 0755 "$node_bin" "$dir/usr/local/bin/node"
  local version
  version="$(chroot "$dir" /usr/local/bin/node --version)" || die "the host's node ($node_bin) does not run inside bookworm"
  if ! chroot "$dir" id -u agent >/dev/null 2>&1; then
    chroot "$dir" useradd --create-home --uid 1000 --user-group --shell /bin/bash agent
  fi
  [ "$(chroot "$dir" id -u agent)" = 1000 ] || die "user agent in $dir does not have uid 1000"
  mkdir -p "$dir/workspace"
  chown 1000:1000 "$dir/workspace"
  import_rootfs "$dir" "$BASE_IMAGE" "$PATH_ENV" 'ENV LANG=C.UTF-8' 'ENV NODE_VERSION='"${version#v}" 'CMD ["node"]'
}

build_redis() {
  local dir="$CACHE/redis"
  bootstrap redis "$REDIS_PACKAGES"
  mkdir -p "$dir/data"
  chroot "$dir" chown redis:redis /data
  # Like the official image: `redis-server ARGS` runs as user redis without protected mode (the container
  # is the boundary and clients come from other containers or mapped ports); later ARGS still override it.
  cat >"$dir/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=redis --regid=redis --init-groups /usr/bin/redis-server --protected-mode no "$@"
  fi
  exec /usr/bin/redis-server --protected-mode no "$@"
fi
exec "$@"
EOF
  chmod 0755 "$dir/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$dir" "$REDIS_IMAGE" "$PATH_ENV" 'WORKDIR /data' 'EXPOSE 6379' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["redis-server"]'
}

for what in "${todo[@]}"; do
  case "$what" in
    base) build_base ;;
    redis) build_redis ;;
  esac
done
say "done: built ${todo[*]}"
