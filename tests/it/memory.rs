//! Memory under hostile load: while the server takes one, then four concurrent, sync
//! bodies of about 30 MB (valid ones, within the default limits, with valid tokens), it
//! stays under 128 MB resident, and once their connections have closed it returns to
//! within 10 MB of its idle size. Read from the server's /proc/PID/status (Linux).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// The most the server may ever hold resident, in bytes.
const PEAK_LIMIT: u64 = 128_000_000;
/// How far above its idle size the server may stay once the load has gone, in bytes.
const SETTLED_LIMIT: u64 = 10_000_000;
/// The size of each hostile body, in bytes: the config raises `max_body_bytes` to 32 MiB (the
/// default is 8 MiB) to show that even then memory stays bounded.
const BODY_BYTES: usize = 30_000_000;
/// How many tasks each body carries; their descriptions fill it up to [`BODY_BYTES`].
const TASKS_PER_BODY: usize = 3_000;
/// A `last_sync`, so that an answer holds only what other devices changed.
const LAST_SYNC: &str = "2026-11-24T22:00:00Z";

/// One token per account, so each body's answer holds none of the others' tasks.
const TOKENS: [&str; 4] = [
    "tks_memory_test_account_0",
    "tks_memory_test_account_1",
    "tks_memory_test_account_2",
    "tks_memory_test_account_3",
];

#[test]
fn large_bodies_stay_under_128_mb_and_memory_returns_after() {
    let server = Server::start_with_config(&config());
    let pid = server.pid();
    // Idle as a server that has served syncs: its database caches are part of that size.
    for token in TOKENS {
        server.sync_ok(
            token,
            &sync_body(DEVICE_B, Some(LAST_SYNC), tasks(300, 2_000, 0xffff)),
        );
        server.sync_ok(token, &sync_body(DEVICE_C, None, vec![]));
    }
    let idle = status_bytes(pid, "VmRSS");

    let first = large_body(0);
    assert_eq!(post_until_taken(server.port, TOKENS[0], &first), 200);
    assert_bounded_and_returned(pid, idle, "one body");

    // The body budget (`max_bodies_in_flight_bytes`, 32 MiB) lets one of these in at a time.
    let next = Arc::new(large_body(1));
    let port = server.port;
    let senders: Vec<_> = TOKENS
        .into_iter()
        .map(|token| {
            let body = Arc::clone(&next);
            std::thread::spawn(move || post_until_taken(port, token, &body))
        })
        .collect();
    for sender in senders {
        assert_eq!(sender.join().expect("sender thread"), 200);
    }
    assert_bounded_and_returned(pid, idle, "four bodies at once");
}

/// Asserts that the server's peak resident size so far is under [`PEAK_LIMIT`], and that it
/// comes back to within [`SETTLED_LIMIT`] of `idle` now that `load` is over.
fn assert_bounded_and_returned(pid: u32, idle: u64, load: &str) {
    let peak = status_bytes(pid, "VmHWM");
    let after = settled_rss(pid, idle);
    eprintln!(
        "{load}: idle {} MB, peak {} MB, after {} MB",
        mb(idle),
        mb(peak),
        mb(after)
    );
    assert!(peak < PEAK_LIMIT, "{load}: peak {} MB", mb(peak));
    assert!(
        after <= idle + SETTLED_LIMIT,
        "{load}: {} MB resident after, {} MB idle before",
        mb(after),
        mb(idle)
    );
}

/// A config with bodies of up to 32 MiB, one at a time, and one token in each of four
/// accounts.
fn config() -> String {
    let limits = "[server]\nmax_body_bytes = 33554432\nmax_bodies_in_flight_bytes = 33554432\n\n";
    let tokens: String = TOKENS
        .iter()
        .enumerate()
        .map(|(n, token)| {
            format!("[[tokens]]\nname = \"device{n}\"\ntoken = \"{token}\"\naccount = \"a{n}\"\n\n")
        })
        .collect();
    format!("{limits}{tokens}")
}

/// A valid sync body of about [`BODY_BYTES`]: [`TASKS_PER_BODY`] tasks with long
/// descriptions (well within `max_text_bytes`), their ids unique to `batch`.
fn large_body(batch: u16) -> Vec<u8> {
    let description_bytes = BODY_BYTES / TASKS_PER_BODY - 330;
    let tasks = tasks(TASKS_PER_BODY, description_bytes, batch);
    let body = sync_body(DEVICE_A, Some(LAST_SYNC), tasks).to_string();
    assert!(
        body.len().abs_diff(BODY_BYTES) < BODY_BYTES / 100,
        "{}",
        body.len()
    );
    body.into_bytes()
}

/// `count` tasks with descriptions of `description_bytes`, their ids unique to `batch`.
fn tasks(count: usize, description_bytes: usize, batch: u16) -> Vec<Value> {
    let description = "d".repeat(description_bytes);
    (0..count)
        .map(|n| {
            let id = format!("{n:08x}-{batch:04x}-4000-8000-000000000000");
            let mut record = task(&id, "A task", NEW_LIST, "2026-11-24T22:45:21.000000001Z");
            record["description"] = description.as_str().into();
            record
        })
        .collect()
}

/// POSTs `body` until the server takes it and returns its status. While the bodies in
/// flight use up its budget the server may answer 503 with `Retry-After`, or close the
/// connection before reading the whole body: the client then waits as told and tries again.
fn post_until_taken(port: u16, token: &str, body: &[u8]) -> u16 {
    let authorization = format!("Bearer {token}");
    let headers = [("Connection", "close"), ("Authorization", &authorization)];
    let head = request_head("POST", "/api/v1/sync", &headers, body.len());
    let deadline = Instant::now() + WAIT;
    loop {
        let response = connect(port)
            .ok()
            .and_then(|mut stream| exchange(&mut stream, &head, body));
        let retry_after = match &response {
            Some(response) if response.status != 503 => return response.status,
            Some(busy) => busy
                .header("retry-after")
                .and_then(|seconds| seconds.parse().ok())
                .map_or(Duration::from_millis(100), Duration::from_secs),
            None => Duration::from_millis(100),
        };
        assert!(
            Instant::now() + retry_after < deadline,
            "the server did not take the body within {WAIT:?}"
        );
        std::thread::sleep(retry_after);
    }
}

/// The resident size once it has come back to within [`SETTLED_LIMIT`] of `idle`, or as it
/// is after a few seconds of waiting for that.
fn settled_rss(pid: u32, idle: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rss = status_bytes(pid, "VmRSS");
        if rss <= idle + SETTLED_LIMIT || Instant::now() > deadline {
            return rss;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A size field of /proc/PID/status (`VmRSS`, `VmHWM`), in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix(" kB")?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in {path}"))
}

fn mb(bytes: u64) -> u64 {
    bytes / 1_000_000
}
