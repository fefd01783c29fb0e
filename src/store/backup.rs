//! `tickit-sync backup`: a consistent copy of the database, taken while the server runs.
//! SQLite's `VACUUM INTO` reads one snapshot through a read-only connection (the writer goes
//! on meanwhile) into a new file beside the destination; the copy is marked for a restore
//! ([`restore::mark_copy`](super::restore::mark_copy)), checked with `integrity_check`,
//! flushed to disk, and only then renamed into place, so the destination is either the old
//! file or a whole, checked copy.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::restore::mark_copy;
use super::{connection, open_migrated, read_only};
use crate::timestamp::now_nanos;

/// What a backup copied.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub records: u64,
    pub devices: u64,
}

/// Copies the database at `database` to `destination` (a file, or a directory to put a
/// dated file in), replacing what is there.
pub fn backup(database: &Path, destination: &Path) -> Result<BackupReport, String> {
    let destination = if destination.is_dir() {
        let taken = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        destination.join(format!("tickit-sync-{taken}.sqlite"))
    } else {
        destination.to_owned()
    };
    refuse_the_database_itself(database, &destination)?;
    let partial = partial_path(&destination)?;
    let copied = copy_to(database, &partial).and_then(|()| {
        finish(&partial).map_err(|e| {
            format!(
                "the copy {} failed its check ({e}); the database itself was only read: try \
                 again, and run `tickit-sync check` if it fails again",
                partial.display()
            )
        })
    });
    let report = copied.and_then(|report| {
        std::fs::rename(&partial, &destination)
            .and_then(|()| sync_directory(&destination))
            .map_err(|e| format!("cannot put the backup at {}: {e}", destination.display()))
            .map(|()| report)
    });
    match report {
        Ok((records, devices)) => Ok(BackupReport {
            bytes: std::fs::metadata(&destination).map_or(0, |meta| meta.len()),
            path: destination,
            records,
            devices,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Refuses to write over the database (or its `-wal` and `-shm` files).
fn refuse_the_database_itself(database: &Path, destination: &Path) -> Result<(), String> {
    let identity = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()))
    };
    let Some(target) = identity(destination) else {
        return Ok(());
    };
    let database_files = ["", "-wal", "-shm"].map(|suffix| connection::beside(database, suffix));
    if database_files
        .iter()
        .any(|file| identity(file) == Some(target))
    {
        return Err(format!(
            "{} is the database itself; give the backup a path of its own, e.g. {}",
            destination.display(),
            database.with_extension("backup.sqlite").display()
        ));
    }
    Ok(())
}

/// The file the copy is written to before it is renamed to `destination`: hidden, beside
/// it (a rename within one directory is atomic), and empty, readable by its owner only (the
/// copy holds every task).
fn partial_path(destination: &Path) -> Result<PathBuf, String> {
    let name = destination
        .file_name()
        .ok_or_else(|| format!("{} names no file to write", destination.display()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = destination.with_file_name(partial_name);
    let _ = std::fs::remove_file(&partial);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| {
            let dir = partial.parent().unwrap_or(Path::new("."));
            format!(
                "cannot write the backup in {}: {e}; choose a directory you may write to",
                dir.display()
            )
        })?;
    Ok(partial)
}

/// Writes one snapshot of `database` into the empty file `partial`.
fn copy_to(database: &Path, partial: &Path) -> Result<(), String> {
    let source = read_only::open(database)?;
    let target = partial.to_str().ok_or_else(|| {
        format!(
            "{} is not valid UTF-8; choose another path",
            partial.display()
        )
    })?;
    source
        .execute("VACUUM INTO ?1", [target])
        .map_err(|e| format!("cannot copy database {}: {e}", database.display()))?;
    Ok(())
}

/// Brings the copy's schema up to date (a stopped server's database may predate this
/// release), marks it for a restore, checks it whole, and flushes it to disk; its records
/// and devices.
fn finish(partial: &Path) -> Result<(u64, u64), String> {
    let copy = open_migrated(partial)?;
    let failed = |e: rusqlite::Error| e.to_string();
    mark_copy(&copy, now_nanos()).map_err(failed)?;
    let verdict: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(failed)?;
    if verdict != "ok" {
        return Err(format!("integrity_check says: {verdict}"));
    }
    let counts = copy
        .query_row(
            "SELECT (SELECT COUNT(*) FROM records WHERE deleted = 0),
                    (SELECT COUNT(*) FROM devices)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(failed)?;
    // Closing checkpoints the copy's WAL into it and removes the WAL.
    copy.close().map_err(|(_, e)| failed(e))?;
    File::open(partial)
        .and_then(|file| file.sync_all())
        .map_err(|e| format!("cannot flush it to disk: {e}"))?;
    Ok(counts)
}

/// Flushes the directory entry of a file just renamed, so the rename survives power loss.
fn sync_directory(file: &Path) -> io::Result<()> {
    let dir = file.parent().filter(|dir| !dir.as_os_str().is_empty());
    File::open(dir.unwrap_or(Path::new("."))).and_then(|dir| dir.sync_all())
}
