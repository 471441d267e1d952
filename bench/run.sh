#!/usr/bin/env bash
# Benchmarks on loopback with wrk: GET config, GET auth/session (app token)
# and POST auth/login, against a release build on SQLite (or PostgreSQL with
# BENCH_DATABASE_URL); then GET auth/session with a JWT access token
# (`Authorization: Bearer`, RS256) on a second server with the JWT strategy.
# In the same run: the ceiling, a bare hyper server answering a fixed JSON
# body (bench/ceiling.rs), dropshot alone answering the same body
# (bench/dropshot_floor.rs: what dropshot's own per-request work costs),
# and the hashing pool's own rate of password verifications
# (bench/hashrate.rs); every figure is also printed as a share
# of its ceiling, since absolute numbers drift on a shared VM, and with the
# server's CPU time per request, which drifts less.
# The session check runs twice: as served (from the exact session cache) and
# on a second server with the cache off (`session_uncached`: one indexed read
# per check), so that the database path stays measured.
# SCALE_ROWS=1000000 adds that many users with live sessions after the first
# session runs (bench/seed.py) and runs both session checks again: their
# shares of the runs with few rows are the scale figures.
# Bounded: each run lasts DURATION (default 10s).
#   bash bench/run.sh            # results in $OUT (default /tmp/allauth-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/allauth-server-target}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
OUT="${OUT:-/tmp/allauth-bench}"
PORT="${PORT:-8787}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
# The server alone, as `cargo run --release` builds it: built together with
# the examples, cargo would unify the dev-dependencies' features into its
# dependencies, which changes their symbols' hashes (bench/hot-text.ld
# names the plain build's).
cargo build --release --bin allauth-server --quiet
cargo build --release --example ceiling --example dropshot_floor --example hashrate --quiet
BIN="$CARGO_TARGET_DIR/release/allauth-server"
CEILING="$CARGO_TARGET_DIR/release/examples/ceiling"
FLOOR="$CARGO_TARGET_DIR/release/examples/dropshot_floor"
HASHRATE="$CARGO_TARGET_DIR/release/examples/hashrate"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
CEILING_SERVER=""
STARTED_PIDS=""
trap 'kill $STARTED_PIDS $CEILING_SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
source bench/config.sh
bench_config "$PORT" "$WORK" "${BENCH_DATABASE_URL:-sqlite://$WORK/bench.sqlite3}" > "$WORK/bench.toml"
# Starts the server of config NAME on PORT, signs up EMAIL; sets
# BASE, STARTED (the PID) and SIGNED_UP (`meta.FIELD` of the answer).
start_and_sign_up() { # NAME PORT FIELD EMAIL
  "$BIN" serve --config "$WORK/$1.toml" > "$OUT/server-$1.log" 2>&1 &
  STARTED=$!
  STARTED_PIDS="$STARTED_PIDS $STARTED"
  BASE="http://127.0.0.1:$2/_allauth/app/v1"
  for _ in $(seq 50); do curl -sf "$BASE/config" >/dev/null && break; sleep 0.2; done
  SIGNED_UP=$(curl -s -X POST "$BASE/auth/signup" -d "{\"email\":\"$4\",\"password\":\"correct horse battery\"}" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['meta']['$3'])")
}
# Start-up: from exec to the first answer of GET config, on a fresh database
# (migrations included). The port is tried every millisecond with bash's
# /dev/tcp rather than a curl process per try, whose own start-up would be
# counted; the answer must be a 200. The same fresh server's resident set,
# 0.2 s after its first answer, is the idle RSS figure.
startup_ms() { # CONFIG PORT
  local t0 t1 pid status
  t0=$(date +%s%N)
  "$BIN" serve --config "$1" > "$OUT/server-startup.log" 2>&1 &
  pid=$!
  until exec 3<>"/dev/tcp/127.0.0.1/$2"; do sleep 0.001; done 2>/dev/null
  printf 'GET /_allauth/app/v1/config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
  read -r status <&3
  t1=$(date +%s%N)
  exec 3<&-
  # The resident set of the fresh server, one answer given (file pages
  # included: the executable's code and the shared libraries).
  sleep 0.2
  awk '/^VmRSS/{printf "%.1f\n", $2 / 1024}' "/proc/$pid/status" > "$WORK/idle_rss"
  kill $pid; wait $pid 2>/dev/null || true
  [[ $status == "HTTP/1.1 200"* ]] || { echo "start-up: unexpected answer: $status" >&2; exit 1; }
  echo $(((t1 - t0) / 1000000))
}
sed -e "s|$WORK/bench.sqlite3|$WORK/startup.sqlite3|" "$WORK/bench.toml" > "$WORK/startup.toml"
STARTUP_MS=$(startup_ms "$WORK/startup.toml" "$PORT")
IDLE_RSS_MB=$(cat "$WORK/idle_rss")
echo "== startup: ${STARTUP_MS} ms to the first answer (fresh database), then ${IDLE_RSS_MB} MB resident" | tee "$OUT/startup.txt"
# How much of bench/hot-text.ld still names this executable's functions
# exactly (the rest is grouped by pattern, less tightly): a low share means
# the list is due for `bash bench/hot_text.sh`.
if command -v nm >/dev/null; then
  sed -n 's/^    \*(\.text\.\([^*]*\))$/\1/p' bench/hot-text.ld > "$WORK/hot-names"
  HOT_FOUND=$(nm "$BIN" | awk '{print $NF}' | grep -cxF -f "$WORK/hot-names" || true)
  echo "== hot text: $HOT_FOUND of $(wc -l < "$WORK/hot-names") listed functions found by name" | tee -a "$OUT/startup.txt"
fi
start_and_sign_up bench "$PORT" session_token bench@example.com
export TOKEN=$SIGNED_UP
# The CPU time (user and system, in clock ticks) process PID has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run NAME WRK-ARGS...: one wrk run against the server of PID $SERVED
# (set before each run); besides wrk's figures it records that process's
# CPU time per answered request, which drifts less than req/s when other
# tenants of the VM take the cores.
run() {
  local name=$1; shift
  local before after
  echo "== $name" | tee "$OUT/$name.txt"
  before=$(cpu_ticks "$SERVED")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | tee -a "$OUT/$name.txt"
  after=$(cpu_ticks "$SERVED")
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '/requests in/{n=$1}
    END{printf "server CPU per request: %.1f us\n", t * 1e6 / hz / n}' "$OUT/$name.txt" | tee -a "$OUT/$name.txt"
}
CEILING_PORT=$((PORT + 2))
# reference NAME PROGRAM PATH: runs a reference server on CEILING_PORT and
# measures GET PATH on it.
reference() {
  "$2" "127.0.0.1:$CEILING_PORT" > "$OUT/$1.log" 2>&1 &
  CEILING_SERVER=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$CEILING_PORT$3" >/dev/null && break; sleep 0.1; done
  SERVED=$CEILING_SERVER
  run "$1" "http://127.0.0.1:$CEILING_PORT$3"
  kill $CEILING_SERVER; CEILING_SERVER=""
}
reference ceiling "$CEILING" /
# dropshot alone: one endpoint answering the same fixed body.
reference dropshot_floor "$FLOOR" /_allauth/app/v1/config
SERVED=$STARTED
run config "$BASE/config"
run session -s bench/session.lua "$BASE/auth/session"
# The same check with the session cache off, on the same database.
UNCACHED_PORT=$((PORT + 3))
sed -e "s|127.0.0.1:$PORT|127.0.0.1:$UNCACHED_PORT|" "$WORK/bench.toml" > "$WORK/bench-uncached.toml"
sed -i -e "s|^\[database\]|[database]\nsession_cache_entries = 0|" "$WORK/bench-uncached.toml"
"$BIN" serve --config "$WORK/bench-uncached.toml" > "$OUT/server-bench-uncached.log" 2>&1 &
UNCACHED=$!
STARTED_PIDS="$STARTED_PIDS $UNCACHED"
UNCACHED_BASE="http://127.0.0.1:$UNCACHED_PORT/_allauth/app/v1"
for _ in $(seq 50); do curl -sf "$UNCACHED_BASE/config" >/dev/null && break; sleep 0.2; done
SERVED=$UNCACHED
run session_uncached -s bench/session.lua "$UNCACHED_BASE/auth/session"
SERVED=$STARTED
SCALE_ROWS="${SCALE_ROWS:-0}"
if ((SCALE_ROWS > 0)); then
  python3 bench/seed.py "${BENCH_DATABASE_URL:-sqlite://$WORK/bench.sqlite3}" "$SCALE_ROWS" | tee "$OUT/seed.txt"
  run session_scaled -s bench/session.lua "$BASE/auth/session"
  SERVED=$UNCACHED
  run session_uncached_scaled -s bench/session.lua "$UNCACHED_BASE/auth/session"
  SERVED=$STARTED
fi
run login -s bench/login.lua "$BASE/auth/login"
"$HASHRATE" "${DURATION%s}" | tee "$OUT/hashrate.txt"

# The JWT strategy: the same database settings, RS256 with a fresh key.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt.pem" 2>/dev/null
JWT_PORT=$((PORT + 1))
sed -e "s|127.0.0.1:$PORT|127.0.0.1:$JWT_PORT|" -e "s|$WORK/bench.sqlite3|$WORK/bench-jwt.sqlite3|" \
  "$WORK/bench.toml" > "$WORK/bench-jwt.toml"
cat >> "$WORK/bench-jwt.toml" <<TOML
[headless]
token_strategy = "jwt"
jwt_private_key_file = "$WORK/jwt.pem"
jwt_access_token_expires_in = 3600
TOML
# (its own address: with BENCH_DATABASE_URL both servers share the database)
start_and_sign_up bench-jwt "$JWT_PORT" access_token bench-jwt@example.com
SERVED=$STARTED
run session_jwt -H "Authorization: Bearer $SIGNED_UP" "$BASE/auth/session"
{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
  rate() { awk '/Requests\/sec/{print $2}' "$OUT/$1.txt"; }
  ceiling=$(rate ceiling)
  hashes=$(awk '/verifications\/s/{print $2}' "$OUT/hashrate.txt")
  echo "ceiling (bare hyper, fixed JSON): $ceiling req/s; hashing pool alone: $hashes verifications/s"
  echo "start-up: $STARTUP_MS ms to the first answer; idle RSS after it: $IDLE_RSS_MB MB"
  if [[ -f "$OUT/session_scaled.txt" && "$SCALE_ROWS" -gt 0 ]]; then
    for name in session session_uncached; do
      printf '%s with %s more users and sessions: %s req/s (%s of the run with few rows), p99 %s\n' "$name" "$SCALE_ROWS" \
        "$(rate "${name}_scaled")" \
        "$(awk -v a="$(rate "${name}_scaled")" -v b="$(rate "$name")" 'BEGIN{printf "%.0f%%", 100*a/b}')" \
        "$(awk '$1=="99%"{print $2}' "$OUT/${name}_scaled.txt")"
    done
  fi
  cpu() { awk '/server CPU per request/{print $5}' "$OUT/$1.txt"; }
  echo "ceiling's CPU per request: $(cpu ceiling) us"
  for name in dropshot_floor config session session_uncached login session_jwt; do
    if [[ $name == login ]]; then base=$hashes; of="of the pool"; else base=$ceiling; of="of the ceiling"; fi
    printf '%s: %s req/s (%s %s), p50 %s, p99 %s; server CPU %s us per request%s\n' "$name" "$(rate "$name")" \
      "$(awk -v a="$(rate "$name")" -v b="$base" 'BEGIN{printf "%.0f%%", 100*a/b}')" "$of" \
      "$(awk '$1=="50%"{print $2}' "$OUT/$name.txt")" \
      "$(awk '$1=="99%"{print $2}' "$OUT/$name.txt")" \
      "$(cpu "$name")" \
      "$([[ $name == login ]] || awk -v a="$(cpu ceiling)" -v b="$(cpu "$name")" 'BEGIN{printf " (the ceiling'"'"'s is %.0f%% of it)", 100*a/b}')"
  done
} | tee "$OUT/summary.txt"
