//! What a device holds, kept as one stamp instead of a row per record: its `sent_through`
//! says it holds every record of its account as stored up to that stamp. An answer that
//! sends a device every change after some stamp (a full sync, or the next answer of an
//! unbroken run) moves it forward with one write, where one row per record sent made a
//! sync's cost grow with every change it carried. Rows of their own (`copies`) remain for
//! what the device uploaded (updated as it is sent newer versions), for what it was sent
//! outside such a run, and for a record's version held through `sent_through`, written
//! just before the record changes ([`keep_before_replacing`], which `records::store`, the
//! one way a stored record changes, calls).

use rusqlite::{Connection, OptionalExtension, params};

use super::feed::any_changed;

/// Records that the device was sent every record of the account stamped in
/// `(after, horizon]` (all of them when `after` is `None`), except its own uploads. Returns
/// false, recording nothing, when that leaves a gap: records stamped between its
/// `sent_through` and `after` that it may not hold; each record sent must then be recorded
/// on its own (`copies::sent`).
pub fn record_feed(
    tx: &Connection,
    account: &str,
    device: &str,
    after: Option<i64>,
    horizon: i64,
) -> rusqlite::Result<bool> {
    if let Some(after) = after {
        let through: Option<i64> = tx
            .prepare_cached("SELECT sent_through FROM devices WHERE account = ?1 AND device = ?2")?
            .query_row(params![account, device], |row| row.get(0))
            .optional()?
            .flatten();
        if any_changed(tx, account, Some(device), through, after)? {
            return Ok(false);
        }
    }
    // Its own rows of the records it was sent change as `copies::sent` changes them (a new
    // device has none).
    let has_own_rows: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM device_copies WHERE account = ?1 AND device = ?2)",
        )?
        .query_row(params![account, device], |row| row.get(0))?;
    if has_own_rows {
        update_own_rows(tx, account, device, after, horizon)?;
    }
    tx.prepare_cached("UPDATE devices SET sent_through = ?3 WHERE account = ?1 AND device = ?2")?
        .execute(params![account, device, horizon])?;
    Ok(true)
}

/// Gives the device's own rows of the records stamped in `(after, horizon]` that it did not
/// upload the update `copies::sent` gives a copy it is sent.
fn update_own_rows(
    tx: &Connection,
    account: &str,
    device: &str,
    after: Option<i64>,
    horizon: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE device_copies AS c SET
           updated_at = CASE WHEN c.fingerprint = r.fingerprint
                             THEN MAX(c.updated_at, r.updated_at)
                             ELSE r.updated_at END,
           fingerprint = r.fingerprint, body = r.body, sent_at = ?4
         FROM records AS r
         WHERE r.account = ?1 AND r.stamp > ?3 AND r.stamp <= ?4
           AND (r.origin IS NULL OR r.origin != ?2)
           AND c.account = r.account AND c.kind = r.kind AND c.id = r.id AND c.device = ?2
           AND (c.fingerprint != r.fingerprint OR c.updated_at < r.updated_at)",
    )?
    .execute(params![account, device, after.unwrap_or(i64::MIN), horizon])?;
    Ok(())
}

/// Before a record's stored version is replaced: every device that holds it through its
/// `sent_through` gets a row of its own, so what it holds is still known after. Each row is
/// its own single-row insert: SQLite keeps a statement journal for a statement that may write
/// several rows, and ends each such statement by walking the in-memory journal of the whole
/// request, so a large request's cost grew with the square of the records it replaced.
pub fn keep_before_replacing(
    tx: &Connection,
    account: &str,
    kind: crate::protocol::Kind,
    id: &str,
) -> rusqlite::Result<()> {
    type Held = (String, Vec<u8>, String, Option<i64>);
    let holders: Vec<Held> = tx
        .prepare_cached(
            "SELECT d.device, r.fingerprint, r.body, r.updated_at
             FROM records r JOIN devices d ON d.account = r.account
             WHERE r.account = ?1 AND r.kind = ?2 AND r.id = ?3 AND r.stamp <= d.sent_through",
        )?
        .query_map(params![account, kind.as_str(), id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO device_copies
           (account, kind, id, device, fingerprint, body, updated_at, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)
         ON CONFLICT (account, kind, id, device) DO NOTHING",
    )?;
    for (device, fingerprint, body, updated_at) in holders {
        insert.execute(params![
            account,
            kind.as_str(),
            id,
            device,
            fingerprint,
            body,
            updated_at
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::Kind;
    use crate::store::test_support::*;
    use crate::timestamp::format_server_time;

    #[test]
    fn a_feed_is_one_range_only_where_it_leaves_no_gap() {
        let mut db = Database::new();
        db.sync(LAPTOP, None, &[list(WORK, "Work", false, T1)]);
        db.connection()
            .execute(
                "INSERT INTO devices (account, device) VALUES ('default', 'phone')",
                [],
            )
            .unwrap();
        db.sync(LAPTOP, Some(LONG_AGO), &[tag(ERRANDS, "errands")]);
        let (work, _, _) = db.row(Kind::List, WORK).unwrap();
        let (errands, _, _) = db.row(Kind::Tag, ERRANDS).unwrap();
        let conn = db.connection();
        let sent_through = |device: &str| -> Option<i64> {
            conn.query_row(
                "SELECT sent_through FROM devices WHERE device = ?1",
                [device],
                |row| row.get(0),
            )
            .unwrap()
        };
        // The phone was never sent Work, stamped before its feed starts.
        assert!(!record_feed(conn, ACCOUNT, "phone", Some(work), work + 1).unwrap());
        assert_eq!(sent_through("phone"), None);
        assert!(record_feed(conn, ACCOUNT, "phone", Some(work - 1), work + 1).unwrap());
        assert_eq!(sent_through("phone"), Some(work + 1));
        // Nor the tag, stamped after that.
        assert!(!record_feed(conn, ACCOUNT, "phone", Some(errands), errands + 1).unwrap());
        // The laptop's full sync covered Work, and it uploaded the tag itself.
        assert!(sent_through(LAPTOP) < Some(errands));
        assert!(record_feed(conn, ACCOUNT, LAPTOP, Some(errands), errands + 1).unwrap());
        assert_eq!(sent_through(LAPTOP), Some(errands + 1));
    }

    #[test]
    fn an_unbroken_run_of_answers_writes_no_copy_per_record_and_loses_no_knowledge() {
        let mut db = Database::new();
        let phone = db.sync(PHONE, None, &[]);
        let first = task("Write report", WORK, &[], T1);
        db.sync(
            LAPTOP,
            None,
            &[list(WORK, "Work", false, T1), first.clone()],
        );
        let carried = format_server_time(phone.server_time);
        let phone = db.sync(PHONE, Some(&carried), &[]);
        assert_eq!(bodies(&phone).len(), 2);
        let rows = |db: &Database| -> i64 {
            db.value(&format!(
                "SELECT COUNT(*) FROM device_copies WHERE device = '{PHONE}'"
            ))
        };
        assert_eq!(rows(&db), 0);
        // An edit: the phone's copy of the first version is written out first.
        let edited = task("Write the report", WORK, &[], T2);
        db.sync(LAPTOP, Some(LONG_AGO), std::slice::from_ref(&edited));
        assert_eq!(rows(&db), 1);
        // So the phone re-stamping the first version is no edit: it gets the second.
        let mut restamped = first;
        restamped["updated_at"] = json!("2026-11-24T22:45:24Z");
        let carried = format_server_time(phone.server_time);
        let phone = db.sync(PHONE, Some(&carried), &[restamped]);
        assert_eq!(phone.conflicts, Vec::<String>::new());
        let stored = db.row(Kind::Task, REPORT).unwrap().2;
        assert_eq!(stored["title"], "Write the report");
        assert_eq!(bodies(&phone), [stored]);
    }
}
