//! The records table: one row per record or tombstone, with its version (the writer's
//! `updated_at` or `deleted_at`), its server stamp and the device it came from.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::clock::Clock;
use crate::protocol::{Change, Kind};

/// A row of the records table.
pub struct StoredRow {
    pub deleted: bool,
    pub version: i64,
    pub body: Map<String, Value>,
}

/// The stored version of a record, if any.
pub fn load(
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
pub fn store(
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
