//! Running many devices at once, each on its own tokio task: one round of syncs, a timed
//! closed loop, and the warm-up every single-account scenario starts with.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::device::{Answer, Device};
use crate::stats::Tally;

/// Runs `step` on every device, at most `limit` at a time; hands the devices back in index
/// order with their tallies merged. The first error stops every device (the run failed).
pub async fn each<F, Fut>(
    devices: Vec<Device>,
    limit: usize,
    step: F,
) -> Result<(Vec<Device>, Tally), String>
where
    F: Fn(Device) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Device, Tally), String>> + Send + 'static,
{
    let step = Arc::new(step);
    let permits = Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS)));
    let mut running = JoinSet::new();
    for device in devices {
        let (step, permits) = (step.clone(), permits.clone());
        running.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| format!("device scheduling failed: {e}"))?;
            step(device).await
        });
    }
    let mut done = Vec::with_capacity(running.len());
    let mut tally = Tally::default();
    while let Some(joined) = running.join_next().await {
        let (device, device_tally) =
            joined.map_err(|e| format!("a device's task failed: {e}"))??;
        tally.merge(device_tally);
        done.push(device);
    }
    done.sort_by_key(|device| device.index);
    Ok((done, tally))
}

/// One sync per device, `limit` at a time, each uploading what `changes` gives it.
pub async fn once<M>(
    devices: Vec<Device>,
    limit: usize,
    changes: M,
) -> Result<(Vec<Device>, Tally), String>
where
    M: Fn(&mut Device) -> Vec<Value> + Send + Sync + 'static,
{
    let changes = Arc::new(changes);
    each(devices, limit, move |mut device| {
        let changes = changes.clone();
        async move {
            let upload = changes(&mut device);
            let up = upload.len();
            let answer = device.sync(upload).await?;
            let mut tally = Tally::default();
            tally.record(up, &answer);
            Ok((device, tally))
        }
    })
    .await
}

/// The start of every single-account scenario, not measured: each device's first (full) sync
/// with its inbox, then, once all have synced, one more so each has caught up with the others.
pub async fn warm_up(devices: Vec<Device>) -> Result<Vec<Device>, String> {
    let count = devices.len();
    let (devices, _) = once(devices, usize::MAX, |device| vec![device.inbox_record()]).await?;
    let (devices, _) = once(devices, usize::MAX, |_| Vec::new()).await?;
    eprintln!("loadgen: {count} devices warmed up (a full sync with their inbox, then a catch-up)");
    Ok(devices)
}

/// Every device syncs back to back until `deadline`, uploading what `changes` gives it;
/// `check` looks at every answer and says what is wrong with it, if anything.
pub async fn closed_loop<M, C>(
    devices: Vec<Device>,
    deadline: Instant,
    changes: M,
    check: C,
) -> Result<(Vec<Device>, Tally), String>
where
    M: Fn(&mut Device) -> Vec<Value> + Send + Sync + 'static,
    C: Fn(&Device, &Answer) -> Option<String> + Send + Sync + 'static,
{
    let rules = Arc::new((changes, check));
    each(devices, usize::MAX, move |mut device| {
        let rules = rules.clone();
        async move {
            let (changes, check) = &*rules;
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let upload = changes(&mut device);
                let up = upload.len();
                let answer = device.sync(upload).await?;
                if let Some(problem) = check(&device, &answer) {
                    tally.fail(problem);
                }
                tally.record(up, &answer);
            }
            Ok((device, tally))
        }
    })
    .await
}
