#!/usr/bin/env bash
# A private PostgreSQL server for the test suite, from Debian's `postgresql`
# package: its own cluster under /tmp, on its own port, reachable only from
# 127.0.0.1 (trust authentication: tests only, never production), durability
# off (fsync, synchronous_commit) for speed. Creates the role `berth` (may create
# databases: pytest-django makes test_berth, live test servers make their own)
# and its database `berth`.
#
#   scripts/postgres.sh start    # idempotent; prints the DATABASE_URL
#   scripts/postgres.sh url      # prints the DATABASE_URL
#   scripts/postgres.sh status
#   scripts/postgres.sh stop
#   scripts/postgres.sh destroy  # stop and delete the cluster
#
# BERTH_PG_PORT (25432) and BERTH_PG_DIR (/tmp/berth-postgres) choose where.
# The default port lies below Linux's ephemeral range (32768-60999): a port in
# that range can be taken at any moment by a client connection's local end or
# by a test server on a free port, and the start then fails "Address already in
# use". The port is given on the command line at each start, so a cluster made
# earlier with another port follows the setting.
# Run as root, the server runs as the `postgres` user (runuser); as anyone
# else, as that user.
set -euo pipefail

PORT=${BERTH_PG_PORT:-25432}
DIR=${BERTH_PG_DIR:-/tmp/berth-postgres}
DATA=$DIR/data
LOG=$DIR/postgres.log
URL="postgres://berth@127.0.0.1:$PORT/berth"

# Debian keeps the server binaries out of PATH, one directory per major version.
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/pg_ctl" ]; then
  echo "postgres.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
  OWNER=postgres
else
  as_pg() { "$@"; }
  OWNER=$(id -un)
fi

running() { as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

psql_admin() {
  as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"
}

init() {
  [ -f "$DATA/PG_VERSION" ] && return
  mkdir -p "$DIR"
  chown "$OWNER" "$DIR"
  chmod 700 "$DIR"
  as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >"$DATA/pg_hba.conf" <<'EOF'
# Tests only: trust, and only on the loopback address and the private socket.
local all all trust
host  all all 127.0.0.1/32 trust
EOF
  cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 400
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  chown "$OWNER" "$DATA/pg_hba.conf" "$DATA/postgresql.conf"
}

start() {
  init
  if ! running; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PORT" -w -t 60 start >/dev/null
  fi
  psql_admin <<'EOF'
SELECT 'CREATE ROLE berth LOGIN CREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'berth')\gexec
SELECT 'CREATE DATABASE berth OWNER berth'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'berth')\gexec
EOF
  echo "$URL"
}

case "${1:-}" in
  start) start ;;
  url) echo "$URL" ;;
  status) running && echo "running: $URL" || { echo "stopped"; exit 3; } ;;
  stop) if [ -f "$DATA/PG_VERSION" ] && running; then as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi ;;
  destroy)
    if [ -f "$DATA/PG_VERSION" ] && running; then as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null; fi
    rm -rf "$DIR"
    ;;
  *)
    echo "usage: $0 start|stop|url|status|destroy" >&2
    exit 2
    ;;
esac
