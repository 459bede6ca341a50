#!/usr/bin/env bash
# Build the Go-based "peer" client tools that Berth's test suite drives against
# the registry, from the Go module proxy only (no GitHub, no prebuilt binaries).
#
#   tests/peers/build-go-peers.sh [BIN_DIR]      (default: $REPO/.peers/bin)
#
# Produces in BIN_DIR:
#   conformance.test       OCI distribution-spec conformance suite v1.1.1
#                          (commit a139cc423184, a `go test -c` ginkgo binary)
#   conformance-main.test  redesigned suite from distribution-spec main
#                          (`go test -c`, runs its legacy-env-var mode)
#   conformance-main       same redesigned suite as a plain `go build` binary
#                          (the upstream-recommended form; OCI_REGISTRY etc.)
#   oras                   oras CLI
#   crane                  go-containerregistry's crane CLI
#   minio                  MinIO server: the real S3 the S3 blob store is tested
#                          against (optional: a failed build only warns)
#   helm                   Helm 3 CLI: `helm lint`/`helm template` of the chart
#                          deploy/helm/berth (tests/test_deploy.py)
#
# Each tool has a stamp file in BIN_DIR/.stamps/; a tool whose stamp matches the
# pinned version (and Go version) and whose binary exists is skipped, so
# re-runs take well under a second. Delete a stamp (or the binary) to force a
# rebuild. GOPATH/GOCACHE are left at their defaults so the module and build
# caches are reused between runs on the same machine.
#
# Environment overrides: GO (go binary; default: `go` on PATH, else
# /usr/local/go/bin/go).
#
# ---------------------------------------------------------------------------
# Running conformance.test (v1.1.1) -- env vars read by the suite (setup.go,
# reporter.go at a139cc423184):
#   OCI_ROOT_URL                 registry base URL, e.g. http://127.0.0.1:5000
#                                (scheme decides http/https; TLS verify is off)
#   OCI_NAMESPACE                repository used by the tests, e.g. myorg/myrepo
#   OCI_CROSSMOUNT_NAMESPACE     second repo for cross-repo blob mount tests
#                                (default: conformance-<random uuid>)
#   OCI_USERNAME / OCI_PASSWORD  basic/token auth credentials (optional)
#   OCI_AUTH_SCOPE               override token scope, e.g.
#                                "repository:myorg/myrepo:pull,push"
#   OCI_TEST_PULL=1              enable workflow 1 (pull)
#   OCI_TEST_PUSH=1              enable workflow 2 (push)
#   OCI_TEST_CONTENT_DISCOVERY=1 enable workflow 3 (tags list, referrers)
#   OCI_TEST_CONTENT_MANAGEMENT=1 enable workflow 4 (deletes)
#       (all four are off by default; any strconv.ParseBool-true value works)
#   OCI_DEBUG=1                  log every HTTP request/response
#   OCI_REPORT_DIR=DIR           where junit.xml + report.html go; default is
#                                the CWD; "none" disables both reports
#   OCI_HIDE_SKIPPED_WORKFLOWS=1 omit disabled workflows from report.html
#   OCI_DELETE_MANIFEST_BEFORE_BLOBS=0|1  teardown order (default 1 = delete
#                                manifests first)
#   OCI_AUTOMATIC_CROSSMOUNT=0|1 if set, also test mount-without-`from`
#                                (1: expect 201 mount, 0: expect 202 upload);
#                                unset: those two tests are skipped
#   OCI_TAG_NAME + OCI_MANIFEST_DIGEST + OCI_BLOB_DIGEST  all three set: pull
#                                tests use this pre-existing content instead of
#                                pushing their own
#   OCI_TAG_LIST=t1,t2,t3,t4     pre-existing tags for discovery (skips setup)
#   OCI_SKIP_EMPTY_LAYER_PUSH_TEST  only echoed in the HTML report in v1.1.1;
#                                it does not skip anything.
# Ginkgo flags work too, e.g. -ginkgo.v, -ginkgo.no-color,
# -ginkgo.focus=REGEX, -ginkgo.skip=REGEX.
#
# conformance-main / conformance-main.test are configured by OCI_REGISTRY,
# OCI_TLS=disabled|insecure|enabled, OCI_REPO1, OCI_REPO2, OCI_VERSION=1.1,
# OCI_RESULTS_DIR, OCI_API_*, OCI_DATA_* (or oci-conformance.yaml), and also
# accept the legacy OCI_ROOT_URL/OCI_NAMESPACE/OCI_TEST_* variables. See
# tests/peers/README.md.
# ---------------------------------------------------------------------------
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
BIN_DIR="${1:-$REPO/.peers/bin}"
mkdir -p "$BIN_DIR"
BIN_DIR="$(cd "$BIN_DIR" && pwd)"
STAMP_DIR="$BIN_DIR/.stamps"
mkdir -p "$STAMP_DIR"

if [[ -z "${GO:-}" ]]; then
  if command -v go >/dev/null 2>&1; then GO="$(command -v go)"; else GO=/usr/local/go/bin/go; fi
fi
[[ -x "$GO" ]] || { echo "build-go-peers: no Go toolchain at $GO" >&2; exit 1; }

# ---- pinned versions -------------------------------------------------------
# Each module is pinned by its exact version + h1: hash (the hash go.sum would
# record); a download that resolves to anything else is rejected.
#
# The module proxy reachable here is a filtering mirror: it answers only some
# query forms with 200 and the rest with "403 This module version is not
# available" (also @v/list for oras). Observed on a cold module cache:
#   conformance@a139cc423184af6078077b9b7ee336eddbd03f8f  -> 200 (v1.1.1)
#   conformance@v0.0.0-20250123160558-a139cc423184        -> 403
#   conformance@967efdc079b91785ad18c77cc4f8991a47feefbf  -> 403 (any form)
#   conformance@main                                      -> 200 (fee21197eb94)
#   conformance@v0.0.0-20260730175803-fee21197eb94 / fee2119...  -> 403
#   oras.land/oras@v1.3.3 -> 200, oras.land/oras/@v/list -> 403
# Once a version is in the module cache every form works offline, so each
# fetch below tries the pinned version first and then the query the mirror
# accepts (checking that it resolves to the pinned version).
CONF_MOD=github.com/opencontainers/distribution-spec/conformance
# v1.1.1 release = commit a139cc423184af6078077b9b7ee336eddbd03f8f
CONF_V111_COMMIT=a139cc423184af6078077b9b7ee336eddbd03f8f
CONF_V111_VER=v0.0.0-20250123160558-a139cc423184
CONF_V111_SUM='h1:7bNCAFy3pSZzsM+xTEhbhSKzYcVMVf/g8lT71MMlkjU='
# Redesigned suite from main: commit fee21197eb94360ddfa6dda0b7edabcd12456809
# (2026-07-30), the only main commit the mirror serves, and only as @main.
# (967efdc079b91785ad18c77cc4f8991a47feefbf is 403 in every form.) If @main
# moves on, this optional tool is skipped with a warning until the pin is
# updated (set CONF_MAIN_VER/CONF_MAIN_SUM to what the warning reports).
CONF_MAIN_VER=v0.0.0-20260730175803-fee21197eb94
CONF_MAIN_SUM='h1:iJbOstMHr3jUuu8hKcEkNJWEYnHdHKWQa/xh4xNrP7I='
ORAS_MOD=oras.land/oras
ORAS_VER=v1.3.3
ORAS_COMMIT=210747c29c1d38732b3194878dfd8b5a6b9ad7eb
ORAS_SUM='h1:RjnR1eCb8EwEbte6tgx10u7gzwFJ+UzSDgUBjphluy0='
CRANE_PKG=github.com/google/go-containerregistry/cmd/crane
CRANE_VER=v0.22.1
# MinIO: the mirror serves exactly one version of github.com/minio/minio. Its
# @v/list names only this pseudo-version (commit 7aac2a2c5b7c, 2026-02-12, also
# what @master resolves to); the RELEASE.* tags (e.g. RELEASE.2025-09-07T16-13-09Z,
# RELEASE.2025-04-22T22-12-26Z, RELEASE.2024-12-18T13-15-44Z) are 403 and @latest
# is 404. The checksum DB has it, so it is verified like any module.
MINIO_MOD=github.com/minio/minio
MINIO_VER=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_COMMIT=7aac2a2c5b7c882e68c1ce017d8256be2feea27f
MINIO_TIME=2026-02-12T20:18:48Z
MINIO_SUM='h1:/qdoYujxF5MBLDMVLeiYJ/7fBa1HikX39Dvzb9Ji8pA='
# Helm: `go install` of the pinned release works through the mirror (v3.18.4,
# v3.17.3 and v3.16.4 all answered 200); the h1: hash is checked before the build.
HELM_MOD=helm.sh/helm/v3
HELM_VER=v3.18.4
HELM_SUM='h1:pNhnHM3nAmDrxz6/UC+hfjDY4yeDATQCka2/87hkZXQ='
# harbor-cli (github.com/goharbor/harbor-cli, Harbor's own CLI) is NOT built:
# the mirror answers 403 for every form of it that was tried (@v/list, @latest
# is 404, the tags v0.0.1..v0.0.20 and v0.1.0..v0.5.0, @main, @master, commit
# hashes 6e827f697528/014ab17ed8e0/3aa4ab754fee, .info/.mod/.zip alike) and the
# checksum DB has no entry for it (lookup 404). Its dependencies (e.g.
# github.com/goharbor/go-client v0.213.1) are served. If the mirror starts
# serving it, add a build_harbor like build_oras (binary `harbor` from
# ./cmd/harbor, pinned version + h1:). See docs/harbor-cli.md.

# ---- build environment ------------------------------------------------------
export CGO_ENABLED=0
export GOFLAGS=-trimpath
export GOTOOLCHAIN=local          # never try to download another toolchain
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
# The checksum DB (reached via the proxy) has no entry for the v1.1.1
# pseudo-version (404), so the conformance module is exempt from it; its h1:
# hash is pinned above and checked instead. Its dependencies are still
# verified against the module's own go.sum and the checksum DB.
export GONOSUMDB="$CONF_MOD${GONOSUMDB:+,$GONOSUMDB}"
GO_VERSION="$("$GO" env GOVERSION)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/berth-go-peers.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT

log() { printf '%s\n' "$*"; }
warn() { printf 'build-go-peers: %s\n' "$*" >&2; }

# stamp_ok NAME KEY: binary present and stamp matches
stamp_ok() {
  [[ -x "$BIN_DIR/$1" && -f "$STAMP_DIR/$1" && "$(cat "$STAMP_DIR/$1")" == "$2" ]]
}
stamp_write() { printf '%s\n' "$2" >"$STAMP_DIR/$1"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" <<<"$2" | head -n1; }

# fetch_module MOD VERSION SUM QUERY... -> prints a writable copy of the source
# Tries MOD@VERSION, then MOD@QUERY for each QUERY, until one resolves to
# VERSION; then checks the h1: hash.
fetch_module() {
  local mod="$1" ver="$2" want="$3" q json got dir sum dest
  shift 3
  for q in "$ver" "$@"; do
    json="$(cd "$WORK" && "$GO" mod download -json "$mod@$q" 2>&1)" || true
    got="$(json_field Version "$json")"
    dir="$(json_field Dir "$json")"
    if [[ -n "$dir" && -d "$dir" ]]; then
      if [[ "$got" != "$ver" ]]; then
        warn "$mod@$q resolved to $got (sum $(json_field Sum "$json")), not pinned $ver"
        return 1
      fi
      sum="$(json_field Sum "$json")"
      if [[ "$sum" != "$want" ]]; then
        warn "$mod@$ver hash $sum != pinned $want"
        return 1
      fi
      dest="$WORK/src-${mod//\//_}-$ver"
      rm -rf "$dest"
      cp -r "$dir" "$dest"
      chmod -R u+w "$dest"
      printf '%s\n' "$dest"
      return 0
    fi
  done
  warn "could not download $mod@$ver (tried: $ver $*); last answer:"
  printf '%s\n' "$json" >&2
  return 1
}

build_conformance_v111() {
  local name=conformance.test key="$CONF_MOD@$CONF_V111_VER $GO_VERSION" t src
  if stamp_ok "$name" "$key"; then
    log "conformance.test: distribution-spec conformance v1.1.1 ($CONF_V111_VER) [up to date]"
    return
  fi
  t="$(now)"
  src="$(fetch_module "$CONF_MOD" "$CONF_V111_VER" "$CONF_V111_SUM" "$CONF_V111_COMMIT")"
  # -X sets the "Test Version" shown in report.html, as upstream's Dockerfile does.
  (cd "$src" && "$GO" test -c -o "$BIN_DIR/$name" \
    -ldflags="-X $CONF_MOD.Version=v1.1.1" .)
  stamp_write "$name" "$key"
  log "conformance.test: distribution-spec conformance v1.1.1 ($CONF_V111_VER) [built in $(elapsed "$t")]"
}

# Optional: never fails the script.
build_conformance_main() {
  local key="$CONF_MOD@$CONF_MAIN_VER $GO_VERSION" t src
  if stamp_ok conformance-main.test "$key" && stamp_ok conformance-main "$key"; then
    log "conformance-main.test, conformance-main: distribution-spec conformance main ($CONF_MAIN_VER) [up to date]"
    return
  fi
  t="$(now)"
  if ! src="$(fetch_module "$CONF_MOD" "$CONF_MAIN_VER" "$CONF_MAIN_SUM" main)"; then
    warn "skipping optional conformance-main (redesigned suite)"
    return 0
  fi
  if ! (cd "$src" && "$GO" test -c -o "$BIN_DIR/conformance-main.test" . \
        && "$GO" build -o "$BIN_DIR/conformance-main" .); then
    warn "skipping optional conformance-main: build failed"
    return 0
  fi
  stamp_write conformance-main.test "$key"
  stamp_write conformance-main "$key"
  log "conformance-main.test, conformance-main: distribution-spec conformance main ($CONF_MAIN_VER) [built in $(elapsed "$t")]"
}

# oras: `go install oras.land/oras/cmd/oras@v1.3.3` fails here because it
# checks the module for deprecation via $GOPROXY/oras.land/oras/@v/list, which
# the mirror answers 403. So build from the module source with oras's own
# go.mod/go.sum, with the ldflags its Makefile uses for a tagged release.
build_oras() {
  local name=oras key="$ORAS_MOD@$ORAS_VER $GO_VERSION" t src
  if stamp_ok "$name" "$key"; then
    log "oras: $ORAS_VER ($("$BIN_DIR/oras" version 2>&1 | head -n1 | tr -s " ")) [up to date]"
    return
  fi
  t="$(now)"
  src="$(fetch_module "$ORAS_MOD" "$ORAS_VER" "$ORAS_SUM")"
  (cd "$src" && "$GO" build -o "$BIN_DIR/$name" -ldflags="-w \
    -X $ORAS_MOD/internal/version.BuildMetadata= \
    -X $ORAS_MOD/internal/version.GitCommit=$ORAS_COMMIT \
    -X $ORAS_MOD/internal/version.GitTreeState=clean" ./cmd/oras)
  stamp_write "$name" "$key"
  log "oras: $ORAS_VER ($("$BIN_DIR/oras" version 2>&1 | head -n1 | tr -s " ")) [built in $(elapsed "$t")]"
}

# crane: plain `go install pkg@version` (go-containerregistry's @v/list is served).
build_crane() {
  local name=crane key="$CRANE_PKG@$CRANE_VER $GO_VERSION" t
  if stamp_ok "$name" "$key"; then
    log "crane: $CRANE_VER ($("$BIN_DIR/crane" version 2>&1 | head -n1)) [up to date]"
    return
  fi
  t="$(now)"
  (cd "$WORK" && GOBIN="$BIN_DIR" "$GO" install "$CRANE_PKG@$CRANE_VER")
  stamp_write "$name" "$key"
  log "crane: $CRANE_VER ($("$BIN_DIR/crane" version 2>&1 | head -n1)) [built in $(elapsed "$t")]"
}

# minio: from a copy of the module source with its own go.mod/go.sum, with the
# version ldflags of its buildscripts/gen-ldflags.go (a non-release build).
# Optional: only the S3 storage tests need it, so a failure warns.
build_minio() {
  local name=minio key="$MINIO_MOD@$MINIO_VER $GO_VERSION" t src tag
  if stamp_ok "$name" "$key"; then
    log "minio: $MINIO_VER [up to date]"
    return
  fi
  t="$(now)"
  if ! src="$(fetch_module "$MINIO_MOD" "$MINIO_VER" "$MINIO_SUM" "$MINIO_COMMIT" master)"; then
    warn "skipping optional minio (the S3 storage tests will fail)"
    return 0
  fi
  tag="DEVELOPMENT.${MINIO_TIME//:/-}"
  if ! (cd "$src" && "$GO" build -o "$BIN_DIR/$name" -ldflags="-s -w \
        -X $MINIO_MOD/cmd.Version=$MINIO_TIME \
        -X $MINIO_MOD/cmd.CopyrightYear=${MINIO_TIME:0:4} \
        -X $MINIO_MOD/cmd.ReleaseTag=$tag \
        -X $MINIO_MOD/cmd.CommitID=$MINIO_COMMIT \
        -X $MINIO_MOD/cmd.ShortCommitID=${MINIO_COMMIT:0:12}" .); then
    warn "skipping optional minio: build failed (the S3 storage tests will fail)"
    return 0
  fi
  stamp_write "$name" "$key"
  log "minio: $MINIO_VER ($("$BIN_DIR/minio" --version 2>&1 | head -n1)) [built in $(elapsed "$t")]"
}

# helm: `go install` with the version ldflags of helm's Makefile, after checking
# the module's hash (a cold build takes minutes: Kubernetes' client libraries).
build_helm() {
  local name=helm key="$HELM_MOD@$HELM_VER $GO_VERSION" t json sum
  if stamp_ok "$name" "$key"; then
    log "helm: $HELM_VER [up to date]"
    return
  fi
  t="$(now)"
  json="$(cd "$WORK" && "$GO" mod download -json "$HELM_MOD@$HELM_VER")"
  sum="$(json_field Sum "$json")"
  if [[ "$sum" != "$HELM_SUM" ]]; then
    warn "$HELM_MOD@$HELM_VER hash $sum != pinned $HELM_SUM"
    return 1
  fi
  (cd "$WORK" && GOBIN="$BIN_DIR" "$GO" install -ldflags="-s -w \
    -X $HELM_MOD/internal/version.version=$HELM_VER \
    -X $HELM_MOD/internal/version.gitTreeState=clean" "$HELM_MOD/cmd/helm@$HELM_VER")
  stamp_write "$name" "$key"
  log "helm: $("$BIN_DIR/helm" version --short) [built in $(elapsed "$t")]"
}

log "build-go-peers: $GO_VERSION -> $BIN_DIR"
build_conformance_v111
build_conformance_main
build_oras
build_crane
build_minio
build_helm
