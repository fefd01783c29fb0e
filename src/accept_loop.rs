//! The accept loop: serves HTTP/1 connections until shutdown is requested, then stops
//! accepting and gives in-flight requests a grace period to finish.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use crate::api::{AppState, handle};
use crate::listener::{Connection, Listener};

/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 1024;

/// The largest request line and headers accepted (larger gets 431): with `max_connections`,
/// a bound on the memory connections sending headers can hold (hyper's default is ~400 KB).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves until `shutdown` completes, then drains. Returns once every connection has closed
/// or the configured grace period has run out.
pub async fn run(listener: Listener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
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
        let header_timeout = state.config.borrow().header_read_timeout;
        let guards = (state.activity.connection_opened(), permit);
        let on_close = move || drop(guards);
        match connection {
            Connection::Tcp(stream) => {
                spawn_connection(stream, &state, header_timeout, &graceful, on_close)
            }
            Connection::Unix(stream) => {
                spawn_connection(stream, &state, header_timeout, &graceful, on_close)
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

/// Serves one connection on its own task; `on_close` runs when it ends.
fn spawn_connection<S>(
    stream: S,
    state: &Arc<AppState>,
    header_timeout: Duration,
    graceful: &GracefulShutdown,
    on_close: impl FnOnce() + Send + 'static,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = state.clone();
    let service = service_fn(move |request| handle(request, state.clone()));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        // A client that goes away mid-request is its own business, not a server error.
        let _ = connection.await;
        on_close();
    });
}
