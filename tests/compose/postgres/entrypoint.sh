#!/usr/bin/env bash
# Entry point of the postgres:15 stand-in: initialises $PGDATA on first start
# the way the official image does, then runs the server as user postgres.
set -euo pipefail

user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
password="${POSTGRES_PASSWORD:-}"
auth="${POSTGRES_HOST_AUTH_METHOD:-}"

mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    if [[ -z "$password" && "$auth" != "trust" ]]; then
        echo "postgres stand-in: set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one" >&2
        exit 1
    fi
    auth="${auth:-scram-sha-256}"
    pwfile="$(mktemp)"
    printf '%s\n' "${password:-unused}" >"$pwfile"
    chown postgres "$pwfile"
    runuser -u postgres -- initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" >/dev/null
    rm -f "$pwfile"
    {
        echo "host all all all $auth"
    } >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [[ "$db" != "postgres" ]]; then
        runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            -c "CREATE DATABASE \"$db\""
        runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "postgres stand-in: initialised $PGDATA (user $user, database $db, host auth $auth)"
fi

if [[ "${1:-}" == "postgres" ]]; then
    exec runuser -u postgres -- "$@"
fi
exec "$@"
