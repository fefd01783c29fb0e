//! `tickit-sync health`: asks a running server's `/health` over plain HTTP, so a container
//! image without curl can still have a health check.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::config::{self, ListenAddr, Overrides};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The URL probed when none is given: this machine, on `TICKIT_SYNC_PORT`, else the port of
/// the config `serve` would use, else 3030.
pub fn default_url() -> String {
    let configured = config::load(&config::locate(None), &Overrides::default())
        .ok()
        .and_then(|config| match config.listen {
            ListenAddr::Tcp { port, .. } => Some(port),
            ListenAddr::Unix(_) => None,
        });
    let from_env = || std::env::var("TICKIT_SYNC_PORT").ok()?.parse().ok();
    let port: u16 = configured.or_else(from_env).unwrap_or(3030);
    format!("http://127.0.0.1:{port}/health")
}

/// Succeeds when the server answers 200 with `"status":"ok"`; otherwise says why.
pub fn probe(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/health"),
    };
    let address = authority
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: {authority} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|e| format!("{url}: cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .and_then(|()| {
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
            )
        })
        .map_err(|e| format!("{url}: cannot send the request: {e}"))?;
    let mut response = String::new();
    stream
        .take(64 * 1024)
        .read_to_string(&mut response)
        .map_err(|e| format!("{url}: no complete answer: {e}"))?;
    let status_line = response.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{url}: answered {status_line:?}"));
    }
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let healthy =
        serde_json::from_str::<serde_json::Value>(body).is_ok_and(|value| value["status"] == "ok");
    if healthy {
        Ok(())
    } else {
        Err(format!("{url}: answered 200 without status ok: {body:?}"))
    }
}
