#!/usr/bin/env bash
# Generate a Python client from Harbor's swagger with openapi-generator-cli (the
# kind of client Harbor's own API tests use), for tests/harbor_clients/.
#
#   tests/peers/build-openapi-client.sh
#
# - The generator: org.openapitools:openapi-generator-cli $GENERATOR_VERSION,
#   fetched from Maven Central by `mvn dependency:copy` (Maven checks the
#   repository's checksums) and kept in the cache directory.
# - The input: Harbor's swagger as github.com/goharbor/go-client v0.213.1 ships
#   it, which tests/peers/build-go-peers.sh copies to .peers/harbor-swagger.yaml.
# - The output: the package `harbor_client` in $CACHE/client (the tests put that
#   directory on sys.path; its dependencies, pydantic, urllib3 and
#   python-dateutil, are in the test extra of pyproject.toml). Never committed.
#
# The cache is $BERTH_OPENAPI_CACHE, by default .cache/openapi-generator in the
# checkout (git-ignored). A stamp records the generator version and the
# swagger's sha256: a re-run with both unchanged does nothing (well under a
# second); a changed swagger or version regenerates (about 10 s on 2 cores;
# the generator is bounded by `timeout`). Prints the client directory last.
set -euo pipefail

GENERATOR_VERSION=7.25.0
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SWAGGER="${BERTH_HARBOR_SWAGGER:-$REPO/.peers/harbor-swagger.yaml}"
CACHE="${BERTH_OPENAPI_CACHE:-$REPO/.cache/openapi-generator}"
JAR="$CACHE/openapi-generator-cli-$GENERATOR_VERSION.jar"
CLIENT="$CACHE/client"

[[ -f "$SWAGGER" ]] || {
  echo "build-openapi-client: $SWAGGER missing: run tests/peers/build-go-peers.sh" >&2
  exit 1
}
mkdir -p "$CACHE"

if [[ ! -f "$JAR" ]]; then
  command -v mvn >/dev/null || { echo "build-openapi-client: needs mvn (Debian: maven)" >&2; exit 1; }
  echo "build-openapi-client: fetching openapi-generator-cli $GENERATOR_VERSION from Maven Central" >&2
  timeout 600 mvn -q -B --strict-checksums dependency:copy \
    "-Dartifact=org.openapitools:openapi-generator-cli:$GENERATOR_VERSION" \
    "-DoutputDirectory=$CACHE" >&2
fi

want="$GENERATOR_VERSION $(sha256sum "$SWAGGER" | cut -d' ' -f1)"
stamp="$CLIENT/.berth-stamp"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  rm -rf "$CLIENT" "$CLIENT.tmp"
  # Only the package: no docs, no generated test stubs. -Xmx bounds the JVM on
  # a shared machine; `timeout` bounds the run.
  timeout 300 java -Xmx1g -jar "$JAR" generate -g python -i "$SWAGGER" -o "$CLIENT.tmp" \
    --package-name harbor_client \
    --global-property apiTests=false,modelTests=false,apiDocs=false,modelDocs=false \
    >"$CACHE/generate.log" 2>&1 || {
    tail -n 40 "$CACHE/generate.log" >&2
    exit 1
  }
  printf '%s\n' "$want" >"$CLIENT.tmp/.berth-stamp"
  mv "$CLIENT.tmp" "$CLIENT"
fi
echo "$CLIENT"
