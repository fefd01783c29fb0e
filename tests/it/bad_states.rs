//! Bad states fail loudly: a database the server cannot write stops it before READY, a
//! database another process has locked answers 503, a config emptied while running or
//! listing a token twice is refused with the reason, and odd watchdog settings are survived.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

/// The database file of every test config, relative to its directory.
const DATABASE: &str = "tickit-sync.sqlite";

/// The user id the tests (and the servers they start) run as.
fn our_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .expect("read /proc/self")
        .uid()
}

/// A directory whose config keeps the database at `database` (relative), holding a database
/// a server has created, used and closed cleanly.
fn dir_with_used_database(database: &str) -> TempDir {
    let dir = dir_with_config(&config_with(&format!("[database]\npath = \"{database}\"")));
    if let Some(parent) = Path::new(database).parent() {
        std::fs::create_dir_all(dir.path().join(parent)).expect("create database directory");
    }
    let mut server = Server::start_in(dir, &[], &[]);
    server.sync_ok(TOKEN, &sync_body(DEVICE_A, None, vec![]));
    server.stop_ok();
    let dir = server.into_dir();
    let file = dir.path().join(database);
    assert!(file.is_file(), "{} was created", file.display());
    for beside in ["-wal", "-shm"] {
        let mut name = file.clone().into_os_string();
        name.push(beside);
        assert!(
            !Path::new(&name).exists(),
            "a clean stop leaves no {beside} file"
        );
    }
    dir
}

/// Starts `serve` in `dir` with `read_only` (a file or directory in it) stripped of write
/// permission, and waits for it to exit: its status, stderr, and every notification it sent.
/// Root may write anything, so as root the server runs without the capabilities that allow
/// it (CAP_DAC_OVERRIDE and friends), as a service running as root under
/// `CapabilityBoundingSet=` would.
fn refused_start(dir: TempDir, read_only: &Path) -> (ExitStatus, String, Vec<String>) {
    let wrapper: &[&str] = if our_uid() == 0 {
        &[
            "setpriv",
            "--inh-caps=-dac_override,-dac_read_search,-fowner",
            "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "--",
        ]
    } else {
        &[]
    };
    let path = dir.path().join(read_only);
    let writable = std::fs::metadata(&path).expect("stat").permissions();
    let mut stripped = writable.clone();
    stripped.set_mode(writable.mode() & !0o222);
    std::fs::set_permissions(&path, stripped).expect("make read-only");

    let command = serve_command(wrapper, &["--bind", "127.0.0.1", "--port", "0"]);
    let mut server = Server::spawn_command(dir, command);
    let (status, stderr) = server.wait_exit();
    server.collect_messages_for(Duration::from_millis(100));
    // Writable again, so the directory can be removed.
    std::fs::set_permissions(&path, writable).expect("restore permissions");
    (status, stderr, server.messages.clone())
}

#[test]
fn a_read_only_database_file_stops_serve_before_ready() {
    let dir = dir_with_used_database(DATABASE);
    let (status, stderr, messages) = refused_start(dir, Path::new(DATABASE));
    assert_eq!(status.code(), Some(1), "{stderr}");
    let uid = our_uid();
    assert_eq!(
        stderr,
        format!(
            "error: cannot write {DATABASE}: Permission denied (os error 13). The file must be \
             writable by uid {uid} (the user tickit-sync runs as): run `chown {uid} {DATABASE}` \
             and `chmod u+w {DATABASE}`, or choose another place with [database] path or \
             TICKIT_SYNC_DB\n"
        )
    );
    assert_eq!(
        messages,
        Vec::<String>::new(),
        "no READY, nor anything else"
    );
}

#[test]
fn a_read_only_database_directory_stops_serve_before_ready() {
    let database = "data/tickit-sync.sqlite";
    let dir = dir_with_used_database(database);
    let data = std::path::absolute(dir.path().join("data")).unwrap();
    let (status, stderr, messages) = refused_start(dir, Path::new("data"));
    assert_eq!(status.code(), Some(1), "{stderr}");
    let uid = our_uid();
    // SQLite's own words for it vary with the step that failed.
    let (before, after) = stderr
        .split_once(" (SQLite creates its -wal and -shm files beside it). ")
        .unwrap_or_else(|| panic!("the reason names the files SQLite creates: {stderr}"));
    assert!(
        before.starts_with(&format!("error: cannot write {database}: ")),
        "{stderr}"
    );
    assert_eq!(
        after,
        format!(
            "Its directory {} must be writable by uid {uid} (the user tickit-sync runs as): for \
             a container volume run `chown {uid} <host directory>`, or choose another place \
             with [database] path or TICKIT_SYNC_DB\n",
            data.display()
        )
    );
    assert_eq!(
        messages,
        Vec::<String>::new(),
        "no READY, nor anything else"
    );
}

#[test]
fn a_database_path_naming_a_directory_stops_serve_saying_so() {
    let dir = dir_with_config(&config_with("[database]\npath = \"data\""));
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let output = run_cli(dir.path(), &["serve", "--bind", "127.0.0.1", "--port", "0"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: database data is a directory; set [database] path or TICKIT_SYNC_DB to a file \
         in it, e.g. data/tickit-sync.sqlite\n"
    );
}

#[test]
fn a_locked_database_answers_503_with_retry_after_and_changes_nothing() {
    let mut server = Server::start();
    let creating = sync_body(
        DEVICE_A,
        None,
        vec![task(
            NEW_TASK,
            "held back by a lock",
            NEW_LIST,
            "2026-11-24T22:45:21Z",
        )],
    );
    let sync_request = |server: &Server| {
        server.request(
            "POST",
            "/api/v1/sync",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            creating.to_string().as_bytes(),
        )
    };

    // Another process holds the write lock, as `sqlite3 db 'BEGIN EXCLUSIVE'` would.
    let holder = rusqlite::Connection::open(server.dir.path().join(DATABASE)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let refused = sync_request(&server);
    let waited = started.elapsed();
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("2"));
    assert_eq!(
        refused.json(),
        json!({"error": "the server's database is busy (locked by another process); nothing \
                         was changed, sync again in a moment"})
    );
    assert!(
        waited < Duration::from_secs(3),
        "the writer waited {waited:?} for the lock"
    );
    // The writer is not wedged: the next request is refused as quickly.
    let started = Instant::now();
    assert_eq!(sync_request(&server).status, 503);
    assert!(started.elapsed() < Duration::from_secs(3));
    holder.execute_batch("COMMIT").unwrap();

    assert_eq!(ids(&everything(&server, DEVICE_C)), Vec::<String>::new());
    let accepted = sync_request(&server);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(ids(&everything(&server, DEVICE_D)), [NEW_TASK]);
    drop(holder);

    let stderr = server.stop_ok();
    assert!(
        stderr.contains(
            "warning: sync for account \"default\" refused, nothing was changed: another \
             process holds a lock on the database (database is locked); stop whatever has it \
             open\n"
        ),
        "{stderr}"
    );
}

#[test]
fn a_config_emptied_while_running_keeps_the_previous_tokens() {
    let mut server = Server::start();
    std::fs::write(server.dir.path().join("config.toml"), "").expect("truncate config");
    // Noticed by the file watcher, not a signal.
    server.wait_for_message(
        "READY=1\nSTATUS=reload failed, still using the previous configuration; see the log",
    );
    assert_eq!(sync_status(&server, TOKEN), 200);
    assert_eq!(sync_status(&server, OTHER_ACCOUNT_TOKEN), 200);

    let stderr = server.stop_ok();
    assert!(
        stderr.contains(
            "error: reload (the file changed) failed, still using the previous config: config \
             config.toml is empty, as a file truncated by accident is, so it is not loaded (its \
             tokens would be gone); restore it from a backup, or write a new one with \
             `tickit-sync init --config config.toml --force` and add tokens with `tickit-sync \
             token --name NAME --config config.toml`\n"
        ),
        "{stderr}"
    );
}

#[test]
fn an_empty_config_stops_serve_saying_how_to_restore_it() {
    let dir = dir_with_config("\n  \n");
    let output = run_cli(dir.path(), &["serve", "--bind", "127.0.0.1", "--port", "0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: config config.toml is empty, as a file truncated"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
        "\n  \n",
        "left as it was"
    );
}

#[test]
fn a_token_or_a_name_listed_twice_stops_serve_naming_both_lines() {
    let serve = |config: &str| {
        let dir = dir_with_config(config);
        let output = run_cli(dir.path(), &["serve", "--bind", "127.0.0.1", "--port", "0"]);
        assert_eq!(output.status.code(), Some(1));
        stderr(&output)
    };
    let same_token = serve(&format!(
        "[[tokens]]\nname = \"laptop\"\ntoken = \"{TOKEN}\"\n\n\
         [[tokens]]\nname = \"tablet\"\ntoken = \"{TOKEN}\"\naccount = \"kids\"\n"
    ));
    assert_eq!(
        same_token,
        "error: config.toml line 5: token \"tablet\" holds the same token as \"laptop\" (at \
         config.toml line 1), so the server could not tell whether that device is in account \
         \"default\" or \"kids\"; each device needs a token of its own: delete one of the two \
         entries, and give that device a new token with `tickit-sync token --name NAME`\n"
    );

    let same_name = serve(&format!(
        "# two laptops\n[[tokens]]\nname = \"laptop\"\ntoken = \"{TOKEN}\"\n\n\
         [[tokens]]\nname = \"laptop\"\ntoken = \"{TOKEN_2}\"\n"
    ));
    assert_eq!(
        same_name,
        "error: config.toml line 6: a second token named \"laptop\" (the first is at \
         config.toml line 2); give each entry a name of its own, so that `tickit-sync token \
         --revoke NAME` removes the one meant\n"
    );
}

#[test]
fn odd_watchdog_settings_warn_and_the_server_runs() {
    let cases = [
        (
            "0",
            "warning: WATCHDOG_USEC=0 turns the watchdog off",
            false,
        ),
        (
            "garbage",
            "warning: WATCHDOG_USEC=\"garbage\" is not a number of microseconds",
            false,
        ),
        (
            "1",
            "warning: WATCHDOG_USEC=1 (1µs) is shorter than tickit-sync can keep up with; \
             pinging every 100ms",
            true,
        ),
        ("18446744073709551614", "", true),
    ];
    for (value, warning, pings) in cases {
        let mut server = Server::start_with(&config_with(""), &[], &[("WATCHDOG_USEC", value)]);
        // The health report's first round comes right after READY.
        let report = server.wait_for_message("STATUS=0 accounts");
        assert_eq!(
            report.starts_with("WATCHDOG=1\n"),
            pings,
            "WATCHDOG_USEC={value}: {report:?}"
        );
        assert_eq!(sync_status(&server, TOKEN), 200, "WATCHDOG_USEC={value}");
        let stderr = server.stop_ok();
        assert!(stderr.contains(warning), "WATCHDOG_USEC={value}: {stderr}");
        assert_eq!(
            stderr.matches("warning").count(),
            usize::from(!warning.is_empty()),
            "WATCHDOG_USEC={value}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
