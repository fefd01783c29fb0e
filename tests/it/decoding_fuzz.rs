//! Request decoding under random mutation: the request fixtures (desktop-0.5.8 and mobile)
//! are mutated in their structure (fields dropped, duplicated, retyped; huge numbers, deep
//! nesting, odd timestamps and UUIDs, nulls, long text) and in their bytes (truncation,
//! flipped bits, invalid UTF-8), and sent to the real binary over keep-alive connections.
//! Every answer must be 200 with a sync answer, or a 4xx whose JSON `error` names what is
//! wrong; never a 5xx, a connection dropped without an answer, or a panic in the log. What
//! the server accepted must not break anyone's next sync: now and then, and at the end, a
//! desktop client that never synced ([`crate::desktop_model`]) must sync and parse the answer.
//!
//! A run sends [`DEFAULT_CASES`] mutants or stops after [`DEFAULT_SECONDS`], whichever comes
//! first (an accepted mutant costs a durable commit, whose time varies between machines).
//! `FUZZ_SEED=S` repeats a run (the seed is printed), `FUZZ_CASES=N` and `FUZZ_SECONDS=T` set
//! the bounds. A failing mutant is written to a file whose path is printed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::{IndexedMutRandom, IndexedRandom};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::desktop_model::{Clock, Device};
use crate::harness::*;

/// The requests mutated, under tests/fixtures.
const FIXTURES: [&str; 5] = [
    "desktop-0.5.8/full-sync-request.json",
    "desktop-0.5.8/incremental-request.json",
    "desktop-0.5.8/tombstone-request.json",
    "mobile/full-sync-request.json",
    "mobile/incremental-request.json",
];
/// How many mutants a run sends at most unless `FUZZ_CASES` says otherwise.
const DEFAULT_CASES: u64 = 1000;
/// How long a run sends mutants at most unless `FUZZ_SECONDS` says otherwise.
const DEFAULT_SECONDS: u64 = 5;
/// A run that sent fewer mutants than this (on a very slow machine) has tested too little.
const FEWEST_CASES: u64 = 100;
/// A fresh desktop client syncs after every this many mutants.
const CASES_BETWEEN_CLIENT_SYNCS: u64 = 250;

#[test]
fn no_mutated_request_gets_a_5xx_or_breaks_a_later_sync() {
    let seed = env_number("FUZZ_SEED").unwrap_or_else(rand::random::<u64>);
    let cases = env_number("FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let budget = Duration::from_secs(env_number("FUZZ_SECONDS").unwrap_or(DEFAULT_SECONDS));
    println!("decoding fuzz seed: {seed} (FUZZ_SEED={seed} repeats this run)");
    let originals: Vec<Value> = FIXTURES.iter().map(|path| fixture(path)).collect();
    let mut server = Server::start();
    let stderr = server.read_stderr_in_background();
    let mut connection = Connection::new(server.port);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let started = Instant::now();

    let mut sent = 0;
    while sent < cases && started.elapsed() < budget {
        let case = sent;
        sent += 1;
        // Each mutant depends on the seed and its number only, so FUZZ_CASES=case+1 with
        // the same seed ends on it.
        let mut rng = StdRng::seed_from_u64(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let body = mutant(&originals, &mut rng);
        let token = *[TOKEN, TOKEN, TOKEN_2, OTHER_ACCOUNT_TOKEN]
            .choose(&mut rng)
            .expect("tokens");
        let outcome = connection.sync(token, &body);
        match outcome.and_then(|response| judge(&response)) {
            Ok(status) => *statuses.entry(status).or_default() += 1,
            Err(fault) => fail(seed, case, &body, &fault),
        }
        if (case + 1) % CASES_BETWEEN_CLIENT_SYNCS == 0 {
            for token in [TOKEN, OTHER_ACCOUNT_TOKEN] {
                fresh_desktop_syncs(&server, token, &mut rng);
            }
        }
    }
    println!(
        "{sent} mutants in {:?}, answers by status: {statuses:?}",
        started.elapsed()
    );
    assert!(
        sent >= cases.min(FEWEST_CASES),
        "only {sent} mutants were sent"
    );
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "the mutants should be accepted sometimes and refused sometimes: {statuses:?}"
    );

    // A valid sync still works, and what was accepted does not break a new device's sync.
    let desktop = server.sync_ok(TOKEN, &originals[0]);
    assert!(desktop["changes"].is_array(), "{desktop}");
    let mut rng = StdRng::seed_from_u64(seed);
    for token in [TOKEN, OTHER_ACCOUNT_TOKEN] {
        fresh_desktop_syncs(&server, token, &mut rng);
    }
    server.stop_ok();
    let stderr = stderr.join().expect("stderr reader");
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
}

/// `Ok(status)` for a 200 carrying a sync answer or a 4xx carrying `{"error": "..."}` that
/// names what is wrong (a field of the request, its body, or the setting it exceeds);
/// otherwise why not.
fn judge(response: &Response) -> Result<u16, String> {
    let body: Value = serde_json::from_str(&response.body)
        .map_err(|e| format!("{} with a body that is not JSON ({e})", response.status))?;
    match response.status {
        200 if body["changes"].is_array() && body["server_time"].is_string() => Ok(200),
        status @ 400..=499 => {
            let message = body["error"].as_str().unwrap_or_default();
            let names_something = ["changes", "device_id", "last_sync", "body", "JSON", "max_"]
                .iter()
                .any(|name| message.contains(name));
            if names_something {
                Ok(status)
            } else {
                Err(format!(
                    "{status} whose error names nothing at fault: {body}"
                ))
            }
        }
        status => Err(format!("{status}: {body}")),
    }
}

/// Stops the test: says what went wrong, with the mutant written to a file.
fn fail(seed: u64, case: u64, body: &[u8], fault: &str) -> ! {
    let path = std::env::temp_dir().join(format!("tickit-sync-fuzz-{seed}-{case}.json"));
    let saved = match std::fs::write(&path, body) {
        Ok(()) => format!("written to {}", path.display()),
        Err(e) => format!("not written to {} ({e})", path.display()),
    };
    let shown = String::from_utf8_lossy(&body[..body.len().min(2000)]);
    panic!(
        "mutant {case} of seed {seed} (FUZZ_SEED={seed} FUZZ_CASES={} FUZZ_SECONDS=600 \
         ends on it): {fault}\n\
         the request body ({} bytes, {saved}), from the start:\n{shown}",
        case + 1,
        body.len()
    );
}

/// A desktop client that never synced (tickit 0.5.8 as [`crate::desktop_model`] has it)
/// syncs with `token`: the answer must be 200 and parse as the client parses it.
fn fresh_desktop_syncs(server: &Server, token: &str, rng: &mut StdRng) {
    let mut device = Device::new(
        &random_uuid(rng),
        &random_uuid(rng),
        Clock::Offset(jiff::SignedDuration::ZERO),
    );
    let (status, answer) = server.sync(token, &device.sync_request(false));
    assert_eq!(status, 200, "a new device's first sync: {answer}");
    if let Err(e) = device.apply_response(&answer) {
        panic!("a new device cannot parse its first answer: {e}\n{answer}");
    }
}

/// A keep-alive connection to the server, opened again when the server closes it.
struct Connection {
    port: u16,
    stream: Option<std::net::TcpStream>,
}

impl Connection {
    fn new(port: u16) -> Connection {
        Connection { port, stream: None }
    }

    /// Sends one sync and reads its answer. A connection closed without an answer is a
    /// fault: of this request if it fails again on a new connection, otherwise of the
    /// previous answer, which closed the connection without saying `Connection: close`.
    fn sync(&mut self, token: &str, body: &[u8]) -> Result<Response, String> {
        let reused = self.stream.is_some();
        match self.exchange(token, body) {
            Err(Dropped::Closed) if reused => match self.exchange(token, body) {
                Ok(_) => Err("the answer before this one closed the connection without \
                              saying `Connection: close`"
                    .into()),
                Err(dropped) => Err(dropped.to_string()),
            },
            outcome => outcome.map_err(|dropped| dropped.to_string()),
        }
    }

    /// One request and its answer on the open connection, or on a new one.
    fn exchange(&mut self, token: &str, body: &[u8]) -> Result<Response, Dropped> {
        let stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let stream = connect(self.port).map_err(Dropped::Refused)?;
                // Head and body go out in two writes: without this, each request would wait
                // for a delayed acknowledgement.
                stream.set_nodelay(true).map_err(Dropped::Refused)?;
                stream
            }
        };
        let stream = self.stream.insert(stream);
        let head = request_head(
            "POST",
            "/api/v1/sync",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.len(),
        );
        let asked = Instant::now();
        let Some(response) = exchange(stream, &head, body) else {
            self.stream = None;
            return Err(if asked.elapsed() >= WAIT {
                Dropped::TimedOut
            } else {
                Dropped::Closed
            });
        };
        let closing = response
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        if closing {
            self.stream = None;
        }
        Ok(response)
    }
}

/// Why a request got no answer.
enum Dropped {
    Refused(std::io::Error),
    Closed,
    TimedOut,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Refused(e) => write!(f, "cannot connect: {e}"),
            Dropped::Closed => f.write_str("the connection was closed without an answer"),
            Dropped::TimedOut => write!(f, "no whole answer within {WAIT:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mutation.

/// A fixture, mutated: one to four changes to its structure, then maybe one to its bytes.
fn mutant(originals: &[Value], rng: &mut StdRng) -> Vec<u8> {
    let mut document = Document {
        value: originals.choose(rng).expect("fixtures").clone(),
        splices: Vec::new(),
    };
    for _ in 0..rng.random_range(1..=4) {
        document.mutate(originals, rng);
    }
    let mut bytes = document.to_bytes(rng.random_bool(0.5));
    if rng.random_bool(0.25) {
        mutate_bytes(&mut bytes, rng);
    }
    bytes
}

/// A JSON document being mutated, and raw text to splice in where it holds a marker string:
/// what a `Value` cannot hold (huge numbers, invalid UTF-8, a key twice, deep nesting).
struct Document {
    value: Value,
    /// Each marker as it appears quoted in the serialized document, and the bytes to put in
    /// its place.
    splices: Vec<(String, Vec<u8>)>,
}

impl Document {
    /// A marker string that becomes `raw` when the document is serialized.
    fn raw(&mut self, raw: Vec<u8>) -> String {
        let marker = format!("@@raw{}@@", self.splices.len());
        self.splices.push((format!("\"{marker}\""), raw));
        marker
    }

    fn to_bytes(&self, pretty: bool) -> Vec<u8> {
        let mut bytes = if pretty {
            serde_json::to_vec_pretty(&self.value)
        } else {
            serde_json::to_vec(&self.value)
        }
        .expect("a Value serializes");
        for (marker, raw) in &self.splices {
            if let Some(at) = find_bytes(&bytes, marker.as_bytes()) {
                bytes.splice(at..at + marker.len(), raw.iter().copied());
            }
        }
        bytes
    }

    /// One structural change at a random place.
    fn mutate(&mut self, originals: &[Value], rng: &mut StdRng) {
        let mut places = Vec::new();
        pointers(&self.value, "", &mut places);
        let Some(place) = places.choose(rng).cloned() else {
            let odd = odd_value(self, rng);
            self.value = odd;
            return;
        };
        match rng.random_range(0..10) {
            0 => self.remove(&place),
            1 | 2 => {
                let odd = odd_value(self, rng);
                self.set(&place, odd);
            }
            3 => {
                let odd = Value::from(odd_timestamp(rng));
                self.set(&place, odd);
            }
            4 => {
                let odd = Value::from(odd_uuid(rng));
                self.set(&place, odd);
            }
            5 => {
                let marker = self.raw(odd_literal(rng));
                self.set(&place, Value::from(marker));
            }
            6 => self.duplicate_key(&place, rng),
            7 => self.mutate_changes(originals, rng),
            8 => {
                let id = Value::from(random_uuid(rng));
                let field = ["device_id", "id", "list_id", "task_id", "tag_id"]
                    .choose(rng)
                    .expect("fields");
                self.set_field_somewhere(field, id, rng);
            }
            _ => {
                let odd = odd_value(self, rng);
                let field = ["type", "record_type", "priority", "last_sync", "extra"]
                    .choose(rng)
                    .expect("fields");
                self.set_field_somewhere(field, odd, rng);
            }
        }
    }

    fn remove(&mut self, place: &str) {
        let (parent, key) = split_pointer(place);
        match self.value.pointer_mut(parent) {
            Some(Value::Object(map)) => drop(map.remove(&unescape(key))),
            Some(Value::Array(items)) => {
                if let Ok(index) = key.parse::<usize>() {
                    items.remove(index);
                }
            }
            _ => {}
        }
    }

    fn set(&mut self, place: &str, value: Value) {
        if let Some(slot) = self.value.pointer_mut(place) {
            *slot = value;
        }
    }

    /// Sends the key at `place` twice, one of the two with an odd value.
    fn duplicate_key(&mut self, place: &str, rng: &mut StdRng) {
        let (parent, key) = split_pointer(place);
        let key = unescape(key);
        if !matches!(self.value.pointer(parent), Some(Value::Object(_))) {
            return;
        }
        let quoted_key = serde_json::to_vec(&key).expect("a string serializes");
        let marker = self.raw(quoted_key);
        let odd = odd_value(self, rng);
        let Some(Value::Object(map)) = self.value.pointer_mut(parent) else {
            return;
        };
        let original = map.get(&key).cloned().unwrap_or(Value::Null);
        if rng.random_bool(0.5) {
            map.insert(marker, odd);
        } else {
            map.insert(marker, original);
            map.insert(key, odd);
        }
    }

    /// Changes the list of changes as a whole: a record twice, one from another fixture,
    /// dozens of copies under new ids, its order, or a record's kind.
    fn mutate_changes(&mut self, originals: &[Value], rng: &mut StdRng) {
        let borrowed = originals.choose(rng).expect("fixtures")["changes"]
            .as_array()
            .and_then(|changes| changes.choose(rng).cloned());
        let Some(changes) = self.value.get_mut("changes").and_then(Value::as_array_mut) else {
            return;
        };
        let chosen = changes.choose(rng).cloned();
        match rng.random_range(0..5) {
            0 => changes.extend(chosen),
            1 => changes.extend(borrowed),
            2 => {
                let Some(record) = chosen else { return };
                for _ in 0..rng.random_range(10..=100) {
                    let mut copy = record.clone();
                    if copy.get("id").is_some() {
                        copy["id"] = Value::from(random_uuid(rng));
                    }
                    changes.push(copy);
                }
            }
            3 => changes.reverse(),
            _ => {
                let kind = ["task", "list", "tag", "task_tag", "deleted", "note", ""]
                    .choose(rng)
                    .expect("kinds");
                if let Some(Value::Object(record)) = changes.choose_mut(rng) {
                    record.insert("type".into(), Value::from(*kind));
                }
            }
        }
    }

    /// Sets `field` on the top level or on one of the changes.
    fn set_field_somewhere(&mut self, field: &str, value: Value, rng: &mut StdRng) {
        let record_count = self.value["changes"].as_array().map_or(0, Vec::len);
        let target = match rng.random_range(0..=record_count) {
            0 => self.value.as_object_mut(),
            n => self.value["changes"][n - 1].as_object_mut(),
        };
        if let Some(object) = target {
            object.insert(field.into(), value);
        }
    }
}

/// The JSON pointer of every value inside `value`, `at` being its own.
fn pointers(value: &Value, at: &str, into: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, child)| (key.replace('~', "~0").replace('/', "~1"), child))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| (index.to_string(), child))
            .collect(),
        _ => Vec::new(),
    };
    for (step, child) in children {
        let pointer = format!("{at}/{step}");
        pointers(child, &pointer, into);
        into.push(pointer);
    }
}

/// A pointer's parent and last step.
fn split_pointer(pointer: &str) -> (&str, &str) {
    pointer.rsplit_once('/').unwrap_or(("", pointer))
}

fn unescape(step: &str) -> String {
    step.replace("~1", "/").replace("~0", "~")
}

/// A value of a random type, or the wrong one of the right type: nulls, numbers at the
/// edges, empty, long and strange text, empty and nested containers, another field's value.
fn odd_value(document: &Document, rng: &mut StdRng) -> Value {
    let long = |unit: &str, bytes: usize| Value::from(unit.repeat(bytes / unit.len()));
    match rng.random_range(0..24) {
        0 | 1 => Value::Null,
        2 => Value::from(rng.random_bool(0.5)),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(i64::MIN),
        6 => json!(i64::MAX),
        7 => json!(u64::MAX),
        8 => json!(0.5),
        9 => json!(-0.0),
        10 => json!(1e308),
        11 => json!(""),
        12 => json!(" "),
        13 => {
            let words = ["medium", "low", "high", "urgent", "task", "list", "deleted"];
            Value::from(*words.choose(rng).expect("words"))
        }
        14 => long("a", 64 * 1024),
        15 => long("é", 64 * 1024 + 2),
        16 => long("🦀", rng.random_range(1..40_000)),
        17 => json!("\u{0}\u{1f}\u{7f}\u{202e}\u{feff}e\u{301}"),
        18 => json!([]),
        19 => json!({}),
        20 => json!([null, 1, "a", [], {}]),
        21 => json!({"": null, "type": "task", "id": []}),
        22 => Value::from(odd_timestamp(rng)),
        _ => {
            let mut places = Vec::new();
            pointers(&document.value, "", &mut places);
            places
                .choose(rng)
                .and_then(|place| document.value.pointer(place))
                .cloned()
                .unwrap_or(Value::Null)
        }
    }
}

/// Text that looks like a timestamp or a date, at the edges of what is valid or past them.
fn odd_timestamp(rng: &mut StdRng) -> String {
    const FIXED: [&str; 24] = [
        "2300-01-01",
        "2300-01-01T00:00:00Z",
        "1600-01-01T00:00:00Z",
        "1677-09-21T00:12:43.145224191Z",
        "2262-04-11T23:47:16.854775808Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        "9999-12-31T23:59:59.999999999-23:59",
        "0001-01-01T00:00:00+23:59",
        "-001000-01-01T00:00:00Z",
        "+010000-01-01T00:00:00Z",
        "2026-02-30",
        "2026-02-29T00:00:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T23:59:60Z",
        "2026-11-24T22:45:21.1234567891Z",
        "2026-11-24T22:45:21.Z",
        "2026-11-24 22:45:21Z",
        "2026-11-24t22:45:21z",
        "2026-11-24T22:45:21+24:00",
        "2026-11-24T22:45:21",
        "1732488321",
        "now",
        "",
    ];
    if rng.random_bool(0.5) {
        return FIXED.choose(rng).expect("timestamps").to_string();
    }
    let fraction = match rng.random_range(0..=12) {
        0 => String::new(),
        digits => format!(".{}", "7".repeat(digits)),
    };
    let offset = match rng.random_range(0..4) {
        0 => "Z".to_owned(),
        1 => format!(
            "+{:02}:{:02}",
            rng.random_range(0..30),
            rng.random_range(0..70)
        ),
        2 => format!(
            "-{:02}:{:02}",
            rng.random_range(0..30),
            rng.random_range(0..70)
        ),
        _ => String::new(),
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}{offset}",
        rng.random_range(0..=9999),
        rng.random_range(0..=13),
        rng.random_range(0..=32),
        rng.random_range(0..=25),
        rng.random_range(0..=61),
        rng.random_range(0..=61),
    )
}

/// Text that is almost a UUID, or one in a spelling clients do not write.
fn odd_uuid(rng: &mut StdRng) -> String {
    let valid = random_uuid(rng);
    match rng.random_range(0..12) {
        0 => valid.to_uppercase(),
        1 => format!("{{{valid}}}"),
        2 => format!("urn:uuid:{valid}"),
        3 => valid.replace('-', ""),
        4 => format!(" {valid}"),
        5 => format!("{valid}\n"),
        6 => "00000000-0000-0000-0000-000000000000".into(),
        7 => "ffffffff-ffff-ffff-ffff-ffffffffffff".into(),
        8 => valid[..35].to_owned(),
        9 => valid.replacen(char::is_alphanumeric, "g", 1),
        10 => valid.replacen('-', "\u{2010}", 1),
        _ => "not-a-uuid".into(),
    }
}

/// JSON text a `Value` cannot hold, valid or not: numbers past every integer type,
/// malformed numbers, strings with invalid UTF-8 or lone surrogates, deep nesting.
fn odd_literal(rng: &mut StdRng) -> Vec<u8> {
    const FIXED: [&[u8]; 22] = [
        b"123456789012345678901234567890",
        b"-9223372036854775809",
        b"9223372036854775808",
        b"18446744073709551616",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"-0",
        b"01",
        b"+1",
        b"1.",
        b"NaN",
        b"Infinity",
        b"\"\xff\xfe\"",
        b"\"\xc0\x80\"",
        b"\"\xed\xa0\x80\"",
        b"\"\\ud800\"",
        b"\"\\udc00\\ud800\"",
        b"\"\\ud83e\\udd80\"",
        b"\"\\u0000\"",
        b"\"\x01\t\"",
        b"\"\\x41\"",
    ];
    if rng.random_bool(0.6) {
        return FIXED.choose(rng).expect("literals").to_vec();
    }
    let depth = *[2, 64, 127, 128, 129, 1000, 100_000]
        .choose(rng)
        .expect("depths");
    if rng.random_bool(0.5) {
        [&b"[".repeat(depth)[..], &b"]".repeat(depth)[..]].concat()
    } else {
        [
            &br#"{"a":"#.repeat(depth)[..],
            b"1",
            &b"}".repeat(depth)[..],
        ]
        .concat()
    }
}

/// One change to the bytes: cut short, bits flipped, bytes inserted, dropped or repeated, or
/// junk around the document.
fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut StdRng) {
    const JUNK: [&[u8]; 8] = [
        b"\xef\xbb\xbf",
        b"\x00",
        b"\xff",
        b"}",
        b",",
        b"{}",
        b" \r\n\t",
        b"\xed\xa0\x80",
    ];
    let len = bytes.len();
    let at = rng.random_range(0..=len);
    match rng.random_range(0..6) {
        0 => bytes.truncate(at),
        1 => {
            for _ in 0..rng.random_range(1..=4) {
                if let Some(byte) = bytes.get_mut(rng.random_range(0..len.max(1))) {
                    *byte ^= 1 << rng.random_range(0..8);
                }
            }
        }
        2 => {
            let junk = JUNK.choose(rng).expect("junk");
            bytes.splice(at..at, junk.iter().copied());
        }
        3 => {
            let end = (at + rng.random_range(1..=64)).min(len);
            bytes.drain(at..end);
        }
        4 => {
            let end = (at + rng.random_range(1..=64)).min(len);
            let repeated = bytes[at..end].to_vec();
            bytes.splice(at..at, repeated);
        }
        _ => {
            let junk = JUNK.choose(rng).expect("junk");
            if rng.random_bool(0.5) {
                bytes.splice(0..0, junk.iter().copied());
            } else {
                bytes.extend_from_slice(junk);
            }
        }
    }
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn random_uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// A whole number from the environment variable `name`, if it is set.
fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|e| panic!("{name}={text:?} is not a whole number: {e}")),
    )
}
