#!/usr/bin/env python3
"""Edits a tickit 0.5.8 client's SQLite database as the client's TUI does.

The desktop TUI makes edits the CLI cannot (a title, the list or the tags of an existing task,
a rename) and deletes with a tombstone (`tickit delete` records none, so such a delete would
never reach a server). The tests make those edits in the device's database, statement by
statement as tickit 0.5.8's own code makes them (src/app/state.rs and src/db.rs). "Now" is the
device's clock: real UTC now + its offset, written as chrono's Utc::now().to_rfc3339().

Imported by tests/fixtures/record_sequences.py; run as a command by tests/real-client.sh and
tests/fixtures/capture-desktop.sh:

    client_db.py [--foreign-keys=off] DB OFFSET_SECS OP ARGS...

  retitle TITLE NEW       save_task -> update_task: the title, updated_at = the device's now
  tag|untag TITLE TAG     save_task with that tag toggled: the task_tags row, and the same
  delete-task TITLE       execute_confirm: delete_task, then record_tombstone(id, 'task')
  delete-list NAME        execute_confirm: delete_list (its tasks move to the inbox, their
                          updated_at untouched), then record_tombstone(id, 'list')
  delete-tag NAME         execute_confirm: delete_tag, then record_tombstone(id, 'tag')

The command's retitle, tag and untag write only what the edit changes; save_task() below writes
every field and rewrites the task's task_tags rows, as update_task does. OP runs in one
transaction, with foreign keys on as in the client (rusqlite's bundled SQLite turns them on),
unless --foreign-keys=off leaves them as Python's SQLite has them (off). OFFSET_SECS is an
integer or a decimal number of seconds. Python 3 standard library only.
"""

import sqlite3
import sys
import time
from datetime import datetime, timezone


# ---------------------------------------------------------------------------------------
# The device's clock.
# ---------------------------------------------------------------------------------------
def rfc3339(ns):
    """An instant (ns since the epoch) as chrono's to_rfc3339() writes it: 0, 3, 6 or 9
    fraction digits, whichever is exact, and "+00:00"."""
    secs, nanos = divmod(ns, 10**9)
    if nanos == 0:
        frac = ""
    elif nanos % 10**6 == 0:
        frac = f".{nanos // 10**6:03d}"
    elif nanos % 10**3 == 0:
        frac = f".{nanos // 10**3:06d}"
    else:
        frac = f".{nanos:09d}"
    return datetime.fromtimestamp(secs, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + frac + "+00:00"


def device_ns(offset_secs):
    """The device's now, in ns since the epoch: real now + offset_secs (an int is exact, a
    float is rounded to the nanosecond)."""
    if isinstance(offset_secs, int):
        return time.time_ns() + offset_secs * 10**9
    return time.time_ns() + round(offset_secs * 1e9)


def device_now(offset_secs):
    """Utc::now().to_rfc3339() on a device whose clock is offset_secs off real time."""
    return rfc3339(device_ns(offset_secs))


# ---------------------------------------------------------------------------------------
# The database.
# ---------------------------------------------------------------------------------------
def connect(db, foreign_keys=True):
    """A connection to the client's database; foreign_keys=False leaves them off (Python's
    SQLite default) instead of turning them on as the client does."""
    con = sqlite3.connect(db)
    if foreign_keys:
        con.execute("PRAGMA foreign_keys = ON")
    return con


def one_id(con, sql, key):
    """The id of the one row `sql` (with one parameter, key) finds; fails on none or several."""
    ids = [r[0] for r in con.execute(sql, (key,))]
    assert len(ids) == 1, f"expected one row for {key!r} ({sql}), found {len(ids)}"
    return ids[0]


# ---------------------------------------------------------------------------------------
# The TUI's edits, statement by statement. Each runs on an open connection (the caller
# makes the transaction) and stamps with `now`, a device_now() string.
# ---------------------------------------------------------------------------------------
def save_task(con, task_id, now, title=None, list_id=None, add_tag=None, remove_tag=None):
    """start_edit_task + save_task: the editor starts from the task's list (the first list if
    it is missing) and those of its tags that exist; update_task writes every field, stamps
    updated_at with now and rewrites task_tags."""
    (title0, description, url, priority, completed, list0, completed_at, due_date) = con.execute(
        "SELECT title, description, url, priority, completed, list_id, completed_at, due_date "
        "FROM tasks WHERE id = ?", (task_id,)).fetchone()
    lists = [r[0] for r in con.execute("SELECT id FROM lists ORDER BY sort_order, name")]
    tags = [r[0] for r in con.execute("SELECT id FROM tags ORDER BY name")]
    linked = [r[0] for r in con.execute("SELECT tag_id FROM task_tags WHERE task_id = ?", (task_id,))]
    editor_list = list0 if list0 in lists else lists[0]
    editor_tags = [t for t in linked if t in tags]
    if add_tag is not None and add_tag not in editor_tags:
        editor_tags.append(add_tag)
    if remove_tag is not None and remove_tag in editor_tags:
        editor_tags.remove(remove_tag)
    if due_date is not None:  # the editor keeps the date and saves it at 23:59:59
        due_date = due_date[:10] + "T23:59:59+00:00"
    con.execute(
        "UPDATE tasks SET title = ?2, description = ?3, url = ?4, priority = ?5, completed = ?6, "
        "list_id = ?7, updated_at = ?8, completed_at = ?9, due_date = ?10 WHERE id = ?1",
        (task_id, title if title is not None else title0, description or None, url, priority,
         completed, list_id if list_id is not None else editor_list, now, completed_at, due_date))
    con.execute("DELETE FROM task_tags WHERE task_id = ?", (task_id,))
    for tag in editor_tags:
        con.execute("INSERT INTO task_tags (task_id, tag_id) VALUES (?, ?)", (task_id, tag))


def rename(con, record_type, record_id, name, now):
    """save_tag / save_list for an existing tag or list ('tag' or 'list'): a new name;
    touch() / update_list stamps updated_at with now."""
    con.execute(f"UPDATE {record_type}s SET name = ?2, updated_at = ?3 WHERE id = ?1",
                (record_id, name, now))


def delete(con, record_type, record_id, now):
    """execute_confirm: delete_task / delete_list (its tasks move to the inbox first, their
    updated_at untouched) / delete_tag, then record_tombstone with now. Returns how many
    tasks moved to the inbox."""
    moved = 0
    if record_type == "list":
        inbox = one_id(con, "SELECT id FROM lists WHERE is_inbox = ?", 1)
        moved = con.execute("UPDATE tasks SET list_id = ?1 WHERE list_id = ?2", (inbox, record_id)).rowcount
        con.execute("DELETE FROM lists WHERE id = ?1 AND is_inbox = 0", (record_id,))
    else:
        con.execute(f"DELETE FROM {record_type}s WHERE id = ?1", (record_id,))
    con.execute("INSERT OR REPLACE INTO sync_tombstones (id, record_type, deleted_at) "
                "VALUES (?1, ?2, ?3)", (record_id, record_type, now))
    return moved


# ---------------------------------------------------------------------------------------
# The command.
# ---------------------------------------------------------------------------------------
def task_id(con, title):
    return one_id(con, "SELECT id FROM tasks WHERE title = ?", title)


def tag_id(con, name):
    return one_id(con, "SELECT id FROM tags WHERE name = ?", name)


def touch_task(con, task, now):
    con.execute("UPDATE tasks SET updated_at = ? WHERE id = ?", (now, task))


def run(con, op, args, now):
    """One OP of the command on con; returns the id of the record it acted on."""
    if op == "retitle":
        title, new = args
        rid = task_id(con, title)
        con.execute("UPDATE tasks SET title = ?, updated_at = ? WHERE id = ?", (new, now, rid))
    elif op in ("tag", "untag"):
        title, tag = args
        rid, g = task_id(con, title), tag_id(con, tag)
        if op == "tag":
            con.execute("INSERT INTO task_tags (task_id, tag_id) VALUES (?, ?)", (rid, g))
        else:
            n = con.execute("DELETE FROM task_tags WHERE task_id = ? AND tag_id = ?", (rid, g)).rowcount
            assert n == 1, f"task {title!r} does not carry tag {tag!r}"
        touch_task(con, rid, now)
    elif op == "delete-task":
        (title,) = args
        rid = task_id(con, title)
        delete(con, "task", rid, now)
    elif op == "delete-list":
        (name,) = args
        rid = one_id(con, "SELECT id FROM lists WHERE name = ? AND is_inbox = 0", name)
        moved = delete(con, "list", rid, now)
        print(f"{moved} task(s) moved to the inbox")
    elif op == "delete-tag":
        (name,) = args
        rid = tag_id(con, name)
        delete(con, "tag", rid, now)
    else:
        sys.exit(f"unknown op {op}")
    return rid


def main(argv):
    foreign_keys = True
    if argv[:1] == ["--foreign-keys=off"]:
        foreign_keys, argv = False, argv[1:]
    if len(argv) < 3:
        sys.exit("usage: client_db.py [--foreign-keys=off] DB OFFSET_SECS OP ARGS...")
    db, offset, op, args = argv[0], argv[1], argv[2], argv[3:]
    try:
        offset = int(offset)
    except ValueError:
        offset = float(offset)
    con = connect(db, foreign_keys)
    now = device_now(offset)
    with con:
        rid = run(con, op, args, now)
    con.close()
    print(f"{op} {args} done on {rid} at device time {now}")


if __name__ == "__main__":
    main(sys.argv[1:])
