//! What each device holds of each record, as far as the server knows: the version it last
//! uploaded or was last sent. The desktop client re-stamps a record it applies with its own
//! clock and uploads it again; an upload that says what the device already held is that
//! re-stamp (or a retry), not an edit, while an edit that restores older content is an edit.
//!
//! Most copies have no row of their own: a device holds every record as stored up to its
//! `sent_through` stamp (see [`sent_through`](super::sent_through)).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::feed::FeedRange;
use super::fingerprint;
use super::last_answer::LastAnswer;
use crate::protocol::{Change, Kind, version_instant};
use crate::timestamp::{at_range_end, saturating_nanos, unsaturated};

/// One device's copy of one record.
pub struct Copy {
    fingerprint: Vec<u8>,
    /// What the copy says, in the account's ids, as stored (JSON): the check for a copy the
    /// client tidied itself reads it, and so does a saturated `updated_at`.
    body: String,
    /// The instant of its `updated_at`, as stored (see [`saturating_nanos`]).
    updated_at: Option<i64>,
    /// When the server sent this copy, if it did (rather than the device uploading it).
    sent_at: Option<i64>,
    last_upload: Option<Vec<u8>>,
}

/// An incoming version as compared with the device's copy.
pub struct Upload {
    pub fingerprint: Vec<u8>,
    exact: Vec<u8>,
    /// The exact instant of its `updated_at`; `None` for a tombstone.
    updated_at: Option<i128>,
}

impl Upload {
    /// The upload of `change`, as the device sent it (after inbox mapping, before tidying).
    pub fn of(change: &Change) -> Upload {
        let fingerprint = fingerprint::content(change.kind, change.deleted, &change.body);
        Upload {
            exact: fingerprint::exact(&fingerprint, change.version),
            updated_at: (!change.deleted)
                .then(|| version_instant(false, &change.body))
                .flatten(),
            fingerprint,
        }
    }
}

impl Copy {
    /// Whether the upload only repeats what the device held: the same content, whatever its
    /// `updated_at`, or the very upload it made last.
    pub fn holds(&self, upload: &Upload) -> bool {
        self.fingerprint == upload.fingerprint || self.last_upload.as_ref() == Some(&upload.exact)
    }

    /// What the copy says, in the account's ids.
    pub fn body(&self) -> Map<String, Value> {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    /// Whether the upload carries the very `updated_at` of the device's copy. The client
    /// stamps every edit with its clock, so such an upload is no edit, whatever it says: a
    /// copy the client changed on its own (it moves and untags tasks when it applies a
    /// delete, and a task it receives again gets back its links to deleted tags).
    pub fn same_time(&self, upload: &Upload) -> bool {
        upload.updated_at.is_some() && upload.updated_at == self.exact_updated_at()
    }

    /// The exact instant of the copy's `updated_at`.
    fn exact_updated_at(&self) -> Option<i128> {
        let stored = self.updated_at?;
        Some(unsaturated(stored, || version_instant(false, &self.body())))
    }

    /// How far the device's clock read ahead of the server's (negative: behind) when it
    /// re-stamped this copy on applying it, if the upload is such a re-stamp. The client
    /// applies what it is sent at once, so this is its offset plus a little latency.
    pub fn restamp_offset(&self, upload: &Upload) -> Option<i64> {
        let stamped = upload.updated_at?;
        let sent_at = self.sent_at?;
        let restamped =
            self.fingerprint == upload.fingerprint && Some(stamped) != self.exact_updated_at();
        restamped.then(|| saturating_nanos(stamped - i128::from(sent_at)))
    }
}

/// The device's copy of a record, if the server knows it: its own row, else the stored
/// version if it is stamped within the device's `sent_through`. Such a copy counts as sent
/// when `last_answer` (the device's previous answer) covered its stamp.
pub fn held(
    tx: &Connection,
    account: &str,
    device: &str,
    kind: Kind,
    id: &str,
    last_answer: Option<&LastAnswer>,
) -> rusqlite::Result<Option<Copy>> {
    let key = params![account, kind.as_str(), id, device];
    let own_row = tx
        .prepare_cached(
            "SELECT fingerprint, body, updated_at, sent_at, last_upload FROM device_copies
             WHERE account = ?1 AND kind = ?2 AND id = ?3 AND device = ?4",
        )?
        .query_row(key, |row| {
            Ok(Copy {
                fingerprint: row.get(0)?,
                body: row.get(1)?,
                updated_at: row.get(2)?,
                sent_at: row.get(3)?,
                last_upload: row.get(4)?,
            })
        })
        .optional()?;
    if own_row.is_some() {
        return Ok(own_row);
    }
    tx.prepare_cached(
        "SELECT r.fingerprint, r.body, r.updated_at, r.stamp
         FROM records r JOIN devices d ON d.account = r.account AND d.device = ?4
         WHERE r.account = ?1 AND r.kind = ?2 AND r.id = ?3 AND r.stamp <= d.sent_through",
    )?
    .query_row(key, |row| {
        let stamp: i64 = row.get(3)?;
        Ok(Copy {
            fingerprint: row.get(0)?,
            body: row.get(1)?,
            updated_at: row.get(2)?,
            sent_at: last_answer
                .filter(|answer| answer.covered(stamp))
                .map(|answer| answer.complete_to),
            last_upload: None,
        })
    })
    .optional()
}

/// The device now holds what it uploaded.
pub fn uploaded(
    tx: &Connection,
    account: &str,
    device: &str,
    change: &Change,
    upload: &Upload,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO device_copies
           (account, kind, id, device, fingerprint, body, updated_at, sent_at, last_upload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)
         ON CONFLICT (account, kind, id, device) DO UPDATE SET
           fingerprint = excluded.fingerprint, body = excluded.body,
           updated_at = excluded.updated_at, sent_at = NULL, last_upload = excluded.last_upload",
    )?
    .execute(params![
        account,
        change.kind.as_str(),
        change.id,
        device,
        upload.fingerprint,
        Value::Object(change.body.clone()).to_string(),
        upload.updated_at.map(saturating_nanos),
        upload.exact,
    ])?;
    Ok(())
}

/// How a device's copy changes when it is sent the stored version (`excluded`): where it
/// already held that content, its copy keeps the later of the two `updated_at`s (a client
/// only ever moves a row's `updated_at` forward). A copy that already says the same, dated
/// as late, is left alone (the client will not apply what it is sent again).
macro_rules! on_sent {
    () => {
        " ON CONFLICT (account, kind, id, device) DO UPDATE SET
           updated_at = CASE WHEN fingerprint = excluded.fingerprint
                             THEN MAX(updated_at, excluded.updated_at)
                             ELSE excluded.updated_at END,
           fingerprint = excluded.fingerprint, body = excluded.body,
           sent_at = excluded.sent_at
         WHERE fingerprint != excluded.fingerprint OR updated_at < excluded.updated_at"
    };
}

/// The device was sent the stored version of a record at `sent_at` (server clock).
pub fn sent(
    tx: &Connection,
    account: &str,
    device: &str,
    kind: Kind,
    id: &str,
    sent_at: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(concat!(
        "INSERT INTO device_copies
           (account, kind, id, device, fingerprint, body, updated_at, sent_at)
         SELECT account, kind, id, ?4, fingerprint, body, updated_at, ?5 FROM records
         WHERE account = ?1 AND kind = ?2 AND id = ?3",
        on_sent!()
    ))?
    .execute(params![account, kind.as_str(), id, device, sent_at])?;
    Ok(())
}

/// The device was sent the stored version of every record in `range` at its end.
pub fn sent_range(tx: &Connection, range: &FeedRange, device: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(concat!(
        "INSERT INTO device_copies
           (account, kind, id, device, fingerprint, body, updated_at, sent_at)
         SELECT account, kind, id, ?2, fingerprint, body, updated_at, ?4 FROM records
         WHERE account = ?1 AND stamp > ?3 AND stamp <= ?4
           AND (?5 IS NULL OR origin IS NULL OR origin != ?5)",
        on_sent!()
    ))?
    .execute(params![
        range.account,
        device,
        range.after.unwrap_or(i64::MIN),
        range.up_to,
        range.device,
    ])?;
    Ok(())
}

/// The latest `updated_at` of any device's copy that differs from `fingerprint`, exact: the
/// version with that fingerprint must be later still for those devices to apply it.
pub fn newest_other(
    tx: &Connection,
    account: &str,
    kind: Kind,
    id: &str,
    fingerprint: &[u8],
) -> rusqlite::Result<Option<i128>> {
    let newest: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(updated_at) FROM device_copies
             WHERE account = ?1 AND kind = ?2 AND id = ?3 AND fingerprint != ?4",
        )?
        .query_row(params![account, kind.as_str(), id, fingerprint], |row| {
            row.get(0)
        })?;
    let Some(newest) = newest.filter(|&newest| at_range_end(newest)) else {
        return Ok(newest.map(i128::from));
    };
    // Copies dated beyond that end of the range all store it: their texts tell them apart.
    let bodies: Vec<String> = tx
        .prepare_cached(
            "SELECT body FROM device_copies
             WHERE account = ?1 AND kind = ?2 AND id = ?3 AND fingerprint != ?4
               AND updated_at = ?5",
        )?
        .query_map(
            params![account, kind.as_str(), id, fingerprint, newest],
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let dated = bodies
        .iter()
        .filter_map(|body| serde_json::from_str(body).ok())
        .filter_map(|body: Map<String, Value>| version_instant(false, &body))
        .max();
    Ok(Some(unsaturated(newest, || dated)))
}
