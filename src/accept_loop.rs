//! The accept loop: serves HTTP/1 connections until shutdown is requested, then stops
//! accepting and gives in-flight requests a grace period to finish. Each connection takes a
//! slot (see `connection_slots`), which may shed another; shutdown is noticed whatever the
//! loop is waiting for.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::activity::ConnectionGuard;
use crate::api::{AppState, handle};
use crate::config::Config;
use crate::connection_slots::{ConnectionSlots, Occupant, TrackedBody};
use crate::listener::{Connection, Listener};
use crate::open_files;

/// The largest request line and headers accepted (larger gets 431): with `max_connections`,
/// a bound on the memory connections sending headers can hold (hyper's default is ~400 KB).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves until `shutdown` completes, then drains. Returns once every connection has closed
/// or the configured grace period has run out.
pub async fn run(listener: Listener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(ConnectionSlots::default());
    let configured = state.config.borrow().max_connections;
    let room = open_files::make_room(configured);
    if let Some(warning) = open_files::shortfall_warning(configured, room) {
        eprintln!("{warning}");
    }
    tokio::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let connection = match connection {
            Ok(connection) => connection,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                eprintln!("warning: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let config = state.config.borrow().clone();
        let max = open_files::usable_connections(config.max_connections, room);
        let occupant = tokio::select! {
            () = &mut shutdown => break,
            occupant = slots.admit(max) => occupant,
        };
        let opened = state.activity.connection_opened();
        match connection {
            Connection::Tcp(stream) => {
                spawn_connection(stream, &state, &config, occupant, &graceful, opened)
            }
            Connection::Unix(stream) => {
                spawn_connection(stream, &state, &config, occupant, &graceful, opened)
            }
        }
    }
    state.shutting_down.store(true, Ordering::Relaxed);
    drop(listener);
    let grace = state.config.borrow().shutdown_grace;
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            eprintln!("warning: requests still running after the {}s grace period were cut off; \
                       their clients got no answer and nothing of theirs was half-applied",
                      grace.as_secs());
        }
    }
}

/// Serves one connection on its own task until the client closes it, it is shed or idle
/// too long, or shutdown closes it; then frees its slot and drops `opened`.
fn spawn_connection<S>(
    stream: S,
    state: &Arc<AppState>,
    config: &Config,
    occupant: Occupant,
    graceful: &GracefulShutdown,
    opened: ConnectionGuard,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = state.clone();
    let connection_state = occupant.connection();
    let service = service_fn(move |request| {
        let tracker = connection_state.request_started();
        let state = state.clone();
        async move {
            let response = handle(request, &state, &tracker).await?;
            Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, tracker)))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    let keep_alive = config.keep_alive_timeout;
    tokio::spawn(async move {
        tokio::select! {
            // A client that goes away mid-request is its own business, not a server error.
            _ = connection => {}
            // Dropping the connection closes it.
            () = occupant.close_requested(keep_alive) => {}
        }
        drop((occupant, opened));
    });
}
