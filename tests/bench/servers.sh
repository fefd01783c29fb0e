# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): building our server and the load
# generator, and starting and stopping a fresh server of ours on loopback.
#
# The caller defines log and die, and WAIT_SECS (how long a server gets to come up). These
# set OURS and LOADGEN (build_binaries), PORT and SERVER_PID (start_ours), STOP_SECS
# (stop_server).

# build_binaries: release builds of the load generator and, unless TICKIT_SYNC_BIN names
# one, of our server; sets OURS and LOADGEN to their absolute paths.
build_binaries() {
  local target
  target=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  if [ -n "${TICKIT_SYNC_BIN:-}" ]; then
    cargo build --release --quiet --example loadgen || die "building the load generator failed"
    OURS=$TICKIT_SYNC_BIN
  else
    cargo build --release --quiet --bin tickit-sync --example loadgen || die "cargo build --release failed"
    OURS="$target/release/tickit-sync"
  fi
  LOADGEN="$target/release/examples/loadgen"
  [ -x "$OURS" ] || die "our server binary $OURS not found"
  [ -x "$LOADGEN" ] || die "load generator $LOADGEN not found"
  OURS=$(realpath "$OURS")
}

# tree_state: the commit the tree is at, and whether the source has uncommitted changes.
tree_state() {
  local changes
  changes=$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
  echo "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$( [ "$changes" = 0 ] \
    || echo " with uncommitted changes in $changes files")"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready LOG TEXT: the server is alive, LOG holds TEXT, and GET /health answers 200.
wait_ready() {
  local i
  for ((i = 0; i < WAIT_SECS * 10; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || { log "  the server exited:"; tail -n 20 "$1"; return 1; }
    if grep -qF "$2" "$1" 2>/dev/null \
      && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/health")" = 200 ]; then
      return 0
    fi
    sleep 0.1
  done
  log "  the server did not come up within $WAIT_SECS s:"
  tail -n 20 "$1"
  return 1
}

# random_tokens N: N random tokens, one a line.
random_tokens() {
  od -An -tx1 -v -N $((16 * $1)) /dev/urandom | tr -d ' \n' | fold -w 32 | sed 's/^/tks_/'
  echo
}

# start_ours DIR ACCOUNTS: our server, fresh in DIR with the default limits. 0 accounts is
# one token of the default account; N is N tokens, each its own account account-1..N. The
# tokens go to DIR/tokens.txt, one a line.
start_ours() {
  local dir=$1 accounts=$2 i=0 token
  PORT=$(free_port)
  printf '[server]\nbind = "127.0.0.1"\nport = %s\n[database]\npath = "tickit-sync.sqlite"\n' \
    "$PORT" >"$dir/config.toml"
  random_tokens "$(( accounts > 0 ? accounts : 1 ))" | sed '/^$/d' >"$dir/tokens.txt"
  while read -r token; do
    i=$((i + 1))
    printf '\n[[tokens]]\nname = "bench-%s"\ntoken = "%s"\n' "$i" "$token"
    [ "$accounts" = 0 ] || printf 'account = "account-%s"\n' "$i"
  done <"$dir/tokens.txt" >>"$dir/config.toml"
  (cd "$dir" && exec env -u TICKIT_SYNC_CONFIG -u TICKIT_SYNC_HOST -u TICKIT_SYNC_PORT \
    -u TICKIT_SYNC_DB -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u WATCHDOG_USEC \
    "$OURS" serve --config config.toml) >"$dir/server.out" 2>"$dir/server.log" &
  SERVER_PID=$!
  wait_ready "$dir/server.log" "listening on 127.0.0.1:$PORT"
}

# stop_server: the running server, by its pid, politely, then for good after 10 s; sets
# STOP_SECS to how long it took to exit.
stop_server() {
  STOP_SECS=
  [ -n "${SERVER_PID:-}" ] || return 0
  local started i
  started=$(date +%s.%N)
  kill "$SERVER_PID" 2>/dev/null || true
  for ((i = 0; i < 1000; i++)); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.01; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  # shellcheck disable=SC2034 # read by the caller
  STOP_SECS=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))" \
    "$started" "$(date +%s.%N)")
  SERVER_PID=
}
