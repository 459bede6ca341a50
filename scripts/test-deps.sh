#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (as root):
# the container clients from Debian, a virtualenv with Berth and its test
# dependencies, and the Go-built peers (OCI conformance suite, oras, crane).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# debootstrap makes the base of Berth's image (scripts/build-base-image.sh);
# docker-compose and systemd check deploy/ (tests/test_deploy_files.py);
# redis-server and rabbitmq-server are the scaled-out cache and brokers;
# haproxy balances the replica test (tests/scale); maven and a JRE fetch and run
# openapi-generator (tests/peers/build-openapi-client.sh); gettext extracts the
# portal's strings (tests/portal/test_languages.py, make messages);
# fonts-wqy-microhei gives the browser's screenshots their Chinese glyphs;
# nodejs and npm run the OpenID Provider of the SSO tests (tests/peers/build-oidc-provider.sh).
APT_PACKAGES=(docker.io skopeo podman containerd uidmap chromium chromium-driver docker-registry nginx wrk apache2-utils postgresql redis-server rabbitmq-server haproxy debootstrap docker-compose systemd maven default-jre-headless gettext fonts-wqy-microhei slapd ldap-utils libldap2-dev libsasl2-dev gcc libc6-dev python3-dev nodejs npm)

missing=()
for tool in dockerd skopeo podman ctr containerd newuidmap chromium chromedriver docker-registry nginx wrk ab debootstrap docker-compose systemd-analyze mvn java xgettext msgmerge slapadd ldapsearch node npm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# Debian keeps PostgreSQL's server programs off PATH (scripts/postgres.sh finds them).
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
# The brokers and the shared cache (tests/servers.py starts private instances;
# the packages' own services are not needed).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
# The balancer in front of the replica test's three replicas (tests/scale/).
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if ((${#missing[@]})); then
  echo "test-deps: installing Debian packages (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  # slapd: the package's own directory is not wanted (tests/ldap_server.py
  # starts private ones).
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.berth-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
bash tests/peers/build-go-peers.sh
# The client openapi-generator makes from Harbor's swagger (which the Go peers'
# build copies to .peers/), into .cache/ (tests/harbor_clients/).
bash tests/peers/build-openapi-client.sh >/dev/null
# npm's oidc-provider, the OpenID Provider of the SSO tests, into
# .cache/oidc-provider (tests/sso/). The CAS server (django-mama-cas) is in the
# test extra.
bash tests/peers/build-oidc-provider.sh >/dev/null
