//! The import of an original tickit-sync (0.2.1) database, and what devices that synced
//! through it receive afterwards.

use serde_json::{Value, json};

use super::test_support::*;
use super::unknown_inbox::transit_id;
use crate::protocol::Kind;
use crate::timestamp::parse_nanos;

const MILK: &str = "6d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const TIDY: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
const BACK: &str = "2b3c4d5e-6f70-4a8b-9cad-1e2f3a4b5c6d";
const DEAD: &str = "3c4d5e6f-7081-4b9c-8dbe-2f3a4b5c6d7e";
const ODD: &str = "4d5e6f70-8192-4cad-9ecf-3a4b5c6d7e8f";
const OLD_LIST: &str = "5e6f7081-92a3-4dbe-8fd0-4b5c6d7e8f90";
const GONE_TAG: &str = "6f708192-a3b4-4ecf-9a01-5c6d7e8f9a0b";

/// The original's tables, as its schema has them.
const ORIGINAL_SCHEMA: &str = include_str!("../../tests/fixtures/original-0.2.1/schema.sql");

/// The original's tables (as its schema has them) holding two devices' history.
fn original_database() -> String {
    format!(
        "{ORIGINAL_SCHEMA}
         INSERT INTO lists VALUES
           ('{LAPTOP_INBOX}', 'Inbox', NULL, '📥', NULL, 1, 0,
            '2026-11-20T10:00:00.000000001Z', '2026-11-20T10:00:00.000000001Z'),
           ('{PHONE_INBOX}', 'Inbox', 'Everything new', '📥', NULL, 1, 0,
            '2026-11-21T10:00:00.000Z', '2026-11-22T08:00:00.500Z'),
           ('{WORK}', 'Work', NULL, '💼', '#f38ba8', 0, 2,
            '2026-11-20T11:00:00+00:00', '2026-11-20T11:00:00+00:00');
         INSERT INTO tags VALUES
           ('{ERRANDS}', 'errands', '#a6e3a1', '2026-11-20T12:00:00Z', NULL);
         INSERT INTO tasks VALUES
           ('{REPORT}', 'Write report', NULL, NULL, 'urgent', 0, '{WORK}',
            '2026-11-20T13:00:00Z', '2026-11-20T13:00:00.123456789Z', NULL,
            '2026-12-01T23:59:59+00:00'),
           ('{MILK}', 'Buy milk', 'semi-skimmed', 'https://shop.example', 'high', 1,
            '{PHONE_INBOX}', '2026-11-21T09:00:00.000Z', '2026-11-21T09:30:00.000Z',
            '2026-11-21T09:30:00.000Z', '2026-12-03'),
           ('{TIDY}', 'Left in a deleted list', NULL, NULL, 'low', 0, '{OLD_LIST}',
            '2026-11-20T14:00:00Z', '2026-11-20T14:00:00Z', NULL, NULL),
           ('{BACK}', 'Deleted, then edited later', NULL, NULL, 'medium', 0, '{WORK}',
            '2026-11-20T15:00:00Z', '2026-11-22T15:00:00Z', NULL, NULL),
           ('{DEAD}', 'Edited, then deleted later', NULL, NULL, 'medium', 0, '{WORK}',
            '2026-11-20T15:00:00Z', '2026-11-20T16:00:00Z', NULL, NULL),
           ('{ODD}', 'No client reads this', NULL, NULL, 'someday', 0, '{WORK}',
            '2026-11-20T15:00:00Z', '2026-11-20T16:00:00Z', NULL, NULL);
         INSERT INTO task_tags VALUES
           ('{REPORT}', '{GONE_TAG}', '2026-11-20T13:00:00Z'),
           ('{REPORT}', '{ERRANDS}', '2026-11-20T13:00:00Z');
         INSERT INTO tombstones VALUES
           ('{OLD_LIST}', 'list', '2026-11-21T00:00:00Z'),
           ('{GONE_TAG}', 'tag', '2026-11-21T00:00:00Z'),
           ('{BACK}', 'task', '2026-11-21T00:00:00Z'),
           ('{DEAD}', 'task', '2026-11-21T00:00:00Z'),
           ('{PHONE_INBOX}', 'list', '2026-11-21T00:00:00Z');
         INSERT INTO device_sync VALUES ('{LAPTOP}', '2026-11-22T16:00:00.1+00:00');"
    )
}

/// The `last_sync` the original server last sent the laptop.
const ORIGINAL_LAST_SYNC: &str = "2026-11-22T16:00:00.1+00:00";

fn body(db: &Database, kind: Kind, id: &str) -> Value {
    db.row(kind, id).unwrap().2
}

fn ids_of(outcome: &Answer, kind: &str) -> Vec<String> {
    bodies(outcome)
        .iter()
        .filter(|body| body["type"] == kind)
        .map(|body| body["id"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

#[test]
fn every_table_is_imported_with_its_values_as_stored() {
    let mut db = Database::new();
    let report = db.import_original(&original_database());
    assert_eq!(
        (report.tasks, report.tag_links, report.lists, report.tags),
        (4, 1, 1, 1)
    );
    assert_eq!((report.tombstones, report.inboxes), (3, 2));
    assert_eq!((report.moved_to_inbox, report.links_removed), (1, 1));
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(report.skipped[0].contains(ODD), "{:?}", report.skipped);
    assert!(
        report.skipped[0].contains("priority"),
        "{:?}",
        report.skipped
    );

    assert_eq!(
        body(&db, Kind::Task, MILK),
        json!({
            "type": "task", "id": MILK, "title": "Buy milk", "description": "semi-skimmed",
            "url": "https://shop.example", "priority": "high", "completed": true,
            "list_id": LAPTOP_INBOX, "tag_ids": [], "created_at": "2026-11-21T09:00:00.000Z",
            "updated_at": "2026-11-21T09:30:00.000Z",
            "completed_at": "2026-11-21T09:30:00.000Z", "due_date": "2026-12-03"
        }),
        "a task in another device's inbox is in the account inbox, as it was otherwise"
    );
    assert_eq!(
        body(&db, Kind::List, WORK),
        json!({
            "type": "list", "id": WORK, "name": "Work", "description": null, "icon": "💼",
            "color": "#f38ba8", "is_inbox": false, "sort_order": 2,
            "created_at": "2026-11-20T11:00:00+00:00", "updated_at": "2026-11-20T11:00:00+00:00"
        })
    );
    assert_eq!(
        body(&db, Kind::Tag, ERRANDS),
        json!({
            "type": "tag", "id": ERRANDS, "name": "errands", "color": "#a6e3a1",
            "created_at": "2026-11-20T12:00:00Z"
        })
    );
    assert_eq!(
        body(&db, Kind::Task, BACK)["title"],
        "Deleted, then edited later"
    );
    assert_eq!(
        body(&db, Kind::Task, DEAD),
        json!({
            "type": "deleted", "id": DEAD, "record_type": "task",
            "deleted_at": "2026-11-21T00:00:00Z"
        })
    );
    assert_eq!(
        db.row(Kind::List, PHONE_INBOX),
        None,
        "an inbox is never deleted"
    );
}

#[test]
fn dangling_references_are_tidied_and_redated_so_devices_apply_them() {
    let mut db = Database::new();
    db.import_original(&original_database());
    let report = body(&db, Kind::Task, REPORT);
    assert_eq!(report["tag_ids"], json!([ERRANDS]));
    assert_eq!(report["updated_at"], "2026-11-20T13:00:00.124Z");
    assert_eq!(report["due_date"], "2026-12-01T23:59:59+00:00");
    let tidy = body(&db, Kind::Task, TIDY);
    assert_eq!(tidy["list_id"], LAPTOP_INBOX);
    assert_eq!(tidy["updated_at"], "2026-11-20T14:00:00.001Z");
}

#[test]
fn the_inboxes_fold_into_the_oldest_id_with_the_latest_content_dated_after_all() {
    let mut db = Database::new();
    db.import_original(&original_database());
    let inbox = body(&db, Kind::List, LAPTOP_INBOX);
    assert_eq!(inbox["description"], "Everything new");
    assert_eq!(inbox["is_inbox"], true);
    assert_eq!(inbox["updated_at"], "2026-11-22T08:00:00.501Z");
    let mut aliases: Vec<(String, String)> = db
        .connection()
        .prepare("SELECT list_id, device FROM inbox_aliases")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    aliases.sort();
    let mut expected = [LAPTOP_INBOX, PHONE_INBOX, &transit_id(LAPTOP_INBOX)]
        .map(|id| (id.to_owned(), String::new()));
    expected.sort();
    assert_eq!(aliases, expected, "no device known for any of them yet");
}

#[test]
fn a_restart_does_not_import_again_and_the_original_tables_stay() {
    let mut db = Database::new();
    db.import_original(&original_database());
    assert!(!super::import::pending_in_place(db.connection()).unwrap());
    let original_tasks: i64 = db.value("SELECT COUNT(*) FROM tasks");
    assert_eq!(original_tasks, 6);
}

#[test]
fn a_device_from_the_original_gets_inbox_tasks_in_transit_until_it_says_its_own_inbox() {
    let mut db = Database::new();
    db.import_original(&original_database());
    let transit = transit_id(LAPTOP_INBOX);

    let first = db.sync(LAPTOP, Some(ORIGINAL_LAST_SYNC), &[]);
    assert_eq!(
        sorted(ids_of(&first, "list")),
        sorted(vec![
            WORK.into(),
            LAPTOP_INBOX.into(),
            PHONE_INBOX.into(),
            transit.clone()
        ]),
        "the inbox under every id, so tasks under another device's move into its own"
    );
    for inbox in bodies(&first)
        .iter()
        .filter(|body| body["is_inbox"] == true)
    {
        assert_eq!(inbox["updated_at"], "2026-11-22T08:00:00.501Z");
    }
    let lists_of_tasks: Vec<(String, String)> = bodies(&first)
        .iter()
        .filter(|body| body["type"] == "task")
        .map(|task| {
            (
                task["id"].as_str().unwrap().into(),
                task["list_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        sorted(lists_of_tasks),
        sorted(vec![
            (REPORT.into(), WORK.into()),
            (MILK.into(), transit.clone()),
            (TIDY.into(), transit.clone()),
            (BACK.into(), WORK.into()),
        ])
    );
    let received = bodies(&first);
    let at = received
        .iter()
        .position(|body| body["type"] == "deleted" && body["id"] == transit.as_str())
        .expect("the transit list is deleted");
    assert!(
        received[at..].iter().all(|body| body["type"] == "deleted"),
        "deletes go out last, so it comes after every task"
    );
    assert_eq!(
        received[at],
        json!({
            "type": "deleted", "id": transit, "record_type": "list",
            "deleted_at": crate::timestamp::format_server_time(first.server_time)
        }),
        "deleting the transit list moves its tasks into the device's own inbox"
    );

    let first_time = crate::timestamp::format_server_time(first.server_time);
    // It took its own id as an update and re-stamped it: its inbox, sent back unchanged.
    let restamped = json!({
        "type": "list", "id": LAPTOP_INBOX, "name": "Inbox", "description": "Everything new",
        "icon": "📥", "color": null, "is_inbox": true, "sort_order": 0,
        "created_at": "2026-11-20T10:00:00.000000001Z",
        "updated_at": "2026-11-25T10:00:00.000000001Z"
    });
    let second = db.sync(LAPTOP, Some(&first_time), &[restamped]);
    assert_eq!(
        second.inbox.as_ref().unwrap().device_inbox.as_deref(),
        Some(LAPTOP_INBOX)
    );
    assert!(
        ids_of(&second, "list").contains(&transit),
        "once more every id, for a client that kept tasks under the transit id"
    );
    assert!(ids_of(&second, "deleted").iter().all(|id| *id != transit));

    let second_time = crate::timestamp::format_server_time(second.server_time);
    let third = db.sync(LAPTOP, Some(&second_time), &[]);
    assert!(!ids_of(&third, "list").contains(&PHONE_INBOX.to_owned()));
}

#[test]
fn a_device_set_up_after_the_switch_gets_everything_under_its_own_inbox_at_once() {
    let mut db = Database::new();
    db.import_original(&original_database());
    let desktop_inbox = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
    let first = db.sync(DESKTOP, None, &[list(desktop_inbox, "Inbox", true, T1)]);
    assert_eq!(
        first.inbox.as_ref().unwrap().device_inbox.as_deref(),
        Some(desktop_inbox)
    );
    let mut tasks = ids_of(&first, "task");
    tasks.sort();
    let mut expected = vec![REPORT, MILK, TIDY, BACK];
    expected.sort();
    assert_eq!(tasks, expected);
    assert_eq!(
        parse_nanos(body(&db, Kind::Task, MILK)["updated_at"].as_str().unwrap()),
        parse_nanos("2026-11-21T09:30:00.000Z")
    );
}
