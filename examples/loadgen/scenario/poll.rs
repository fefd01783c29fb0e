//! poll: devices of one account that have nothing to upload sync back to back, each carrying
//! its `server_time` forward; once they have caught up, every answer should be empty.

use std::time::Instant;

use serde_json::Map;

use crate::fleet;
use crate::scenario::Settings;
use crate::stats::Outcome;

/// Runs the scenario.
pub async fn run(settings: &Settings) -> Result<Outcome, String> {
    let devices = fleet::warm_up(settings.account_devices(settings.devices)).await?;
    let strict = settings.strict;
    let started = Instant::now();
    let (_, tally) = fleet::closed_loop(
        devices,
        started + settings.run_for,
        |_| Vec::new(),
        move |device, answer| {
            (strict && answer.records > 0).then(|| {
                format!(
                    "{}: a poll after catching up got {} changes, expected none; the first: {}",
                    device.name,
                    answer.records,
                    answer.first_record.as_deref().unwrap_or_default()
                )
            })
        },
    )
    .await?;
    Ok(Outcome {
        devices: settings.devices,
        elapsed: started.elapsed(),
        tally,
        extra: Map::new(),
        records_up_per_s: None,
    })
}
