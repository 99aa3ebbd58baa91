#!/usr/bin/env bash
# `make bench`: what hookgate costs in front of an upstream, next to nginx, in one run.
#
# Runs under scripts/with-services.sh (which finds or starts Postgres and exports
# HOOKGATE_TEST_DATABASE_URL). Installs wrk and nginx from Debian's packages when they
# are missing and we are root; builds hookgate and the bench examples in release; starts
# a tiny upstream, nginx and hookgate, all pinned to one core, and drives them with wrk
# pinned to another; alternates the scenarios over several rounds; then the stress
# scenarios (cold stampede, wrong-password flood) and the memory of 100 000 cached
# triggers. Prints one report; keeps logs and raw results under target/bench/.
#
# Everything it starts it stops (by PID, on any exit), and it drops the database it
# made. Every request goes to 127.0.0.1; every load loop is bounded in time and count.
# benches/README.md says what each column means and what the targets are.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]          rounds; each runs every steady scenario once, alternating
#   BENCH_SECONDS [5]         seconds per steady scenario per round
#   BENCH_CONNECTIONS [32]    wrk connections of the throughput scenarios
#   BENCH_FLOOD_CONNECTIONS [32]  connections of the wrong-password flood
#   BENCH_STAMPEDE_CLIENTS [64], BENCH_STAMPEDES [3]  cold stampede size and repeats
#   BENCH_MEMORY_TRIGGERS [100000]  triggers (× 2 methods) for the memory figure; 0: skip
#   BENCH_PORT_BASE [18100]   six consecutive loopback ports from here
#   BENCH_PROXY_CPU [0], BENCH_LOAD_CPU [1]  cores for servers and for load generators
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here="$root/benches/load"

rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-5}
conns=${BENCH_CONNECTIONS:-32}
flood_conns=${BENCH_FLOOD_CONNECTIONS:-32}
stampede_clients=${BENCH_STAMPEDE_CLIENTS:-64}
stampedes=${BENCH_STAMPEDES:-3}
mem_triggers=${BENCH_MEMORY_TRIGGERS:-100000}
port_base=${BENCH_PORT_BASE:-18100}
proxy_cpu=${BENCH_PROXY_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}

fail() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }
for n in "$rounds" "$seconds" "$conns" "$flood_conns" "$stampede_clients" "$stampedes" \
  "$mem_triggers" "$port_base"; do
  [[ $n =~ ^[0-9]+$ ]] || fail "BENCH_* values must be whole numbers (got '$n')"
done
((rounds >= 1 && rounds <= 20)) || fail "BENCH_ROUNDS must be 1..20"
((seconds >= 1 && seconds <= 60)) || fail "BENCH_SECONDS must be 1..60"
((conns >= 1 && conns <= 1000)) || fail "BENCH_CONNECTIONS must be 1..1000"
((mem_triggers <= 1000000)) || fail "BENCH_MEMORY_TRIGGERS must be at most 1000000"
: "${HOOKGATE_TEST_DATABASE_URL:?run the benchmark with: make bench}"

# ---------------------------------------------------------------- tools
install_pkg() { # BINARY PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    note "installing $2"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
  else
    fail "$1 is missing: install the Debian package $2"
  fi
}
install_pkg wrk wrk
install_pkg nginx nginx
install_pkg psql postgresql-client
install_pkg curl curl
install_pkg jq jq
install_pkg taskset util-linux
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
cores=$(nproc)
((proxy_cpu < cores && load_cpu < cores)) ||
  fail "BENCH_PROXY_CPU / BENCH_LOAD_CPU must name cores below $cores"
[ "$proxy_cpu" != "$load_cpu" ] || note "servers and load share core $proxy_cpu: expect noise"
hz=$(getconf CLK_TCK)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
up_port=$port_base
nginx_port=$((port_base + 1))
nginx_key_port=$((port_base + 2))
public_port=$((port_base + 3))
admin_port=$((port_base + 4))
bare_port=$((port_base + 5))
for port in $up_port $nginx_port $nginx_key_port $public_port $admin_port $bare_port; do
  answers "$port" && fail "127.0.0.1:$port is in use; pick other ports with BENCH_PORT_BASE"
done

# ---------------------------------------------------------------- start-up and clean-up
run_dir="$root/target/bench/run-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
results="$run_dir/results.tsv"
: >"$results"
pids=()
db_name="hookgate_bench_$$_$RANDOM"
db_created=0
server_url=$HOOKGATE_TEST_DATABASE_URL
db_url="${server_url%/*}/$db_name"

stop_pid() { # PID: TERM, wait up to 5 s, then KILL; only ever a PID this script started
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  if [ "$db_created" = 1 ]; then
    psql -X -w -q "$server_url" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" \
      >/dev/null 2>&1 || note "could not drop database $db_name"
  fi
  [ "$status" = 0 ] || note "failed (status $status); logs are in $run_dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() { # PID: drop from the clean-up list once it is stopped
  local keep=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  pids=("${keep[@]}")
}

wait_for() { # URL: up to 10 s for a 2xx answer
  local i
  for i in $(seq 100); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

note "building hookgate and the bench examples (release)"
cargo build --release --bin hookgate --example bench_upstream --example bench_client \
  --example bench_bare_proxy >&2
bin="${CARGO_TARGET_DIR:-$root/target}/release"

psql -X -w -q "$server_url" -c "CREATE DATABASE $db_name" >/dev/null
db_created=1

taskset -c "$proxy_cpu" "$bin/examples/bench_upstream" "127.0.0.1:$up_port" \
  >"$run_dir/upstream.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")

admin_token="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
write_config() { # FILE [EXTRA TOML LINES for [cache]]
  cat >"$1" <<EOF
# Written by benches/load/run.sh for one benchmark run.
[public]
listen = "127.0.0.1:$public_port"
[admin]
listen = "127.0.0.1:$admin_port"
[database]
url = "$db_url"
max_connections = 8
[upstream]
url = "http://127.0.0.1:$up_port"
[auth]
# The flood plays an attacker with many addresses: no per-address throttle, so every
# wrong password costs one argon2id verification (the worst case for good traffic).
max_failures = 1000000000
[cache]
$2
[log]
level = "warn"
[shutdown]
grace_ms = 0
drain_timeout_ms = 2000
EOF
}
write_config "$run_dir/hookgate.toml" ""

hg_pid=
start_hookgate() { # CONFIG LOG
  # A clean environment: no DATABASE_URL, RUST_LOG or HOOKGATE_* from the caller.
  env -i PATH="$PATH" HOME="${HOME:-/root}" HOOKGATE_ADMIN_TOKEN="$admin_token" \
    taskset -c "$proxy_cpu" "$bin/hookgate" --config "$1" serve >"$2" 2>&1 &
  hg_pid=$!
  pids+=("$hg_pid")
  wait_for "http://127.0.0.1:$admin_port/readyz" || {
    tail -n 20 "$2" >&2
    fail "hookgate did not become ready"
  }
}
start_hookgate "$run_dir/hookgate.toml" "$run_dir/hookgate.log"
wait_for "http://127.0.0.1:$up_port/" || fail "the bench upstream did not start"

# ---------------------------------------------------------------- triggers and methods
new_uuid() { cat /proc/sys/kernel/random/uuid; }
admin() { # METHOD PATH [JSON]
  curl -fsS --max-time 10 -X "$1" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' "http://127.0.0.1:$admin_port$2" ${3:+-d "$3"}
}
basic_header() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }

project=$(new_uuid)
t_open=$(new_uuid)
t_auth=$(new_uuid)
admin PUT "/v1/triggers/$t_open" "{\"project_id\":\"$project\"}" >/dev/null
admin PUT "/v1/triggers/$t_auth" "{\"project_id\":\"$project\"}" >/dev/null
api_key=$(admin POST "/v1/projects/$project/auth-methods" \
  "{\"name\":\"bench-api\",\"auth_type\":\"api\",\"trigger_id\":\"$t_auth\"}" | jq -r .api_key)
basic_user=bench-user
basic_password="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
admin POST "/v1/projects/$project/auth-methods" \
  "{\"name\":\"bench-basic\",\"auth_type\":\"basic\",\"username\":\"$basic_user\",
    \"password\":\"$basic_password\",\"trigger_id\":\"$t_auth\"}" >/dev/null
basic=$(basic_header "$basic_user" "$basic_password")

hg="http://127.0.0.1:$public_port"
expect_status() { # WANT DESCRIPTION CURL-ARGS...
  local want=$1 what=$2 got
  shift 2
  got=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$@")
  [ "$got" = "$want" ] || fail "$what answered $got, expected $want"
}
expect_status 200 "the open trigger" "$hg/i/$t_open"
expect_status 200 "the API key" -H "x-api-key: $api_key" "$hg/i/$t_auth"
expect_status 200 "the Basic credential" -H "authorization: $basic" "$hg/i/$t_auth"
expect_status 404 "a wrong API key" -H "x-api-key: nope-nope-nope" "$hg/i/$t_auth"

# ---------------------------------------------------------------- nginx
mkdir -p "$run_dir/nginx"
cat >"$run_dir/nginx/nginx.conf" <<EOF
# Written by benches/load/run.sh: the reference proxies, one worker like hookgate's one core.
daemon off;
worker_processes 1;
pid $run_dir/nginx/nginx.pid;
error_log $run_dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $run_dir/nginx/body;
  proxy_temp_path $run_dir/nginx/proxy;
  fastcgi_temp_path $run_dir/nginx/fastcgi;
  uwsgi_temp_path $run_dir/nginx/uwsgi;
  scgi_temp_path $run_dir/nginx/scgi;
  upstream bench_upstream {
    server 127.0.0.1:$up_port;
    keepalive 64;
  }
  # Room for 64-character keys.
  map_hash_bucket_size 128;
  map \$http_x_api_key \$bench_key_ok {
    default 0;
    "$api_key" 1;
  }
  # Plain proxy_pass with upstream keep-alive.
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  # The same, letting through only requests with the API key (a map lookup), and not
  # passing the key on.
  server {
    listen 127.0.0.1:$nginx_key_port;
    location / {
      if (\$bench_key_ok = 0) { return 404; }
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Api-Key "";
    }
  }
}
EOF
taskset -c "$proxy_cpu" "$nginx_bin" -p "$run_dir/nginx" -c "$run_dir/nginx/nginx.conf" \
  >"$run_dir/nginx/stdout.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
wait_for "http://127.0.0.1:$nginx_port/i/$t_open" || fail "nginx did not start"
expect_status 200 "nginx with the key" -H "x-api-key: $api_key" \
  "http://127.0.0.1:$nginx_key_port/i/$t_auth"
expect_status 404 "nginx without the key" "http://127.0.0.1:$nginx_key_port/i/$t_auth"

# ---------------------------------------------------------------- the HTTP stack alone
# hyper's server and hyper-util's pooled client with nothing between them: the floor
# under hookgate's own work (examples/bench_bare_proxy.rs).
taskset -c "$proxy_cpu" "$bin/examples/bench_bare_proxy" "127.0.0.1:$bare_port" \
  "http://127.0.0.1:$up_port" >"$run_dir/bare.log" 2>&1 &
bare_pid=$!
pids+=("$bare_pid")
wait_for "http://127.0.0.1:$bare_port/i/$t_open" || fail "the bare proxy did not start"

# ---------------------------------------------------------------- measuring
cpu_ticks() { # PID...: utime + stime of these processes and their children, in ticks
  local pid all=() kids total=0 t
  for pid in "$@"; do
    all+=("$pid")
    kids=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
    # shellcheck disable=SC2206 # a list of PIDs
    all+=($kids)
  done
  for pid in "${all[@]}"; do
    # Fields after "(comm) ": state is the 1st, utime the 12th, stime the 13th.
    t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true)
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
metric() { # NAME-PREFIX: sum of the matching samples on hookgate's /metrics
  curl -fsS --max-time 5 "http://127.0.0.1:$admin_port/metrics" |
    awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }'
}
field() { # KEY LINE
  sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"
}
wrk_argv() { # CONNECTIONS URL [HEADER VALUE]...: sets wrk_cmd, one bounded run on the load core
  local c=$1 url=$2
  shift 2
  wrk_cmd=(timeout $((seconds + 30)) taskset -c "$load_cpu" wrk -t1 -c"$c" -d"${seconds}s"
    --timeout 2s --latency -s "$here/report.lua" "$url" -- "$@")
}

# Each scenario: the process that does the proxying, the URL, the headers.
declare -A proxy_of=([direct]=$up_pid [nginx]=$nginx_pid [nginx-key]=$nginx_pid
  [bare]=$bare_pid [hg-open]=$hg_pid [hg-api]=$hg_pid [hg-basic]=$hg_pid)
set_scenario() { # NAME: sets s_url and s_headers
  s_headers=()
  case $1 in
    direct) s_url="http://127.0.0.1:$up_port/i/$t_open" ;;
    nginx) s_url="http://127.0.0.1:$nginx_port/i/$t_open" ;;
    nginx-key)
      s_url="http://127.0.0.1:$nginx_key_port/i/$t_auth" s_headers=(x-api-key "$api_key")
      ;;
    bare) s_url="http://127.0.0.1:$bare_port/i/$t_open" ;;
    hg-open) s_url="$hg/i/$t_open" ;;
    hg-api) s_url="$hg/i/$t_auth" s_headers=(x-api-key "$api_key") ;;
    hg-basic) s_url="$hg/i/$t_auth" s_headers=(authorization "$basic") ;;
    *) fail "unknown scenario $1" ;;
  esac
}
measure() { # KIND ROUND SCENARIO CONNECTIONS: one wrk run, one line of results.tsv
  local kind=$1 round=$2 name=$3 c=$4 out line p0 p1 u0 u1 req dur direct=0
  set_scenario "$name"
  [ "$name" = direct ] && direct=1
  out="$run_dir/wrk-$kind-$name-r$round.txt"
  wrk_argv "$c" "$s_url" "${s_headers[@]}"
  p0=$(cpu_ticks "${proxy_of[$name]}")
  u0=$(cpu_ticks "$up_pid")
  "${wrk_cmd[@]}" >"$out" 2>&1 || true
  p1=$(cpu_ticks "${proxy_of[$name]}")
  u1=$(cpu_ticks "$up_pid")
  line=$(grep '^WRK ' "$out") || fail "wrk printed no result for $name (see $out)"
  req=$(field requests "$line")
  dur=$(field duration_us "$line")
  ((req > 0)) || fail "$name: no request completed (see $out)"
  # kind round scenario rps p50_us p99_us proxy_us/req upstream_us/req non2xx sockerr
  awk -v k="$kind" -v r="$round" -v n="$name" -v req="$req" -v dur="$dur" \
    -v p50="$(field p50_us "$line")" -v p99="$(field p99_us "$line")" \
    -v pt=$((p1 - p0)) -v ut=$((u1 - u0)) -v hz="$hz" -v direct="$direct" \
    -v non2xx="$(field non2xx "$line")" -v sockerr="$(field sockerr "$line")" \
    'BEGIN {
       cpu = direct ? -1 : pt / hz * 1e6 / req
       printf "%s\t%s\t%s\t%.0f\t%d\t%d\t%.2f\t%.2f\t%d\t%d\n", k, r, n, req / (dur / 1e6),
         p50, p99, cpu, ut / hz * 1e6 / req, non2xx, sockerr
     }' >>"$results"
}

steady=(direct nginx nginx-key bare hg-open hg-api hg-basic)
latency=(direct nginx bare hg-open hg-api hg-basic)
argon2_before=$(metric hookgate_argon2_verifications_total)
note "steady scenarios: $rounds round(s) x ${#steady[@]} x ${seconds}s at $conns connections," \
  "then ${#latency[@]} x ${seconds}s at 1 connection"
for round in $(seq "$rounds"); do
  # Rotate the order each round, so that no scenario always runs first or last.
  for i in "${!steady[@]}"; do
    name=${steady[$(((i + round - 1) % ${#steady[@]}))]}
    measure load "$round" "$name" "$conns"
  done
  for i in "${!latency[@]}"; do
    name=${latency[$(((i + round - 1) % ${#latency[@]}))]}
    measure c1 "$round" "$name" 1
  done
done
argon2_steady=$(($(metric hookgate_argon2_verifications_total) - argon2_before))

# ---------------------------------------------------------------- flood
# Good traffic (API key and cached Basic, each on half the connections), alone and then
# beside a flood of distinct wrong passwords for the real Basic username.
half=$(((conns + 1) / 2))
good_pair() { # ROUND TAG: both good wrk runs at once
  local pa pb
  wrk_argv "$half" "$hg/i/$t_auth" x-api-key "$api_key"
  "${wrk_cmd[@]}" >"$run_dir/wrk-$2-api-r$1.txt" 2>&1 &
  pa=$!
  pids+=("$pa")
  wrk_argv "$half" "$hg/i/$t_auth" authorization "$basic"
  "${wrk_cmd[@]}" >"$run_dir/wrk-$2-basic-r$1.txt" 2>&1 &
  pb=$!
  pids+=("$pb")
  wait "$pa" || true
  wait "$pb" || true
  forget_pid "$pa"
  forget_pid "$pb"
}
record_pair() { # ROUND TAG
  local a b
  a=$(grep '^WRK ' "$run_dir/wrk-$2-api-r$1.txt") || fail "no result: wrk-$2-api-r$1"
  b=$(grep '^WRK ' "$run_dir/wrk-$2-basic-r$1.txt") || fail "no result: wrk-$2-basic-r$1"
  awk -v t="$2" -v r="$1" \
    -v ra="$(field requests "$a")" -v da="$(field duration_us "$a")" \
    -v rb="$(field requests "$b")" -v db="$(field duration_us "$b")" \
    -v pa="$(field p99_us "$a")" -v pb="$(field p99_us "$b")" \
    -v ea="$(field non2xx "$a")" -v eb="$(field non2xx "$b")" \
    'BEGIN { p99 = pa > pb ? pa : pb
             printf "%s\t%s\tgood\t%.0f\t0\t%d\t-1\t-1\t%d\t0\n", t, r,
               ra / (da / 1e6) + rb / (db / 1e6), p99, ea + eb }' >>"$results"
}
note "flood: $rounds round(s) x 2 x ${seconds}s (good traffic alone, then with" \
  "$flood_conns flooding connections)"
argon2_before=$(metric hookgate_argon2_verifications_total)
rejected_before=$(metric hookgate_argon2_rejected_total)
for round in $(seq "$rounds"); do
  good_pair "$round" calm
  record_pair "$round" calm
  timeout $((seconds + 30)) taskset -c "$load_cpu" wrk -t1 -c"$flood_conns" \
    -d"${seconds}s" --timeout 2s -s "$here/flood.lua" "$hg/i/$t_auth" -- "$basic_user" \
    >"$run_dir/wrk-flood-r$round.txt" 2>&1 &
  flood_pid=$!
  pids+=("$flood_pid")
  good_pair "$round" flood
  wait "$flood_pid" || true
  forget_pid "$flood_pid"
  record_pair "$round" flood
done
flood_argon2=$(($(metric hookgate_argon2_verifications_total) - argon2_before))
flood_rejected=$(($(metric hookgate_argon2_rejected_total) - rejected_before))
flood_answers=$(cat "$run_dir"/wrk-flood-r*.txt | { grep '^FLOOD ' || true; } |
  awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); s[kv[1]] += kv[2] } }
       END { printf "404: %d, 429: %d, 503: %d, other: %d", s["s404"], s["s429"],
             s["s503"], s["other"] }')

# ---------------------------------------------------------------- cold stampede
# A new trigger with a new Basic method each time: the snapshot is not cached and the
# credential has never been verified. All clients connect first, then send at once.
stampede_lines=()
for i in $(seq "$stampedes"); do
  t=$(new_uuid)
  user="stampede-$i"
  password="cold-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
  admin PUT "/v1/triggers/$t" "{\"project_id\":\"$project\"}" >/dev/null
  admin POST "/v1/projects/$project/auth-methods" \
    "{\"name\":\"$user\",\"auth_type\":\"basic\",\"username\":\"$user\",
      \"password\":\"$password\",\"trigger_id\":\"$t\"}" >/dev/null
  line=$(timeout 60 taskset -c "$load_cpu" "$bin/examples/bench_client" stampede \
    "$hg/i/$t" "$stampede_clients" authorization "$(basic_header "$user" "$password")")
  stampede_lines+=("$line")
done

# ---------------------------------------------------------------- memory
mem_line="skipped (BENCH_MEMORY_TRIGGERS=0)"
if ((mem_triggers > 0)); then
  note "memory: $mem_triggers triggers x 2 methods into Postgres, then a fresh hookgate"
  stop_pid "$hg_pid"
  forget_pid "$hg_pid"
  phc=$(psql -X -w -Atq "$db_url" -c \
    "SELECT password_hash FROM webhook_auth_methods WHERE auth_type = 'basic' LIMIT 1")
  psql -X -w -q -v ON_ERROR_STOP=1 -v n="$mem_triggers" -v phc="$phc" "$db_url" \
    -f "$here/memory.sql" >/dev/null
  psql -X -w -Atq "$db_url" -c "SELECT id FROM bench_memory_triggers" >"$run_dir/ids.txt"
  # Long TTLs: nothing may expire while the cache fills.
  write_config "$run_dir/hookgate-memory.toml" \
    "trigger_ttl_s = 3600
stale_for_s = 3600"
  start_hookgate "$run_dir/hookgate-memory.toml" "$run_dir/hookgate-memory.log"
  rss() { awk '/^VmRSS/ { print $2 }' "/proc/$hg_pid/status"; }
  rss_before=$(rss)
  warm=$(timeout 400 taskset -c "$load_cpu" "$bin/examples/bench_client" warm "$hg" \
    "$run_dir/ids.txt" 16 300)
  sleep 1
  rss_after=$(rss)
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$hg_pid/status")
  misses=$(curl -fsS --max-time 5 "http://127.0.0.1:$admin_port/metrics" |
    awk '/^hookgate_cache_lookups_total/ && /cache="trigger"/ && /result="miss"/ { print $NF }')
  mem_line=$(awk -v b="$rss_before" -v a="$rss_after" -v h="$hwm" -v n="$mem_triggers" \
    -v w="$warm" -v m="${misses:-?}" 'BEGIN {
      printf "VmRSS %.1f MiB after warming (%.1f MiB at start, peak %.1f MiB); %.0f bytes per " \
        "trigger; warm-up: %s; trigger cache misses %s\n",
        a / 1024, b / 1024, h / 1024, (a - b) * 1024 / n, w, m }')
fi

# ---------------------------------------------------------------- report
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan";
  else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { # KIND SCENARIO COLUMN: median over rounds
  awk -F'\t' -v k="$1" -v n="$2" -v c="$3" '$1 == k && $3 == n { print $c }' "$results" |
    median
}
sum_col() { awk -F'\t' -v k="$1" -v n="$2" -v c="$3" '$1 == k && $3 == n { s += $c }
  END { print s + 0 }' "$results"; }

report="$run_dir/report.txt"
{
  echo "hookgate load benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rounds=$rounds x ${seconds}s, $conns connections; servers on core $proxy_cpu," \
    "wrk on core $load_cpu; medians over rounds"
  echo
  direct_rps=$(col load direct 4)
  nginx_rps=$(col load nginx 4)
  printf '%-10s %9s %8s %8s %10s %10s %8s %8s %7s\n' scenario "req/s" "p50 ms" "p99 ms" \
    "proxy µs" "upstr µs" "÷direct" "÷nginx" errors
  for name in "${steady[@]}"; do
    rps=$(col load "$name" 4)
    awk -v n="$name" -v rps="$rps" -v p50="$(col load "$name" 5)" \
      -v p99="$(col load "$name" 6)" -v cpu="$(col load "$name" 7)" \
      -v up="$(col load "$name" 8)" -v d="$direct_rps" -v x="$nginx_rps" \
      -v err=$(($(sum_col load "$name" 9) + $(sum_col load "$name" 10))) \
      'BEGIN { printf "%-10s %9.0f %8.3f %8.3f %10s %10.1f %8.2f %8.2f %7d\n", n, rps,
               p50 / 1000, p99 / 1000, (cpu < 0 ? "-" : sprintf("%.1f", cpu)), up,
               rps / d, rps / x, err }'
  done
  echo
  echo "one connection (wrk -c1 -t1): latency added to direct"
  printf '%-10s %9s %8s %8s %12s %12s\n' scenario "req/s" "p50 ms" "p99 ms" "+p50 µs" "+p99 µs"
  d50=$(col c1 direct 5)
  d99=$(col c1 direct 6)
  for name in "${latency[@]}"; do
    awk -v n="$name" -v rps="$(col c1 "$name" 4)" -v p50="$(col c1 "$name" 5)" \
      -v p99="$(col c1 "$name" 6)" -v d50="$d50" -v d99="$d99" \
      'BEGIN { printf "%-10s %9.0f %8.3f %8.3f %12.0f %12.0f\n", n, rps, p50 / 1000,
               p99 / 1000, p50 - d50, p99 - d99 }'
  done
  echo
  echo "flood: good traffic (API key + cached Basic, $half connections each), alone and" \
    "beside $flood_conns connections of wrong passwords"
  calm=$(col calm good 4)
  flooded=$(col flood good 4)
  awk -v c="$calm" -v f="$flooded" -v cp="$(col calm good 6)" -v fp="$(col flood good 6)" \
    -v ce="$(sum_col calm good 9)" -v fe="$(sum_col flood good 9)" \
    'BEGIN { printf "  alone:      %9.0f req/s, p99 %.3f ms, errors %d\n", c, cp / 1000, ce
             printf "  with flood: %9.0f req/s, p99 %.3f ms, errors %d  (%.0f %% kept)\n",
               f, fp / 1000, fe, (c > 0 ? 100 * f / c : 0) }'
  echo "  flood answers: $flood_answers; argon2 verifications $flood_argon2," \
    "refused for want of a slot $flood_rejected"
  echo "  (argon2 verifications during the steady scenarios: $argon2_steady)"
  echo
  echo "cold stampede: $stampede_clients clients, one new Basic credential on a new trigger"
  for line in "${stampede_lines[@]}"; do echo "  $line"; done
  echo
  echo "memory, $mem_triggers triggers x 2 methods cached: $mem_line"
  echo
  echo "targets (see benches/README.md):"
  api_rps=$(col load hg-api 4)
  awk -v api="$api_rps" -v ng="$nginx_rps" -v cpu="$(col load hg-api 7)" \
    -v basic="$(col load hg-basic 4)" \
    -v a50="$(awk -v a="$(col c1 hg-api 5)" -v d="$d50" 'BEGIN { print a - d }')" \
    -v a99="$(awk -v a="$(col c1 hg-api 6)" -v d="$d99" 'BEGIN { print a - d }')" \
    -v calm="$calm" -v fl="$flooded" -v fp="$(col flood good 6)" \
    -v slow="$(printf '%s\n' "${stampede_lines[@]}" | sed -n 's/.*slowest_ms=\([0-9.]*\).*/\1/p' |
      sort -g | tail -n 1)" \
    -v all_ok="$(printf '%s\n' "${stampede_lines[@]}" |
      awk -v n="$stampede_clients" '$2 != "statuses=200:" n { bad = 1 } END { print !bad }')" \
    -v rss="${rss_after:-0}" -v mt="$mem_triggers" \
    'function v(ok) { return ok ? "met   " : "MISSED" }
     BEGIN {
       printf "  %s API key req/s >= 1.05 x nginx proxy_pass: %.2f x\n", v(api >= 1.05 * ng),
         api / ng
       printf "  %s API key proxy CPU <= 14 µs/req: %.1f µs\n", v(cpu <= 14), cpu
       printf "  %s cached Basic req/s >= 0.95 x API key: %.2f x\n", v(basic >= 0.95 * api),
         basic / api
       printf "  %s one connection added p50 <= 30 µs: %.0f µs\n", v(a50 <= 30), a50
       printf "  %s one connection added p99 <= 60 µs: %.0f µs%s\n", v(a99 <= 60), a99,
         (a99 < 0 ? " (below direct: the tails are noise)" : "")
       printf "  %s cold stampede all answered 200 within 50 ms: slowest %.1f ms%s\n",
         v(all_ok && slow <= 50), slow, (all_ok ? "" : " (not all 200)")
       printf "  %s flood keeps >= 90 %% of good throughput: %.0f %%\n", v(fl >= 0.9 * calm),
         (calm > 0 ? 100 * fl / calm : 0)
       printf "  %s flood good p99 <= 10 ms: %.3f ms\n", v(fp <= 10000), fp / 1000
       if (mt >= 100000)
         printf "  %s 100k triggers <= 200 MB RSS: %.1f MB (%.1f MiB)\n",
           v(rss * 1024 <= 200e6), rss * 1024 / 1e6, rss / 1024
       else
         printf "  -      100k triggers <= 200 MB RSS: not measured at %d triggers\n", mt
     }'
} | tee "$report"
note "report and raw results: $run_dir"
