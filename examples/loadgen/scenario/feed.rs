//! feed: devices of one account each upload 1 new task per sync, back to back. Measures how
//! much of each answer is news to its device, and checks at the end (after one more sync
//! each) that every device received every other device's tasks.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::delivery;
use crate::fleet;
use crate::scenario::Settings;
use crate::stats::{Outcome, Tally, round};

/// Runs the scenario.
pub async fn run(settings: &Settings) -> Result<Outcome, String> {
    let devices = fleet::warm_up(settings.account_devices(settings.devices)).await?;
    let started = Instant::now();
    let (devices, mut tally) = fleet::closed_loop(
        devices,
        started + settings.run_for,
        |device| vec![device.new_task()],
        |_, _| None,
    )
    .await?;
    let elapsed = started.elapsed();
    eprintln!("loadgen: feed: timed phase over, one more sync per device");
    let (devices, _) = fleet::once(devices, usize::MAX, |_| Vec::new()).await?;
    let missing = delivery::missing_deliveries(&devices);
    if let Some(problem) = missing.summary("deliveries missing after a final sync") {
        tally.fail(problem);
    }
    let extra = news_fields(&tally, missing.count);
    Ok(Outcome {
        devices: settings.devices,
        elapsed,
        tally,
        extra,
        records_up_per_s: None,
    })
}

/// How the answers' size compares with the news they carried.
fn news_fields(tally: &Tally, missing: u64) -> Map<String, Value> {
    let bytes = tally.per_sync(tally.wire_bytes);
    let news = tally.per_sync(tally.new_record_json);
    let ratio = if news > 0.0 {
        round(bytes / news, 2)
    } else {
        0.0
    };
    let mut extra = Map::new();
    extra.insert("tasks_pushed".into(), json!(tally.records_up));
    extra.insert("new_record_json_per_sync".into(), json!(round(news, 1)));
    extra.insert("bytes_per_new_json_byte".into(), json!(ratio));
    extra.insert("missing_deliveries".into(), json!(missing));
    extra
}
