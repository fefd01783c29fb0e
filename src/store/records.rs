//! The records table: one row per record or tombstone, with the instant it competes at, its
//! server stamp, the device it came from, its content fingerprint and its `updated_at`.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::clock::Clock;
use super::fingerprint;
use super::sent_through::keep_before_replacing;
use super::tag_references::{index_tag_references, referenced_tags};
use crate::protocol::{Change, Kind};
use std::collections::HashSet;

/// A row of the records table.
pub struct StoredRow {
    pub deleted: bool,
    /// The instant this version competes at in last-write-wins.
    pub version: i64,
    pub body: Map<String, Value>,
    pub fingerprint: Vec<u8>,
    /// The instant of the body's `updated_at`, as clients compare it; `None` for a tombstone.
    pub updated_at: Option<i64>,
}

impl StoredRow {
    /// The row as `store` writes it for `change`, whose content fingerprint is `fingerprint`.
    pub fn of(change: &Change, fingerprint: Vec<u8>) -> StoredRow {
        StoredRow {
            deleted: change.deleted,
            version: change.version,
            body: change.body.clone(),
            fingerprint,
            updated_at: fingerprint::updated_at(change.deleted, &change.body),
        }
    }

    /// The row as a change, to store it again after the server changed its body.
    pub fn to_change(&self, kind: Kind, id: &str) -> Change {
        Change {
            kind,
            id: id.to_owned(),
            deleted: self.deleted,
            version: self.version,
            body: self.body.clone(),
        }
    }
}

/// The stored version of a record, if any.
pub fn load(
    tx: &Connection,
    account: &str,
    kind: Kind,
    id: &str,
) -> rusqlite::Result<Option<StoredRow>> {
    tx.prepare_cached(
        "SELECT deleted, version, body, fingerprint, updated_at FROM records
         WHERE account = ?1 AND kind = ?2 AND id = ?3",
    )?
    .query_row(params![account, kind.as_str(), id], |row| {
        Ok(StoredRow {
            deleted: row.get(0)?,
            version: row.get(1)?,
            body: serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or_default(),
            fingerprint: row.get(3)?,
            updated_at: row.get(4)?,
        })
    })
    .optional()
}

/// Writes a version with a fresh stamp; `origin` is the device that sent it, if any, and
/// `fingerprint` its [content fingerprint](fingerprint::content); `replaced` is the stored
/// version it replaces, as loaded (`None`: there is none). A task's tag references are kept
/// in step (see `tag_references`).
pub fn store(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    origin: Option<&str>,
    change: &Change,
    fingerprint: &[u8],
    replaced: Option<&StoredRow>,
) -> rusqlite::Result<()> {
    let mut tags_before = HashSet::new();
    if let Some(replaced) = replaced {
        keep_before_replacing(tx, account, change.kind, &change.id)?;
        if change.kind == Kind::Task && !replaced.deleted {
            tags_before = referenced_tags(&replaced.body);
        }
    }
    let body = Value::Object(change.body.clone()).to_string();
    tx.prepare_cached(
        "INSERT INTO records
           (account, kind, id, deleted, version, stamp, origin, body, fingerprint, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (account, kind, id) DO UPDATE SET
           deleted = excluded.deleted, version = excluded.version, stamp = excluded.stamp,
           origin = excluded.origin, body = excluded.body, fingerprint = excluded.fingerprint,
           updated_at = excluded.updated_at",
    )?
    .execute(params![
        account,
        change.kind.as_str(),
        change.id,
        change.deleted,
        change.version,
        clock.next_stamp(),
        origin,
        body,
        fingerprint,
        fingerprint::updated_at(change.deleted, &change.body),
    ])?;
    if change.kind == Kind::Task {
        index_tag_references(tx, account, &tags_before, change)?;
    }
    Ok(())
}

/// Moves the instant a stored version competes at to a later one, leaving it otherwise as it
/// is (no new stamp: nothing changed that a device must receive).
pub fn postpone(
    tx: &Connection,
    account: &str,
    kind: Kind,
    id: &str,
    instant: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE records SET version = ?4 WHERE account = ?1 AND kind = ?2 AND id = ?3",
    )?
    .execute(params![account, kind.as_str(), id, instant])?;
    Ok(())
}

/// Fills the fingerprint and `updated_at` of rows written before those columns existed.
pub fn backfill(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(String, String, String, bool, String)> = conn
        .prepare("SELECT account, kind, id, deleted, body FROM records WHERE fingerprint = x''")?
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare(
        "UPDATE records SET fingerprint = ?4, updated_at = ?5
         WHERE account = ?1 AND kind = ?2 AND id = ?3",
    )?;
    for (account, kind_text, id, deleted, body) in rows {
        let (Some(kind), Ok(body)) = (
            Kind::parse(&kind_text),
            serde_json::from_str::<Map<String, Value>>(&body),
        ) else {
            continue;
        };
        update.execute(params![
            account,
            kind_text,
            id,
            fingerprint::content(kind, deleted, &body),
            fingerprint::updated_at(deleted, &body),
        ])?;
    }
    Ok(())
}

/// Whether the record is stored as a tombstone.
pub fn is_deleted(tx: &Connection, account: &str, kind: Kind, id: &str) -> rusqlite::Result<bool> {
    let deleted: Option<bool> = tx
        .prepare_cached("SELECT deleted FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3")?
        .query_row(params![account, kind.as_str(), id], |row| row.get(0))
        .optional()?;
    Ok(deleted == Some(true))
}

/// The newest stamp stored, so a restarted server's clock continues after it.
pub fn newest_stamp(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(stamp), 0) FROM records", [], |row| {
        row.get(0)
    })
}
