//! Picks up config changes without a restart: on SIGHUP, and by itself when the config file
//! (or its tokens file) changes. An invalid or empty new config (a file truncated by
//! accident, or caught halfway through a write) is reported and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, Config, Overrides};
use crate::systemd;

/// How often the config files are compared with what was loaded.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Listens for SIGHUP now (before READY=1, so an early SIGHUP cannot kill the process) and
/// returns the watcher, which runs until the runtime stops, publishing each successfully
/// reloaded config. `loaded_from` holds the files' contents as read before the running
/// config was loaded from them.
pub fn watch_config(
    path: PathBuf,
    overrides: Overrides,
    published: watch::Sender<Arc<Config>>,
    loaded_from: Snapshot,
) -> impl Future<Output = ()> {
    let hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(e) => {
            eprintln!(
                "warning: cannot listen for SIGHUP, reload by editing the config instead: {e}"
            );
            None
        }
    };
    run_watcher(path, overrides, published, loaded_from, hangup)
}

async fn run_watcher(
    path: PathBuf,
    overrides: Overrides,
    published: watch::Sender<Arc<Config>>,
    loaded_from: Snapshot,
    mut hangup: Option<Signal>,
) {
    let mut seen = loaded_from.covering(&published.borrow());
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        let signalled = async {
            match hangup.as_mut() {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = signalled => "SIGHUP",
            _ = tick.tick() => {
                if seen.is_current() {
                    continue;
                }
                "the file changed"
            }
        };
        systemd::reloading();
        // Read before loading: an edit racing the load then still differs at the next poll.
        let before = seen.reread();
        let outcome = match config::load(&path, &overrides) {
            Ok(new) => {
                warn_about_restart_only_settings(&published.borrow(), &new);
                new.tokens.keep_verified_from(&published.borrow().tokens);
                eprintln!(
                    "reloaded {} ({reason}): {} tokens",
                    path.display(),
                    new.tokens.len()
                );
                seen = before.covering(&new);
                published.send_replace(Arc::new(new));
                "reloaded configuration"
            }
            Err(e) => {
                eprintln!("error: reload ({reason}) failed, still using the previous config: {e}");
                seen = before;
                "reload failed, still using the previous configuration; see the log"
            }
        };
        // READY=1 ends the reload either way; the status says which way it went.
        systemd::ready(outcome);
    }
}

/// The contents of the files a config is built from, as read at one moment.
pub struct Snapshot(Vec<(PathBuf, Option<Vec<u8>>)>);

impl Snapshot {
    /// Reads the config file at `path` now; take it before loading the config.
    pub fn before_loading(path: &Path) -> Snapshot {
        Snapshot(vec![(path.to_owned(), read(path))])
    }

    /// The same files, read again now.
    fn reread(&self) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .map(|(path, _)| (path.clone(), read(path)))
                .collect(),
        )
    }

    /// Exactly `config`'s files: those this snapshot holds keep their contents, others (a
    /// newly named tokens file) are read now.
    fn covering(self, config: &Config) -> Snapshot {
        let mut known = self.0;
        let mut files = Vec::new();
        for file in config.source_files() {
            match known.iter().position(|(path, _)| path == file) {
                Some(index) => files.push(known.swap_remove(index)),
                None => files.push((file.to_owned(), read(file))),
            }
        }
        Snapshot(files)
    }

    /// True when every file still holds what was read.
    fn is_current(&self) -> bool {
        self.0
            .iter()
            .all(|(path, contents)| read(path) == *contents)
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn warn_about_restart_only_settings(old: &Config, new: &Config) {
    if old.listen != new.listen {
        eprintln!(
            "warning: the listen address changed to {}; restart tickit-sync to apply it",
            new.listen
        );
    }
    if old.metrics != new.metrics {
        eprintln!("warning: [metrics] changed; restart tickit-sync to apply it");
    }
    if old.database != new.database {
        eprintln!(
            "warning: the database path changed to {}; restart tickit-sync to apply it",
            new.database.display()
        );
    }
}
