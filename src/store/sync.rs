//! One sync request applied inside a transaction, composed from the rule families beside it:
//! inbox mapping, tidying, the last-write-wins decision, storing, and the change feed.

use std::collections::HashSet;

use rusqlite::{Connection, params};

use super::clock::Clock;
use super::decide::{Decision, Version, decide};
use super::feed::{OutgoingRecord, changed_since, load_outgoing};
use super::inbox::{InboxIds, device_inbox, inbox_aliases, map_to_account, register_inboxes};
use super::records::{load, store};
use super::tidy::{make_server_edit, tidy_after_delete, tidy_references};
use crate::protocol::{Change, Kind, SyncRequest};

/// What the server answers a sync request with, before it is put on the wire.
#[derive(Debug)]
pub struct SyncOutcome {
    /// Every later change gets a stamp after this instant (not yet set back for skew).
    pub horizon: i64,
    pub records: Vec<OutgoingRecord>,
    /// Ids, as the device sent them, of incoming versions that lost to a stored one.
    pub conflicts: Vec<String>,
    pub inbox: Option<InboxIds>,
}

/// Applies one request for `account` and reads back what the device must receive.
pub fn apply(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    request: &SyncRequest,
) -> rusqlite::Result<SyncOutcome> {
    let device = request.device_id.as_str();
    tx.execute(
        "INSERT OR IGNORE INTO devices (account, device) VALUES (?1, ?2)",
        params![account, device],
    )?;
    let inbox = register_inboxes(tx, account, device, &request.changes)?;
    let scope = Scope {
        account,
        device,
        inbox: inbox.as_ref(),
        aliases: inbox_aliases(tx, account)?,
    };

    let mut conflicts = Vec::new();
    let mut winners_to_resend = Vec::new();
    for change in &request.changes {
        if let Applied::Lost { conflict, winner } = apply_change(tx, clock, &scope, change)? {
            conflicts.extend(conflict);
            winners_to_resend.push(winner);
        }
    }

    let horizon = clock.horizon();
    let mut records = changed_since(tx, account, device, request.last_sync)?;
    let mut sent: HashSet<(Kind, String)> = records
        .iter()
        .map(|(kind, id, _)| (*kind, id.clone()))
        .collect();
    for (kind, id) in winners_to_resend {
        if sent.insert((kind, id.clone()))
            && let Some(record) = load_outgoing(tx, account, kind, &id)?
        {
            records.push((kind, id, record));
        }
    }
    let inbox = match inbox {
        Some(account_inbox) => Some(InboxIds {
            device_inbox: device_inbox(tx, account, device)?,
            account_inbox,
        }),
        None => None,
    };
    Ok(SyncOutcome {
        horizon,
        records: records.into_iter().map(|(_, _, record)| record).collect(),
        conflicts,
        inbox,
    })
}

/// Who is syncing, and the account's inbox ids.
struct Scope<'a> {
    account: &'a str,
    device: &'a str,
    inbox: Option<&'a String>,
    aliases: HashSet<String>,
}

/// What became of one incoming change.
enum Applied {
    /// Stored, or already stored.
    Kept,
    /// The stored version won: the id to report (if it is a UUID) and the winner to resend.
    Lost {
        conflict: Option<String>,
        winner: (Kind, String),
    },
}

/// Maps, tidies and applies one change by last-write-wins.
fn apply_change(
    tx: &Connection,
    clock: &mut Clock,
    scope: &Scope,
    sent: &Change,
) -> rusqlite::Result<Applied> {
    let Some(change) = map_to_account(sent, scope.inbox, &scope.aliases) else {
        return Ok(Applied::Kept);
    };
    let (mut change, tidied) = tidy_references(tx, scope.account, scope.inbox, change)?;
    let stored = load(tx, scope.account, change.kind, &change.id)?;
    let incoming = Version {
        kind: change.kind,
        deleted: change.deleted,
        instant: change.version,
        body: &change.body,
    };
    let stored_version = stored.as_ref().map(|row| Version {
        kind: change.kind,
        deleted: row.deleted,
        instant: row.version,
        body: &row.body,
    });
    match decide(&incoming, stored_version.as_ref()) {
        Decision::Same => Ok(Applied::Kept),
        Decision::Insert | Decision::Replace => {
            // A tidied upload is the server's own edit: every device, the sender included,
            // must receive it and see it as newer than its copy.
            let origin = if tidied {
                make_server_edit(&mut change);
                None
            } else {
                Some(scope.device)
            };
            store(tx, clock, scope.account, origin, &change)?;
            if change.deleted {
                tidy_after_delete(tx, clock, scope.account, scope.inbox, &change)?;
            }
            Ok(Applied::Kept)
        }
        Decision::Lose => {
            // A task-tag link has no id of its own, and `conflicts` must hold UUIDs (the
            // desktop parses them strictly): its winner is sent back all the same.
            let has_uuid = change.kind != Kind::TaskTag || change.deleted;
            Ok(Applied::Lost {
                conflict: has_uuid.then(|| sent.id.clone()),
                winner: (change.kind, change.id),
            })
        }
    }
}

