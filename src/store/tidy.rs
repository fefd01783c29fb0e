//! Referential tidying, the rules: a task never points at a deleted list or tag. An upload
//! is tidied as it arrives; the stored tasks a delete leaves dangling are tidied by
//! [`tidy_stored`](super::tidy_stored).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::records::is_deleted;
use crate::protocol::{Change, Kind};

/// Which lists and tags are tombstones, as looked up while one request is applied: every
/// task tidied asks about its list and each of its tags, and many tasks share them. A list
/// or tag the request stores must be [forgotten](Self::forget), as its answer may change.
#[derive(Default)]
pub struct DeletedLookups {
    known: RefCell<HashMap<(Kind, String), bool>>,
}

impl DeletedLookups {
    /// Whether the record is stored as a tombstone.
    pub fn is_deleted(
        &self,
        tx: &Connection,
        account: &str,
        kind: Kind,
        id: &str,
    ) -> rusqlite::Result<bool> {
        let key = (kind, id.to_owned());
        if let Some(&deleted) = self.known.borrow().get(&key) {
            return Ok(deleted);
        }
        let deleted = is_deleted(tx, account, kind, id)?;
        self.known.borrow_mut().insert(key, deleted);
        Ok(deleted)
    }

    /// Drops what is known of a record that was just stored.
    pub fn forget(&self, kind: Kind, id: &str) {
        self.known.borrow_mut().remove(&(kind, id.to_owned()));
    }
}

/// A task that points at a deleted list moves to the inbox; deleted tags leave its `tag_ids`.
/// Says whether anything changed.
pub fn tidy_references(
    tx: &Connection,
    lookups: &DeletedLookups,
    account: &str,
    account_inbox: Option<&String>,
    mut change: Change,
) -> rusqlite::Result<(Change, bool)> {
    if change.kind != Kind::Task || change.deleted {
        return Ok((change, false));
    }
    let mut tidied = false;
    if let Some(inbox) = account_inbox {
        let list_id = change.body.get("list_id").and_then(Value::as_str);
        if let Some(list_id) = list_id
            && list_id != inbox
            && lookups.is_deleted(tx, account, Kind::List, list_id)?
        {
            change
                .body
                .insert("list_id".into(), Value::from(inbox.as_str()));
            tidied = true;
        }
    }
    if let Some(Value::Array(tag_ids)) = change.body.get_mut("tag_ids") {
        let mut kept = Vec::with_capacity(tag_ids.len());
        for tag in tag_ids.drain(..) {
            let deleted = match tag.as_str() {
                Some(tag) => lookups.is_deleted(tx, account, Kind::Tag, tag)?,
                None => false,
            };
            if deleted {
                tidied = true;
            } else {
                kept.push(tag);
            }
        }
        *tag_ids = kept;
    }
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
    lookups: &DeletedLookups,
    account: &str,
    account_inbox: Option<&String>,
    copy: &Map<String, Value>,
    upload: &Map<String, Value>,
    deleted_by_device: &HashSet<(Kind, String)>,
) -> rusqlite::Result<Map<String, Value>> {
    let deleted = |kind: Kind, id: &str| -> rusqlite::Result<bool> {
        Ok(deleted_by_device.contains(&(kind, id.to_owned()))
            || lookups.is_deleted(tx, account, kind, id)?)
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
