//! The metrics endpoint, `GET /metrics`, on a TCP listener of its own (`[metrics] bind`),
//! apart from the sync port: it needs no token, so it is meant for loopback or a private
//! network, where a Prometheus on the same host or network scrapes it.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{ALLOW, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{CONTENT_TYPE as EXPOSITION, Gauges, Metrics};
use crate::store::Store;

/// Scrapers served at once; a further connection waits until one closes.
const MAX_CONNECTIONS: usize = 16;
/// How long a scraper may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a scrape waits for the database writer's figures before going without them.
const STORE_WAIT: Duration = Duration::from_secs(2);

/// Binds `[metrics] bind`, and says where it listens (the port a 0 in the config was
/// given); the error says what to change.
pub fn bind(address: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), String> {
    let socket = std::net::TcpListener::bind(address).map_err(|e| {
        let advice = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "the address is already in use (by another tickit-sync, or another exporter?); \
                 choose another port in [metrics] bind"
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied; ports below 1024 need privileges: choose a higher port in \
                 [metrics] bind"
            }
            io::ErrorKind::AddrNotAvailable => {
                "that address does not belong to this machine; use 127.0.0.1 (this machine \
                 only) or one of its own addresses in [metrics] bind"
            }
            _ => "check [metrics] bind, or remove the [metrics] section to serve no metrics",
        };
        format!("cannot serve metrics on {address} ([metrics] bind): {e}; {advice}")
    })?;
    ready(socket, &address.to_string())
}

/// The metrics socket systemd passed (`tickit-sync-metrics.socket`), and where it listens
/// (`[metrics] bind` is then not used).
pub fn inherited(
    socket: std::net::TcpListener,
) -> Result<(std::net::TcpListener, SocketAddr), String> {
    ready(socket, "the socket systemd passed")
}

/// `socket`, made ready for the runtime, and where it listens; `place` names it in errors.
fn ready(
    socket: std::net::TcpListener,
    place: &str,
) -> Result<(std::net::TcpListener, SocketAddr), String> {
    let failed = |e: io::Error| format!("cannot serve metrics on {place}: {e}");
    socket.set_nonblocking(true).map_err(failed)?;
    let bound = socket.local_addr().map_err(failed)?;
    Ok((socket, bound))
}

/// Serves scrapes on `listener` until the task running it is dropped, which closes the
/// connections too.
pub async fn run(listener: std::net::TcpListener, metrics: Arc<Metrics>, store: Store) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot serve metrics: {e}");
            return;
        }
    };
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            connections.join_next().await;
            continue;
        }
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("warning: accepting a metrics connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, store) = (metrics.clone(), store.clone());
        let service = service_fn(move |request| {
            let (metrics, store) = (metrics.clone(), store.clone());
            async move { Ok::<_, Infallible>(answer(&request, &metrics, &store).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        connections.spawn(async move {
            // A scraper that goes away is its own business.
            let _ = connection.await;
        });
    }
}

/// `GET /metrics` (or `HEAD`); anything else is 404 or 405, in plain text.
async fn answer(
    request: &Request<Incoming>,
    metrics: &Metrics,
    store: &Store,
) -> Response<Full<Bytes>> {
    let mut response = match (request.uri().path(), request.method()) {
        ("/metrics", &Method::GET | &Method::HEAD) => {
            text(StatusCode::OK, scrape(metrics, store).await, EXPOSITION)
        }
        ("/metrics", _) => {
            let mut response = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here; use GET or HEAD",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        (path, _) => plain(
            StatusCode::NOT_FOUND,
            &format!("no such endpoint: {path}; metrics are at GET /metrics"),
        ),
    };
    // No endpoint here reads a body: one that was sent is left unread.
    if !request.body().is_end_stream() {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Renders the counters with the gauges read now.
async fn scrape(metrics: &Metrics, store: &Store) -> String {
    let stats = match tokio::time::timeout(STORE_WAIT, store.stats()).await {
        Ok(Ok(stats)) => Ok(stats),
        Ok(Err(e)) => Err(e.to_string().replace('\n', " ")),
        Err(_) => Err(format!(
            "the database writer did not answer within {}s",
            STORE_WAIT.as_secs()
        )),
    };
    metrics.render(&Gauges {
        queue_depth: store.queue_depth(),
        database_bytes: store.database_bytes(),
        store: stats,
    })
}

/// A one-line plain text answer.
fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    text(status, format!("{message}\n"), "text/plain; charset=utf-8")
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
