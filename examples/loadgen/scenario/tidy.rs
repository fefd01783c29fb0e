//! tidy: one account is seeded with N tasks, each in a list and with tags that are about to
//! be deleted; then one request deletes those lists or tags (D tombstones), optionally with
//! U more such tasks. Meanwhile a device of a second account syncs with nothing to upload,
//! back to back: how long it waits is how long the hostile request holds the one writer.
//! The server tidies a bounded number of stored tasks in the request and the rest between
//! requests, so the deleting device then syncs until it has received every seeded and
//! uploaded task, tidied (a tidied task is a server edit, which its sender receives too),
//! and the other account keeps syncing until then. The CPU time the server's writer thread
//! spent on the request, and on all of the tidying, is measured too, as it does not depend
//! on what else the machine runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::device::Device;
use crate::records;
use crate::scenario::{Deletes, Settings};
use crate::stats::{Outcome, Tally, percentile_ms, round};

/// The most tasks one seeding request carries.
const BATCH: usize = 1000;
/// How long the other account keeps syncing after every task was tidied.
const AFTERWARDS: Duration = Duration::from_millis(500);
/// How long the deleting device waits for every task to come back tidied.
const TIDIED_WITHIN: Duration = Duration::from_secs(120);

/// Runs the scenario.
pub async fn run(settings: &Settings) -> Result<Outcome, String> {
    if settings.tokens.len() < 2 {
        return Err("tidy needs 2 tokens (two accounts), the tokens file has fewer".into());
    }
    let mut devices = settings.spread_devices(2).into_iter();
    let (Some(mut deleter), Some(mut bystander)) = (devices.next(), devices.next()) else {
        return Err("could not make the two devices".into());
    };
    let doomed = Doomed::new(settings.tombstones, settings.deletes);
    let seeding = seed(&mut deleter, &doomed, settings).await?;
    let inbox = bystander.inbox_record();
    bystander.sync(vec![inbox]).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let polling = tokio::spawn(poll_until(bystander, stop.clone()));
    // A few polls first, so the bystander's usual wait is known.
    tokio::time::sleep(AFTERWARDS).await;
    let mut upload: Vec<Value> = doomed.tombstones().collect();
    let tags = settings.tags_per_task;
    upload.extend((0..settings.upload_tasks).map(|n| doomed.task(&mut deleter, n, tags)));
    let request_bytes = serde_json::to_vec(&upload).map_or(0, |json| json.len());
    let records_sent = upload.len();
    // With nothing deleted, nothing is tidied (and the uploads are not echoed).
    let expected = match settings.tombstones {
        0 => 0,
        _ => settings.tasks + settings.upload_tasks,
    };
    let cpu_before = writer_cpu(settings.pid)?;
    let sent_at = Instant::now();
    let deletes = deleter.sync(upload).await?;
    let writer_cpu_ms = (writer_cpu(settings.pid)? - cpu_before).as_secs_f64() * 1e3;
    let mut tidied_tasks = deletes.tasks;
    while tidied_tasks < expected && sent_at.elapsed() < TIDIED_WITHIN {
        tidied_tasks += deleter.sync(Vec::new()).await?.tasks;
    }
    let tidied_all = sent_at.elapsed();
    let tidying_cpu_ms = (writer_cpu(settings.pid)? - cpu_before).as_secs_f64() * 1e3;
    tokio::time::sleep(AFTERWARDS).await;
    stop.store(true, Ordering::Relaxed);
    let (bystander, mut tally) = polling
        .await
        .map_err(|e| format!("the other account's device failed: {e}"))??;

    if tidied_tasks != expected {
        tally.fail(format!(
            "{}: the answers after the deletes held {tidied_tasks} tasks within {} s, \
             expected {expected} (all tidied, each once)",
            deleter.name,
            TIDIED_WITHIN.as_secs()
        ));
    }
    let mut sorted = tally.latencies.clone();
    sorted.sort_unstable();
    let mut extra = Map::new();
    for (name, value) in [
        ("tasks", json!(settings.tasks)),
        ("tombstones", json!(settings.tombstones)),
        ("deletes", json!(settings.deletes.name())),
        ("upload_tasks", json!(settings.upload_tasks)),
        ("tags_per_task", json!(settings.tags_per_task)),
        ("seed_seconds", json!(round(seeding.as_secs_f64(), 3))),
        ("request_records", json!(records_sent)),
        ("request_bytes", json!(request_bytes)),
        (
            "deletes_ms",
            json!(round(deletes.elapsed.as_secs_f64() * 1e3, 3)),
        ),
        (
            "deletes_applied_ms",
            json!(round(deletes.head_elapsed.as_secs_f64() * 1e3, 3)),
        ),
        ("writer_cpu_ms", json!(round(writer_cpu_ms, 3))),
        ("answer_tasks", json!(deletes.tasks)),
        (
            "tidied_all_ms",
            json!(round(tidied_all.as_secs_f64() * 1e3, 3)),
        ),
        ("tidying_cpu_ms", json!(round(tidying_cpu_ms, 3))),
        (
            "other_account_max_ms",
            json!(round(percentile_ms(&sorted, 100.0), 3)),
        ),
        (
            "other_account_p50_ms",
            json!(round(percentile_ms(&sorted, 50.0), 3)),
        ),
    ] {
        extra.insert(name.into(), value);
    }
    eprintln!(
        "loadgen: tidy: {} made {} syncs meanwhile",
        bystander.name,
        tally.syncs()
    );
    Ok(Outcome {
        devices: 2,
        elapsed: deletes.elapsed,
        tally,
        extra,
        records_up_per_s: None,
    })
}

/// The lists and tags the deletes remove, and the tasks that point at them.
struct Doomed {
    lists: Vec<Uuid>,
    tags: Vec<Uuid>,
}

impl Doomed {
    /// `count` lists, tags, or both (half each), as `deletes` says.
    fn new(count: usize, deletes: Deletes) -> Self {
        let (lists, tags) = match deletes {
            Deletes::Lists => (count, 0),
            Deletes::Tags => (0, count),
            Deletes::Both => (count / 2, count - count / 2),
        };
        let ids = |n| (0..n).map(|_| records::new_id()).collect();
        Self {
            lists: ids(lists),
            tags: ids(tags),
        }
    }

    /// The lists and tags themselves, as created before the deletes.
    fn records(&self) -> impl Iterator<Item = Value> + '_ {
        let at = records::now();
        let lists = self.lists.iter().map(move |id| {
            let mut list = records::inbox(*id, &records::now());
            list["name"] = json!("Doomed");
            list["is_inbox"] = json!(false);
            list
        });
        let tags = self.tags.iter().map(move |id| {
            json!({ "type": "tag", "id": id.to_string(), "name": "doomed", "color": "#888888",
                    "created_at": at, "updated_at": at })
        });
        lists.chain(tags)
    }

    /// The `n`th task pointing at them: in a doomed list (if any) and with `tags` doomed
    /// tags (if any), each used in turn.
    fn task(&self, device: &mut Device, n: usize, tags: usize) -> Value {
        let mut task = device.new_task();
        if !self.lists.is_empty() {
            task["list_id"] = json!(self.lists[n % self.lists.len()].to_string());
        }
        if !self.tags.is_empty() {
            let tag_ids: Vec<String> = (n..n + tags.min(self.tags.len()))
                .map(|i| self.tags[i % self.tags.len()].to_string())
                .collect();
            task["tag_ids"] = json!(tag_ids);
        }
        task
    }

    /// A tombstone of each.
    fn tombstones(&self) -> impl Iterator<Item = Value> + '_ {
        let at = records::now();
        let of = move |kind: &'static str| {
            let at = at.clone();
            move |id: &Uuid| {
                json!({ "type": "deleted", "id": id.to_string(), "record_type": kind,
                        "deleted_at": at })
            }
        };
        let lists = self.lists.iter().map(of("list"));
        lists.chain(self.tags.iter().map(of("tag")))
    }
}

/// Uploads the inbox, the doomed lists and tags, and the tasks pointing at them, in
/// batches; returns how long it took.
async fn seed(
    device: &mut Device,
    doomed: &Doomed,
    settings: &Settings,
) -> Result<Duration, String> {
    let (tasks, tags) = (settings.tasks, settings.tags_per_task);
    let started = Instant::now();
    let mut upload = vec![device.inbox_record()];
    upload.extend(doomed.records());
    let mut sent = 0;
    loop {
        let batch = BATCH.min(tasks - sent);
        upload.extend((sent..sent + batch).map(|n| doomed.task(device, n, tags)));
        device.sync(std::mem::take(&mut upload)).await?;
        sent += batch;
        if sent == tasks {
            break;
        }
    }
    let took = started.elapsed();
    eprintln!(
        "loadgen: tidy: seeded {tasks} tasks in {:.1} s",
        took.as_secs_f64()
    );
    Ok(took)
}

/// Syncs `device` with nothing to upload, back to back, until `stop` is set.
async fn poll_until(mut device: Device, stop: Arc<AtomicBool>) -> Result<(Device, Tally), String> {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let answer = device.sync(Vec::new()).await?;
        tally.record(0, &answer);
    }
    Ok((device, tally))
}

/// The name the server gives its database writer thread, as /proc shows it (15 bytes).
const WRITER_THREAD: &str = "tickit-sync-wri";

/// The CPU time (user and system) the server's writer thread has used so far.
fn writer_cpu(pid: u32) -> Result<Duration, String> {
    let tasks = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&tasks).map_err(|e| format!("cannot list {tasks}: {e}"))?;
    for entry in entries.flatten() {
        let dir = entry.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() != WRITER_THREAD {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat"))
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        // The fields after the parenthesised name; utime and stime are the 14th and 15th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let (Some(user), Some(system)) = (ticks(14), ticks(15)) else {
            return Err(format!("{} has no readable utime and stime", dir.display()));
        };
        // Clock ticks, which Linux reports at 100 per second.
        return Ok(Duration::from_millis((user + system) * 10));
    }
    Err(format!(
        "the server (pid {pid}) has no thread named {WRITER_THREAD}; is --pid our server?"
    ))
}
