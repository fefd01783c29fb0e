//! What the server counts about itself, for Prometheus: plain atomics, bumped where things
//! happen (the sync endpoint, the answer as it is written, the writer thread), and rendered
//! in Prometheus' text format when scraped. They are always counted, which costs a few
//! relaxed atomic adds per sync; only `[metrics] bind` serves them (see [`serve`]).

pub mod serve;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::StatusCode;

use crate::store::Stats;

/// The media type of the text format, version 0.0.4, that every Prometheus scrapes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the sync duration buckets, in microseconds (5 ms to 10 s).
const DURATION_BOUNDS_MICROS: &[u64] = &[
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];
/// Upper bounds of the batch size buckets, in syncs (a batch takes at most 64).
const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64];

/// What became of a sync request, each with the one HTTP status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and answered.
    Ok,
    /// No token, or one the config does not hold.
    Unauthorized,
    /// A body that is not a valid sync request, or could not be read.
    BadRequest,
    /// A body over `max_body_bytes`, or more records than `max_records_per_request`.
    TooLarge,
    /// The body did not arrive within `request_timeout_secs`.
    Timeout,
    /// Refused for lack of room (memory budget, connection slots) or a database locked by
    /// another process; the client is told when to try again.
    Busy,
    /// Arrived while the server was stopping.
    ShuttingDown,
    /// The database failed.
    Error,
}

impl Outcome {
    /// Every outcome, in the order they are rendered.
    const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Unauthorized,
        Outcome::BadRequest,
        Outcome::TooLarge,
        Outcome::Timeout,
        Outcome::Busy,
        Outcome::ShuttingDown,
        Outcome::Error,
    ];

    /// The HTTP status a sync request with this outcome is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Outcome::Ok => StatusCode::OK,
            Outcome::Unauthorized => StatusCode::UNAUTHORIZED,
            Outcome::BadRequest => StatusCode::BAD_REQUEST,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::Timeout => StatusCode::REQUEST_TIMEOUT,
            Outcome::Busy | Outcome::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Outcome::Error => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unauthorized => "unauthorized",
            Outcome::BadRequest => "bad_request",
            Outcome::TooLarge => "too_large",
            Outcome::Timeout => "timeout",
            Outcome::Busy => "busy",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::Error => "error",
        }
    }
}

/// Observations counted into fixed buckets, with their sum, in whole units of
/// `1 / per_unit` (microseconds of a second, or plain counts).
#[derive(Debug)]
struct Histogram {
    /// Upper bounds of the buckets, ascending; a last bucket holds what is above them all.
    bounds: &'static [u64],
    /// Observations per bucket, not cumulative: one more than `bounds`.
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    /// Units per rendered unit (1,000,000 to render microseconds as seconds).
    per_unit: u64,
}

impl Histogram {
    fn new(bounds: &'static [u64], per_unit: u64) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            per_unit,
        }
    }

    fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// `value` in rendered units: `0.005`, `1`, `2.5`.
    fn in_units(&self, value: u64) -> f64 {
        value as f64 / self.per_unit as f64
    }
}

/// Every figure counted as things happen, shared by the request handlers and the writer.
#[derive(Debug)]
pub struct Metrics {
    /// Sync requests answered, by [`Outcome`] (indexed as [`Outcome::ALL`]).
    syncs: [AtomicU64; Outcome::ALL.len()],
    records_received: AtomicU64,
    records_sent: AtomicU64,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    /// From a sync request's start to its answer's head, in microseconds.
    sync_duration: Histogram,
    /// Syncs per committed writer transaction.
    batch_size: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            syncs: Default::default(),
            records_received: AtomicU64::new(0),
            records_sent: AtomicU64::new(0),
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            sync_duration: Histogram::new(DURATION_BOUNDS_MICROS, 1_000_000),
            batch_size: Histogram::new(BATCH_BOUNDS, 1),
        }
    }
}

impl Metrics {
    /// A sync request was answered with `outcome`, `elapsed` after it started.
    pub fn sync_answered(&self, outcome: Outcome, elapsed: Duration) {
        self.syncs[outcome as usize].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sync_duration.observe(micros);
    }

    /// A sync applied `records` records.
    pub fn records_received(&self, records: usize) {
        add(&self.records_received, records);
    }

    /// One record was written into an answer.
    pub fn record_sent(&self) {
        self.records_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// `bytes` of a sync request's body were read.
    pub fn request_bytes(&self, bytes: usize) {
        add(&self.request_bytes, bytes);
    }

    /// `bytes` of a sync response's body were handed to the connection.
    pub fn response_bytes(&self, bytes: usize) {
        add(&self.response_bytes, bytes);
    }

    /// The writer committed a transaction holding `syncs` syncs.
    pub fn batch_committed(&self, syncs: usize) {
        self.batch_size
            .observe(u64::try_from(syncs).unwrap_or(u64::MAX));
    }

    /// The text a scrape returns: these counters, and `gauges` read for it.
    pub fn render(&self, gauges: &Gauges) -> String {
        Exposition {
            metrics: self,
            gauges,
        }
        .to_string()
    }
}

fn add(counter: &AtomicU64, amount: usize) {
    counter.fetch_add(u64::try_from(amount).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Figures read when a scrape asks, rather than counted as things happen.
#[derive(Debug)]
pub struct Gauges {
    /// Commands waiting for the database writer.
    pub queue_depth: usize,
    /// The database file and its WAL, in bytes.
    pub database_bytes: u64,
    /// What the writer counts in the database, or why it could not.
    pub store: Result<Stats, String>,
}

/// A scrape's text, written as it is displayed.
struct Exposition<'a> {
    metrics: &'a Metrics,
    gauges: &'a Gauges,
}

impl fmt::Display for Exposition<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (metrics, gauges) = (self.metrics, self.gauges);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        header(
            f,
            "tickit_sync_build_info",
            "gauge",
            "The running version; always 1.",
        )?;
        writeln!(
            f,
            "tickit_sync_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )?;
        header(
            f,
            "tickit_sync_syncs_total",
            "counter",
            "Sync requests answered, by outcome and HTTP status.",
        )?;
        for outcome in Outcome::ALL {
            writeln!(
                f,
                "tickit_sync_syncs_total{{outcome=\"{}\",status=\"{}\"}} {}",
                outcome.label(),
                outcome.status().as_u16(),
                load(&metrics.syncs[outcome as usize])
            )?;
        }
        histogram(
            f,
            "tickit_sync_request_duration_seconds",
            "Time from a sync request's start to its answer's head.",
            &metrics.sync_duration,
        )?;
        for (name, help, counter) in [
            (
                "tickit_sync_records_received_total",
                "Records carried by syncs that were applied.",
                &metrics.records_received,
            ),
            (
                "tickit_sync_records_sent_total",
                "Records written into sync answers.",
                &metrics.records_sent,
            ),
            (
                "tickit_sync_request_bytes_total",
                "Bytes of sync request bodies read, as received.",
                &metrics.request_bytes,
            ),
            (
                "tickit_sync_response_bytes_total",
                "Bytes of sync response bodies sent, compressed if they were.",
                &metrics.response_bytes,
            ),
        ] {
            header(f, name, "counter", help)?;
            writeln!(f, "{name} {}", load(counter))?;
        }
        gauge(
            f,
            "tickit_sync_writer_queue_depth",
            "Commands waiting for the database writer.",
            gauges.queue_depth as u64,
        )?;
        histogram(
            f,
            "tickit_sync_writer_batch_size",
            "Syncs per transaction the database writer committed.",
            &metrics.batch_size,
        )?;
        gauge(
            f,
            "tickit_sync_database_bytes",
            "Size of the database file and its write-ahead log.",
            gauges.database_bytes,
        )?;
        match &gauges.store {
            Ok(stats) => store_gauges(f, stats),
            Err(e) => writeln!(f, "# the database's figures are missing: {e}"),
        }
    }
}

/// The figures the writer counts in the database: one gauge per field of [`Stats`].
fn store_gauges(f: &mut fmt::Formatter<'_>, stats: &Stats) -> fmt::Result {
    // Taken apart field by field, so that a field added to `Stats` is rendered here too.
    let Stats {
        accounts,
        devices,
        devices_last_day,
        records,
    } = *stats;
    gauge(
        f,
        "tickit_sync_accounts",
        "Accounts with a device that synced.",
        accounts,
    )?;
    gauge(f, "tickit_sync_devices", "Devices that synced.", devices)?;
    gauge(
        f,
        "tickit_sync_devices_seen_last_day",
        "Devices that synced in the last 24 hours.",
        devices_last_day,
    )?;
    gauge(
        f,
        "tickit_sync_records",
        "Records stored, deletes not counted.",
        records,
    )
}

fn header(f: &mut fmt::Formatter<'_>, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(f, "# HELP {name} {help}\n# TYPE {name} {kind}")
}

fn gauge(f: &mut fmt::Formatter<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    header(f, name, "gauge", help)?;
    writeln!(f, "{name} {value}")
}

/// `_bucket` lines, cumulative as the format wants, then `_sum` and `_count`.
fn histogram(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    help: &str,
    histogram: &Histogram,
) -> fmt::Result {
    header(f, name, "histogram", help)?;
    let mut cumulative = 0;
    for (index, count) in histogram.counts.iter().enumerate() {
        cumulative += count.load(Ordering::Relaxed);
        match histogram.bounds.get(index) {
            Some(&bound) => writeln!(
                f,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                histogram.in_units(bound)
            )?,
            None => writeln!(f, "{name}_bucket{{le=\"+Inf\"}} {cumulative}")?,
        }
    }
    let sum = histogram.in_units(histogram.sum.load(Ordering::Relaxed));
    writeln!(f, "{name}_sum {sum}\n{name}_count {cumulative}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            queue_depth: 3,
            database_bytes: 4096,
            store: Ok(Stats {
                accounts: 1,
                devices: 2,
                devices_last_day: 1,
                records: 5,
            }),
        }
    }

    #[test]
    fn renders_every_metric_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.sync_answered(Outcome::Ok, Duration::from_millis(7));
        metrics.sync_answered(Outcome::Ok, Duration::from_secs(20));
        metrics.sync_answered(Outcome::ShuttingDown, Duration::from_micros(5_000));
        metrics.records_received(4);
        metrics.record_sent();
        metrics.request_bytes(300);
        metrics.response_bytes(120);
        metrics.batch_committed(1);
        metrics.batch_committed(3);
        let version = env!("CARGO_PKG_VERSION");
        let expected = format!(
            r#"# HELP tickit_sync_build_info The running version; always 1.
# TYPE tickit_sync_build_info gauge
tickit_sync_build_info{{version="{version}"}} 1
# HELP tickit_sync_syncs_total Sync requests answered, by outcome and HTTP status.
# TYPE tickit_sync_syncs_total counter
tickit_sync_syncs_total{{outcome="ok",status="200"}} 2
tickit_sync_syncs_total{{outcome="unauthorized",status="401"}} 0
tickit_sync_syncs_total{{outcome="bad_request",status="400"}} 0
tickit_sync_syncs_total{{outcome="too_large",status="413"}} 0
tickit_sync_syncs_total{{outcome="timeout",status="408"}} 0
tickit_sync_syncs_total{{outcome="busy",status="503"}} 0
tickit_sync_syncs_total{{outcome="shutting_down",status="503"}} 1
tickit_sync_syncs_total{{outcome="error",status="500"}} 0
# HELP tickit_sync_request_duration_seconds Time from a sync request's start to its answer's head.
# TYPE tickit_sync_request_duration_seconds histogram
tickit_sync_request_duration_seconds_bucket{{le="0.005"}} 1
tickit_sync_request_duration_seconds_bucket{{le="0.01"}} 2
tickit_sync_request_duration_seconds_bucket{{le="0.025"}} 2
tickit_sync_request_duration_seconds_bucket{{le="0.05"}} 2
tickit_sync_request_duration_seconds_bucket{{le="0.1"}} 2
tickit_sync_request_duration_seconds_bucket{{le="0.25"}} 2
tickit_sync_request_duration_seconds_bucket{{le="0.5"}} 2
tickit_sync_request_duration_seconds_bucket{{le="1"}} 2
tickit_sync_request_duration_seconds_bucket{{le="2.5"}} 2
tickit_sync_request_duration_seconds_bucket{{le="5"}} 2
tickit_sync_request_duration_seconds_bucket{{le="10"}} 2
tickit_sync_request_duration_seconds_bucket{{le="+Inf"}} 3
tickit_sync_request_duration_seconds_sum 20.012
tickit_sync_request_duration_seconds_count 3
# HELP tickit_sync_records_received_total Records carried by syncs that were applied.
# TYPE tickit_sync_records_received_total counter
tickit_sync_records_received_total 4
# HELP tickit_sync_records_sent_total Records written into sync answers.
# TYPE tickit_sync_records_sent_total counter
tickit_sync_records_sent_total 1
# HELP tickit_sync_request_bytes_total Bytes of sync request bodies read, as received.
# TYPE tickit_sync_request_bytes_total counter
tickit_sync_request_bytes_total 300
# HELP tickit_sync_response_bytes_total Bytes of sync response bodies sent, compressed if they were.
# TYPE tickit_sync_response_bytes_total counter
tickit_sync_response_bytes_total 120
# HELP tickit_sync_writer_queue_depth Commands waiting for the database writer.
# TYPE tickit_sync_writer_queue_depth gauge
tickit_sync_writer_queue_depth 3
# HELP tickit_sync_writer_batch_size Syncs per transaction the database writer committed.
# TYPE tickit_sync_writer_batch_size histogram
tickit_sync_writer_batch_size_bucket{{le="1"}} 1
tickit_sync_writer_batch_size_bucket{{le="2"}} 1
tickit_sync_writer_batch_size_bucket{{le="4"}} 2
tickit_sync_writer_batch_size_bucket{{le="8"}} 2
tickit_sync_writer_batch_size_bucket{{le="16"}} 2
tickit_sync_writer_batch_size_bucket{{le="32"}} 2
tickit_sync_writer_batch_size_bucket{{le="64"}} 2
tickit_sync_writer_batch_size_bucket{{le="+Inf"}} 2
tickit_sync_writer_batch_size_sum 4
tickit_sync_writer_batch_size_count 2
# HELP tickit_sync_database_bytes Size of the database file and its write-ahead log.
# TYPE tickit_sync_database_bytes gauge
tickit_sync_database_bytes 4096
# HELP tickit_sync_accounts Accounts with a device that synced.
# TYPE tickit_sync_accounts gauge
tickit_sync_accounts 1
# HELP tickit_sync_devices Devices that synced.
# TYPE tickit_sync_devices gauge
tickit_sync_devices 2
# HELP tickit_sync_devices_seen_last_day Devices that synced in the last 24 hours.
# TYPE tickit_sync_devices_seen_last_day gauge
tickit_sync_devices_seen_last_day 1
# HELP tickit_sync_records Records stored, deletes not counted.
# TYPE tickit_sync_records gauge
tickit_sync_records 5
"#
        );
        assert_eq!(metrics.render(&gauges()), expected);
    }

    #[test]
    fn a_store_that_cannot_answer_leaves_out_its_figures_and_says_why() {
        let gauges = Gauges {
            store: Err("the database writer has stopped".into()),
            ..gauges()
        };
        let text = Metrics::default().render(&gauges);
        assert!(text.ends_with(
            "tickit_sync_database_bytes 4096\n\
             # the database's figures are missing: the database writer has stopped\n"
        ));
        assert!(!text.contains("tickit_sync_devices"));
    }

    #[test]
    fn an_observation_on_a_bound_falls_in_that_bound_s_bucket() {
        let histogram = Histogram::new(BATCH_BOUNDS, 1);
        for value in [1, 2, 3, 64, 65] {
            histogram.observe(value);
        }
        let counts: Vec<u64> = histogram
            .counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [1, 1, 1, 0, 0, 0, 1, 1]);
    }
}
