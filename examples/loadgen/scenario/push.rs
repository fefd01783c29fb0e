//! push: devices each upload 5 new tasks (in their inbox) per sync, back to back, carrying
//! their `server_time` forward. They are spread over the tokens given: with one account per
//! device this measures the write path alone, as nothing comes back.

use std::time::Instant;

use serde_json::{Map, json};

use crate::fleet;
use crate::scenario::Settings;
use crate::stats::Outcome;

/// New tasks per sync.
const TASKS_PER_SYNC: usize = 5;

/// Runs the scenario.
pub async fn run(settings: &Settings) -> Result<Outcome, String> {
    let devices = fleet::warm_up(settings.spread_devices(settings.devices)).await?;
    let started = Instant::now();
    let (_, tally) = fleet::closed_loop(
        devices,
        started + settings.run_for,
        |device| (0..TASKS_PER_SYNC).map(|_| device.new_task()).collect(),
        |_, _| None,
    )
    .await?;
    let mut extra = Map::new();
    extra.insert("tasks_pushed".into(), json!(tally.records_up));
    Ok(Outcome {
        devices: settings.devices,
        elapsed: started.elapsed(),
        tally,
        extra,
        records_up_per_s: None,
    })
}
