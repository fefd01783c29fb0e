#!/usr/bin/env bash
# Switching from the original server: users who run the original tickit-sync 0.2.1 replace the
# binary with ours and keep their config file and database file; no device is touched.
#
# The original (cargo install tickit-sync 0.2.1) is set up with its own `init` and `token`
# commands in a directory of its own (config.toml, and the database tickit-sync.sqlite, which
# it resolves against its working directory). Two real tickit 0.5.8 devices, A and B (each
# its own HOME), build a history through it, a day in the past (faketime on the devices and the
# original), so that after the switch it is as old as a real one, older than the 300 s by which
# our server sets back its server_time:
#   A  tags home, work; lists Groceries, Projects; 'Buy milk' (Groceries, home),
#      'Call plumber' (Inbox, home, due 2031-07-15), 'Write report' (Projects, work, high),
#      'Old idea' (Projects)                                                     sync A1
#   B                                                                            sync B1
#   B  'Book dentist' (Inbox); list Reading with 'Read Dune'; done 'Buy milk'    sync B2
#   A                                                                            sync A2
#   A  retitle 'Write report' to 'Write quarterly report', tag 'Call plumber' work
#      (TUI edits), delete 'Old idea' (TUI delete, tombstone)                    sync A3
#   B                                                                            sync B3
#   B  delete list Reading (TUI delete, tombstone; 'Read Dune' to B's Inbox),
#      'Pick up parcel' (Inbox, home)                                            sync B4
#   A                                                                            sync A4
#   A  'Water plants' (Inbox), after B's last sync                               sync A5
# Through the original each device holds the other's Inbox tasks as orphans (pointing at the
# other device's Inbox id, a list it lacks). Then the original is stopped and ours is started,
# from the same directory, on the very same config.toml and tickit-sync.sqlite:
#   - its first start imports the original's tables (a line with the word "imported" in its
#     log, with as many tasks as the original's tasks table holds);
#   - B, then A, sync with plain `tickit sync`: each keeps its exact task set (ids, titles,
#     lists, tags, completion, priority, due date), B gains 'Water plants';
#   - a restart of ours imports nothing again;
#   - A adds 'Pay rent' (Inbox, home); B retitles 'Read Dune' to 'Read Dune Messiah' (TUI edit)
#     and adds 'Buy bread' (Groceries, home): each change reaches the other device;
#   - a new device C, with a token from our `token` command, gets the same set;
#   - `tickit done` works on an imported Inbox task on every device ('Book dentist' on A,
#     'Call plumber' on B, 'Water plants' on C), and every device ends with the same outcome;
#   - nothing deleted before the switch ('Old idea', list Reading) comes back anywhere;
#   - after every sync through ours, no task on any device that has synced through ours points
#     at a list that device lacks (read from each device's SQLite database); a device that has
#     not yet still holds the orphans the original left it;
#   - the original's tables (lists, tags, tasks, task_tags, tombstones, device_sync) are left
#     byte for byte as the original left them.
#
# Usage (from the repo root): tests/switch-from-original.sh
#   ORIGINAL_ROOT    where tickit-sync 0.2.1 is (or gets) installed  [~/.cache/tickit-sync-ci/original]
#   TICKIT_ROOT      where tickit 0.5.8 is (or gets) installed       [~/.cache/tickit-sync-ci/tickit]
#   TICKIT_SYNC_BIN  our server binary to test instead of building it with cargo
#   KEEP_TMP=1       keep the temporary directory (it is always kept when a check fails)
#
# Client facts (tickit 0.5.8) this relies on: `tickit add --tags X` drops tags that do not
# exist yet, so they are made first; the CLI cannot edit a title or tags nor delete with a
# tombstone, so those are made the way the TUI makes them, by tests/client_db.py; on an
# incoming list with is_inbox true and a foreign id the client moves the tasks pointing at that
# id into its own Inbox, and an incoming list delete moves its tasks into its own Inbox.
set -euo pipefail

CALL_TIMEOUT=60 # seconds, for every client and server CLI call
WAIT_SECS=20    # how long a server gets to come up / to pick up a new token

cd "$(dirname "$0")/.."
# shellcheck source=tests/checks.sh
source tests/checks.sh

# ---------------------------------------------------------------------------------------
# 1. Tools: tickit 0.5.8 and python3 (tests/client-tools.sh), the original server 0.2.1,
#    curl, our server.
# ---------------------------------------------------------------------------------------
# shellcheck source=tests/client-tools.sh
source tests/client-tools.sh
ensure_client_tools

ensure_original
command -v curl >/dev/null || die "curl is required"
find_server_binary
log "our server: $SERVER_BIN"

# ---------------------------------------------------------------------------------------
# Bookkeeping, cleanup.
# ---------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switch-from-original.XXXXXX")
SRV=$WORK/server # both servers' working directory: config.toml, tickit-sync.sqlite, logs
mkdir -p "$SRV" "$WORK/snap"
PHASE=setup # the current phase, the label of its checks' lines
checks_init PHASE WORK
SERVER_PID=
T_START=$(date +%s)

# stop_server: the running server (and, when it runs under faketime, faketime's child first).
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    local -a children
    mapfile -t children < <(pgrep -P "$SERVER_PID" 2>/dev/null || true)
    kill "${children[@]}" "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${children[@]}" "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

# The EXIT trap: the server stopped, then the summary (tests/checks.sh).
cleanup() {
  local rc=$?
  stop_server
  checks_end "$rc" "'$PHASE'" "server config, database and logs, sync logs, snapshots" \
    "ran in $(($(date +%s) - T_START)) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

phase() { PHASE=$1; log ""; log "=== $1: $2 ==="; }

# ---------------------------------------------------------------------------------------
# 2. Reading a device's database (tickit's own SQLite file, read while no client runs) and
#    judging it: st.py snap DB prints the device's lists, tags and tasks as JSON; st.py dump
#    DB prints the original server's tables; st.py judge 'CODE' NAME=FILE... binds each FILE's
#    JSON to NAME (NAME:=TEXT binds TEXT) and runs CODE, which passes if it raises nothing.
# ---------------------------------------------------------------------------------------
ST="$WORK/st.py"
cat >"$ST" <<'PY'
import json, sqlite3, sys, textwrap

def snap(db):
    con = sqlite3.connect(db)
    lists = {i: {"name": n, "is_inbox": bool(b)}
             for i, n, b in con.execute("SELECT id, name, is_inbox FROM lists")}
    tags = dict(con.execute("SELECT id, name FROM tags"))
    links = {}
    for task, tag in con.execute("SELECT task_id, tag_id FROM task_tags"):
        links.setdefault(task, []).append(tag)
    tasks = {}
    for i, title, list_id, done, done_at, prio, due in con.execute(
            "SELECT id, title, list_id, completed, completed_at, priority, due_date FROM tasks"):
        tasks[i] = {"title": title, "list_id": list_id, "tag_ids": sorted(links.get(i, [])),
                    "completed": bool(done), "completed_at": done_at, "priority": prio,
                    "due_date": due}
    return {"lists": lists, "tags": tags, "tasks": tasks}

ORIGINAL_TABLES = ["lists", "tags", "tasks", "task_tags", "tombstones", "device_sync"]

def dump(db):
    """The original server's tables: their schema (and indexes) and every row in rowid order."""
    con = sqlite3.connect(db)
    out = []
    for t in ORIGINAL_TABLES:
        out += [sql for (sql,) in con.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY name", (t,))]
        out += [f"{t}: {json.dumps(list(r), ensure_ascii=False)}"
                for r in con.execute(f'SELECT * FROM "{t}" ORDER BY rowid')]
    return "\n".join(out)

def show(v):
    return json.dumps(v, indent=1, sort_keys=True, ensure_ascii=False)

def inbox_ids(*snaps):
    return {i for s in snaps for i, l in s["lists"].items() if l["is_inbox"]}

def orphans(s):
    """Tasks pointing at a list the device lacks, as 'title -> list_id'."""
    return sorted(f"{t['title']!r} -> {t['list_id']}" for t in s["tasks"].values()
                  if t["list_id"] not in s["lists"])

def view(s, also_inbox=()):
    """Tasks by id with the list's name ('<Inbox>' for the device's inbox, and for any id in
    also_inbox: another device's inbox, which the original left tasks pointing at) and the tags'
    names, so devices (whose inbox ids differ) can be compared."""
    out = {}
    for i, t in s["tasks"].items():
        l = s["lists"].get(t["list_id"])
        if l is not None:
            name = "<Inbox>" if l["is_inbox"] else l["name"]
        else:
            name = "<Inbox>" if t["list_id"] in also_inbox else f"<ORPHAN {t['list_id']}>"
        tags = sorted(s["tags"].get(g, f"<unknown tag {g}>") for g in t["tag_ids"])
        out[i] = {k: v for k, v in t.items() if k not in ("list_id", "tag_ids")} | {"list": name, "tags": tags}
    return out

def lists_tags(s):
    """Lists by id (every inbox counted, by no id) and tags by id."""
    return {"inboxes": sum(l["is_inbox"] for l in s["lists"].values()),
            "lists": {i: l["name"] for i, l in s["lists"].items() if not l["is_inbox"]},
            "tags": s["tags"]}

def differences(va, vb, na, nb):
    out = []
    for i in sorted(set(va) | set(vb)):
        if i not in va or i not in vb:
            out.append(f"task {(va.get(i) or vb[i])['title']!r} ({i}) only on {na if i in va else nb}")
            continue
        for k in sorted(set(va[i]) | set(vb[i])):
            if va[i].get(k) != vb[i].get(k):
                out.append(f"task {va[i]['title']!r} {k}: {va[i].get(k)!r} on {na}, {vb[i].get(k)!r} on {nb}")
    return out

def same_holdings(sa, sb, na, nb, inbox_a=(), inbox_b=(), new_on_b=()):
    """Devices a and b hold the same tasks (by id: title, list, tags, completion, priority, due
    date), lists and tags. inbox_a, inbox_b: other devices' inbox ids that count as the inbox on
    a, on b (see view); new_on_b: titles of tasks b holds and a lacks."""
    va, vb = view(sa, inbox_a), view(sb, inbox_b)
    for title in new_on_b:
        ids = [i for i, t in vb.items() if t["title"] == title]
        assert len(ids) == 1 and ids[0] not in va, f"{title!r} must be on {nb} once and not on {na}"
        del vb[ids[0]]
    d = differences(va, vb, na, nb)
    la, lb = lists_tags(sa), lists_tags(sb)
    d += [f"{k}: {la[k]!r} on {na}, {lb[k]!r} on {nb}" for k in la if la[k] != lb[k]]
    assert not d, f"{len(d)} difference(s):\n" + "\n".join(d)

def task_is(s, title, lst, tags, done):
    """s holds one task titled `title`, in list `lst` ('<Inbox>': its own inbox), with the tags
    `tags`, completed or not."""
    found = [t for t in view(s).values() if t["title"] == title]
    assert len(found) == 1, f"{len(found)} tasks titled {title!r}"
    got = (found[0]["list"], found[0]["tags"], found[0]["completed"])
    assert got == (lst, sorted(tags), done), f"{title!r}: (list, tags, completed) is {got}"

def nothing_back(s, a0, b0):
    """Nothing deleted before the switch is on s: task 'Old idea' (its id in a0), list Reading
    (its id in b0)."""
    task, lst = id_of(a0, "tasks", "Old idea"), id_of(b0, "lists", "Reading")
    back = [f"task {task}" for i in s["tasks"] if i == task]
    back += [f"task titled {t['title']!r}" for t in s["tasks"].values() if t["title"] == "Old idea"]
    back += [f"list {i} {l['name']!r}" for i, l in s["lists"].items() if i == lst or l["name"] == "Reading"]
    back += [f"task {t['title']!r} in list {lst}" for t in s["tasks"].values() if t["list_id"] == lst]
    assert not back, "deleted before the switch, back: " + "; ".join(back)

def outcome(s, want, lists, tags, also_inbox=()):
    """s holds exactly the tasks of want (title -> (list name, tag names, completed)), the lists
    `lists` ('<Inbox>' for its one inbox) and the tags `tags`."""
    p, by_title = [], {}
    for t in view(s, also_inbox).values():
        by_title.setdefault(t["title"], []).append(t)
    for title, (lst, tg, done) in want.items():
        found = by_title.get(title, [])
        if len(found) != 1:
            p.append(f"{title!r}: {len(found)} tasks so titled, expected 1")
            continue
        t = found[0]
        got = (t["list"], t["tags"], t["completed"], t["completed_at"] is not None)
        if got != (lst, sorted(tg), done, done):
            p.append(f"{title!r}: (list, tags, completed, has completed_at) is {got}, expected {(lst, sorted(tg), done, done)}")
    extra = sorted(set(by_title) - set(want))
    if extra:
        p.append(f"unexpected tasks {extra}")
    got_lists = sorted("<Inbox>" if l["is_inbox"] else l["name"] for l in s["lists"].values())
    if got_lists != sorted(lists):
        p.append(f"lists {got_lists}, expected {sorted(lists)}")
    if sorted(s["tags"].values()) != sorted(tags):
        p.append(f"tags {sorted(s['tags'].values())}, expected {sorted(tags)}")
    assert not p, f"{len(p)} problem(s):\n" + "\n".join(p)

def same(x, y):
    assert x == y, f"{x!r}\n----- vs -----\n{y!r}"

def id_of(s, kind, name):
    """The id of the one task titled / list named `name` in snapshot s."""
    key = "title" if kind == "tasks" else "name"
    ids = [i for i, r in s[kind].items() if r[key] == name]
    assert len(ids) == 1, f"expected one of {kind} named {name!r}, found {ids}"
    return ids[0]

if sys.argv[1] == "snap":
    print(show(snap(sys.argv[2])))
elif sys.argv[1] == "dump":
    print(dump(sys.argv[2]))
else:
    env = {k: v for k, v in globals().items() if not k.startswith("__")}
    for arg in sys.argv[3:]:
        if ":=" in arg:
            name, _, value = arg.partition(":=")
        else:
            name, _, path = arg.partition("=")
            value = json.load(open(path))
        env[name] = value
    try:
        exec(textwrap.dedent(sys.argv[2]).strip("\n"), env)
    except Exception as e:
        print(f"{type(e).__name__}: {e}")
        sys.exit(1)
PY
judge() { python3 "$ST" judge "$@"; }

# ---------------------------------------------------------------------------------------
# 3. Devices: each is its own HOME with ~/.config/tickit/{config.toml,tickit.sqlite}; its
#    config (server URL and token) is written once and never touched again.
# ---------------------------------------------------------------------------------------
declare -A DEV_HOME
PORT=
# The clock of the devices and the original server: through the original, the history is made a
# day in the past (faketime), so that it is as old after the switch as a real one would be: older
# than our server's skew allowance (300 s), which sets back the server_time it sends, so that the
# devices' syncs after the switch do not upload the whole history again.
CLOCK=()     # the command prefix that sets it (libfaketime, see client-tools.sh), or () for the real clock
CLOCK_SECS=0 # its offset in seconds, for tests/client_db.py

make_device() { # NAME TOKEN
  local home=$WORK/home-$1
  mkdir -p "$home/.config/tickit"
  cat >"$home/.config/tickit/config.toml" <<EOF
[sync]
enabled = true
server = "http://127.0.0.1:$PORT"
token = "$2"
interval_secs = 300
EOF
  DEV_HOME[$1]=$home
}
db_of() { printf '%s/.config/tickit/tickit.sqlite' "${DEV_HOME[$1]}"; }

# tk DEVICE ARGS...: the client as DEVICE, no terminal, bounded, on CLOCK.
tk() {
  local dev=$1; shift
  local home=${DEV_HOME[$dev]}
  timeout "$CALL_TIMEOUT" env -i PATH="$PATH" HOME="$home" XDG_CONFIG_HOME="$home/.config" \
    XDG_DATA_HOME="$home/.local/share" TERM=dumb NO_COLOR=1 LANG=C.UTF-8 "${CLOCK[@]}" "$TICKIT" "$@" </dev/null
}

# tui DEVICE OP ARGS...: an edit the TUI makes (tests/client_db.py), on CLOCK.
tui() {
  local dev=$1; shift
  python3 tests/client_db.py "$(db_of "$dev")" "$CLOCK_SECS" "$@"
}

# done_ok DEVICE TITLE: `tickit done TITLE` exits 0 and says it completed that task (it exits 0
# on "Task not found" too).
done_ok() {
  local out rc=0
  out=$(tk "$1" "done" "$2" 2>&1) || rc=$?
  printf '%s\n' "$out"
  [ "$rc" -eq 0 ] && grep -qF "Completed: $2" <<<"$out"
}

# sync_ok DEVICE: `tickit sync` exits 0 and says it completed; its output goes to sync-DEVICE.log.
sync_ok() {
  local dev=$1 rc=0 out=$WORK/sync.out
  tk "$dev" sync >"$out" 2>&1 || rc=$?
  { echo "--- $(date -u +%T.%N) [$PHASE] tickit sync (exit $rc)"; cat "$out"; } >>"$WORK/sync-$dev.log"
  cat "$out"
  [ "$rc" -eq 0 ] && grep -q 'Sync complete' "$out"
}
do_sync() { check "$1: tickit sync" sync_ok "$1"; }

# snap DEVICE TAG: the device's lists, tags and tasks, read from its database, into S DEVICE TAG.
snap() {
  python3 "$ST" snap "$(db_of "$1")" >"$(S "$1" "$2")" 2>"$WORK/snap.err" \
    || { fail "$1: reading its database ($2)" "$WORK/snap.err"; echo '{"lists": {}, "tags": {}, "tasks": {}}' >"$(S "$1" "$2")"; }
}
S() { printf '%s/snap/%s-%s.json' "$WORK" "$1" "$2"; }

# After the switch: every device that has synced through our server, after every sync.
OURS_SYNCED=()
no_orphans() { # DEVICE...: no task on these devices points at a list that device lacks
  local dev bad=0
  for dev in "$@"; do
    python3 "$ST" snap "$(db_of "$dev")" >"$WORK/orphans.json" || { bad=1; continue; }
    judge 'p = orphans(s); assert not p, D + ": tasks pointing at a list it lacks: " + "; ".join(p)' \
      s="$WORK/orphans.json" D:="$dev" || bad=1
  done
  return "$bad"
}
sync_ours() { # DEVICE: sync through our server, then the orphan check
  local dev=$1 d
  do_sync "$dev"
  for d in "${OURS_SYNCED[@]}"; do [ "$d" = "$dev" ] && dev=; done
  [ -z "$dev" ] || OURS_SYNCED+=("$dev")
  check "after $1's sync: no task on $(IFS=,; echo "${OURS_SYNCED[*]}") points at a list that device lacks (tickit's SQLite)" \
    no_orphans "${OURS_SYNCED[@]}"
}

# ---------------------------------------------------------------------------------------
# 4. The servers, each run from $SRV with --config config.toml.
# ---------------------------------------------------------------------------------------
# http_code METHOD PATH [TOKEN]: the status of a request to the server (000 if none).
http_code() {
  local -a auth=()
  [ -z "${3:-}" ] || auth=(-H "Authorization: Bearer $3" -H 'Content-Type: application/json' --data '{}')
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$1" "${auth[@]}" "http://127.0.0.1:$PORT$2" || true
}
# token_accepted TOKEN: a sync request with an empty object body is answered with anything but
# 401 (both servers check the token before the body); bounded wait, for a new token.
token_accepted() {
  local i
  for ((i = 0; i < WAIT_SECS * 10; i++)); do
    [ "$(http_code POST /api/v1/sync "$1")" != 401 ] && return 0
    sleep 0.1
  done
  return 1
}

# wait_for_log FILE PATTERN: until the running server's FILE has a line matching the ERE PATTERN
# (bounded); fails at once if the server exits.
wait_for_log() {
  local i
  for ((i = 0; i < WAIT_SECS * 10; i++)); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start_original() {
  (cd "$SRV" && exec env -u TICKIT_SYNC_CONFIG -u RUST_LOG NO_COLOR=1 \
    "${CLOCK[@]}" "$ORIGINAL" serve --config config.toml) >>"$SRV/original.log" 2>&1 </dev/null &
  SERVER_PID=$!
  if wait_for_log "$SRV/original.log" "listening on http://127\.0\.0\.1:$PORT" \
    && [ "$(http_code GET /health)" = 200 ]; then
    pass "original tickit-sync $ORIGINAL_VERSION listening on 127.0.0.1:$PORT, /health answers 200"
  else
    fail "original tickit-sync $ORIGINAL_VERSION comes up on 127.0.0.1:$PORT within ${WAIT_SECS}s" "$SRV/original.log"
    return 1
  fi
}

# start_ours N: our server, started the N-th time, its stderr in ours-N.stderr.
start_ours() {
  local err=$SRV/ours-$1.stderr
  (cd "$SRV" && exec env -u TICKIT_SYNC_CONFIG -u TICKIT_SYNC_HOST -u TICKIT_SYNC_PORT -u TICKIT_SYNC_DB \
    -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID \
    "$SERVER_BIN" serve --config config.toml) >"$SRV/ours-$1.stdout" 2>"$err" </dev/null &
  SERVER_PID=$!
  if wait_for_log "$err" "listening on 127\.0\.0\.1:$PORT" && [ "$(http_code GET /health)" = 200 ]; then
    pass "ours (start $1) on the original's config.toml and database: listening on 127.0.0.1:$PORT, /health 200"
  else
    fail "ours (start $1) comes up on the original's config.toml and database within ${WAIT_SECS}s" "$err"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------
# 5. The original: init, loopback and a free port, a token per device, started.
# ---------------------------------------------------------------------------------------
phase original "tickit-sync $ORIGINAL_VERSION set up with its own init and token commands"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
check "original: tickit-sync init --output config.toml" \
  bash -c 'cd "$1" && timeout "$2" "$3" init --output config.toml' _ "$SRV" "$CALL_TIMEOUT" "$ORIGINAL"
sed -i -e 's/^bind = .*/bind = "127.0.0.1"/' -e "s/^port = .*/port = $PORT/" "$SRV/config.toml"
check "original: config.toml says bind = \"127.0.0.1\", port = $PORT, database tickit-sync.sqlite" \
  grep -Pzq "\[server\]\nbind = \"127\.0\.0\.1\"\nport = $PORT\n\n\[database\]\npath = \"tickit-sync\.sqlite\"" "$SRV/config.toml"
# original_token NAME: the token `tickit-sync token --name NAME` prints on its "Token:" line.
original_token() {
  (cd "$SRV" && timeout "$CALL_TIMEOUT" "$ORIGINAL" token --name "$1" --config config.toml) 2>"$WORK/token.err" \
    | sed -n 's/^Token: \(tks_[A-Za-z0-9]*\)$/\1/p' | head -n1
}
TOKEN_A=$(original_token device-a)
TOKEN_B=$(original_token device-b)
check "original: tickit-sync token --name device-a / device-b print two tokens" \
  bash -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]' _ "$TOKEN_A" "$TOKEN_B"
check "original: config.toml holds two argon2 token_hash entries" \
  test "$(grep -c '^token_hash = "\$argon2id\$v=19\$' "$SRV/config.toml")" -eq 2
[ -n "$TOKEN_A" ] && [ -n "$TOKEN_B" ] || exit 1
CLOCK=(env LD_PRELOAD="$LIBFAKETIME" FAKETIME=-1d)
CLOCK_SECS=-86400
start_original || exit 1
make_device A "$TOKEN_A"
make_device B "$TOKEN_B"

# ---------------------------------------------------------------------------------------
# 6. The history, through the original.
# ---------------------------------------------------------------------------------------
phase history "A and B build up a history through the original"
for g in home work; do check "A: tickit tags add $g" tk A tags add "$g"; done
for l in Groceries Projects; do check "A: tickit lists add $l" tk A lists add "$l"; done
check "A: tickit add 'Buy milk' --list Groceries --tags home" tk A add "Buy milk" --list Groceries --tags home
check "A: tickit add 'Call plumber' --tags home --due 2031-07-15" tk A add "Call plumber" --tags home --due 2031-07-15
check "A: tickit add 'Write report' --list Projects --tags work --priority high" \
  tk A add "Write report" --list Projects --tags work --priority high
check "A: tickit add 'Old idea' --list Projects" tk A add "Old idea" --list Projects
snap A a0
do_sync A                                                            # A1
do_sync B                                                            # B1
check "B: tickit add 'Book dentist'" tk B add "Book dentist"
check "B: tickit lists add Reading" tk B lists add Reading
check "B: tickit add 'Read Dune' --list Reading" tk B add "Read Dune" --list Reading
check "B: tickit done 'Buy milk'" done_ok B "Buy milk"
snap B b0
do_sync B                                                            # B2
do_sync A                                                            # A2
check "A: retitle 'Write report' to 'Write quarterly report' (TUI edit)" \
  tui A retitle "Write report" "Write quarterly report"
check "A: tag 'Call plumber' with work (TUI edit)" tui A tag "Call plumber" work
check "A: delete 'Old idea' (TUI delete, tombstone in sync_tombstones)" tui A delete-task "Old idea"
do_sync A                                                            # A3
do_sync B                                                            # B3
check "B: delete list Reading (TUI delete, tombstone; its task to B's Inbox)" tui B delete-list Reading
check "B: tickit add 'Pick up parcel' --tags home" tk B add "Pick up parcel" --tags home
do_sync B                                                            # B4
do_sync A                                                            # A4
check "A: tickit add 'Water plants'" tk A add "Water plants"
do_sync A                                                            # A5
snap A pre
snap B pre
check "the history is a day old: A's first task was created a day before the real clock (faketime in effect)" \
  python3 -c '
import sqlite3, sys, time
from datetime import datetime
first = sqlite3.connect(sys.argv[1]).execute("SELECT min(created_at) FROM tasks").fetchone()[0]
age = time.time() - datetime.fromisoformat(first[:19] + "+00:00").timestamp()
assert 86400 <= age < 86400 + 600, f"created_at {first} is {age:.0f} s ago"' "$(db_of A)"

# What the history must have left, on the original's terms: tasks pointing at the other
# device's Inbox count as Inbox tasks here (they are orphans on that device).
HISTORY_WANT='
want = {
    "Buy milk": ("Groceries", ["home"], True),
    "Call plumber": ("<Inbox>", ["home", "work"], False),
    "Write quarterly report": ("Projects", ["work"], False),
    "Book dentist": ("<Inbox>", [], False),
    "Read Dune": ("<Inbox>", [], False),
    "Pick up parcel": ("<Inbox>", ["home"], False),
    "Water plants": ("<Inbox>", [], False),
}
lists, tags = ["<Inbox>", "Groceries", "Projects"], ["home", "work"]
'
check "A before the switch: the history's 7 tasks (Inbox tasks of B's Inbox included), 3 lists, 2 tags" \
  judge "$HISTORY_WANT"'outcome(a, want, lists, tags, inbox_ids(a, b))' a="$(S A pre)" b="$(S B pre)"
check "B before the switch: the same but 'Water plants' (A synced it after B's last sync)" \
  judge "$HISTORY_WANT"'del want["Water plants"]; outcome(b, want, lists, tags, inbox_ids(a, b))' \
  a="$(S A pre)" b="$(S B pre)"
check "B before the switch: its only orphan is A's Inbox task 'Call plumber' (A's Inbox id, a list B lacks)" \
  judge 'same([(t["title"], t["list_id"]) for t in b["tasks"].values() if t["list_id"] not in b["lists"]],
                       [("Call plumber", i) for i in inbox_ids(a)])' a="$(S A pre)" b="$(S B pre)"
check "A before the switch: its orphans are B's Inbox tasks 'Book dentist' and 'Pick up parcel'" \
  judge 'same(sorted((t["title"], t["list_id"]) for t in a["tasks"].values() if t["list_id"] not in a["lists"]),
                       sorted((n, i) for n in ("Book dentist", "Pick up parcel") for i in inbox_ids(b)))' \
  a="$(S A pre)" b="$(S B pre)"
check "B before the switch: holds the same tasks as A (by id, Inbox ids mapped) but 'Water plants'" \
  judge 'same_holdings(b, a, "B", "A", inbox_ids(a, b), inbox_ids(a, b), ["Water plants"])' a="$(S A pre)" b="$(S B pre)"

stop_server
pass "original stopped"
CLOCK=()
CLOCK_SECS=0
python3 "$ST" dump "$SRV/tickit-sync.sqlite" >"$WORK/original-tables.before" 2>"$WORK/dump.err" \
  || fail "reading the original's tables from tickit-sync.sqlite" "$WORK/dump.err"
ORIGINAL_TASKS=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM tasks").fetchone()[0])' \
  "$SRV/tickit-sync.sqlite")
check "the original's database holds the 7 live tasks and tombstones for 'Old idea' and list Reading" \
  judge 'assert n == "7", n; assert sum(1 for l in d.splitlines() if l.startswith("tombstones: ")) == 2, d' \
  n:="$ORIGINAL_TASKS" d:="$(cat "$WORK/original-tables.before")"

# finish: ours stopped, the original's tables compared with what the original left, the end.
finish() {
  PHASE=tables
  stop_server
  python3 "$ST" dump "$SRV/tickit-sync.sqlite" >"$WORK/original-tables.after" 2>&1 || true
  diff -u "$WORK/original-tables.before" "$WORK/original-tables.after" >"$WORK/tables.diff" || true
  check "the original's tables (lists, tags, tasks, task_tags, tombstones, device_sync) are as the original left them" \
    bash -c 'cat "$1"; [ ! -s "$1" ]' _ "$WORK/tables.diff"
  check "our server's logs mention no device's token" \
    bash -c 'for t in "${@:2}"; do [ -z "$t" ] || ! grep -qF "$t" "$1"/ours-*.stderr "$1"/ours-*.stdout || exit 1; done' \
    _ "$SRV" "$TOKEN_A" "$TOKEN_B" "${TOKEN_C:-}"
  checks_finished # the EXIT trap prints the summary and sets the exit status
}

# ---------------------------------------------------------------------------------------
# 7. The switch: ours on the very same config.toml and tickit-sync.sqlite, devices untouched.
# ---------------------------------------------------------------------------------------
phase switch "ours started from the same directory on the same config.toml and tickit-sync.sqlite"
if ! start_ours 1; then
  fail "the checks after the switch were not run: our server did not start on the original's files"
  finish
fi
check "ours (start 1): its log says what it imported (a line with the word 'imported')" \
  grep -w imported "$SRV/ours-1.stderr"
check "ours (start 1): imported $ORIGINAL_TASKS tasks, as many as the original's tasks table holds" \
  bash -c 'grep -w imported "$1" | grep -qw "$2 tasks"' _ "$SRV/ours-1.stderr" "$ORIGINAL_TASKS"
sync_ours B # B's first sync through ours: 'Water plants' is new to it
sync_ours A
snap A switched
snap B switched
check "A: after its first sync through ours, exactly the tasks it held before (ids, titles, lists, tags, completion, priority, due date), lists and tags" \
  judge 'same_holdings(pre, post, "A before", "A after", inbox_ids(pre, b))' \
  pre="$(S A pre)" b="$(S B pre)" post="$(S A switched)"
check "B: after its first sync through ours, exactly the tasks it held before and 'Water plants', lists and tags" \
  judge 'same_holdings(pre, post, "B before", "B after", inbox_ids(pre, a), (), ["Water plants"])' \
  pre="$(S B pre)" a="$(S A pre)" post="$(S B switched)"
check "B: 'Water plants' and 'Call plumber' (A's Inbox tasks) are in B's own Inbox" \
  judge 'task_is(b, "Water plants", "<Inbox>", [], False); task_is(b, "Call plumber", "<Inbox>", ["home", "work"], False)' \
  b="$(S B switched)"
check "A and B hold the same tasks, lists and tags" \
  judge 'same_holdings(a, b, "A", "B")' a="$(S A switched)" b="$(S B switched)"
for d in A B; do
  check "$d: nothing deleted before the switch is back ('Old idea', list Reading)" \
    judge 'nothing_back(s, a0, b0)' s="$(S $d switched)" a0="$(S A a0)" b0="$(S B b0)"
done

phase restart "ours restarted"
stop_server
if ! start_ours 2; then
  fail "the checks after the restart were not run: our server did not start again"
  finish
fi
check "ours (start 2): imports nothing again (no line with the word 'imported')" \
  bash -c '! grep -w imported "$1"' _ "$SRV/ours-2.stderr"

# ---------------------------------------------------------------------------------------
# 8. After the switch: changes on either device reach the other; a new device C.
# ---------------------------------------------------------------------------------------
phase after "changes made after the switch, on A and on B"
check "A: tickit add 'Pay rent' --tags home" tk A add "Pay rent" --tags home
sync_ours A
sync_ours B
check "B: retitle 'Read Dune' to 'Read Dune Messiah' (TUI edit of an imported task)" \
  tui B retitle "Read Dune" "Read Dune Messiah"
check "B: tickit add 'Buy bread' --list Groceries --tags home" tk B add "Buy bread" --list Groceries --tags home
sync_ours B
sync_ours A
snap A changed
snap B changed
check "B: holds A's 'Pay rent', in B's own Inbox, tag home" \
  judge 'task_is(b, "Pay rent", "<Inbox>", ["home"], False)' b="$(S B changed)"
check "A: holds B's 'Read Dune Messiah' (Inbox, retitled) and 'Buy bread' (Groceries, home); no 'Read Dune'" \
  judge '
    task_is(a, "Read Dune Messiah", "<Inbox>", [], False)
    task_is(a, "Buy bread", "Groceries", ["home"], False)
    assert all(t["title"] != "Read Dune" for t in a["tasks"].values()), "Read Dune is still on A"' \
  a="$(S A changed)"
check "A and B hold the same tasks, lists and tags" \
  judge 'same_holdings(a, b, "A", "B")' a="$(S A changed)" b="$(S B changed)"

phase device-C "a third, new device with a token from our token command"
TOKEN_C=$( (cd "$SRV" && timeout "$CALL_TIMEOUT" env -u TICKIT_SYNC_CONFIG \
  "$SERVER_BIN" token --name device-c --config config.toml) 2>"$WORK/token.err" \
  | grep -Eo 'tks_[A-Za-z0-9_-]+' | head -n1 || true)
if [ -z "$TOKEN_C" ]; then
  fail "ours: tickit-sync token --name device-c --config config.toml prints a token" "$WORK/token.err"
  finish
fi
pass "ours: tickit-sync token --name device-c --config config.toml prints a token"
check "the running server accepts device C's new token within ${WAIT_SECS}s" token_accepted "$TOKEN_C"
make_device C "$TOKEN_C"
sync_ours C
snap C first
check "C: holds the same tasks, lists and tags as A" \
  judge 'same_holdings(a, c, "A", "C")' a="$(S A changed)" c="$(S C first)"
check "C: nothing deleted before the switch is back ('Old idea', list Reading)" \
  judge 'nothing_back(s, a0, b0)' s="$(S C first)" a0="$(S A a0)" b0="$(S B b0)"

# ---------------------------------------------------------------------------------------
# 9. `tickit done` on an imported Inbox task, on every device; then every device converges.
# ---------------------------------------------------------------------------------------
phase "done" "tickit done on an imported Inbox task on every device"
check "A: tickit done 'Book dentist' (B's Inbox task, an orphan on A before the switch)" done_ok A "Book dentist"
sync_ours A
sync_ours B
check "B: tickit done 'Call plumber' (A's Inbox task, an orphan on B before the switch)" done_ok B "Call plumber"
sync_ours B
sync_ours C
check "C: tickit done 'Water plants' (A's Inbox task, synced through the original)" done_ok C "Water plants"
sync_ours C
sync_ours A
sync_ours B

phase final "every device holds the same outcome"
# The outcome: what the history left, as the changes after the switch changed it.
FINAL_WANT="$HISTORY_WANT"'
want["Read Dune Messiah"] = want.pop("Read Dune")  # retitled on B
for title in ("Book dentist", "Call plumber", "Water plants"):  # tickit done on A, B, C
    want[title] = want[title][:2] + (True,)
want["Pay rent"] = ("<Inbox>", ["home"], False)  # added on A
want["Buy bread"] = ("Groceries", ["home"], False)  # added on B
'
for d in A B C; do
  snap "$d" final
  check "$d: holds the 9 tasks as the history and the changes after the switch left them, 3 lists, 2 tags" \
    judge "$FINAL_WANT"'outcome(s, want, lists, tags)' s="$(S "$d" final)"
  check "$d: nothing deleted before the switch is back ('Old idea', list Reading)" \
    judge 'nothing_back(s, a0, b0)' s="$(S "$d" final)" a0="$(S A a0)" b0="$(S B b0)"
  tk "$d" list --json --all --list Inbox >"$WORK/inbox-$d.json" 2>"$WORK/inbox.err" || true
  check "$d: 'tickit list --json --all --list Inbox' shows the 6 Inbox tasks" \
    judge "$FINAL_WANT"'same(sorted(t["title"] for t in shown), sorted(k for k, v in want.items() if v[0] == "<Inbox>"))' \
    shown="$WORK/inbox-$d.json"
done
for d in B C; do
  check "$d holds the same tasks (ids, titles, lists, tags, completion, priority, due date), lists and tags as A" \
    judge 'same_holdings(a, s, "A", D)' a="$(S A final)" s="$(S "$d" final)" D:="$d"
done

finish
