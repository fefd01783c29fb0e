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

#[cfg(test)]
mod tests {
    use rusqlite::OptionalExtension;
    use serde_json::{Value, json};

    use super::*;
    use crate::protocol::parse_request;
    use crate::store::schema::migrate;

    const ACCOUNT: &str = "default";
    const LAPTOP: &str = "8555eb33-3505-42b5-b029-341b1734ad31";
    const PHONE: &str = "0f8e4a52-6c1b-4d7e-9a43-2b5c8d9e1f70";
    const LAPTOP_INBOX: &str = "e47412ad-4c51-467d-be5f-966fb7d0db5d";
    const PHONE_INBOX: &str = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";
    const WORK: &str = "7a2e964d-f566-4108-aed1-135b62afefac";
    const ERRANDS: &str = "083f62a4-7e11-459f-9403-9136b2e4b7b8";
    const REPORT: &str = "55794518-c168-4fc8-9cdf-17cfa7eca7be";
    /// A `last_sync` before every stamp the tests hand out, so feeds hold all but echoes.
    const LONG_AGO: &str = "2000-01-01T00:00:00.000Z";
    const T1: &str = "2026-11-24T22:45:21.000000001Z";
    const T2: &str = "2026-11-24T22:45:21.000000002Z";

    /// A migrated in-memory database and the writer's clock.
    struct Database {
        conn: Connection,
        clock: Clock,
    }

    impl Database {
        fn new() -> Database {
            let mut conn = Connection::open_in_memory().unwrap();
            migrate(&mut conn).unwrap();
            Database {
                conn,
                clock: Clock::starting_after(0),
            }
        }

        /// Applies a request as the writer would, after validating it like the API does.
        fn sync(
            &mut self,
            device: &str,
            last_sync: Option<&str>,
            changes: &[Value],
        ) -> SyncOutcome {
            let body = json!({ "device_id": device, "last_sync": last_sync, "changes": changes });
            let request = parse_request(body.to_string().as_bytes()).unwrap();
            apply(&self.conn, &mut self.clock, ACCOUNT, &request).unwrap()
        }

        /// The stored row's (stamp, origin, body), if any.
        fn row(&self, kind: Kind, id: &str) -> Option<(i64, Option<String>, Value)> {
            self.conn
                .query_row(
                    "SELECT stamp, origin, body FROM records WHERE account = ?1 AND kind = ?2 AND id = ?3",
                    params![ACCOUNT, kind.as_str(), id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get::<_, String>(2)?)),
                )
                .optional()
                .unwrap()
                .map(|(stamp, origin, body)| (stamp, origin, serde_json::from_str(&body).unwrap()))
        }
    }

    /// The outgoing records' bodies, in order.
    fn bodies(outcome: &SyncOutcome) -> Vec<Value> {
        outcome
            .records
            .iter()
            .map(|record| serde_json::from_str(&record.body).unwrap())
            .collect()
    }

    fn list(id: &str, name: &str, is_inbox: bool, updated_at: &str) -> Value {
        json!({
            "type": "list", "id": id, "name": name, "description": null, "icon": "📋",
            "color": null, "is_inbox": is_inbox, "created_at": T1, "updated_at": updated_at,
            "sort_order": 0
        })
    }

    fn tag(id: &str, name: &str) -> Value {
        json!({ "type": "tag", "id": id, "name": name, "color": "#a6e3a1", "created_at": T1, "updated_at": T1 })
    }

    fn task(title: &str, list_id: &str, tag_ids: &[&str], updated_at: &str) -> Value {
        json!({
            "type": "task", "id": REPORT, "title": title, "description": null, "url": null,
            "priority": "medium", "completed": false, "list_id": list_id, "tag_ids": tag_ids,
            "created_at": T1, "updated_at": updated_at, "completed_at": null, "due_date": null
        })
    }

    fn deleted(id: &str, record_type: &str, deleted_at: &str) -> Value {
        json!({ "type": "deleted", "id": id, "record_type": record_type, "deleted_at": deleted_at })
    }

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
            &[task("Write report", WORK, &[], T1)],
        );
        assert_eq!(late.conflicts, [REPORT]);
        assert_eq!(db.row(Kind::Task, REPORT).unwrap().2, gone);
        assert_eq!(bodies(&late), [gone]);
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
