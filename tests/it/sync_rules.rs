//! PROTOCOL.md "Server semantics (required)", rules 1-11: each checked against the real
//! binary over HTTP, with the captured desktop and mobile request bodies wherever they fit.
//!
//! Most tests run with `clock_skew_allowance_secs = 0` so a response holds exactly the changes
//! stamped after `last_sync`; `settle()` then waits out the millisecond that `server_time` is
//! rounded down to, so a later `server_time` is after every stamp handed out before it.
//!
//! The fixtures' ids and times are never copied here: [`A`] and [`B`] find the records by
//! kind and title or name, so a re-capture of the desktop fixtures needs no edit.

use std::sync::LazyLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const DESKTOP_FULL: &str = "desktop-0.5.8/full-sync-request.json";
const DESKTOP_INCREMENTAL: &str = "desktop-0.5.8/incremental-request.json";
const DESKTOP_TOMBSTONE: &str = "desktop-0.5.8/tombstone-request.json";
const MOBILE_FULL: &str = "mobile/full-sync-request.json";
const MOBILE_INCREMENTAL: &str = "mobile/incremental-request.json";

/// Device A, the desktop of the desktop fixtures, and the ids of its records.
struct Desktop {
    device: &'static str,
    /// List "Inbox".
    inbox: &'static str,
    /// List "Work".
    work: &'static str,
    /// Tag "errands".
    tag: &'static str,
    /// Task "Write report" (in Work, tagged errands).
    report: &'static str,
    /// Task "Buy milk" (in the inbox; the tombstone fixture deletes it).
    milk: &'static str,
    /// Task "Call plumber", from the incremental fixture.
    plumber: &'static str,
}

/// Device A's ids, read from the desktop fixtures once.
static A: LazyLock<Desktop> = LazyLock::new(|| {
    let full = fixture(DESKTOP_FULL);
    let device = device_of(&full);
    for path in [DESKTOP_INCREMENTAL, DESKTOP_TOMBSTONE] {
        assert_eq!(
            device_of(&fixture(path)),
            device,
            "{path} is another device's"
        );
    }
    Desktop {
        device,
        inbox: id_of(&full, "list", "Inbox"),
        work: id_of(&full, "list", "Work"),
        tag: id_of(&full, "tag", "errands"),
        report: id_of(&full, "task", "Write report"),
        milk: id_of(&full, "task", "Buy milk"),
        plumber: id_of(&fixture(DESKTOP_INCREMENTAL), "task", "Call plumber"),
    }
});

/// Device B, the phone of the mobile fixtures, and the ids of its records.
struct Mobile {
    device: &'static str,
    /// List "Inbox".
    inbox: &'static str,
    /// Tag "errands" (the incremental fixture deletes it).
    tag: &'static str,
    /// Task "Pick up parcel" (a bare-date due date, tagged errands).
    parcel: &'static str,
    /// Task "Renew passport" (without `tag_ids` and `completed_at`).
    passport: &'static str,
}

/// Device B's ids, read from the mobile fixtures once.
static B: LazyLock<Mobile> = LazyLock::new(|| {
    let full = fixture(MOBILE_FULL);
    Mobile {
        device: device_of(&full),
        inbox: id_of(&full, "list", "Inbox"),
        tag: id_of(&full, "tag", "errands"),
        parcel: id_of(&full, "task", "Pick up parcel"),
        passport: id_of(&full, "task", "Renew passport"),
    }
});

/// The `device_id` of a request body, kept for the whole run.
fn device_of(body: &Value) -> &'static str {
    let device = body["device_id"].as_str().expect("device_id");
    device.to_owned().leak()
}

/// The id of the one record of `kind` whose title (a task's) or name (a list's or tag's) is
/// `name` in a request body, kept for the whole run.
fn id_of(body: &Value, kind: &str, name: &str) -> &'static str {
    let label = if kind == "task" { "title" } else { "name" };
    let mut matching = body["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .filter(|record| record["type"] == kind && record[label] == name);
    let record = matching
        .next()
        .unwrap_or_else(|| panic!("no {kind} {name:?} in {body}"));
    assert!(matching.next().is_none(), "two {kind}s {name:?} in {body}");
    let id = record["id"].as_str().expect("id");
    id.to_owned().leak()
}

/// A server whose `server_time` is not set back, so feeds hold exactly what is new.
fn skewless() -> Server {
    Server::start_with_config(&config_with("[sync]\nclock_skew_allowance_secs = 0"))
}

/// Waits until the next `server_time` (rounded down to the millisecond) is after every stamp
/// handed out so far.
fn settle() {
    std::thread::sleep(Duration::from_millis(3));
}

/// A sync by the default account, then a pause past the millisecond its `server_time` was
/// rounded to, so the next sync's changes are stamped after it.
fn sync_then_settle(server: &Server, body: &Value) -> Value {
    let response = server.sync_ok(TOKEN, body);
    settle();
    response
}

/// The `server_time` of a sync response.
fn server_time(response: &Value) -> String {
    response["server_time"]
        .as_str()
        .unwrap_or_else(|| panic!("no server_time in {response}"))
        .to_owned()
}

/// A fixture request with its `last_sync` replaced, as the client would send it.
fn request(path: &str, last_sync: Option<&str>) -> Value {
    let mut body = fixture(path);
    body["last_sync"] = json!(last_sync);
    body
}

/// The record with `id` in a request body's changes.
fn sent(body: &Value, id: &str) -> Value {
    find(body, id)
        .unwrap_or_else(|| panic!("no {id} in the request"))
        .clone()
}

/// `record` with the fields of `fields` set.
fn with(mut record: Value, fields: Value) -> Value {
    for (name, value) in fields.as_object().unwrap() {
        record[name] = value.clone();
    }
    record
}

/// An RFC 3339 time, parsed.
fn instant(text: &str) -> jiff::Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a timestamp: {e}"))
}

/// `expected` as the server re-issued it after tidying: the same record with a new
/// `updated_at` of the server's own, in milliseconds, later than the one it replaced (so every
/// client applies it). Returns the expected record with that `updated_at`.
fn server_edit(actual: Option<&Value>, expected: Value) -> Value {
    let actual = actual.unwrap_or_else(|| panic!("missing tidied record {expected}"));
    let stamped = actual["updated_at"].as_str().expect("updated_at");
    let old = expected["updated_at"].as_str().expect("updated_at");
    assert!(
        instant(stamped) > instant(old),
        "{stamped} is not after {old}"
    );
    assert!(
        stamped.len() == 24 && stamped.ends_with('Z'),
        "{stamped} is not a millisecond UTC timestamp"
    );
    with(expected, json!({ "updated_at": stamped }))
}

/// The `type` of each record in a response, in order.
fn types(response: &Value) -> Vec<String> {
    response["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["type"].as_str().unwrap().to_owned())
        .collect()
}

/// `ids`, sorted.
fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Stops the server with `signal` (`TERM` or `KILL`; after `TERM` it must exit 0) and starts
/// a new one on the same directory.
fn restart(mut server: Server, signal: &str) -> Server {
    server.signal(signal);
    let (status, stderr) = server.wait_exit();
    if signal == "TERM" {
        assert!(status.success(), "server failed to stop: {stderr}");
    }
    Server::start_in(server.into_dir(), &[], &[])
}

// ---------------------------------------------------------------------------------------
// 1. Accounts.

#[test]
fn accounts_never_see_each_others_records() {
    let server = Server::start();
    let desktop = fixture(DESKTOP_FULL);
    server.sync_ok(TOKEN, &desktop);

    let other = server.sync_ok(OTHER_ACCOUNT_TOKEN, &sync_body(DEVICE_C, None, vec![]));
    assert_eq!(other["changes"], json!([]));

    // The same id in another account is another record: an older version is no conflict.
    let other_tag = tag(A.tag, "the other account's tag", "2020-01-01T00:00:00Z");
    let other = server.sync_ok(
        OTHER_ACCOUNT_TOKEN,
        &sync_body(DEVICE_C, None, vec![other_tag.clone()]),
    );
    assert_eq!(other["conflicts"], json!([]));
    assert_eq!(other["changes"], json!([other_tag]));

    // Another token of the default account sees the default account's records, untouched.
    let same = server.sync_ok(TOKEN_2, &sync_body(B.device, None, vec![]));
    let expected: Vec<Value> = [A.inbox, A.work, A.tag, A.report, A.milk]
        .iter()
        .map(|id| sent(&desktop, id))
        .collect();
    assert_eq!(same["changes"], in_full_sync_order(&expected));
}

// ---------------------------------------------------------------------------------------
// 2. Change feed by server stamp; server_time.

#[test]
fn change_from_a_device_whose_clock_is_behind_reaches_a_device_that_synced_after() {
    let server = skewless();
    let a_first = sync_then_settle(&server, &fixture(DESKTOP_FULL));
    let b_first = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![]));
    assert_eq!(b_first["changes"].as_array().unwrap().len(), 5);
    settle();

    // A's clock is far behind: its edit is dated long before B's last sync.
    let late = task(
        NEW_TASK,
        "written on a slow clock",
        A.work,
        "2020-01-01T00:00:00.000000001Z",
    );
    let a_second = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_first)), vec![late.clone()]),
    );
    assert_eq!(a_second["changes"], json!([]));

    let b_second = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(b_second["changes"], json!([late]));
    assert_eq!(b_second["conflicts"], json!([]));
}

#[test]
fn every_change_after_last_sync_is_sent_once_and_nothing_before_it() {
    let server = skewless();
    let b_first = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![]));
    let mut last_sync = server_time(&b_first);
    for round in 0..5 {
        settle();
        let id = format!("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5{round}");
        // Versions dated in the past and the future alike: only the server's stamp counts.
        let updated = if round % 2 == 0 {
            "2019-05-05T05:05:05Z"
        } else {
            "2099-05-05T05:05:05Z"
        };
        let record = task(&id, "round", A.inbox, updated);
        server.sync_ok(TOKEN, &sync_body(A.device, None, vec![record]));
        settle();
        let b = server.sync_ok(TOKEN, &sync_body(B.device, Some(&last_sync), vec![]));
        assert_eq!(ids(&b), [id], "round {round}");
        last_sync = server_time(&b);
    }
}

/// `YYYY-MM-DDTHH:MM:SS.sssZ` and nothing else.
fn is_javascript_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The wall clock, in nanoseconds since the epoch.
fn now_nanos() -> i128 {
    jiff::Timestamp::now().as_nanosecond()
}

#[test]
fn server_time_is_utc_milliseconds_set_back_by_the_skew_allowance() {
    for (settings, skew_secs) in [
        ("", 300),
        ("[sync]\nclock_skew_allowance_secs = 300", 300),
        ("[sync]\nclock_skew_allowance_secs = 0", 0),
        ("[sync]\nclock_skew_allowance_secs = 7", 7),
    ] {
        let server = Server::start_with_config(&config_with(settings));
        let before = now_nanos();
        let response = server.sync_ok(TOKEN, &sync_body(A.device, None, vec![]));
        let after = now_nanos();
        let text = server_time(&response);
        assert!(is_javascript_time(&text), "{settings:?}: {text:?}");
        let at: jiff::Timestamp = text.parse().unwrap();
        let skew = i128::from(skew_secs) * 1_000_000_000;
        let at = at.as_nanosecond();
        assert!(
            before - skew - 1_000_000 <= at && at <= after - skew,
            "{settings:?}: server_time {text} is not {skew_secs} s before the request"
        );
    }
}

#[test]
fn a_device_carrying_its_server_time_forward_receives_each_change_once() {
    let server = Server::start();
    let a_first = server.sync_ok(TOKEN, &fixture(DESKTOP_FULL));
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));
    assert_eq!(b_first["changes"].as_array().map(Vec::len), Some(5));
    server.sync_ok(
        TOKEN,
        &request(DESKTOP_INCREMENTAL, Some(&server_time(&a_first))),
    );
    let b_second = sync_then_settle(
        &server,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    let received: Vec<&Value> = b_second["changes"].as_array().unwrap().iter().collect();
    assert_eq!(
        received
            .iter()
            .map(|record| &record["id"])
            .collect::<Vec<_>>(),
        [A.plumber],
        "only what is new since B's last answer, though it is within the skew allowance"
    );
    let b_third = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_second)), vec![]),
    );
    assert_eq!(b_third["changes"], json!([]));
}

/// A sync by `device` carrying `last_sync` forward, asking for gzip or not: the answer, its
/// Content-Encoding, and its size on the wire.
fn sync_encoded(
    server: &Server,
    device: &str,
    last_sync: Option<&str>,
    gzip: bool,
) -> (Value, Option<String>, usize) {
    use std::io::Read;

    let authorization = format!("Bearer {TOKEN}");
    let mut headers = vec![("Authorization", authorization.as_str())];
    if gzip {
        headers.push(("Accept-Encoding", "gzip"));
    }
    let body = sync_body(device, last_sync, vec![]).to_string();
    let response = http_request(
        server.port,
        "POST",
        "/api/v1/sync",
        &headers,
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let encoding = response.header("content-encoding").map(str::to_owned);
    let json = match encoding.as_deref() {
        Some("gzip") => {
            let mut json = String::new();
            flate2::read::GzDecoder::new(&response.bytes[..])
                .read_to_string(&mut json)
                .expect("a gzip body");
            json
        }
        _ => response.body.clone(),
    };
    let answer = serde_json::from_str(&json).expect("a whole JSON answer");
    (answer, encoding, response.bytes.len())
}

#[test]
fn answers_of_every_size_arrive_whole_and_large_ones_gzip_compressed_when_accepted() {
    let server = Server::start();
    let mut a_last = server_time(&server.sync_ok(TOKEN, &fixture(DESKTOP_FULL)));
    let mut last = [B.device, "5d0c1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"]
        .map(|device| (device, server_time(&everything(&server, device))));
    // Each round A adds `count` tasks, and each other device's next answer carries exactly
    // them: a few, more than one chunk read with the sync, more than the sync reads itself.
    for (round, count) in [(1, 1), (2, 200), (3, 300)] {
        let tasks: Vec<Value> = (0..count)
            .map(|n| {
                let id = format!("00000000-0000-4000-8000-{round:04}{n:08}");
                task(
                    &id,
                    "A task among many",
                    A.inbox,
                    "2026-11-24T22:45:21.000000001Z",
                )
            })
            .collect();
        let a = server.sync_ok(TOKEN, &sync_body(A.device, Some(&a_last), tasks.clone()));
        a_last = server_time(&a);
        let mut answers = Vec::new();
        for ((device, last_sync), gzip) in last.iter_mut().zip([true, false]) {
            let (answer, encoding, wire) = sync_encoded(&server, device, Some(last_sync), gzip);
            let json = answer.to_string().len();
            let expected = (gzip && json >= 4096).then(|| "gzip".to_owned());
            assert_eq!(encoding, expected, "{count} tasks, {json} bytes of JSON");
            if encoding.is_some() {
                assert!(wire * 4 < json, "{wire} bytes for {json} bytes of JSON");
            }
            *last_sync = server_time(&answer);
            answers.push(answer["changes"].clone());
        }
        assert_eq!(answers[0], answers[1]);
        let ids: Vec<&Value> = answers[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["id"])
            .collect();
        let sent: Vec<&Value> = tasks.iter().map(|t| &t["id"]).collect();
        assert_eq!(ids, sent, "round {round}");
    }
}

#[test]
fn a_last_sync_that_is_not_the_last_answers_gets_recent_changes_again() {
    let server = Server::start();
    server.sync_ok(TOKEN, &fixture(DESKTOP_FULL));
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));
    let b_second = sync_then_settle(
        &server,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(b_second["changes"], json!([]));
    // B never received that answer, so it sends its previous `last_sync` again: everything
    // within the skew allowance comes again, nothing is skipped.
    let retry = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    let retried = retry["changes"].as_array().unwrap();
    assert_eq!(in_full_sync_order(retried), b_first["changes"]);
    // A restart forgets every last answer: repeats again, never gaps.
    let mut server = server;
    server.stop_ok();
    let server = Server::start_in(server.into_dir(), &[], &[]);
    let after_restart = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&retry)), vec![]),
    );
    let repeated = after_restart["changes"].as_array().unwrap();
    assert_eq!(in_full_sync_order(repeated), b_first["changes"]);
}

#[test]
fn stamps_keep_increasing_when_the_wall_clock_goes_back() {
    let mut server = skewless();
    server.sync_ok(TOKEN, &fixture(DESKTOP_FULL));
    server.stop_ok();
    let dir = server.into_dir();
    // Stand-in for a wall clock set back by an hour: every stored stamp is an hour ahead
    // (and on a whole millisecond, so the server_time that covers them repeats none).
    let database = dir.path().join("tickit-sync.sqlite");
    let conn = rusqlite::Connection::open(&database).unwrap();
    let moved = conn
        .execute(
            "UPDATE records SET stamp = (stamp / 1000000 + 3600000) * 1000000",
            [],
        )
        .unwrap();
    assert_eq!(moved, 5);
    drop(conn);
    let server = Server::start_in(dir, &[], &[]);
    let b_first = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![]));
    let first_time: jiff::Timestamp = server_time(&b_first).parse().unwrap();
    assert!(
        first_time.as_nanosecond() > now_nanos() + 3_000_000_000_000,
        "server_time {first_time} covers the stamps an hour ahead"
    );
    let record = task(
        NEW_TASK,
        "after the clock went back",
        A.inbox,
        "2026-11-25T00:00:00Z",
    );
    server.sync_ok(TOKEN, &sync_body(A.device, None, vec![record.clone()]));
    let b_second = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(b_second["changes"], json!([record]));
}

// ---------------------------------------------------------------------------------------
// 3. No echo.

#[test]
fn own_upload_is_not_echoed_on_incremental_sync_but_is_on_full_sync() {
    // The default allowance: the upload is well within the window that is sent again.
    let server = Server::start();
    let desktop = fixture(DESKTOP_FULL);
    let a_first = server.sync_ok(TOKEN, &desktop);
    assert_eq!(
        sorted(ids(&a_first)),
        sorted(
            [A.inbox, A.work, A.tag, A.report, A.milk]
                .map(String::from)
                .to_vec()
        ),
        "a full sync returns everything, the device's own records included"
    );
    let incremental = request(DESKTOP_INCREMENTAL, Some(&server_time(&a_first)));
    let a_second = server.sync_ok(TOKEN, &incremental);
    assert_eq!(a_second["changes"], json!([]));

    let b_tag = tag(NEW_TAG, "from B", "2026-11-24T23:00:00Z");
    server.sync_ok(TOKEN, &sync_body(B.device, None, vec![b_tag.clone()]));
    let a_third = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_second)), vec![]),
    );
    assert_eq!(a_third["changes"], json!([b_tag]));

    let a_full = server.sync_ok(TOKEN, &sync_body(A.device, None, vec![]));
    let mut expected = [A.inbox, A.work, A.tag, NEW_TAG, A.report, A.milk, A.plumber];
    // A full sync sends each kind by id.
    expected[0..2].sort();
    expected[2..4].sort();
    expected[4..].sort();
    assert_eq!(ids(&a_full), expected);
}

// ---------------------------------------------------------------------------------------
// 4. Last write wins, deterministically.

#[test]
fn later_version_wins_at_nanosecond_precision() {
    let server = skewless();
    let one = tag(NEW_TAG, "one", "2026-11-24T22:45:21.000000001Z");
    let zero = tag(NEW_TAG, "zero", "2026-11-24T22:45:21.000000000Z");
    let two = tag(NEW_TAG, "two", "2026-11-24T22:45:21.000000002Z");
    server.sync_ok(TOKEN, &sync_body(A.device, None, vec![one.clone()]));

    let b = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![zero]));
    assert_eq!(b["conflicts"], json!([NEW_TAG]));
    assert_eq!(b["changes"], json!([one]));

    let b = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![two.clone()]));
    assert_eq!(b["conflicts"], json!([]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([two]));
}

#[test]
fn versions_are_compared_as_instants_not_as_strings() {
    let server = skewless();
    // As text "23:45...+01:00" sorts after "22:45...Z", but it is 1 ns earlier.
    let offset = tag(NEW_TAG, "offset", "2026-11-24T23:45:21.5+01:00");
    let later = tag(NEW_TAG, "one ns later", "2026-11-24T22:45:21.500000001Z");
    server.sync_ok(TOKEN, &sync_body(A.device, None, vec![offset.clone()]));
    let b = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![later.clone()]));
    assert_eq!(b["conflicts"], json!([]));
    // A's retry of its upload is no new version: no conflict, and A gets the winner.
    let a = server.sync_ok(TOKEN, &sync_body(A.device, None, vec![offset]));
    assert_eq!(a["conflicts"], json!([]));
    assert_eq!(a["changes"], json!([later]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([later]));
}

#[test]
fn a_tie_is_broken_the_same_way_whatever_the_arrival_order() {
    let at = "2026-11-24T22:45:21.123456789Z";
    let red = with(tag(NEW_TAG, "tie", at), json!({"color": "#f38ba8"}));
    let blue = with(tag(NEW_TAG, "tie", at), json!({"color": "#89b4fa"}));
    let mut outcomes = Vec::new();
    for order in [
        [(A.device, &red), (B.device, &blue)],
        [(B.device, &blue), (A.device, &red)],
    ] {
        let server = skewless();
        let (first_device, first) = order[0];
        let (second_device, second) = order[1];
        let response = server.sync_ok(TOKEN, &sync_body(first_device, None, vec![first.clone()]));
        assert_eq!(response["conflicts"], json!([]));
        let response = server.sync_ok(TOKEN, &sync_body(second_device, None, vec![second.clone()]));
        let stored = everything(&server, DEVICE_C)["changes"].clone();
        // The second version either replaced the first or lost to it, reported as a conflict.
        // Either way the winner goes out 1 ms later than the tie (rounded down to the
        // millisecond), or the device holding the other version would not apply it.
        let moved_on = |version: &Value| {
            with(
                version.clone(),
                json!({"updated_at": "2026-11-24T22:45:21.124Z"}),
            )
        };
        if stored == json!([moved_on(second)]) {
            assert_eq!(response["conflicts"], json!([]));
        } else {
            assert_eq!(stored, json!([moved_on(first)]));
            assert_eq!(response["conflicts"], json!([NEW_TAG]));
            assert_eq!(response["changes"], stored);
        }
        // Replaying both changes nothing.
        server.sync_ok(TOKEN, &sync_body(first_device, None, vec![first.clone()]));
        server.sync_ok(TOKEN, &sync_body(second_device, None, vec![second.clone()]));
        assert_eq!(everything(&server, DEVICE_C)["changes"], stored);
        outcomes.push(stored);
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[test]
fn a_tombstone_wins_a_tie_with_an_update_in_either_order() {
    let at = "2026-11-24T22:45:21.5Z";
    let record = task(NEW_TASK, "tie", A.inbox, at);
    let tombstone = deleted(NEW_TASK, "task", at);
    for order in [[&record, &tombstone], [&tombstone, &record]] {
        let server = skewless();
        server.sync_ok(TOKEN, &sync_body(A.device, None, vec![order[0].clone()]));
        server.sync_ok(TOKEN, &sync_body(B.device, None, vec![order[1].clone()]));
        assert_eq!(everything(&server, DEVICE_C)["changes"], json!([tombstone]));
    }
}

#[test]
fn a_tombstone_beats_an_older_update_and_a_newer_update_resurrects() {
    let server = skewless();
    let created = task(NEW_TASK, "v1", A.inbox, "2026-11-24T22:00:00.000000001Z");
    let a_first = sync_then_settle(&server, &sync_body(A.device, None, vec![created]));
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));
    let tombstone = deleted(NEW_TASK, "task", "2026-11-24T22:00:00.000000003Z");
    let a_second = server.sync_ok(
        TOKEN,
        &sync_body(
            A.device,
            Some(&server_time(&a_first)),
            vec![tombstone.clone()],
        ),
    );
    settle();
    // B edited before the delete: its older update loses, and B gets the tombstone at once.
    let edited = task(NEW_TASK, "v2", A.inbox, "2026-11-24T22:00:00.000000002Z");
    let b_second = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![edited]),
    );
    assert_eq!(b_second["conflicts"], json!([NEW_TASK]));
    assert_eq!(b_second["changes"], json!([tombstone]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([tombstone]));

    // An edit after the delete brings the task back, for every device.
    settle();
    let revived = task(NEW_TASK, "v3", A.inbox, "2026-11-24T22:00:00.000000004Z");
    let b_third = server.sync_ok(
        TOKEN,
        &sync_body(
            B.device,
            Some(&server_time(&b_second)),
            vec![revived.clone()],
        ),
    );
    assert_eq!(b_third["conflicts"], json!([]));
    assert_eq!(b_third["changes"], json!([]));
    let a_third = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_second)), vec![]),
    );
    assert_eq!(a_third["changes"], json!([revived]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([revived]));
}

#[test]
fn an_older_tombstone_loses_to_a_newer_update_which_is_sent_back() {
    let server = skewless();
    let edited = task(
        NEW_TASK,
        "edited after the delete",
        A.inbox,
        "2026-11-24T22:00:02Z",
    );
    let a_first = sync_then_settle(&server, &sync_body(A.device, None, vec![edited.clone()]));
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));
    let stale = deleted(NEW_TASK, "task", "2026-11-24T22:00:01Z");
    let b = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![stale]),
    );
    assert_eq!(b["conflicts"], json!([NEW_TASK]));
    assert_eq!(b["changes"], json!([edited]));
    let a = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_first)), vec![]),
    );
    assert_eq!(a["changes"], json!([]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([edited]));
}

/// The server's clock `seconds` from now, as a device whose clock is that far off (or that
/// acts that much later) stamps a record.
fn clock_at(seconds: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    at.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

#[test]
fn a_device_an_hour_fast_cannot_win_with_its_clock_and_is_logged_once() {
    let mut server = Server::start();
    let created = task(NEW_TASK, "Renew passport", NEW_LIST, &clock_at(-60));
    server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, vec![created.clone()]));
    // Device B, an hour fast, receives the task, re-stamps it with its clock when applying
    // it, and uploads that copy: no change and no conflict.
    server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![]));
    let restamped = with(created.clone(), json!({"updated_at": clock_at(3600)}));
    let b = server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![restamped.clone()]));
    assert_eq!(b["conflicts"], json!([]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([created]));

    // A renames it. B's copy is dated an hour ahead, so the rename reaches B dated later.
    let renamed = task(NEW_TASK, "Renew the passport", NEW_LIST, &clock_at(0));
    server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, vec![renamed.clone()]));
    let b = server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![]));
    let received = &b["changes"][0];
    assert_eq!(received["title"], "Renew the passport");
    assert!(
        instant(received["updated_at"].as_str().unwrap())
            > instant(restamped["updated_at"].as_str().unwrap())
    );
    let restamped = with(received.clone(), json!({"updated_at": clock_at(3600)}));
    server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![restamped]));

    // B edits it (dated an hour ahead); A deletes it a moment later: the delete wins.
    let b_edit = task(NEW_TASK, "Passport", NEW_LIST, &clock_at(3600));
    server.sync_ok(TOKEN, &sync_body(DEVICE_B, None, vec![b_edit]));
    settle();
    let gone = deleted(NEW_TASK, "task", &clock_at(0));
    let a = server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, vec![gone.clone()]));
    assert_eq!(a["conflicts"], json!([]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([gone]));

    let log = server.stop_ok();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("has a clock"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains(&format!("device {DEVICE_B} has a clock about 3600."))
            && warnings[0].contains("ahead of the server's"),
        "{}",
        warnings[0]
    );
}

// ---------------------------------------------------------------------------------------
// 5. Conflicts converge.

#[test]
fn a_conflict_sends_the_winner_even_when_last_sync_is_after_its_stamp() {
    let server = skewless();
    let newer = tag(
        A.tag,
        "errands (renamed on A)",
        "2026-11-24T23:00:00.000000000Z",
    );
    server.sync_ok(TOKEN, &sync_body(A.device, None, vec![newer.clone()]));
    settle();
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));
    let since = server_time(&b_first);
    // Without a conflict B's feed is empty: the winner's stamp is before B's last_sync.
    let quiet = server.sync_ok(TOKEN, &sync_body(B.device, Some(&since), vec![]));
    assert_eq!(quiet["changes"], json!([]));

    let older = tag(
        A.tag,
        "errands (renamed on B)",
        "2026-11-24T22:59:59.999999999Z",
    );
    let b = server.sync_ok(TOKEN, &sync_body(B.device, Some(&since), vec![older]));
    assert_eq!(b["conflicts"], json!([A.tag]));
    assert_eq!(b["changes"], json!([newer]));
}

#[test]
fn a_conflict_on_a_record_the_device_sent_itself_still_sends_the_winner() {
    // Device A's own retry of an old version loses to A's newer one; no echo must not hide it.
    let server = skewless();
    let newer = task(NEW_TASK, "v2", A.inbox, "2026-11-24T23:00:00.2Z");
    let older = task(NEW_TASK, "v1", A.inbox, "2026-11-24T23:00:00.1Z");
    let a_first = sync_then_settle(&server, &sync_body(A.device, None, vec![newer.clone()]));
    let a = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_first)), vec![older]),
    );
    assert_eq!(a["conflicts"], json!([NEW_TASK]));
    assert_eq!(a["changes"], json!([newer]));
}

#[test]
fn a_losing_task_tag_link_is_sent_back_and_conflicts_stay_uuids() {
    // A link has no id of its own; the desktop parses `conflicts` as UUIDs, strictly.
    let server = skewless();
    let link = |created_at: &str| json!({"type": "task_tag", "task_id": A.report, "tag_id": A.tag, "created_at": created_at});
    let newer = link("2026-11-24T22:45:22Z");
    server.sync_ok(TOKEN, &sync_body(A.device, None, vec![newer.clone()]));
    settle();
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));
    let b = server.sync_ok(
        TOKEN,
        &sync_body(
            B.device,
            Some(&server_time(&b_first)),
            vec![link("2026-11-24T22:45:21Z")],
        ),
    );
    for id in b["conflicts"].as_array().unwrap() {
        let id = id.as_str().unwrap();
        assert!(uuid::Uuid::try_parse(id).is_ok(), "conflict id {id:?}");
    }
    assert_eq!(b["conflicts"], json!([]));
    assert_eq!(b["changes"], json!([newer]));
}

// ---------------------------------------------------------------------------------------
// 6. Idempotent.

#[test]
fn replaying_requests_changes_nothing_and_reports_no_conflict() {
    let server = skewless();
    let full = fixture(DESKTOP_FULL);
    let a_first = sync_then_settle(&server, &full);
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));

    let incremental = request(DESKTOP_INCREMENTAL, Some(&server_time(&a_first)));
    for attempt in 0..2 {
        let a = server.sync_ok(TOKEN, &incremental);
        assert_eq!(a["conflicts"], json!([]), "attempt {attempt}");
        assert_eq!(a["changes"], json!([]), "attempt {attempt}");
    }
    let replay = server.sync_ok(TOKEN, &full);
    assert_eq!(replay["conflicts"], json!([]));
    let tombstone = request(DESKTOP_TOMBSTONE, Some(&server_time(&a_first)));
    for attempt in 0..2 {
        let a = server.sync_ok(TOKEN, &tombstone);
        assert_eq!(a["conflicts"], json!([]), "attempt {attempt}");
    }

    // B receives each change once; the replays made no new stamps.
    let b = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(ids(&b), [A.plumber, A.milk]);
    assert_eq!(b["changes"][0], sent(&incremental, A.plumber));
    assert_eq!(b["changes"][1], sent(&tombstone, A.milk));
}

#[test]
fn an_unchanged_record_re_stamped_by_a_client_is_neither_a_change_nor_a_conflict() {
    // tickit 0.5.8 sets updated_at to its own clock when it applies an incoming update, so
    // it re-uploads records it did not change, stamped later (or, from a slower device,
    // earlier) than the stored version.
    let server = skewless();
    let full = fixture(DESKTOP_FULL);
    let a_first = sync_then_settle(&server, &full);
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));
    let report = sent(&full, A.report);
    let later = with(
        report.clone(),
        json!({"updated_at": "2026-11-25T09:00:00.000000001Z"}),
    );
    let earlier = with(
        report.clone(),
        json!({"updated_at": "2026-11-24T20:00:00Z"}),
    );
    for (device, version) in [(B.device, later), (DEVICE_C, earlier)] {
        let response = server.sync_ok(TOKEN, &sync_body(device, None, vec![version]));
        assert_eq!(response["conflicts"], json!([]), "{device}");
        assert_eq!(find(&response, A.report), Some(&report), "{device}");
    }
    settle();
    let a = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_first)), vec![]),
    );
    assert_eq!(a["changes"], json!([]), "nothing new for A");
    let b = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(b["changes"], json!([]), "nothing new for B");
}

#[test]
fn an_identical_version_from_another_device_is_not_broadcast_again() {
    let server = skewless();
    let full = fixture(DESKTOP_FULL);
    let a_first = sync_then_settle(&server, &full);
    let b_first = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![]));
    let c_first = sync_then_settle(&server, &sync_body(DEVICE_C, None, vec![]));

    // B sends back what it received, spelled its own way (offsets, nulls left out).
    let report = sent(&full, A.report);
    let instant_of = |field: &str| instant(report[field].as_str().expect("a timestamp"));
    let at_offset = |field: &str, hours: i8| {
        let offset = jiff::tz::Offset::constant(hours);
        instant_of(field).display_with_offset(offset).to_string()
    };
    let mut respelled = with(
        report.clone(),
        json!({
            "created_at": at_offset("created_at", 0),
            "updated_at": at_offset("updated_at", 1),
            "due_date": instant_of("due_date").to_string(),
        }),
    );
    respelled.as_object_mut().unwrap().remove("completed_at");
    let work = sent(&full, A.work);
    let errands = sent(&full, A.tag);
    let b = server.sync_ok(
        TOKEN,
        &sync_body(
            B.device,
            Some(&server_time(&b_first)),
            vec![respelled, work, errands],
        ),
    );
    assert_eq!(b["conflicts"], json!([]));
    assert_eq!(b["changes"], json!([]));

    for (device, previous) in [(A.device, &a_first), (DEVICE_C, &c_first)] {
        let response = server.sync_ok(
            TOKEN,
            &sync_body(device, Some(&server_time(previous)), vec![]),
        );
        assert_eq!(response["changes"], json!([]), "device {device}");
    }
    // The stored version keeps its first writer's spelling.
    let stored = everything(&server, DEVICE_D);
    assert_eq!(find(&stored, A.report), Some(&report));
}

#[test]
fn a_desktop_re_upload_of_a_mobile_bare_due_date_is_the_same_version() {
    // tickit 0.5.8 reads a bare due date as 23:59:59 UTC that day and writes it back with
    // `to_rfc3339`; its other timestamps come back in chrono's own spelling.
    let server = skewless();
    let mobile = fixture(MOBILE_FULL);
    let b_first = sync_then_settle(&server, &mobile);
    let a_first = sync_then_settle(&server, &sync_body(A.device, None, vec![]));
    let parcel = sent(&mobile, B.parcel);
    let as_desktop_holds_it = with(
        parcel.clone(),
        json!({
            "due_date": "2026-12-03T23:59:59+00:00",
            "created_at": "2026-11-24T21:10:05.120Z",
            "updated_at": "2026-11-24T21:12:44.907Z",
        }),
    );
    let a = server.sync_ok(
        TOKEN,
        &sync_body(
            A.device,
            Some(&server_time(&a_first)),
            vec![as_desktop_holds_it],
        ),
    );
    assert_eq!(a["conflicts"], json!([]));
    assert_eq!(a["changes"], json!([]));
    let b = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(b["changes"], json!([]));
    assert_eq!(
        find(&everything(&server, DEVICE_C), B.parcel),
        Some(&parcel)
    );
}

#[test]
fn a_forced_full_sync_of_everything_received_changes_nothing() {
    // `tickit sync --force` sends every record the device holds (its inbox under its own id,
    // defaults filled in), with no tombstones: all of it is already stored.
    let server = skewless();
    let a_first = sync_then_settle(&server, &fixture(DESKTOP_FULL));
    server.sync_ok(TOKEN, &fixture(MOBILE_FULL));
    settle();
    let a_base = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_first)), vec![]),
    );
    let b_base = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![]));
    let c_base = everything(&server, DEVICE_C);
    settle();

    for device in [B.device, A.device] {
        let held = server.sync_ok(TOKEN, &sync_body(device, None, vec![]))["changes"].clone();
        let records = held.as_array().unwrap().clone();
        let forced = server.sync_ok(TOKEN, &sync_body(device, None, records));
        assert_eq!(forced["conflicts"], json!([]), "device {device}");
        assert_eq!(forced["changes"], held, "device {device}");
    }
    for (device, base) in [
        (A.device, &a_base),
        (B.device, &b_base),
        (DEVICE_C, &c_base),
    ] {
        let response = server.sync_ok(TOKEN, &sync_body(device, Some(&server_time(base)), vec![]));
        assert_eq!(response["changes"], json!([]), "device {device}");
    }
}

// ---------------------------------------------------------------------------------------
// 7. Atomic and durable.

#[test]
fn a_request_with_one_invalid_record_stores_none_of_its_valid_records() {
    let server = skewless();
    let good_list = list(NEW_LIST, "Errands", false, "2026-11-24T22:45:21Z");
    let good_tag = tag(NEW_TAG, "home", "2026-11-24T22:45:21Z");
    let good_task = task(NEW_TASK, "fine", NEW_LIST, "2026-11-24T22:45:21Z");
    let bad_task = with(
        task(NEW_TASK_2, "bad", NEW_LIST, "2026-11-24T22:45:21Z"),
        json!({"completed_at": "last tuesday"}),
    );
    let (status, response) = server.sync(
        TOKEN,
        &sync_body(
            A.device,
            None,
            vec![good_list, good_tag, good_task, bad_task.clone()],
        ),
    );
    assert_eq!(status, 400);
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .starts_with("changes[3].completed_at: "),
        "{response}"
    );
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([]));
}

#[test]
fn accepted_changes_survive_a_restart_and_stamps_continue() {
    let server = skewless();
    let full = fixture(DESKTOP_FULL);
    let a_first = sync_then_settle(&server, &full);
    let b_first = sync_then_settle(&server, &sync_body(B.device, None, vec![]));

    let server = restart(server, "TERM");
    let after = everything(&server, DEVICE_C);
    assert_eq!(after["changes"], b_first["changes"]);

    let incremental = request(DESKTOP_INCREMENTAL, Some(&server_time(&a_first)));
    let a = server.sync_ok(TOKEN, &incremental);
    assert_eq!(a["changes"], json!([]));
    let b = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(b["changes"], json!([sent(&incremental, A.plumber)]));
}

#[test]
fn an_answered_sync_survives_kill_9() {
    let server = skewless();
    let full = fixture(DESKTOP_FULL);
    server.sync_ok(TOKEN, &full);
    let server = restart(server, "KILL");
    let after = everything(&server, DEVICE_C);
    assert_eq!(
        sorted(ids(&after)),
        sorted(
            [A.inbox, A.work, A.tag, A.report, A.milk]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(find(&after, A.report), Some(&sent(&full, A.report)));
}

// ---------------------------------------------------------------------------------------
// 8. One inbox per account.

#[test]
fn every_device_gets_the_one_inbox_and_its_tasks_under_its_own_inbox_id() {
    let server = skewless();
    let desktop = fixture(DESKTOP_FULL);
    let mobile = fixture(MOBILE_FULL);
    let a_first = sync_then_settle(&server, &desktop);

    // B's inbox says what A's says (only its times differ): nothing to store, no conflict,
    // and B gets the account inbox under B's own id.
    let b_first = server.sync_ok(TOKEN, &mobile);
    assert_eq!(b_first["conflicts"], json!([]));
    assert!(!b_first.to_string().contains(A.inbox), "{b_first}");
    let inbox_for_b = with(sent(&desktop, A.inbox), json!({"id": B.inbox}));
    assert_eq!(find(&b_first, B.inbox), Some(&inbox_for_b));
    for id in [A.milk, B.parcel, B.passport] {
        assert_eq!(find(&b_first, id).unwrap()["list_id"], B.inbox, "{id}");
    }
    assert_eq!(find(&b_first, A.report).unwrap()["list_id"], A.work);
    settle();

    // A receives B's tasks in A's inbox, and A's new inbox task reaches B in B's inbox.
    let incremental = request(DESKTOP_INCREMENTAL, Some(&server_time(&a_first)));
    let a_second = server.sync_ok(TOKEN, &incremental);
    assert!(!a_second.to_string().contains(B.inbox), "{a_second}");
    assert_eq!(ids(&a_second), [B.tag, B.parcel, B.passport]);
    assert_eq!(
        find(&a_second, B.passport),
        Some(&with(
            sent(&mobile, B.passport),
            json!({"list_id": A.inbox, "tag_ids": [], "completed_at": null})
        ))
    );
    settle();

    let b_second = server.sync_ok(
        TOKEN,
        &request(MOBILE_INCREMENTAL, Some(&server_time(&b_first))),
    );
    assert_eq!(b_second["conflicts"], json!([]));
    assert_eq!(
        b_second["changes"],
        json!([with(
            sent(&incremental, A.plumber),
            json!({"list_id": B.inbox})
        )])
    );

    // A device that sent no inbox yet gets exactly one, and no task points anywhere else.
    let c = everything(&server, DEVICE_C);
    let lists: Vec<&Value> = c["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["type"] == "list")
        .collect();
    let inboxes: Vec<&&Value> = lists.iter().filter(|l| l["is_inbox"] == true).collect();
    assert_eq!(inboxes.len(), 1, "{c}");
    for record in c["changes"].as_array().unwrap() {
        if record["type"] == "task" {
            assert!(
                lists.iter().any(|l| l["id"] == record["list_id"]),
                "orphaned task {record}"
            );
        }
    }
}

#[test]
fn a_device_that_joins_later_sends_its_inbox_and_receives_the_account_inbox_under_its_id() {
    let server = skewless();
    let mobile = fixture(MOBILE_FULL);
    server.sync_ok(TOKEN, &mobile);
    // A's desktop inbox says what B's says: the account inbox stays B's version, and A
    // receives it under A's own id.
    let desktop = fixture(DESKTOP_FULL);
    let a = server.sync_ok(TOKEN, &desktop);
    assert_eq!(a["conflicts"], json!([]));
    assert_eq!(
        find(&a, A.inbox),
        Some(&with(sent(&mobile, B.inbox), json!({"id": A.inbox})))
    );
    assert!(!a.to_string().contains(B.inbox), "{a}");

    // A renamed inbox is a real change: the newer one wins, and every device gets it.
    let renamed = with(
        sent(&desktop, A.inbox),
        json!({"name": "Eingang", "updated_at": "2026-11-25T08:00:00.000000001Z"}),
    );
    server.sync_ok(TOKEN, &sync_body(A.device, None, vec![renamed.clone()]));
    let b = server.sync_ok(TOKEN, &sync_body(B.device, None, vec![]));
    assert_eq!(
        find(&b, B.inbox),
        Some(&with(renamed, json!({"id": B.inbox})))
    );
    assert!(!b.to_string().contains(A.inbox), "{b}");
}

// ---------------------------------------------------------------------------------------
// 9. Referential tidying.

#[test]
fn deleting_a_list_moves_its_tasks_to_the_inbox() {
    let server = skewless();
    let desktop = fixture(DESKTOP_FULL);
    let a_first = sync_then_settle(&server, &desktop);
    let b_first = sync_then_settle(&server, &fixture(MOBILE_FULL));

    let gone = deleted(A.work, "list", "2026-11-24T23:00:00.000Z");
    let a = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_first)), vec![gone.clone()]),
    );
    assert_eq!(a["conflicts"], json!([]));
    let moved = server_edit(
        find(&a, A.report),
        with(sent(&desktop, A.report), json!({"list_id": A.inbox})),
    );
    assert_eq!(find(&a, A.report), Some(&moved));
    settle();

    // B, which knew the list, gets the move (into its own inbox) and the tombstone.
    let b = server.sync_ok(
        TOKEN,
        &sync_body(B.device, Some(&server_time(&b_first)), vec![]),
    );
    assert_eq!(
        b["changes"],
        json!([with(moved.clone(), json!({"list_id": B.inbox})), gone])
    );

    // C had not heard of the delete and adds a task to the deleted list: it lands in the
    // inbox, and C itself gets the tidied task back.
    let late = task(NEW_TASK, "late", A.work, "2026-11-24T23:30:00Z");
    let c = server.sync_ok(TOKEN, &sync_body(DEVICE_C, None, vec![late.clone()]));
    let late = server_edit(find(&c, NEW_TASK), with(late, json!({"list_id": A.inbox})));
    assert_eq!(find(&c, NEW_TASK), Some(&late));

    let d = everything(&server, DEVICE_D);
    for record in d["changes"].as_array().unwrap() {
        if record["id"] == A.work {
            assert_eq!(record, &gone);
        } else {
            assert!(!record.to_string().contains(A.work), "dangling {record}");
        }
    }
    assert_eq!(find(&d, A.report), Some(&moved));
    assert_eq!(find(&d, NEW_TASK), Some(&late));
}

#[test]
fn deleting_a_tag_removes_it_from_every_task() {
    let server = skewless();
    let b_first = sync_then_settle(&server, &fixture(MOBILE_FULL));
    // A learned B's tag and put it on a task of its own.
    let wrap = with(
        task(
            NEW_TASK,
            "Wrap gift",
            A.inbox,
            "2026-11-24T21:20:00.000000001Z",
        ),
        json!({"tag_ids": [A.tag, B.tag]}),
    );
    let mut desktop = fixture(DESKTOP_FULL);
    desktop["changes"]
        .as_array_mut()
        .unwrap()
        .push(wrap.clone());
    let a_first = sync_then_settle(&server, &desktop);

    // The mobile incremental fixture deletes the tag.
    let mobile = request(MOBILE_INCREMENTAL, Some(&server_time(&b_first)));
    let b = server.sync_ok(TOKEN, &mobile);
    assert_eq!(b["conflicts"], json!([]));
    let stripped = server_edit(
        find(&b, NEW_TASK),
        with(wrap.clone(), json!({"tag_ids": [A.tag]})),
    );
    assert_eq!(
        find(&b, NEW_TASK),
        Some(&with(stripped.clone(), json!({"list_id": B.inbox})))
    );
    settle();

    // A still has the tag on a task and edits it: the server drops the dangling id, and the
    // tidied edit is the server's own newer version.
    let report = with(
        sent(&desktop, A.report),
        json!({"title": "Write the report", "tag_ids": [B.tag, A.tag], "updated_at": "2026-11-24T23:59:00Z"}),
    );
    let a = server.sync_ok(
        TOKEN,
        &sync_body(A.device, Some(&server_time(&a_first)), vec![report.clone()]),
    );
    assert_eq!(
        find(&a, B.tag),
        Some(&sent(&mobile, B.tag)),
        "A receives the tag's tombstone"
    );
    assert_eq!(find(&a, NEW_TASK), Some(&stripped));

    let d = everything(&server, DEVICE_D);
    for record in d["changes"].as_array().unwrap() {
        if record["id"] == B.tag {
            assert_eq!(record, &sent(&mobile, B.tag));
        } else {
            assert!(!record.to_string().contains(B.tag), "dangling {record}");
        }
    }
    // The account inbox is B's (B synced first), and D sent no inbox of its own.
    assert_eq!(find(&d, B.parcel), Some(&sent(&mobile, B.parcel)));
    let tidied = server_edit(
        find(&d, A.report),
        with(report, json!({"tag_ids": [A.tag]})),
    );
    assert_eq!(find(&d, A.report), Some(&tidied));
    assert_eq!(
        find(&d, NEW_TASK),
        Some(&with(stripped, json!({"list_id": B.inbox})))
    );
}

// ---------------------------------------------------------------------------------------
// 10. Nothing lost, nothing mangled; defaults; order.

#[test]
fn unknown_fields_and_timestamps_come_back_byte_for_byte() {
    let server = skewless();
    let mut mobile = fixture(MOBILE_FULL);
    mobile["app_version"] = json!("1.4.2");
    let changes = mobile["changes"].as_array_mut().unwrap();
    changes[0]["sync_version"] = json!(3);
    changes[2]["notes_html"] = json!("<b>x</b>");
    changes[3]["emoji"] = json!("🛒");
    server.sync_ok(TOKEN, &mobile);
    let desktop = fixture(DESKTOP_FULL);
    let work = sent(&desktop, A.work);
    server.sync_ok(TOKEN, &sync_body(A.device, None, vec![work.clone()]));

    let c = everything(&server, DEVICE_C);
    let text = c.to_string();
    for spelling in [
        r#""due_date":"2026-12-03""#.to_owned(),
        r#""updated_at":"2026-11-24T21:12:44.907Z""#.to_owned(),
        r#""created_at":"2026-11-20T07:59:58.001Z""#.to_owned(),
        format!(r#""created_at":"{}""#, work["created_at"].as_str().unwrap()),
    ] {
        assert!(text.contains(&spelling), "{spelling} not in {text}");
    }
    assert_eq!(
        c["changes"],
        in_full_sync_order(&[
            sent(&mobile, B.inbox),
            work,
            sent(&mobile, B.tag),
            sent(&mobile, B.parcel),
            with(
                sent(&mobile, B.passport),
                json!({"tag_ids": [], "completed_at": null})
            ),
        ])
    );
}

#[test]
fn fields_the_desktop_requires_get_defaults_on_the_way_out() {
    let server = skewless();
    let bare_list = json!({
        "type": "list", "id": NEW_LIST, "name": "Errands",
        "created_at": "2026-11-24T21:00:00.000Z", "updated_at": "2026-11-24T21:00:00.000Z"
    });
    let bare_tag = json!({
        "type": "tag", "id": NEW_TAG, "name": "home", "color": "#fab387",
        "created_at": "2026-11-21T10:00:00.000Z"
    });
    let colourless_tag = json!({
        "type": "tag", "id": B.tag, "name": "plain",
        "created_at": "2026-11-21T10:00:00.000Z", "updated_at": "2026-11-22T10:00:00.000Z"
    });
    let bare_task = json!({
        "type": "task", "id": NEW_TASK, "title": "Call mum", "priority": "low",
        "completed": false, "list_id": NEW_LIST,
        "created_at": "2026-11-24T21:00:00.000Z", "updated_at": "2026-11-24T21:00:00.000Z"
    });
    server.sync_ok(
        TOKEN,
        &sync_body(
            B.device,
            None,
            vec![
                bare_list.clone(),
                bare_tag.clone(),
                colourless_tag.clone(),
                bare_task.clone(),
            ],
        ),
    );
    let c = everything(&server, DEVICE_C);
    assert_eq!(
        find(&c, NEW_LIST),
        Some(&with(
            bare_list,
            json!({"description": null, "icon": "📋", "color": null, "is_inbox": false, "sort_order": 0})
        ))
    );
    assert_eq!(
        find(&c, NEW_TAG),
        Some(&with(
            bare_tag,
            json!({"updated_at": "2026-11-21T10:00:00.000Z"})
        ))
    );
    let coloured = find(&c, B.tag).unwrap();
    assert!(coloured["color"].is_string(), "{coloured}");
    assert_eq!(
        coloured,
        &with(colourless_tag, json!({"color": coloured["color"].clone()}))
    );
    assert_eq!(
        find(&c, NEW_TASK),
        Some(&with(
            bare_task,
            json!({"description": null, "url": null, "tag_ids": [], "completed_at": null, "due_date": null})
        ))
    );
}

#[test]
fn records_go_out_lists_tags_tasks_task_tags_then_deleted() {
    let server = skewless();
    let desktop = fixture(DESKTOP_FULL);
    let link = json!({
        "type": "task_tag", "task_id": A.report, "tag_id": A.tag,
        "created_at": sent(&desktop, A.report)["created_at"]
    });
    let tombstone = deleted(NEW_TASK, "task", "2026-11-24T22:50:00Z");
    let scrambled = vec![
        tombstone.clone(),
        link.clone(),
        sent(&desktop, A.report),
        sent(&desktop, A.tag),
        sent(&desktop, A.work),
        sent(&desktop, A.milk),
        sent(&desktop, A.inbox),
    ];
    let a = server.sync_ok(TOKEN, &sync_body(A.device, None, scrambled));
    let c = everything(&server, DEVICE_C);
    let expected = json!([
        sent(&desktop, A.work),
        sent(&desktop, A.inbox),
        sent(&desktop, A.tag),
        sent(&desktop, A.report),
        sent(&desktop, A.milk),
        link,
        tombstone,
    ]);
    assert_eq!(a["changes"], expected);
    assert_eq!(c["changes"], expected);
    assert_eq!(
        types(&c),
        ["list", "list", "tag", "task", "task", "task_tag", "deleted"]
    );
}

// ---------------------------------------------------------------------------------------
// 11. Strict in.

#[test]
fn records_that_would_break_a_client_are_refused_naming_change_and_field() {
    let server = skewless();
    let fine = tag(NEW_TAG, "fine", "2026-11-24T22:45:21Z");
    let base = task(NEW_TASK, "t", A.inbox, "2026-11-24T22:45:21.1Z");
    let without = |field: &str| {
        let mut record = base.clone();
        record.as_object_mut().unwrap().remove(field);
        record
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(base.clone(), json!({"id": &NEW_TASK[..35]})), "id"),
        (
            with(base.clone(), json!({"id": format!("{{{NEW_TASK}}}")})),
            "id",
        ),
        (with(base.clone(), json!({"list_id": "inbox"})), "list_id"),
        (
            with(base.clone(), json!({"tag_ids": [A.tag, "errands"]})),
            "tag_ids[1]",
        ),
        (with(base.clone(), json!({"tag_ids": A.tag})), "tag_ids"),
        (with(base.clone(), json!({"type": "note"})), "type"),
        (
            with(base.clone(), json!({"priority": "critical"})),
            "priority",
        ),
        (with(base.clone(), json!({"priority": "High"})), "priority"),
        (
            with(base.clone(), json!({"created_at": "24/11/2026 22:45"})),
            "created_at",
        ),
        (
            with(base.clone(), json!({"updated_at": "2026-11-24T22:45:21"})),
            "updated_at",
        ),
        (
            with(base.clone(), json!({"updated_at": "2026-11-24"})),
            "updated_at",
        ),
        (
            with(base.clone(), json!({"completed_at": "2026-11-24"})),
            "completed_at",
        ),
        (
            with(base.clone(), json!({"due_date": "2026-12-3"})),
            "due_date",
        ),
        (without("title"), "title"),
        (without("updated_at"), "updated_at"),
        (without("list_id"), "list_id"),
        (without("completed"), "completed"),
        (
            with(base.clone(), json!({"completed": "true"})),
            "completed",
        ),
        (with(base.clone(), json!({"title": 5})), "title"),
        (
            with(base.clone(), json!({"description": ["x"]})),
            "description",
        ),
        (
            with(
                list(NEW_LIST, "L", false, "2026-11-24T22:45:21Z"),
                json!({"sort_order": 1.5}),
            ),
            "sort_order",
        ),
        (
            with(
                list(NEW_LIST, "L", false, "2026-11-24T22:45:21Z"),
                json!({"sort_order": 4_294_967_296_i64}),
            ),
            "sort_order",
        ),
        (
            with(
                list(NEW_LIST, "L", false, "2026-11-24T22:45:21Z"),
                json!({"is_inbox": "yes"}),
            ),
            "is_inbox",
        ),
        (with(fine.clone(), json!({"color": 0xa6e3a1})), "color"),
        (
            deleted(NEW_TASK, "note", "2026-11-24T22:45:21Z"),
            "record_type",
        ),
        (deleted(NEW_TASK, "task", "2026-11-24"), "deleted_at"),
        (
            deleted("Call plumber", "task", "2026-11-24T22:45:21Z"),
            "id",
        ),
        (
            json!({"type": "task_tag", "task_id": NEW_TASK, "tag_id": "x", "created_at": "2026-11-24T22:45:21Z"}),
            "tag_id",
        ),
    ];
    for (record, field) in cases {
        let (status, response) = server.sync(
            TOKEN,
            &sync_body(A.device, None, vec![fine.clone(), record.clone()]),
        );
        assert_eq!(status, 400, "{record} was accepted: {response}");
        let error = response["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("changes[1].{field}: ")),
            "{record}: error {error:?} does not name changes[1].{field}"
        );
        assert_eq!(response.as_object().unwrap().len(), 1, "{response}");
    }
    for (body, field) in [
        (
            json!({"device_id": "laptop", "last_sync": null, "changes": []}),
            "device_id",
        ),
        (json!({"last_sync": null, "changes": []}), "device_id"),
        (
            json!({"device_id": A.device, "last_sync": "yesterday", "changes": []}),
            "last_sync",
        ),
        (
            json!({"device_id": A.device, "last_sync": null, "changes": {}}),
            "changes",
        ),
    ] {
        let (status, response) = server.sync(TOKEN, &body);
        assert_eq!(status, 400, "{body}");
        let error = response["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("{field}: ")),
            "{body}: {error:?}"
        );
    }
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([]));
}

#[test]
fn a_bare_date_is_accepted_in_due_date_and_comes_back_as_sent() {
    let server = skewless();
    let record = with(
        task(NEW_TASK, "t", A.inbox, "2026-11-24T22:45:21.1Z"),
        json!({"due_date": "2026-12-03"}),
    );
    let response = server.sync_ok(TOKEN, &sync_body(A.device, None, vec![record.clone()]));
    assert_eq!(response["changes"], json!([record]));
    assert_eq!(everything(&server, DEVICE_C)["changes"], json!([record]));
}
