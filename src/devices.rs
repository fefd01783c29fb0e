//! `tickit-sync devices`, and the last use `token --list` shows: each device's last sync,
//! token, client and what waits for it, as aligned text for a person or JSON for a script.

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::store::{self, DeviceListing};
use crate::timestamp::now_nanos;

/// One second, in nanoseconds.
const SECOND: i64 = 1_000_000_000;

/// Prints the devices of `account` (every account's when `None`) recorded in `database`.
pub fn print(database: &Path, account: Option<&str>, json: bool) -> Result<(), String> {
    let devices = store::devices(database, account)?;
    let now = now_nanos();
    if json {
        let shown = JsonDevices {
            devices: devices
                .iter()
                .map(|device| JsonDevice::of(device, now))
                .collect(),
        };
        let text = serde_json::to_string_pretty(&shown).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }
    if devices.is_empty() {
        match account {
            Some(account) => println!("No device of account {account:?} has synced yet."),
            None => println!("No device has synced yet."),
        }
        return Ok(());
    }
    let mut table = vec![
        [
            "ACCOUNT",
            "TOKEN",
            "DEVICE",
            "LAST SYNC",
            "FIRST SEEN",
            "CLIENT",
            "WAITING",
            "CLOCK",
        ]
        .map(str::to_owned),
    ];
    table.extend(devices.iter().map(|device| row(device, now)));
    print_aligned(&table);
    if devices.iter().any(|device| device.first_seen_at.is_none()) {
        println!(
            "(\"unknown\": not recorded by the tickit-sync that served it before; filled at its \
             next sync)"
        );
    }
    Ok(())
}

/// A device as a row of the table.
fn row(device: &DeviceListing, now: i64) -> [String; 8] {
    let unknown = || "unknown".to_owned();
    let client = match device.user_agent.as_deref().map(client_of) {
        Some(Client {
            name,
            version: Some(version),
        }) => format!("{name} {version}"),
        Some(Client {
            name,
            version: None,
        }) => name.to_owned(),
        None => "no User-Agent".to_owned(),
    };
    let clock = match (&device.clock_warning, device.clock_offset) {
        (Some(warning), _) => clock_offset(warning.offset),
        (None, Some(_)) => "ok".to_owned(),
        (None, None) => "-".to_owned(),
    };
    [
        device.account.clone(),
        device.token_name.clone().unwrap_or_else(unknown),
        device.device.chars().take(8).collect(),
        device.last_sync_at.map_or_else(unknown, |at| when(at, now)),
        device
            .first_seen_at
            .map_or_else(unknown, |at| when(at, now)),
        client,
        device.waiting.to_string(),
        clock,
    ]
}

/// Prints rows with each column as wide as its widest cell.
fn print_aligned<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// "12.5 s ahead" or "3.0 min behind": a clock's offset from the server's.
fn clock_offset(offset: i64) -> String {
    let seconds = offset.unsigned_abs() as f64 / SECOND as f64;
    let direction = if offset > 0 { "ahead" } else { "behind" };
    if seconds < 120.0 {
        format!("{seconds:.1} s {direction}")
    } else {
        format!("{:.1} min {direction}", seconds / 60.0)
    }
}

/// "2026-11-26 14:03 CET (3 min ago)": an instant in the server's time zone, and how long
/// ago it was.
pub fn when(at: i64, now: i64) -> String {
    let local = Timestamp::from_nanosecond(i128::from(at))
        .map(|instant| {
            instant
                .to_zoned(TimeZone::system())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| "out of range".to_owned());
    format!("{local} ({})", ago(now.saturating_sub(at)))
}

/// "just now", "3 min ago", "5 h ago", "12 days ago".
fn ago(elapsed: i64) -> String {
    let minutes = elapsed / (60 * SECOND);
    match minutes {
        i64::MIN..=-1 => "in the future: check the server's clock".to_owned(),
        0 => "just now".to_owned(),
        1..=119 => format!("{minutes} min ago"),
        120..=2879 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / (60 * 24)),
    }
}

/// A client as its `User-Agent` names it: the first product, `name/version`.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Client<'a> {
    name: &'a str,
    version: Option<&'a str>,
}

fn client_of(user_agent: &str) -> Client<'_> {
    let product = user_agent.split_whitespace().next().unwrap_or(user_agent);
    match product.split_once('/') {
        Some((name, version)) => Client {
            name,
            version: Some(version),
        },
        None => Client {
            name: product,
            version: None,
        },
    }
}

/// `devices --json`: documented in the README.
#[derive(Serialize)]
struct JsonDevices<'a> {
    devices: Vec<JsonDevice<'a>>,
}

#[derive(Serialize)]
struct JsonDevice<'a> {
    account: &'a str,
    device: &'a str,
    token: Option<&'a str>,
    first_seen: Option<String>,
    last_sync: Option<String>,
    last_sync_seconds_ago: Option<i64>,
    user_agent: Option<&'a str>,
    client: Option<Client<'a>>,
    waiting_changes: u64,
    clock_offset_seconds: Option<f64>,
    clock_warning: Option<String>,
}

impl<'a> JsonDevice<'a> {
    fn of(device: &'a DeviceListing, now: i64) -> JsonDevice<'a> {
        let rfc3339 = |at: i64| {
            Timestamp::from_nanosecond(i128::from(at))
                .ok()
                .map(|instant| instant.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        };
        JsonDevice {
            account: &device.account,
            device: &device.device,
            token: device.token_name.as_deref(),
            first_seen: device.first_seen_at.and_then(rfc3339),
            last_sync: device.last_sync_at.and_then(rfc3339),
            last_sync_seconds_ago: device
                .last_sync_at
                .map(|at| now.saturating_sub(at) / SECOND),
            user_agent: device.user_agent.as_deref(),
            client: device.user_agent.as_deref().map(client_of),
            waiting_changes: device.waiting,
            clock_offset_seconds: device
                .clock_offset
                .map(|offset| offset as f64 / SECOND as f64),
            clock_warning: device.clock_warning.as_ref().map(ToString::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_agent_names_the_client_by_its_first_product() {
        assert_eq!(
            client_of("tickit/0.5.8 (linux)"),
            Client {
                name: "tickit",
                version: Some("0.5.8")
            }
        );
        assert_eq!(
            client_of("okhttp"),
            Client {
                name: "okhttp",
                version: None
            }
        );
    }

    #[test]
    fn elapsed_time_reads_as_a_person_says_it() {
        let minute = 60 * SECOND;
        assert_eq!(ago(59 * SECOND), "just now");
        assert_eq!(ago(3 * minute), "3 min ago");
        assert_eq!(ago(5 * 60 * minute + 1), "5 h ago");
        assert_eq!(ago(12 * 24 * 60 * minute), "12 days ago");
        assert_eq!(ago(-minute), "in the future: check the server's clock");
        assert_eq!(clock_offset(-150 * SECOND), "2.5 min behind");
        assert_eq!(clock_offset(12_500_000_000), "12.5 s ahead");
    }
}
