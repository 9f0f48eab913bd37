#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1 for the two-worker study test and print
# its URL. Uses Debian's cluster tools (the server refuses to run as root; the tools run it
# as the postgres user). Installs the Debian packages when missing. Usage:
#   url=$(.ci/postgres.sh start)   ...   .ci/postgres.sh stop
set -euo pipefail
NAME=switchnas_ci
PORT=${SWITCHNAS_CI_PG_PORT:-5439}
cmd=${1:-start}

if ! command -v pg_createcluster >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing PostgreSQL from Debian packages" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    else
        echo "PostgreSQL's Debian cluster tools are missing and cannot be installed" >&2
        exit 3
    fi
fi
VER=$(ls /usr/lib/postgresql | sort -n | tail -1)

case "$cmd" in
start)
    pg_dropcluster --stop "$VER" "$NAME" >/dev/null 2>&1 || true
    pg_createcluster "$VER" "$NAME" -p "$PORT" >/dev/null -- --auth-local=trust \
        --auth-host=scram-sha-256 >&2
    pg_ctlcluster "$VER" "$NAME" start -o "-c listen_addresses=127.0.0.1" >&2
    su postgres -c "psql -q -p $PORT -c \"CREATE ROLE switchnas LOGIN PASSWORD 'switchnas'\"" >&2
    su postgres -c "createdb -p $PORT -O switchnas switchnas" >&2
    echo "postgresql://switchnas:switchnas@127.0.0.1:$PORT/switchnas"
    ;;
stop)
    pg_dropcluster --stop "$VER" "$NAME" >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
