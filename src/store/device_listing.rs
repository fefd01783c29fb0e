//! Reads what `tickit-sync devices` and `token --list` show from the database, read-only
//! (see [`read_only`](super::read_only)): each device's state as
//! [`device_state`](super::device_state) recorded it, with what waits for it, and when each
//! token was last used.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;

use super::device_clock::ClockWarning;
use super::{read_only, schema};

/// One device as the server knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceListing {
    pub account: String,
    /// The `device_id` it syncs with.
    pub device: String,
    /// The `[[tokens]]` entry it last synced with (unknown before schema 7).
    pub token_name: Option<String>,
    /// Unix nanoseconds (unknown for devices first seen before schema 7).
    pub first_seen_at: Option<i64>,
    /// Unix nanoseconds, at most a minute old (see `device_state`).
    pub last_sync_at: Option<i64>,
    pub user_agent: Option<String>,
    /// Changes of its account, made by other devices, that it has not been sent yet.
    pub waiting: u64,
    /// Its clock's estimated offset from the server's, in nanoseconds (positive: ahead).
    pub clock_offset: Option<i64>,
    /// The warning logged about its clock, while it is still off.
    pub clock_warning: Option<ClockWarning>,
}

/// The devices of `account` (every account's when `None`), by account, the most recently
/// synced first.
pub fn devices(database: &Path, account: Option<&str>) -> Result<Vec<DeviceListing>, String> {
    let conn = open(database)?;
    read_devices(&conn, account)
        .map_err(|e| format!("cannot read the devices of {}: {e}", database.display()))
}

/// Opens the database read-only, refusing one whose schema this release does not read:
/// older (the server upgrades it at its next start) or newer.
fn open(database: &Path) -> Result<Connection, String> {
    let conn = read_only::open(database)?;
    let version = schema::version(&conn)
        .map_err(|e| format!("cannot read database {}: {e}", database.display()))?;
    match version {
        v if v < schema::CURRENT => Err(format!(
            "database {} has schema version {v}, from an older tickit-sync; start \
             `tickit-sync serve` once to upgrade it (version {})",
            database.display(),
            schema::CURRENT
        )),
        v if v > schema::CURRENT => Err(format!(
            "database {} has schema version {v}, newer than this tickit-sync reads ({}); run \
             the newer tickit-sync",
            database.display(),
            schema::CURRENT
        )),
        _ => Ok(conn),
    }
}

fn read_devices(conn: &Connection, account: Option<&str>) -> rusqlite::Result<Vec<DeviceListing>> {
    let mut statement = conn.prepare(
        "SELECT d.account, d.device, d.token_name, d.first_seen_at, d.last_sync_at,
                d.user_agent, d.clock_offset, d.clock_warned,
                (SELECT COUNT(*) FROM records AS r
                 WHERE r.account = d.account
                   AND r.stamp > COALESCE(d.answered_through, d.sent_through, -9223372036854775808)
                   AND (r.origin IS NULL OR r.origin != d.device))
         FROM devices AS d
         WHERE ?1 IS NULL OR d.account = ?1
         ORDER BY d.account, d.last_sync_at DESC NULLS LAST, d.device",
    )?;
    let rows = statement.query_map([account], |row| {
        let device: String = row.get(1)?;
        let clock_offset: Option<i64> = row.get(6)?;
        let warned: bool = row.get(7)?;
        Ok(DeviceListing {
            account: row.get(0)?,
            token_name: row.get(2)?,
            first_seen_at: row.get(3)?,
            last_sync_at: row.get(4)?,
            user_agent: row.get(5)?,
            clock_offset,
            clock_warning: clock_offset.filter(|_| warned).map(|offset| ClockWarning {
                device: device.clone(),
                offset,
            }),
            waiting: row.get(8)?,
            device,
        })
    })?;
    rows.collect()
}

/// When each token (by its entry's name) was last used to sync, in Unix nanoseconds.
pub fn token_last_use(database: &Path) -> Result<HashMap<String, i64>, String> {
    let conn = open(database)?;
    let read = || -> rusqlite::Result<HashMap<String, i64>> {
        let mut statement = conn.prepare("SELECT name, last_used_at FROM token_use")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    };
    read().map_err(|e| format!("cannot read the devices of {}: {e}", database.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;

    #[test]
    fn lists_what_waits_for_each_device_and_the_clock_it_was_warned_about() {
        let mut db = Database::new();
        phone_an_hour_fast_restamps_an_edit(&mut db);
        // Then the laptop adds a list and a tag the phone has not been sent.
        db.sync(
            LAPTOP,
            None,
            &[list(ERRANDS, "Errands", false, T2), tag(REPORT, "urgent")],
        );

        let listed = read_devices(db.connection(), None).unwrap();
        let summary: Vec<(&str, u64, Option<&str>)> = listed
            .iter()
            .map(|device| {
                (
                    device.device.as_str(),
                    device.waiting,
                    device.token_name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (LAPTOP, 0, Some("test-token")),
                (PHONE, 2, Some("test-token"))
            ]
        );
        let laptop = &listed[0];
        assert_eq!(laptop.clock_warning, None);
        assert!(laptop.first_seen_at.is_some() && laptop.last_sync_at.is_some());
        let phone = &listed[1];
        let warning = phone.clock_warning.as_ref().expect("the phone was warned");
        assert_eq!(warning.device, PHONE);
        assert!((warning.offset - 3_600_000_000_000).abs() < 5_000_000_000);
        assert_eq!(phone.clock_offset, Some(warning.offset));

        assert!(
            read_devices(db.connection(), Some("another"))
                .unwrap()
                .is_empty()
        );
    }
}
