//! The change feed: what a device receives. The writer decides, inside the sync's
//! transaction, which stamps the answer covers (a [`FeedRange`]), and reads its records
//! there when they are few. More are read after the commit, a group at a time in the order
//! clients apply them (lists, tags, tasks, task-tag links, then deletes), so a large answer
//! streams from the database instead of being held in memory.
//!
//! That later read may see later versions than the writer did. Rows stamped after the
//! range's end are left out: their older versions were in the range, but the newer ones go
//! out in the device's next answer, which starts where this one ended.

use rusqlite::{Connection, OptionalExtension, params};

use crate::protocol::Kind;

/// A stored record or tombstone as it goes back out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub kind: Kind,
    pub deleted: bool,
    pub body: String,
}

/// A record sent beside the feed, with the key of the record it is (what a device is sent
/// of the inbox goes under the account inbox's key).
pub type KeyedRecord = (Kind, String, OutgoingRecord);

/// The records an answer carries from the feed: those of `account` stamped in
/// `(after, up_to]`, except the uploads of `device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRange {
    pub account: String,
    /// The device whose uploads are left out; `None` in a full sync, which sends everything.
    pub device: Option<String>,
    /// `None`: from the first stamp.
    pub after: Option<i64>,
    pub up_to: i64,
    /// A list left out of the feed: the account inbox, when it goes out under every alias.
    pub skip_list: Option<String>,
}

impl FeedRange {
    /// Whether a record stamped `stamp` whose version came from `origin` is in the range.
    pub fn holds(&self, stamp: i64, origin: Option<&str>) -> bool {
        self.after.is_none_or(|after| stamp > after)
            && stamp <= self.up_to
            && (self.device.is_none() || origin != self.device.as_deref())
    }
}

/// The groups of an answer, in the order they go out: what each holds, `(kind, deleted)`.
pub const GROUPS: [(Kind, bool); 8] = [
    (Kind::List, false),
    (Kind::Tag, false),
    (Kind::Task, false),
    (Kind::TaskTag, false),
    (Kind::List, true),
    (Kind::Tag, true),
    (Kind::Task, true),
    (Kind::TaskTag, true),
];

/// Where a record goes in the answer: its index in [`GROUPS`].
pub fn group_of(record: &OutgoingRecord) -> usize {
    GROUPS
        .iter()
        .position(|&group| group == (record.kind, record.deleted))
        .unwrap_or(GROUPS.len())
}

/// Whether any record of `account` not uploaded by `device` is stamped in `(after, up_to]`.
pub fn any_changed(
    tx: &Connection,
    account: &str,
    device: Option<&str>,
    after: Option<i64>,
    up_to: i64,
) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM records
                        WHERE account = ?1 AND stamp > ?3 AND stamp <= ?4
                          AND (?2 IS NULL OR origin IS NULL OR origin != ?2))",
    )?
    .query_row(
        params![account, device, after.unwrap_or(i64::MIN), up_to],
        |row| row.get(0),
    )
}

/// A group's records in a range, oldest stamp first (through `records_by_group`).
const BY_STAMP: &str = "SELECT id, body FROM records
     WHERE account = ?1 AND kind = ?2 AND deleted = ?3 AND stamp > ?4 AND stamp <= ?5
       AND (?6 IS NULL OR origin IS NULL OR origin != ?6)
     ORDER BY stamp";
/// The same in key order: one pass over the table (the `+` keeps SQLite from taking the
/// index and sorting its result instead).
const BY_KEY: &str = "SELECT id, body FROM records
     WHERE account = ?1 AND kind = ?2 AND +deleted = ?3 AND +stamp > ?4 AND +stamp <= ?5
       AND (?6 IS NULL OR origin IS NULL OR origin != ?6)
     ORDER BY id";

/// Calls `each` with the range's records of one group until it returns false: oldest
/// stamp first, or, from the first stamp on (a full sync), in the table's own order, one
/// pass over it instead of a lookup per record.
pub fn read_group(
    conn: &Connection,
    range: &FeedRange,
    (kind, deleted): (Kind, bool),
    mut each: impl FnMut(OutgoingRecord) -> bool,
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(if range.after.is_some() {
        BY_STAMP
    } else {
        BY_KEY
    })?;
    let mut rows = statement.query(params![
        range.account,
        kind.as_str(),
        deleted,
        range.after.unwrap_or(i64::MIN),
        range.up_to,
        range.device,
    ])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        if kind == Kind::List && !deleted && range.skip_list.as_ref() == Some(&id) {
            continue;
        }
        let record = OutgoingRecord {
            kind,
            deleted,
            body: row.get(1)?,
        };
        if !each(record) {
            break;
        }
    }
    Ok(())
}

/// Calls `each` with every record of an answer in the order they go out: by group, each
/// group's feed records (read through `feed`) before the others of that group (`extras`).
pub fn in_answer_order(
    feed: Option<(&Connection, &FeedRange)>,
    mut extras: Vec<OutgoingRecord>,
    mut each: impl FnMut(OutgoingRecord) -> bool,
) -> rusqlite::Result<()> {
    extras.sort_by_key(group_of);
    let mut extras = extras.into_iter().peekable();
    let mut going = true;
    for (index, group) in GROUPS.into_iter().enumerate() {
        if let Some((conn, range)) = feed.filter(|_| going) {
            read_group(conn, range, group, |record| {
                going = each(record);
                going
            })?;
        }
        while let Some(record) = extras.next_if(|record| group_of(record) == index) {
            going = going && each(record);
        }
    }
    Ok(())
}

/// The most records an answer's feed holds when the writer reads it itself.
const SMALL: usize = 256;

/// The range's records in answer order, if there are at most [`SMALL`].
pub fn read_if_small(
    tx: &Connection,
    range: &FeedRange,
) -> rusqlite::Result<Option<Vec<OutgoingRecord>>> {
    let mut records = Vec::new();
    in_answer_order(Some((tx, range)), Vec::new(), |record| {
        records.push(record);
        records.len() <= SMALL
    })?;
    Ok((records.len() <= SMALL).then_some(records))
}

/// One stored record as it goes out, to resend a conflict's winner.
pub fn load_outgoing(
    tx: &Connection,
    account: &str,
    kind: Kind,
    id: &str,
) -> rusqlite::Result<Option<OutgoingRecord>> {
    tx.prepare_cached(
        "SELECT deleted, body FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3",
    )?
    .query_row(params![account, kind.as_str(), id], |row| {
        Ok(OutgoingRecord {
            kind,
            deleted: row.get(0)?,
            body: row.get(1)?,
        })
    })
    .optional()
}

/// Whether the stored version of a record is in `range`.
pub fn in_range(
    tx: &Connection,
    range: &FeedRange,
    kind: Kind,
    id: &str,
) -> rusqlite::Result<bool> {
    let stored: Option<(i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT stamp, origin FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3",
        )?
        .query_row(params![range.account, kind.as_str(), id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    Ok(stored.is_some_and(|(stamp, origin)| range.holds(stamp, origin.as_deref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_read_through_an_index_never_sorted_in_memory() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for (sql, uses) in [
            (BY_STAMP, "USING INDEX records_by_group"),
            (BY_KEY, "USING PRIMARY KEY"),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(params!["a", "task", false, 0, 1, None::<String>], |row| {
                    row.get(3)
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(plan.len(), 1, "{plan:?}");
            assert!(plan[0].contains(uses), "{plan:?}");
        }
    }
}
