//! Switching from the original tickit-sync 0.2.1: `serve` on its database file imports its
//! tables once and leaves them, devices that synced through it sync on, and `import --from`
//! takes its file from elsewhere.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::*;

const INBOX_A: &str = "e47412ad-4c51-467d-be5f-966fb7d0db5d";
const INBOX_B: &str = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";
const SHOPPING: &str = "7a2e964d-f566-4108-aed1-135b62afefac";
const IN_INBOX: &str = "55794518-c168-4fc8-9cdf-17cfa7eca7be";
const IN_LIST: &str = "083f62a4-7e11-459f-9403-9136b2e4b7b8";
const DELETED: &str = "6d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// A `server_time` as the original sent it, which devices keep as `last_sync`.
const ORIGINAL_LAST_SYNC: &str = "2026-11-22T16:00:00.123456789+00:00";

/// The original's tables, as its schema has them.
const ORIGINAL_SCHEMA: &str = include_str!("../fixtures/original-0.2.1/schema.sql");

/// The original's tables (as its schema has them), with the history of two devices.
fn write_original_database(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "{ORIGINAL_SCHEMA}
         INSERT INTO lists VALUES
           ('{INBOX_A}', 'Inbox', NULL, '📥', NULL, 1, 0,
            '2026-11-20T10:00:00Z', '2026-11-20T10:00:00Z'),
           ('{INBOX_B}', 'Inbox', NULL, '📥', NULL, 1, 0,
            '2026-11-21T10:00:00Z', '2026-11-21T10:00:00Z'),
           ('{SHOPPING}', 'Shopping', NULL, '🛒', NULL, 0, 1,
            '2026-11-20T11:00:00Z', '2026-11-20T11:00:00Z');
         INSERT INTO tasks VALUES
           ('{IN_INBOX}', 'Call plumber', NULL, NULL, 'high', 0, '{INBOX_B}',
            '2026-11-21T12:00:00.5Z', '2026-11-21T12:00:00.5Z', NULL, NULL),
           ('{IN_LIST}', 'Buy milk', NULL, NULL, 'medium', 1, '{SHOPPING}',
            '2026-11-20T12:00:00Z', '2026-11-20T13:00:00Z', '2026-11-20T13:00:00Z', NULL);
         INSERT INTO tombstones VALUES ('{DELETED}', 'task', '2026-11-21T00:00:00Z');
         INSERT INTO device_sync VALUES ('{DEVICE_A}', '{ORIGINAL_LAST_SYNC}');"
    ))
    .unwrap();
}

/// Every row of the original's tables, to show they are left as they were.
fn original_rows(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut rows = Vec::new();
    for table in [
        "lists",
        "tags",
        "tasks",
        "task_tags",
        "tombstones",
        "device_sync",
    ] {
        let mut statement = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let width = statement.column_count();
        let table_rows = statement
            .query_map([], |row| {
                let values: Vec<String> = (0..width)
                    .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect();
                Ok(format!("{table}: {}", values.join(", ")))
            })
            .unwrap();
        rows.extend(table_rows.map(Result::unwrap));
    }
    rows
}

/// The original's config, as its `init` and `token` write it (a plaintext fallback token here).
fn original_config() -> String {
    format!(
        "[server]\nbind = \"0.0.0.0\"\nport = 3030\n\n[database]\npath = \"tickit-sync.sqlite\"\n\n\
         [[tokens]]\nname = \"laptop\"\ntoken_hash = \"{TOKEN}\"\n"
    )
}

fn of_type<'a>(response: &'a Value, record_type: &str) -> Vec<&'a Value> {
    response["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["type"] == record_type)
        .collect()
}

fn ids(records: &[&Value]) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .map(|record| record["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    ids.sort();
    ids
}

const IMPORTED: &str = "imported into account \"default\": 2 tasks (0 tag links), 1 list, 0 \
                        tags, 1 tombstone; 2 inbox lists folded into the account's one inbox";

#[test]
fn serve_imports_the_original_tables_once_and_devices_sync_on() {
    let dir = dir_with_config(&original_config());
    let database = dir.path().join("tickit-sync.sqlite");
    write_original_database(&database);
    let before = original_rows(&database);

    let mut server = Server::start_in(dir, &[], &[]);
    // Device A synced through the original: it does not say which inbox is its own yet.
    let a = server.sync_ok(
        TOKEN,
        &json!({ "device_id": DEVICE_A, "last_sync": ORIGINAL_LAST_SYNC, "changes": [] }),
    );
    // Not knowing which inbox is A's, the server sends the inbox under every id (lists are
    // applied first: tasks under another device's inbox id move into A's own), the inbox
    // tasks under a transit id, and then a delete of that list, which moves them too.
    let lists = of_type(&a, "list");
    let transit = of_type(&a, "deleted")
        .into_iter()
        .find(|deleted| deleted["record_type"] == "list")
        .map(|deleted| deleted["id"].as_str().unwrap().to_owned())
        .expect("a delete of the transit list");
    assert_eq!(ids(&lists), sorted(&[INBOX_A, INBOX_B, SHOPPING, &transit]));
    for inbox in lists.iter().filter(|list| list["id"] != SHOPPING) {
        assert_eq!(inbox["is_inbox"], true, "{inbox}");
        assert_eq!(inbox["updated_at"], "2026-11-21T10:00:00.001Z", "{inbox}");
    }
    let tasks = of_type(&a, "task");
    assert_eq!(ids(&tasks), sorted(&[IN_INBOX, IN_LIST]));
    let plumber = tasks.iter().find(|task| task["id"] == IN_INBOX).unwrap();
    assert_eq!(plumber["list_id"], transit.as_str());
    assert_eq!(ids(&of_type(&a, "deleted")), sorted(&[DELETED, &transit]));
    let changes = a["changes"].as_array().unwrap();
    let first_delete = changes
        .iter()
        .position(|change| change["type"] == "deleted");
    assert!(
        changes[first_delete.unwrap_or(changes.len())..]
            .iter()
            .all(|change| change["type"] == "deleted"),
        "deletes come last: {changes:?}"
    );

    // A device set up after the switch gets everything with its first sync.
    let inbox_c = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
    let c = server.sync_ok(
        TOKEN,
        &json!({ "device_id": DEVICE_C, "last_sync": null, "changes": [{
            "type": "list", "id": inbox_c, "name": "Inbox", "description": null, "icon": "📥",
            "color": null, "is_inbox": true, "sort_order": 0,
            "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"
        }] }),
    );
    let c_tasks = of_type(&c, "task");
    assert_eq!(ids(&c_tasks), sorted(&[IN_INBOX, IN_LIST]));
    let plumber = c_tasks.iter().find(|task| task["id"] == IN_INBOX).unwrap();
    assert_eq!(
        plumber["list_id"], inbox_c,
        "under the new device's own inbox id"
    );
    assert_eq!(
        plumber["created_at"], "2026-11-21T12:00:00.5Z",
        "byte for byte"
    );

    let log = server.stop_ok();
    assert!(log.contains(IMPORTED), "{log}");
    let dir = server.into_dir();
    assert_eq!(
        original_rows(&dir.path().join("tickit-sync.sqlite")),
        before
    );

    let mut again = Server::start_in(dir, &[], &[]);
    let log = again.stop_ok();
    assert!(!log.contains("imported"), "imports once: {log}");
}

#[test]
fn import_from_a_file_refuses_to_mix_into_an_account_with_data_unless_merging() {
    let dir = dir_with_config(&config_with(""));
    write_original_database(&dir.path().join("old.sqlite"));

    let first = run_cli(dir.path(), &["import", "--from", "old.sqlite"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).starts_with(IMPORTED), "{}", stdout(&first));

    let again = run_cli(dir.path(), &["import", "--from", "old.sqlite"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds tasks; nothing imported. Add --merge"),
        "{}",
        stderr(&again)
    );

    let merged = run_cli(dir.path(), &["import", "--from", "old.sqlite", "--merge"]);
    assert!(merged.status.success(), "{}", stderr(&merged));
    assert!(
        stdout(&merged).contains("records kept as this server had them"),
        "{}",
        stdout(&merged)
    );

    let other = run_cli(
        dir.path(),
        &["import", "--from", "old.sqlite", "--account", "other"],
    );
    assert!(other.status.success(), "{}", stderr(&other));

    let missing = run_cli(dir.path(), &["import", "--from", "missing.sqlite"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing),
        "error: missing.sqlite is not a file; give the original server's database file (its \
         [database] path, by default tickit-sync.sqlite)\n"
    );
    let not_original = run_cli(dir.path(), &["import", "--from", "config.toml"]);
    assert_eq!(not_original.status.code(), Some(1));
    assert!(
        stderr(&not_original).contains("config.toml"),
        "{}",
        stderr(&not_original)
    );
}
