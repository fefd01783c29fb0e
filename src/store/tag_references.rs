//! The `tag_references` table: each tag a live task's `tag_ids` holds, so that a tag's
//! delete finds its tasks by index (see [`tidy_stored`](super::tidy_stored)). Kept in step
//! by `records::store`, the one way a stored record changes.

use std::collections::HashSet;

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use crate::protocol::Change;

/// The tags a live task's body references: the ids its `tag_ids` holds. Read from the
/// version a write replaces, so that [`index_tag_references`] changes only what changes.
pub fn referenced_tags(body: &Map<String, Value>) -> HashSet<String> {
    match body.get("tag_ids") {
        Some(Value::Array(tag_ids)) => tag_ids
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => HashSet::new(),
    }
}

/// Keeps `tag_references` in step with a task's stored version (called by `records::store`,
/// the one way a stored record changes): a live task references each tag its `tag_ids`
/// holds, a tombstone none. `before` is what the version it replaced referenced.
pub fn index_tag_references(
    tx: &Connection,
    account: &str,
    before: &HashSet<String>,
    task: &Change,
) -> rusqlite::Result<()> {
    let after = match task.deleted {
        true => HashSet::new(),
        false => referenced_tags(&task.body),
    };
    let mut delete = tx.prepare_cached(
        "DELETE FROM tag_references WHERE account = ?1 AND tag = ?2 AND task = ?3",
    )?;
    for tag in before.difference(&after) {
        delete.execute(params![account, tag, task.id])?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO tag_references (account, tag, task) VALUES (?1, ?2, ?3)",
    )?;
    for tag in after.difference(before) {
        insert.execute(params![account, tag, task.id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::protocol::Kind;
    use crate::store::test_support::*;

    const OTHER: &str = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

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
