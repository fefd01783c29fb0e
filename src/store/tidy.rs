//! Referential tidying: a task never points at a deleted list or tag, whether the delete
//! arrives before the task (the upload is tidied) or after it (the stored tasks are). The
//! stored tasks a delete changes are found by index, a list's through `records_by_list` and
//! a tag's through `tag_references`, which this module keeps in step with every task write.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use super::clock::Clock;
use super::delivery::ensure_applied;
use super::records::{is_deleted, load, store};
use crate::protocol::{Change, Kind};

/// A task that points at a deleted list moves to the inbox; deleted tags leave its `tag_ids`.
/// Says whether anything changed.
pub fn tidy_references(
    tx: &Connection,
    account: &str,
    account_inbox: Option<&String>,
    mut change: Change,
) -> rusqlite::Result<(Change, bool)> {
    if change.kind != Kind::Task || change.deleted {
        return Ok((change, false));
    }
    let before = change.body.clone();
    if let Some(inbox) = account_inbox {
        let list_id = change.body.get("list_id").and_then(Value::as_str);
        if let Some(list_id) = list_id
            && is_deleted(tx, account, Kind::List, list_id)?
        {
            change
                .body
                .insert("list_id".into(), Value::from(inbox.as_str()));
        }
    }
    if let Some(Value::Array(tag_ids)) = change.body.get("tag_ids") {
        let mut kept = Vec::with_capacity(tag_ids.len());
        for tag in tag_ids {
            let deleted = match tag.as_str() {
                Some(tag) => is_deleted(tx, account, Kind::Tag, tag)?,
                None => false,
            };
            if !deleted {
                kept.push(tag.clone());
            }
        }
        change.body.insert("tag_ids".into(), Value::Array(kept));
    }
    let tidied = change.body != before;
    Ok((change, tidied))
}

/// What a device's copy of a task becomes when the device itself tidies it towards `upload`:
/// the client moves a task to its inbox when it applies a list delete, and drops a tag when
/// it applies a tag delete, without re-stamping the task. So the copy moves to the inbox if
/// the upload is there and the copy's list is deleted, and loses each tag the upload lacks
/// that is deleted, on the server or by the device's own request (`deleted_by_device`, which
/// it applied whether or not the deletes won).
pub fn as_tidied_by_device(
    tx: &Connection,
    account: &str,
    account_inbox: Option<&String>,
    copy: &Map<String, Value>,
    upload: &Map<String, Value>,
    deleted_by_device: &HashSet<(Kind, String)>,
) -> rusqlite::Result<Map<String, Value>> {
    let deleted =
        |kind: Kind, id: &str| -> rusqlite::Result<bool> {
            Ok(deleted_by_device.contains(&(kind, id.to_owned()))
                || is_deleted(tx, account, kind, id)?)
        };
    let mut tidied = copy.clone();
    let list_of = |body: &Map<String, Value>| {
        body.get("list_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let (Some(inbox), Some(list)) = (account_inbox, list_of(copy))
        && list_of(upload).as_ref() == Some(inbox)
        && deleted(Kind::List, &list)?
    {
        tidied.insert("list_id".into(), Value::from(inbox.as_str()));
    }
    let kept_by_upload: HashSet<&str> = match upload.get("tag_ids") {
        Some(Value::Array(tags)) => tags.iter().filter_map(Value::as_str).collect(),
        _ => HashSet::new(),
    };
    if let Some(Value::Array(tags)) = copy.get("tag_ids") {
        let mut kept = Vec::with_capacity(tags.len());
        for tag in tags {
            let dropped = match tag.as_str() {
                Some(id) => !kept_by_upload.contains(id) && deleted(Kind::Tag, id)?,
                None => false,
            };
            if !dropped {
                kept.push(tag.clone());
            }
        }
        tidied.insert("tag_ids".into(), Value::Array(kept));
    }
    Ok(tidied)
}

/// The live tasks of a list, through the `records_by_list` index.
const TASKS_OF_LIST: &str = "SELECT id FROM records
     WHERE account = ?1 AND json_extract(body, '$.list_id') = ?2
       AND kind = 'task' AND deleted = 0";
/// The live tasks whose `tag_ids` hold a tag.
const TASKS_WITH_TAG: &str = "SELECT task FROM tag_references WHERE account = ?1 AND tag = ?2";

/// After lists or tags are deleted, moves their tasks to the inbox and strips the tags from
/// them, each task once however many of its list and tags went. A tidied task is a server
/// edit with a new stamp and no origin, so every device receives it; it keeps the instant it
/// competes at, so an edit made before the delete still beats it when it arrives later (and
/// is tidied in turn). The tasks are found by index: the work grows with the tasks the
/// deletes change, not with the account.
pub fn tidy_after_deletes<'a>(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    account_inbox: Option<&String>,
    deleted: impl IntoIterator<Item = &'a Change>,
) -> rusqlite::Result<()> {
    let mut tasks: BTreeSet<String> = BTreeSet::new();
    for deleted in deleted {
        let query = match deleted.kind {
            Kind::List if account_inbox.is_some() => TASKS_OF_LIST,
            Kind::Tag => TASKS_WITH_TAG,
            _ => continue,
        };
        let mut statement = tx.prepare_cached(query)?;
        for id in statement.query_map(params![account, deleted.id], |row| row.get(0))? {
            tasks.insert(id?);
        }
    }
    for id in tasks {
        let Some(row) = load(tx, account, Kind::Task, &id)? else {
            continue;
        };
        let task = row.to_change(Kind::Task, &id);
        let (tidied, changed) = tidy_references(tx, account, account_inbox, task)?;
        if changed {
            store(tx, clock, account, None, &tidied)?;
            ensure_applied(tx, clock, account, Kind::Task, &id, row.updated_at)?;
        }
    }
    Ok(())
}

/// Keeps `tag_references` in step with a task's stored version (called by `records::store`,
/// the one way a stored record changes): a live task references each tag its `tag_ids`
/// holds, a tombstone none.
pub fn index_tag_references(tx: &Connection, account: &str, task: &Change) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM tag_references WHERE account = ?1 AND task = ?2")?
        .execute(params![account, task.id])?;
    let Some(Value::Array(tag_ids)) = task.body.get("tag_ids").filter(|_| !task.deleted) else {
        return Ok(());
    };
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO tag_references (account, tag, task) VALUES (?1, ?2, ?3)",
    )?;
    for tag in tag_ids.iter().filter_map(Value::as_str) {
        insert.execute(params![account, tag, task.id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use crate::timestamp::{format_server_time, parse_nanos};

    const OTHER: &str = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

    /// The query's plan, one line per step.
    fn plan(conn: &Connection, query: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {query}"))
            .unwrap()
            .query_map(params![ACCOUNT, WORK], |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_delete_finds_its_tasks_by_index_never_by_reading_the_account() {
        let db = Database::new();
        let by_list = plan(db.connection(), TASKS_OF_LIST);
        let by_tag = plan(db.connection(), TASKS_WITH_TAG);
        // One lookup each, no scan.
        assert_eq!(
            by_list,
            ["SEARCH records USING INDEX records_by_list (account=? AND <expr>=? AND kind=?)"]
        );
        assert_eq!(
            by_tag,
            ["SEARCH tag_references USING PRIMARY KEY (account=? AND tag=?)"]
        );
    }

    #[test]
    fn a_task_is_rewritten_once_however_many_of_its_list_and_tags_a_request_deletes() {
        let mut db = Database::new();
        db.sync(
            LAPTOP,
            None,
            &[
                list(LAPTOP_INBOX, "Inbox", true, T1),
                list(WORK, "Work", false, T1),
                tag(ERRANDS, "errands"),
                tag(OTHER, "other"),
                task("Buy milk", WORK, &[ERRANDS, OTHER], T1),
            ],
        );
        db.sync(
            PHONE,
            None,
            &[
                deleted(WORK, "list", T2),
                deleted(ERRANDS, "tag", T2),
                deleted(OTHER, "tag", T2),
            ],
        );
        let (_, origin, stored) = db.row(Kind::Task, REPORT).unwrap();
        assert_eq!(origin, None);
        assert_eq!(stored["list_id"], LAPTOP_INBOX);
        assert_eq!(stored["tag_ids"], serde_json::json!([]));
        // Each rewrite dates the task just past the one before it, for devices to apply it.
        let once = format_server_time(parse_nanos(T1).unwrap() + 1_000_000);
        assert_eq!(stored["updated_at"], once.as_str());
    }

    #[test]
    fn tag_references_follow_each_stored_version_of_a_task() {
        let mut db = Database::new();
        let references = |db: &Database| -> String {
            db.value(&format!(
                "SELECT COALESCE(group_concat(tag, ' '), '') FROM
                   (SELECT tag FROM tag_references WHERE task = '{REPORT}' ORDER BY tag)"
            ))
        };
        db.sync(
            LAPTOP,
            None,
            &[task("Buy milk", WORK, &[ERRANDS, OTHER], T0)],
        );
        assert_eq!(references(&db), format!("{ERRANDS} {OTHER}"));
        db.sync(LAPTOP, None, &[task("Buy milk", WORK, &[OTHER], T1)]);
        assert_eq!(references(&db), OTHER);
        // A tag the task no longer holds: its delete leaves the task alone.
        let before = db.row(Kind::Task, REPORT).unwrap();
        db.sync(PHONE, None, &[deleted(ERRANDS, "tag", T2)]);
        assert_eq!(db.row(Kind::Task, REPORT).unwrap(), before);
        db.sync(PHONE, None, &[deleted(REPORT, "task", T2)]);
        assert_eq!(references(&db), "");
        // Nor does a delete of a tag a deleted task held bring the task back.
        db.sync(PHONE, None, &[deleted(OTHER, "tag", T2)]);
        let (_, _, stored) = db.row(Kind::Task, REPORT).unwrap();
        assert_eq!(stored, deleted(REPORT, "task", T2));
    }
}
