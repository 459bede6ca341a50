# Berth's container image: `manage.py serve` as a non-root user, data in a volume.
#
#   docker build -t berth .                                   (pulls python:3.11-slim-bookworm)
#   docker build --build-arg BASE_IMAGE=my-registry/python:3.11 -t berth .
#   scripts/build-image.sh berth:dev      (no registry at hand: a debootstrap base, docs/deploy.md)
#
# The base image needs Python 3.11+ with the venv module (python3-venv on Debian)
# and useradd. The classic builder and BuildKit build it alike. Every instruction
# that only sets metadata comes before the large layers: the classic builder
# with the vfs storage driver copies the whole file system once per step.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/berth/venv/bin:$PATH \
    PYTHONPATH=/opt/berth/app \
    BERTH_DATA_DIR=/var/lib/berth \
    BERTH_ADDR=0.0.0.0:5000

# A fixed uid/gid (10001), so bind-mounted data directories and Kubernetes'
# runAsUser/fsGroup can name it.
RUN groupadd --system --gid 10001 berth \
 && useradd --system --uid 10001 --gid berth --home-dir /var/lib/berth \
      --no-create-home --shell /usr/sbin/nologin berth \
 && install -d -o berth -g berth -m 0750 /var/lib/berth \
 && python3 -m venv /opt/berth/venv

VOLUME ["/var/lib/berth"]
EXPOSE 5000
# Liveness of the web server on BERTH_ADDR's port. The worker and scheduler
# roles have no HTTP port: deploy/docker-compose.yml turns this off for them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; p = os.environ.get('BERTH_ADDR', '0.0.0.0:5000').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{p}/livez', timeout=4)"]
# `docker stop` sends SIGTERM: serve stops its web server, worker and scheduler
# and waits up to 20 s for them (give it `docker stop -t 30`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python3", "/opt/berth/app/manage.py"]
CMD ["serve"]
WORKDIR /opt/berth/app

# Dependencies first, read from pyproject.toml alone: this layer stays cached
# while only Berth's code changes. python-ldap (LDAP identity providers) is
# built from source against libldap: the compiler and headers go again after.
COPY pyproject.toml README.md ./
RUN set -e; build="gcc libc6-dev libldap2-dev libsasl2-dev"; \
    include=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])"); \
    [ -f "$include/Python.h" ] || build="$build python3-dev"; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends libldap-2.5-0 libsasl2-2 $build >/dev/null; \
    python3 -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >/tmp/requirements.txt; \
    pip install -r /tmp/requirements.txt; \
    rm /tmp/requirements.txt; \
    apt-get purge -y -qq --auto-remove $build >/dev/null; \
    rm -rf /var/lib/apt/lists/*

# Berth runs from its source tree, as with `make run`: manage.py, the apps and
# templates/ side by side (.dockerignore lets nothing else in). PYTHONPATH makes
# every app importable from any directory; `berth` is manage.py, as the
# console script of an install is.
COPY . ./
RUN printf '#!/bin/sh\nexec python3 /opt/berth/app/manage.py "$@"\n' >/opt/berth/venv/bin/berth \
 && chmod 0755 /opt/berth/venv/bin/berth \
 && python3 -m compileall -q /opt/berth/app

USER berth
