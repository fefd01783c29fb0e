//! The changes our commands make to a config file, made safely: serialised by a lock file
//! beside it, so two `token` commands run at once both land; and written whole and durably
//! (a temporary file beside it, fsync, rename over it, fsync the directory), so neither a
//! running server nor a crash ever sees half a file. The file keeps its permissions and
//! owner, and a symbolic link to it stays a link.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::permissions;

/// The settings that choose the config file.
pub const SETTING: &str = "--config or TICKIT_SYNC_CONFIG";

/// Replaces the config at `path` by what `change` makes of its text (`None` when there is no
/// file yet), holding the lock from reading to writing. Nothing is written if `change` fails.
pub fn edit(
    path: &Path,
    change: impl FnOnce(Option<&str>) -> Result<String, String>,
) -> Result<(), String> {
    let target = link_target(path);
    let _lock = lock(&target)?;
    let text = match std::fs::read_to_string(&target) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(permissions::read_error(path, &e)),
    };
    let new_text = change(text.as_deref())?;
    replace(&target, &new_text)
}

/// The file `path` names: the one a symbolic link points at, so editing keeps the link.
fn link_target(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Waits for, then holds until dropped, the lock of the config at `path`: an exclusive
/// `flock` on `<file name>.lock` beside it. The lock file is left in place, as removing it
/// would let a waiting command lock a file nobody else sees.
fn lock(path: &Path) -> Result<File, String> {
    let lock_path = sibling(path, ".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        // Another user's lock file (root ran `token` before) locks as well when only read.
        .or_else(|_| File::open(&lock_path))
        .map_err(|e| permissions::write_error(&lock_path, &e, SETTING))?;
    file.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    Ok(file)
}

/// Writes `text` to a temporary file beside `path` with the same owner and permissions,
/// flushes it to disk, renames it over `path`, then flushes the directory entry.
fn replace(path: &Path, text: &str) -> Result<(), String> {
    let temporary = sibling(path, ".tmp");
    let existing = std::fs::metadata(path).ok();
    let cannot_write = |e: io::Error| permissions::write_error(&temporary, &e, SETTING);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        // Readable by nobody else until it has the old file's permissions.
        .mode(if existing.is_some() { 0o600 } else { 0o666 })
        .open(&temporary)
        .map_err(cannot_write)?;
    let written = match &existing {
        Some(existing) => keep_owner_and_permissions(&file, existing, path),
        None => Ok(()),
    }
    .and_then(|()| {
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(cannot_write)
    })
    .and_then(|()| {
        std::fs::rename(&temporary, path).map_err(|e| permissions::write_error(path, &e, SETTING))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| format!("cannot flush directory {} to disk: {e}", dir.display()))
}

/// Gives the new file `file` the owner and permissions of the one it replaces, so that a
/// config edited by root stays readable by the user the server runs as.
fn keep_owner_and_permissions(
    file: &File,
    existing: &std::fs::Metadata,
    path: &Path,
) -> Result<(), String> {
    let owner = (existing.uid(), existing.gid());
    let created = file.metadata().map_err(|e| e.to_string())?;
    if (created.uid(), created.gid()) != owner {
        std::os::unix::fs::fchown(file, Some(owner.0), Some(owner.1)).map_err(|e| {
            format!(
                "cannot give the new {} the owner of the old one (uid {}, gid {}): {e}; run \
                 this command as that user, or as root",
                path.display(),
                owner.0,
                owner.1
            )
        })?;
    }
    file.set_permissions(existing.permissions())
        .map_err(|e| format!("cannot copy the permissions of {}: {e}", path.display()))
}

/// `path` with `suffix` added to its file name: `config.toml` -> `config.toml.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}
