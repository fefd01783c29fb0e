//! Tidying the stored tasks that list and tag deletes leave dangling, a bounded number at a
//! time, so that no delete holds the one writer for long however many tasks it touches.
//!
//! A request tidies up to [`TIDIED_PER_TURN`] of them itself. If its deletes leave more, they
//! are queued in `pending_tidy`, in the request's own transaction (a crash loses none), and
//! the writer tidies the rest between requests, [`TIDIED_PER_TURN`] per transaction. Until
//! then a device may be sent a delete before the tasks it tidies: every client tidies such a
//! task itself when it applies the delete, and receives the server's tidied version at a
//! later sync. An upload of a task of an account with queued work meets its stored version
//! tidied first ([`tidy_loaded_task`]), so nothing compares with or resends an untidied one.
//!
//! The tasks are found by index, a list's through `records_by_list` and a tag's through
//! `tag_references`: the work grows with the tasks the deletes change, not with the account.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::clock::Clock;
use super::delivery::date_past_copies;
use super::fingerprint;
use super::inbox::account_inbox;
use super::records::{StoredRow, is_deleted, load, store};
use super::tidy::{DeletedLookups, tidy_references};
use crate::protocol::{Change, Kind};

/// How many stored tasks one request, or one turn of the writer between requests, tidies:
/// well under 0.1 s of the writer's time, which is what another account's sync may wait
/// for a turn.
pub const TIDIED_PER_TURN: usize = 250;

/// Up to `?3` live tasks of a list, through the `records_by_list` index.
const TASKS_OF_LIST: &str = "SELECT id FROM records
     WHERE account = ?1 AND json_extract(body, '$.list_id') = ?2
       AND kind = 'task' AND deleted = 0
     LIMIT ?3";
/// Up to `?3` live tasks whose `tag_ids` hold a tag.
const TASKS_WITH_TAG: &str =
    "SELECT task FROM tag_references WHERE account = ?1 AND tag = ?2 LIMIT ?3";

/// After lists or tags are deleted, moves their tasks to the inbox and strips the tags from
/// them, each task once however many of its list and tags went, up to `budget` tasks; the
/// deletes are queued when they leave more, and it says whether they were. A tidied task is a server edit with a new stamp
/// and no origin, so every device receives it; it keeps the instant it competes at, so an
/// edit made before the delete still beats it when it arrives later (and is tidied in turn).
pub fn tidy_after_deletes<'a>(
    tx: &Connection,
    clock: &mut Clock,
    lookups: &DeletedLookups,
    account: &str,
    account_inbox: Option<&String>,
    deleted: impl IntoIterator<Item = &'a Change>,
    budget: usize,
) -> rusqlite::Result<bool> {
    let deletes: Vec<(Kind, &str)> = deleted
        .into_iter()
        .filter(|change| tidies_tasks(change.kind, account_inbox.is_some()))
        .map(|change| (change.kind, change.id.as_str()))
        .collect();
    let mut tasks = BTreeSet::new();
    let mut queued = false;
    for &(kind, id) in &deletes {
        let room = budget.saturating_sub(tasks.len());
        let found = dangling_tasks(tx, account, kind, id, room.saturating_add(1))?;
        if found.len() > room {
            tasks.extend(found.into_iter().take(room));
            queue(tx, account, &deletes)?;
            queued = true;
            break;
        }
        tasks.extend(found);
    }
    for id in tasks {
        tidy_stored_task(tx, clock, lookups, account, account_inbox, &id)?;
    }
    Ok(queued)
}

/// Tidies the stored version of one task, if it points at a deleted list or tag; says
/// whether it changed.
fn tidy_stored_task(
    tx: &Connection,
    clock: &mut Clock,
    lookups: &DeletedLookups,
    account: &str,
    account_inbox: Option<&String>,
    id: &str,
) -> rusqlite::Result<bool> {
    let Some(row) = load(tx, account, Kind::Task, id)? else {
        return Ok(false);
    };
    let tidied = tidy_loaded_task(tx, clock, lookups, account, account_inbox, id, &row)?;
    Ok(tidied.is_some())
}

/// Tidies a task's stored version, as loaded, if it points at a deleted list or tag, and
/// returns the tidied version as stored. Its new `updated_at` is later than every copy a
/// device holds.
pub fn tidy_loaded_task(
    tx: &Connection,
    clock: &mut Clock,
    lookups: &DeletedLookups,
    account: &str,
    account_inbox: Option<&String>,
    id: &str,
    row: &StoredRow,
) -> rusqlite::Result<Option<StoredRow>> {
    let task = row.to_change(Kind::Task, id);
    let (mut tidied, changed) = tidy_references(tx, lookups, account, account_inbox, task)?;
    if !changed {
        return Ok(None);
    }
    let fingerprint = fingerprint::content(Kind::Task, tidied.deleted, &tidied.body);
    date_past_copies(tx, account, &mut tidied, &fingerprint, row.updated_at)?;
    store(tx, clock, account, None, &tidied, &fingerprint, Some(row))?;
    Ok(Some(StoredRow::of(&tidied, fingerprint)))
}

/// Tidies up to `budget` stored tasks of the queued deletes, oldest account first, and
/// forgets each delete whose tasks are all tidied, or that no longer stands (a newer
/// version brought the list or tag back). Says whether any are still queued.
pub fn tidy_queued(tx: &Connection, clock: &mut Clock, budget: usize) -> rusqlite::Result<bool> {
    let Some(account) = tx
        .query_row("SELECT account FROM pending_tidy LIMIT 1", [], |row| {
            row.get::<_, String>(0)
        })
        .optional()?
    else {
        return Ok(false);
    };
    let inbox = account_inbox(tx, &account)?;
    let queued: Vec<(String, String)> = tx
        .prepare_cached("SELECT kind, id FROM pending_tidy WHERE account = ?1")?
        .query_map([&account], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let lookups = DeletedLookups::default();
    let mut tidied = 0;
    for (kind_text, id) in queued {
        let room = budget.saturating_sub(tidied);
        if room == 0 {
            break;
        }
        let found = match Kind::parse(&kind_text) {
            Some(kind)
                if tidies_tasks(kind, inbox.is_some()) && is_deleted(tx, &account, kind, &id)? =>
            {
                dangling_tasks(tx, &account, kind, &id, room.saturating_add(1))?
            }
            _ => Vec::new(),
        };
        let mut changed = false;
        for task in found.iter().take(room) {
            changed |= tidy_stored_task(tx, clock, &lookups, &account, inbox.as_ref(), task)?;
            tidied += 1;
        }
        // A delete whose tasks came back unchanged has nothing left to tidy either.
        if found.len() <= room || !changed {
            tx.prepare_cached(
                "DELETE FROM pending_tidy WHERE account = ?1 AND kind = ?2 AND id = ?3",
            )?
            .execute(params![account, kind_text, id])?;
        }
    }
    any_queued(tx)
}

/// Whether any delete's tasks are still to be tidied.
pub fn any_queued(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM pending_tidy)")?
        .query_row([], |row| row.get(0))
}

/// Whether any of the account's deletes has tasks still to be tidied.
pub fn queued_in(tx: &Connection, account: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM pending_tidy WHERE account = ?1)")?
        .query_row([account], |row| row.get(0))
}

/// Whether a delete of this kind leaves tasks to tidy: a tag's always, a list's once the
/// account has an inbox to move them to.
fn tidies_tasks(kind: Kind, has_inbox: bool) -> bool {
    kind == Kind::Tag || (kind == Kind::List && has_inbox)
}

/// Up to `limit` live tasks that point at the list or tag.
fn dangling_tasks(
    tx: &Connection,
    account: &str,
    kind: Kind,
    id: &str,
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    let query = if kind == Kind::List {
        TASKS_OF_LIST
    } else {
        TASKS_WITH_TAG
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    tx.prepare_cached(query)?
        .query_map(params![account, id, limit], |row| row.get(0))?
        .collect()
}

/// Queues the deletes, whose tasks the writer finishes tidying between requests.
fn queue(tx: &Connection, account: &str, deletes: &[(Kind, &str)]) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO pending_tidy (account, kind, id) VALUES (?1, ?2, ?3)",
    )?;
    for (kind, id) in deletes {
        insert.execute(params![account, kind.as_str(), id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use crate::timestamp::{format_server_time, parse_nanos};

    const OTHER: &str = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

    /// The query's plan, one line per step.
    fn plan(conn: &Connection, query: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {query}"))
            .unwrap()
            .query_map(params![ACCOUNT, WORK, 10], |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_delete_finds_its_tasks_by_index_never_by_reading_the_account() {
        let db = Database::new();
        let by_list = plan(db.connection(), TASKS_OF_LIST);
        let by_tag = plan(db.connection(), TASKS_WITH_TAG);
        // One lookup each, no scan.
        assert_eq!(
            by_list,
            ["SEARCH records USING INDEX records_by_list (account=? AND <expr>=? AND kind=?)"]
        );
        assert_eq!(
            by_tag,
            ["SEARCH tag_references USING PRIMARY KEY (account=? AND tag=?)"]
        );
    }

    #[test]
    fn a_task_is_rewritten_once_however_many_of_its_list_and_tags_a_request_deletes() {
        let mut db = Database::new();
        db.sync(
            LAPTOP,
            None,
            &[
                list(LAPTOP_INBOX, "Inbox", true, T1),
                list(WORK, "Work", false, T1),
                tag(ERRANDS, "errands"),
                tag(OTHER, "other"),
                task("Buy milk", WORK, &[ERRANDS, OTHER], T1),
            ],
        );
        db.sync(
            PHONE,
            None,
            &[
                deleted(WORK, "list", T2),
                deleted(ERRANDS, "tag", T2),
                deleted(OTHER, "tag", T2),
            ],
        );
        let (_, origin, stored) = db.row(Kind::Task, REPORT).unwrap();
        assert_eq!(origin, None);
        assert_eq!(stored["list_id"], LAPTOP_INBOX);
        assert_eq!(stored["tag_ids"], serde_json::json!([]));
        // Each rewrite dates the task just past the one before it, for devices to apply it.
        let once = format_server_time(parse_nanos(T1).unwrap() + 1_000_000);
        assert_eq!(stored["updated_at"], once.as_str());
    }

    const SECOND: &str = "2d4c6e8a-1b3d-4f5a-8c7e-9a0b1c2d3e4f";
    const THIRD: &str = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";

    /// A task of the `WORK` list with its own id.
    fn task_of_work(id: &str, title: &str, updated_at: &str) -> serde_json::Value {
        let mut task = task(title, WORK, &[], updated_at);
        task["id"] = id.into();
        task
    }

    /// Where each task is stored, by id.
    fn lists_of(db: &Database, ids: &[&str]) -> Vec<String> {
        ids.iter()
            .map(|id| {
                let (_, _, body) = db.row(Kind::Task, id).unwrap();
                body["list_id"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    fn queued(db: &Database) -> i64 {
        db.value("SELECT COUNT(*) FROM pending_tidy")
    }

    /// The laptop's inbox and `WORK` with three tasks, then the phone deletes `WORK`.
    fn delete_a_list_of_three(db: &mut Database) -> Answer {
        db.sync(
            LAPTOP,
            None,
            &[
                list(LAPTOP_INBOX, "Inbox", true, T1),
                list(WORK, "Work", false, T1),
                task_of_work(REPORT, "Report", T1),
                task_of_work(SECOND, "Second", T1),
                task_of_work(THIRD, "Third", T1),
            ],
        );
        db.sync(PHONE, None, &[deleted(WORK, "list", T2)])
    }

    #[test]
    fn a_delete_tidies_up_to_its_budget_and_the_writer_the_rest_between_requests() {
        let mut db = Database::new();
        db.tidy_budget = 1;
        let answer = delete_a_list_of_three(&mut db);
        let tidied_at_once: Vec<_> = bodies(&answer)
            .into_iter()
            .filter(|body| body["list_id"] == LAPTOP_INBOX && body["title"] != "Inbox")
            .collect();
        assert_eq!(tidied_at_once.len(), 1, "{:?}", answer.records);
        assert_eq!(queued(&db), 1);
        let all = [REPORT, SECOND, THIRD];
        let inbox = LAPTOP_INBOX.to_owned();
        assert_eq!(
            lists_of(&db, &all).iter().filter(|l| **l == inbox).count(),
            1
        );

        assert!(db.tidy_queued(1), "one task is still to tidy");
        assert!(!db.tidy_queued(1), "all are tidied");
        assert_eq!(queued(&db), 0);
        assert_eq!(lists_of(&db, &all), [LAPTOP_INBOX; 3]);
        // Each is a server edit: the laptop, which has not seen the delete, receives all.
        let laptop = db.sync(LAPTOP, Some(T2), &[]);
        let mut received: Vec<_> = bodies(&laptop)
            .into_iter()
            .filter(|body| body["list_id"] == LAPTOP_INBOX && body["title"] != "Inbox")
            .map(|body| body["id"].as_str().unwrap().to_owned())
            .collect();
        received.sort();
        let mut expected = all.map(str::to_owned);
        expected.sort();
        assert_eq!(received, expected);
    }

    #[test]
    fn an_upload_meets_its_stored_task_tidied_while_tidying_is_queued() {
        let mut db = Database::new();
        db.tidy_budget = 1;
        delete_a_list_of_three(&mut db);
        let untidied = |db: &Database| {
            [REPORT, SECOND, THIRD]
                .into_iter()
                .find(|id| lists_of(db, &[id])[0] == WORK)
                .unwrap()
        };
        let waiting = untidied(&db);
        // An older edit from the laptop loses, and the winner it is sent back is tidied.
        let answer = db.sync(LAPTOP, None, &[task_of_work(waiting, "Older", T0)]);
        assert_eq!(answer.conflicts, [waiting]);
        let winner = bodies(&answer)
            .into_iter()
            .find(|body| body["id"] == waiting)
            .unwrap();
        assert_eq!(winner["list_id"], LAPTOP_INBOX);
        assert_eq!(lists_of(&db, &[waiting]), [LAPTOP_INBOX]);
    }

    #[test]
    fn a_queued_delete_of_a_list_brought_back_since_is_dropped() {
        let mut db = Database::new();
        db.tidy_budget = 1;
        delete_a_list_of_three(&mut db);
        let later = "2026-11-24T22:45:22Z";
        db.sync(LAPTOP, None, &[list(WORK, "Work again", false, later)]);
        assert!(!db.tidy_queued(10));
        assert_eq!(queued(&db), 0);
        let left_in_work = lists_of(&db, &[REPORT, SECOND, THIRD])
            .into_iter()
            .filter(|list| list == WORK)
            .count();
        assert_eq!(left_in_work, 2);
    }
}
