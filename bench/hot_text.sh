#!/usr/bin/env bash
# Regenerates bench/hot-text.ld, the list of functions the linker puts
# together at the front of the executable's code (build.rs passes it to
# release links). A server runs under valgrind's callgrind, which lists
# every function executed: first its start-up and first answer, then the
# usual calls (signup, login, session checks, logout, the browser's config
# and session, a bad body, a password reset request), on SQLite with
# session tokens, on SQLite with JWTs, and on PostgreSQL when
# BENCH_DATABASE_URL names a database (it is emptied). Start-up functions
# come first, so a fresh server's resident code is one block instead of
# pages spread over the whole executable (docs/performance.md).
#
# Each function is listed by its exact name, then again as a pattern that
# survives a new hash (a new compiler, updated dependencies): the hash of a
# Rust symbol, the crate disambiguators of std's and LLVM's numeric suffixes
# become `*`. A pattern also matches the other instances of a generic
# function, so it comes after every exact name. Run this after changes to
# start-up or to dependencies; `bench/run.sh` prints how many exact names
# the executable still has, and its idle RSS.
#   bash bench/hot_text.sh        # needs valgrind (apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/allauth-server-target}"
command -v valgrind >/dev/null || { echo "hot_text.sh: needs valgrind" >&2; exit 1; }
# BIN=path profiles that executable instead of building.
if [[ -z ${BIN:-} ]]; then
  cargo build --release --bin allauth-server --quiet
  BIN="$CARGO_TARGET_DIR/release/allauth-server"
fi
PORT="${PORT:-8797}"
WORK="$(mktemp -d)"
trap 'pkill -f "$WORK" 2>/dev/null || true; [[ -n ${KEEP:-} ]] || rm -rf "$WORK"' EXIT
B="http://127.0.0.1:$PORT/_allauth"

# The usual calls of one client session.
calls() {
  local signup token
  signup=$(curl -s -X POST "$B/app/v1/auth/signup" -H 'content-type: application/json' \
    -d '{"email":"hot@example.com","password":"correct horse battery"}')
  token=$(python3 -c "import json,sys; m=json.loads(sys.argv[1])['meta']; print(m.get('access_token') or m['session_token'])" "$signup")
  local auth=(-H "X-Session-Token: $token")
  [[ $1 == jwt ]] && auth=(-H "Authorization: Bearer $token")
  for _ in 1 2 3; do curl -s "$B/app/v1/auth/session" "${auth[@]}" >/dev/null; done
  curl -s -X POST "$B/app/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"hot@example.com","password":"wrong horse battery"}' >/dev/null
  curl -s -X POST "$B/app/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"hot@example.com","password":"correct horse battery"}' >/dev/null
  curl -s "$B/app/v1/account/email" "${auth[@]}" >/dev/null
  curl -s "$B/app/v1/auth/sessions" "${auth[@]}" >/dev/null
  curl -s -c "$WORK/jar" "$B/browser/v1/config" >/dev/null
  curl -s -b "$WORK/jar" -c "$WORK/jar" "$B/browser/v1/auth/session" >/dev/null
  curl -s -X POST "$B/app/v1/auth/login" -H 'content-type: application/json' -d '{"email":' >/dev/null
  curl -s -X POST "$B/app/v1/auth/password/request" -H 'content-type: application/json' \
    -d '{"email":"hot@example.com"}' >/dev/null
  curl -s -X DELETE "$B/app/v1/auth/session" "${auth[@]}" >/dev/null
}

# Runs the server of config $1 under callgrind: dump 1 is start-up and the
# first answer, the rest the calls (strategy $2).
profile() { # NAME STRATEGY
  valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$WORK/$1.%p" "$BIN" serve --config "$WORK/$1.toml" \
    > "$WORK/$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do curl -sf "$B/app/v1/config" >/dev/null && break; sleep 0.1; done
  # What a server does in the background right after start (the pool
  # opening its connections, the senders' first rounds) belongs to
  # start-up; under valgrind it takes seconds.
  sleep 5
  callgrind_control -d "$pid" >/dev/null 2>&1
  calls "$2"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  mv "$WORK/$1.$pid.1" "$WORK/$1.startup"
  cat "$WORK/$1.$pid".* "$WORK/$1.$pid" > "$WORK/$1.calls"
}

source bench/config.sh
config() { # NAME URL [EXTRA]
  bench_config "$PORT" "$WORK" "$2" > "$WORK/$1.toml"
  printf '%s\n' "${3:-}" >> "$WORK/$1.toml"
}

config sqlite "sqlite://$WORK/sqlite.sqlite3"
profile sqlite session
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt.pem" 2>/dev/null
config jwt "sqlite://$WORK/jwt.sqlite3" "[headless]
token_strategy = \"jwt\"
jwt_private_key_file = \"$WORK/jwt.pem\""
profile jwt jwt
RUNS=(sqlite jwt)
if [[ -n ${BENCH_DATABASE_URL:-} ]]; then
  PGOPTIONS='-c client_min_messages=warning' psql "$BENCH_DATABASE_URL" -qc 'drop schema public cascade; create schema public' >/dev/null
  config postgres "$BENCH_DATABASE_URL"
  profile postgres session
  RUNS+=(postgres)
fi

files=()
for run in "${RUNS[@]}"; do files+=("$WORK/$run.startup"); done
for run in "${RUNS[@]}"; do files+=("$WORK/$run.calls"); done
python3 - "$BIN" "${files[@]}" > bench/hot-text.ld <<'PY'
import re, subprocess, sys
binary, files = sys.argv[1], sys.argv[2:]
# callgrind sometimes names the object of the executable's functions "???":
# a function counts when the executable defines a symbol of its name.
defined = {line.split()[-1] for line in subprocess.run(
    ["nm", "--defined-only", binary], capture_output=True, text=True, check=True
).stdout.splitlines() if line.strip()}
exact, patterns = {}, {}
for path in files:
    ob = None
    for line in open(path):
        if line.startswith("ob="):
            ob = line[3:].strip()
        elif line.startswith("fn=") and ob in (binary, "???"):
            # callgrind marks recursion levels with 'N; "(below main)" and
            # addresses without a symbol are not functions of the file.
            name = re.sub(r"'[0-9]+$", "", line[3:].strip())
            if name not in defined or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.$]*", name):
                continue
            exact.setdefault(name, None)
            pattern = re.sub(r"17h[0-9a-f]{16}E$", "17h*E", name)  # Rust legacy hash
            pattern = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", pattern)  # v0 crate disambiguator
            pattern = re.sub(r"\.(llvm\.)?[0-9]+$", "*", pattern)  # LLVM's local suffix
            if pattern != name:
                patterns.setdefault(pattern, None)
print("/* Generated by bench/hot_text.sh: the functions a server runs at start-up")
print("   and in its usual calls, in that order, placed before the rest of the code")
print("   (build.rs passes this file to release links). The exact names first; then")
print("   the same names with their hashes as wildcards, which still group a")
print("   function after its hash changed (a new compiler, updated dependencies),")
print("   with every other instance of a generic one. Regenerate, do not edit. */")
print("SECTIONS {")
print("  .text.hot : {")
for name in exact:
    print(f"    *(.text.{name})")
for pattern in patterns:
    print(f"    *(.text.{pattern})")
print("  }")
print("} INSERT BEFORE .text;")
PY
echo "bench/hot-text.ld: $(grep -c '^    \*(\.text\.[^*]*)$' bench/hot-text.ld) names, $(grep -c '^    \*(\.text\..*\*.*)$' bench/hot-text.ld) patterns"
