//! Referential tidying: a task never points at a deleted list or tag, whether the delete
//! arrives before the task (the upload is tidied) or after it (the stored tasks are).

use std::collections::HashSet;

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use super::clock::Clock;
use super::delivery::ensure_applied;
use super::records::{is_deleted, store};
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
    let kept_by_upload = match upload.get("tag_ids") {
        Some(Value::Array(tags)) => tags.clone(),
        _ => Vec::new(),
    };
    if let Some(Value::Array(tags)) = copy.get("tag_ids") {
        let mut kept = Vec::with_capacity(tags.len());
        for tag in tags {
            let dropped = match tag.as_str() {
                Some(id) => !kept_by_upload.contains(tag) && deleted(Kind::Tag, id)?,
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

/// After a list or tag is deleted, moves its tasks to the inbox or strips the tag from them.
/// A tidied task is a server edit with a new stamp and no origin, so every device receives
/// it; it keeps the instant it competes at, so an edit made before the delete still beats
/// it when it arrives later (and is tidied in turn).
pub fn tidy_after_delete(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    account_inbox: Option<&String>,
    deleted: &Change,
) -> rusqlite::Result<()> {
    let query = match deleted.kind {
        Kind::List if account_inbox.is_some() => {
            "SELECT id, version, body, updated_at FROM records
             WHERE account = ?1 AND kind = 'task' AND deleted = 0
               AND json_extract(body, '$.list_id') = ?2"
        }
        Kind::Tag => {
            "SELECT id, version, body, updated_at FROM records
             WHERE account = ?1 AND kind = 'task' AND deleted = 0
               AND EXISTS (SELECT 1 FROM json_each(body, '$.tag_ids') WHERE value = ?2)"
        }
        _ => return Ok(()),
    };
    type Affected = (String, i64, String, Option<i64>);
    let affected: Vec<Affected> = tx
        .prepare_cached(query)?
        .query_map(params![account, deleted.id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, version, body, updated_at) in affected {
        let Ok(body) = serde_json::from_str::<Map<String, Value>>(&body) else {
            continue;
        };
        let task = Change {
            kind: Kind::Task,
            id,
            deleted: false,
            version,
            body,
        };
        let (tidied, _) = tidy_references(tx, account, account_inbox, task)?;
        store(tx, clock, account, None, &tidied)?;
        ensure_applied(tx, clock, account, Kind::Task, &tidied.id, updated_at)?;
    }
    Ok(())
}
