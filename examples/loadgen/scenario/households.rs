//! households: many accounts (one token each) of 3 devices. Each device syncs on its own
//! cadence (a random pause of up to 2 s before each sync) with 0-2 new or edited tasks,
//! until the time is up; then each syncs once more, and every device must have received
//! the tasks of the other devices of its household, and nothing of any other household.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::delivery;
use crate::device::Device;
use crate::fleet;
use crate::scenario::Settings;
use crate::stats::{Outcome, Tally};

/// Devices per household.
const DEVICES_PER_HOUSEHOLD: usize = 3;
/// The longest pause before a device's next sync.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// The most new or edited tasks in one sync.
const MAX_EDITS: usize = 2;
/// Devices syncing at once in the final round.
const FINAL_ROUND_AT_ONCE: usize = 100;

/// Runs the scenario.
pub async fn run(settings: &Settings) -> Result<Outcome, String> {
    let households = settings.households;
    if settings.tokens.len() < households {
        return Err(format!(
            "households needs {households} tokens (one per account), the tokens file has {}",
            settings.tokens.len()
        ));
    }
    let tokens = settings.tokens.clone();
    let devices = Device::many(
        households * DEVICES_PER_HOUSEHOLD,
        &settings.target,
        settings.keep_alive,
        settings.gzip,
        |i| {
            (
                i / DEVICES_PER_HOUSEHOLD,
                tokens[i / DEVICES_PER_HOUSEHOLD].clone(),
            )
        },
        |i| {
            format!(
                "h{}.d{}",
                i / DEVICES_PER_HOUSEHOLD,
                i % DEVICES_PER_HOUSEHOLD
            )
        },
    );
    let count = devices.len();
    let started = Instant::now();
    let deadline = started + settings.run_for;
    let (devices, mut tally) =
        fleet::each(devices, usize::MAX, move |device| live(device, deadline)).await?;
    let elapsed = started.elapsed();
    eprintln!("loadgen: households: timed phase over, one more sync per device");
    let (devices, _) = fleet::once(devices, FINAL_ROUND_AT_ONCE, |_| Vec::new()).await?;
    let missing = delivery::missing_deliveries(&devices);
    let foreign = delivery::foreign_records(&devices);
    let problems = [
        missing.summary("deliveries within a household missing after a final sync"),
        foreign.summary("records received from another household"),
    ];
    for problem in problems.into_iter().flatten() {
        tally.fail(problem);
    }
    let extra = household_fields(households, &devices, missing.count, foreign.count);
    Ok(Outcome {
        devices: count,
        elapsed,
        tally,
        extra,
        records_up_per_s: None,
    })
}

/// One device's life until `deadline`: a pause, its first sync with its inbox, then pauses
/// and syncs with a few edits.
async fn live(mut device: Device, deadline: Instant) -> Result<(Device, Tally), String> {
    let mut tally = Tally::default();
    let mut first = true;
    loop {
        let pause = MAX_PAUSE.mul_f64(rand::random::<f64>());
        if Instant::now() + pause >= deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        let upload = if first {
            vec![device.inbox_record()]
        } else {
            edits(&mut device)
        };
        first = false;
        let up = upload.len();
        let answer = device.sync(upload).await?;
        tally.record(up, &answer);
    }
    Ok((device, tally))
}

/// 0 to 2 changes, each a new task or an edit of one of the device's tasks.
fn edits(device: &mut Device) -> Vec<Value> {
    let count = rand::random_range(0..=MAX_EDITS);
    (0..count)
        .map(|_| {
            if rand::random() {
                device.new_task()
            } else {
                device.edit_task()
            }
        })
        .collect()
}

fn household_fields(
    households: usize,
    devices: &[Device],
    missing: u64,
    foreign: u64,
) -> Map<String, Value> {
    let connects: u64 = devices.iter().map(Device::connects).sum();
    let mut extra = Map::new();
    extra.insert("households".into(), json!(households));
    extra.insert("connections".into(), json!(connects));
    extra.insert("missing_deliveries".into(), json!(missing));
    extra.insert("foreign_records".into(), json!(foreign));
    extra
}
