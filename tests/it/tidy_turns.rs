//! Tidying in turns: a list delete that leaves more stored tasks than the server tidies in
//! one request still moves every one of them to the inbox, the rest between requests, and a
//! crash in between loses none of that work.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use crate::harness::*;

const DATABASE: &str = "tickit-sync.sqlite";
const UPDATED_AT: &str = "2026-11-24T22:45:21.000000001Z";
const DELETED_AT: &str = "2026-11-24T23:00:00.000Z";
const INBOX: &str = "e47412ad-4c51-467d-be5f-966fb7d0db5d";
/// More than one turn's worth (the server tidies 250 stored tasks a turn).
const TASKS: usize = 1_200;

/// `TASKS` tasks in `NEW_LIST`.
fn tasks_in_the_list() -> Vec<Value> {
    (0..TASKS)
        .map(|n| {
            let id = format!("{n:08x}-0000-4000-8000-000000000000");
            task(&id, &format!("Task {n}"), NEW_LIST, UPDATED_AT)
        })
        .collect()
}

/// How many of the account's live tasks are in each of `NEW_LIST` and the inbox, as a
/// device that never synced receives them.
fn where_the_tasks_are(server: &Server) -> (usize, usize) {
    let answer = everything(server, DEVICE_D);
    let tasks = answer["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|record| record["type"] == "task");
    let mut placed = (0, 0);
    for task in tasks {
        match task["list_id"].as_str() {
            Some(NEW_LIST) => placed.0 += 1,
            Some(INBOX) => placed.1 += 1,
            other => panic!("a task in an unexpected list {other:?}: {task}"),
        }
    }
    placed
}

/// What the database at `path` says is left to tidy: (queued deletes, tasks still in
/// `NEW_LIST`), read as another process would.
fn left_to_tidy(path: &Path) -> (i64, i64) {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let count = |sql: &str| db.query_row(sql, [], |row| row.get(0)).expect(sql);
    (
        count("SELECT COUNT(*) FROM pending_tidy"),
        count(&format!(
            "SELECT COUNT(*) FROM records WHERE kind = 'task'
               AND json_extract(body, '$.list_id') = '{NEW_LIST}'"
        )),
    )
}

#[test]
fn a_list_of_more_tasks_than_one_turn_is_tidied_whole_across_turns_and_a_crash() {
    let mut server = Server::start();
    let mut seed = vec![
        list(INBOX, "Inbox", true, UPDATED_AT),
        list(NEW_LIST, "Work", false, UPDATED_AT),
    ];
    seed.extend(tasks_in_the_list());
    server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, seed));

    let delete = vec![deleted(NEW_LIST, "list", DELETED_AT)];
    server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, delete));
    // Killed at once, while the writer tidies the rest in turns.
    server.signal("KILL");
    server.wait_exit();
    let dir = server.into_dir();
    let database = dir.path().join(DATABASE);
    let (queued, in_the_list) = left_to_tidy(&database);
    assert_eq!(queued, 1, "the delete is still queued");
    assert!(
        in_the_list > 0 && in_the_list < TASKS as i64,
        "the request tidied some tasks, and left {in_the_list} of {TASKS} for later"
    );

    // The next start goes on by itself: no sync arrives meanwhile.
    let server = Server::start_in(dir, &[], &[]);
    let deadline = Instant::now() + WAIT;
    let mut left = left_to_tidy(&database);
    while left != (0, 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = left_to_tidy(&database);
    }
    assert_eq!(
        left,
        (0, 0),
        "(queued deletes, tasks in the deleted list) after {WAIT:?}"
    );
    assert_eq!(where_the_tasks_are(&server), (0, TASKS));
}
