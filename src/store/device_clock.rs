//! Each device's clock as the server sees it. The desktop client re-stamps every record it
//! applies with its own clock, so the times on the rows it uploads right after applying the
//! server's answer show how far its clock is from the server's. The desktop app's TUI and the
//! mobile app keep as their next `last_sync` the earlier of their own clock (read before
//! the sync) and the `server_time` they were sent, so a `last_sync` earlier than that
//! `server_time` is their clock, read when their previous request left. A device too far
//! off is reported once in the log (and again only after it has come back within the
//! allowance).

use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};

/// A device whose clock is off by more than the skew allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockWarning {
    pub device: String,
    /// Estimated offset from the server's clock in nanoseconds; positive is ahead.
    pub offset: i64,
}

impl fmt::Display for ClockWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.offset.unsigned_abs() as f64 / 1e9;
        let (direction, risk) = if self.offset > 0 {
            (
                "ahead of",
                "its edits compete as if made when they reach the server",
            )
        } else {
            (
                "behind",
                "it may fail to upload edits made soon after a sync",
            )
        };
        write!(
            f,
            "device {} has a clock about {seconds:.1} s {direction} the server's; {risk}; \
             set its clock right (enable NTP on it)",
            self.device
        )
    }
}

/// Records the device's latest clock offset estimate and returns a warning the first time
/// it goes beyond `allowance` (nanoseconds).
pub fn note_offset(
    tx: &Connection,
    account: &str,
    device: &str,
    offset: i64,
    allowance: i64,
) -> rusqlite::Result<Option<ClockWarning>> {
    let off = offset.unsigned_abs() > allowance.unsigned_abs();
    let warned: bool = tx
        .prepare_cached("SELECT clock_warned FROM devices WHERE account = ?1 AND device = ?2")?
        .query_row(params![account, device], |row| row.get(0))?;
    tx.prepare_cached(
        "UPDATE devices SET clock_offset = ?3, clock_warned = ?4
         WHERE account = ?1 AND device = ?2",
    )?
    .execute(params![account, device, offset, off])?;
    Ok((off && !warned).then(|| ClockWarning {
        device: device.to_owned(),
        offset,
    }))
}

/// The device's clock offset as its `last_sync` shows it, if that is its own clock: earlier
/// than the `server_time` of the answer to its previous request. A request that repeats the
/// previous one's `last_sync` is a retry (that answer may never have arrived): it tells
/// nothing.
pub fn offset_from_last_sync(
    tx: &Connection,
    account: &str,
    device: &str,
    last_sync: Option<i64>,
) -> rusqlite::Result<Option<i64>> {
    type Previous = (Option<i64>, Option<i64>, Option<i64>);
    let previous: Option<Previous> = tx
        .prepare_cached(
            "SELECT last_received_at, last_server_time, last_last_sync FROM devices
             WHERE account = ?1 AND device = ?2",
        )?
        .query_row(params![account, device], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((Some(received_at), Some(server_time), previous_last_sync)) = previous else {
        return Ok(None);
    };
    // `server_time` goes out rounded down to the millisecond.
    const MILLISECOND: i64 = 1_000_000;
    Ok(last_sync
        .filter(|&last_sync| last_sync < server_time - MILLISECOND)
        .filter(|&last_sync| Some(last_sync) != previous_last_sync)
        .map(|own_clock| own_clock - received_at))
}

/// Remembers when the device's request arrived, its `last_sync`, and the `server_time` it
/// is answered with.
pub fn remember_answer(
    tx: &Connection,
    account: &str,
    device: &str,
    received_at: i64,
    last_sync: Option<i64>,
    server_time: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE devices SET last_received_at = ?3, last_last_sync = ?4, last_server_time = ?5
         WHERE account = ?1 AND device = ?2",
    )?
    .execute(params![
        account,
        device,
        received_at,
        last_sync,
        server_time
    ])?;
    Ok(())
}
