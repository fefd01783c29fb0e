//! The `serve` lifecycle, in order: config, listening sockets, database, runtime, serving,
//! then one shutdown path that drains requests, stops the metrics endpoint and lets the
//! writer close the database.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::activity::Activity;
use crate::api::AppState;
use crate::body_budget::BodyBudget;
use crate::config::{self, Overrides};
use crate::listener::{BoundSocket, Sockets};
use crate::metrics::{self, Metrics};
use crate::store::{Opened, Stats, Store, StoreError};
use crate::{accept_loop, reload, setup, systemd};

/// How `serve` was asked to run.
pub struct ServeOptions {
    pub config: Option<PathBuf>,
    pub overrides: Overrides,
    /// Exit after this long without a connection (for socket activation).
    pub exit_idle_after: Option<Duration>,
}

/// Runs the server until SIGTERM, SIGINT or the idle limit; returns once everything is closed.
pub fn run(options: ServeOptions) -> Result<(), String> {
    let path = config::locate(options.config);
    if !path.exists() {
        setup::create_first_config(&path)?;
    }
    let loaded_from = reload::Snapshot::before_loading(&path);
    let config = config::load(&path, &options.overrides)?;
    if let Some(warning) = config::no_tokens(&config) {
        eprintln!("warning: {warning}");
    }
    // Both read the environment systemd set; do it before any other thread exists.
    let Sockets {
        sync: socket,
        address,
        metrics: inherited_metrics,
    } = BoundSocket::acquire(&config.listen)?;
    let watchdog = systemd::watchdog_interval();
    let metrics_socket = match inherited_metrics {
        Some(socket) => Some(metrics::serve::inherited(socket)?),
        None => config.metrics.map(metrics::serve::bind).transpose()?,
    };
    let metrics_address = metrics_socket
        .as_ref()
        .map_or(String::new(), |(_, address)| {
            format!("; metrics on {address}")
        });
    let metrics = Arc::new(Metrics::default());
    let Opened {
        store,
        writer,
        imported,
    } = Store::open(&config.database, metrics.clone())?;
    if let Some(report) = imported {
        eprintln!(
            "database {}: found the original tickit-sync's tables (left as they are) and {report}",
            config.database.display()
        );
    }
    let database = config.database.display().to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tickit-sync-worker")
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(async move {
        let listener = socket
            .into_listener()
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let (published, current) = watch::channel(Arc::new(config));
        let state = Arc::new(AppState {
            config: current,
            store,
            shutting_down: AtomicBool::new(false),
            activity: Arc::new(Activity::default()),
            body_budget: BodyBudget::default(),
            metrics,
        });
        let shutdown = shutdown_requested(state.activity.clone(), options.exit_idle_after)?;
        tokio::spawn(reload::watch_config(
            path,
            options.overrides,
            published,
            loaded_from,
        ));
        let metrics_endpoint = metrics_socket.map(|(socket, _)| {
            tokio::spawn(metrics::serve::run(
                socket,
                state.metrics.clone(),
                state.store.clone(),
            ))
        });
        let status = status_line(state.store.stats().await, &state.activity);
        eprintln!(
            "tickit-sync {} listening on {address}{metrics_address}, database {database}",
            env!("CARGO_PKG_VERSION")
        );
        systemd::ready(&format!(
            "listening on {address}{metrics_address}; {status}"
        ));
        if systemd::is_supervised() {
            tokio::spawn(report_health(state.clone(), watchdog));
        }
        accept_loop::run(listener, state, shutdown).await;
        if let Some(endpoint) = metrics_endpoint {
            endpoint.abort();
        }
        Ok::<(), String>(())
    });
    // Dropping the runtime drops every store handle, which lets the writer finish and close.
    drop(runtime);
    if writer.join().is_err() {
        return Err(
            "the database writer thread panicked; the last request may not have been saved".into(),
        );
    }
    eprintln!("tickit-sync stopped; the database is closed");
    served
}

/// Resolves on SIGTERM, SIGINT, or after `idle_limit` without connections.
fn shutdown_requested(
    activity: Arc<Activity>,
    idle_limit: Option<Duration>,
) -> Result<impl Future<Output = ()>, String> {
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot listen for SIGINT: {e}"))?;
    Ok(async move {
        let idle = async {
            match idle_limit {
                Some(limit) => wait_until_idle(&activity, limit).await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            () = idle => "idle limit reached",
        };
        eprintln!("shutting down ({reason}): finishing requests in flight");
        systemd::stopping(&format!("shutting down ({reason})"));
    })
}

async fn wait_until_idle(activity: &Activity, limit: Duration) {
    let check_every = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::time::sleep(check_every).await;
        if activity.idle_for().is_some_and(|idle| idle >= limit) {
            return;
        }
    }
}

/// How often `systemctl status` is refreshed, and the watchdog pinged at the least.
const STATUS_PERIOD: Duration = Duration::from_secs(10);

/// Keeps `systemctl status` current and, when systemd asks for it, pings the watchdog, but
/// only after a round trip through the database writer succeeds: a wedged writer stops the
/// pings and systemd restarts the service.
async fn report_health(state: Arc<AppState>, watchdog: Option<Duration>) {
    let period = watchdog.map_or(STATUS_PERIOD, |interval| {
        (interval / 2).clamp(systemd::SHORTEST_PING_PERIOD, STATUS_PERIOD)
    });
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let answer = tokio::time::timeout(period, state.store.stats()).await;
        match answer {
            Ok(Ok(stats)) => {
                let status = if state.shutting_down.load(Ordering::Relaxed) {
                    "shutting down: finishing requests in flight".to_owned()
                } else {
                    status_line(Ok(stats), &state.activity)
                };
                if watchdog.is_some() {
                    systemd::watchdog(&status);
                } else {
                    systemd::status(&status);
                }
            }
            Ok(Err(e)) => eprintln!("warning: health check of the database failed: {e}"),
            Err(_) => eprintln!(
                "warning: the database writer did not answer within {}s; withholding the watchdog ping",
                period.as_secs_f32()
            ),
        }
    }
}

/// "2 accounts, 5 devices (3 seen in the last day), 120 records; last sync 3s ago", for
/// people reading the status.
fn status_line(stats: Result<Stats, StoreError>, activity: &Activity) -> String {
    let figures = match stats {
        Ok(stats) => format!(
            "{} accounts, {} devices ({} seen in the last day), {} records",
            stats.accounts, stats.devices, stats.devices_last_day, stats.records
        ),
        Err(e) => format!("database unavailable: {e}"),
    };
    let last_sync = match activity.since_last_sync() {
        Some(ago) => format!("last sync {}s ago", ago.as_secs()),
        None => "no sync since start".into(),
    };
    format!("{figures}; {last_sync}")
}
