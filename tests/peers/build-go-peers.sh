#!/usr/bin/env bash
# Build the Go-based "peer" client tools that Berth's test suite drives against
# the registry, from the Go module proxy only (no GitHub, no prebuilt binaries).
#
#   tests/peers/build-go-peers.sh [BIN_DIR]      (default: $REPO/.peers/bin)
#
# Produces in BIN_DIR:
#   conformance.test       OCI distribution-spec conformance suite, the ginkgo
#                          design of the v1.1 line (commit f2182352d4cc of
#                          2023-11-01, a main snapshot before v1.1.0; v1.1.1
#                          itself is no longer served), a `go test -c` binary
#   conformance-main.test  redesigned suite from distribution-spec main
#                          (commit 97274622c111; `go test -c`, runs its
#                          legacy-env-var mode)
#   conformance-main       same redesigned suite as a plain `go build` binary
#                          (the upstream-recommended form; OCI_REGISTRY etc.)
#   oras                   oras CLI
#   crane                  go-containerregistry's crane CLI
#   minio                  MinIO server: the real S3 the S3 blob store is tested
#                          against (optional: a failed build only warns)
#   helm                   Helm 3 CLI: `helm lint`/`helm template` of the chart
#                          deploy/helm/berth (tests/test_deploy.py)
#   harbor-go-client       tests/harbor_clients/goclient: Harbor's own Go client
#                          (github.com/goharbor/go-client v0.213.1) driving every
#                          API operation Berth serves (tests/harbor_clients/)
#
# Each tool has a stamp file in BIN_DIR/.stamps/; a tool whose stamp matches the
# pinned version (and Go version) and whose binary exists is skipped, so
# re-runs take well under a second. A tool that fails does not stop the others;
# the script then names every failed tool and exits 1 (minio only warns). Delete a stamp (or the binary) to force a
# rebuild. GOPATH/GOCACHE are left at their defaults so the module and build
# caches are reused between runs on the same machine.
#
# Environment overrides: GO (go binary; default: `go` on PATH, else
# /usr/local/go/bin/go).
#
# ---------------------------------------------------------------------------
# Running conformance.test -- env vars read by the suite (setup.go,
# reporter.go at f2182352d4cc; v1.1.1 reads the same ones):
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
#   OCI_SKIP_EMPTY_LAYER_PUSH_TEST  only echoed in the HTML report; it does
#                                not skip anything.
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
# record); a download that resolves to anything else is rejected. Each module
# is asked for by its pinned version only: no branch names, no "latest".
#
# The module proxy reachable here is a filtering mirror: it serves some module
# versions and answers "403 This module version is not available" for the
# rest, and what it serves changes over time. Observed on 2026-12-05 on a cold
# module cache, for github.com/opencontainers/distribution-spec/conformance:
#   @v/list -> v0.0.0-20231101194043-f2182352d4cc
#              v0.0.0-20260831232431-97274622c111   (200; @latest -> the latter)
#   both of those pseudo-versions                    -> 200, in the checksum DB
#   v1.1.1 = a139cc423184 (pseudo-version, full and short hash) -> 403
#   v1.1.0, @main, fee21197eb94 (our previous main pin), short hash
#   97274622c111                                     -> 403
# (Until about 2026-12 the mirror served a139cc423184 by full commit hash and
# fee21197eb94 as @main; both pins broke when it stopped.)
CONF_MOD=github.com/opencontainers/distribution-spec/conformance
# conformance.test: the ginkgo suite (the v1.0/v1.1-era design). The ginkgo
# suite was replaced on main by the redesigned one, and the only ginkgo-era
# version served today is commit f2182352d4cc of 2023-11-01 -- a main snapshot
# between v1.1.0-rc3 and v1.1.0, NOT the v1.1.1 release. Its specs are the
# v1.1.1 ones less a few that came later (e.g. v1.1.1's fourth referrers spec,
# "GET request to missing manifest should yield 200"); the env vars below are
# the same. Its Version string (report.html) is set to the pseudo-version so
# the report does not claim v1.1.1.
CONF_LEGACY_VER=v0.0.0-20231101194043-f2182352d4cc
CONF_LEGACY_SUM='h1:jL+CgYEEZluGb08ZcLpEyhn389kNMlwrWOHaIqXazq0='
# conformance-main(.test): the redesigned suite, commit 97274622c111
# (2026-08-31), the newest main commit served. `go build` gives the new
# OCI_REGISTRY/OCI_REPO1 mode; `go test -c` runs TestLegacy = mainRun(true),
# which also accepts the legacy OCI_ROOT_URL/OCI_NAMESPACE/OCI_TEST_* vars.
CONF_MAIN_VER=v0.0.0-20260831232431-97274622c111
CONF_MAIN_SUM='h1:ppZPU0CrEPzyJhVggYwUIZrqh0w2lIT0esw+9ABNPA4='
# oras v1.3.3: still served on 2026-12-05 by exact version, although the
# now-served @v/list names only v1.2.2 v1.3.4 v1.3.5 v1.3.6.
ORAS_MOD=oras.land/oras
ORAS_VER=v1.3.3
ORAS_COMMIT=210747c29c1d38732b3194878dfd8b5a6b9ad7eb
ORAS_SUM='h1:RjnR1eCb8EwEbte6tgx10u7gzwFJ+UzSDgUBjphluy0='
CRANE_MOD=github.com/google/go-containerregistry
CRANE_PKG=$CRANE_MOD/cmd/crane
CRANE_VER=v0.22.1
CRANE_SUM='h1:RZuuSYhTvlDvtsK+NkutoCZ//C0X2ebLK8X8l3ULs84='
# MinIO: the mirror serves exactly one version of github.com/minio/minio. Its
# @v/list names only this pseudo-version (commit 7aac2a2c5b7c, 2026-02-12;
# @master resolved to it until about 2026-12, and is 403 on 2026-12-05); the
# RELEASE.* tags (e.g. RELEASE.2025-09-07T16-13-09Z, RELEASE.2025-04-22T22-12-26Z,
# RELEASE.2024-12-18T13-15-44Z) are 403 and @latest is 404. The checksum DB has
# it, so it is verified like any module. Still served on 2026-12-05.
MINIO_MOD=github.com/minio/minio
MINIO_VER=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_COMMIT=7aac2a2c5b7c882e68c1ce017d8256be2feea27f
MINIO_TIME=2026-02-12T20:18:48Z
MINIO_SUM='h1:/qdoYujxF5MBLDMVLeiYJ/7fBa1HikX39Dvzb9Ji8pA='
# Helm: `go install` of the pinned release works through the mirror (v3.18.4,
# v3.17.3 and v3.16.4 all answered 200; v3.18.4 again on 2026-12-05); the h1:
# hash is checked before the build.
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

# Harbor's Go client library (what harbor-cli and the Terraform provider use),
# driven by the program in tests/harbor_clients/goclient (its go.sum pins every
# module; this hash is checked before the build).
GOCLIENT_MOD=github.com/goharbor/go-client
GOCLIENT_VER=v0.213.1
GOCLIENT_SUM='h1:bohLwNog8uv8FKhIZ0SHiaDbYr3X/1hovgo5fqZWMdo='
GOCLIENT_SRC="$REPO/tests/harbor_clients/goclient"

# ---- build environment ------------------------------------------------------
export CGO_ENABLED=0
export GOFLAGS=-trimpath
export GOTOOLCHAIN=local          # never try to download another toolchain
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
# Every pinned module, the conformance ones included, is in the checksum DB
# (checked 2026-12-05), so nothing is exempted from it (no GONOSUMDB).
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

# proxy_versions MOD -> what the proxy lists for MOD today (for error messages;
# @v/list includes pseudo-versions, `go list -m -versions` does not).
proxy_versions() {
  local mod="$1" proxy="${GOPROXY%%[,|]*}" out
  if command -v curl >/dev/null 2>&1 && [[ "$proxy" == http* ]] &&
     out="$(curl -fsS --max-time 30 "$proxy/$mod/@v/list" 2>&1)"; then
    printf '%s\n' "$out" | sort | tr '\n' ' '
  else
    (cd "$WORK" && "$GO" list -m -versions "$mod" 2>&1 | tail -n1) || true
  fi
}

# download_module TOOL MOD VERSION SUM: `go mod download` exactly MOD@VERSION
# (no other query) and check its h1: hash. Sets DL_DIR to the module cache
# copy. On failure explains what to do and returns 1.
DL_DIR=
download_module() {
  local tool="$1" mod="$2" ver="$3" want="$4" json got sum err
  DL_DIR=
  json="$(cd "$WORK" && "$GO" mod download -json "$mod@$ver" 2>&1)" || true
  got="$(json_field Version "$json")"
  sum="$(json_field Sum "$json")"
  DL_DIR="$(json_field Dir "$json")"
  err="$(json_field Error "$json")"
  if [[ -z "$DL_DIR" || ! -d "$DL_DIR" || -n "$err" ]]; then
    DL_DIR=
    warn "ERROR: $tool: cannot download pinned $mod@$ver via GOPROXY=$GOPROXY"
    err="${err:-$(tail -n3 <<<"$json")}"
    warn "  ${err//\\n\\t/ }"
    warn "  the proxy lists for $mod today: $(proxy_versions "$mod")"
    warn "  -> repin $tool in tests/peers/build-go-peers.sh to a served version"
    warn "     (version + its h1: hash from \`go mod download -json $mod@VERSION\`),"
    warn "     then run the tests that use it."
    return 1
  fi
  if [[ "$got" != "$ver" ]]; then
    warn "ERROR: $tool: $mod@$ver resolved to $got, not the pinned version"
    DL_DIR=
    return 1
  fi
  if [[ "$sum" != "$want" ]]; then
    warn "ERROR: $tool: $mod@$ver has hash $sum, pinned is $want"
    DL_DIR=
    return 1
  fi
}

# fetch_module TOOL MOD VERSION SUM -> prints a writable copy of the source.
fetch_module() {
  local dest
  download_module "$@" || return 1
  dest="$WORK/src-${2//\//_}-$3"
  rm -rf "$dest"
  cp -r "$DL_DIR" "$dest"
  chmod -R u+w "$dest"
  printf '%s\n' "$dest"
}

build_conformance_legacy() {
  local name=conformance.test key="$CONF_MOD@$CONF_LEGACY_VER $GO_VERSION" t src
  if stamp_ok "$name" "$key"; then
    log "conformance.test: distribution-spec conformance, ginkgo suite ($CONF_LEGACY_VER) [up to date]"
    return
  fi
  t="$(now)"
  src="$(fetch_module conformance.test "$CONF_MOD" "$CONF_LEGACY_VER" "$CONF_LEGACY_SUM")"
  # -X sets the "Test Version" shown in report.html, as upstream's Dockerfile does.
  (cd "$src" && "$GO" test -c -o "$BIN_DIR/$name" \
    -ldflags="-X $CONF_MOD.Version=$CONF_LEGACY_VER" .)
  stamp_write "$name" "$key"
  log "conformance.test: distribution-spec conformance, ginkgo suite ($CONF_LEGACY_VER) [built in $(elapsed "$t")]"
}

build_conformance_main() {
  local key="$CONF_MOD@$CONF_MAIN_VER $GO_VERSION" t src
  if stamp_ok conformance-main.test "$key" && stamp_ok conformance-main "$key"; then
    log "conformance-main.test, conformance-main: distribution-spec conformance main ($CONF_MAIN_VER) [up to date]"
    return
  fi
  t="$(now)"
  src="$(fetch_module conformance-main "$CONF_MOD" "$CONF_MAIN_VER" "$CONF_MAIN_SUM")"
  # -X names the pinned version as the "Conformance Commit" of the reports
  # (without VCS info the suite says "unknown").
  (cd "$src" && "$GO" test -c -o "$BIN_DIR/conformance-main.test" \
      -ldflags="-X main.Version=$CONF_MAIN_VER" . \
    && "$GO" build -o "$BIN_DIR/conformance-main" -ldflags="-X main.Version=$CONF_MAIN_VER" .)
  stamp_write conformance-main.test "$key"
  stamp_write conformance-main "$key"
  log "conformance-main.test, conformance-main: distribution-spec conformance main ($CONF_MAIN_VER) [built in $(elapsed "$t")]"
}

# oras: built from a copy of the module source with oras's own go.mod/go.sum
# and the ldflags its Makefile uses for a tagged release. (`go install
# oras.land/oras/cmd/oras@v1.3.3` used to fail here: it checks the module for
# deprecation via $GOPROXY/oras.land/oras/@v/list, which the mirror answered
# 403 until at least 2026-08; on 2026-12-05 that list is served.)
build_oras() {
  local name=oras key="$ORAS_MOD@$ORAS_VER $GO_VERSION" t src
  if stamp_ok "$name" "$key"; then
    log "oras: $ORAS_VER ($("$BIN_DIR/oras" version 2>&1 | head -n1 | tr -s " ")) [up to date]"
    return
  fi
  t="$(now)"
  src="$(fetch_module oras "$ORAS_MOD" "$ORAS_VER" "$ORAS_SUM")"
  (cd "$src" && "$GO" build -o "$BIN_DIR/$name" -ldflags="-w \
    -X $ORAS_MOD/internal/version.BuildMetadata= \
    -X $ORAS_MOD/internal/version.GitCommit=$ORAS_COMMIT \
    -X $ORAS_MOD/internal/version.GitTreeState=clean" ./cmd/oras)
  stamp_write "$name" "$key"
  log "oras: $ORAS_VER ($("$BIN_DIR/oras" version 2>&1 | head -n1 | tr -s " ")) [built in $(elapsed "$t")]"
}

# crane: plain `go install pkg@version` (go-containerregistry's @v/list is
# served), after checking the module's h1: hash.
build_crane() {
  local name=crane key="$CRANE_PKG@$CRANE_VER $GO_VERSION" t
  if stamp_ok "$name" "$key"; then
    log "crane: $CRANE_VER ($("$BIN_DIR/crane" version 2>&1 | head -n1)) [up to date]"
    return
  fi
  t="$(now)"
  download_module crane "$CRANE_MOD" "$CRANE_VER" "$CRANE_SUM"
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
  if ! src="$(fetch_module minio "$MINIO_MOD" "$MINIO_VER" "$MINIO_SUM")"; then
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
  local name=helm key="$HELM_MOD@$HELM_VER $GO_VERSION" t
  if stamp_ok "$name" "$key"; then
    log "helm: $HELM_VER [up to date]"
    return
  fi
  t="$(now)"
  download_module helm "$HELM_MOD" "$HELM_VER" "$HELM_SUM"
  (cd "$WORK" && GOBIN="$BIN_DIR" "$GO" install -ldflags="-s -w \
    -X $HELM_MOD/internal/version.version=$HELM_VER \
    -X $HELM_MOD/internal/version.gitTreeState=clean" "$HELM_MOD/cmd/helm@$HELM_VER")
  stamp_write "$name" "$key"
  log "helm: $("$BIN_DIR/helm" version --short) [built in $(elapsed "$t")]"
}

# harbor-go-client: the repository's own program, rebuilt when it or the Go
# version changes (its stamp holds a hash of its sources). Harbor's API
# definition that go-client was generated from (api/v2.0/swagger.yaml of the
# pinned module) is copied beside the binaries: the API fuzzer
# (tests/test_api_fuzz.py) reads it there, and nothing of it enters Berth.
HARBOR_SWAGGER="$(dirname "$BIN_DIR")/harbor-swagger.yaml"
build_harbor_go_client() {
  local name=harbor-go-client t key
  key="$GOCLIENT_MOD@$GOCLIENT_VER $GO_VERSION $(cat "$GOCLIENT_SRC"/go.mod "$GOCLIENT_SRC"/go.sum "$GOCLIENT_SRC"/*.go | sha256sum | cut -c1-16)"
  if stamp_ok "$name" "$key" && [[ -f "$HARBOR_SWAGGER" ]]; then
    log "harbor-go-client: $GOCLIENT_MOD $GOCLIENT_VER [up to date]"
    return
  fi
  t="$(now)"
  download_module harbor-go-client "$GOCLIENT_MOD" "$GOCLIENT_VER" "$GOCLIENT_SUM"
  (cd "$GOCLIENT_SRC" && "$GO" build -o "$BIN_DIR/$name" .)
  install -m 0644 "$DL_DIR/api/v2.0/swagger.yaml" "$HARBOR_SWAGGER"
  stamp_write "$name" "$key"
  log "harbor-go-client: $GOCLIENT_MOD $GOCLIENT_VER [built in $(elapsed "$t")]"
}

# run_tool NAME FUNC: runs one build in a subshell with `set -e` in force, so one
# tool's failure neither hides the others' nor lets a half-built tool pass.
failed=()
run_tool() {
  local rc
  set +e
  (set -e; "$2")
  rc=$?
  set -e
  ((rc == 0)) || failed+=("$1")
}

log "build-go-peers: $GO_VERSION -> $BIN_DIR"
run_tool conformance.test build_conformance_legacy
run_tool conformance-main build_conformance_main
run_tool oras build_oras
run_tool crane build_crane
run_tool minio build_minio      # optional: warns and returns 0 on failure
run_tool helm build_helm
run_tool harbor-go-client build_harbor_go_client
if ((${#failed[@]})); then
  warn "FAILED: ${failed[*]} (see the errors above); these peers are required by the tests"
  exit 1
fi
