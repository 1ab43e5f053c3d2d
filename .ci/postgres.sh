#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL server on 127.0.0.1 for the test suite and print
#
#   export WORKBENCH_TEST_POSTGRES_URL=postgresql+psycopg://USER:PASS@127.0.0.1:PORT/DB
#
# Use it as   eval "$(.ci/postgres.sh)"   or   source .ci/postgres.sh
# Progress goes to stderr, so stdout is only the export line.
#
# Idempotent: a server already answering on the port is reused; an existing data folder is
# restarted rather than re-initialised. The server is test-only: it listens on 127.0.0.1,
# runs with fsync off for speed, and uses a fixed password (override with the variables below).
#
#   WORKBENCH_PG_PORT  (55432)   WORKBENCH_PG_DIR  (${TMPDIR:-/tmp}/workbench-postgres)
#   WORKBENCH_PG_USER  (workbench)   WORKBENCH_PG_PASSWORD (workbench)   WORKBENCH_PG_DB (workbench_test)

# Sourced: run the real work in a child shell so `set -e` and `exit` cannot touch the caller.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    __wb_pg_exports="$(bash "${BASH_SOURCE[0]}")" && eval "$__wb_pg_exports"
    unset __wb_pg_exports
    return 0 2>/dev/null || true
fi

set -euo pipefail

PORT="${WORKBENCH_PG_PORT:-55432}"
PG_DIR="${WORKBENCH_PG_DIR:-${TMPDIR:-/tmp}/workbench-postgres}"
DB_USER="${WORKBENCH_PG_USER:-workbench}"
DB_PASS="${WORKBENCH_PG_PASSWORD:-workbench}"
DB_NAME="${WORKBENCH_PG_DB:-workbench_test}"
DATA="$PG_DIR/data"
URL="postgresql+psycopg://${DB_USER}:${DB_PASS}@127.0.0.1:${PORT}/${DB_NAME}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo -n "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

server_bindir() {
    local dir
    # Debian keeps the server programs outside PATH, one folder per major version.
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then echo "$dir"; return; fi
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"
    fi
}

install_server() {
    log "PostgreSQL server not found; installing it with apt-get"
    command -v apt-get >/dev/null || die "no apt-get: install PostgreSQL server yourself"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
}

# initdb and the server refuse to run as root, so root runs them as the postgres user.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

can_login() {
    PGPASSWORD="$DB_PASS" PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$PORT" -U "$DB_USER" \
        -d "$DB_NAME" -qAtc 'select 1' >/dev/null 2>&1
}

superuser_psql() {
    as_owner "$BINDIR/psql" -h "$PG_DIR" -p "$PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -qAt "$@"
}

# A caller-provided URL that already works wins: nothing to start.
if [[ -n "${WORKBENCH_TEST_POSTGRES_URL:-}" ]] &&
   PGCONNECT_TIMEOUT=5 psql "${WORKBENCH_TEST_POSTGRES_URL/+psycopg/}" -qAtc 'select 1' >/dev/null 2>&1; then
    log "reusing WORKBENCH_TEST_POSTGRES_URL from the environment"
    echo "export WORKBENCH_TEST_POSTGRES_URL=${WORKBENCH_TEST_POSTGRES_URL}"
    exit 0
fi

BINDIR="$(server_bindir)"
if [[ -z "$BINDIR" ]]; then
    install_server
    BINDIR="$(server_bindir)"
    [[ -n "$BINDIR" ]] || die "PostgreSQL server programs still missing after apt-get install"
fi
command -v psql >/dev/null || PATH="$BINDIR:$PATH"
if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir "$PG_DIR" --shell /bin/sh postgres
fi

if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    log "a server is already listening on 127.0.0.1:$PORT; reusing it"
else
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        log "initialising a test cluster in $DATA"
        mkdir -p "$PG_DIR"
        if [[ "$(id -u)" == 0 ]]; then chown postgres: "$PG_DIR"; fi
        chmod 700 "$PG_DIR"
        as_owner "$BINDIR/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
            --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
            die "initdb failed; see $PG_DIR/initdb.log"
        # Test data is disposable, so durability is traded for speed.
        as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PG_DIR'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    log "starting the server on 127.0.0.1:$PORT"
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 start >&2 ||
        die "the server did not start; see $PG_DIR/server.log"
fi

# Our own cluster has a superuser socket in $PG_DIR: make sure the role and database exist.
if [[ -S "$PG_DIR/.s.PGSQL.$PORT" ]]; then
    superuser_psql <<EOF
SELECT format('CREATE ROLE %I LOGIN', '$DB_USER')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER')\gexec
ALTER ROLE "$DB_USER" LOGIN PASSWORD '$DB_PASS';
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$DB_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
EOF
fi

can_login || die "cannot log in as $DB_USER to $DB_NAME on 127.0.0.1:$PORT (another server on that port? set WORKBENCH_PG_PORT)"
log "ready: $URL"
echo "export WORKBENCH_TEST_POSTGRES_URL=$URL"
