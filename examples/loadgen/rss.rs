//! The server's resident memory (VmRSS from /proc/PID/status): read once before the load,
//! and sampled every 50 ms while it runs to find the peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use std::thread::JoinHandle;

/// How often the sampler reads VmRSS.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// The VmRSS of process `pid` in kB.
pub fn read_kb(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path} (is --pid the server's process id?): {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path} has no readable VmRSS line"))
}

/// A background thread keeping the largest VmRSS seen (a thread, so a busy runtime does not
/// delay its samples).
pub struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling process `pid`, beginning from `first` kB.
    pub fn start(pid: u32, first: u64) -> Self {
        let peak = Arc::new(AtomicU64::new(first));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || sample(pid, &peak, &stop))
        };
        Self { peak, stop, task }
    }

    /// Stops sampling (with one last sample) and returns the peak in kB.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.join();
        self.peak.load(Ordering::Relaxed)
    }
}

fn sample(pid: u32, peak: &AtomicU64, stop: &AtomicBool) {
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        // A server that has gone away shows up as failed requests, not here.
        if let Ok(kb) = read_kb(pid) {
            peak.fetch_max(kb, Ordering::Relaxed);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
}
