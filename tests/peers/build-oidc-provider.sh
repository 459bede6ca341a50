#!/usr/bin/env bash
# Install the OpenID Provider the SSO tests sign in through: npm's
# `oidc-provider` (panva's OpenID Certified OP, run by Node 20 from Debian),
# pinned, into a cache directory (never committed):
#
#   tests/peers/build-oidc-provider.sh        # prints the cache directory last
#
# The cache is $BERTH_OIDC_PROVIDER_CACHE, by default .cache/oidc-provider in the
# checkout (git-ignored). npm checks the registry's integrity hashes
# (package-lock.json is written beside node_modules). A stamp records the
# version: a re-run with it unchanged does nothing. tests/peers/oidc_provider.js
# is the server (tests/accounts/sso/ starts it on a free loopback port).
set -euo pipefail

VERSION=9.13.3
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${BERTH_OIDC_PROVIDER_CACHE:-$REPO/.cache/oidc-provider}"
STAMP="$CACHE/.stamp"

command -v node >/dev/null || { echo "build-oidc-provider: needs node (Debian: nodejs)" >&2; exit 1; }
command -v npm >/dev/null || { echo "build-oidc-provider: needs npm (Debian: npm)" >&2; exit 1; }
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" && -d "$CACHE/node_modules/oidc-provider" ]]; then
  echo "$CACHE"
  exit 0
fi
mkdir -p "$CACHE"
cd "$CACHE"
[[ -f package.json ]] || echo '{"name": "berth-oidc-peer", "private": true}' > package.json
echo "build-oidc-provider: installing oidc-provider $VERSION" >&2
timeout 600 npm install --no-audit --no-fund --silent "oidc-provider@$VERSION" >&2
echo "$VERSION" > "$STAMP"
echo "$CACHE"
