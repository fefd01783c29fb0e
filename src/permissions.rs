//! Advice for the most common start-up failures in containers and services: a file the
//! server's user cannot read, or a file or directory it cannot write.

use std::io;
use std::path::Path;

/// EROFS: the file system is mounted read-only.
const READ_ONLY_FILE_SYSTEM: i32 = 30;

/// Explains an error reading `path`, saying what to do about it.
pub fn read_error(path: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "{} does not exist; create it with `tickit-sync init --config {}`",
            path.display(),
            path.display()
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot read {}: permission denied; make it readable by the user running tickit-sync",
            path.display()
        ),
        _ => format!("cannot read {}: {e}", path.display()),
    }
}

/// Explains an error writing `path`, naming the user id that lacks the permission.
pub fn write_error(path: &Path, e: &io::Error, setting: &str) -> String {
    let shown = path.display();
    if e.kind() == io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(READ_ONLY_FILE_SYSTEM)
    {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        return format!(
            "cannot write {shown}: {e}. Its directory {} must be writable by uid {uid} (the user \
             tickit-sync runs as): for a container volume run `chown {uid} <host directory>`, \
             or choose another place with {setting}",
            dir.display(),
            uid = current_uid()
        );
    }
    format!("cannot write {shown}: {e}; choose another place with {setting}")
}

/// Explains an error opening the existing file `path` for writing, naming the user id that
/// lacks the permission.
pub fn file_write_error(path: &Path, e: &io::Error, setting: &str) -> String {
    let shown = path.display();
    if e.raw_os_error() == Some(READ_ONLY_FILE_SYSTEM) {
        return format!(
            "cannot write {shown}: {e}; remount it read-write (for a container, a volume not \
             mounted `:ro`), or choose another place with {setting}"
        );
    }
    if e.kind() == io::ErrorKind::PermissionDenied {
        return format!(
            "cannot write {shown}: {e}. The file must be writable by uid {uid} (the user \
             tickit-sync runs as): run `chown {uid} {shown}` and `chmod u+w {shown}`, or \
             choose another place with {setting}",
            uid = current_uid()
        );
    }
    format!("cannot write {shown}: {e}; choose another place with {setting}")
}

/// The real user id of this process, read without unsafe code.
fn current_uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}
