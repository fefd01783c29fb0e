//! The decision rule against device clocks: fast, slow and equal clocks, ties, re-stamped
//! copies, and delete against edit in both orders, on an in-memory database.

use serde_json::{Value, json};

use crate::protocol::Kind;
use crate::store::test_support::*;
use crate::timestamp::{format_server_time, parse_nanos};

fn updated_at(body: &Value) -> i64 {
    parse_nanos(body["updated_at"].as_str().unwrap()).unwrap()
}

fn stored(db: &Database) -> Value {
    db.row(Kind::Task, REPORT).unwrap().2
}

fn no_conflicts() -> Vec<String> {
    Vec::new()
}

#[test]
fn a_version_from_a_fast_clock_competes_as_if_made_on_arrival() {
    // Delete: the laptop, an hour fast, adds a task; the phone deletes it just after.
    let mut db = Database::new();
    db.sync(LAPTOP, None, &[task("Write report", WORK, &[], &at(3600))]);
    let gone = deleted(REPORT, "task", &at(1));
    let phone = db.sync(PHONE, None, std::slice::from_ref(&gone));
    assert_eq!(phone.conflicts, no_conflicts());
    assert_eq!(stored(&db), gone);
    assert_eq!(bodies(&db.sync(LAPTOP, Some(LONG_AGO), &[])), [gone]);

    // Edit: the phone's later edit wins and reaches the laptop later than the laptop's own
    // (future) copy, so the laptop applies it.
    let mut db = Database::new();
    let ahead = at(3600);
    db.sync(LAPTOP, None, &[task("Write report", WORK, &[], &ahead)]);
    let phone = db.sync(PHONE, None, &[task("Write the report", WORK, &[], &at(1))]);
    assert_eq!(phone.conflicts, no_conflicts());
    let winner = stored(&db);
    assert_eq!(winner["title"], "Write the report");
    assert!(updated_at(&winner) > parse_nanos(&ahead).unwrap());
    assert_eq!(bodies(&db.sync(LAPTOP, Some(LONG_AGO), &[])), [winner]);
}

#[test]
fn a_slow_clock_wins_when_its_edit_is_later_by_more_than_its_lag() {
    let mut db = Database::new();
    db.sync(LAPTOP, None, &[task("Write report", WORK, &[], &at(-60))]);
    // The phone runs 20 s slow and edits 40 s after the laptop did.
    let phone = db.sync(
        PHONE,
        None,
        &[task("Write the report", WORK, &[], &at(-20))],
    );
    assert_eq!(phone.conflicts, no_conflicts());
    assert_eq!(stored(&db)["title"], "Write the report");
    // Within its lag it loses, as its clock says its edit came first.
    let late = db.sync(
        LAPTOP,
        Some(LONG_AGO),
        &[task("Report", WORK, &[], &at(-30))],
    );
    assert_eq!(late.conflicts, [REPORT]);
    assert_eq!(stored(&db)["title"], "Write the report");
}

#[test]
fn with_equal_clocks_the_later_edit_wins_and_goes_out_byte_for_byte() {
    let mut db = Database::new();
    db.sync(LAPTOP, None, &[task("Write report", WORK, &[], T1)]);
    let edit = task("Write the report", WORK, &[], T2);
    db.sync(PHONE, None, std::slice::from_ref(&edit));
    assert_eq!(stored(&db), edit);
    assert_eq!(bodies(&db.sync(LAPTOP, Some(LONG_AGO), &[])), [edit]);
}

#[test]
fn a_tie_is_decided_one_way_and_the_loser_receives_the_winner_a_millisecond_later() {
    let mut db = Database::new();
    let laptop = task("Write report", WORK, &[], T1);
    let phone = task("Write the report", WORK, &[], T1);
    db.sync(LAPTOP, None, std::slice::from_ref(&laptop));
    let phone_sync = db.sync(PHONE, None, std::slice::from_ref(&phone));
    let winner = stored(&db);
    assert_eq!(winner["updated_at"], "2026-11-24T22:45:21.001Z");
    let (loser, received) = if winner["title"] == laptop["title"] {
        assert_eq!(phone_sync.conflicts, [REPORT]);
        (PHONE, bodies(&phone_sync))
    } else {
        (LAPTOP, bodies(&db.sync(LAPTOP, Some(LONG_AGO), &[])))
    };
    assert_eq!(
        received,
        std::slice::from_ref(&winner),
        "{loser} must get the winner"
    );
    // The same two versions in the other order decide the same content.
    let mut other_order = Database::new();
    other_order.sync(PHONE, None, &[phone]);
    other_order.sync(LAPTOP, None, &[laptop]);
    assert_eq!(stored(&other_order)["title"], winner["title"]);
}

#[test]
fn delete_against_edit_the_later_one_wins_in_either_arrival_order() {
    let edit = |at: &str| task("Write the report", WORK, &[], at);
    let gone = |at: &str| deleted(REPORT, "task", at);
    let cases = [
        // (first to arrive, second to arrive, survives)
        (edit(T1), gone(T2), false),
        (gone(T2), edit(T1), false),
        (gone(T1), edit(T2), true),
        (edit(T2), gone(T1), true),
    ];
    for (first, second, survives) in cases {
        let mut db = Database::new();
        db.sync(
            LAPTOP,
            None,
            &[task("Write report", WORK, &[], "2026-11-24T22:00:00Z")],
        );
        db.sync(PHONE, Some(LONG_AGO), std::slice::from_ref(&first));
        db.sync(LAPTOP, Some(LONG_AGO), std::slice::from_ref(&second));
        let (deleted, title) = (
            stored(&db).get("deleted_at").is_some(),
            stored(&db)["title"].clone(),
        );
        assert_eq!(!deleted, survives, "{first} then {second}");
        if survives {
            assert_eq!(title, "Write the report");
        }
    }
}

#[test]
fn a_re_stamped_copy_is_no_change_and_restoring_older_content_is_an_edit() {
    let mut db = Database::new();
    let open = task("Write report", WORK, &[], T1);
    db.sync(LAPTOP, None, std::slice::from_ref(&open));
    db.sync(PHONE, None, &[]);
    let mut done = task("Write report", WORK, &[], T2);
    done["completed"] = json!(true);
    db.sync(LAPTOP, Some(LONG_AGO), std::slice::from_ref(&done));

    // The phone re-stamped the open copy it was sent, with a later time: no change, no
    // conflict, and it receives the completed task dated after its copy.
    let restamp = task("Write report", WORK, &[], &at(0));
    let phone = db.sync(PHONE, Some(LONG_AGO), std::slice::from_ref(&restamp));
    assert_eq!(phone.conflicts, no_conflicts());
    assert_eq!(stored(&db)["completed"], true);
    let received = bodies(&phone);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["completed"], true);
    assert!(updated_at(&received[0]) > updated_at(&restamp));

    // Then the phone un-completes it: the same content as before, but a real edit.
    let undo = task("Write report", WORK, &[], &at(1));
    let phone = db.sync(PHONE, Some(LONG_AGO), std::slice::from_ref(&undo));
    assert_eq!(phone.conflicts, no_conflicts());
    assert_eq!(stored(&db), undo);
}

#[test]
fn a_re_stamped_old_copy_does_not_bring_back_a_task_deleted_elsewhere() {
    let mut db = Database::new();
    db.sync(LAPTOP, None, &[task("Write report", WORK, &[], T1)]);
    db.sync(PHONE, None, &[]);
    let gone = deleted(REPORT, "task", T2);
    db.sync(LAPTOP, Some(LONG_AGO), std::slice::from_ref(&gone));
    let phone = db.sync(
        PHONE,
        Some(LONG_AGO),
        &[task("Write report", WORK, &[], &at(0))],
    );
    assert_eq!(phone.conflicts, no_conflicts());
    assert_eq!(stored(&db), gone);
    assert_eq!(bodies(&phone), [gone]);
}

#[test]
fn tidying_after_a_list_delete_does_not_beat_an_earlier_edit_arriving_later() {
    let mut db = Database::new();
    db.sync(
        LAPTOP,
        None,
        &[
            list(LAPTOP_INBOX, "Inbox", true, T1),
            list(WORK, "Work", false, T1),
            task("Write report", WORK, &[], T1),
        ],
    );
    db.sync(PHONE, None, &[list(PHONE_INBOX, "Inbox", true, T1)]);
    db.sync(LAPTOP, Some(LONG_AGO), &[deleted(WORK, "list", &at(0))]);
    assert_eq!(stored(&db)["list_id"], LAPTOP_INBOX);
    // The phone's edit was made before the delete (T2) and reaches the server after it.
    let phone = db.sync(
        PHONE,
        Some(LONG_AGO),
        &[task("Write the report", WORK, &[], T2)],
    );
    assert_eq!(phone.conflicts, no_conflicts());
    let winner = stored(&db);
    assert_eq!(
        (winner["title"].as_str(), winner["list_id"].as_str()),
        (Some("Write the report"), Some(LAPTOP_INBOX))
    );
    assert!(updated_at(&winner) > parse_nanos(T2).unwrap());
    let received = bodies(&phone);
    let sent_task = received.iter().find(|body| body["id"] == REPORT).unwrap();
    let mut in_phone_inbox = winner;
    in_phone_inbox["list_id"] = json!(PHONE_INBOX);
    assert_eq!(sent_task, &in_phone_inbox);
}

#[test]
fn a_clock_off_by_more_than_the_allowance_is_reported_once() {
    let mut db = Database::new();
    let first = phone_an_hour_fast_restamps_an_edit(&mut db);
    let warning = first.clock_warning.expect("an hour off is reported");
    assert_eq!(warning.device, PHONE);
    let hour = 3_600_000_000_000_i64;
    assert!(
        (warning.offset - hour).abs() < 5_000_000_000,
        "{}",
        warning.offset
    );
    assert!(warning.to_string().contains(&format!("device {PHONE}")));
    db.sync(LAPTOP, None, &[task("Write it", WORK, &[], &at(0))]);
    db.sync(PHONE, None, &[]);
    let again = db.sync(PHONE, None, &[task("Write it", WORK, &[], &at(3600))]);
    assert_eq!(again.clock_warning, None);
}

#[test]
fn a_task_the_client_moved_out_of_a_list_it_deleted_is_no_edit() {
    let mut db = Database::new();
    let work = list(WORK, "Work", false, T0);
    db.sync(
        LAPTOP,
        None,
        &[
            list(LAPTOP_INBOX, "Inbox", true, T0),
            work,
            task("Write report", WORK, &[], T0),
        ],
    );
    db.sync(PHONE, None, &[list(PHONE_INBOX, "Inbox", true, T0)]);
    db.sync(
        PHONE,
        Some(LONG_AGO),
        &[task("Write the report", WORK, &[], T2)],
    );
    // The laptop deletes Work: the client moves the task to its inbox, keeping its time.
    let laptop = db.sync(
        LAPTOP,
        Some(LONG_AGO),
        &[
            deleted(WORK, "list", T2),
            task("Write report", LAPTOP_INBOX, &[], T0),
        ],
    );
    assert_eq!(laptop.conflicts, no_conflicts());
    let winner = stored(&db);
    assert_eq!(
        (winner["title"].as_str(), winner["list_id"].as_str()),
        (Some("Write the report"), Some(LAPTOP_INBOX))
    );
    let sent = bodies(&laptop);
    assert!(sent.contains(&winner), "{sent:?}");
}

#[test]
fn a_tombstone_sent_with_the_record_it_deleted_is_stale() {
    let mut db = Database::new();
    let report = task("Write report", WORK, &[], T1);
    db.sync(LAPTOP, None, std::slice::from_ref(&report));
    // The client keeps its tombstone after receiving the record back, and sends both.
    let phone = db.sync(
        PHONE,
        None,
        &[deleted(REPORT, "task", &at(0)), report.clone()],
    );
    assert_eq!(phone.conflicts, no_conflicts());
    assert_eq!(stored(&db), report);
}

#[test]
fn an_upload_with_its_copy_s_own_time_is_no_edit_and_gets_the_stored_version_later() {
    let mut db = Database::new();
    let report = task("Write report", WORK, &[], T1);
    db.sync(LAPTOP, None, std::slice::from_ref(&report));
    db.sync(PHONE, None, &[]);
    // A task the client received again comes back with a link to a tag it had before.
    let relinked = task("Write report", WORK, &[ERRANDS], T1);
    let phone = db.sync(PHONE, Some(LONG_AGO), &[relinked]);
    assert_eq!(phone.conflicts, no_conflicts());
    assert_eq!(stored(&db)["tag_ids"], json!([]));
    let sent = bodies(&phone);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["tag_ids"], json!([]));
    assert!(updated_at(&sent[0]) > parse_nanos(T1).unwrap());
}

#[test]
fn the_same_content_written_again_later_competes_at_the_later_time() {
    let mut db = Database::new();
    db.sync(LAPTOP, None, &[task("Write report", WORK, &[], &at(-30))]);
    db.sync(PHONE, None, &[task("Write report", WORK, &[], &at(-10))]);
    // An edit made between the two writes, arriving last, loses to the second.
    let late = db.sync(DESKTOP, None, &[task("Report", WORK, &[], &at(-20))]);
    assert_eq!(late.conflicts, [REPORT]);
    assert_eq!(stored(&db)["title"], "Write report");
}

#[test]
fn a_clock_far_behind_shows_in_the_last_sync_of_the_apps_that_keep_their_own_time() {
    let mut db = Database::new();
    // The TUI and the mobile app keep the earlier of their own clock (read before the sync)
    // and `server_time`: ten minutes behind, that is their own clock.
    db.sync(PHONE, None, &[]);
    let phone = db.sync(PHONE, Some(&at(-600)), &[]);
    let warning = phone.clock_warning.expect("ten minutes behind is reported");
    let ten_minutes = 600_000_000_000_i64;
    assert!(
        (warning.offset + ten_minutes).abs() < 5_000_000_000,
        "{}",
        warning.offset
    );
    assert!(
        warning.to_string().contains("behind the server's"),
        "{warning}"
    );
    // The desktop CLI keeps `server_time` as it is: nothing to tell from it.
    let mut db = Database::new();
    let first = db.sync(LAPTOP, None, &[]);
    let server_time = format_server_time(first.server_time);
    assert_eq!(db.sync(LAPTOP, Some(&server_time), &[]).clock_warning, None);
}
