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
# A fourth run, four-clocks (section 5, about a minute), has four devices on one account with
# clocks right, +1 hour, +1 day and 20 s behind: they create, retitle, complete, reopen,
# tag, untag and delete (tasks, a list with tasks, a tag) the same records in a known
# real-time order; after two rounds of syncs every device must hold the outcome of that
# order, the same as every other device, with no conflict reported, and stay so.
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
# shellcheck source=tests/checks.sh
source tests/checks.sh

# ---------------------------------------------------------------------------------------
# 1. Tools: tickit 0.5.8, faketime, python3, the server.
# ---------------------------------------------------------------------------------------
# shellcheck source=tests/client-tools.sh
source tests/client-tools.sh
ensure_client_tools
find_server_binary

# ---------------------------------------------------------------------------------------
# Bookkeeping, cleanup.
# ---------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/real-client.XXXXXX")
SERVER_PID=
RUN=        # name of the current scenario run, the label of its checks' lines
RUN_DIR=    # its directory, where check.out goes
checks_init RUN RUN_DIR

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

# The EXIT trap: the server stopped, then the summary (tests/checks.sh).
cleanup() {
  local rc=$?
  stop_server
  checks_end "$rc" "run '${RUN:-setup}'" "server logs, sync logs, snapshots"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

def device_state(tasks, export):
    """What a device holds, in a form two devices can be compared in: tasks by id as
    normalised() gives them (list and tag names, not ids: every device has its own inbox id),
    lists by id except the inbox, which is '<Inbox>' without its id and created_at (every device
    creates its own), tags by id. updated_at of tasks and lists is left out (see no_upd: each
    device re-stamps what it applies with its OWN clock, so it differs from device to device)."""
    lists = {}
    for l in no_upd(export["lists"]):
        if l["is_inbox"]:
            key = "<Inbox>" if "<Inbox>" not in lists else "<Inbox " + l["id"] + ">"
            l = {k: v for k, v in l.items() if k not in ("id", "created_at")}
        else:
            key = l["id"]
        lists[key] = l
    return {"list": lists,
            "tag": {g["id"]: g for g in export["tags"]},
            "task": {i: no_upd([t])[0] for i, t in normalised(tasks, export).items()}}

def differences(a, b, na, nb):
    """One line per record only one of two device_state()s holds, and per field that differs."""
    out = []
    for kind in ("list", "tag", "task"):
        ra, rb = a[kind], b[kind]
        for i in sorted(set(ra) | set(rb)):
            r = ra.get(i) or rb[i]
            name = repr(r.get("title") or r.get("name") or i)
            if i not in rb or i not in ra:
                out.append(f"{kind} {name} only on {na if i in ra else nb}")
                continue
            for k in sorted(set(ra[i]) | set(rb[i])):
                if ra[i].get(k) != rb[i].get(k):
                    out.append(f"{kind} {name} {k}: {ra[i].get(k)!r} on {na}, {rb[i].get(k)!r} on {nb}")
    return out

def same_device_state(a, b, na, nb):
    d = differences(a, b, na, nb)
    assert not d, f"{len(d)} difference(s): " + "; ".join(d)

def outcome_problems(tasks, export, want_tasks, gone, want_lists, want_tags):
    """One line per way a device's tasks, lists and tags differ from the expected outcome:
    want_tasks maps title -> (completed, list name or '<Inbox>', tag names)."""
    out, by_title = [], {}
    for t in normalised(tasks, export).values():
        by_title.setdefault(t["title"], []).append(t)
    for title, (done, lst, tags) in want_tasks.items():
        found = by_title.get(title, [])
        if len(found) != 1:
            out.append(f"{title!r}: {len(found)} tasks so titled, expected 1")
            continue
        t, want = found[0], (done, lst, sorted(tags))
        got = (t["completed"], t["list_id"], t["tag_ids"])
        if got != want:
            out.append(f"{title!r}: (completed, list, tags) is {got}, expected {want}")
        if (t["completed_at"] is None) == done:
            out.append(f"{title!r}: completed {t['completed']} with completed_at {t['completed_at']!r}")
    out += [f"{title!r} is there, expected deleted" for title in gone if title in by_title]
    extra = sorted(set(by_title) - set(want_tasks) - set(gone))
    if extra:
        out.append(f"unexpected tasks {extra}")
    lists = sorted("<Inbox>" if l["is_inbox"] else l["name"] for l in export["lists"])
    if lists != sorted(want_lists):
        out.append(f"lists {lists}, expected {sorted(want_lists)}")
    tags = sorted(g["name"] for g in export["tags"])
    if tags != sorted(want_tags):
        out.append(f"tags {tags}, expected {sorted(want_tags)}")
    return out

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
  python3 - "$PORT" "$1" "${2:-}" "$PROBE_DEVICE" <<'PY'
import json, sys, urllib.request, urllib.error
port, token, out, device = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
body = json.dumps({"device_id": device,
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
  if [ -n "$skew" ]; then pre=(LD_PRELOAD="$LIBFAKETIME" FAKETIME="$skew"); fi
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

offset_secs() {
  case "$1" in
    "") echo 0 ;; -20s) echo -20 ;; -60s) echo -60 ;; +1h) echo 3600 ;; +1d) echo 86400 ;;
    *) die "unknown skew $1" ;;
  esac
}

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
  check "B: tickit done '$TITLE1'" tk B "done" "$TITLE1"
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

  # What `tickit-sync devices` tells the person running the server, read while it runs:
  # A and B, each under the token it synced with, neither with anything left to receive.
  timeout "$CALL_TIMEOUT" "$SERVER_BIN" devices --json --config "$RUN_DIR/server/config.toml" \
    >"$RUN_DIR/devices.json" 2>"$RUN_DIR/devices.err" || true
  check "server: 'tickit-sync devices' lists A and B under their tokens, synced just now, nothing waiting" \
    pyck '
      d = {x["device"]: x for x in r["devices"]}
      a, b = d[IA], d[IB]
      assert (a["token"], b["token"]) == ("first-device", "device-b"), show(r)
      assert (a["waiting_changes"], b["waiting_changes"]) == (0, 0), show(r)
      assert 0 <= a["last_sync_seconds_ago"] < 300 and 0 <= b["last_sync_seconds_ago"] < 300, show(r)
      assert set(d) == {IA, IB, P}, show(r)' \
    r="$RUN_DIR/devices.json" IA:="$(cat "${DEV_HOME[A]}/.config/tickit/.device_id")" \
    IB:="$(cat "${DEV_HOME[B]}/.config/tickit/.device_id")" P:="$PROBE_DEVICE"
  timeout "$CALL_TIMEOUT" "$SERVER_BIN" devices --config "$RUN_DIR/server/config.toml" 2>&1 \
    | sed 's/^/       /' || true

  stop_server
}

# ---------------------------------------------------------------------------------------
# 5. Four devices, four clocks: one account, devices 'real' (correct clock), 'hour' (+1 h),
#    'day' (+1 day) and 'slow' (20 s behind). Actions on the same records happen in a known
#    real-time order, and the outcome must be the one that order gives, whatever the clocks:
#    an action wins over every action done before it in real time. The slow device's clock
#    lags 20 s, so its actions are made more than 20 s (SLOW_LAG_WAIT) after those they
#    compete with: within its lag it may rightly lose.
# ---------------------------------------------------------------------------------------
FOUR=(real hour day slow)
declare -A DEV_OFFSET     # device -> its clock's offset from real time, in seconds
ACT_GAP=1.5               # seconds of real time between two actions
SLOW_LAG_WAIT=22          # seconds of real time before the slow device's competing actions
LAST_ACT=0                # real time (epoch seconds) at which the previous action ended
ACT_T0=0                  # real time (whole seconds) just before / after the last action's
ACT_T1=0                  #   command, for check_clock
TIMELINE=                 # the actions in real-time order, with their times (in RUN_DIR)

# Edits the desktop TUI makes and the CLI cannot (title edit, tag/untag an existing task) or
# makes without a tombstone (`tickit delete`), done as tickit 0.5.8's own code does them, in
# the device's database, by tests/client_db.py DB OFFSET_SECS OP ARGS... (foreign keys on):
#   retitle TITLE NEW       save_task -> update_task: the row, updated_at = the device's now
#   tag|untag TITLE TAG     save_task with that tag toggled: the task_tags row, and the same
#   delete-task TITLE       execute_confirm: delete_task, then record_tombstone(id, 'task')
#   delete-list NAME        execute_confirm: delete_list (its tasks move to the inbox, their
#                           updated_at untouched), then record_tombstone(id, 'list')
#   delete-tag NAME         execute_confirm: delete_tag, then record_tombstone(id, 'tag')
# "Now" is the device's clock: real UTC now + OFFSET_SECS, written as chrono's to_rfc3339().
CLIENT_DB="$PWD/tests/client_db.py"

# tui DEV OP ARGS...: client_db.py on DEV's database with DEV's clock offset.
tui() {
  local dev=$1; shift
  python3 "$CLIENT_DB" "${DEV_HOME[$dev]}/.config/tickit/tickit.sqlite" "${DEV_OFFSET[$dev]}" "$@"
}

# tk_must DEV ARGS...: tk, failing also when the client says "... not found" (it exits 0 then).
tk_must() {
  local out rc=0
  out=$(tk "$@" 2>&1) || rc=$?
  printf '%s\n' "$out"
  [ "$rc" -eq 0 ] && ! grep -q 'not found' <<<"$out"
}

# add_token NAME: prints a new token for NAME (tickit-sync token) once the running server
# accepts it (bounded wait); fails otherwise.
add_token() {
  local token i
  token=$(timeout "$CALL_TIMEOUT" "$SERVER_BIN" token --name "$1" --config "$RUN_DIR/server/config.toml" \
    2>"$RUN_DIR/token.err" | grep -Eo 'tks_[A-Za-z0-9_-]+' | head -n1) || true
  [ -n "$token" ] || return 1
  for ((i = 0; i < WAIT_SECS * 10; i++)); do
    if sync_probe "$token"; then echo "$token"; return 0; fi
    sleep 0.1
  done
  return 1
}

# pace SECONDS: sleeps until SECONDS of real time have passed since the previous action ended.
pace() {
  sleep "$(awk -v last="$LAST_ACT" -v gap="$1" -v now="$(date +%s.%N)" \
    'BEGIN { d = last + gap - now; printf "%.3f", (d > 0 ? d : 0) }')"
}

# act DEV DESCRIPTION COMMAND...: one user action on DEV, ACT_GAP after the previous one:
# DEV syncs (to act on the latest state), COMMAND runs as a check, DEV syncs right after.
# The action's real time goes to the timeline.
act() {
  local dev=$1 desc=$2; shift 2
  pace "$ACT_GAP"
  do_sync "$dev"
  printf '%s  %-4s (%5ss)  %s\n' "$(date -u +%T.%3N)" "$dev" "${DEV_OFFSET[$dev]}" "$desc" >>"$TIMELINE"
  ACT_T0=$(date -u +%s)
  check "$dev: $desc" "$@"
  ACT_T1=$(date -u +%s)
  do_sync "$dev"
  LAST_ACT=$(date +%s.%N)
}

# check_clock DEV TITLE: the task DEV has just added carries a created_at on DEV's own clock
# (the real time of the action + DEV's offset, give or take 5 s): faketime is in effect.
check_clock() {
  local dev=$1 out=$RUN_DIR/clock-$1.json
  tk "$dev" list --json --all >"$out" 2>&1 || true
  check "$dev: created_at of '$2' is ${DEV_OFFSET[$dev]}s off real time (its clock; faketime in effect)" \
    pyck '
      c = ts(task(t, T)["created_at"]).timestamp()
      assert lo + O - 5 <= c <= hi + O + 5, f"created_at {c} not within [{lo + O - 5}, {hi + O + 5}]"' \
    t="$out" T:="$2" O#="${DEV_OFFSET[$dev]}" lo#="$ACT_T0" hi#="$ACT_T1"
}

# all_sync_twice: every device syncs, in the order real, hour, day, slow, and once more around,
# so what one device uploads in the first pass reaches all the others in the second.
all_sync_twice() {
  local d
  for d in "${FOUR[@]}" "${FOUR[@]}"; do do_sync "$d"; done
}

# snap_all TAG: snap of every device.
snap_all() {
  local d
  for d in "${FOUR[@]}"; do snap "$d" "$1"; done
}

# check_all_like_real TAG LABEL: every other device holds what 'real' holds at TAG, field by
# field, except each device's own inbox id and the updated_at of tasks and lists: tickit
# re-stamps a row it updates from a sync with its OWN clock (update_task/update_list), so that
# field shows each device's clock, not the record's history (pyck's device_state).
check_all_like_real() {
  local d
  for d in hour day slow; do
    check "$d holds the same tasks, lists and tags as real ($2)" \
      pyck 'same_device_state(device_state(t0, e0), device_state(t1, e1), "real", D)' \
      t0="$(S real "$1" tasks.json)" e0="$(S real "$1" export.json)" \
      t1="$(S "$d" "$1" tasks.json)" e1="$(S "$d" "$1" export.json)" D:="$d"
  done
}

declare -A LOG_MARK
# mark_sync_logs: remembers how long each device's sync log is, for no_conflicts_since_mark.
mark_sync_logs() {
  local d
  for d in "${FOUR[@]}"; do LOG_MARK[$d]=$(wc -l <"$RUN_DIR/sync-$d.log"); done
}
# no_conflicts_since_mark DEV: fails (printing them) if DEV's syncs since mark_sync_logs
# reported conflicts (tickit prints "⚠ N conflicts (server won)").
no_conflicts_since_mark() {
  ! tail -n +$((LOG_MARK[$1] + 1)) "$RUN_DIR/sync-$1.log" | grep 'conflicts (server won)'
}

# four_clocks_devices: tokens for day and slow (real and hour use start_server's), and the
# four devices.
four_clocks_devices() {
  local token_day token_slow d
  if token_day=$(add_token device-day) && token_slow=$(add_token device-slow); then
    pass "tokens for devices day and slow made and accepted by the running server"
  else
    fail "tokens for devices day and slow made and accepted by the running server" "$RUN_DIR/token.err"
    return 1
  fi
  make_device real "$TOKEN_A" ""
  make_device hour "$TOKEN_B" "+1h"
  make_device day "$token_day" "+1d"
  make_device slow "$token_slow" "-20s"
  for d in "${FOUR[@]}"; do DEV_OFFSET[$d]=$(offset_secs "${DEV_SKEW[$d]}"); done
}

# four_clocks_setup: the records the races are about, made on every device's clock, and a
# round of syncs so that every device holds them all.
four_clocks_setup() {
  local g
  for g in outdoors phone someday; do check "real: tickit tags add $g" tk real tags add "$g"; done
  check "real: tickit lists add Garden" tk real lists add Garden
  check "real: tickit add 'Prune the roses' --list Garden --tags outdoors,someday" \
    tk real add "Prune the roses" --list Garden --tags outdoors,someday
  check "real: tickit add 'Rake the leaves' --list Garden" tk real add "Rake the leaves" --list Garden
  for g in "Book flights" "Renew insurance" "Cancel the gym"; do
    check "real: tickit add '$g'" tk real add "$g"
  done
  act real "tickit add 'Call the bank'" tk real add "Call the bank"
  check_clock real "Call the bank"
  act hour "tickit add 'Water the plants' --tags outdoors" tk hour add "Water the plants" --tags outdoors
  check_clock hour "Water the plants"
  act day "tickit lists add Workshop" tk day lists add Workshop
  act day "tickit add 'Fix the bike' --list Workshop" tk day add "Fix the bike" --list Workshop
  check_clock day "Fix the bike"
  act slow "tickit add 'Buy stamps'" tk slow add "Buy stamps"
  check_clock slow "Buy stamps"
  for g in "${FOUR[@]}"; do do_sync "$g"; done
  snap_all setup
  check "real: holds the 9 tasks, 3 lists, 3 tags made so far" \
    pyck '
      same(sorted(t["title"] for t in tr), sorted(["Prune the roses", "Rake the leaves", "Book flights",
           "Renew insurance", "Cancel the gym", "Call the bank", "Water the plants", "Fix the bike",
           "Buy stamps"]), "titles")
      same(sorted(l["name"] for l in e["lists"]), ["Garden", "Inbox", "Workshop"], "lists")
      same(sorted(g["name"] for g in e["tags"]), ["outdoors", "phone", "someday"], "tags")' \
    tr="$(S real setup tasks.json)" e="$(S real setup export.json)"
  check_all_like_real setup "after the setup round"
}

# four_clocks_fast_first: fast devices act, then other devices act later on the same records.
four_clocks_fast_first() {
  act day "retitle 'Book flights' to 'Book flights to Oslo' (TUI edit)" \
    tui day retitle "Book flights" "Book flights to Oslo"
  act real "delete 'Book flights to Oslo' (TUI delete, tombstone)" tui real delete-task "Book flights to Oslo"
  act hour "tag 'Call the bank' with phone (TUI edit)" tui hour tag "Call the bank" phone
  act real "untag phone from 'Call the bank' (TUI edit)" tui real untag "Call the bank" phone
  act day "tickit done 'Fix the bike'" tk_must day "done" "Fix the bike"
  act day "retitle 'Rake the leaves' to 'Rake the leaves twice' (TUI edit)" \
    tui day retitle "Rake the leaves" "Rake the leaves twice"
  act hour "tickit add 'Mow the lawn' --list Garden" tk hour add "Mow the lawn" --list Garden
  snap hour mow
  check "hour: 'Mow the lawn' went into Garden (hour has that list)" \
    pyck 'assert [l["name"] for l in e["lists"] if l["id"] == task(t, "Mow the lawn")["list_id"]] == ["Garden"]' \
    t="$(S hour mow tasks.json)" e="$(S hour mow export.json)"
  act hour "delete tag someday (TUI delete, tombstone)" tui hour delete-tag someday
  act real "delete list Garden, its tasks moved to the inbox (TUI delete, tombstone)" \
    tui real delete-list Garden
  act real "retitle 'Renew insurance' to 'Renew car insurance' (TUI edit)" \
    tui real retitle "Renew insurance" "Renew car insurance"
  act hour "retitle it to 'Renew car insurance online' (TUI edit)" \
    tui hour retitle "Renew car insurance" "Renew car insurance online"
  act hour "delete 'Cancel the gym' (TUI delete, tombstone)" tui hour delete-task "Cancel the gym"
  act day "tag 'Buy stamps' with phone (TUI edit)" tui day tag "Buy stamps" phone
}

# four_clocks_slow_later: after SLOW_LAG_WAIT, the slow device acts on records the fast ones
# changed (and created), then the day device acts after the slow one.
four_clocks_slow_later() {
  log "  ... waiting ${SLOW_LAG_WAIT}s of real time: the slow device's actions must be more than its 20 s lag later"
  pace "$SLOW_LAG_WAIT"
  act slow "tickit done 'Water the plants'" tk_must slow "done" "Water the plants"
  act slow "tickit undo 'Fix the bike'" tk_must slow undo "Fix the bike"
  act slow "retitle 'Renew car insurance online' to 'Renew car insurance online by Friday' (TUI edit)" \
    tui slow retitle "Renew car insurance online" "Renew car insurance online by Friday"
  act slow "untag phone from 'Buy stamps' (TUI edit)" tui slow untag "Buy stamps" phone
  act day "tag 'Water the plants' with phone (TUI edit)" tui day tag "Water the plants" phone
}

# The expected outcome of the actions above in their real-time order, as pyck code: title ->
# (completed, list ('<Inbox>' for each device's inbox), tag names); the tasks that must be gone;
# the lists and tags left.
FOUR_CLOCKS_EXPECTED='
want_tasks = {
    # in Garden with tags outdoors, someday; hour deleted tag someday, then real deleted Garden
    "Prune the roses": (False, "<Inbox>", ["outdoors"]),
    # day retitled it (+1 d clock), then real deleted Garden
    "Rake the leaves twice": (False, "<Inbox>", []),
    # hour added it to Garden (+1 h clock), then real deleted Garden
    "Mow the lawn": (False, "<Inbox>", []),
    # hour tagged it phone (+1 h), real untagged it 1.5 s later
    "Call the bank": (False, "<Inbox>", []),
    # real retitled it, hour retitled it later (+1 h), slow retitled it 22 s later (-20 s)
    "Renew car insurance online by Friday": (False, "<Inbox>", []),
    # hour added it (+1 h), slow completed it (-20 s), then day tagged it phone (+1 d)
    "Water the plants": (True, "<Inbox>", ["outdoors", "phone"]),
    # day added it to its list Workshop and completed it (+1 d); slow reopened it 22 s later
    "Fix the bike": (False, "Workshop", []),
    # slow added it; day tagged it phone (+1 d); slow untagged it 22 s later (-20 s)
    "Buy stamps": (False, "<Inbox>", []),
}
# day retitled "Book flights" (+1 d), real deleted it 1.5 s later; hour deleted "Cancel the gym"
gone = ["Book flights", "Book flights to Oslo", "Cancel the gym", "Rake the leaves",
        "Renew insurance", "Renew car insurance", "Renew car insurance online"]
want_lists = ["<Inbox>", "Workshop"]  # Garden deleted by real
want_tags = ["outdoors", "phone"]     # someday deleted by hour
'

# four_clocks_final: every device syncs twice around; then each holds the expected outcome and
# the same as every other device, none reported a conflict, and a second such round changes
# nothing.
four_clocks_final() {
  local d
  mark_sync_logs
  all_sync_twice
  snap_all final
  for d in "${FOUR[@]}"; do
    check "$d: holds the outcome of the actions' real-time order (titles, done, lists, tags, deletes)" \
      pyck "$FOUR_CLOCKS_EXPECTED"'
p = outcome_problems(t, e, want_tasks, gone, want_lists, want_tags)
assert not p, f"{len(p)} problem(s): " + "; ".join(p)' \
      t="$(S "$d" final tasks.json)" e="$(S "$d" final export.json)"
  done
  check_all_like_real final "after the final round"
  for d in "${FOUR[@]}"; do
    check "$d: no conflict reported in the final round" no_conflicts_since_mark "$d"
  done
  mark_sync_logs
  all_sync_twice
  snap_all final2
  for d in "${FOUR[@]}"; do
    check "$d: a second final round changes nothing (list --json --all, export)" pyck 'same_state(t0, e0, t1, e1)' \
      t0="$(S "$d" final tasks.json)" e0="$(S "$d" final export.json)" \
      t1="$(S "$d" final2 tasks.json)" e1="$(S "$d" final2 export.json)"
    check "$d: no conflict reported in the second final round" no_conflicts_since_mark "$d"
  done
}

four_clocks() { # RUN-NAME
  RUN=$1
  RUN_DIR=$WORK/$RUN
  TIMELINE=$RUN_DIR/timeline.txt
  LAST_ACT=0
  mkdir -p "$RUN_DIR"
  : >"$TIMELINE"
  log ""
  log "=== run '$RUN': devices real (correct clock), hour (+1h), day (+1d), slow (-20s) ==="
  start_server || { stop_server; return 0; }
  four_clocks_devices || { stop_server; return 0; }
  four_clocks_setup
  four_clocks_fast_first
  four_clocks_slow_later
  four_clocks_final
  log "  actions in real-time order (UTC, device, clock offset):"
  sed 's/^/    /' "$TIMELINE"
  stop_server
}

# ---------------------------------------------------------------------------------------
# 6. Runs: no skew; A 1 minute behind the server; B 1 hour ahead of it; four devices, four clocks.
# ---------------------------------------------------------------------------------------
scenario no-skew "" ""
scenario a-behind-1min "-60s" ""
scenario b-ahead-1h "" "+1h"
four_clocks four-clocks

checks_finished # the EXIT trap prints the summary and sets the exit status
