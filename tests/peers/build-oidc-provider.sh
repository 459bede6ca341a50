#!/usr/bin/env bash
# Install the OpenID Provider the SSO tests sign in through: npm's
# `oidc-provider` (panva's OpenID Certified OP, run by Debian's Node), into a
# cache directory (never committed):
#
#   tests/peers/build-oidc-provider.sh        # prints the cache directory last
#
# What is installed is pinned by tests/peers/oidc-provider/package-lock.json
# (every package by version and integrity hash; `npm ci` refuses anything
# else). The cache is $BERTH_OIDC_PROVIDER_CACHE, by default .cache/oidc-provider
# in the checkout (git-ignored). A stamp holds the lock file's sha256: a re-run
# with it unchanged does nothing. tests/peers/oidc_provider.mjs is the server
# (tests/sso/peers.py starts it on a free loopback port).
#
# To move to another version: change package.json, run `npm install
# --package-lock-only` in tests/peers/oidc-provider/, commit both.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SOURCE="$REPO/tests/peers/oidc-provider"
CACHE="${BERTH_OIDC_PROVIDER_CACHE:-$REPO/.cache/oidc-provider}"
STAMP="$CACHE/.stamp"

command -v node >/dev/null || { echo "build-oidc-provider: needs node (Debian: nodejs)" >&2; exit 1; }
command -v npm >/dev/null || { echo "build-oidc-provider: needs npm (Debian: npm)" >&2; exit 1; }
want="$(sha256sum "$SOURCE/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -d "$CACHE/node_modules/oidc-provider" ]]; then
  echo "$CACHE"
  exit 0
fi
mkdir -p "$CACHE"
cp "$SOURCE/package.json" "$SOURCE/package-lock.json" "$CACHE/"
echo "build-oidc-provider: installing $(grep -o '"oidc-provider": "[^"]*"' "$SOURCE/package.json")" >&2
(cd "$CACHE" && timeout 600 npm ci --no-audit --no-fund --silent >&2)
echo "$want" > "$STAMP"
echo "$CACHE"
