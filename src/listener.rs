//! Where connections come from: a socket inherited from systemd (socket activation), or one
//! this process binds itself, on TCP or a Unix socket path.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::config::ListenAddr;

/// The name systemd gives the metrics socket (`FileDescriptorName=` in
/// `tickit-sync-metrics.socket`).
pub const METRICS_SOCKET_NAME: &str = "metrics";

/// A listening socket taken before the async runtime starts.
pub enum BoundSocket {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// The sockets to serve: the sync socket and where it listens, and the metrics socket
/// systemd passed, if it passed one.
pub struct Sockets {
    pub sync: BoundSocket,
    pub address: String,
    pub metrics: Option<std::net::TcpListener>,
}

impl BoundSocket {
    /// Takes the sockets systemd passed (`LISTEN_FDS`), if any: the one named
    /// [`METRICS_SOCKET_NAME`] serves metrics, the first other one syncs. Otherwise binds
    /// `listen`. Must run before other threads start: it reads and clears the activation
    /// variables.
    pub fn acquire(listen: &ListenAddr) -> Result<Sockets, String> {
        // Read before `ListenFd` clears the activation variables.
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .map(|names| names.split(':').map(str::to_owned).collect())
            .unwrap_or_default();
        let mut inherited = listenfd::ListenFd::from_env();
        if inherited.len() == 0 {
            let (sync, address) = bind(listen)?;
            return Ok(Sockets {
                sync,
                address,
                metrics: None,
            });
        }
        let is_metrics =
            |index: usize| names.get(index).map(String::as_str) == Some(METRICS_SOCKET_NAME);
        let metrics = match (0..inherited.len()).find(|&index| is_metrics(index)) {
            Some(index) => match inherited.take_tcp_listener(index) {
                Ok(Some(socket)) => Some(socket),
                _ => {
                    return Err(format!(
                        "systemd passed a socket named {METRICS_SOCKET_NAME:?} that is not a \
                         TCP socket; use ListenStream=ADDRESS:PORT in tickit-sync-metrics.socket"
                    ));
                }
            },
            None => None,
        };
        let Some(index) = (0..inherited.len()).find(|&index| !is_metrics(index)) else {
            return Err(format!(
                "systemd passed only the {METRICS_SOCKET_NAME:?} socket, and no socket to sync \
                 on; enable tickit-sync.socket too"
            ));
        };
        let (sync, address) = take_sync_socket(&mut inherited, index)?;
        Ok(Sockets {
            sync,
            address,
            metrics,
        })
    }

    /// Hands the socket to the running tokio runtime.
    pub fn into_listener(self) -> io::Result<Listener> {
        match self {
            BoundSocket::Tcp(socket) => {
                socket.set_nonblocking(true)?;
                TcpListener::from_std(socket).map(Listener::Tcp)
            }
            BoundSocket::Unix(socket) => {
                socket.set_nonblocking(true)?;
                UnixListener::from_std(socket).map(Listener::Unix)
            }
        }
    }
}

/// The sync socket systemd passed at `index`, and where it listens.
fn take_sync_socket(
    inherited: &mut listenfd::ListenFd,
    index: usize,
) -> Result<(BoundSocket, String), String> {
    if let Ok(Some(socket)) = inherited.take_tcp_listener(index) {
        let address = describe(socket.local_addr().map(|a| a.to_string()));
        return Ok((
            BoundSocket::Tcp(socket),
            format!("{address} (from systemd)"),
        ));
    }
    if let Ok(Some(socket)) = inherited.take_unix_listener(index) {
        let address = describe(socket.local_addr().map(|a| {
            a.as_pathname()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        }));
        return Ok((
            BoundSocket::Unix(socket),
            format!("unix:{address} (from systemd)"),
        ));
    }
    Err(
        "systemd passed a socket that is neither a TCP nor a Unix stream socket; \
         use ListenStream= in tickit-sync.socket"
            .into(),
    )
}

fn describe(address: io::Result<String>) -> String {
    address.unwrap_or_else(|_| "an inherited socket".into())
}

fn bind(listen: &ListenAddr) -> Result<(BoundSocket, String), String> {
    match listen {
        ListenAddr::Tcp { host, port } => {
            let socket = std::net::TcpListener::bind((host.as_str(), *port))
                .map_err(|e| bind_error(listen, &e))?;
            let address = describe(socket.local_addr().map(|a| a.to_string()));
            Ok((BoundSocket::Tcp(socket), address))
        }
        ListenAddr::Unix(path) => {
            remove_stale_socket(path, listen)?;
            let socket =
                std::os::unix::net::UnixListener::bind(path).map_err(|e| bind_error(listen, &e))?;
            Ok((BoundSocket::Unix(socket), listen.to_string()))
        }
    }
}

/// A socket file left by a server that died is removed; one that still answers is in use.
/// Anything else at the path (a regular file, a directory, a link) is never touched.
fn remove_stale_socket(path: &Path, listen: &ListenAddr) -> Result<(), String> {
    let file_type = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata.file_type(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot listen on {listen}: cannot look at {}: {e}; check the permissions \
                 of its directory, or choose another path in [server] bind",
                path.display()
            ));
        }
    };
    if !file_type.is_socket() {
        let what = if file_type.is_file() {
            "a regular file"
        } else if file_type.is_dir() {
            "a directory"
        } else if file_type.is_symlink() {
            "a symbolic link"
        } else {
            "a device or a fifo"
        };
        return Err(format!(
            "cannot listen on {listen}: {} is {what}, not a socket, and was left as it is; \
             choose a path where nothing is yet in [server] bind (or --bind), or move that \
             file away if it is not needed",
            path.display()
        ));
    }
    if StdUnixStream::connect(path).is_ok() {
        return Err(format!(
            "cannot listen on {listen}: another server is already answering on that socket; \
             stop it or choose another path in [server] bind"
        ));
    }
    std::fs::remove_file(path)
        .map_err(|e| format!("cannot listen on {listen}: cannot remove the old socket file: {e}"))
}

fn bind_error(listen: &ListenAddr, e: &io::Error) -> String {
    let advice = match e.kind() {
        io::ErrorKind::AddrInUse => {
            "the address is already in use (is another tickit-sync running?); stop that program, \
             or choose another port with --port, TICKIT_SYNC_PORT or [server] port"
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied; ports below 1024 need privileges: use a higher port, or let \
             systemd pass the socket (see systemd/tickit-sync.socket)"
        }
        io::ErrorKind::AddrNotAvailable => {
            "that address does not belong to this machine; use 0.0.0.0 (all addresses), \
             127.0.0.1 (this machine only) or one of its own addresses"
        }
        io::ErrorKind::NotFound => "the socket's directory does not exist; create it first",
        _ => "check [server] bind and port",
    };
    format!("cannot listen on {listen}: {e}; {advice}")
}

/// A listening socket in the runtime.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// An accepted connection.
pub enum Connection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    pub async fn accept(&self) -> io::Result<Connection> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                // Sync responses are written whole; don't hold them back waiting for ACKs.
                stream.set_nodelay(true)?;
                Ok(Connection::Tcp(stream))
            }
            Listener::Unix(listener) => {
                let (stream, _) = listener.accept().await?;
                Ok(Connection::Unix(stream))
            }
        }
    }
}
