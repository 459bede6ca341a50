#!/usr/bin/env bash
# Build Berth's image where no registry can be pulled from: a Debian base made
# by scripts/build-base-image.sh (debootstrap + docker import), then the
# Dockerfile on it, with the host's network for pip (PyPI).
#
#   scripts/build-image.sh [TAG]       (default berth:dev; prints TAG when done)
#
# A layer cache for the next build on a fresh daemon (a test run's): the first
# image built from a given Dockerfile, pyproject.toml and base is saved
# (`docker save`, in BERTH_CACHE_DIR, default ~/.cache/berth) and offered to
# later builds with --cache-from, so they reuse its dependency layer and only
# copy Berth's code. BERTH_IMAGE_CACHE=0 turns that off. Extra `docker build`
# arguments go in BERTH_BUILD_ARGS. With a registry at hand, plain
# `docker build -t berth .` does the same on python:3.11-slim-bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-berth:dev}"
CACHE_DIR="${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
log() { printf 'build-image: %s\n' "$*" >&2; }

base="$(bash scripts/build-base-image.sh)"
deps="$(cat Dockerfile pyproject.toml | sha256sum | cut -c1-12)"
cache_ref="berth-build-cache:${base#*:}-$deps"
cache_tar="$CACHE_DIR/image-${base#*:}-$deps.tar"
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

if [ "${BERTH_IMAGE_CACHE:-1}" = 1 ] && [ ! -s "$cache_tar" ]; then
  docker tag "$TAG" "$cache_ref"
  mkdir -p "$CACHE_DIR"
  # Concurrent builds each write their own part; the last rename wins.
  docker save -o "$cache_tar.part.$$" "$cache_ref" && mv "$cache_tar.part.$$" "$cache_tar"
  log "layer cache saved to $cache_tar"
fi
printf '%s\n' "$TAG"
