//! One sync request applied inside a transaction, composed from the rule families beside it:
//! inbox mapping, tidying, the last-write-wins decision, storing, and the change feed.

use std::collections::HashSet;

use rusqlite::{Connection, params};

use super::clock::Clock;
use super::copies::{Upload, held, sent, uploaded};
use super::decide::{Decision, Version, decide};
use super::delivery::ensure_applied;
use super::device_clock::{ClockWarning, note_offset};
use super::feed::{OutgoingRecord, changed_since, load_outgoing};
use super::inbox::{InboxIds, device_inbox, inbox_aliases, map_to_account, register_inboxes};
use super::records::{load, store};
use super::tidy::{tidy_after_delete, tidy_references};
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
    /// Set the first time the device's clock is seen off by more than the skew allowance.
    pub clock_warning: Option<ClockWarning>,
}

/// Applies one request for `account` and reads back what the device must receive.
/// `skew_allowance` (nanoseconds) is how far off a device's clock may be before it is
/// reported.
pub fn apply(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    request: &SyncRequest,
    skew_allowance: i64,
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
        received_at: clock.horizon(),
    };

    let mut conflicts = Vec::new();
    let mut to_resend = Vec::new();
    let mut offsets = Vec::new();
    for change in &request.changes {
        match apply_change(tx, clock, &scope, change)? {
            Applied::Kept => {}
            Applied::Restamped { offset, resend } => {
                offsets.extend(offset);
                to_resend.extend(resend);
            }
            Applied::Lost { conflict, winner } => {
                conflicts.extend(conflict);
                to_resend.push(winner);
            }
        }
    }
    let clock_warning = match offsets.into_iter().min() {
        Some(offset) => note_offset(tx, account, device, offset, skew_allowance)?,
        None => None,
    };

    let horizon = clock.horizon();
    let mut records = changed_since(tx, account, device, request.last_sync)?;
    let mut in_feed: HashSet<(Kind, String)> = records
        .iter()
        .map(|(kind, id, _)| (*kind, id.clone()))
        .collect();
    for (kind, id) in to_resend {
        if in_feed.insert((kind, id.clone()))
            && let Some(record) = load_outgoing(tx, account, kind, &id)?
        {
            records.push((kind, id, record));
        }
    }
    for (kind, id, _) in &records {
        sent(tx, account, device, *kind, id, horizon)?;
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
        clock_warning,
    })
}

/// Who is syncing, the account's inbox ids, and when the request arrived.
struct Scope<'a> {
    account: &'a str,
    device: &'a str,
    inbox: Option<&'a String>,
    aliases: HashSet<String>,
    /// No version competes as if made later than this (server clock).
    received_at: i64,
}

/// What became of one incoming change.
enum Applied {
    /// Stored, or already stored.
    Kept,
    /// A copy of what the device already held, re-stamped by the client (or a retry): no
    /// change. The clock offset it shows, and the record to resend if the device is behind.
    Restamped {
        offset: Option<i64>,
        resend: Option<(Kind, String)>,
    },
    /// The stored version won: the id to report (if it is a UUID) and the winner to resend.
    Lost {
        conflict: Option<String>,
        winner: (Kind, String),
    },
}

/// Maps, tells a re-stamp from an edit, tidies, and applies an edit by last-write-wins at
/// the instant it competes at: its own time, but never later than its arrival.
fn apply_change(
    tx: &Connection,
    clock: &mut Clock,
    scope: &Scope,
    sent: &Change,
) -> rusqlite::Result<Applied> {
    let Some(change) = map_to_account(sent, scope.inbox, &scope.aliases) else {
        return Ok(Applied::Kept);
    };
    let (account, device, kind) = (scope.account, scope.device, change.kind);
    let upload = Upload::of(&change);
    let copy = held(tx, account, device, kind, &change.id)?;
    uploaded(tx, account, device, &change, &upload)?;
    if let Some(copy) = copy.filter(|copy| copy.holds(&upload)) {
        let stored = load(tx, account, kind, &change.id)?;
        let behind = stored.is_some_and(|row| row.fingerprint != upload.fingerprint);
        if behind {
            ensure_applied(tx, clock, account, kind, &change.id, None)?;
        }
        return Ok(Applied::Restamped {
            offset: copy.restamp_offset(&upload),
            resend: behind.then_some((kind, change.id)),
        });
    }

    let (mut change, tidied) = tidy_references(tx, account, scope.inbox, change)?;
    let stored = load(tx, account, kind, &change.id)?;
    let instant = change.version.min(scope.received_at);
    let incoming = Version {
        kind,
        deleted: change.deleted,
        instant,
        body: &change.body,
    };
    let stored_version = stored.as_ref().map(|row| Version {
        kind,
        deleted: row.deleted,
        instant: row.version,
        body: &row.body,
    });
    match decide(&incoming, stored_version.as_ref()) {
        Decision::Same => Ok(Applied::Kept),
        Decision::Insert | Decision::Replace => {
            change.version = instant;
            // A tidied upload is the server's own edit: every device, the sender included,
            // must receive it.
            let origin = (!tidied).then_some(device);
            store(tx, clock, account, origin, &change)?;
            let replaced = stored.and_then(|row| row.updated_at);
            ensure_applied(tx, clock, account, kind, &change.id, replaced)?;
            if change.deleted {
                tidy_after_delete(tx, clock, account, scope.inbox, &change)?;
            }
            Ok(Applied::Kept)
        }
        Decision::Lose => {
            ensure_applied(tx, clock, account, kind, &change.id, None)?;
            // A task-tag link has no id of its own, and `conflicts` must hold UUIDs (the
            // desktop parses them strictly): its winner is sent back all the same.
            let has_uuid = kind != Kind::TaskTag || change.deleted;
            Ok(Applied::Lost {
                conflict: has_uuid.then(|| sent.id.clone()),
                winner: (kind, change.id),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::protocol::Kind;
    use crate::store::inbox::InboxIds;
    use crate::store::test_support::*;

    #[test]
    fn a_new_record_reaches_other_devices_but_is_not_echoed() {
        let mut db = Database::new();
        let report = task("Write report", WORK, &[], T1);
        let work = list(WORK, "Work", false, T1);
        let laptop = db.sync(LAPTOP, Some(LONG_AGO), &[work.clone(), report.clone()]);
        assert_eq!(bodies(&laptop), Vec::<Value>::new());
        assert_eq!(laptop.conflicts, Vec::<String>::new());
        let phone = db.sync(PHONE, Some(LONG_AGO), &[]);
        assert_eq!(bodies(&phone), [work, report.clone()]);
        let (_, origin, stored) = db.row(Kind::Task, REPORT).unwrap();
        assert_eq!((origin.as_deref(), stored), (Some(LAPTOP), report));
    }

    #[test]
    fn a_replay_or_a_copy_from_another_device_changes_nothing() {
        let mut db = Database::new();
        let report = task("Write report", WORK, &[], T1);
        db.sync(LAPTOP, None, std::slice::from_ref(&report));
        let before = db.row(Kind::Task, REPORT).unwrap();
        let replay = db.sync(LAPTOP, Some(LONG_AGO), std::slice::from_ref(&report));
        let copy = db.sync(PHONE, None, std::slice::from_ref(&report));
        assert_eq!(replay.conflicts, Vec::<String>::new());
        assert_eq!(copy.conflicts, Vec::<String>::new());
        assert_eq!(db.row(Kind::Task, REPORT).unwrap(), before);
    }

    #[test]
    fn an_older_version_loses_and_its_device_receives_the_winner() {
        let mut db = Database::new();
        let newer = task("Write the report", WORK, &[], T2);
        db.sync(LAPTOP, None, std::slice::from_ref(&newer));
        let phone = db.sync(
            PHONE,
            Some(LONG_AGO),
            &[task("Write report", WORK, &[], T1)],
        );
        assert_eq!(phone.conflicts, [REPORT]);
        assert_eq!(db.row(Kind::Task, REPORT).unwrap().2, newer);
        assert_eq!(bodies(&phone), [newer]);
    }

    #[test]
    fn a_newer_tombstone_deletes_and_an_older_update_loses_to_it() {
        let mut db = Database::new();
        db.sync(LAPTOP, None, &[task("Write report", WORK, &[], T1)]);
        let gone = deleted(REPORT, "task", T2);
        db.sync(PHONE, None, std::slice::from_ref(&gone));
        let late = db.sync(
            LAPTOP,
            Some(LONG_AGO),
            &[task("Write the report", WORK, &[], T1)],
        );
        assert_eq!(late.conflicts, [REPORT]);
        assert_eq!(db.row(Kind::Task, REPORT).unwrap().2, gone);
        assert_eq!(bodies(&late), std::slice::from_ref(&gone));
        // A retry of that upload is no new version: no conflict, and the winner again.
        let retry = db.sync(
            LAPTOP,
            Some(LONG_AGO),
            &[task("Write the report", WORK, &[], T1)],
        );
        assert_eq!(retry.conflicts, Vec::<String>::new());
        assert_eq!(bodies(&retry), [gone]);
    }

    #[test]
    fn every_device_inbox_is_the_account_inbox() {
        let mut db = Database::new();
        db.sync(LAPTOP, None, &[list(LAPTOP_INBOX, "Inbox", true, T1)]);
        let phone = db.sync(
            PHONE,
            None,
            &[
                list(PHONE_INBOX, "Inbox", true, T1),
                task("Call plumber", PHONE_INBOX, &[], T1),
            ],
        );
        assert_eq!(
            phone.inbox,
            Some(InboxIds {
                account_inbox: LAPTOP_INBOX.into(),
                device_inbox: Some(PHONE_INBOX.into()),
            })
        );
        assert_eq!(
            db.row(Kind::Task, REPORT).unwrap().2["list_id"],
            LAPTOP_INBOX
        );
        assert_eq!(db.row(Kind::List, PHONE_INBOX), None);
    }

    #[test]
    fn deleting_a_list_moves_its_tasks_to_the_inbox_as_a_server_edit() {
        let mut db = Database::new();
        let report = task("Write report", WORK, &[], T1);
        db.sync(
            LAPTOP,
            None,
            &[
                list(LAPTOP_INBOX, "Inbox", true, T1),
                list(WORK, "Work", false, T1),
                report.clone(),
            ],
        );
        let phone = db.sync(PHONE, Some(LONG_AGO), &[deleted(WORK, "list", T2)]);
        let (_, origin, stored) = db.row(Kind::Task, REPORT).unwrap();
        assert_eq!(
            origin, None,
            "a server edit reaches every device, its sender too"
        );
        assert_eq!(stored["list_id"], LAPTOP_INBOX);
        let inbox = list(LAPTOP_INBOX, "Inbox", true, T1);
        assert_eq!(bodies(&phone), [inbox, stored.clone()]);
        let stamped = crate::timestamp::parse_nanos(stored["updated_at"].as_str().unwrap());
        assert!(stamped > crate::timestamp::parse_nanos(T1));
    }

    #[test]
    fn a_task_uploaded_after_its_tag_was_deleted_arrives_without_it() {
        let mut db = Database::new();
        db.sync(LAPTOP, None, &[tag(ERRANDS, "errands")]);
        db.sync(PHONE, None, &[deleted(ERRANDS, "tag", T2)]);
        let laptop = db.sync(
            LAPTOP,
            Some(LONG_AGO),
            &[task("Buy milk", WORK, &[ERRANDS], T1)],
        );
        let (_, origin, stored) = db.row(Kind::Task, REPORT).unwrap();
        assert_eq!(stored["tag_ids"], json!([]));
        assert_eq!(origin, None);
        assert_eq!(bodies(&laptop), [deleted(ERRANDS, "tag", T2), stored]);
    }
}
