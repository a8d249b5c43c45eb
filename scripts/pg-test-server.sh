#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the tests (Debian's postgresql-15; no systemd).
#   scripts/pg-test-server.sh start DIR   # initdb in DIR, start on a free 127.0.0.1 port;
#                                         # prints the URI and writes it to DIR/uri
#   scripts/pg-test-server.sh stop DIR [MODE]   # MODE: fast (default) or immediate (a crash)
#   scripts/pg-test-server.sh restart DIR       # start again on the same port and data
# fsync=off: a test server need not survive a power cut (a crash of postgres itself
# loses nothing). As root, the server runs as the `postgres` user.
# Environment (benchmarks; unset for the tests): PG_FSYNC=on starts it durable instead
# (fsync, synchronous_commit and full_page_writes on, PostgreSQL's defaults); PG_OPTS adds
# server options (e.g. "-c shared_buffers=256MB"). Give them to `restart` again.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
cmd="${1:?start|stop|restart}"
dir="${2:?state directory}"
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
pg_start() {
  local port; port="$(cat "$dir/port")"
  local durability="-c fsync=off -c full_page_writes=off"
  if [ "${PG_FSYNC:-off}" = on ]; then
    durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  fi
  as_pg "$BIN/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $durability -c max_connections=300${PG_OPTS:+ $PG_OPTS}" \
    start >/dev/null
}
case "$cmd" in
  start)
    if [ -d "$dir/data" ]; then  # left by an earlier run that did not stop it
      as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
      rm -rf "$dir"
    fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    # UTF8 whatever the caller's locale (scripts/test.sh runs with LC_ALL=C, which would
    # make it SQL_ASCII), as a database made for runq is; the C locale keeps sorting plain.
    as_pg "$BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C \
      >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    free_port >"$dir/port"
    pg_start || { cat "$dir/log" >&2; exit 1; }
    echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/postgres" | tee "$dir/uri"
    ;;
  restart)
    pg_start || { cat "$dir/log" >&2; exit 1; }
    ;;
  stop)
    as_pg "$BIN/pg_ctl" -D "$dir/data" -w -m "${3:-fast}" stop >/dev/null
    ;;
  *) echo "unknown command '$cmd'" >&2; exit 2 ;;
esac
