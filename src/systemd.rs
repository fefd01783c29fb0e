//! Messages to systemd's service manager (sd_notify): readiness, status lines, reloads,
//! stopping and watchdog pings. Every call is a no-op when NOTIFY_SOCKET is unset.

use std::time::Duration;

use sd_notify::NotifyState;

/// The environment variable carrying `WatchdogSec=` in microseconds.
const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// Pings never come more often than this, however short the watchdog interval: each one
/// costs a round trip through the database writer.
pub const SHORTEST_PING_PERIOD: Duration = Duration::from_millis(100);

/// The watchdog interval systemd asked for (`WatchdogSec=`), if any. Read it before the
/// runtime starts threads, like every other environment variable systemd passes. A value
/// that cannot be meant (not a number, 0, or "infinity") turns the watchdog off with a
/// warning; one too short to keep up with is kept, with a warning.
pub fn watchdog_interval() -> Option<Duration> {
    let raw = std::env::var(WATCHDOG_USEC).ok()?;
    let interval = match sd_notify::watchdog_enabled() {
        // Not a number, or (quietly) meant for another process: WATCHDOG_PID says whose.
        None => {
            if raw.parse::<u64>().is_err() {
                eprintln!(
                    "warning: {WATCHDOG_USEC}={raw:?} is not a number of microseconds; no \
                     watchdog pings are sent. Set WatchdogSec= in the unit to a duration"
                );
            }
            return None;
        }
        Some(interval) => interval,
    };
    if interval.is_zero() || interval == Duration::from_micros(u64::MAX) {
        eprintln!(
            "warning: {WATCHDOG_USEC}={raw} turns the watchdog off; no watchdog pings are \
             sent. Set WatchdogSec= in the unit to a duration to turn it on"
        );
        return None;
    }
    if interval < 2 * SHORTEST_PING_PERIOD {
        eprintln!(
            "warning: {WATCHDOG_USEC}={raw} ({interval:?}) is shorter than tickit-sync can \
             keep up with; pinging every {SHORTEST_PING_PERIOD:?}, so systemd may restart it. \
             Set WatchdogSec= in the unit to a few seconds or more"
        );
    }
    Some(interval)
}

/// True when a service manager is listening for these messages.
pub fn is_supervised() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// The server accepts connections (sent once at start, and again after each reload).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload has begun.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// Shutdown has begun.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// The server is healthy: the database writer answered a round trip just now.
pub fn watchdog(status: &str) {
    send(&[NotifyState::Watchdog, NotifyState::Status(status)]);
}

/// A status line alone, for `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        eprintln!("warning: cannot notify systemd: {e}");
    }
}
