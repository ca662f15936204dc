#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server (Debian's `postgresql` binaries)
# started in a temp dir, listening on a unix socket only, and NESTBOX_TEST_PG_URL
# pointing at it (tests create their own databases on it). The server is stopped and its
# files removed when the command ends.
#
#   tests/pg/with-pg.sh cargo test -p nestbox-store postgres
#
# PostgreSQL refuses to run as root: when run as root, the server runs as `nobody`.
set -euo pipefail

PGBIN=${PGBIN:-}
if [[ -z $PGBIN ]]; then
    for d in /usr/lib/postgresql/*/bin; do [[ -x $d/initdb ]] && PGBIN=$d; done
fi
if [[ -z $PGBIN || ! -x $PGBIN/initdb ]]; then
    echo "with-pg: no PostgreSQL server binaries (apt-get install postgresql)" >&2
    exit 1
fi

dir=$(mktemp -d /tmp/nestbox-pg.XXXXXX)
chmod 755 "$dir"
as_pg=()
if [[ $(id -u) == 0 ]]; then
    chown nobody "$dir"
    as_pg=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
stop() {
    "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

"${as_pg[@]}" "$PGBIN/initdb" -D "$dir/data" -U nestbox -A trust -E UTF8 --no-locale \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# Test settings: no fsync (a crash of a test server loses nothing of value), enough
# connections for several nestbox processes with their pools.
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

export NESTBOX_TEST_PG_URL="postgres://nestbox@localhost/postgres?host=$dir"
export NESTBOX_TEST_PG_REQUIRED=1
"$@"
