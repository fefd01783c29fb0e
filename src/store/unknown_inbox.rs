//! Devices that synced through the original server, until they send their own inbox. The
//! server imported every device's inbox id but cannot tell which one is theirs, and a task
//! sent under an inbox id a device lacks is an orphan there (the desktop client keeps one
//! inbox and stores the task under the foreign id all the same). The desktop client applies
//! lists first and deletes last, so until the device's inbox is known:
//! - each answer carries the inbox under every id any device used (lists are applied first):
//!   the client moves the tasks it holds under another device's inbox id into its own, and
//!   takes the one with its own id as an update (the import dated it later than every
//!   device's), which it sends back, with its id, at its next sync;
//! - tasks in the inbox go out under a transit id no device has, followed by a delete of
//!   that list (deletes are applied last): `tickit sync` moves a deleted list's tasks into
//!   its own inbox, and never deletes an inbox. The transit id is an alias of the account
//!   inbox like the others, so a client that kept a task under it (the desktop TUI does not
//!   move a deleted list's tasks) has it moved by the next answer's inbox records.

use rusqlite::{Connection, params};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::feed::{FeedRange, KeyedRecord, OutgoingRecord, load_outgoing};
use super::inbox::OWNER_UNKNOWN;
use crate::protocol::Kind;

/// Whether the account has inbox ids whose device is not known: it was imported from the
/// original server, and some of its devices have not sent their inbox yet.
pub fn in_account(tx: &Connection, account: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM inbox_aliases WHERE account = ?1 AND device = ?2)",
    )?
    .query_row(params![account, OWNER_UNKNOWN], |row| row.get(0))
}

/// The transit id of an account inbox: a UUID derived from it, which no device has.
pub fn transit_id(account_inbox: &str) -> String {
    let digest = Sha256::digest(format!("tickit-sync inbox in transit {account_inbox}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Sends the account inbox under each inbox id of the account instead of under its own:
/// left out of `feed`, and in `extras` once per id.
pub fn send_under_every_alias(
    tx: &Connection,
    account: &str,
    account_inbox: &str,
    feed: &mut Option<FeedRange>,
    extras: &mut Vec<KeyedRecord>,
) -> rusqlite::Result<()> {
    extras.retain(|(kind, id, _)| !(*kind == Kind::List && id == account_inbox));
    if let Some(feed) = feed {
        feed.skip_list = Some(account_inbox.to_owned());
    }
    let Some(inbox) = load_outgoing(tx, account, Kind::List, account_inbox)? else {
        return Ok(());
    };
    let Ok(body) = serde_json::from_str::<Map<String, Value>>(&inbox.body) else {
        return Ok(());
    };
    let aliases: Vec<String> = tx
        .prepare_cached("SELECT list_id FROM inbox_aliases WHERE account = ?1 ORDER BY list_id")?
        .query_map([account], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for alias in aliases {
        let mut body = body.clone();
        body.insert("id".into(), Value::from(alias));
        let record = OutgoingRecord {
            kind: Kind::List,
            deleted: false,
            body: Value::Object(body).to_string(),
        };
        extras.push((Kind::List, account_inbox.to_owned(), record));
    }
    Ok(())
}

/// If the answer of `feed` and `extras` carries tasks in the account inbox, has them go out
/// under its transit id, followed by a delete of that list dated `deleted_at`; returns the
/// transit id then.
pub fn send_inbox_tasks_in_transit(
    tx: &Connection,
    account_inbox: &str,
    feed: Option<&FeedRange>,
    extras: &mut Vec<KeyedRecord>,
    deleted_at: &str,
) -> rusqlite::Result<Option<String>> {
    let in_inbox = |(_, _, record): &KeyedRecord| {
        record.kind == Kind::Task
            && !record.deleted
            && serde_json::from_str::<Map<String, Value>>(&record.body).is_ok_and(|body| {
                body.get("list_id").and_then(Value::as_str) == Some(account_inbox)
            })
    };
    let sends_inbox_tasks = extras.iter().any(in_inbox)
        || match feed {
            Some(feed) => feed_has_inbox_tasks(tx, feed, account_inbox)?,
            None => false,
        };
    if !sends_inbox_tasks {
        return Ok(None);
    }
    let transit = transit_id(account_inbox);
    let tombstone = json!({
        "type": "deleted", "id": transit, "record_type": "list", "deleted_at": deleted_at
    });
    let record = OutgoingRecord {
        kind: Kind::List,
        deleted: true,
        body: tombstone.to_string(),
    };
    extras.push((Kind::List, transit.clone(), record));
    Ok(Some(transit))
}

/// Whether `feed` holds a task in the account inbox.
fn feed_has_inbox_tasks(
    tx: &Connection,
    feed: &FeedRange,
    account_inbox: &str,
) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM records
                        WHERE account = ?1 AND kind = 'task' AND deleted = 0
                          AND stamp > ?2 AND stamp <= ?3
                          AND (?4 IS NULL OR origin IS NULL OR origin != ?4)
                          AND json_extract(body, '$.list_id') = ?5)",
    )?
    .query_row(
        params![
            feed.account,
            feed.after.unwrap_or(i64::MIN),
            feed.up_to,
            feed.device,
            account_inbox
        ],
        |row| row.get(0),
    )
}
