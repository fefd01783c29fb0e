//! One sync request applied inside a transaction: last-write-wins for each incoming version,
//! the account inbox and its per-device aliases, referential tidying after deletes, and the
//! change feed read back by server stamp.

use std::cmp::Ordering;
use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::protocol::{Change, Kind, SyncRequest, content_key, semantic_key};
use crate::timestamp::{format_server_time, now_nanos};

/// Hands out server stamps: strictly increasing, never behind the wall clock, and never
/// backwards even when the wall clock is.
#[derive(Debug)]
pub struct Clock {
    last: i64,
}

impl Clock {
    /// Starts after the newest stamp already stored.
    pub fn starting_after(newest_stamp: i64) -> Clock {
        Clock { last: newest_stamp }
    }

    /// A new stamp, later than every stamp and horizon handed out before.
    fn next_stamp(&mut self) -> i64 {
        self.last = now_nanos().max(self.last + 1);
        self.last
    }

    /// An instant that every stamp handed out later will exceed.
    fn horizon(&mut self) -> i64 {
        self.last = now_nanos().max(self.last);
        self.last
    }
}

/// The account's inbox id and the id the requesting device knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxIds {
    pub account_inbox: String,
    pub device_inbox: Option<String>,
}

/// A stored record or tombstone as it goes back out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub kind: Kind,
    pub deleted: bool,
    pub body: String,
}

/// What the server answers a sync request with, before it is put on the wire.
#[derive(Debug)]
pub struct SyncOutcome {
    /// Every later change gets a stamp after this instant (not yet set back for skew).
    pub horizon: i64,
    pub records: Vec<OutgoingRecord>,
    /// Ids, as the device sent them, of incoming versions that lost to a stored one.
    pub conflicts: Vec<String>,
    pub inbox: Option<InboxIds>,
}

/// What to do with one incoming version, given the stored one.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing stored yet: store it.
    Insert,
    /// The same version is stored already (a replay, or another device re-sending it).
    Same,
    /// The incoming version wins: replace the stored one.
    Replace,
    /// The stored version wins: report a conflict and send the winner back.
    Lose,
}

/// One version of a record as compared by last-write-wins.
#[derive(Debug)]
pub struct Version<'a> {
    pub kind: Kind,
    pub deleted: bool,
    pub instant: i64,
    pub body: &'a Map<String, Value>,
}

/// Last write wins at nanosecond precision; a version that says the same as the stored one,
/// whatever its `updated_at`, changes nothing. At the same instant a tombstone beats a record,
/// and two different versions are ordered by their semantic keys, so the outcome never depends
/// on which device arrived first.
pub fn decide(incoming: &Version, stored: Option<&Version>) -> Decision {
    let Some(stored) = stored else {
        return Decision::Insert;
    };
    let both_records = !incoming.deleted && !stored.deleted;
    if both_records
        && content_key(incoming.kind, incoming.body) == content_key(stored.kind, stored.body)
    {
        return Decision::Same;
    }
    let by_instant = incoming
        .instant
        .cmp(&stored.instant)
        .then(incoming.deleted.cmp(&stored.deleted));
    let order = match by_instant {
        Ordering::Equal => {
            let incoming_key = semantic_key(incoming.kind, incoming.deleted, incoming.body);
            let stored_key = semantic_key(stored.kind, stored.deleted, stored.body);
            incoming_key.cmp(&stored_key)
        }
        other => other,
    };
    match order {
        Ordering::Greater => Decision::Replace,
        Ordering::Equal => Decision::Same,
        Ordering::Less => Decision::Lose,
    }
}

/// A row of the records table.
struct StoredRow {
    deleted: bool,
    version: i64,
    body: Map<String, Value>,
}

/// Applies one request for `account` and reads back what the device must receive.
pub fn apply(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    request: &SyncRequest,
) -> rusqlite::Result<SyncOutcome> {
    let device = request.device_id.as_str();
    tx.execute(
        "INSERT OR IGNORE INTO devices (account, device) VALUES (?1, ?2)",
        params![account, device],
    )?;
    let inbox = register_inboxes(tx, account, device, &request.changes)?;
    let scope = Scope {
        account,
        device,
        inbox: inbox.as_ref(),
        aliases: inbox_aliases(tx, account)?,
    };

    let mut conflicts = Vec::new();
    let mut winners_to_resend = Vec::new();
    for change in &request.changes {
        if let Applied::Lost { conflict, winner } = apply_change(tx, clock, &scope, change)? {
            conflicts.extend(conflict);
            winners_to_resend.push(winner);
        }
    }

    let horizon = clock.horizon();
    let mut records = changed_since(tx, account, device, request.last_sync)?;
    let mut sent: HashSet<(Kind, String)> = records
        .iter()
        .map(|(kind, id, _)| (*kind, id.clone()))
        .collect();
    for (kind, id) in winners_to_resend {
        if sent.insert((kind, id.clone()))
            && let Some(record) = load_outgoing(tx, account, kind, &id)?
        {
            records.push((kind, id, record));
        }
    }
    let inbox = match inbox {
        Some(account_inbox) => Some(InboxIds {
            device_inbox: device_inbox(tx, account, device)?,
            account_inbox,
        }),
        None => None,
    };
    Ok(SyncOutcome {
        horizon,
        records: records.into_iter().map(|(_, _, record)| record).collect(),
        conflicts,
        inbox,
    })
}

/// Who is syncing, and the account's inbox ids.
struct Scope<'a> {
    account: &'a str,
    device: &'a str,
    inbox: Option<&'a String>,
    aliases: HashSet<String>,
}

/// What became of one incoming change.
enum Applied {
    /// Stored, or already stored.
    Kept,
    /// The stored version won: the id to report (if it is a UUID) and the winner to resend.
    Lost {
        conflict: Option<String>,
        winner: (Kind, String),
    },
}

/// Maps, tidies and applies one change by last-write-wins.
fn apply_change(
    tx: &Connection,
    clock: &mut Clock,
    scope: &Scope,
    sent: &Change,
) -> rusqlite::Result<Applied> {
    let Some(change) = map_to_account(sent, scope.inbox, &scope.aliases) else {
        return Ok(Applied::Kept);
    };
    let (mut change, tidied) = tidy_references(tx, scope.account, scope.inbox, change)?;
    let stored = load(tx, scope.account, change.kind, &change.id)?;
    let incoming = Version {
        kind: change.kind,
        deleted: change.deleted,
        instant: change.version,
        body: &change.body,
    };
    let stored_version = stored.as_ref().map(|row| Version {
        kind: change.kind,
        deleted: row.deleted,
        instant: row.version,
        body: &row.body,
    });
    match decide(&incoming, stored_version.as_ref()) {
        Decision::Same => Ok(Applied::Kept),
        Decision::Insert | Decision::Replace => {
            // A tidied upload is the server's own edit: every device, the sender included,
            // must receive it and see it as newer than its copy.
            let origin = if tidied {
                make_server_edit(&mut change);
                None
            } else {
                Some(scope.device)
            };
            store(tx, clock, scope.account, origin, &change)?;
            if change.deleted {
                tidy_after_delete(tx, clock, scope.account, scope.inbox, &change)?;
            }
            Ok(Applied::Kept)
        }
        Decision::Lose => {
            // A task-tag link has no id of its own, and `conflicts` must hold UUIDs (the
            // desktop parses them strictly): its winner is sent back all the same.
            let has_uuid = change.kind != Kind::TaskTag || change.deleted;
            Ok(Applied::Lost {
                conflict: has_uuid.then(|| sent.id.clone()),
                winner: (change.kind, change.id),
            })
        }
    }
}

/// Records every inbox the device sends as an alias of the account inbox, creating the
/// account inbox from the first one ever seen. Returns the account inbox id, if any.
fn register_inboxes(
    tx: &Connection,
    account: &str,
    device: &str,
    changes: &[Change],
) -> rusqlite::Result<Option<String>> {
    let mut account_inbox: Option<String> = tx
        .query_row(
            "SELECT list_id FROM inboxes WHERE account = ?1",
            [account],
            |row| row.get(0),
        )
        .optional()?;
    let device_inboxes = changes.iter().filter(|change| {
        change.kind == Kind::List
            && !change.deleted
            && change.body.get("is_inbox") == Some(&Value::Bool(true))
    });
    for change in device_inboxes {
        if account_inbox.is_none() {
            tx.execute(
                "INSERT INTO inboxes (account, list_id) VALUES (?1, ?2)",
                params![account, change.id],
            )?;
            account_inbox = Some(change.id.clone());
        }
        tx.execute(
            "INSERT INTO inbox_aliases (account, list_id, device) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, list_id) DO UPDATE SET device = excluded.device",
            params![account, change.id, device],
        )?;
    }
    Ok(account_inbox)
}

fn inbox_aliases(tx: &Connection, account: &str) -> rusqlite::Result<HashSet<String>> {
    let mut statement =
        tx.prepare_cached("SELECT list_id FROM inbox_aliases WHERE account = ?1")?;
    let aliases = statement.query_map([account], |row| row.get(0))?;
    aliases.collect()
}

/// The inbox id the device itself uses, so it receives the inbox under that id.
fn device_inbox(tx: &Connection, account: &str, device: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT list_id FROM inbox_aliases WHERE account = ?1 AND device = ?2
         ORDER BY rowid DESC LIMIT 1",
        params![account, device],
        |row| row.get(0),
    )
    .optional()
}

/// Rewrites a device's inbox id to the account inbox. Returns `None` for a change to drop:
/// a delete of an inbox, which every device keeps.
fn map_to_account(
    change: &Change,
    account_inbox: Option<&String>,
    aliases: &HashSet<String>,
) -> Option<Change> {
    let mut change = change.clone();
    let Some(account_inbox) = account_inbox else {
        return Some(change);
    };
    match change.kind {
        Kind::List if aliases.contains(&change.id) => {
            if change.deleted {
                return None;
            }
            change.id = account_inbox.clone();
            change
                .body
                .insert("id".into(), Value::from(account_inbox.as_str()));
        }
        Kind::Task if !change.deleted => {
            let list_id = change.body.get("list_id").and_then(Value::as_str);
            if list_id.is_some_and(|id| aliases.contains(id)) {
                change
                    .body
                    .insert("list_id".into(), Value::from(account_inbox.as_str()));
            }
        }
        _ => {}
    }
    Some(change)
}

/// A task that points at a deleted list moves to the inbox; deleted tags leave its `tag_ids`.
/// Says whether anything changed.
fn tidy_references(
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

/// Turns a version the server changed into a newer version of the server's own: `updated_at`
/// becomes now (in milliseconds, a spelling every client reads and compares correctly), and
/// always later than the version it replaces, so devices holding that version take it.
fn make_server_edit(change: &mut Change) {
    let at_least = change.version.saturating_add(1_000_000);
    let millis = now_nanos().max(at_least).div_euclid(1_000_000) * 1_000_000;
    change.version = millis;
    change
        .body
        .insert("updated_at".into(), Value::from(format_server_time(millis)));
}

fn is_deleted(tx: &Connection, account: &str, kind: Kind, id: &str) -> rusqlite::Result<bool> {
    let deleted: Option<bool> = tx
        .prepare_cached("SELECT deleted FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3")?
        .query_row(params![account, kind.as_str(), id], |row| row.get(0))
        .optional()?;
    Ok(deleted == Some(true))
}

/// After a list or tag is deleted, moves its tasks to the inbox or strips the tag from them.
/// The tidied tasks become server edits with new stamps and no origin, so every device
/// receives them and applies them.
fn tidy_after_delete(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    account_inbox: Option<&String>,
    deleted: &Change,
) -> rusqlite::Result<()> {
    let query = match deleted.kind {
        Kind::List if account_inbox.is_some() => {
            "SELECT id, version, body FROM records
             WHERE account = ?1 AND kind = 'task' AND deleted = 0
               AND json_extract(body, '$.list_id') = ?2"
        }
        Kind::Tag => {
            "SELECT id, version, body FROM records
             WHERE account = ?1 AND kind = 'task' AND deleted = 0
               AND EXISTS (SELECT 1 FROM json_each(body, '$.tag_ids') WHERE value = ?2)"
        }
        _ => return Ok(()),
    };
    let affected: Vec<(String, i64, String)> = tx
        .prepare_cached(query)?
        .query_map(params![account, deleted.id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, version, body) in affected {
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
        let (mut tidied, _) = tidy_references(tx, account, account_inbox, task)?;
        make_server_edit(&mut tidied);
        store(tx, clock, account, None, &tidied)?;
    }
    Ok(())
}

fn load(
    tx: &Connection,
    account: &str,
    kind: Kind,
    id: &str,
) -> rusqlite::Result<Option<StoredRow>> {
    let row: Option<(bool, i64, String)> = tx
        .prepare_cached(
            "SELECT deleted, version, body FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3",
        )?
        .query_row(params![account, kind.as_str(), id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    Ok(row.map(|(deleted, version, body)| StoredRow {
        deleted,
        version,
        body: serde_json::from_str(&body).unwrap_or_default(),
    }))
}

/// Writes a version with a fresh stamp; `origin` is the device that sent it, if any.
fn store(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    origin: Option<&str>,
    change: &Change,
) -> rusqlite::Result<()> {
    let body = Value::Object(change.body.clone()).to_string();
    tx.prepare_cached(
        "INSERT INTO records (account, kind, id, deleted, version, stamp, origin, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (account, kind, id) DO UPDATE SET
           deleted = excluded.deleted, version = excluded.version, stamp = excluded.stamp,
           origin = excluded.origin, body = excluded.body",
    )?
    .execute(params![
        account,
        change.kind.as_str(),
        change.id,
        change.deleted,
        change.version,
        clock.next_stamp(),
        origin,
        body
    ])?;
    Ok(())
}

type FeedRow = (Kind, String, OutgoingRecord);

/// Every record of the account stamped after `last_sync`, except those whose current version
/// came from this device; everything when `last_sync` is `None`. Oldest stamp first.
fn changed_since(
    tx: &Connection,
    account: &str,
    device: &str,
    last_sync: Option<i64>,
) -> rusqlite::Result<Vec<FeedRow>> {
    let mut statement = tx.prepare_cached(
        "SELECT kind, id, deleted, body FROM records
         WHERE account = ?1 AND stamp > ?2 AND (?3 IS NULL OR origin IS NULL OR origin != ?3)
         ORDER BY stamp",
    )?;
    let (after, exclude_origin) = match last_sync {
        Some(instant) => (instant, Some(device)),
        None => (i64::MIN, None),
    };
    let rows = statement.query_map(params![account, after, exclude_origin], |row| {
        let kind: String = row.get(0)?;
        let id: String = row.get(1)?;
        Ok((kind, id, row.get(2)?, row.get(3)?))
    })?;
    let mut feed = Vec::new();
    for row in rows {
        let (kind, id, deleted, body) = row?;
        if let Some(kind) = Kind::parse(&kind) {
            feed.push((
                kind,
                id,
                OutgoingRecord {
                    kind,
                    deleted,
                    body,
                },
            ));
        }
    }
    Ok(feed)
}

fn load_outgoing(
    tx: &Connection,
    account: &str,
    kind: Kind,
    id: &str,
) -> rusqlite::Result<Option<OutgoingRecord>> {
    tx.prepare_cached(
        "SELECT deleted, body FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3",
    )?
    .query_row(params![account, kind.as_str(), id], |row| {
        Ok(OutgoingRecord {
            kind,
            deleted: row.get(0)?,
            body: row.get(1)?,
        })
    })
    .optional()
}

/// The newest stamp stored, so a restarted server's clock continues after it.
pub fn newest_stamp(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(stamp), 0) FROM records", [], |row| {
        row.get(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn version(deleted: bool, instant: i64, body: &Map<String, Value>) -> Version<'_> {
        Version {
            kind: Kind::Tag,
            deleted,
            instant,
            body,
        }
    }

    const RED: &str = r##"{"id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","name":"a","color":"#f00","created_at":"2026-11-24T22:45:21Z","updated_at":"2026-11-24T22:45:21Z"}"##;
    const BLUE: &str = r##"{"id":"083f62a4-7e11-459f-9403-9136b2e4b7b8","name":"a","color":"#00f","created_at":"2026-11-24T22:45:21Z","updated_at":"2026-11-24T22:45:21Z"}"##;

    #[test]
    fn later_instant_wins_either_way() {
        let (red, blue) = (body(RED), body(BLUE));
        assert_eq!(
            decide(&version(false, 2, &blue), Some(&version(false, 1, &red))),
            Decision::Replace
        );
        assert_eq!(
            decide(&version(false, 1, &blue), Some(&version(false, 2, &red))),
            Decision::Lose
        );
        assert_eq!(decide(&version(false, 1, &red), None), Decision::Insert);
    }

    #[test]
    fn nanoseconds_matter() {
        let (red, blue) = (body(RED), body(BLUE));
        assert_eq!(
            decide(
                &version(false, 1_000_000_001, &blue),
                Some(&version(false, 1_000_000_000, &red))
            ),
            Decision::Replace
        );
    }

    #[test]
    fn the_same_content_at_another_instant_changes_nothing() {
        let red = body(RED);
        let restamped = body(&RED.replace(
            r#""updated_at":"2026-11-24T22:45:21Z""#,
            r#""updated_at":"2026-11-25T08:00:00Z""#,
        ));
        for (incoming, stored) in [(9, 5), (5, 9)] {
            assert_eq!(
                decide(
                    &version(false, incoming, &restamped),
                    Some(&version(false, stored, &red))
                ),
                Decision::Same
            );
        }
    }

    #[test]
    fn tombstone_wins_a_tie_and_newer_update_resurrects() {
        let red = body(RED);
        let gone = body(r#"{"deleted_at":"2026-11-24T22:45:21Z"}"#);
        assert_eq!(
            decide(&version(true, 5, &gone), Some(&version(false, 5, &red))),
            Decision::Replace
        );
        assert_eq!(
            decide(&version(false, 5, &red), Some(&version(true, 5, &gone))),
            Decision::Lose
        );
        assert_eq!(
            decide(&version(false, 6, &red), Some(&version(true, 5, &gone))),
            Decision::Replace
        );
    }

    #[test]
    fn identical_version_is_a_no_op_and_ties_do_not_depend_on_arrival_order() {
        let (red, blue) = (body(RED), body(BLUE));
        assert_eq!(
            decide(&version(false, 5, &red), Some(&version(false, 5, &red))),
            Decision::Same
        );
        let red_first = decide(&version(false, 5, &blue), Some(&version(false, 5, &red)));
        let blue_first = decide(&version(false, 5, &red), Some(&version(false, 5, &blue)));
        assert_ne!(red_first, blue_first);
        assert!([red_first, blue_first].contains(&Decision::Replace));
    }

    #[test]
    fn clock_never_goes_backwards() {
        let far_future = now_nanos() + 3_600_000_000_000;
        let mut clock = Clock::starting_after(far_future);
        let first = clock.next_stamp();
        let horizon = clock.horizon();
        let second = clock.next_stamp();
        assert!(first > far_future && horizon >= first && second > horizon);
    }
}
