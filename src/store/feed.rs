//! The change feed: what a device receives, read back by server stamp.

use rusqlite::{Connection, OptionalExtension, params};

use crate::protocol::Kind;

/// A stored record or tombstone as it goes back out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub kind: Kind,
    pub deleted: bool,
    pub body: String,
}

/// A record in the feed with the key it is sent under.
pub type FeedRow = (Kind, String, OutgoingRecord);

/// Every record of the account stamped after `after`, except those whose current version
/// came from this device; everything when `after` is `None` (a full sync). Oldest stamp
/// first.
pub fn changed_since(
    tx: &Connection,
    account: &str,
    device: &str,
    after: Option<i64>,
) -> rusqlite::Result<Vec<FeedRow>> {
    let mut statement = tx.prepare_cached(
        "SELECT kind, id, deleted, body FROM records
         WHERE account = ?1 AND stamp > ?2 AND (?3 IS NULL OR origin IS NULL OR origin != ?3)
         ORDER BY stamp",
    )?;
    let (after, exclude_origin) = match after {
        Some(instant) => (instant, Some(device)),
        None => (i64::MIN, None),
    };
    let rows = statement.query_map(params![account, after, exclude_origin], |row| {
        let kind: String = row.get(0)?;
        let id: String = row.get(1)?;
        Ok((kind, id, row.get(2)?, row.get(3)?))
    })?;
    let mut feed = Vec::new();
    for row in rows {
        let (kind, id, deleted, body) = row?;
        if let Some(kind) = Kind::parse(&kind) {
            feed.push((
                kind,
                id,
                OutgoingRecord {
                    kind,
                    deleted,
                    body,
                },
            ));
        }
    }
    Ok(feed)
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
