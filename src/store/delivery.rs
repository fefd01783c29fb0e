//! Every device applies what the server decided. The desktop client takes an incoming task,
//! list or tag only when its `updated_at` is later than its own copy's, and its copy may be
//! later than the winner: it re-stamped an older version, two versions tie, or its clock runs
//! fast. Where that is so, the winner's `updated_at` moves forward, just past the newest copy
//! that says something else; otherwise the record goes out byte for byte as it came in.

use rusqlite::Connection;
use serde_json::Value;

use super::clock::Clock;
use super::copies::newest_other;
use super::records::{load, store};
use crate::protocol::Kind;
use crate::timestamp::format_server_time;

/// One millisecond: the bumped `updated_at` is written in milliseconds, a spelling every
/// client reads and compares correctly (the mobile client compares timestamps as strings).
const MILLISECOND: i64 = 1_000_000;

/// Makes the stored version of a record later than every copy a device holds that differs
/// from it, and than `floor` (a version devices the server has not tracked may hold). A
/// moved version keeps its competing instant and gets a new stamp and no origin: every
/// device receives it, so all hold the same `updated_at` of a tag (which clients store as
/// sent) and none keeps a copy dated later than it.
pub fn ensure_applied(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    kind: Kind,
    id: &str,
    floor: Option<i64>,
) -> rusqlite::Result<()> {
    if kind == Kind::TaskTag {
        return Ok(());
    }
    let Some(row) = load(tx, account, kind, id)?.filter(|row| !row.deleted) else {
        return Ok(());
    };
    let newest = newest_other(tx, account, kind, id, &row.fingerprint)?.max(floor);
    let Some(newest) = newest.filter(|&newest| row.updated_at.is_none_or(|at| at <= newest)) else {
        return Ok(());
    };
    let mut moved = row.to_change(kind, id);
    let later = format_server_time(newest.saturating_add(MILLISECOND));
    moved.body.insert("updated_at".into(), Value::from(later));
    store(tx, clock, account, None, &moved)
}
