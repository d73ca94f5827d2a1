#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for tests.
#
#   postgres-test-server.sh start DIR   initdb in DIR, start on 127.0.0.1 at a free port,
#                                       create database "cairn"; the last line of stdout is
#                                       its URL (postgres://cairn:<password>@127.0.0.1:PORT/cairn)
#   postgres-test-server.sh stop DIR    stop it (fast shutdown)
#   postgres-test-server.sh resume DIR  start a stopped server again (same data, same port)
#   postgres-test-server.sh restart DIR stop, then resume (tests of losing the database)
#
# The server runs as an unprivileged user (the "postgres" system user when started as root,
# since PostgreSQL refuses to run as root), listens on loopback only, and keeps fsync on so
# tests exercise the same durability paths as production. Every wait is bounded.
set -euo pipefail

bin=${POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
wait_seconds=60

usage() {
  echo "usage: $0 start DIR | stop DIR | resume DIR | restart DIR" >&2
  exit 2
}

# Runs a command as the server's user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -e "$dir/data" ]; then
    echo "$dir/data already exists" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null || {
      echo "no 'postgres' user: install the postgresql package" >&2
      exit 1
    }
    chown postgres "$dir"
    chmod 700 "$dir"
  fi
  local password
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  (umask 077 && printf '%s\n' "$password" >"$dir/pwfile")
  [ "$(id -u)" -ne 0 ] || chown postgres "$dir/pwfile"
  as_owner "$bin/initdb" -D "$dir/data" -U cairn --pwfile="$dir/pwfile" --auth=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  rm -f "$dir/pwfile"

  # A few attempts: another process may take the port between probing and binding.
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    cat >"$dir/data/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
max_connections = 300
shared_buffers = 32MB
log_min_messages = warning
CONF
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$wait_seconds" \
      start >/dev/null; then
      break
    fi
    if [ "$attempt" -eq 5 ]; then
      tail -n 20 "$dir/server.log" >&2 || true
      exit 1
    fi
  done
  echo "$port" >"$dir/port"

  local base="postgres://cairn:$password@127.0.0.1:$port"
  PGCONNECT_TIMEOUT=10 timeout "$wait_seconds" "$bin/psql" -X -q -v ON_ERROR_STOP=1 \
    "$base/postgres" -c "CREATE DATABASE cairn" >/dev/null
  echo "$base/cairn"
}

stop() {
  local dir=$1
  # Nothing to do when it never started or already stopped.
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t "$wait_seconds" stop >/dev/null
}

resume() {
  local dir=$1
  [ -f "$dir/port" ] || {
    echo "$dir holds no server made by 'start'" >&2
    exit 1
  }
  [ ! -f "$dir/data/postmaster.pid" ] || return 0  # already running
  # The port was free while the server ran; if another process took it meanwhile, this
  # fails (bounded) rather than moving the server to a port its clients do not know.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$wait_seconds" \
    start >/dev/null || {
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
  }
}

[ $# -eq 2 ] || usage
case "$1" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  resume) resume "$2" ;;
  restart)
    stop "$2"
    resume "$2"
    ;;
  *) usage ;;
esac
