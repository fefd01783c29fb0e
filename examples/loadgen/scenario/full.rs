//! full: one device seeds the account with N tasks (batches of at most 1,000 per request),
//! then a new device does a full sync (`last_sync` null, nothing to upload) several times,
//! first without and then with `Accept-Encoding: gzip`; every answer must hold exactly N tasks.
//! The measured phase is the full syncs; `records_up_per_s` is the seeding's rate.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::device::Device;
use crate::scenario::Settings;
use crate::stats::{Outcome, Tally, percentile_ms, round};

/// The most tasks one seeding request carries.
const BATCH: usize = 1000;
/// From this many tasks on, fewer full syncs are measured.
const BIG: usize = 100_000;

/// Runs the scenario.
pub async fn run(settings: &Settings) -> Result<Outcome, String> {
    let tasks = settings.tasks;
    let mut devices = settings.account_devices(2).into_iter();
    let (Some(mut seeder), Some(mut reader)) = (devices.next(), devices.next()) else {
        return Err("could not make the two devices".into());
    };
    let seeding = seed(&mut seeder, tasks).await?;
    let rounds = if tasks >= BIG { 2 } else { 5 };
    let started = Instant::now();
    let plain = full_syncs(&mut reader, rounds, false, tasks).await?;
    let gzip = full_syncs(&mut reader, rounds, true, tasks).await?;
    let elapsed = started.elapsed();
    let mut extra = Map::new();
    extra.insert("tasks".into(), json!(tasks));
    extra.insert("rounds".into(), json!(rounds));
    extra.insert(
        "seed_seconds".into(),
        json!(round(seeding.as_secs_f64(), 3)),
    );
    plain.describe("plain", &mut extra);
    gzip.describe("gzip", &mut extra);
    let mut tally = plain.tally;
    tally.merge(gzip.tally);
    Ok(Outcome {
        devices: 2,
        elapsed,
        tally,
        extra,
        records_up_per_s: Some(round(tasks as f64 / seeding.as_secs_f64().max(1e-9), 1)),
    })
}

/// Uploads the inbox and `tasks` tasks in batches; returns how long it took.
async fn seed(seeder: &mut Device, tasks: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let mut upload = vec![seeder.inbox_record()];
    let mut sent = 0;
    loop {
        let batch = BATCH.min(tasks - sent);
        upload.extend((0..batch).map(|_| seeder.new_task()));
        seeder.sync(std::mem::take(&mut upload)).await?;
        sent += batch;
        if sent == tasks {
            break;
        }
    }
    let took = started.elapsed();
    eprintln!(
        "loadgen: full: seeded {tasks} tasks in {:.1} s",
        took.as_secs_f64()
    );
    Ok(took)
}

/// `rounds` full syncs of the same kind and what they showed.
struct FullSyncs {
    tally: Tally,
    /// Answer bytes over the wire (the last answer's).
    wire_bytes: usize,
    /// Answer bytes decompressed (the last answer's).
    body_bytes: usize,
    /// Whether the server gzipped the answers.
    gzipped: bool,
}

impl FullSyncs {
    /// Adds `<kind>_p50_ms`, `<kind>_max_ms`, `<kind>_wire_bytes`, `<kind>_body_bytes`
    /// and `<kind>_encoded` to `extra`.
    fn describe(&self, kind: &str, extra: &mut Map<String, Value>) {
        let mut sorted = self.tally.latencies.clone();
        sorted.sort_unstable();
        let fields = [
            ("p50_ms", json!(round(percentile_ms(&sorted, 50.0), 3))),
            ("max_ms", json!(round(percentile_ms(&sorted, 100.0), 3))),
            ("wire_bytes", json!(self.wire_bytes)),
            ("body_bytes", json!(self.body_bytes)),
            ("encoded", json!(self.gzipped)),
        ];
        for (name, value) in fields {
            extra.insert(format!("{kind}_{name}"), value);
        }
    }
}

/// The reader's full sync `rounds` times, asking for gzip if `gzip`; checks each answer
/// holds exactly `tasks` tasks.
async fn full_syncs(
    reader: &mut Device,
    rounds: usize,
    gzip: bool,
    tasks: usize,
) -> Result<FullSyncs, String> {
    let mut measured = FullSyncs {
        tally: Tally::default(),
        wire_bytes: 0,
        body_bytes: 0,
        gzipped: false,
    };
    for _ in 0..rounds {
        reader.forget_last_sync();
        let answer = reader.sync_with(Vec::new(), gzip).await?;
        if answer.tasks != tasks {
            measured.tally.fail(format!(
                "{}: a full sync{} holds {} tasks, expected {tasks}",
                reader.name,
                if gzip { " (gzip)" } else { "" },
                answer.tasks
            ));
        }
        measured.tally.record(0, &answer);
        measured.wire_bytes = answer.wire_bytes;
        measured.body_bytes = answer.body_bytes;
        measured.gzipped |= answer.gzipped;
    }
    eprintln!(
        "loadgen: full: {rounds} full syncs{} done",
        if gzip {
            " with Accept-Encoding: gzip"
        } else {
            ""
        }
    );
    Ok(measured)
}
