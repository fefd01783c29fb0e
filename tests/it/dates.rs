//! Dates anywhere in the years the clients write (0000 to 9999), not only the 1677 to 2262
//! that `i64` nanoseconds hold: accepted, stored and sent on byte for byte, and ordered by
//! last-write-wins as the README's clock rules say.

use serde_json::{Value, json};

use crate::harness::*;

/// A third task.
const OLD_TASK: &str = "e5f6a7b8-c9d0-4e1f-8a2b-4c5d6e7f8091";

fn server() -> Server {
    Server::start_with_config(&config_with("[sync]\nclock_skew_allowance_secs = 0"))
}

/// `record` with the fields of `changes` replaced.
fn with(record: &Value, changes: Value) -> Value {
    let mut record = record.clone();
    for (field, value) in changes.as_object().expect("an object of fields") {
        record[field] = value.clone();
    }
    record
}

/// A desktop-shaped task dated `updated_at`, due `due_date`.
fn task_due(id: &str, title: &str, due_date: &str, updated_at: &str) -> Value {
    with(
        &task(id, title, NEW_LIST, updated_at),
        json!({ "due_date": due_date }),
    )
}

/// `device`'s next sync after the one answered by `previous`, uploading `changes`.
fn next_sync(server: &Server, device: &str, previous: &Value, changes: Vec<Value>) -> Value {
    let last_sync = previous["server_time"].as_str().expect("server_time");
    server.sync_ok(TOKEN, &sync_body(device, Some(last_sync), changes))
}

#[test]
fn dates_from_year_0000_to_9999_sync_and_come_back_byte_for_byte() {
    let server = server();
    let records = vec![
        with(
            &list(NEW_LIST, "Someday", false, "2026-11-24T22:41:00Z"),
            json!({ "created_at": "0001-01-01T00:00:00Z" }),
        ),
        // The mobile client's bare date, and the desktop client's spelling of a due date.
        task_due(
            NEW_TASK,
            "Renew the lease",
            "2300-01-01",
            "2026-11-24T22:42:00Z",
        ),
        task_due(
            NEW_TASK_2,
            "Read the charter",
            "1600-01-01T23:59:59+00:00",
            "2026-11-24T22:42:01.5Z",
        ),
        with(
            &task_due(OLD_TASK, "Outlast", "9999-12-31", "2026-11-24T22:42:02Z"),
            json!({
                "created_at": "0000-01-01T00:00:00Z",
                "completed": true,
                "completed_at": "9999-12-31T23:59:59.999999999Z",
            }),
        ),
    ];
    let first = server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, records.clone()));
    assert_eq!(first["conflicts"], json!([]));

    let received = everything(&server, DEVICE_B);
    for record in &records {
        let id = record["id"].as_str().unwrap();
        assert_eq!(find(&received, id), Some(record), "{id}");
    }

    // B writes the tasks back as the desktop client does when it applies them: due dates
    // read as 23:59:59 UTC and re-stamped with its own clock. That is no edit: no conflict,
    // and nothing for A.
    let restamped = vec![
        with(
            &records[1],
            json!({ "due_date": "2300-01-01T23:59:59+00:00", "updated_at": "2026-11-24T22:50:00Z" }),
        ),
        with(
            &records[3],
            json!({ "due_date": "9999-12-31T23:59:59+00:00", "updated_at": "2026-11-24T22:50:00Z" }),
        ),
    ];
    let back = next_sync(&server, DEVICE_B, &received, restamped);
    assert_eq!(back["conflicts"], json!([]));
    assert_eq!(
        next_sync(&server, DEVICE_A, &first, vec![])["changes"],
        json!([])
    );
}

/// A task from device A dated `from_a`, then one from B dated `from_b`; returns both as sent
/// and the answers to A's upload and to B's.
fn race(server: &Server, from_a: &str, from_b: &str) -> ([Value; 2], [Value; 2]) {
    let a = task(NEW_TASK, "from A", NEW_LIST, from_a);
    let b = task(NEW_TASK, "from B", NEW_LIST, from_b);
    let to_a = server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, vec![a.clone()]));
    assert_eq!(to_a["conflicts"], json!([]));
    let to_b = server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![b.clone()]));
    ([a, b], [to_a, to_b])
}

#[test]
fn versions_dated_after_2262_compete_at_their_arrival_and_converge() {
    const Y2300: &str = "2300-01-01T00:00:00Z";
    const Y2301: &str = "2301-01-01T00:00:00Z";
    // A clock that runs ahead cannot win: each version counts as made when it arrived, so B's
    // (the later write) wins whichever date is later. A receives it dated past its own copy.
    for (from_a, from_b, b_as_a_receives_it) in [
        (Y2300, Y2301, Y2301),
        (Y2301, Y2300, "2301-01-01T00:00:00.001Z"),
    ] {
        let server = server();
        let ([_, b], [to_a, to_b]) = race(&server, from_a, from_b);
        assert_eq!(to_b["conflicts"], json!([]), "{from_a} then {from_b}");
        let winner = with(&b, json!({ "updated_at": b_as_a_receives_it }));
        let a_receives = next_sync(&server, DEVICE_A, &to_a, vec![]);
        assert_eq!(
            a_receives["changes"],
            json!([winner]),
            "{from_a} then {from_b}"
        );
        assert_eq!(
            find(&everything(&server, DEVICE_C), NEW_TASK),
            Some(&winner),
            "{from_a} then {from_b}"
        );
    }
}

#[test]
fn an_edit_by_a_clock_past_2262_of_its_own_copy_is_an_edit() {
    let server = server();
    let created = task(NEW_TASK, "first", NEW_LIST, "2300-01-01T00:00:00Z");
    let first = server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, vec![created]));
    // Both dates are beyond what i64 nanoseconds hold, yet they are different times.
    let edited = task(NEW_TASK, "second", NEW_LIST, "2300-01-01T00:00:01Z");
    let second = next_sync(&server, DEVICE_A, &first, vec![edited.clone()]);
    assert_eq!(second["conflicts"], json!([]));
    assert_eq!(
        find(&everything(&server, DEVICE_C), NEW_TASK),
        Some(&edited)
    );
}

#[test]
fn versions_dated_before_1677_are_ordered_by_their_dates() {
    const Y1600: &str = "1600-01-01T00:00:00Z";
    const Y1601: &str = "1601-01-01T00:00:00.000000001Z";
    // A slow clock's versions count as made when it says: the later date wins either way.
    for (from_a, from_b) in [(Y1600, Y1601), (Y1601, Y1600)] {
        let server = server();
        let ([a, b], [to_a, to_b]) = race(&server, from_a, from_b);
        let (winner, loser_device, loser_answer) = if from_b == Y1601 {
            assert_eq!(to_b["conflicts"], json!([]));
            (b, DEVICE_A, next_sync(&server, DEVICE_A, &to_a, vec![]))
        } else {
            assert_eq!(to_b["conflicts"], json!([NEW_TASK]));
            (a, DEVICE_B, to_b)
        };
        assert_eq!(
            loser_answer["changes"],
            json!([winner]),
            "{from_a} then {from_b}: {loser_device} receives the winner as written"
        );
        assert_eq!(
            find(&everything(&server, DEVICE_C), NEW_TASK),
            Some(&winner),
            "{from_a} then {from_b}"
        );
    }
}

#[test]
fn a_last_sync_before_1677_or_after_2262_is_read_as_that_instant() {
    let server = server();
    let created = task(NEW_TASK, "first", NEW_LIST, "2026-11-24T22:42:00Z");
    server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, vec![created.clone()]));
    let first = server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![]));
    assert_eq!(first["changes"], json!([created]));
    // A `last_sync` from a clock centuries slow asks for everything; one centuries fast,
    // for nothing yet.
    for (last_sync, expected) in [
        ("1600-01-01T00:00:00.000Z", json!([created])),
        ("2300-01-01T00:00:00.000Z", json!([])),
    ] {
        let answer = server.sync_ok(TOKEN, &sync_body(DEVICE_B, Some(last_sync), vec![]));
        assert_eq!(answer["changes"], expected, "{last_sync}");
    }
}
