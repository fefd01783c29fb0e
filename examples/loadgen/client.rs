//! One simulated device's HTTP/1 connection to the server: a hyper client connection over a
//! tokio `TcpStream`, kept alive between syncs (or opened anew for each sync), with gzip
//! answers decoded when the server says so.

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, HOST,
};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take before the run is declared failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the server is: its socket address and the `Host` header to send.
#[derive(Clone, Debug)]
pub struct Target {
    /// The server's address (always loopback).
    pub addr: SocketAddr,
    /// `host:port` as given in the URL.
    pub host: String,
}

impl Target {
    /// Parses `http://HOST:PORT[/]` and resolves it; refuses anything but loopback.
    pub async fn from_url(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--url {url:?}: only http://HOST:PORT is supported"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "--url {url:?}: give the server's base URL, http://HOST:PORT"
            ));
        }
        let addr = tokio::net::lookup_host(host)
            .await
            .map_err(|e| format!("--url {url:?}: cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("--url {url:?}: {host} resolves to no address"))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "--url {url:?}: {addr} is not a loopback address; this tool only loads a local server"
            ));
        }
        Ok(Self {
            addr,
            host: host.to_owned(),
        })
    }
}

/// A server's answer, its body already decoded.
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// Bytes of the body as they came over the wire (compressed if gzipped).
    pub wire_bytes: usize,
    /// The body, decompressed.
    pub body: Vec<u8>,
    /// True when the server answered with `Content-Encoding: gzip`.
    pub gzipped: bool,
    /// When the answer's status and headers arrived: the server had applied the request.
    pub head_at: Instant,
}

/// A device's connection; reconnects when the server has closed it.
pub struct Client {
    target: Target,
    keep_alive: bool,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Connections opened so far.
    pub connects: u64,
}

impl Client {
    /// A client that connects on its first request. With `keep_alive` false every request
    /// goes over a new connection that the server closes after answering.
    pub fn new(target: Target, keep_alive: bool) -> Self {
        Self {
            target,
            keep_alive,
            sender: None,
            connects: 0,
        }
    }

    /// POSTs `body` to /api/v1/sync with the bearer `token`, asking for gzip if `gzip`.
    pub async fn post_sync(
        &mut self,
        token: &str,
        body: Bytes,
        gzip: bool,
    ) -> Result<Reply, String> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(token, body, gzip))
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
    }

    async fn exchange(&mut self, token: &str, body: Bytes, gzip: bool) -> Result<Reply, String> {
        let request = self.request(token, body, gzip)?;
        let sender = self.ready_sender().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request to {} failed: {e}", self.target.addr))?;
        let head_at = Instant::now();
        if !self.keep_alive {
            self.sender = None;
        }
        let (parts, incoming) = response.into_parts();
        let encoding = parts.headers.get(CONTENT_ENCODING).cloned();
        let wire = incoming
            .collect()
            .await
            .map_err(|e| format!("reading the answer body failed: {e}"))?
            .to_bytes();
        let (body, gzipped) = match encoding.as_ref().map(|v| v.as_bytes()) {
            None | Some(b"identity") => (wire.to_vec(), false),
            Some(b"gzip") => (gunzip(&wire)?, true),
            Some(other) => {
                return Err(format!(
                    "answer has Content-Encoding {:?}, which was not asked for",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        Ok(Reply {
            status: parts.status,
            wire_bytes: wire.len(),
            body,
            gzipped,
            head_at,
        })
    }

    fn request(
        &self,
        token: &str,
        body: Bytes,
        gzip: bool,
    ) -> Result<Request<Full<Bytes>>, String> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/sync")
            .header(HOST, &self.target.host)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json");
        if gzip {
            builder = builder.header(ACCEPT_ENCODING, "gzip");
        }
        if !self.keep_alive {
            builder = builder.header(CONNECTION, "close");
        }
        builder
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))
    }

    /// The connection's sender once it can take a request, connecting (again) if needed.
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if let Some(sender) = self.sender.as_mut()
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection to the server".to_owned())
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, String> {
        let addr = self.target.addr;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/1 handshake with {addr} failed: {e}"))?;
        tokio::spawn(async move {
            // Ends when the server or this client closes the connection; errors show up
            // on the request that was in flight.
            let _ = connection.await;
        });
        sender
            .ready()
            .await
            .map_err(|e| format!("connection to {addr} closed at once: {e}"))?;
        self.connects += 1;
        Ok(sender)
    }
}

fn gunzip(wire: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::with_capacity(wire.len() * 4);
    GzDecoder::new(wire)
        .read_to_end(&mut body)
        .map_err(|e| format!("answer says gzip but does not decompress: {e}"))?;
    Ok(body)
}
