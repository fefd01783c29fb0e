#!/usr/bin/env bash
# Side by side: our tickit-sync against the original tickit-sync 0.2.1 under the same loads,
# made by the load generator examples/loadgen (closed loop, every answer checked). Each
# scenario runs on a FRESH server of each kind (its own temporary directory), ours first,
# then the original, one at a time on loopback; then a table: syncs/s, answer bytes per
# sync, latency p50/p99/max, the server's memory (VmRSS) idle and at its peak, and
# ours/original (syncs/s; for a full sync its time, p50).
#
# Scenarios (see examples/loadgen): poll (16 devices, nothing to upload), push (16 devices,
# 5 new tasks per sync; for ours each device has its own account, so this is the write path
# alone; the original has no accounts, so its devices also receive each other's), feed with 2, 16 and 64 devices (1 new task per sync, every device
# must receive every other's), households (1,000 accounts of 3 devices; ours only, the
# original has no accounts), full (a full sync of 10,000 tasks, plain and gzip; 100,000 too
# with --big).
#
# Usage (from the repo root): bash tests/bench/side-by-side.sh [OPTIONS]
#   --seconds N      timed phase of each scenario                                 [10]
#   --smoke          1 s per scenario, ours only, a full sync of 1,000 tasks; exits non-zero
#                    on any failure (the CI smoke test)
#   --big            also a full sync of 100,000 tasks
#   --only SCENARIO  only poll, push, feed, households or full (all its variants)
# Environment:
#   TICKIT_SYNC_BIN  our server binary (then only the load generator is built)
#   ORIGINAL_ROOT    where tickit-sync 0.2.1 is (or gets) installed [~/.cache/tickit-sync-ci/original]
#   RESULTS_DIR      where the results file (and its .jsonl) is written [${TMPDIR:-/tmp}]
#   KEEP_TMP=1       keep the servers' directories (kept anyway when a run of ours failed)
#
# Exits non-zero when a run against ours failed (a non-200, an unparseable answer, a failed
# check, a timeout). Failed checks of the original are findings, shown in the table's notes.
set -euo pipefail

cd "$(dirname "$0")/../.."

WAIT_SECS=20 # how long a server gets to come up

log() { printf '%s\n' "$*"; }
die() { printf 'side-by-side: FATAL: %s\n' "$*" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../client-tools.sh
. tests/client-tools.sh # ensure_original, ORIGINAL_VERSION, ORIGINAL_ROOT, ORIGINAL
# shellcheck source-path=SCRIPTDIR source=servers.sh
. tests/bench/servers.sh # build_binaries, tree_state, start_ours, wait_ready, stop_server

# ---------------------------------------------------------------------------------------
# Options.
# ---------------------------------------------------------------------------------------
SECS=10
SMOKE=0
BIG=0
ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) [ $# -ge 2 ] || die "--seconds needs a value"; SECS=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --big) BIG=1; shift ;;
    --only) [ $# -ge 2 ] || die "--only needs a scenario"; ONLY=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a whole number of seconds, at least 1"
case ${ONLY:-all} in all | poll | push | feed | households | full) ;;
  *) die "--only: unknown scenario $ONLY (poll, push, feed, households or full)" ;; esac

# The runs, as SCENARIO:PARAMETER (devices for feed, tasks for full).
RUNS=(poll push feed:2 feed:16 feed:64 households full:10000)
SERVERS=(ours original)
if [ "$SMOKE" = 1 ]; then
  SECS=1
  RUNS=(poll push feed:2 feed:16 feed:64 households full:1000)
  SERVERS=(ours)
elif [ "$BIG" = 1 ]; then
  RUNS+=(full:100000)
fi
if [ -n "$ONLY" ]; then
  selected=()
  for run in "${RUNS[@]}"; do
    if [ "${run%%:*}" = "$ONLY" ]; then selected+=("$run"); fi
  done
  RUNS=("${selected[@]}")
fi

# ---------------------------------------------------------------------------------------
# Output: everything also goes to the results file; the result lines to a .jsonl beside it.
# ---------------------------------------------------------------------------------------
RESULTS_DIR=${RESULTS_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$RESULTS_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$RESULTS_DIR/side-by-side-$STAMP.txt"
JSONL="$RESULTS_DIR/side-by-side-$STAMP.jsonl"
: >"$JSONL"
exec > >(tee -a "$RESULTS") 2>&1
TEE_PID=$!

WORK=$(mktemp -d "${TMPDIR:-/tmp}/side-by-side.XXXXXX")
SERVER_PID=
PORT=
OURS_FAILED=0

cleanup() {
  local rc=$?
  trap - EXIT
  stop_server
  if [ "$OURS_FAILED" = 0 ] && [ "$rc" = 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    log "servers' directories (configs, logs, loadgen output) kept in $WORK"
  fi
  log "results: $RESULTS (result lines: $JSONL)"
  exec >&- 2>&-
  wait "$TEE_PID" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# 1. The binaries: ours and the load generator (release builds), the original.
# ---------------------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"
build_binaries

if [[ " ${SERVERS[*]} " == *" original "* ]]; then
  ensure_original
fi
# households keeps up to 3,000 connections open at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------------------
# 2. The servers, each fresh in its own directory: start_ours DIR ACCOUNTS (servers.sh) and
#    start_original DIR set PORT and SERVER_PID and write DIR/tokens.txt.
# ---------------------------------------------------------------------------------------
# start_original DIR: set up with its own commands (init, token), then serve.
start_original() {
  local dir=$1 token
  PORT=$(free_port)
  (cd "$dir" && timeout 60 "$ORIGINAL" init --output config.toml >init.log 2>&1) \
    || { log "  original: init failed"; cat "$dir/init.log"; return 1; }
  sed -i "s/^bind = .*/bind = \"127.0.0.1\"/; s/^port = .*/port = $PORT/" "$dir/config.toml"
  token=$(cd "$dir" && timeout 60 "$ORIGINAL" token --name bench --config config.toml \
    | sed -n 's/^Token: \(tks_[A-Za-z0-9_-]*\).*/\1/p')
  [ -n "$token" ] || { log "  original: its token command printed no 'Token: tks_...' line"; return 1; }
  printf '%s\n' "$token" >"$dir/tokens.txt"
  (cd "$dir" && exec env -u TICKIT_SYNC_CONFIG -u TICKIT_SYNC_HOST -u TICKIT_SYNC_PORT \
    -u TICKIT_SYNC_DB -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID RUST_LOG=info \
    "$ORIGINAL" serve --config config.toml) >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$dir/server.log" "listening on http://127.0.0.1:$PORT"
}

# ---------------------------------------------------------------------------------------
# 3. One run: a fresh server of one kind, the load generator against it (bounded in time),
#    the server stopped; its result line goes to the .jsonl as {run, server, rc, result}.
# ---------------------------------------------------------------------------------------
# time_limit RUN: seconds the load generator gets, all of its phases included.
time_limit() {
  case $1 in
    full:100000) echo 1800 ;;
    full:*) echo 600 ;;
    households) echo $((SECS + 300)) ;;
    *) echo $((SECS + 120)) ;;
  esac
}

# record RUN SERVER RC RESULT_FILE: appends the run's line to the .jsonl.
record() {
  python3 - "$@" >>"$JSONL" <<'PY'
import json, sys
run, server, rc, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = [l for l in open(path, encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
try:
    result = json.loads(lines[-1])
except (IndexError, ValueError):
    result = {"ok": False, "error": "the load generator printed no result line"
              + (" (timed out)" if rc in (124, 137) else f" (exit {rc})")}
if rc != 0 and result.get("ok", False):
    result["ok"] = False
    result["error"] = f"the load generator exited {rc}"
print(json.dumps({"run": run, "server": server, "rc": rc, "result": result}))
PY
}

run_one() { # RUN SERVER
  local run=$1 server=$2 scenario=${1%%:*} param='' dir rc=0 limit
  [[ $run == *:* ]] && param=${run#*:}
  dir="$WORK/${run/:/-}-$server"
  mkdir -p "$dir"
  local -a args=(--scenario "$scenario" --seconds "$SECS" --label "$server")
  case $scenario in
    feed) args+=(--devices "$param") ;;
    full) args+=(--tasks "$param") ;;
  esac
  [ "$server" = ours ] || args+=(--original)
  log "--- $run on $server"
  local accounts=0
  case $scenario in
    households) accounts=1000 ;;
    push) accounts=16 ;; # one account per device: the write path alone
  esac
  if ! { if [ "$server" = ours ]; then start_ours "$dir" "$accounts"; else start_original "$dir"; fi; }; then
    stop_server
    printf '{"ok": false, "error": "the server did not start"}\n' >"$dir/result.json"
    record "$run" "$server" 1 "$dir/result.json"
    if [ "$server" = ours ]; then OURS_FAILED=1; fi
    return 0
  fi
  limit=$(time_limit "$run")
  timeout -k 10 "$limit" "$LOADGEN" --url "http://127.0.0.1:$PORT" --tokens-file "$dir/tokens.txt" \
    --pid "$SERVER_PID" "${args[@]}" >"$dir/result.json" 2>"$dir/loadgen.log" || rc=$?
  stop_server
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then log "  the load generator was stopped after $limit s"; fi
  if [ "$rc" != 0 ]; then
    log "  FAILED (exit $rc), the load generator said:"
    tail -n 8 "$dir/loadgen.log" | cut -c1-400 | sed 's/^/  | /'
    if [ "$server" = ours ]; then OURS_FAILED=1; fi
  fi
  record "$run" "$server" "$rc" "$dir/result.json"
}

# ---------------------------------------------------------------------------------------
# 4. The runs and the table.
# ---------------------------------------------------------------------------------------
log "side-by-side benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -sr)"
if [ -n "${TICKIT_SYNC_BIN:-}" ]; then
  log "ours: $OURS"
else
  log "ours: $OURS, built from $(tree_state)"
fi
[[ " ${SERVERS[*]} " == *" original "* ]] && log "original: $ORIGINAL ($("$ORIGINAL" --version))"
log "timed phase: $SECS s per scenario; servers: ${SERVERS[*]}; runs: ${RUNS[*]}"
log ""

for run in "${RUNS[@]}"; do
  for server in "${SERVERS[@]}"; do
    if [ "$server" = original ] && [ "$run" = households ]; then
      log "--- $run on original: cannot run (no accounts)"
      continue
    fi
    run_one "$run" "$server"
  done
done

log ""
python3 - "$JSONL" "${SERVERS[*]}" <<'PY'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
servers = sys.argv[2].split()
runs = list(dict.fromkeys(r["run"] for r in rows))
by = {(r["run"], r["server"]): r["result"] for r in rows}

def name(run):
    scenario, _, param = run.partition(":")
    return {"poll": "poll 16", "push": "push 16", "households": "households 1000x3"}.get(
        scenario, f"{scenario} {param}")

def kb(v):
    return f"{v / 1024:.1f} MB" if isinstance(v, (int, float)) else "-"

def num(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) else "-"

head = f"{'scenario':<18} {'server':<9} {'syncs/s':>9} {'bytes/sync':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'RSS idle':>9} {'RSS peak':>9}  ours/original"
print(head)
print("-" * len(head))
notes = []
for run in runs:
    for server in servers:
        r = by.get((run, server))
        if r is None:
            if server == "original" and run == "households":
                print(f"{name(run):<18} {server:<9} cannot run (no accounts)")
            continue
        if "syncs_per_s" not in r:
            print(f"{name(run):<18} {server:<9} FAILED: {r.get('error', '?')}")
            continue
        ratio = ""
        o = by.get((run, "original"))
        if server == "ours" and o and "syncs_per_s" in o:
            if run.startswith("full") and o.get("plain_p50_ms"):
                ratio = f"time (p50) x{r['plain_p50_ms'] / o['plain_p50_ms']:.2f}"
            elif o["syncs_per_s"]:
                ratio = f"syncs/s x{r['syncs_per_s'] / o['syncs_per_s']:.1f}"
        flag = "" if r.get("ok") else "  CHECKS FAILED"
        print(f"{name(run):<18} {server:<9} {num(r['syncs_per_s'], '9.1f')} {num(r['bytes_per_sync'], '11.0f')} "
              f"{num(r['p50_ms'], '8.2f')} {num(r['p99_ms'], '8.2f')} {num(r['max_ms'], '8.1f')} "
              f"{kb(r['rss_idle_kb']):>9} {kb(r['rss_peak_kb']):>9}  {ratio}{flag}")
        detail = []
        if run.startswith("feed"):
            detail.append(f"news {r.get('new_record_json_per_sync')} JSON bytes/sync, "
                          f"{r.get('bytes_per_new_json_byte')} answer bytes per news byte, "
                          f"{r.get('missing_deliveries')} deliveries missing")
        if run.startswith("full"):
            detail.append(f"seeded in {r.get('seed_seconds')} s; plain p50 {r.get('plain_p50_ms')} ms "
                          f"max {r.get('plain_max_ms')} ms, {r.get('plain_wire_bytes')} bytes; "
                          f"gzip asked: p50 {r.get('gzip_p50_ms')} ms max {r.get('gzip_max_ms')} ms, "
                          f"{r.get('gzip_wire_bytes')} wire / {r.get('gzip_body_bytes')} bytes "
                          f"({'gzipped' if r.get('gzip_encoded') else 'not gzipped'})")
        if run == "households":
            detail.append(f"{r.get('connections')} connections, {r.get('missing_deliveries')} deliveries "
                          f"missing, {r.get('foreign_records')} records from another household")
        for failure in r.get("failures", []):
            detail.append(f"FAILED: {failure}")
        if r.get("failed_checks", 0) > len(r.get("failures", [])):
            detail.append(f"({r['failed_checks']} failed checks in all)")
        notes += [f"{name(run)}, {server}: {d}" for d in detail]
if notes:
    print()
    print("notes:")
    for note in notes:
        print(f"  {note}")
PY

if [ "$OURS_FAILED" != 0 ]; then
  log ""
  log "side-by-side: a run against ours FAILED (see above)"
  exit 1
fi
log ""
log "side-by-side: every run against ours passed its checks"
