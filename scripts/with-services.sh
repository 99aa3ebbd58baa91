#!/usr/bin/env bash
# Runs a command with Postgres and Redis reachable, exporting where they are:
#   HOOKGATE_TEST_DATABASE_URL, HOOKGATE_TEST_REDIS_URL and HOOKGATE_PG_PORT.
# Uses servers that already answer on 127.0.0.1:5432 and :6379. Otherwise it starts
# private ones under target/services (installing Debian's packages when the server
# binaries are missing and we are root), and leaves servers it did not start alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/target/services"
mkdir -p "$state"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_if_missing() {
  local binary=$1 package=$2
  command -v "$binary" >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/"$binary" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $package" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >&2
  else
    echo "$binary is missing: install $package" >&2; exit 1
  fi
}

pg_port=5432
if ! answers 5432; then
  pg_port=55432
  if ! answers "$pg_port"; then
    install_if_missing initdb postgresql
    bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -n 1 || command -v initdb)")
    data="$state/pg"
    run_as=()
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system postgres
      chown -R postgres "$state"; run_as=(runuser -u postgres --)
    fi
    [ -d "$data" ] || "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$state/pg.log" -w \
      -o "-p $pg_port -k $state -c listen_addresses=127.0.0.1" start >/dev/null
    echo "started a private Postgres on 127.0.0.1:$pg_port (stop: pg_ctl -D $data stop)" >&2
  fi
fi

redis_port=6379
if ! answers 6379; then
  redis_port=56379
  if ! answers "$redis_port"; then
    install_if_missing redis-server redis-server
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" \
      --appendonly no --dir "$state" --logfile "$state/redis.log"
    echo "started a private Redis on 127.0.0.1:$redis_port" >&2
  fi
fi

export HOOKGATE_TEST_DATABASE_URL="${HOOKGATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:$pg_port/postgres}"
export HOOKGATE_TEST_REDIS_URL="${HOOKGATE_TEST_REDIS_URL:-redis://127.0.0.1:$redis_port}"
export HOOKGATE_PG_PORT=$pg_port
exec "$@"
