//! Each device's clock as the server sees it. The desktop client re-stamps every record it
//! applies with its own clock, so the times on the rows it uploads right after applying the
//! server's answer show how far its clock is from the server's. The desktop app's TUI and the
//! mobile app keep as their next `last_sync` the earlier of their own clock (read before
//! the sync) and the `server_time` they were sent, so a `last_sync` earlier than that
//! `server_time` is their clock, read when their previous request left. A device too far
//! off is reported once in the log (and again only after it has come back within the
//! allowance).

use std::fmt;

use rusqlite::{Connection, params};

use super::last_answer::LastAnswer;

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
pub fn offset_from_last_sync(previous: Option<&LastAnswer>, last_sync: Option<i64>) -> Option<i64> {
    let previous = previous?;
    last_sync
        .filter(|&last_sync| last_sync < previous.server_time)
        .filter(|&last_sync| Some(last_sync) != previous.last_sync)
        .map(|own_clock| own_clock.saturating_sub(previous.received_at))
}
