//! Tracks open connections and the last sync: for `--exit-idle-after` and status lines.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Open connections and the moment the last one closed.
#[derive(Debug)]
pub struct Activity {
    open: AtomicUsize,
    last_closed: Mutex<Instant>,
    last_sync: Mutex<Option<Instant>>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            open: AtomicUsize::new(0),
            last_closed: Mutex::new(Instant::now()),
            last_sync: Mutex::new(None),
        }
    }
}

impl Activity {
    /// Counts a connection as open until the returned guard is dropped.
    pub fn connection_opened(self: &std::sync::Arc<Self>) -> ConnectionGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard {
            activity: self.clone(),
        }
    }

    /// Notes that a sync just succeeded.
    pub fn record_sync(&self) {
        *self.last_sync.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// How long ago the last successful sync was, if there was one since start.
    pub fn since_last_sync(&self) -> Option<Duration> {
        self.last_sync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|at| at.elapsed())
    }

    /// How long the server has had no connection at all; `None` while one is open.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = *self.last_closed.lock().unwrap_or_else(|e| e.into_inner());
        Some(last.elapsed())
    }
}

/// Marks a connection open until dropped; owns its share of the tracker.
pub struct ConnectionGuard {
    activity: std::sync::Arc<Activity>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        *self
            .activity
            .last_closed
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.activity.open.fetch_sub(1, Ordering::SeqCst);
    }
}
