#!/usr/bin/env bash
# Make a small Debian base image with Python 3.11 for Berth's Dockerfile, without
# a registry: debootstrap (minbase) from the machine's Debian mirror, then
# `docker import`. For machines that cannot pull `python:3.11-slim` (docs/deploy.md).
#
#   scripts/build-base-image.sh            prints the image tag, e.g. berth-base:bookworm-3f9c…
#
# The image is cached (`docker save`) under a content stamp (this script, the
# suite, the mirror, the architecture, the package list, the host's extra CA
# certificates) in BERTH_CACHE_DIR (default ~/.cache/berth): a rerun loads it
# with the same image id, so layer caches of `docker build` made on it still
# match, and does nothing when the daemon has the tag. Delete the file to rebuild.
#
# Environment: DEBIAN_SUITE (default: the machine's, else bookworm),
# DEBIAN_MIRROR (default: the first Debian URI in /etc/apt/sources.list*, else
# http://deb.debian.org/debian), DOCKER_HOST (the daemon to import into),
# BERTH_CACHE_DIR, BERTH_BASE_HOST_CAS (default 1: the image trusts the CA
# certificates this host added under /usr/local/share/ca-certificates, e.g. a
# company's or an egress proxy's, as the host itself does; 0: only Debian's).
# Needs root (debootstrap) and the debootstrap package.
set -euo pipefail

log() { printf 'build-base-image: %s\n' "$*" >&2; }

machine_suite() {
  # shellcheck disable=SC1091
  (. /etc/os-release 2>/dev/null && [ "${ID:-}" = debian ] && printf '%s\n' "${VERSION_CODENAME:-}") || true
}

machine_mirror() {
  # deb822 (.sources) "URIs:" lines and one-line "deb URL suite" entries alike;
  # the first main-archive URI (not -security, not a third-party repository).
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list)
  grep -hsE '^(URIs:|deb )' "${files[@]}" 2>/dev/null |
    sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//' |
    grep -E '/debian/?$' | head -n1 || true
}

SUITE="${DEBIAN_SUITE:-$(machine_suite)}"
SUITE="${SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-$(machine_mirror)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
ARCH="$(dpkg --print-architecture)"
# python3 is 3.11 on bookworm; python3-venv brings ensurepip (pip in a venv);
# ca-certificates for TLS to PostgreSQL, S3 and OIDC servers.
PACKAGES=python3,python3-venv,ca-certificates
HOST_CAS=()
if [ "${BERTH_BASE_HOST_CAS:-1}" = 1 ]; then
  shopt -s nullglob
  HOST_CAS=(/usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt)
  shopt -u nullglob
fi
CACHE_DIR="${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"

STAMP="$(
  {
    cat "${BASH_SOURCE[0]}"
    printf '%s\n' "$SUITE" "$MIRROR" "$ARCH" "$PACKAGES"
    ((${#HOST_CAS[@]} == 0)) || cat "${HOST_CAS[@]}"
  } | sha256sum | cut -c1-16
)"
TAG="berth-base:$SUITE-$STAMP"
SAVED="$CACHE_DIR/base-$SUITE-$ARCH-$STAMP.image.tar.gz"

if docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG: already in the daemon"
  printf '%s\n' "$TAG"
  exit 0
fi
if [ -s "$SAVED" ]; then
  docker load -q -i "$SAVED" >/dev/null
  log "$TAG: loaded from $SAVED"
  printf '%s\n' "$TAG"
  exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; exit 1; }
mkdir -p "$CACHE_DIR"
ROOT="$(mktemp -d "${TMPDIR:-/tmp}/berth-base.XXXXXX")"
# Everything below writes and deletes under ROOT only: refuse anything but a
# fresh directory of our own.
case "$ROOT" in
  /tmp/berth-base.* | "${TMPDIR:-/tmp}"/berth-base.*) ;;
  *) log "refusing unexpected root directory '$ROOT'"; exit 1 ;;
esac
trap 'rm -rf -- "$ROOT" "$ROOT.log"' EXIT
start=$(date +%s)
log "debootstrap --variant=minbase $SUITE from $MIRROR ($ARCH)"
if ! debootstrap --variant=minbase --arch="$ARCH" --include="$PACKAGES" \
  "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1; then
  tail -n 30 "$ROOT.log" >&2
  exit 1
fi
if ((${#HOST_CAS[@]})); then
  log "trusting the host's own CA certificates: ${HOST_CAS[*]}"
  cp -- "${HOST_CAS[@]}" "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >/dev/null
fi
# Keep later apt-get installs (in derived images) as small as this one.
printf '%s\n' \
  'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
  'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
  'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
  >"$ROOT/etc/dpkg/dpkg.cfg.d/01-berth-nodoc"
printf '%s\n' 'APT::Install-Recommends "false";' 'APT::Install-Suggests "false";' \
  >"$ROOT/etc/apt/apt.conf.d/01-berth-small"
# No documentation, caches, package lists or per-machine files in the image.
find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf -- {} +
find "$ROOT/usr/lib" -name __pycache__ -type d -prune -exec rm -rf -- {} +
for path in usr/share/man usr/share/info var/lib/apt/lists var/cache/apt var/log tmp; do
  find "$ROOT/$path" -mindepth 1 -not -type d -delete
done
rm -rf -- "$ROOT/root/.cache"
: >"$ROOT/etc/machine-id"
rm -f -- "$ROOT/etc/hostname" "$ROOT/etc/resolv.conf"
# mktemp made the directory 0700; it becomes the image's `/`, which every user
# must be able to enter.
chmod 0755 "$ROOT"

tar --numeric-owner --xattrs -C "$ROOT" -c . |
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $SUITE + $PACKAGES" \
    - "$TAG" >/dev/null
docker save "$TAG" | gzip -1 >"$SAVED.part"
mv -- "$SAVED.part" "$SAVED"
log "$TAG: made in $(($(date +%s) - start))s, saved to $SAVED ($(du -h "$SAVED" | cut -f1))"
printf '%s\n' "$TAG"
