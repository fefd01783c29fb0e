//! The configuration file: where it is looked for, its format and defaults, the environment
//! overrides, and the validation that turns a wrong line into an error that names it.

mod lenient;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::permissions;
use crate::problem::Problem;
use crate::tokens::{TokenEntry, TokenSet};
use lenient::Document;

/// The file `serve`, `token` and `init` use when neither `--config` nor the environment names one.
pub const DEFAULT_CONFIG_FILE: &str = "config.toml";
/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "TICKIT_SYNC_CONFIG";
const ENV_HOST: &str = "TICKIT_SYNC_HOST";
const ENV_PORT: &str = "TICKIT_SYNC_PORT";
const ENV_DB: &str = "TICKIT_SYNC_DB";

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A host name or IP address and a TCP port.
    Tcp { host: String, port: u16 },
    /// A Unix socket path, written `unix:/path` in the config.
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ListenAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The settings the server runs with, after defaults and overrides.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file these settings came from; relative paths in it are relative to its directory.
    pub path: PathBuf,
    pub listen: ListenAddr,
    pub database: PathBuf,
    pub max_body_bytes: u64,
    /// Request bodies held in memory at once, across all connections, in bytes.
    pub max_bodies_in_flight_bytes: u64,
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body, from when its headers are in
    /// (which `header_read_timeout` bounds).
    pub request_timeout: Duration,
    /// How long a connection may sit idle between requests before it is closed (at most
    /// `header_read_timeout`, which also counts the wait for the next request).
    pub keep_alive_timeout: Duration,
    /// Connections served at once; when all are taken, the least useful one is shed.
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Records (changes) one sync request may carry.
    pub max_records_per_request: usize,
    /// Bytes any one text field of a record may hold.
    pub max_text_bytes: usize,
    /// How far `server_time` is set back so devices whose clocks run behind lose nothing.
    pub clock_skew_allowance: Duration,
    pub tokens: TokenSet,
    /// The separate file of `[[tokens]]`, if the config names one.
    pub tokens_file: Option<PathBuf>,
    /// Where Prometheus metrics are served, if anywhere (`[metrics] bind`).
    pub metrics: Option<SocketAddr>,
}

impl Config {
    /// Every file these settings were read from, to notice when one changes.
    pub fn source_files(&self) -> Vec<&Path> {
        std::iter::once(self.path.as_path())
            .chain(self.tokens_file.as_deref())
            .collect()
    }
}

/// Settings given on the command line, which win over the environment and the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<String>,
    pub port: Option<u16>,
}

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Another file of `[[tokens]]` entries, kept apart from the main config (secrets).
    tokens_file: Option<PathBuf>,
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    database: DatabaseSection,
    #[serde(default)]
    sync: SyncSection,
    metrics: Option<MetricsSection>,
    #[serde(default)]
    tokens: Vec<Spanned<TokenEntry>>,
}

impl ConfigFile {
    /// The database file of this config, read from `path`: `TICKIT_SYNC_DB`, else its
    /// `[database] path`.
    pub fn database(&self, path: &Path) -> PathBuf {
        let base = path.parent().unwrap_or(Path::new(""));
        env_string(ENV_DB)
            .map(PathBuf::from)
            .unwrap_or_else(|| database_path(base, &self.database.path))
    }

    /// Its `[[tokens]]` entries, in the order written.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = &TokenEntry> {
        self.tokens.iter().map(Spanned::as_ref)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerSection {
    bind: String,
    port: u16,
    max_body_bytes: u64,
    max_bodies_in_flight_bytes: u64,
    header_read_timeout_secs: u64,
    request_timeout_secs: u64,
    keep_alive_timeout_secs: u64,
    max_connections: usize,
    shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: "0.0.0.0".into(),
            port: 3030,
            max_body_bytes: 8 * 1024 * 1024,
            max_bodies_in_flight_bytes: 32 * 1024 * 1024,
            header_read_timeout_secs: 30,
            request_timeout_secs: 120,
            keep_alive_timeout_secs: 20,
            max_connections: 1024,
            shutdown_grace_secs: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DatabaseSection {
    path: PathBuf,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            path: "tickit-sync.sqlite".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SyncSection {
    clock_skew_allowance_secs: u64,
    max_records_per_request: usize,
    max_text_bytes: usize,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            clock_skew_allowance_secs: 300,
            max_records_per_request: 10_000,
            max_text_bytes: 64 * 1024,
        }
    }
}

/// `[metrics]`: present only to serve metrics, so it has no defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    /// An IP address and port, e.g. "127.0.0.1:9184"; checked at load.
    bind: Spanned<String>,
}

/// Only `[[tokens]]`, for `tokens_file`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<Spanned<TokenEntry>>,
}

/// The config path to use: `--config`, else `TICKIT_SYNC_CONFIG`, else `./config.toml`. When
/// that file does not exist but one is where the original tickit-sync 0.2.1 also looked
/// (`/data/config.toml`, then `$XDG_CONFIG_HOME/tickit-sync/config.toml` or
/// `~/.config/tickit-sync/config.toml`), that one, so its users switch without moving it.
pub fn locate(flag: Option<PathBuf>) -> PathBuf {
    if let Some(path) = flag.or_else(|| std::env::var_os(ENV_CONFIG).map(PathBuf::from)) {
        return path;
    }
    let local = PathBuf::from(DEFAULT_CONFIG_FILE);
    if local.exists() {
        return local;
    }
    let config_home = env_string("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env_string("HOME").map(|home| Path::new(&home).join(".config")));
    std::iter::once(PathBuf::from("/data/config.toml"))
        .chain(config_home.map(|dir| dir.join("tickit-sync").join(DEFAULT_CONFIG_FILE)))
        .find(|path| path.is_file())
        .unwrap_or(local)
}

/// The database file: a relative path is relative to the config's directory, except where
/// only the file relative to the working directory exists, as tickit-sync 0.2.1 read it.
fn database_path(config_dir: &Path, configured: &Path) -> PathBuf {
    let beside_config = config_dir.join(configured);
    if configured.is_relative() && !beside_config.exists() && configured.is_file() {
        return configured.to_owned();
    }
    beside_config
}

/// Reads and parses a config file; the error names the file, line and field at fault.
pub fn read_file(path: &Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| permissions::read_error(path, &e))?;
    let mut problems = Vec::new();
    let (mut file, _) = lenient::parse::<ConfigFile>(path, "config", &text, &mut problems)
        .map_err(|problem| problem.report())?;
    if let Some(problem) = problems.first() {
        return Err(problem.report());
    }
    mark_lines(&mut file.tokens, path, &text);
    Ok(file)
}

/// Tells each token entry where it was written, so that problems with it name the line.
fn mark_lines(entries: &mut [Spanned<TokenEntry>], path: &Path, text: &str) {
    for entry in entries {
        let line = line_at(text, entry.span().start);
        entry.as_mut().written_at(place(path, Some(line)));
    }
}

/// The line (counted from 1) of `text` that byte `offset` is on.
pub fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// `config.toml line 3`, or the file alone when no line is known.
fn place(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{} line {line}", path.display()),
        None => path.display().to_string(),
    }
}

/// The line `[section] key` (or a top-level `key`, when `section` is empty) is written on.
fn setting_line(document: &Document<'_>, text: &str, section: &str, key: &str) -> Option<usize> {
    let table = match section {
        "" => document.get_ref(),
        section => document.get_ref().get(section)?.get_ref().as_table()?,
    };
    let (key, _) = table.get_key_value(key)?;
    Some(line_at(text, key.span().start))
}

/// Refuses a file holding nothing but blank space: it is what a truncated or half-written
/// file looks like, and loading it would drop every token.
fn refuse_empty(what: &str, path: &Path, text: &str, advice: &str) -> Result<(), Problem> {
    if text.trim().is_empty() {
        return Err(Problem::error(
            None,
            format!(
                "{what} {} is empty, as a file truncated by accident is, so it is not loaded \
                 (its tokens would be gone); {advice}",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The database file: `TICKIT_SYNC_DB`, which needs no config file, else the one the config
/// at `path` names (see [`ConfigFile::database`]).
pub fn database_of(path: &Path) -> Result<PathBuf, String> {
    match env_string(ENV_DB) {
        Some(database) => Ok(PathBuf::from(database)),
        None => Ok(read_file(path)?.database(path)),
    }
}

/// Loads the config at `path` and applies environment and command-line overrides; the
/// error is the first problem [`inspect`] finds.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, String> {
    let (config, problems) = inspect(path, overrides).map_err(|problem| problem.report())?;
    match problems.into_iter().find(Problem::is_error) {
        Some(error) => Err(error.report()),
        None => Ok(config),
    }
}

/// Reads the config at `path` with every problem in it: the errors `serve` would stop at,
/// each with its line, and warnings (tokens others may read, no tokens). The settings
/// returned are those left once the errors are dropped: a wrong setting at its default, a
/// wrong token entry left out. Fails, with that one problem, only when the file cannot be
/// read, is empty (see [`refuse_empty`]) or is not TOML.
pub fn inspect(path: &Path, overrides: &Overrides) -> Result<(Config, Vec<Problem>), Problem> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problem::error(None, permissions::read_error(path, &e)))?;
    refuse_empty(
        "config",
        path,
        &text,
        &format!(
            "restore it from a backup, or write a new one with `tickit-sync init --config {0} \
             --force` and add tokens with `tickit-sync token --name NAME --config {0}`",
            path.display()
        ),
    )?;
    let mut problems = Vec::new();
    let (mut file, document) = lenient::parse::<ConfigFile>(path, "config", &text, &mut problems)?;
    mark_lines(&mut file.tokens, path, &text);
    problems.extend(exposed_tokens(path, &text, &file.tokens));
    let base = path.parent().unwrap_or(Path::new(""));
    let database = file.database(path);
    let mut entries: Vec<TokenEntry> = file.tokens.into_iter().map(Spanned::into_inner).collect();
    let tokens_file = file.tokens_file.as_ref().map(|name| base.join(name));
    if let Some(tokens_path) = &tokens_file {
        let line = setting_line(&document, &text, "", "tokens_file");
        entries.extend(read_tokens_file(
            tokens_path,
            place(path, line),
            &mut problems,
        ));
    }
    let (tokens, token_problems) = TokenSet::validate(&entries);
    problems.extend(token_problems);

    let server = file.server;
    let host = overrides
        .bind
        .clone()
        .or_else(|| env_string(ENV_HOST))
        .unwrap_or(server.bind);
    let port = match overrides.port {
        Some(port) => port,
        None => env_port()
            .unwrap_or_else(|e| {
                problems.push(Problem::error(None, e));
                None
            })
            .unwrap_or(server.port),
    };
    let listen = match host.strip_prefix("unix:") {
        Some(socket) => {
            let socket = base.join(socket);
            ListenAddr::Unix(std::path::absolute(&socket).unwrap_or(socket))
        }
        None => ListenAddr::Tcp { host, port },
    };
    let at = |section: &str, key: &str| {
        let line = setting_line(&document, &text, section, key);
        Some(place(path, line))
    };
    let must_be_positive = [
        ("server", "max_body_bytes", server.max_body_bytes),
        (
            "server",
            "max_bodies_in_flight_bytes",
            server.max_bodies_in_flight_bytes,
        ),
        (
            "server",
            "request_timeout_secs",
            server.request_timeout_secs,
        ),
        (
            "server",
            "keep_alive_timeout_secs",
            server.keep_alive_timeout_secs,
        ),
        ("server", "max_connections", server.max_connections as u64),
        (
            "sync",
            "max_records_per_request",
            file.sync.max_records_per_request as u64,
        ),
        ("sync", "max_text_bytes", file.sync.max_text_bytes as u64),
    ];
    for (section, key, _) in must_be_positive.iter().filter(|(_, _, value)| *value == 0) {
        problems.push(Problem::error(
            at(section, key),
            format!("[{section}] {key} must be more than 0"),
        ));
    }
    let metrics = file.metrics.and_then(|section| {
        metrics_address(path, &text, &section.bind)
            .map_err(|problem| problems.push(problem))
            .ok()
    });
    if server.max_bodies_in_flight_bytes < server.max_body_bytes {
        let written = at("server", "max_bodies_in_flight_bytes");
        problems.push(Problem::error(
            written.or_else(|| at("server", "max_body_bytes")),
            format!(
                "[server] max_bodies_in_flight_bytes ({}) must be at least max_body_bytes ({}), \
                 or the largest allowed request could never be read",
                server.max_bodies_in_flight_bytes, server.max_body_bytes
            ),
        ));
    }
    let config = Config {
        path: path.to_owned(),
        listen,
        database,
        max_body_bytes: server.max_body_bytes,
        max_bodies_in_flight_bytes: server.max_bodies_in_flight_bytes,
        header_read_timeout: Duration::from_secs(server.header_read_timeout_secs.max(1)),
        request_timeout: Duration::from_secs(server.request_timeout_secs),
        keep_alive_timeout: Duration::from_secs(server.keep_alive_timeout_secs),
        max_connections: server.max_connections,
        shutdown_grace: Duration::from_secs(server.shutdown_grace_secs),
        clock_skew_allowance: Duration::from_secs(file.sync.clock_skew_allowance_secs),
        max_records_per_request: file.sync.max_records_per_request,
        max_text_bytes: file.sync.max_text_bytes,
        tokens,
        tokens_file,
        metrics,
    };
    problems.extend(no_tokens(&config));
    Ok((config, problems))
}

/// `[metrics] bind` as an address to listen on; the problem names its line.
fn metrics_address(path: &Path, text: &str, bind: &Spanned<String>) -> Result<SocketAddr, Problem> {
    bind.as_ref().parse().map_err(|_| {
        Problem::error(
            Some(place(path, Some(line_at(text, bind.span().start)))),
            format!(
                "[metrics] bind = {:?} is not an IP address and port; write for example \
                 \"127.0.0.1:9184\" (this machine only) or \"[::1]:9184\"",
                bind.as_ref()
            ),
        )
    })
}

/// The `[[tokens]]` entries of the tokens file at `path`, named by the config at `named_at`;
/// what is wrong with it goes to `problems`, and an unreadable file gives no entries.
fn read_tokens_file(path: &Path, named_at: String, problems: &mut Vec<Problem>) -> Vec<TokenEntry> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            let message = format!("tokens_file: {}", permissions::read_error(path, &e));
            problems.push(Problem::error(Some(named_at), message));
            return Vec::new();
        }
    };
    let empty = refuse_empty(
        "tokens file",
        path,
        &text,
        "restore it from a backup, or, to have no tokens there, write a comment line in it",
    );
    let parsed =
        empty.and_then(|()| lenient::parse::<TokensFile>(path, "tokens file", &text, problems));
    match parsed {
        Ok((mut file, _)) => {
            mark_lines(&mut file.tokens, path, &text);
            problems.extend(exposed_tokens(path, &text, &file.tokens));
            file.tokens.into_iter().map(Spanned::into_inner).collect()
        }
        Err(problem) => {
            problems.push(problem);
            Vec::new()
        }
    }
}

/// A warning when the file at `path` holds plaintext tokens (`token`, or a `token_hash`
/// that is no argon2 string) and users besides its owner may read it.
fn exposed_tokens(path: &Path, text: &str, entries: &[Spanned<TokenEntry>]) -> Option<Problem> {
    let plaintext: Vec<String> = entries
        .iter()
        .filter(|entry| entry.get_ref().secret_kind() == Ok("plaintext"))
        .map(|entry| {
            let line = line_at(text, entry.span().start);
            format!("{:?} at line {line}", entry.get_ref().name)
        })
        .collect();
    if plaintext.is_empty() {
        return None;
    }
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    let readers = match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (true, true) => "its group and every user",
        (true, false) => "its group",
        (false, true) => "every user",
        (false, false) => return None,
    };
    let shown = path.display();
    Some(Problem::warning(
        Some(shown.to_string()),
        format!(
            "holds plaintext tokens ({}) and {readers} may read it (mode {mode:04o}). Replace \
             them with hashed tokens: `tickit-sync token --revoke NAME --config {shown}`, then \
             `tickit-sync token --name NAME --config {shown}`, and give that device its new \
             token; or, if tickit-sync runs as the file's owner, `chmod 600 {shown}`",
            plaintext.join(", ")
        ),
    ))
}

/// A warning when no token is accepted: every sync would be refused.
pub fn no_tokens(config: &Config) -> Option<Problem> {
    (config.tokens.len() == 0).then(|| {
        Problem::warning(
            Some(config.path.display().to_string()),
            format!(
                "no token is accepted, so every sync will be refused; add one with \
                 `tickit-sync token --name NAME --config {}`",
                config.path.display()
            ),
        )
    })
}

fn env_string(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn env_port() -> Result<Option<u16>, String> {
    env_string(ENV_PORT)
        .map(|text| {
            text.parse().map_err(|_| {
                format!(
                    "{ENV_PORT}={text:?} is not a port number (1-65535, or 0 for any free port)"
                )
            })
        })
        .transpose()
}

/// A new config file's text: every setting with its default, commented.
pub fn template() -> String {
    let server = ServerSection::default();
    let sync = SyncSection::default();
    format!(
        r#"# tickit-sync configuration. Every setting below shows its default.
# Environment variables override the file: TICKIT_SYNC_HOST, TICKIT_SYNC_PORT, TICKIT_SYNC_DB.

[server]
# Address to listen on: an IP address or host name, or "unix:/path/to/socket".
# Ignored when systemd passes a socket (socket activation).
bind = "{bind}"
port = {port}
# Largest request body accepted, in bytes; larger syncs get 413. A first sync of 10000
# tasks is about 3.5 MB; the original tickit-sync accepted 2 MB.
max_body_bytes = {max_body}
# Request bodies held in memory at once, over all connections, in bytes (at least
# max_body_bytes), each until its sync is applied. Requests beyond it wait up to 3
# seconds, then get 503 with Retry-After. A change applies to requests that start after it.
max_bodies_in_flight_bytes = {in_flight}
# Seconds a client may take to send its request headers, counted from the connection's
# start or the end of its previous request.
header_read_timeout_secs = {header_timeout}
# Seconds a client may take to send a request's body once its headers are in; a body
# not whole by then gets 408.
request_timeout_secs = {request_timeout}
# Seconds an idle connection is kept open between requests (at most
# header_read_timeout_secs).
keep_alive_timeout_secs = {keep_alive}
# Connections served at once. When all are taken, one is closed to make room for a new
# one: first those that have not sent a valid token, then idle ones, then syncs still
# sending their body (oldest first, answered 503); never a sync being applied.
max_connections = {max_connections}
# Seconds in-flight requests get to finish when the server is asked to stop.
shutdown_grace_secs = {grace}

[database]
# SQLite file; a relative path is relative to this file's directory. The original
# tickit-sync's database file works as it is: its tables are imported on the first start.
path = "tickit-sync.sqlite"

[sync]
# How many seconds server_time is set back, so devices whose clocks run behind the
# server's by up to this much never skip uploading a change.
clock_skew_allowance_secs = {skew}
# Records one sync request may carry; a device with more gets 413 naming this setting.
# Every other sync waits while one is applied: 10000 records take about half a second.
max_records_per_request = {max_records}
# Bytes any one string of a record (a title, a description, its id) may hold; longer
# gets 400 naming this setting.
max_text_bytes = {max_text}

# Prometheus metrics, served at GET /metrics on an address of their own, only when this
# section is here. They need no token: keep them on loopback (127.0.0.1) or a private
# network. A change takes effect at the next restart.
# [metrics]
# bind = "127.0.0.1:9184"

# Tokens: add one per device with `tickit-sync token --name NAME`; it is stored hashed.
# Entries may also hold a plaintext `token = "..."`, and an `account = "NAME"` to keep that
# device's tasks apart from the default (shared) account.
"#,
        bind = server.bind,
        port = server.port,
        max_body = server.max_body_bytes,
        in_flight = server.max_bodies_in_flight_bytes,
        header_timeout = server.header_read_timeout_secs,
        request_timeout = server.request_timeout_secs,
        keep_alive = server.keep_alive_timeout_secs,
        max_connections = server.max_connections,
        grace = server.shutdown_grace_secs,
        skew = sync.clock_skew_allowance_secs,
        max_records = sync.max_records_per_request,
        max_text = sync.max_text_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tickit-sync-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn template_loads_with_documented_defaults() {
        let dir = temp_dir("template");
        let path = write(&dir, &template());
        let config = load(&path, &Overrides::default()).unwrap();
        assert_eq!(
            config.listen,
            ListenAddr::Tcp {
                host: "0.0.0.0".into(),
                port: 3030
            }
        );
        assert_eq!(config.database, dir.join("tickit-sync.sqlite"));
        assert_eq!(config.max_body_bytes, 8 * 1024 * 1024);
        assert_eq!(config.clock_skew_allowance, Duration::from_secs(300));
    }

    #[tokio::test]
    async fn example_config_is_the_template_plus_tokens_and_loads() {
        let example = include_str!("../config.example.toml");
        assert!(
            example.starts_with(&template()),
            "config.example.toml must begin with `tickit-sync init`'s output"
        );
        let dir = temp_dir("example");
        let path = write(&dir, example);
        let config = load(&path, &Overrides::default()).unwrap();
        assert_eq!(config.tokens.len(), 3);
        assert_eq!(
            config
                .tokens
                .holder_of("replace-me-with-a-long-random-string")
                .await
                .map(|holder| holder.account.as_str()),
            Some("default")
        );
    }

    #[test]
    fn a_misspelt_setting_names_its_line() {
        let dir = temp_dir("typo");
        let path = write(&dir, "[server]\nbind = \"127.0.0.1\"\nprot = 3030\n");
        let error = load(&path, &Overrides::default()).unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("prot"), "{error}");
    }

    #[test]
    fn every_wrong_setting_and_entry_is_reported_with_its_line() {
        let dir = temp_dir("every-problem");
        let path = write(
            &dir,
            "[server]\nprot = 3030\nmax_body_bytes = 0\nport = \"x\"\n[sync]\nmax_text_bytes = 0\n\n\
             [[tokens]]\nname = \"a\"\ntoken = \"t1\"\n[[tokens]]\nname = \"b\"\ntoken = \"t1\"\n\
             [[tokens]]\ntoken = \"t2\"\n",
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (config, problems) = inspect(&path, &Overrides::default()).unwrap();
        let found: Vec<(String, &str)> = problems
            .iter()
            .map(|problem| {
                let place = problem.place.as_deref().unwrap_or_default();
                let line = place.strip_prefix(path.to_str().unwrap()).unwrap();
                let message = problem.message.split([',', ';']).next().unwrap();
                (line.to_owned(), message)
            })
            .collect();
        let same_token = format!(
            "token \"b\" holds the same token as \"a\" (at {} line 8)",
            path.display()
        );
        let expected = [
            (" line 2", "unknown field `prot`"),
            (" line 4", "invalid type: string \"x\""),
            (" line 14", "missing field `name`"),
            (" line 11", &*same_token),
            (" line 3", "[server] max_body_bytes must be more than 0"),
            (" line 6", "[sync] max_text_bytes must be more than 0"),
        ];
        let expected: Vec<(String, &str)> = expected
            .into_iter()
            .map(|(line, message)| (line.to_owned(), message))
            .collect();
        assert_eq!(found, expected);
        assert!(problems.iter().all(Problem::is_error));
        assert_eq!(config.tokens.len(), 1, "only \"a\" is valid");
        assert_eq!(
            config.listen.to_string(),
            "0.0.0.0:3030",
            "a wrong port is left out"
        );

        // `serve` stops at the first, quoting its line.
        let error = load(&path, &Overrides::default()).unwrap_err();
        assert!(error.contains("TOML parse error at line 2"), "{error}");
        assert!(error.contains("prot = 3030"), "{error}");
    }

    #[test]
    fn plaintext_tokens_others_may_read_and_no_tokens_are_warnings() {
        let dir = temp_dir("exposed");
        let path = write(
            &dir,
            "[[tokens]]\nname = \"a\"\ntoken = \"t1\"\n\n[[tokens]]\nname = \"b\"\n\
             hash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n\n\
             [[tokens]]\nname = \"c\"\ntoken_hash = \"t3\"\n",
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (_, problems) = inspect(&path, &Overrides::default()).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].severity, crate::problem::Severity::Warning);
        assert_eq!(problems[0].place.as_deref(), path.to_str());
        let message = &problems[0].message;
        assert!(
            message.starts_with(
                "holds plaintext tokens (\"a\" at line 1, \"c\" at line 9) and its group may \
                 read it (mode 0640)."
            ),
            "{message}"
        );
        assert!(message.ends_with(&format!("`chmod 600 {}`", path.display())));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(inspect(&path, &Overrides::default()).unwrap().1, []);

        std::fs::write(&path, "[server]\nport = 3030\n").unwrap();
        let (_, problems) = inspect(&path, &Overrides::default()).unwrap();
        let warnings: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [format!(
                "{0}: no token is accepted, so every sync will be refused; add one with \
                 `tickit-sync token --name NAME --config {0}`",
                path.display()
            )]
        );
        assert!(
            load(&path, &Overrides::default()).is_ok(),
            "warnings do not stop it"
        );
    }

    #[test]
    fn command_line_wins_and_unix_sockets_parse() {
        let dir = temp_dir("overrides");
        let path = write(&dir, "[server]\nbind = \"unix:sock\"\n");
        let config = load(&path, &Overrides::default()).unwrap();
        assert_eq!(config.listen, ListenAddr::Unix(dir.join("sock")));
        let overrides = Overrides {
            bind: Some("127.0.0.1".into()),
            port: Some(0),
        };
        let config = load(&path, &overrides).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
    }

    #[test]
    fn metrics_are_off_unless_asked_for_and_a_wrong_address_names_its_line() {
        let dir = temp_dir("metrics");
        let path = write(&dir, &template());
        assert_eq!(load(&path, &Overrides::default()).unwrap().metrics, None);
        let path = write(&dir, "[metrics]\nbind = \"127.0.0.1:9184\"\n");
        let config = load(&path, &Overrides::default()).unwrap();
        assert_eq!(config.metrics, Some("127.0.0.1:9184".parse().unwrap()));
        let path = write(
            &dir,
            "[server]\nport = 3030\n\n[metrics]\nbind = \"localhost\"\n",
        );
        let error = load(&path, &Overrides::default()).unwrap_err();
        assert!(error.contains("line 5"), "{error}");
        assert!(error.contains("[metrics] bind"), "{error}");
        let path = write(&dir, "[metrics]\nport = 9184\n");
        let error = load(&path, &Overrides::default()).unwrap_err();
        assert!(error.contains("missing field `bind`"), "{error}");
    }
}
