//! Counting what the devices did (syncs, records, bytes, latencies, failed checks) and turning
//! it into the one JSON result line.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::device::Answer;

/// How many failed-check messages are kept verbatim; the rest are only counted.
const KEPT_FAILURES: usize = 5;

/// What a set of devices did in a measured phase.
#[derive(Default)]
pub struct Tally {
    /// One entry per sync.
    pub latencies: Vec<Duration>,
    /// Records uploaded.
    pub records_up: u64,
    /// Records received.
    pub records_down: u64,
    /// Answer body bytes over the wire.
    pub wire_bytes: u64,
    /// Compact JSON bytes of the records new to the device that received them.
    pub new_record_json: u64,
    /// Conflict ids received.
    pub conflicts: u64,
    /// Failed checks: how many, and the first few messages.
    pub failed_checks: u64,
    /// The first few failed checks' messages.
    pub failures: Vec<String>,
}

impl Tally {
    /// Counts one sync that uploaded `up` records and got `answer`.
    pub fn record(&mut self, up: usize, answer: &Answer) {
        self.latencies.push(answer.elapsed);
        self.records_up += up as u64;
        self.records_down += answer.records as u64;
        self.wire_bytes += answer.wire_bytes as u64;
        self.new_record_json += answer.new_record_json as u64;
        self.conflicts += answer.conflicts as u64;
    }

    /// Counts a failed check.
    pub fn fail(&mut self, message: String) {
        self.failed_checks += 1;
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(message);
        }
    }

    /// Adds another tally's counts to this one.
    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.records_up += other.records_up;
        self.records_down += other.records_down;
        self.wire_bytes += other.wire_bytes;
        self.new_record_json += other.new_record_json;
        self.conflicts += other.conflicts;
        self.failed_checks += other.failed_checks;
        for message in other.failures {
            if self.failures.len() < KEPT_FAILURES {
                self.failures.push(message);
            }
        }
    }

    /// Syncs counted.
    pub fn syncs(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// A mean per sync of `total`.
    pub fn per_sync(&self, total: u64) -> f64 {
        if self.latencies.is_empty() {
            0.0
        } else {
            total as f64 / self.latencies.len() as f64
        }
    }
}

/// The `p`th percentile (nearest rank) of `sorted`, in milliseconds; 0 when empty.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// `x` rounded to `digits` decimals, for readable JSON.
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// A scenario's outcome: its measured phase and what only it reports.
pub struct Outcome {
    /// Simulated devices.
    pub devices: usize,
    /// Length of the measured phase.
    pub elapsed: Duration,
    /// What the devices did in it.
    pub tally: Tally,
    /// Scenario-specific fields of the result line.
    pub extra: Map<String, Value>,
    /// Records uploaded per second, when the scenario measures it apart from the tally.
    pub records_up_per_s: Option<f64>,
}

/// Server memory: before the load, and the most seen during it.
pub struct Memory {
    /// VmRSS before the load, kB.
    pub idle_kb: u64,
    /// The largest VmRSS sampled during the scenario, kB.
    pub peak_kb: u64,
}

/// The result line of a scenario that ran to its end (checks may still have failed).
pub fn result_line(scenario: &str, label: &str, outcome: Outcome, memory: &Memory) -> Value {
    let Outcome {
        devices,
        elapsed,
        mut tally,
        extra,
        records_up_per_s,
    } = outcome;
    tally.latencies.sort_unstable();
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let syncs = tally.syncs();
    let mut line = json!({
        "scenario": scenario,
        "label": label,
        "ok": tally.failed_checks == 0,
        "devices": devices,
        "seconds": round(seconds, 3),
        "syncs": syncs,
        "syncs_per_s": round(syncs as f64 / seconds, 1),
        "records_up_per_s": round(records_up_per_s.unwrap_or(tally.records_up as f64 / seconds), 1),
        "records_down_per_s": round(tally.records_down as f64 / seconds, 1),
        "bytes_per_sync": round(tally.per_sync(tally.wire_bytes), 1),
        "p50_ms": round(percentile_ms(&tally.latencies, 50.0), 3),
        "p99_ms": round(percentile_ms(&tally.latencies, 99.0), 3),
        "max_ms": round(percentile_ms(&tally.latencies, 100.0), 3),
        "rss_idle_kb": memory.idle_kb,
        "rss_peak_kb": memory.peak_kb,
        "conflicts": tally.conflicts,
    });
    if let Some(fields) = line.as_object_mut() {
        fields.extend(extra);
        if tally.failed_checks > 0 {
            fields.insert("failed_checks".into(), json!(tally.failed_checks));
            fields.insert("failures".into(), json!(tally.failures));
        }
    }
    line
}

/// The result line of a scenario that could not finish.
pub fn error_line(scenario: &str, label: &str, error: &str) -> Value {
    json!({ "scenario": scenario, "label": label, "ok": false, "error": error })
}
