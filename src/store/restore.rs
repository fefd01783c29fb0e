//! A database restored from a backup holds less than its devices do: what they uploaded
//! after the copy was taken is only on them, and they would never send it again, as a client
//! uploads only what changed after its `last_sync`. So `tickit-sync backup` marks its copy
//! ([`mark_copy`]) with, for each device, the instant its last answer known to the copy was
//! complete to. Once restored, the server answers each device's first sync with a
//! `server_time` set back that far ([`take_upload_again_from`]), and the device's next sync
//! uploads again everything it changed since: what the server holds is a no-op (an identical
//! version), and what it lost is stored and reaches every other device. A device the copy
//! never saw that syncs with a `last_sync` (it joined after the copy was taken) uploads
//! everything it holds.

use rusqlite::{Connection, OptionalExtension, params};

/// Marks a backup's copy, taken at `taken_at`: each device is to upload again what it
/// changed after its last answer on record there (less its clock's lag behind the server's:
/// the desktop TUI and the mobile app keep their own clock's time as `last_sync` when it is
/// earlier than `server_time`).
pub fn mark_copy(conn: &Connection, taken_at: i64) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM backup_taken;
         UPDATE devices SET upload_again_from =
             COALESCE(answered_through, sent_through, 0) + MIN(COALESCE(clock_offset, 0), 0);",
    )?;
    conn.execute(
        "INSERT INTO backup_taken (taken_at) VALUES (?1)",
        [taken_at],
    )?;
    Ok(())
}

/// The instant from which the device is to upload again, once (it is cleared as it is
/// taken): set by [`mark_copy`], or the beginning of time for a device new to a restored
/// copy that has synced elsewhere before (`has_last_sync`).
pub fn take_upload_again_from(
    tx: &Connection,
    account: &str,
    device: &str,
    is_new: bool,
    has_last_sync: bool,
) -> rusqlite::Result<Option<i64>> {
    if is_new {
        if !has_last_sync {
            return Ok(None);
        }
        let restored: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM backup_taken)")?
            .query_row([], |row| row.get(0))?;
        return Ok(restored.then_some(0));
    }
    let from: Option<i64> = tx
        .prepare_cached("SELECT upload_again_from FROM devices WHERE account = ?1 AND device = ?2")?
        .query_row(params![account, device], |row| row.get(0))
        .optional()?
        .flatten();
    if from.is_some() {
        tx.prepare_cached(
            "UPDATE devices SET upload_again_from = NULL WHERE account = ?1 AND device = ?2",
        )?
        .execute(params![account, device])?;
    }
    Ok(from)
}
