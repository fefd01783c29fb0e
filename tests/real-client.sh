#!/usr/bin/env bash
# End-to-end test of tickit-sync against the real desktop client, tickit 0.5.8.
#
# Two devices (A and B, each its own HOME) sync through a fresh server on loopback:
#   A adds a tagged task with a due date to its Inbox and syncs; B syncs and must see it in
#   B's OWN Inbox (not orphaned); B completes it and syncs; A syncs and sees it completed;
#   A creates a list with a task, syncs; B syncs and sees both; `tickit sync --force` on each
#   device then changes nothing.
# The scenario runs three times, each with a fresh server database and fresh devices:
#   no skew; device A's clock 1 minute behind; device B's clock 1 hour ahead (faketime).
#
# Usage (from the repo root): tests/real-client.sh
#   TICKIT_ROOT      where tickit 0.5.8 is (or gets) installed  [~/.cache/tickit-sync-ci/tickit]
#   TICKIT_SYNC_BIN  server binary to test instead of building it with cargo
#   KEEP_TMP=1       keep the temporary directory (it is always kept when a check fails)
#
# Client facts this test works around (tickit 0.5.8, src/db.rs and src/main.rs):
# - `tickit add --tags X` silently drops tags that do not exist yet: create them first.
# - `list --json` prints tasks only (open ones unless --all); lists and tags are read from
#   `tickit export --format json` and `tickit lists list`.
# - When sync applies an incoming UPDATE to a task or list it already has, the client sets
#   that row's updated_at to its own Utc::now() (update_task/update_list), not the sender's
#   value; inserts keep the sender's. So updated_at of tasks and lists is not compared across
#   devices or across syncs once a row has been updated by sync. The re-stamped row looks
#   newer and is uploaded again. The server compares content, not just updated_at, so such a
#   re-upload is no change and no conflict: the final round below checks that no sync
#   reports a conflict.
# - `tickit sync` stores the server's server_time as last_sync (sync_state table) and uploads
#   rows whose updated_at (compared as TEXT in SQLite) is after it; `--force` sends everything.
set -euo pipefail

CALL_TIMEOUT=60 # seconds, for every client and server CLI call
WAIT_SECS=20    # how long the server gets to come up / to pick up a new token

cd "$(dirname "$0")/.."

log() { printf '%s\n' "$*"; }
die() { printf 'real-client: FATAL: %s\nreal-client: 0 passed, 1 failed\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# 1. Tools: tickit 0.5.8, faketime, python3, the server.
# ---------------------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is required"

# shellcheck source=tests/client-tools.sh
source tests/client-tools.sh
ensure_client_tools

if [ -n "${TICKIT_SYNC_BIN:-}" ]; then
  SERVER_BIN=$TICKIT_SYNC_BIN
else
  cargo build
  target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  SERVER_BIN="$target_dir/debug/tickit-sync"
fi
[ -x "$SERVER_BIN" ] || die "server binary $SERVER_BIN not found"
SERVER_BIN=$(cd "$(dirname "$SERVER_BIN")" && pwd)/$(basename "$SERVER_BIN")

# ---------------------------------------------------------------------------------------
# Bookkeeping, cleanup.
# ---------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/real-client.XXXXXX")
PASS=0
FAIL=0
FAILED=()
SERVER_PID=
RUN=        # name of the current scenario run
RUN_DIR=    # its directory
DONE=0

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT
  stop_server
  if [ "$DONE" != 1 ]; then
    FAIL=$((FAIL + 1))
    FAILED+=("script aborted early (exit $rc) during run '${RUN:-setup}'")
  fi
  if [ "$FAIL" -eq 0 ] && [ "${KEEP_TMP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    log "temporary files (server logs, sync logs, snapshots) kept in $WORK"
  fi
  summary # its last line is the result line CI looks for
  [ "$FAIL" -eq 0 ] && exit 0
  exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

summary() {
  log ""
  log "================ summary ================"
  if [ "${#FAILED[@]}" -gt 0 ]; then
    log "failed checks:"
    printf '  - %s\n' "${FAILED[@]}"
  fi
  log "real-client: $PASS passed, $FAIL failed"
}

pass() { PASS=$((PASS + 1)); log "  ok   [$RUN] $1"; }
fail() {
  FAIL=$((FAIL + 1)); FAILED+=("[$RUN] $1"); log "  FAIL [$RUN] $1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/         | /' "$2" | tail -n 30; fi
}

# check DESCRIPTION COMMAND...: run COMMAND, count a pass if it exits 0.
check() {
  local desc=$1; shift
  local out="$RUN_DIR/check.out"
  if "$@" >"$out" 2>&1; then pass "$desc"; else fail "$desc" "$out"; fi
}

# ---------------------------------------------------------------------------------------
# JSON assertions: pyck 'CODE' NAME=FILE | NAME:=STRING | NAME#=INT ...
# Loads each FILE as JSON into NAME (or binds the literal), then runs the Python CODE (a few
# statements, usually `assert COND, DETAIL`); the check passes when CODE raises nothing.
# ---------------------------------------------------------------------------------------
PYCK="$WORK/pyck.py"
cat >"$PYCK" <<'PY'
import json, sys, textwrap
from datetime import datetime, timezone

def load(path):
    with open(path) as f:
        return json.load(f)

def ts(s):
    """RFC 3339 -> aware datetime (digits past microseconds dropped)."""
    s = s.replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + rest[:i][:6].ljust(6, "0") + rest[i:]
    return datetime.fromisoformat(s)

def show(v):
    return json.dumps(v, indent=1, sort_keys=True, ensure_ascii=False)

def tasks_titled(tasks, title):
    return [t for t in tasks if t["title"] == title]

def task(tasks, title):
    found = tasks_titled(tasks, title)
    assert len(found) == 1, f"expected exactly one task titled {title!r}, found {len(found)}: {show(tasks)}"
    return found[0]

def inboxes(export):
    return [l for l in export["lists"] if l["is_inbox"]]

def inbox_id(export):
    ib = inboxes(export)
    assert len(ib) == 1, f"expected exactly one inbox, found {show(export['lists'])}"
    return ib[0]["id"]

def list_named(export, name):
    found = [l for l in export["lists"] if l["name"] == name]
    assert len(found) == 1, f"expected exactly one list named {name!r}, found {show(export['lists'])}"
    return found[0]

def tag_names(export, t):
    by_id = {g["id"]: g["name"] for g in export["tags"]}
    return sorted(by_id.get(i, "<unknown tag " + i + ">") for i in t["tag_ids"])

def normalised(tasks, export):
    """Tasks keyed by id, list_id replaced by the list's name (<Inbox> for the inbox) and
    tag_ids by tag names, so two devices (whose inbox ids differ) can be compared."""
    names = {l["id"]: ("<Inbox>" if l["is_inbox"] else l["name"]) for l in export["lists"]}
    out = {}
    for t in tasks:
        t = dict(t)
        t["list_id"] = names.get(t["list_id"], "<ORPHAN " + t["list_id"] + ">")
        t["tag_ids"] = tag_names(export, t)
        out[t["id"]] = t
    return out

def same(a, b, what="values"):
    assert a == b, f"{what} differ:\n{show(a)}\n----- vs -----\n{show(b)}"

def by_id(rows):
    return sorted(rows, key=lambda r: r["id"])

def no_upd(rows):
    """Rows without updated_at. tickit 0.5.8 re-stamps a task's or list's updated_at with its
    own clock (Utc::now()) whenever sync applies an incoming UPDATE to a row it already has
    (db.rs update_task/update_list), so on a receiving device that field is not the sender's."""
    return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]

def same_state(t0, e0, t1, e1):
    """Same content; updated_at of tasks and lists excepted (see no_upd)."""
    same(by_id(no_upd(t0)), by_id(no_upd(t1)), "list --json --all outputs")
    same(by_id(no_upd(e0["lists"])), by_id(no_upd(e1["lists"])), "exported lists")
    same(by_id(no_upd(e0["tasks"])), by_id(no_upd(e1["tasks"])), "exported tasks")
    same(by_id(e0["tags"]), by_id(e1["tags"]), "exported tags")

env = {k: v for k, v in globals().items() if not k.startswith("__")}
code = textwrap.dedent(sys.argv[1]).strip("\n")
for arg in sys.argv[2:]:
    if ":=" in arg:
        name, _, value = arg.partition(":=")
    elif "#=" in arg:
        name, _, value = arg.partition("#=")
        value = int(value)
    else:
        name, _, path = arg.partition("=")
        value = load(path)
    env[name] = value
try:
    exec(code, env)
except AssertionError as e:
    print(f"assertion failed: {e}")
    sys.exit(1)
except Exception as e:
    print(f"{type(e).__name__}: {e}")
    sys.exit(1)
PY

pyck() { python3 "$PYCK" "$@"; }

# ---------------------------------------------------------------------------------------
# 2. The server.
# ---------------------------------------------------------------------------------------
PORT=
TOKEN_A=
TOKEN_B=

PROBE_DEVICE=00000000-0000-4000-8000-00000000beef
# sync_probe TOKEN [OUT]: an empty full sync (last_sync null) as a device of its own; exit 0
# when answered 200; the response body goes to OUT if given.
sync_probe() {
  python3 - "$PORT" "$1" "${2:-}" <<'PY'
import json, sys, urllib.request, urllib.error
port, token, out = sys.argv[1], sys.argv[2], sys.argv[3]
body = json.dumps({"device_id": "00000000-0000-4000-8000-00000000beef",
                   "last_sync": None, "changes": []}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/sync", data=body, method="POST",
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        data = r.read()
        if out:
            open(out, "wb").write(data)
        sys.exit(0 if r.status == 200 else 1)
except (urllib.error.URLError, OSError):
    sys.exit(1)
PY
}

start_server() {
  local dir=$RUN_DIR/server
  mkdir -p "$dir"
  # Keep the environment from overriding config path, bind address, port or database.
  env -u TICKIT_SYNC_CONFIG -u TICKIT_SYNC_HOST -u TICKIT_SYNC_PORT -u TICKIT_SYNC_DB \
    -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID \
    "$SERVER_BIN" serve --config "$dir/config.toml" --bind 127.0.0.1 --port 0 \
    >"$dir/stdout" 2>"$dir/stderr" </dev/null &
  SERVER_PID=$!
  local i line=
  for ((i = 0; i < WAIT_SECS * 10; i++)); do
    line=$(grep -Eo 'listening on 127\.0\.0\.1:[0-9]+' "$dir/stderr" 2>/dev/null | head -n1 || true)
    [ -n "$line" ] && grep -q 'tks_' "$dir/stdout" && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      line=; break
    fi
    sleep 0.1
  done
  if [ -z "$line" ]; then
    cat "$dir/stderr" >"$RUN_DIR/check.out"
    fail "server starts and logs 'listening on 127.0.0.1:PORT' within ${WAIT_SECS}s" "$RUN_DIR/check.out"
    return 1
  fi
  PORT=${line##*:}
  TOKEN_A=$(grep -Eo 'tks_[A-Za-z0-9_-]+' "$dir/stdout" | head -n1)
  pass "server listening on 127.0.0.1:$PORT, first token printed"

  if ! TOKEN_B=$(timeout "$CALL_TIMEOUT" "$SERVER_BIN" token --name device-b --config "$dir/config.toml" \
      2>"$RUN_DIR/check.out" | grep -Eo 'tks_[A-Za-z0-9_-]+' | head -n1) || [ -z "$TOKEN_B" ]; then
    fail "tickit-sync token --name device-b prints a token" "$RUN_DIR/check.out"
    return 1
  fi
  [ "$TOKEN_A" != "$TOKEN_B" ] || { fail "second token differs from the first"; return 1; }
  # The running server picks new tokens up by itself (within ~2 s): wait for it, bounded.
  for ((i = 0; i < WAIT_SECS * 10; i++)); do
    sync_probe "$TOKEN_B" && break
    sleep 0.1
  done
  if ((i >= WAIT_SECS * 10)); then
    fail "running server accepts device B's new token within ${WAIT_SECS}s"
    return 1
  fi
  pass "second token (device B) made and accepted by the running server"
}

# ---------------------------------------------------------------------------------------
# 3. Devices: each is its own HOME with ~/.config/tickit/{config.toml,tickit.sqlite,.device_id}.
# ---------------------------------------------------------------------------------------
declare -A DEV_HOME DEV_SKEW

make_device() { # NAME TOKEN SKEW ('' for none, else a faketime -f offset such as -60s)
  local name=$1 token=$2 skew=$3 home=$RUN_DIR/home-$1
  mkdir -p "$home/.config/tickit"
  cat >"$home/.config/tickit/config.toml" <<EOF
[sync]
enabled = true
server = "http://127.0.0.1:$PORT"
token = "$token"
interval_secs = 300
EOF
  DEV_HOME[$name]=$home
  DEV_SKEW[$name]=$skew
}

# tk DEVICE ARGS...: run the client as DEVICE, no terminal, bounded, under the device's clock.
tk() {
  local dev=$1; shift
  local home=${DEV_HOME[$dev]} skew=${DEV_SKEW[$dev]}
  local -a pre=()
  if [ -n "$skew" ]; then pre=(faketime -f "$skew"); fi
  timeout "$CALL_TIMEOUT" env -i PATH="$PATH" HOME="$home" XDG_CONFIG_HOME="$home/.config" \
    XDG_DATA_HOME="$home/.local/share" TERM=dumb NO_COLOR=1 LANG=C.UTF-8 \
    "${pre[@]}" "$TICKIT" "$@" </dev/null
}

# snap DEVICE TAG: saves list --json --all, export (json) and `lists list` of DEVICE under TAG.
snap() {
  local dev=$1 tag=$2 out=$RUN_DIR/snap
  mkdir -p "$out"
  if tk "$dev" list --json --all >"$out/$dev-$tag.tasks.json" 2>"$RUN_DIR/snap.err" \
    && tk "$dev" export --format json >"$out/$dev-$tag.export.json" 2>>"$RUN_DIR/snap.err" \
    && tk "$dev" lists list >"$out/$dev-$tag.lists.txt" 2>>"$RUN_DIR/snap.err"; then
    return 0
  fi
  fail "device $dev: reading its state ($tag) with list --json / export / lists list" "$RUN_DIR/snap.err"
  echo '[]' >"$out/$dev-$tag.tasks.json"
  echo '{"lists": [], "tags": [], "tasks": []}' >"$out/$dev-$tag.export.json"
  : >"$out/$dev-$tag.lists.txt"
}
S() { printf '%s/snap/%s-%s.%s' "$RUN_DIR" "$1" "$2" "$3"; } # S DEV TAG tasks.json|export.json|lists.txt

# check_both_unchanged BEFORE AFTER LABEL: snapshots both devices as AFTER and checks each
# holds the same tasks, lists and tags as at BEFORE.
check_both_unchanged() {
  local before=$1 after=$2 label=$3 d
  snap A "$after"
  snap B "$after"
  for d in A B; do
    check "$d: $label" pyck 'same_state(t0, e0, t1, e1)' \
      t0="$(S $d "$before" tasks.json)" e0="$(S $d "$before" export.json)" \
      t1="$(S $d "$after" tasks.json)" e1="$(S $d "$after" export.json)"
  done
}

# sync DEVICE [--force]: a sync must exit 0 and say it completed.
sync_ok() {
  local dev=$1; shift
  local rc=0
  tk "$dev" sync "$@" >"$RUN_DIR/sync.out" 2>&1 || rc=$?
  { echo "--- $(date -u +%T.%N) tickit sync $* (exit $rc)"; cat "$RUN_DIR/sync.out"; } >>"$RUN_DIR/sync-$dev.log"
  cat "$RUN_DIR/sync.out"
  [ "$rc" -eq 0 ] || return 1
  grep -q 'Sync complete' "$RUN_DIR/sync.out"
}
do_sync() { check "device $1: tickit sync ${2:-} exits 0" sync_ok "$@"; }

# ---------------------------------------------------------------------------------------
# 4. The scenario.
# ---------------------------------------------------------------------------------------
TITLE1="Renew passport"
TAG1=paperwork
DUE1=2031-07-15
LIST2=Errands
TITLE2="Post the parcel"

offset_secs() { case "$1" in "") echo 0 ;; -60s) echo -60 ;; +1h) echo 3600 ;; *) die "unknown skew $1" ;; esac; }

scenario() { # RUN-NAME SKEW_A SKEW_B   (skews are faketime -f offsets, '' = real clock)
  RUN=$1
  RUN_DIR=$WORK/$RUN
  mkdir -p "$RUN_DIR"
  log ""
  log "=== run '$RUN': device A clock ${2:-real}, device B clock ${3:-real} ==="
  start_server || { stop_server; return 0; }
  make_device A "$TOKEN_A" "$2"
  make_device B "$TOKEN_B" "$3"
  local off_a off_b t0 t1 d
  off_a=$(offset_secs "$2")
  off_b=$(offset_secs "$3")

  # Step 1: A adds a tagged, high-priority task with a due date to its Inbox, and syncs.
  check "A: tickit tags add $TAG1" tk A tags add "$TAG1"
  t0=$(date -u +%s)
  check "A: tickit add '$TITLE1' --tags $TAG1 --due $DUE1 --priority high" \
    tk A add "$TITLE1" --tags "$TAG1" --due "$DUE1" --priority high
  t1=$(date -u +%s)
  do_sync A
  snap A s1
  check "A: task has priority high, due $DUE1, tag $TAG1, sits in A's inbox, open" \
    pyck '
      t = task(ta, T)
      assert t["priority"] == "high" and t["due_date"].startswith(D), show(t)
      assert tag_names(ea, t) == [G], show(t)
      assert t["list_id"] == inbox_id(ea), show(t)
      assert t["completed"] is False and t["completed_at"] is None, show(t)' \
    ta="$(S A s1 tasks.json)" ea="$(S A s1 export.json)" T:="$TITLE1" D:="$DUE1" G:="$TAG1"
  # Is faketime really in effect? created_at is written with the device's own clock.
  check "A: created_at shows A's clock offset ${off_a}s from real time (faketime in effect)" \
    pyck '
      c = ts(task(ta, T)["created_at"]).timestamp()
      assert lo + O - 5 <= c <= hi + O + 5, f"created_at {c} not within [{lo + O - 5}, {hi + O + 5}]"' \
    ta="$(S A s1 tasks.json)" T:="$TITLE1" O#="$off_a" lo#="$t0" hi#="$t1"

  # Step 2: B syncs; the task is in B's OWN inbox (B's inbox id, counted) with the same fields.
  do_sync B
  snap B s2
  check "B: exactly one list, its own inbox (A's inbox not added as a second list)" \
    pyck '
      assert len(eb["lists"]) == 1 and eb["lists"][0]["is_inbox"], show(eb["lists"])
      assert eb["lists"][0]["id"] != inbox_id(ea), "B adopted A inbox id?"' \
    eb="$(S B s2 export.json)" ea="$(S A s1 export.json)"
  check "B: task's list_id is B's inbox id (not orphaned)" \
    pyck '
      t = task(tb, T)
      assert t["list_id"] == inbox_id(eb), show(t)' \
    tb="$(S B s2 tasks.json)" eb="$(S B s2 export.json)" T:="$TITLE1"
  check "B: 'tickit lists list' shows 'Inbox (1 tasks)'" grep -F "Inbox (1 tasks)" "$(S B s2 lists.txt)"
  tk B list --json --list Inbox >"$RUN_DIR/b-inbox.json" 2>&1 || true
  check "B: 'tickit list --json --list Inbox' shows exactly that task" \
    pyck 'same([t["id"] for t in tb], [task(ta, T)["id"]], "task ids")' \
    tb="$RUN_DIR/b-inbox.json" ta="$(S A s1 tasks.json)" T:="$TITLE1"
  check "B: same id, title, priority, due date, tag, timestamps as on A" \
    pyck '
      a, b = task(ta, T), task(tb, T)
      a = {k: v for k, v in a.items() if k != "list_id"} | {"tag_names": tag_names(ea, a)}
      b = {k: v for k, v in b.items() if k != "list_id"} | {"tag_names": tag_names(eb, b)}
      same(a, b, "task on A and on B")' \
    ta="$(S A s1 tasks.json)" ea="$(S A s1 export.json)" tb="$(S B s2 tasks.json)" eb="$(S B s2 export.json)" \
    T:="$TITLE1"
  check "B: tag $TAG1 arrived with A's id, name, colour and timestamps" \
    pyck 'same(by_id(ea["tags"]), by_id(eb["tags"]), "tags")' \
    ea="$(S A s1 export.json)" eb="$(S B s2 export.json)"

  # Step 3: B completes the task and syncs; A syncs and sees it completed.
  # Last write wins by updated_at, stamped with each device's OWN clock. B's completion
  # must carry a later updated_at than A's creation for the server (and A) to take it:
  # that holds when A's clock is BEHIND (run a-behind-1min) or B's is AHEAD (run
  # b-ahead-1h). Were the completing device's clock behind the creating device's by more
  # than the real time between the two edits, its later edit would look OLDER and would
  # rightly lose under the protocol's LWW rule -- not a server bug -- so the skewed runs
  # are chosen on the side where "later by the device clocks" is also later in reality.
  t0=$(date -u +%s)
  check "B: tickit done '$TITLE1'" tk B done "$TITLE1"
  t1=$(date -u +%s)
  do_sync B
  do_sync A
  snap B s3
  snap A s3
  check "B: completed_at shows B's clock offset ${off_b}s from real time (faketime in effect)" \
    pyck '
      c = ts(task(tb, T)["completed_at"]).timestamp()
      assert lo + O - 5 <= c <= hi + O + 5, f"completed_at {c} not within [{lo + O - 5}, {hi + O + 5}]"' \
    tb="$(S B s3 tasks.json)" T:="$TITLE1" O#="$off_b" lo#="$t0" hi#="$t1"
  # (A's updated_at is its own apply time, not B's: the client re-stamps on update.)
  check "A: task completed, B's completed_at, other fields unchanged, still in A's inbox" \
    pyck '
      a, b = task(ta, T), task(tb, T)
      assert a["completed"] is True, show(a)
      same(no_upd([a | {"list_id": None}]), no_upd([b | {"list_id": None}]), "task on A and on B")
      assert a["list_id"] == inbox_id(ea), show(a)' \
    ta="$(S A s3 tasks.json)" ea="$(S A s3 export.json)" tb="$(S B s3 tasks.json)" T:="$TITLE1"
  tk A list --json >"$RUN_DIR/a-open.json" 2>&1 || true
  check "A: 'tickit list --json' (open tasks only) no longer shows it" \
    pyck 'assert tasks_titled(ta, T) == [], show(ta)' ta="$RUN_DIR/a-open.json" T:="$TITLE1"

  # Step 4: A creates a list with a task in it and syncs; B syncs and sees both.
  check "A: tickit lists add $LIST2" tk A lists add "$LIST2"
  check "A: tickit add '$TITLE2' --list $LIST2" tk A add "$TITLE2" --list "$LIST2"
  do_sync A
  do_sync B
  snap A s4
  snap B s4
  check "B: has list $LIST2 with A's id and fields, not an inbox; still one inbox" \
    pyck '
      same(list_named(ea, L), list_named(eb, L), "the list on A and on B")
      assert list_named(eb, L)["is_inbox"] is False
      assert len(inboxes(eb)) == 1, show(eb["lists"])' \
    ea="$(S A s4 export.json)" eb="$(S B s4 export.json)" L:="$LIST2"
  check "B: '$TITLE2' is in $LIST2, identical to A's" \
    pyck '
      same(task(ta, T), task(tb, T), "the task on A and on B")
      assert task(tb, T)["list_id"] == list_named(eb, L)["id"]' \
    ta="$(S A s4 tasks.json)" tb="$(S B s4 tasks.json)" eb="$(S B s4 export.json)" T:="$TITLE2" L:="$LIST2"
  check "B: 'tickit lists list' shows '$LIST2 (1 tasks)'" grep -F "$LIST2 (1 tasks)" "$(S B s4 lists.txt)"
  tk B list --json --list "$LIST2" >"$RUN_DIR/b-list2.json" 2>&1 || true
  check "B: 'tickit list --json --list $LIST2' shows exactly that task" \
    pyck 'same([t["title"] for t in tb], [T], "titles")' tb="$RUN_DIR/b-list2.json" T:="$TITLE2"
  check "A and B hold the same tasks (inbox ids mapped), tags, and non-inbox lists" \
    pyck '
      same(by_id(no_upd(normalised(ta, ea).values())), by_id(no_upd(normalised(tb, eb).values())), "tasks on A and on B")
      same(by_id(ea["tags"]), by_id(eb["tags"]), "tags on A and on B")
      same(by_id(no_upd([l for l in ea["lists"] if not l["is_inbox"]])),
           by_id(no_upd([l for l in eb["lists"] if not l["is_inbox"]])), "lists on A and on B")' \
    ta="$(S A s4 tasks.json)" ea="$(S A s4 export.json)" tb="$(S B s4 tasks.json)" eb="$(S B s4 export.json)"

  # Step 5: a full resync on each device changes nothing on either device.
  do_sync A --force
  do_sync B --force
  check_both_unchanged s4 s5 "after 'sync --force' on A and B, state unchanged (list --json --all, export)"
  # And a further ordinary round changes nothing either.
  local mark_a mark_b conflicts
  mark_a=$(wc -l <"$RUN_DIR/sync-A.log")
  mark_b=$(wc -l <"$RUN_DIR/sync-B.log")
  do_sync A
  do_sync B
  conflicts=$( { tail -n +$((mark_a + 1)) "$RUN_DIR/sync-A.log"; tail -n +$((mark_b + 1)) "$RUN_DIR/sync-B.log"; } \
    | grep -c 'conflicts (server won)' || true)
  check_both_unchanged s4 s6 "after a further ordinary sync on A and B, state unchanged"
  # tickit re-stamps rows it receives (see the header); unchanged records must not come
  # back as conflicts.
  check "final ordinary round: no conflicts reported on A or B" test "$conflicts" -eq 0

  # What the server holds: a full sync as a fresh device gets one consistent account.
  check "server: full sync from a new device answers 200" sync_probe "$TOKEN_A" "$RUN_DIR/server-full.json"
  check "server: full snapshot has 1 inbox, $LIST2, $TAG1 and both tasks as on A, no dangling ids" \
    pyck '
      lists, tags, tasks = ([c for c in r["changes"] if c["type"] == k] for k in ("list", "tag", "task"))
      assert set(c["type"] for c in r["changes"]) <= {"list", "tag", "task", "task_tag"}, show(r["changes"])
      ib = [l for l in lists if l["is_inbox"]]
      assert len(ib) == 1 and len(lists) == 2, show(lists)
      same(no_upd([{k: l[k] for k in list_named(ea, L)} for l in lists if not l["is_inbox"]]),
           no_upd([list_named(ea, L)]), "list on server and on A")
      same(by_id([{k: g[k] for k in ea["tags"][0]} for g in tags]), by_id(ea["tags"]), "tags on server and on A")
      ids = {l["id"]: l for l in lists}
      st = {t["id"]: dict(t, list_id=("<Inbox>" if ids[t["list_id"]]["is_inbox"] else ids[t["list_id"]]["name"]))
            for t in tasks if t["list_id"] in ids}
      assert len(st) == len(tasks) == 2, "dangling or missing tasks: " + show(tasks)
      at = normalised(ta, ea)
      st = {i: dict({k: t[k] for k in at[i]}, tag_ids=sorted(g["name"] for g in tags if g["id"] in t["tag_ids"]))
            for i, t in st.items() if i in at}
      same(by_id(no_upd(st.values())), by_id(no_upd(at.values())), "tasks on server and on A")' \
    r="$RUN_DIR/server-full.json" ta="$(S A s6 tasks.json)" ea="$(S A s6 export.json)" L:="$LIST2"
  check "server log mentions neither token" \
    bash -c '! grep -F -e "$1" -e "$2" "$3"' _ "$TOKEN_A" "$TOKEN_B" "$RUN_DIR/server/stderr"

  stop_server
}

# ---------------------------------------------------------------------------------------
# 5. Runs: no skew; A 1 minute behind the server; B 1 hour ahead of it.
# ---------------------------------------------------------------------------------------
scenario no-skew "" ""
scenario a-behind-1min "-60s" ""
scenario b-ahead-1h "" "+1h"

DONE=1
exit 0 # cleanup (EXIT trap) prints the summary and sets the exit status
