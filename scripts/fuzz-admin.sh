#!/usr/bin/env bash
# Fuzzes the admin API against its own OpenAPI description with schemathesis:
# no 5xx, no response that contradicts the description. Starts a gateway of its own
# on loopback with a throwaway database, and stops everything it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/target/venv"
examples=${FUZZ_MAX_EXAMPLES:-30}

if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis==4.32.5'
fi
cargo build --quiet --bin hookgate

db="hookgate_fuzz_$$"
pg="postgres://postgres@127.0.0.1:${HOOKGATE_PG_PORT:-5432}"
psql_run() { psql "$pg/postgres" -v ON_ERROR_STOP=1 -qc "$1" >/dev/null; }
psql_run "CREATE DATABASE $db"
token="fuzz-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
admin_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
public_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

HOOKGATE_CONFIG=config/hookgate.toml DATABASE_URL="$pg/$db" HOOKGATE_ADMIN_TOKEN="$token" \
  HOOKGATE_ADMIN_LISTEN="127.0.0.1:$admin_port" HOOKGATE_PUBLIC_LISTEN="127.0.0.1:$public_port" \
  HOOKGATE_AUTH_ARGON2_MEMORY_KIB=1024 HOOKGATE_AUTH_ARGON2_ITERATIONS=1 \
  HOOKGATE_LOG_LEVEL=warn target/debug/hookgate serve &
gateway=$!
cleanup() {
  kill "$gateway" 2>/dev/null || true
  wait "$gateway" 2>/dev/null || true
  psql_run "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null && break
  kill -0 "$gateway" 2>/dev/null || { echo "hookgate did not start" >&2; exit 1; }
  sleep 0.1
done

# positive_data_acceptance is left out: a schema cannot say that a name is already
# taken or that an id names no method, and those are documented 422s, not bugs.
"$venv/bin/schemathesis" run "http://127.0.0.1:$admin_port/v1/openapi.json" \
  --url "http://127.0.0.1:$admin_port" \
  --header "Authorization: Bearer $token" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$examples" --phases examples,coverage,fuzzing
