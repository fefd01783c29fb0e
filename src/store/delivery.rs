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
use crate::protocol::{Kind, version_instant};
use crate::timestamp::{format_instant, unsaturated};

/// One millisecond: the bumped `updated_at` is written in milliseconds, a spelling every
/// client reads and compares correctly (the mobile client compares timestamps as strings).
const MILLISECOND: i128 = 1_000_000;

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
    // A floor at the low end of the range says only that it is before 1677: the copies
    // the server tracks carry such dates exactly, so it sets none.
    let floor = floor.filter(|&floor| floor != i64::MIN).map(i128::from);
    let newest = newest_other(tx, account, kind, id, &row.fingerprint)?.max(floor);
    let dated = row
        .updated_at
        .map(|at| unsaturated(at, || version_instant(false, &row.body)));
    let Some(newest) = newest.filter(|&newest| dated.is_none_or(|at| at <= newest)) else {
        return Ok(());
    };
    let mut moved = row.to_change(kind, id);
    let later = format_instant(newest + MILLISECOND);
    moved.body.insert("updated_at".into(), Value::from(later));
    store(tx, clock, account, None, &moved)
}
