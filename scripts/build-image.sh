#!/usr/bin/env bash
# Build Berth's image where no registry can be pulled from: a Debian base made
# by scripts/build-base-image.sh (debootstrap + docker import), then the
# Dockerfile on it, with the host's network for pip (PyPI).
#
#   scripts/build-image.sh [TAG]       (default berth:dev; prints TAG when done)
#
# The last image built is kept as a layer cache (`docker save`, in
# BERTH_CACHE_DIR, default ~/.cache/berth) and offered to the next build with
# --cache-from, so a fresh daemon (a test run's) reinstalls the Python
# dependencies only when pyproject.toml, the Dockerfile or the base change.
# BERTH_IMAGE_CACHE=0 turns that off. Extra `docker build` arguments go in
# BERTH_BUILD_ARGS. With a registry at hand, plain `docker build -t berth .`
# does the same on python:3.11-slim-bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-berth:dev}"
CACHE_DIR="${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
log() { printf 'build-image: %s\n' "$*" >&2; }

base="$(bash scripts/build-base-image.sh)"
cache_ref="berth-build-cache:${base#*:}"
cache_tar="$CACHE_DIR/image-${base#*:}.tar"
cache_args=()
if [ "${BERTH_IMAGE_CACHE:-1}" = 1 ]; then
  if ! docker image inspect "$cache_ref" >/dev/null 2>&1 && [ -s "$cache_tar" ]; then
    docker load -q -i "$cache_tar" >/dev/null && log "layer cache loaded from $cache_tar"
  fi
  if docker image inspect "$cache_ref" >/dev/null 2>&1; then
    cache_args=(--cache-from "$cache_ref")
  fi
fi

start=$(date +%s)
# shellcheck disable=SC2086
docker build --network host --build-arg BASE_IMAGE="$base" "${cache_args[@]}" \
  ${BERTH_BUILD_ARGS:-} -t "$TAG" . >&2
log "$TAG built on $base in $(($(date +%s) - start))s"

if [ "${BERTH_IMAGE_CACHE:-1}" = 1 ]; then
  docker tag "$TAG" "$cache_ref"
  mkdir -p "$CACHE_DIR"
  docker save -o "$cache_tar.part" "$cache_ref" && mv "$cache_tar.part" "$cache_tar"
fi
printf '%s\n' "$TAG"
