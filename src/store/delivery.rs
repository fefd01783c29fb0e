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
use crate::protocol::{Change, Kind, version_instant};
use crate::timestamp::format_instant;

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
    let mut moved = row.to_change(kind, id);
    if date_past_copies(tx, account, &mut moved, &row.fingerprint, floor)? {
        store(
            tx,
            clock,
            account,
            None,
            &moved,
            &row.fingerprint,
            Some(&row),
        )?;
    }
    Ok(())
}

/// What [`ensure_applied`] does, to a version before it is stored (so it is written once):
/// moves its `updated_at` just past the newest copy that says something else, and past
/// `floor`, unless it is later already. A version about to replace a stored one passes the
/// replaced `updated_at` as `floor`, as the devices holding that one keep it. `fingerprint`
/// is the version's content fingerprint. Says whether it moved.
pub fn date_past_copies(
    tx: &Connection,
    account: &str,
    change: &mut Change,
    fingerprint: &[u8],
    floor: Option<i64>,
) -> rusqlite::Result<bool> {
    if change.kind == Kind::TaskTag || change.deleted {
        return Ok(false);
    }
    // A floor at the low end of the range says only that it is before 1677: the copies
    // the server tracks carry such dates exactly, so it sets none.
    let floor = floor.filter(|&floor| floor != i64::MIN).map(i128::from);
    let newest = newest_other(tx, account, change.kind, &change.id, fingerprint)?.max(floor);
    let dated = version_instant(false, &change.body);
    let Some(newest) = newest.filter(|&newest| dated.is_none_or(|at| at <= newest)) else {
        return Ok(false);
    };
    let later = format_instant(newest + MILLISECOND);
    change.body.insert("updated_at".into(), Value::from(later));
    Ok(true)
}
