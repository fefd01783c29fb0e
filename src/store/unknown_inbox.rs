//! Devices that synced through the original server, until they send their own inbox. The
//! server imported every device's inbox id but cannot tell which one is theirs, and a task
//! sent under an inbox id a device lacks is an orphan there (the desktop client keeps one
//! inbox and stores the task under the foreign id all the same). So until the device sends
//! its inbox:
//! - every answer carries the inbox under each id any device used: the desktop client moves
//!   the tasks it holds under another device's inbox id into its own, and takes the one with
//!   its own id as an update (the import dated it later than every device's), which it sends
//!   back, with its id, at its next sync;
//! - its first answer holds back the tasks in the inbox, and its `server_time` stays before
//!   them, so they arrive at the next sync under the device's own inbox id.

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use super::feed::{FeedRow, OutgoingRecord, load_outgoing};
use super::inbox::{OWNER_UNKNOWN, device_inbox};
use crate::protocol::Kind;

/// Whether the device has not sent its inbox yet, in an account with imported inbox ids
/// whose device is not known.
pub fn applies(tx: &Connection, account: &str, device: &str) -> rusqlite::Result<bool> {
    if device_inbox(tx, account, device)?.is_some() {
        return Ok(false);
    }
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM inbox_aliases WHERE account = ?1 AND device = ?2)",
    )?
    .query_row(params![account, OWNER_UNKNOWN], |row| row.get(0))
}

/// Replaces the account inbox in `records` (adding it if absent) by a copy of it under each
/// inbox id of the account.
pub fn send_under_every_alias(
    tx: &Connection,
    account: &str,
    account_inbox: &str,
    records: &mut Vec<FeedRow>,
) -> rusqlite::Result<()> {
    records.retain(|(kind, id, _)| !(*kind == Kind::List && id == account_inbox));
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
        records.push((Kind::List, account_inbox.to_owned(), record));
    }
    Ok(())
}

/// Takes the live tasks in the account inbox out of `records`; returns the oldest stamp of
/// those taken, which the answer's `server_time` must stay before.
pub fn hold_back_inbox_tasks(
    tx: &Connection,
    account: &str,
    account_inbox: &str,
    records: &mut Vec<FeedRow>,
) -> rusqlite::Result<Option<i64>> {
    let in_inbox = |record: &OutgoingRecord| {
        record.kind == Kind::Task
            && !record.deleted
            && serde_json::from_str::<Map<String, Value>>(&record.body).is_ok_and(|body| {
                body.get("list_id").and_then(Value::as_str) == Some(account_inbox)
            })
    };
    let mut oldest: Option<i64> = None;
    let mut stamp_of = tx.prepare_cached(
        "SELECT stamp FROM records WHERE account = ?1 AND kind = 'task' AND id = ?2",
    )?;
    let mut kept = Vec::with_capacity(records.len());
    for row in records.drain(..) {
        if in_inbox(&row.2) {
            let stamp: i64 = stamp_of.query_row(params![account, row.1], |found| found.get(0))?;
            oldest = Some(oldest.map_or(stamp, |oldest| oldest.min(stamp)));
        } else {
            kept.push(row);
        }
    }
    *records = kept;
    Ok(oldest)
}
