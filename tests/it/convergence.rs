//! Randomized convergence against the real server. Seeded random sequences of edits and
//! syncs run on model desktop devices ([`crate::desktop_model`], checked against the real
//! client by `desktop_replay`); then every device syncs, round after round, until a round
//! changes nothing. Every sync must get a 200 the device can parse, and in the end every
//! device must hold the same tasks, lists and tags, no task may point at a missing list or
//! tag, and what they hold must be what the [`oracle`] says: the latest edit in real time
//! wins.
//!
//! Two scenarios, each over the same seeds:
//! - correct clocks: three devices whose clocks are right, syncing in random order;
//! - skewed clocks: devices an hour fast, a day fast, a few milliseconds slow, and right.
//!   The server counts a fast device's edit as made when it arrives, so the fast devices
//!   sync right after each of their edits; it counts a slow device's edit at the device's
//!   clock, so edits are made further apart in real time than that device lags.
//!
//! `cargo test --test it convergence` runs [`CI_SEEDS`] seeds of each scenario;
//! `CONVERGENCE_SEEDS=N` runs seeds 0..N and `CONVERGENCE_SEED=S` only seed S. A failing
//! seed prints its seed, the log of its edits and syncs, and what diverged;
//! `CONVERGENCE_BODIES=1` adds every request and response to the log.

mod edits;
mod oracle;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use jiff::SignedDuration;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::desktop_model::{Action, Clock, Device, short};
use crate::harness::{Server, TOKEN, TOKEN_2};
use edits::{Names, new_id, random_edit};
use oracle::{Key, Oracle, View, changes, view};

/// Seeds of each scenario that `cargo test` runs.
const CI_SEEDS: u64 = 20;
/// Edits and syncs in one run, before the devices are made to converge.
const STEPS: usize = 60;
/// How often a device that syncs at random syncs instead of editing.
const SYNC_PROBABILITY: f64 = 0.3;
/// How many rounds of everyone syncing may pass before the devices hold still.
const MAX_ROUNDS: usize = 6;
/// How far the slow device's clock runs behind.
const SLOW_LAG: Duration = Duration::from_millis(3);
/// The real time between two edits in the skewed scenario: more than the slow lag.
const SKEWED_EDIT_SPACING: Duration = Duration::from_millis(5);
/// How many failing seeds are printed in full (the rest are listed).
const REPORTED_IN_FULL: usize = 3;

#[test]
fn correct_clocks() {
    run_scenario(Scenario::CorrectClocks);
}

#[test]
fn skewed_clocks() {
    run_scenario(Scenario::SkewedClocks);
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    CorrectClocks,
    SkewedClocks,
}

/// How one device of a scenario keeps time and when it syncs.
#[derive(Clone, Copy)]
struct Setup {
    /// How far its clock is off (positive: fast).
    clock: SignedDuration,
    /// Syncs right after each of its edits, instead of at random.
    syncs_after_each_edit: bool,
}

impl Scenario {
    /// The test function that runs it.
    fn test_name(self) -> &'static str {
        match self {
            Scenario::CorrectClocks => "convergence::correct_clocks",
            Scenario::SkewedClocks => "convergence::skewed_clocks",
        }
    }

    fn devices(self) -> Vec<Setup> {
        let at_random = |clock| Setup {
            clock,
            syncs_after_each_edit: false,
        };
        let after_each_edit = |clock| Setup {
            clock,
            syncs_after_each_edit: true,
        };
        match self {
            Scenario::CorrectClocks => vec![at_random(SignedDuration::ZERO); 4],
            Scenario::SkewedClocks => vec![
                after_each_edit(SignedDuration::from_hours(1)),
                after_each_edit(SignedDuration::from_hours(24)),
                at_random(-SignedDuration::try_from(SLOW_LAG).expect("a few ms")),
                at_random(SignedDuration::ZERO),
            ],
        }
    }

    /// The real time to leave before each edit.
    fn edit_spacing(self) -> Duration {
        match self {
            Scenario::CorrectClocks => Duration::ZERO,
            Scenario::SkewedClocks => SKEWED_EDIT_SPACING,
        }
    }
}

/// Runs the chosen seeds of `scenario`; fails listing every seed that went wrong, after
/// printing the first few in full.
fn run_scenario(scenario: Scenario) {
    let seeds = seeds_to_run();
    let reports: Vec<Report> = seeds
        .iter()
        .filter_map(|&seed| run_seed(scenario, seed))
        .collect();
    if reports.is_empty() {
        return;
    }
    for report in reports.iter().take(REPORTED_IN_FULL) {
        eprintln!("{report}");
    }
    let mut kinds: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for report in &reports {
        for kind in report.failure.kinds() {
            kinds.entry(kind).or_default().push(report.seed);
        }
    }
    let summary: Vec<String> = kinds
        .iter()
        .map(|(kind, seeds)| format!("  {kind}: seeds {seeds:?}"))
        .collect();
    panic!(
        "{scenario:?}: {} of {} seeds went wrong (the first {} are printed above in full):\n{}",
        reports.len(),
        seeds.len(),
        REPORTED_IN_FULL.min(reports.len()),
        summary.join("\n")
    );
}

/// `CONVERGENCE_SEED=S`: S alone; `CONVERGENCE_SEEDS=N`: 0..N; otherwise 0..[`CI_SEEDS`].
fn seeds_to_run() -> Vec<u64> {
    let number = |name: &str| {
        std::env::var(name).ok().map(|value| {
            value
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{name}={value:?} is not a number: {e}"))
        })
    };
    match (number("CONVERGENCE_SEED"), number("CONVERGENCE_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (0..count).collect(),
        (None, None) => (0..CI_SEEDS).collect(),
    }
}

/// One seed of one scenario, on a fresh server; the report, if it went wrong.
fn run_seed(scenario: Scenario, seed: u64) -> Option<Report> {
    let mut run = Run::new(scenario, seed);
    let failure = run.play().err()?;
    Some(Report {
        scenario,
        seed,
        devices: run.peers.iter().map(|peer| peer.label.clone()).collect(),
        log: run.log,
        failure,
    })
}

/// A run in progress: the server, the devices, and what the oracle expects so far.
struct Run {
    scenario: Scenario,
    rng: StdRng,
    server: Server,
    peers: Vec<Peer>,
    /// Every device's inbox id: all of them are the one inbox.
    inboxes: BTreeSet<String>,
    oracle: Oracle,
    names: Names,
    /// Edits made so far: the time of an edit, in real-time order.
    edits: u64,
    log: Vec<String>,
}

/// One device of a run and what the oracle needs to know about it.
struct Peer {
    /// Its letter and clock, for the log.
    label: String,
    device: Device,
    token: &'static str,
    syncs_after_each_edit: bool,
    /// What it held right after its previous sync.
    held: View,
    /// The records it edited since its previous sync, with the time of its latest edit.
    edited: BTreeMap<Key, u64>,
}

impl Run {
    /// A fresh server and the scenario's devices, each with its own inbox, never synced.
    fn new(scenario: Scenario, seed: u64) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut peers = Vec::new();
        let mut inboxes = BTreeSet::new();
        for (index, setup) in scenario.devices().into_iter().enumerate() {
            let inbox = new_id(&mut rng);
            let device = Device::new(&new_id(&mut rng), &inbox, Clock::Offset(setup.clock));
            inboxes.insert(inbox);
            let letter = char::from(b'A' + u8::try_from(index).expect("a few devices"));
            let when = if setup.syncs_after_each_edit {
                ", syncs after each edit"
            } else {
                ""
            };
            peers.push(Peer {
                label: format!("{letter} (clock {}{when})", clock_offset(setup.clock)),
                device,
                token: if index % 2 == 0 { TOKEN } else { TOKEN_2 },
                syncs_after_each_edit: setup.syncs_after_each_edit,
                held: View::new(),
                edited: BTreeMap::new(),
            });
        }
        for peer in &mut peers {
            peer.held = view(&peer.device, &inboxes);
        }
        Run {
            scenario,
            rng,
            server: Server::start(),
            peers,
            inboxes,
            oracle: Oracle::default(),
            names: Names::default(),
            edits: 0,
            log: Vec::new(),
        }
    }

    /// The random steps, then syncs until the devices hold still, then the checks.
    fn play(&mut self) -> Result<(), Failure> {
        for _ in 0..STEPS {
            self.step()?;
        }
        self.log
            .push("-- every device syncs until a round changes nothing".into());
        self.quiesce()?;
        self.check()
    }

    /// A random device edits (and syncs, if it syncs after each edit) or syncs.
    fn step(&mut self) -> Result<(), Failure> {
        let index = self.rng.random_range(0..self.peers.len());
        if self.peers[index].syncs_after_each_edit {
            self.edit(index)?;
            self.sync(index)
        } else if self.rng.random_bool(SYNC_PROBABILITY) {
            self.sync(index)
        } else {
            self.edit(index)
        }
    }

    /// Device `index` makes a random edit.
    fn edit(&mut self, index: usize) -> Result<(), Failure> {
        std::thread::sleep(self.scenario.edit_spacing());
        let peer = &mut self.peers[index];
        let action = random_edit(&mut self.rng, &peer.device, &mut self.names);
        self.edits += 1;
        self.log
            .push(format!("#{} {}: {action}", self.edits, peer.label));
        peer.device
            .perform(&action)
            .map_err(|error| Failure::Edit {
                device: peer.label.clone(),
                action: action.to_string(),
                error,
            })?;
        peer.edited.insert(edited_record(&action), self.edits);
        Ok(())
    }

    /// Device `index` syncs as `tickit sync` does; the oracle counts its edits as the
    /// server receives them.
    fn sync(&mut self, index: usize) -> Result<(), Failure> {
        let peer = &mut self.peers[index];
        let request = peer.device.sync_request(false);
        let before = view(&peer.device, &self.inboxes);
        let counted = self.oracle.count_sync(&peer.held, &before, &peer.edited);
        let failed = |error: String| Failure::Sync {
            device: peer.label.clone(),
            error,
        };
        let body = post_sync(&self.server, peer.token, &request).map_err(failed)?;
        peer.device
            .apply_response(&body)
            .map_err(|e| failed(format!("Failed to parse sync response: {e}")))?;
        peer.held = view(&peer.device, &self.inboxes);
        peer.edited.clear();
        if std::env::var_os("CONVERGENCE_BODIES").is_some() {
            self.log.push(format!("request {request}"));
            self.log.push(format!("response {body}"));
        }
        self.log.push(format!(
            "{} syncs: edits that count [{}]; sent {}, got {}, conflicts {}; changed here [{}]",
            peer.label,
            counted.join(", "),
            count_changes(&request),
            count_changes(&body),
            body["conflicts"].as_array().map_or(0, Vec::len),
            changes(&before, &peer.held).join(", ")
        ));
        Ok(())
    }

    /// Every device syncs in turn, round after round, until a round (after the first,
    /// which uploads what is left) changes nothing any device holds.
    fn quiesce(&mut self) -> Result<(), Failure> {
        for round in 1..=MAX_ROUNDS {
            let before = self.views();
            for index in 0..self.peers.len() {
                self.sync(index)?;
            }
            if round > 1 && self.views() == before {
                return Ok(());
            }
        }
        Err(Failure::Restless { rounds: MAX_ROUNDS })
    }

    /// What each device holds, in device order.
    fn views(&self) -> Vec<View> {
        self.peers
            .iter()
            .map(|peer| view(&peer.device, &self.inboxes))
            .collect()
    }

    /// No orphans; every device holds the same; and that is what the oracle expects.
    fn check(&self) -> Result<(), Failure> {
        let orphans: Vec<String> = self.peers.iter().flat_map(orphans_of).collect();
        let views = self.views();
        let expected = self.oracle.expected();
        let keys: BTreeSet<&Key> = views
            .iter()
            .flat_map(View::keys)
            .chain(expected.keys())
            .collect();
        let mut differing = Vec::new();
        let mut not_latest = Vec::new();
        for key in keys {
            let held: Vec<Option<&Value>> = views.iter().map(|view| view.get(key)).collect();
            let wanted = expected.get(key);
            if held.iter().any(|value| *value != held[0]) {
                differing.push(self.describe(key, &held, wanted));
            } else if !as_the_latest_edit_left_it(held[0], wanted) {
                not_latest.push(self.describe(key, &held, wanted));
            }
        }
        if orphans.is_empty() && differing.is_empty() && not_latest.is_empty() {
            Ok(())
        } else {
            Err(Failure::State {
                orphans,
                differing,
                not_latest,
            })
        }
    }

    /// One record on every device and in the oracle: the whole record where some lack it,
    /// otherwise the fields that differ.
    fn describe(&self, key: &Key, held: &[Option<&Value>], wanted: Option<&Value>) -> String {
        let mut columns: Vec<(&str, Option<&Value>)> = self
            .peers
            .iter()
            .zip(held)
            .map(|(peer, value)| (&peer.label[..1], *value))
            .collect();
        columns.push(("expected", wanted));
        let name = columns
            .iter()
            .find_map(|(_, value)| value.and_then(|v| v.get("title").or(v.get("name"))))
            .map_or(String::new(), |name| format!(" {name}"));
        let lines = match columns
            .iter()
            .map(|(label, value)| value.map(|value| (*label, value)))
            .collect::<Option<Vec<_>>>()
        {
            Some(present) => differing_fields(&present),
            None => columns
                .iter()
                .map(|(label, value)| {
                    let shown = value.map_or("(missing)".into(), Value::to_string);
                    format!("{label}: {shown}")
                })
                .collect(),
        };
        format!(
            "{} {}{name}:\n      {}",
            key.0,
            short(&key.1),
            lines.join("\n      ")
        )
    }
}

/// For a record every column has: one line per field whose value differs between them.
fn differing_fields(columns: &[(&str, &Value)]) -> Vec<String> {
    let fields: BTreeSet<&String> = columns
        .iter()
        .filter_map(|(_, value)| value.as_object())
        .flat_map(|object| object.keys())
        .collect();
    fields
        .into_iter()
        .filter(|field| {
            columns
                .iter()
                .any(|(_, value)| value[*field] != columns[0].1[*field])
        })
        .map(|field| {
            let shown: Vec<String> = columns
                .iter()
                .map(|(label, value)| format!("{label} {}", value[field]))
                .collect();
            format!("{field}: {}", shown.join(", "))
        })
        .collect()
}

/// A clock offset as a person writes it: `right`, `+1h`, `-3ms`.
fn clock_offset(offset: SignedDuration) -> String {
    if offset.is_zero() {
        return "right".into();
    }
    let sign = if offset.is_negative() { "-" } else { "+" };
    format!("{sign}{:#}", offset.abs())
}

/// The record an edit changes.
fn edited_record(action: &Action) -> Key {
    match action {
        Action::AddTask { id, .. }
        | Action::Complete { id }
        | Action::Uncomplete { id }
        | Action::EditTitle { id, .. }
        | Action::MoveTask { id, .. }
        | Action::TagTask { id, .. }
        | Action::UntagTask { id, .. }
        | Action::DeleteTask { id } => ("task", id.clone()),
        Action::AddList { id, .. } | Action::RenameList { id, .. } | Action::DeleteList { id } => {
            ("list", id.clone())
        }
        Action::AddTag { id, .. } | Action::RenameTag { id, .. } | Action::DeleteTag { id } => {
            ("tag", id.clone())
        }
    }
}

/// Tasks of `peer` that point at a list or tag it does not have.
fn orphans_of(peer: &Peer) -> Vec<String> {
    let device = &peer.device;
    let mut orphans = Vec::new();
    for (id, task) in device.tasks.iter() {
        if device.lists.get(&task.list_id).is_none() {
            orphans.push(format!(
                "{}: task {} {:?} is in list {}, which it does not have",
                peer.label,
                short(id),
                task.title,
                short(&task.list_id)
            ));
        }
        for tag in device.tag_ids(id) {
            if device.tags.get(&tag).is_none() {
                orphans.push(format!(
                    "{}: task {} {:?} has tag {}, which it does not have",
                    peer.label,
                    short(id),
                    task.title,
                    short(&tag)
                ));
            }
        }
    }
    orphans
}

/// POSTs a sync body; the parsed response of a 200, or what went wrong.
fn post_sync(server: &Server, token: &str, request: &Value) -> Result<Value, String> {
    let response = server.request(
        "POST",
        "/api/v1/sync",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        request.to_string().as_bytes(),
    );
    if response.status != 200 {
        return Err(format!("status {}: {}", response.status, response.body));
    }
    serde_json::from_str(&response.body)
        .map_err(|e| format!("the response is not JSON ({e}): {}", response.body))
}

/// How many records a request or response carries, and how many of them are deletes.
fn count_changes(body: &Value) -> String {
    let changes = body["changes"].as_array().map_or(&[][..], Vec::as_slice);
    let deletes = changes.iter().filter(|r| r["type"] == "deleted").count();
    format!("{} records ({deletes} deletes)", changes.len())
}

/// Why a run failed.
enum Failure {
    /// A device could not make an edit; the real client would fail the same way.
    Edit {
        device: String,
        action: String,
        error: String,
    },
    /// A sync did not get a 200 the desktop client can parse.
    Sync { device: String, error: String },
    /// The devices kept changing after every device synced this many times.
    Restless { rounds: usize },
    /// What the devices hold at the end is wrong.
    State {
        /// Tasks pointing at a list or tag their device lacks.
        orphans: Vec<String>,
        /// Records the devices disagree on.
        differing: Vec<String>,
        /// Records every device holds alike, but not as the latest edit left them.
        not_latest: Vec<String>,
    },
}

impl Failure {
    /// The kinds of trouble it found, for the summary.
    fn kinds(&self) -> Vec<&'static str> {
        match self {
            Failure::Edit { .. } => vec!["an edit fails on a device"],
            Failure::Sync { .. } => vec!["a sync fails"],
            Failure::Restless { .. } => vec!["the devices never hold still"],
            Failure::State {
                orphans,
                differing,
                not_latest,
            } => [
                (!orphans.is_empty()).then_some("orphans"),
                (!differing.is_empty()).then_some("devices differ"),
                (!not_latest.is_empty()).then_some("not the latest edit"),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Edit {
                device,
                action,
                error,
            } => write!(f, "{device} cannot {action}: {error}"),
            Failure::Sync { device, error } => write!(f, "a sync of {device} failed: {error}"),
            Failure::Restless { rounds } => {
                write!(
                    f,
                    "the devices still changed after {rounds} rounds of syncs"
                )
            }
            Failure::State {
                orphans,
                differing,
                not_latest,
            } => {
                let sections = [
                    ("orphans", orphans),
                    ("records the devices disagree on", differing),
                    ("records not as the latest edit left them", not_latest),
                ];
                for (title, lines) in sections.iter().filter(|(_, lines)| !lines.is_empty()) {
                    writeln!(f, "  {title}:")?;
                    for line in lines.iter() {
                        writeln!(f, "    {line}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A failed seed: everything needed to see what happened and to run it again.
struct Report {
    scenario: Scenario,
    seed: u64,
    devices: Vec<String>,
    log: Vec<String>,
    failure: Failure,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "===== {:?}, seed {}: {} =====",
            self.scenario,
            self.seed,
            self.failure.kinds().join(", ")
        )?;
        writeln!(
            f,
            "run it again: CONVERGENCE_SEED={} cargo test --test it {} -- --exact --nocapture",
            self.seed,
            self.scenario.test_name()
        )?;
        writeln!(f, "devices: {}", self.devices.join("; "))?;
        writeln!(f, "log:")?;
        for line in &self.log {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "failure:\n{}", self.failure)
    }
}

/// Whether a record is what the latest edit left: equal, except that a tag's `updated_at`
/// (the only one a [`View`] keeps) may have been moved forward by the server, so that every
/// device would apply the winner over a copy dated later.
fn as_the_latest_edit_left_it(held: Option<&Value>, wanted: Option<&Value>) -> bool {
    let (Some(held), Some(wanted)) = (held, wanted) else {
        return held == wanted;
    };
    let time = |record: &Value| {
        record["updated_at"]
            .as_str()
            .and_then(|text| text.parse::<jiff::Timestamp>().ok())
    };
    let undated = |record: &Value| {
        let mut record = record.clone();
        record
            .as_object_mut()
            .map(|fields| fields.remove("updated_at"));
        record
    };
    undated(held) == undated(wanted) && time(held) >= time(wanted)
}
