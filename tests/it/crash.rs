//! The crash test: devices of two accounts sync at once while the server is killed with
//! SIGKILL at random moments and restarted on the same database. Every sync the server
//! answered with 200 must survive with its exact fields, every request must be applied whole
//! or not at all, the next sync must work, and SQLite must find the file intact after each
//! kill. `CRASH_SEED` repeats a run (the seed is printed).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::harness::*;

/// How many times the server is killed.
const KILLS: u32 = 12;
/// A kill lands this long at most after syncs are seen succeeding again, at a random moment.
const KILL_WINDOW_MILLIS: u64 = 200;
/// How many syncs the devices must have had answered since the last restart before the next
/// kill, so that each kill lands among syncs in flight.
const ANSWERS_BETWEEN_KILLS: usize = 3;
/// The database file, named in the test's config.
const DATABASE: &str = "crash.sqlite";
/// The devices that sync concurrently: two people on one account, two devices on another.
const DEVICES: [(&str, &str); 4] = [
    (TOKEN, DEVICE_A),
    (TOKEN_2, DEVICE_B),
    (OTHER_ACCOUNT_TOKEN, DEVICE_C),
    (OTHER_ACCOUNT_TOKEN, DEVICE_D),
];
/// A device that never synced, which reads back everything an account holds.
const FRESH_DEVICE: &str = "f0e1d2c3-b4a5-4968-8776-655443322110";

#[test]
fn every_answered_sync_survives_kill_9_at_random_moments() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .map(|text| text.parse().expect("CRASH_SEED is a whole number"))
        .unwrap_or_else(rand::random::<u64>);
    println!("crash test seed: {seed} (CRASH_SEED={seed} repeats this run)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let config = config_with(&format!("[database]\npath = \"{DATABASE}\""));
    let mut server = Server::start_with_config(&config);
    let mut logs = vec![server.read_stderr_in_background()];
    let target = Arc::new(Target::new(server.port));
    let devices: Vec<JoinHandle<Vec<Request>>> = DEVICES
        .iter()
        .zip(0u64..)
        .map(|(&(token, id), number)| {
            let device = Device::new(token, id, number, seed);
            let target = Arc::clone(&target);
            thread::spawn(move || device.run(&target))
        })
        .collect();

    for _ in 0..KILLS {
        target.wait_for_answers(ANSWERS_BETWEEN_KILLS);
        thread::sleep(Duration::from_millis(
            rng.random_range(0..=KILL_WINDOW_MILLIS),
        ));
        server.signal("KILL");
        target.set_down();
        let (status, _) = server.wait_exit();
        assert_eq!(
            status.signal(),
            Some(9),
            "the server was not killed: {status:?}"
        );
        let dir = server.into_dir();
        assert_intact(&dir.path().join(DATABASE));
        server = Server::start_in(dir, &[], &[]);
        logs.push(server.read_stderr_in_background());
        target.set_up(server.port);
    }
    target.wait_for_answers(ANSWERS_BETWEEN_KILLS);
    target.stop();
    let mut requests: Vec<Request> = devices
        .into_iter()
        .flat_map(|device| device.join().expect("a device failed; see its panic above"))
        .collect();

    let mut held_by_token = HashMap::new();
    for request in &mut requests {
        let held = held_by_token
            .entry(request.token)
            .or_insert_with(|| everything_of(&server, request.token));
        request.check_against(held);
    }
    let answered = requests.iter().filter(|request| request.answered).count();
    let applied_unanswered = requests
        .iter()
        .filter(|request| !request.answered && request.applied)
        .count();
    println!(
        "{} requests, {answered} answered, {applied_unanswered} applied but cut off by a kill, \
         {KILLS} kills in {:?}",
        requests.len(),
        started.elapsed()
    );
    assert!(answered >= KILLS as usize * ANSWERS_BETWEEN_KILLS);

    server.stop_ok();
    let dir = server.into_dir();
    assert_intact(&dir.path().join(DATABASE));
    for log in logs {
        let stderr = log.join().expect("stderr reader");
        assert!(
            !stderr.contains("panicked"),
            "the server panicked:\n{stderr}"
        );
    }
}

/// The server as the devices see it: where it listens, or that it is down; and how many of
/// their syncs it has answered.
struct Target {
    state: Mutex<TargetState>,
    changed: Condvar,
}

struct TargetState {
    /// The port of the running server; `None` while it is down.
    port: Option<u16>,
    /// How many times the server has been started again.
    restarts: u32,
    /// How many syncs have been answered since the server last started.
    answers: usize,
    /// Set when the devices are to stop.
    stop: bool,
}

impl Target {
    fn new(port: u16) -> Target {
        Target {
            state: Mutex::new(TargetState {
                port: Some(port),
                restarts: 0,
                answers: 0,
                stop: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn set_down(&self) {
        self.update(|state| state.port = None);
    }

    fn set_up(&self, port: u16) {
        self.update(|state| {
            state.port = Some(port);
            state.restarts += 1;
            state.answers = 0;
        });
    }

    fn stop(&self) {
        self.update(|state| state.stop = true);
    }

    fn count_answer(&self) {
        self.update(|state| state.answers += 1);
    }

    fn update(&self, change: impl FnOnce(&mut TargetState)) {
        change(&mut self.state.lock().expect("target lock"));
        self.changed.notify_all();
    }

    /// Waits until the server started last has answered `count` syncs.
    fn wait_for_answers(&self, count: usize) {
        drop(self.wait_until(|state| state.answers >= count));
    }

    /// Waits until the server is up after `restarts` restarts or more; returns its port and
    /// restart count, or `None` once the devices are to stop.
    fn up_after(&self, restarts: u32) -> Option<(u16, u32)> {
        let state = self
            .wait_until(|state| state.stop || (state.port.is_some() && state.restarts >= restarts));
        if state.stop {
            return None;
        }
        state.port.map(|port| (port, state.restarts))
    }

    fn wait_until(&self, condition: impl Fn(&TargetState) -> bool) -> MutexGuard<'_, TargetState> {
        let state = self.state.lock().expect("target lock");
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, WAIT, |state| !condition(state))
            .expect("target lock");
        assert!(
            !timeout.timed_out(),
            "nothing happened within {WAIT:?}: port {:?}, {} restarts, {} answers",
            state.port,
            state.restarts,
            state.answers
        );
        state
    }
}

/// One device syncing as fast as it is answered, each sync carrying new tasks.
struct Device {
    token: &'static str,
    id: &'static str,
    /// Tells this device's tasks apart from the others' in their ids.
    number: u64,
    rng: StdRng,
    /// The list its tasks go in (a list no device sent: the server keeps the id as it is).
    list: String,
    tasks_made: u64,
}

/// A sync a device sent and what came of it.
struct Request {
    token: &'static str,
    tasks: Vec<Value>,
    /// Whether the server answered it with 200.
    answered: bool,
    /// Whether its tasks were found afterwards (set by `check_against`).
    applied: bool,
}

impl Device {
    fn new(token: &'static str, id: &'static str, number: u64, seed: u64) -> Device {
        Device {
            token,
            id,
            number,
            rng: StdRng::seed_from_u64(seed.wrapping_add(number + 1)),
            list: uuid(number, 0xffff, 0),
            tasks_made: 0,
        }
    }

    /// Syncs until told to stop; returns every request it sent.
    fn run(mut self, target: &Target) -> Vec<Request> {
        let mut requests = Vec::new();
        let mut last_sync: Option<String> = None;
        let mut restarts = 0;
        while let Some((port, serving)) = target.up_after(restarts) {
            let tasks = self.new_tasks();
            let body = sync_body(self.id, last_sync.as_deref(), tasks.clone());
            let response = sync_once(port, self.token, &body);
            let answered = response.is_some();
            if let Some(response) = response {
                assert_eq!(response.status, 200, "{}: {}", self.id, response.body);
                let answer = response.json();
                assert!(answer["changes"].is_array(), "{}: {answer}", self.id);
                let server_time = answer["server_time"].as_str().expect("server_time");
                last_sync = Some(server_time.to_owned());
                target.count_answer();
                restarts = serving;
            } else {
                restarts = serving + 1;
            }
            requests.push(Request {
                token: self.token,
                tasks,
                answered,
                applied: false,
            });
        }
        requests
    }

    /// A few new tasks, now and then a couple of hundred, so that some commits take a while.
    fn new_tasks(&mut self) -> Vec<Value> {
        let count = if self.rng.random_bool(0.1) {
            self.rng.random_range(50..=200)
        } else {
            self.rng.random_range(1..=5)
        };
        (0..count)
            .map(|_| {
                self.tasks_made += 1;
                let id = uuid(self.number, 0, self.tasks_made);
                let now = jiff::Timestamp::now().to_string();
                let mut task = task(&id, &format!("task {}", self.tasks_made), &self.list, &now);
                task["description"] = json!(format!("from {} ✓", self.id));
                task["due_date"] = json!("2026-12-03");
                task
            })
            .collect()
    }
}

impl Request {
    /// Checks the request against `held` (an account's records by id): an answered request
    /// is there whole with the exact fields sent; an unanswered one is there whole or not at
    /// all.
    fn check_against(&mut self, held: &HashMap<String, Value>) {
        let present: Vec<&Value> = self
            .tasks
            .iter()
            .filter(|task| held.contains_key(task["id"].as_str().expect("id")))
            .collect();
        self.applied = present.len() == self.tasks.len();
        assert!(
            self.applied || present.is_empty() && !self.answered,
            "{} of the {} tasks of a request (answered: {}) are held, first one {}",
            present.len(),
            self.tasks.len(),
            self.answered,
            self.tasks[0]
        );
        for task in present {
            assert_eq!(&held[task["id"].as_str().expect("id")], task);
        }
    }
}

/// One sync on a connection of its own; `None` if the server was gone before it answered
/// whole.
fn sync_once(port: u16, token: &str, body: &Value) -> Option<Response> {
    let mut stream = connect(port).ok()?;
    let body = body.to_string();
    let head = request_head(
        "POST",
        "/api/v1/sync",
        &[
            ("Connection", "close"),
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        body.len(),
    );
    exchange(&mut stream, &head, body.as_bytes())
}

/// What the account of `token` holds, as a device that never synced receives it, by id.
fn everything_of(server: &Server, token: &str) -> HashMap<String, Value> {
    let answer = server.sync_ok(token, &sync_body(FRESH_DEVICE, None, vec![]));
    assert_eq!(answer["conflicts"], json!([]));
    answer["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|record| {
            (
                record["id"].as_str().expect("id").to_owned(),
                record.clone(),
            )
        })
        .collect()
}

/// A made-up UUID whose parts say whose it is.
fn uuid(device: u64, kind: u64, serial: u64) -> String {
    format!("{device:08x}-{kind:04x}-4000-8000-{serial:012x}")
}

/// `PRAGMA integrity_check` says `ok`, read without changing the file (no checkpoint), so the
/// next start recovers from the crash by itself.
fn assert_intact(database: &Path) {
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", database.display()));
    let verdict: Vec<String> = connection
        .prepare("PRAGMA integrity_check")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .unwrap_or_else(|e| panic!("integrity_check on {}: {e}", database.display()));
    assert_eq!(verdict, ["ok"], "{}", database.display());
}
