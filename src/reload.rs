//! Picks up config changes without a restart: on SIGHUP, and by itself when the config file
//! (or its tokens file) changes. An invalid new config is reported and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, Config, Overrides};
use crate::systemd;

/// How often the config files are compared with what was loaded.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Runs until the runtime stops, publishing each successfully reloaded config.
pub async fn watch_config(
    path: PathBuf,
    overrides: Overrides,
    published: watch::Sender<Arc<Config>>,
) {
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(e) => {
            eprintln!(
                "warning: cannot listen for SIGHUP, reload by editing the config instead: {e}"
            );
            None
        }
    };
    let mut seen = fingerprint(&published.borrow());
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
                if fingerprint(&published.borrow()) == seen {
                    continue;
                }
                "the file changed"
            }
        };
        systemd::reloading();
        match config::load(&path, &overrides) {
            Ok(new) => {
                warn_about_restart_only_settings(&published.borrow(), &new);
                eprintln!(
                    "reloaded {} ({reason}): {} tokens",
                    path.display(),
                    new.tokens.len()
                );
                seen = fingerprint(&new);
                published.send_replace(Arc::new(new));
            }
            Err(e) => {
                eprintln!("error: reload ({reason}) failed, still using the previous config: {e}");
                seen = fingerprint(&published.borrow());
            }
        }
        systemd::ready("reloaded configuration");
    }
}

/// The contents of every file the config was built from.
fn fingerprint(config: &Config) -> Vec<Option<Vec<u8>>> {
    config
        .source_files()
        .iter()
        .map(|file| read(file))
        .collect()
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
    if old.database != new.database {
        eprintln!(
            "warning: the database path changed to {}; restart tickit-sync to apply it",
            new.database.display()
        );
    }
}
