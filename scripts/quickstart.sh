#!/usr/bin/env bash
# The README's quick start. `make run` runs it under scripts/with-services.sh, which finds
# or starts Postgres and exports HOOKGATE_PG_PORT. It starts hookgate (shipped config) and
# a recording upstream, creates a demo trigger protected by an API key and a Basic
# credential, prints curl commands to try, and stays in the foreground until Ctrl-C; then
# it stops the two processes it started (by PID) and nothing else.
#
# Environment:
#   HOOKGATE_PUBLIC_LISTEN  webhook address (default 127.0.0.1:8080: a demo stays local;
#                           use 0.0.0.0:8080 to accept webhooks from other machines)
#   HOOKGATE_ADMIN_LISTEN   admin address (default 127.0.0.1:9090)
#   HOOKGATE_UPSTREAM_URL   where the recording upstream listens (default
#                           http://127.0.0.1:4000)
#   QUICKSTART_EXIT=1       send the three demo webhooks, check what happened, stop, exit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

: "${HOOKGATE_PG_PORT:?run the quick start with: make run}"
public_listen=${HOOKGATE_PUBLIC_LISTEN:-127.0.0.1:8080}
admin_listen=${HOOKGATE_ADMIN_LISTEN:-127.0.0.1:9090}
upstream_url=${HOOKGATE_UPSTREAM_URL:-http://127.0.0.1:4000}
run_dir="$root/target/quickstart"

fail() { echo "quickstart: $*" >&2; exit 1; }

# A wildcard listen address is reached through loopback.
connect_addr() { local a=${1/#0.0.0.0:/127.0.0.1:}; echo "$a"; }

answers() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# Never take over or kill a listener we did not start: name the knob and stop.
require_free() { # ADDRESS DESCRIPTION VARIABLE EXAMPLE
  local address
  address=$(connect_addr "$1")
  if answers "$address"; then
    fail "$address ($2) is already in use by another program." \
      "Stop it, or pick another address, e.g.: $3=$4 make run"
  fi
}

# The recording upstream needs a socket address, so the URL must be http://IP:PORT.
upstream_addr=${upstream_url#http://}
upstream_addr=${upstream_addr%/}
[[ $upstream_addr =~ ^[0-9.]+:[0-9]+$ ]] ||
  fail "HOOKGATE_UPSTREAM_URL must look like http://127.0.0.1:4000 for the quick start"

require_free "$public_listen" "public webhook port" HOOKGATE_PUBLIC_LISTEN 127.0.0.1:8081
require_free "$admin_listen" "admin port" HOOKGATE_ADMIN_LISTEN 127.0.0.1:9091
require_free "$upstream_addr" "recording upstream" HOOKGATE_UPSTREAM_URL http://127.0.0.1:4001

# hookgate applies migrations itself but does not create its database: psql does, once.
find_psql() { command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -n 1; }
psql_bin=$(find_psql || true)
if [ -z "$psql_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing postgresql-client (for psql)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >&2
    psql_bin=$(find_psql || true)
  fi
  [ -n "$psql_bin" ] || fail "psql is missing: install postgresql-client"
fi
# -w: fail instead of prompting for a password; -X: ignore the user's ~/.psqlrc.
pg=(-X -w -q -h 127.0.0.1 -p "$HOOKGATE_PG_PORT" -U postgres -d postgres)
exists=$("$psql_bin" "${pg[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'hookgate'")
if [ "$exists" != 1 ]; then
  # Someone may create it between the check and here: "already exists" is fine.
  if ! out=$("$psql_bin" "${pg[@]}" -c 'CREATE DATABASE hookgate' 2>&1) &&
    [[ $out != *"already exists"* ]]; then
    fail "cannot create the hookgate database: $out"
  fi
fi

echo "building hookgate and the recording upstream (release; the first build is slow)..."
cargo build --release --bin hookgate --example recording_upstream
bin="${CARGO_TARGET_DIR:-$root/target}/release"

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
new_uuid() { cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-F' 'a-f'; }
admin_token=$(random_hex 32)
project_id=$(new_uuid)
trigger_id=$(new_uuid)
basic_password=$(random_hex 12)

# Stop what we started, whatever way the script ends. Ctrl-C and SIGTERM go through exit
# so that the EXIT trap runs once.
pids=()
stop_started() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ ${#pids[@]} = 0 ] || echo "quickstart: stopped hookgate and the recording upstream"
}
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$run_dir"
"$bin/examples/recording_upstream" "$upstream_addr" >"$run_dir/upstream.log" 2>&1 &
pids+=($!)
upstream_pid=$!

# No shutdown grace: nothing balances load in front of a demo, so Ctrl-C is quick.
env DATABASE_URL="postgres://postgres@127.0.0.1:$HOOKGATE_PG_PORT/hookgate" \
  HOOKGATE_ADMIN_TOKEN="$admin_token" \
  HOOKGATE_PUBLIC_LISTEN="$public_listen" \
  HOOKGATE_ADMIN_LISTEN="$admin_listen" \
  HOOKGATE_UPSTREAM_URL="$upstream_url" \
  HOOKGATE_SHUTDOWN_GRACE_MS="${HOOKGATE_SHUTDOWN_GRACE_MS:-0}" \
  "$bin/hookgate" --config "$root/config/hookgate.toml" serve >"$run_dir/hookgate.log" 2>&1 &
pids+=($!)
hookgate_pid=$!

admin_url="http://$(connect_addr "$admin_listen")"
public_url="http://$(connect_addr "$public_listen")"

# Ready means: hookgate's /readyz says 200 (store reachable, migrations applied) and the
# upstream accepts connections. Give up after 60 s or as soon as either process exits.
for ((tries = 0; ; tries++)); do
  if answers "$upstream_addr" && curl -fsS -o /dev/null "$admin_url/readyz" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$hookgate_pid" 2>/dev/null || ! kill -0 "$upstream_pid" 2>/dev/null ||
    ((tries >= 120)); then
    echo "quickstart: not ready; the last lines of the logs in $run_dir:" >&2
    tail -n 15 "$run_dir/hookgate.log" "$run_dir/upstream.log" >&2
    exit 1
  fi
  sleep 0.5
done

# METHOD PATH [JSON]: prints the response body; an error status stops the script.
admin() {
  local out
  if ! out=$(curl -sS --fail-with-body -X "$1" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' ${3:+--data "$3"} "$admin_url$2"); then
    fail "admin API $1 $2 failed: $out"
  fi
  printf '%s' "$out"
}
# The string value of a top-level field of a flat JSON object (no jq on a fresh machine).
json_string() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$2"; }

# auth_required: the trigger stays closed even if both methods are later removed.
admin PUT "/v1/triggers/$trigger_id" \
  "{\"project_id\":\"$project_id\",\"auth_required\":true}" >/dev/null
api_method=$(admin POST "/v1/projects/$project_id/auth-methods" \
  "{\"name\":\"demo api key\",\"auth_type\":\"api\",\"trigger_id\":\"$trigger_id\"}")
api_key=$(json_string api_key "$api_method")
[ -n "$api_key" ] || fail "no api_key in the admin API's answer"
admin POST "/v1/projects/$project_id/auth-methods" \
  "{\"name\":\"demo basic\",\"auth_type\":\"basic\",\"username\":\"demo\",\
\"password\":\"$basic_password\",\"trigger_id\":\"$trigger_id\"}" >/dev/null

# The demo commands, kept as text so that they are printed exactly as they are run.
webhook="$public_url/i/$trigger_id"
json="-H 'content-type: application/json' -d '{\"event\":\"quickstart\"}'"
with_key="curl -i -H 'x-api-key: $api_key' $json $webhook"
with_basic="curl -i -u 'demo:$basic_password' $json $webhook"
wrong_key="curl -i -H 'x-api-key: not-the-right-key' $json $webhook"

cat <<EOF

hookgate is running: webhooks on $public_url, admin API on $admin_url
  demo project $project_id, trigger $trigger_id
  admin token (actor "bootstrap"): $admin_token

Accepted with the API key (200, answered by the upstream):
  $with_key
Accepted with Basic, user demo (200):
  $with_basic
Rejected, wrong key (404, as if the trigger did not exist):
  $wrong_key

What the upstream receives (no x-api-key, no authorization):  tail -f $run_dir/upstream.log
The gateway's log: $run_dir/hookgate.log
The trigger's auth methods:
  curl -H 'authorization: Bearer $admin_token' $admin_url/v1/triggers/$trigger_id/auth-methods

EOF

if [ "${QUICKSTART_EXIT:-}" = 1 ]; then
  # Run the three commands (the text above, hence eval) and compare their statuses.
  ok=true
  check() { # NAME COMMAND EXPECTED
    local status
    status=$(eval "$2 -sS -o /dev/null -w '%{http_code}'" || true)
    echo "$1: $status (expected $3)"
    [ "$status" = "$3" ] || ok=false
  }
  check "API key  " "$with_key" 200
  check "Basic    " "$with_basic" 200
  check "wrong key" "$wrong_key" 404
  echo; echo "--- $run_dir/upstream.log:"; cat "$run_dir/upstream.log"
  received=$(grep -c '^--- POST' "$run_dir/upstream.log" || true)
  [ "$received" = 2 ] || { echo "upstream received $received webhooks, expected 2"; ok=false; }
  if grep -Eiq '^(x-api-key|authorization):' "$run_dir/upstream.log"; then
    echo "credentials reached the upstream"; ok=false
  fi
  $ok || fail "the demo did not behave as expected"
  echo "quickstart: all three behaved as expected"
  exit 0
fi

echo "Press Ctrl-C to stop."
# Poll rather than `wait -n PID...` (bash 5.1+); waiting on a sleep keeps Ctrl-C prompt.
while kill -0 "$hookgate_pid" 2>/dev/null && kill -0 "$upstream_pid" 2>/dev/null; do
  sleep 1 &
  wait $! || true
done
fail "a process exited on its own; see the logs in $run_dir"
