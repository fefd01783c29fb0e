//! One sync request applied inside a transaction, composed from the rule families beside it:
//! inbox mapping, what each device holds (a re-stamp is not an edit), tidying, the
//! last-write-wins decision, delivery of the winner, storing, the device's clock, and the
//! change feed.

use std::collections::HashSet;

use rusqlite::Connection;

use super::clock::Clock;
use super::copies::{Copy, Upload, held, sent, sent_range, uploaded};
use super::decide::{Decision, Version, decide};
use super::delivery::{date_past_copies, ensure_applied};
use super::device_clock::{ClockWarning, note_offset, offset_from_last_sync};
use super::device_state::{self, Caller};
use super::feed::{
    FeedRange, KeyedRecord, OutgoingRecord, any_changed, in_range, load_outgoing, read_if_small,
};
use super::fingerprint;
use super::inbox::{InboxIds, device_inbox, inbox_aliases, map_to_account, register_inboxes};
use super::last_answer::{LastAnswer, LastAnswers, feed_after};
use super::records::{load, postpone, store};
use super::restore::take_upload_again_from;
use super::sent_through::record_feed;
use super::tidy::{DeletedLookups, as_tidied_by_device, tidy_references};
use super::tidy_stored::{queued_in, tidy_after_deletes, tidy_loaded_task};
use super::unknown_inbox;
use crate::protocol::{Change, InboxRename, Kind, ReceivedChange, SyncRequest};
use crate::timestamp::format_server_time;

/// What the server answers a sync request with, before it is put on the wire.
#[derive(Debug)]
pub struct SyncOutcome {
    /// The `server_time` to answer with: every later change gets a stamp after it, and it is
    /// set back by the skew allowance.
    pub server_time: i64,
    /// The records to read from the feed after the commit, if it holds too many to read
    /// them into `extras`.
    pub feed: Option<FeedRange>,
    /// The records sent beside `feed`: the feed's own when it is small, winners of
    /// conflicts, the inbox under its aliases.
    pub extras: Vec<OutgoingRecord>,
    /// Ids, as the device sent them, of incoming versions that lost to a stored one.
    pub conflicts: Vec<String>,
    pub inbox: Option<InboxIds>,
    /// The id the account inbox's tasks go out under, if not the device's inbox id (see
    /// `unknown_inbox`).
    pub inbox_tasks_under: Option<String>,
    /// Set the first time the device's clock is seen off by more than the skew allowance.
    pub clock_warning: Option<ClockWarning>,
}

impl SyncOutcome {
    /// How the answer renames the account inbox for the device.
    pub fn inbox_rename(&self) -> Option<InboxRename<'_>> {
        self.inbox.as_ref().map(|ids| {
            let device_inbox = ids.device_inbox.as_deref().unwrap_or(&ids.account_inbox);
            InboxRename {
                account_inbox: &ids.account_inbox,
                device_inbox,
                task_inbox: self.inbox_tasks_under.as_deref().unwrap_or(device_inbox),
            }
        })
    }
}

/// Applies one request of `caller` and reads back what the device must receive: the
/// changes after its last answer (see [`last_answer`](super::last_answer)), which is then
/// replaced by this one. `skew_allowance` (nanoseconds) is how far off a device's clock may
/// be before it is reported; `tidy_budget` is how many stored tasks its deletes may tidy
/// before the rest are queued (see [`tidy_stored`](super::tidy_stored)).
pub fn apply(
    tx: &Connection,
    clock: &mut Clock,
    last_answers: &mut LastAnswers,
    caller: &Caller,
    request: &SyncRequest,
    skew_allowance: i64,
    tidy_budget: usize,
) -> rusqlite::Result<SyncOutcome> {
    let (account, device) = (caller.account.as_str(), request.device_id.as_str());
    let received_at = clock.horizon();
    let is_new = device_state::register(tx, account, device, received_at)?;
    let upload_again_from =
        take_upload_again_from(tx, account, device, is_new, request.last_sync.is_some())?;
    let imported_inboxes = unknown_inbox::in_account(tx, account)?;
    let inbox_was_unknown = imported_inboxes && device_inbox(tx, account, device)?.is_none();
    let inbox = register_inboxes(tx, account, device, &request.changes)?;
    let last_answer = last_answers.get(account, device).copied();
    let mut scope = Scope {
        account,
        device,
        last_answer,
        inbox: inbox.as_ref(),
        aliases: inbox_aliases(tx, account)?,
        received_at,
        deleted_by_device: request
            .changes
            .iter()
            .filter(|change| change.deleted)
            .map(|change| (change.kind, change.id.clone()))
            .collect(),
        deleted_lookups: DeletedLookups::default(),
        tidy_queued: queued_in(tx, account)?,
    };

    let mut conflicts = Vec::new();
    let mut to_resend = Vec::new();
    let mut offsets = Vec::from_iter(offset_from_last_sync(
        last_answer.as_ref(),
        request.last_sync,
    ));
    let (deletes, records) = in_order(&request.changes);
    let mut applied = Vec::with_capacity(request.changes.len());
    for change in deletes {
        applied.push(apply_change(tx, clock, &scope, change)?);
    }
    let deleted = applied
        .iter()
        .filter_map(|applied| applied.deleted.as_ref());
    let queued_now = tidy_after_deletes(
        tx,
        clock,
        &scope.deleted_lookups,
        account,
        scope.inbox,
        deleted,
        tidy_budget,
    )?;
    scope.tidy_queued |= queued_now;
    for change in records {
        applied.push(apply_change(tx, clock, &scope, change)?);
    }
    for applied in applied {
        conflicts.extend(applied.conflict);
        to_resend.extend(applied.resend);
        offsets.extend(applied.clock_offset);
    }
    let clock_warning = match offsets.into_iter().min() {
        Some(offset) => note_offset(tx, account, device, offset, skew_allowance)?,
        None => None,
    };

    let horizon = clock.horizon();
    let mut server_time = horizon.saturating_sub(skew_allowance);
    if let Some(from) = upload_again_from {
        server_time = server_time.min(from.saturating_sub(skew_allowance).max(0));
    }
    let feed_start = feed_after(last_answer.as_ref(), request.last_sync);
    let mut feed = feed_range(tx, account, device, feed_start, horizon)?;
    let mut extras = resends(tx, account, feed.as_ref(), to_resend)?;
    let own_inbox = device_inbox(tx, account, device)?;
    let mut inbox_tasks_under = None;
    if let Some(account_inbox) = &inbox {
        // Also in the answer that learns the device's inbox: it moves what the client kept
        // under the transit id.
        if inbox_was_unknown {
            unknown_inbox::send_under_every_alias(
                tx,
                account,
                account_inbox,
                &mut feed,
                &mut extras,
            )?;
        }
        if imported_inboxes && own_inbox.is_none() {
            let deleted_at = format_server_time(server_time);
            inbox_tasks_under = unknown_inbox::send_inbox_tasks_in_transit(
                tx,
                account_inbox,
                feed.as_ref(),
                &mut extras,
                &deleted_at,
            )?;
        }
    }
    let mut recorded = HashSet::new();
    for (kind, id, _) in &extras {
        if recorded.insert((*kind, id)) {
            sent(tx, account, device, *kind, id, horizon)?;
        }
    }
    // A feed that fits in memory is read here, from the sync's own snapshot, ahead of the
    // extras; a larger one streams from the database after the commit.
    let mut records = Vec::new();
    if let Some(range) = &feed
        && let Some(rows) = read_if_small(tx, range)?
    {
        records = rows;
        feed = None;
    }
    records.extend(extras.into_iter().map(|(_, _, record)| record));
    // What waits for the device changes only with what it is sent; its own uploads never
    // wait for it.
    let delivered = feed.is_some() || !records.is_empty() || upload_again_from.is_some();
    device_state::note_sync(tx, caller, device, received_at, horizon, delivered)?;
    last_answers.remember(
        account,
        device,
        LastAnswer::new(
            scope.received_at,
            request.last_sync,
            server_time,
            (feed_start, horizon),
        ),
    );
    let inbox = inbox.map(|account_inbox| InboxIds {
        device_inbox: own_inbox,
        account_inbox,
    });
    Ok(SyncOutcome {
        server_time,
        feed,
        extras: records,
        conflicts,
        inbox,
        inbox_tasks_under,
        clock_warning,
    })
}

/// The feed of an answer that starts after `feed_start` (`None`: a full sync) and ends at
/// `horizon`, if it holds anything; what it sends is recorded as one range where that
/// leaves no gap, else record by record.
fn feed_range(
    tx: &Connection,
    account: &str,
    device: &str,
    feed_start: Option<i64>,
    horizon: i64,
) -> rusqlite::Result<Option<FeedRange>> {
    let exclude = feed_start.map(|_| device);
    if !any_changed(tx, account, exclude, feed_start, horizon)? {
        return Ok(None);
    }
    let feed = FeedRange {
        account: account.to_owned(),
        device: exclude.map(str::to_owned),
        after: feed_start,
        up_to: horizon,
        skip_list: None,
    };
    if !record_feed(tx, account, device, feed_start, horizon)? {
        sent_range(tx, &feed, device)?;
    }
    Ok(Some(feed))
}

/// The stored versions of `to_resend` that `feed` does not carry, once each.
fn resends(
    tx: &Connection,
    account: &str,
    feed: Option<&FeedRange>,
    to_resend: Vec<(Kind, String)>,
) -> rusqlite::Result<Vec<KeyedRecord>> {
    let mut extras: Vec<KeyedRecord> = Vec::new();
    let mut seen = HashSet::new();
    for (kind, id) in to_resend {
        if !seen.insert((kind, id.clone())) {
            continue;
        }
        let in_feed = match feed {
            Some(feed) => in_range(tx, feed, kind, &id)?,
            None => false,
        };
        if !in_feed && let Some(record) = load_outgoing(tx, account, kind, &id)? {
            extras.push((kind, id, record));
        }
    }
    Ok(extras)
}

/// Who is syncing, the account's inbox ids, and when the request arrived.
struct Scope<'a> {
    account: &'a str,
    device: &'a str,
    /// The device's previous answer, if remembered.
    last_answer: Option<LastAnswer>,
    inbox: Option<&'a String>,
    aliases: HashSet<String>,
    /// No version competes as if made later than this (server clock).
    received_at: i64,
    /// The records this request deletes: the device applied those deletes to what it sends.
    deleted_by_device: HashSet<(Kind, String)>,
    deleted_lookups: DeletedLookups,
    /// Whether stored tasks of the account's deletes are queued for tidying: an upload of a
    /// task then meets its stored version tidied first.
    tidy_queued: bool,
}

/// The request's changes in the order they are applied, its deletes and then its records:
/// deletes first, as the client applied its own deletes to the records it sends (it moves a
/// deleted list's tasks to its inbox without re-stamping them), and the stored tasks they
/// leave dangling are tidied in between; and without a tombstone of a record the request
/// also holds (the client keeps its tombstone after it receives the record back, and holds
/// the record).
fn in_order(
    changes: &[ReceivedChange],
) -> (
    impl Iterator<Item = &ReceivedChange>,
    impl Iterator<Item = &ReceivedChange>,
) {
    let records: HashSet<(Kind, &str)> = changes
        .iter()
        .filter(|change| !change.deleted)
        .map(|change| (change.kind, change.id.as_str()))
        .collect();
    let deletes = changes.iter().filter(move |change| {
        change.deleted && !records.contains(&(change.kind, change.id.as_str()))
    });
    (deletes, changes.iter().filter(|change| !change.deleted))
}

/// What became of one incoming change.
#[derive(Default)]
struct Applied {
    /// The id, as the device sent it, of a version that lost (if it is a UUID).
    conflict: Option<String>,
    /// A record the device holds another version of than the stored one, to send it.
    resend: Option<(Kind, String)>,
    /// How far ahead of the server's the device's clock was when it re-stamped this record.
    clock_offset: Option<i64>,
    /// The tombstone stored, whose list's or tag's tasks are tidied once all the request's
    /// deletes are stored: a task that points at several of them is rewritten once.
    deleted: Option<Change>,
}

/// Decodes, maps, tells a re-stamp from an edit, tidies, and applies an edit by
/// last-write-wins at the instant it competes at: its own time, but never later than its
/// arrival.
fn apply_change(
    tx: &Connection,
    clock: &mut Clock,
    scope: &Scope,
    sent: &ReceivedChange,
) -> rusqlite::Result<Applied> {
    let decoded = sent
        .decode()
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let Some(change) = map_to_account(decoded, scope.inbox, &scope.aliases) else {
        return Ok(Applied::default());
    };
    let (account, device, kind) = (scope.account, scope.device, change.kind);
    let mut stored = load(tx, account, kind, &change.id)?;
    if scope.tidy_queued
        && kind == Kind::Task
        && let Some(row) = &stored
        && let Some(tidied) = tidy_loaded_task(
            tx,
            clock,
            &scope.deleted_lookups,
            account,
            scope.inbox,
            &change.id,
            row,
        )?
    {
        stored = Some(tidied);
    }
    let upload = Upload::of(&change);
    // A device holds a copy only of a record the server stores.
    let copy = match stored {
        Some(_) => held(
            tx,
            account,
            device,
            kind,
            &change.id,
            scope.last_answer.as_ref(),
        )?,
        None => None,
    };
    uploaded(tx, account, device, &change, &upload)?;
    if let Some(copy) = copy
        && (copy.holds(&upload)
            || copy.same_time(&upload)
            || tidied_by_the_client(tx, scope, &copy, &change, &upload)?)
    {
        return Ok(Applied {
            clock_offset: copy.restamp_offset(&upload),
            ..deliver(tx, clock, account, &change, &upload)?
        });
    }

    let (mut change, tidied) =
        tidy_references(tx, &scope.deleted_lookups, account, scope.inbox, change)?;
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
    let decision = decide(&incoming, stored_version.as_ref());
    let written_again_later = stored.as_ref().is_some_and(|row| row.version < instant);
    if decision == Decision::Same && written_again_later {
        // The same content written again later (by another device, or an edit that tidying
        // undid): it competes from now on at the later instant, but is no change to send.
        postpone(tx, account, kind, &change.id, instant)?;
    }
    if let Decision::Insert | Decision::Replace = decision {
        change.version = instant;
        let replaced = stored.as_ref().and_then(|row| row.updated_at);
        let fingerprint = match tidied {
            true => fingerprint::content(kind, change.deleted, &change.body),
            false => upload.fingerprint.clone(),
        };
        let moved = date_past_copies(tx, account, &mut change, &fingerprint, replaced)?;
        // A tidied or moved upload is the server's own edit: every device, the sender
        // included, must receive it.
        let origin = (!tidied && !moved).then_some(device);
        store(
            tx,
            clock,
            account,
            origin,
            &change,
            &fingerprint,
            stored.as_ref(),
        )?;
        if kind != Kind::Task {
            scope.deleted_lookups.forget(kind, &change.id);
        }
        // Nothing to resend: a version stored as sent has the upload's content, and one the
        // server changed (no origin) is dated past every copy and in this answer's feed.
        return Ok(Applied {
            deleted: change.deleted.then_some(change),
            ..Applied::default()
        });
    }
    // A task-tag link has no id of its own, and `conflicts` must hold UUIDs (the desktop
    // parses them strictly): its winner is sent back all the same.
    let has_uuid = kind != Kind::TaskTag || change.deleted;
    Ok(Applied {
        conflict: (decision == Decision::Lose && has_uuid).then(|| sent.id.clone()),
        ..deliver(tx, clock, account, &change, &upload)?
    })
}

/// Whether the upload is only the device's copy as the client tidies it on its own (see
/// [`as_tidied_by_device`]). The client may also have re-stamped it before, on applying
/// it; an edit that only did the same would change nothing either.
fn tidied_by_the_client(
    tx: &Connection,
    scope: &Scope,
    copy: &Copy,
    change: &Change,
    upload: &Upload,
) -> rusqlite::Result<bool> {
    if change.kind != Kind::Task || change.deleted {
        return Ok(false);
    }
    let tidied = as_tidied_by_device(
        tx,
        &scope.deleted_lookups,
        scope.account,
        scope.inbox,
        &copy.body(),
        &change.body,
        &scope.deleted_by_device,
    )?;
    Ok(fingerprint::content(Kind::Task, false, &tidied) == upload.fingerprint)
}

/// Where the device, having sent `upload`, holds something other than the stored version,
/// makes sure it will apply the stored one, and has it sent.
fn deliver(
    tx: &Connection,
    clock: &mut Clock,
    account: &str,
    change: &Change,
    upload: &Upload,
) -> rusqlite::Result<Applied> {
    let stored = load(tx, account, change.kind, &change.id)?;
    if stored.is_none_or(|row| row.fingerprint == upload.fingerprint) {
        return Ok(Applied::default());
    }
    ensure_applied(tx, clock, account, change.kind, &change.id, None)?;
    Ok(Applied {
        resend: Some((change.kind, change.id.clone())),
        ..Applied::default()
    })
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
    fn what_a_full_sync_sent_is_still_known_after_the_record_changes() {
        let mut db = Database::new();
        let first = task("Write report", WORK, &[], T1);
        db.sync(LAPTOP, None, std::slice::from_ref(&first));
        assert_eq!(
            bodies(&db.sync(PHONE, None, &[])),
            std::slice::from_ref(&first)
        );
        let rows: i64 = db.value("SELECT COUNT(*) FROM device_copies WHERE device = '0f8e4a52-6c1b-4d7e-9a43-2b5c8d9e1f70'");
        assert_eq!(rows, 0, "a full sync writes no copy per record");
        let edited = task("Write the report", WORK, &[], T2);
        db.sync(LAPTOP, Some(LONG_AGO), std::slice::from_ref(&edited));
        // The phone re-stamps what it got from its full sync: no edit, it gets the edit.
        let mut restamped = first;
        restamped["updated_at"] = json!("2026-11-24T22:45:22Z");
        let phone = db.sync(PHONE, Some(LONG_AGO), &[restamped]);
        assert_eq!(phone.conflicts, Vec::<String>::new());
        // Dated just past the phone's copy, so the phone applies it.
        let mut winner = edited;
        winner["updated_at"] = json!("2026-11-24T22:45:22.001Z");
        assert_eq!(db.row(Kind::Task, REPORT).unwrap().2, winner);
        assert_eq!(bodies(&phone), [winner]);
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
        db.sync(LAPTOP, None, &[task("Write report", WORK, &[], T0)]);
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
        assert_eq!(bodies(&laptop), [stored, deleted(ERRANDS, "tag", T2)]);
    }
}
