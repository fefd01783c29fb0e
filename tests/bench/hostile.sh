#!/usr/bin/env bash
# Hostile load: the figures issue 11 sets targets for, measured against our release binary on
# loopback, printed as a markdown table that BENCHMARKS.md can quote.
#
# 1. Tidying, and the one writer held by one request (the load generator's tidy scenario,
#    examples/loadgen/scenario/tidy.rs). Each case runs on a FRESH server (its own temporary
#    directory, two accounts, default limits): one account is seeded with tasks, then ONE
#    request deletes the lists or tags they point at, while a device of the other account
#    syncs with nothing to upload, back to back. Cases:
#      tags 10k/2k      10,000 tasks, then 2,000 tag tombstones in one request
#      lists 20k/1k     20,000 tasks, then 1,000 list tombstones in one request
#      largest request  20,000 tasks (16 doomed tags each), then one request at the default
#                       limits: 10,000 records (max_records_per_request), 1,000 list and
#                       1,000 tag tombstones and 8,000 new tasks in those lists, each with 16
#                       of those tags, under 8 MiB (max_body_bytes)
#    The server tidies up to 2,000 stored tasks in the request and the rest between
#    requests; the deleting device syncs until it has them all, and the other account keeps
#    syncing until then. For each: the request's time until its answer began (the server
#    had applied it) and the longest wait of the other account's empty sync (targets: each
#    under 1 s); the request's time until its whole answer was read and the CPU time of the
#    server's writer thread until then (which includes the first turns of tidying), how long
#    until every task was tidied and received, the writer's CPU time for all of that, and
#    how long SIGTERM took afterwards (no targets).
# 2. Connection flood and memory: the integration tests that measure them (tests/it/
#    connections.rs, a real sync past 1,100 idle connections and 1,030 half-sent bodies;
#    tests/it/memory.rs, the server's peak and settled RSS under 30 MB bodies), built and run
#    in release; their printed figures are picked into the table. Targets: the sync under
#    1 s; peak under 128 MB; back within 10 MB of idle.
#
# Usage (from anywhere in the repo): bash tests/bench/hostile.sh [OPTIONS]
#   --smoke        tidy cases at 1/10 the sizes, no flood or memory tests (a few seconds);
#                  exits non-zero on any failure, but not on a missed target
#   --only PART    only tidy or tests
# Environment:
#   TICKIT_SYNC_BIN  our server binary for the tidy cases (the tests always run the release
#                    binary cargo builds from this tree: the test harness names it at build time)
#   KEEP_TMP=1       keep the servers' directories (kept anyway when something failed)
#
# Prints progress, then the table (figure, measured, target, met). Exits non-zero when a run
# failed (a non-200, a failed check, a test that failed or printed no figure) or, unless
# --smoke, when a figure misses its target.
set -euo pipefail

cd "$(dirname "$0")/../.."

WAIT_SECS=20     # how long a server gets to come up
TIDY_LIMIT=900   # seconds the load generator gets per tidy case, seeding included
TESTS_LIMIT=900  # seconds the release test build and run get

log() { printf '%s\n' "$*"; }
die() { printf 'hostile: FATAL: %s\n' "$*" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=servers.sh
. tests/bench/servers.sh # build_binaries, tree_state, start_ours, stop_server (STOP_SECS)

# ---------------------------------------------------------------------------------------
# Options.
# ---------------------------------------------------------------------------------------
SMOKE=0
ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) SMOKE=1; shift ;;
    --only) [ $# -ge 2 ] || die "--only needs a part (tidy or tests)"; ONLY=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case ${ONLY:-all} in all | tidy | tests) ;; *) die "--only: unknown part $ONLY (tidy or tests)" ;; esac
[ "$SMOKE" = 1 ] && [ "$ONLY" = tests ] && die "--smoke runs no tests; drop --only tests"
RUN_TIDY=0
RUN_TESTS=0
[ "${ONLY:-tidy}" = tidy ] && RUN_TIDY=1
[ "$SMOKE" = 0 ] && [ "${ONLY:-tests}" = tests ] && RUN_TESTS=1

# The tidy cases, as LABEL|LOADGEN OPTIONS.
if [ "$SMOKE" = 1 ]; then
  CASES=(
    "tags 1k/200|--tasks 1000 --tombstones 200 --deletes tags"
    "lists 2k/100|--tasks 2000 --tombstones 100 --deletes lists"
    "largest request /10|--tasks 2000 --tombstones 200 --deletes both --upload-tasks 800 --tags-per-task 16"
  )
else
  CASES=(
    "tags 10k/2k|--tasks 10000 --tombstones 2000 --deletes tags"
    "lists 20k/1k|--tasks 20000 --tombstones 1000 --deletes lists"
    "largest request|--tasks 20000 --tombstones 2000 --deletes both --upload-tasks 8000 --tags-per-task 16"
  )
fi

# ---------------------------------------------------------------------------------------
# Working directory, the server, cleanup.
# ---------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hostile.XXXXXX")
RESULTS="$WORK/results.jsonl" # one line per figure (see below)
: >"$RESULTS"
SERVER_PID=
PORT=
FAILED=0
TIDY_RUNS=0

cleanup() {
  local rc=$?
  trap - EXIT
  stop_server
  if [ "$FAILED" = 0 ] && [ "$rc" = 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    log "servers' directories, loadgen and test output kept in $WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"

# Each figure is a line of $RESULTS: {"figure", "value" (null when not measured), "unit" ("s"
# or "MB"), "target" (the bound it must stay under, in that unit, or null)}. The table
# decides whether each met its target.

# ---------------------------------------------------------------------------------------
# 1. The binaries.
# ---------------------------------------------------------------------------------------
build_binaries

log "hostile-load benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -sr)"
log "tree: $(tree_state)"
log "ours: $OURS"
log ""

# ---------------------------------------------------------------------------------------
# 2. The tidy cases.
# ---------------------------------------------------------------------------------------
tidy_case() { # LABEL OPTIONS...
  local label=$1 dir rc=0
  shift
  TIDY_RUNS=$((TIDY_RUNS + 1))
  dir="$WORK/tidy-$TIDY_RUNS"
  mkdir -p "$dir"
  log "--- tidy: $label ($*)"
  if ! start_ours "$dir" 2; then
    stop_server
    FAILED=1
    printf '{"figure": "%s: the server did not start", "value": null, "unit": "s", "target": null}\n' \
      "$label" >>"$RESULTS"
    return 0
  fi
  timeout -k 10 "$TIDY_LIMIT" "$LOADGEN" --url "http://127.0.0.1:$PORT" \
    --tokens-file "$dir/tokens.txt" --pid "$SERVER_PID" --scenario tidy --label "$label" "$@" \
    >"$dir/result.json" 2>"$dir/loadgen.log" || rc=$?
  stop_server
  if [ "$rc" != 0 ]; then
    FAILED=1
    log "  FAILED (exit $rc$( [ "$rc" = 124 ] && echo ", stopped after $TIDY_LIMIT s")), the load generator said:"
    tail -n 8 "$dir/loadgen.log" | cut -c1-400 | sed 's/^/  | /'
  fi
  python3 - "$label" "$rc" "$STOP_SECS" "$dir/result.json" >>"$RESULTS" <<'PY'
import json, sys
label, rc, stop, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = [l for l in open(path, encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
try:
    r = json.loads(lines[-1])
except (IndexError, ValueError):
    r = {}
def ms(key):
    v = r.get(key)
    return v / 1e3 if isinstance(v, (int, float)) and rc == 0 else None
detail = (f"{r.get('request_records', '?')} records, {r.get('request_bytes', 0) / 1048576:.2f} MiB"
          if "request_bytes" in r else "")
rows = [
    (f"{label}: the request ({detail}), until its answer began: applied", ms("deletes_applied_ms"), 1),
    (f"{label}: the request, until its whole answer was read", ms("deletes_ms"), None),
    (f"{label}: the writer's CPU time until then", ms("writer_cpu_ms"), None),
    (f"{label}: other account's longest empty sync", ms("other_account_max_ms"), 1),
    (f"{label}: every task tidied and received", ms("tidied_all_ms"), None),
    (f"{label}: the writer's CPU time for all the tidying", ms("tidying_cpu_ms"), None),
    (f"{label}: SIGTERM to exit, afterwards", float(stop) if stop else None, None),
]
for name, value, target in rows:
    print(json.dumps({"figure": name, "value": value, "unit": "s", "target": target}))
PY
}

if [ "$RUN_TIDY" = 1 ]; then
  for case in "${CASES[@]}"; do
    # shellcheck disable=SC2086 # the options are split into words on purpose
    tidy_case "${case%%|*}" ${case#*|}
  done
fi

# ---------------------------------------------------------------------------------------
# 3. The flood and memory tests, release build; their printed figures.
# ---------------------------------------------------------------------------------------
FLOOD_TEST=connections::a_real_sync_gets_through_1100_idle_connections_and_1030_half_sent_bodies
MEMORY_TEST=memory::large_bodies_stay_under_128_mb_and_memory_returns_after
if [ "$RUN_TESTS" = 1 ]; then
  log "--- tests (release): $FLOOD_TEST, $MEMORY_TEST"
  rc=0
  timeout -k 10 "$TESTS_LIMIT" cargo test --release --quiet --test it -- \
    --exact "$FLOOD_TEST" "$MEMORY_TEST" --nocapture --test-threads=1 \
    >"$WORK/tests.log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    FAILED=1
    log "  FAILED (exit $rc$( [ "$rc" = 124 ] && echo ", stopped after $TESTS_LIMIT s")), the tests said:"
    tail -n 15 "$WORK/tests.log" | cut -c1-400 | sed 's/^/  | /'
  elif ! grep -q "test result: ok. 2 passed" "$WORK/tests.log"; then
    FAILED=1
    log "  the two tests did not both run: has one been renamed? (see $WORK/tests.log)"
  fi
  python3 - "$WORK/tests.log" >>"$RESULTS" <<'PY'
import json, re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
units = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
def row(name, value, unit, target):
    print(json.dumps({"figure": name, "value": value, "unit": unit, "target": target}))
for kind in ("without", "with"):
    m = re.search(rf"real sync past (\d+) idle connections and (\d+) half-sent bodies {kind} a "
                  rf"valid token: ([\d.]+)(ns|µs|us|ms|s)\b", text)
    value = float(m.group(3)) * units[m.group(4)] if m else None
    row(f"real sync past 1,100 idle connections and 1,030 half-sent bodies, {kind} a valid token",
        value, "s", 1)
for load in ("one body", "four bodies at once"):
    m = re.search(rf"{load}: idle (\d+) MB, peak (\d+) MB, after (\d+) MB", text)
    idle, peak, after = (int(g) for g in m.groups()) if m else (None, None, None)
    row(f"30 MB bodies, {load}: peak RSS" + (f" (idle {idle} MB)" if m else ""), peak, "MB", 128)
    row(f"30 MB bodies, {load}: RSS above idle once closed" + (f" ({after} MB)" if m else ""),
        after - idle if m else None, "MB", 10)
PY
fi

# ---------------------------------------------------------------------------------------
# 4. The table.
# ---------------------------------------------------------------------------------------
log ""
missed=0
python3 - "$RESULTS" <<'PY' || missed=1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| figure | measured | target | met |")
print("|---|---:|---:|:---:|")
missed = False
for r in rows:
    v, unit = r["value"], r["unit"]
    if v is None:
        shown = "not measured"
    elif unit == "s":
        shown = f"{v * 1e3:.2f} ms" if v < 0.01 else f"{v * 1e3:.0f} ms" if v < 10 else f"{v:.1f} s"
    else:
        shown = f"{v:g} {unit}"
    target, met, limit = "", "", r["target"]
    if limit is not None:
        target = f"< {limit * 1e3:.0f} ms" if unit == "s" and limit < 10 else f"< {limit:g} {unit}"
        ok = v is not None and v < limit
        met = "yes" if ok else "**no**"
        missed |= not ok
    print(f"| {r['figure']} | {shown} | {target} | {met} |")
sys.exit(1 if missed else 0)
PY

log ""
if [ "$FAILED" != 0 ]; then
  log "hostile: a run FAILED (see above)"
  exit 1
fi
if [ "$missed" != 0 ]; then
  log "hostile: a figure missed its target"
  [ "$SMOKE" = 1 ] || exit 1
fi
log "hostile: every run passed$( [ "$missed" = 0 ] && echo ", every figure met its target")"
