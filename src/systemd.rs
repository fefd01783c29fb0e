//! Messages to systemd's service manager (sd_notify): readiness, status lines, reloads,
//! stopping and watchdog pings. Every call is a no-op when NOTIFY_SOCKET is unset.

use std::time::Duration;

use sd_notify::NotifyState;

/// The watchdog interval systemd asked for (`WatchdogSec=`), if any. Read it before the
/// runtime starts threads, like every other environment variable systemd passes.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
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
