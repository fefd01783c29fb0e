//! The commands for the person running the server: `devices`, `token --list`'s last use,
//! `backup`, and a restore from a backup, against the real binary.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::desktop_model::{Action, Clock, Device};
use crate::harness::*;

/// A sync of `body` with `token`, sent with `user_agent` (none when `None`).
fn sync_as(server: &Server, token: &str, user_agent: Option<&str>, body: &Value) -> Value {
    let authorization = format!("Bearer {token}");
    let mut headers = vec![
        ("Authorization", authorization.as_str()),
        ("Content-Type", "application/json"),
    ];
    headers.extend(user_agent.map(|agent| ("User-Agent", agent)));
    let response = server.request(
        "POST",
        "/api/v1/sync",
        &headers,
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.json());
    response.json()
}

/// The files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort_unstable();
    files
}

fn devices_json(dir: &Path, args: &[&str]) -> Value {
    let mut words = vec!["devices", "--json"];
    words.extend_from_slice(args);
    let output = run_cli(dir, &words);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("devices --json prints JSON")
}

#[test]
fn devices_lists_each_device_with_its_token_client_and_what_waits_for_it() {
    let mut server = Server::start();
    let dir = server.dir.path().to_owned();
    let laptop = Some("tickit/0.5.8");
    sync_as(
        &server,
        TOKEN,
        laptop,
        &sync_body(
            DEVICE_A,
            None,
            vec![task(NEW_TASK, "One", NEW_LIST, "2026-11-24T10:00:00Z")],
        ),
    );
    let phone_answer = sync_as(&server, TOKEN_2, None, &sync_body(DEVICE_B, None, vec![]));
    assert_eq!(ids(&phone_answer), [NEW_TASK]);
    sync_as(
        &server,
        TOKEN,
        laptop,
        &sync_body(
            DEVICE_A,
            None,
            vec![
                task(NEW_TASK_2, "Two", NEW_LIST, "2026-11-24T10:01:00Z"),
                tag(NEW_TAG, "errands", "2026-11-24T10:01:00Z"),
            ],
        ),
    );

    for running in [true, false] {
        let listed = devices_json(&dir, &[]);
        let devices = listed["devices"].as_array().expect("a devices array");
        assert_eq!(devices.len(), 2, "{listed}");
        let (laptop, phone) = (&devices[0], &devices[1]);
        assert_eq!(
            laptop["device"], DEVICE_A,
            "the latest sync first: {listed}"
        );
        assert_eq!(laptop["account"], "default");
        assert_eq!(laptop["token"], "a");
        assert_eq!(laptop["user_agent"], "tickit/0.5.8");
        assert_eq!(
            laptop["client"],
            json!({"name": "tickit", "version": "0.5.8"})
        );
        assert_eq!(laptop["waiting_changes"], 0);
        assert_eq!(laptop["last_sync_seconds_ago"], 0, "{listed}");
        assert_eq!(laptop["clock_warning"], Value::Null);
        assert!(
            laptop["first_seen"]
                .as_str()
                .is_some_and(|at| at.ends_with('Z'))
        );
        assert_eq!(phone["device"], DEVICE_B);
        assert_eq!(phone["token"], "b");
        assert_eq!(phone["user_agent"], Value::Null);
        assert_eq!(phone["client"], Value::Null);
        assert_eq!(phone["waiting_changes"], 2, "a task and a tag: {listed}");

        let table = stdout(&run_cli(&dir, &["devices"]));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("ACCOUNT  TOKEN  DEVICE    LAST SYNC"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("default  a      a1c2e3f4  "),
            "{table}"
        );
        assert!(lines[1].contains("(just now)"), "{table}");
        assert!(lines[1].contains("  tickit 0.5.8  "), "{table}");
        assert!(lines[2].contains("  no User-Agent  "), "{table}");
        assert!(lines[2].ends_with("  2        -"), "{table}");

        let tokens = stdout(&run_cli(&dir, &["token", "--list"]));
        let last_uses: Vec<(&str, bool)> = tokens
            .lines()
            .map(|line| {
                let name = line.split('\t').next().unwrap_or("");
                (name, line.ends_with("(just now)"))
            })
            .collect();
        assert_eq!(
            last_uses,
            [("a", true), ("b", true), ("other", false)],
            "{tokens}"
        );
        assert!(tokens.ends_with("last use: never\n"), "{tokens}");

        let other = run_cli(&dir, &["devices", "--account", "other"]);
        assert_eq!(
            stdout(&other),
            "No device of account \"other\" has synced yet.\n"
        );
        if running {
            server.stop_ok();
        }
    }
    // TICKIT_SYNC_DB alone names the database: no config file needed (a NixOS or systemd
    // install keeps its config elsewhere).
    let elsewhere = TempDir::new();
    let by_environment = std::process::Command::new(binary())
        .args(["devices", "--json"])
        .current_dir(elsewhere.path())
        .env_remove("TICKIT_SYNC_CONFIG")
        .env("TICKIT_SYNC_DB", dir.join("tickit-sync.sqlite"))
        .output()
        .expect("run tickit-sync devices");
    assert!(
        by_environment.status.success(),
        "{}",
        stderr(&by_environment)
    );
    let listed: Value = serde_json::from_str(&stdout(&by_environment)).expect("JSON");
    assert_eq!(listed["devices"].as_array().map(Vec::len), Some(2));
    assert!(
        !files_in(&dir)
            .iter()
            .any(|file| file.ends_with("-wal") || file.ends_with("-shm")),
        "reading a stopped server's database leaves nothing beside it: {:?}",
        files_in(&dir)
    );
}

#[test]
fn devices_without_a_database_says_where_it_looked() {
    let dir = dir_with_config(&config_with(""));
    let output = run_cli(dir.path(), &["devices"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: no database at "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn backup_writes_a_checked_private_copy_and_refuses_the_database_itself() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let dir = server.dir.path().to_owned();
    server.sync_ok(
        TOKEN,
        &sync_body(
            DEVICE_A,
            None,
            vec![task(NEW_TASK, "One", NEW_LIST, "2026-11-24T10:00:00Z")],
        ),
    );
    let output = run_cli(&dir, &["backup", "copy.sqlite"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let copy = dir.join("copy.sqlite");
    assert_eq!(
        stdout(&output),
        format!(
            "Backed up tickit-sync.sqlite to copy.sqlite: {} bytes, 1 records (tasks, lists, \
             tags), 1 devices; integrity_check: ok. Restoring: see `tickit-sync backup --help`.\n",
            std::fs::metadata(&copy).unwrap().len()
        )
    );
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the copy holds every task");
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let titles: Vec<String> = conn
        .prepare("SELECT json_extract(body, '$.title') FROM records WHERE kind = 'task'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(titles, ["One"]);
    drop(conn);

    std::fs::create_dir(dir.join("backups")).unwrap();
    let output = run_cli(&dir, &["backup", "backups"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let dated = files_in(&dir.join("backups"));
    assert_eq!(dated.len(), 1, "{dated:?}");
    assert!(
        dated[0].starts_with("tickit-sync-") && dated[0].ends_with("Z.sqlite"),
        "{dated:?}"
    );

    let output = run_cli(&dir, &["backup", "tickit-sync.sqlite"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: tickit-sync.sqlite is the database itself"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        files_in(&dir)
            .into_iter()
            .filter(|file| file.contains("partial"))
            .count(),
        0
    );
}

/// A device of the desktop model that syncs with `token` over HTTP.
struct Desktop {
    token: &'static str,
    device: Device,
    added: usize,
}

impl Desktop {
    fn new(token: &'static str, device_id: &str, inbox_id: &str) -> Desktop {
        Desktop {
            token,
            device: Device::new(device_id, inbox_id, Clock::Offset(Default::default())),
            added: 0,
        }
    }

    /// `tickit add TITLE` into its inbox; the task's id.
    fn add(&mut self, title: &str) -> String {
        self.added += 1;
        let id = uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .to_string();
        let action = Action::AddTask {
            id: id.clone(),
            title: title.to_owned(),
            list_id: self.device.inbox_id().to_owned(),
            tag_ids: Vec::new(),
            priority: "medium".to_owned(),
            due: None,
        };
        self.device.perform(&action).expect("add a task");
        id
    }

    /// `tickit sync`.
    fn sync(&mut self, port: u16) {
        let request = self.device.sync_request(false);
        let authorization = format!("Bearer {}", self.token);
        let response = http_request(
            port,
            "POST",
            "/api/v1/sync",
            &[
                ("Authorization", &authorization),
                ("Content-Type", "application/json"),
            ],
            request.to_string().as_bytes(),
        );
        assert_eq!(response.status, 200, "{}", response.json());
        self.device
            .apply_response(&response.json())
            .expect("the answer applies");
    }

    /// Its tasks' ids and titles.
    fn tasks(&self) -> BTreeSet<(String, String)> {
        self.device
            .tasks
            .iter()
            .map(|(id, task)| (id.to_owned(), task.title.clone()))
            .collect()
    }
}

#[test]
fn a_backup_taken_during_syncs_restores_and_every_device_converges_with_nothing_lost() {
    // With server_time not set back, a device uploads only what changed since its last sync
    // (as it does with the default allowance once five minutes have passed).
    let mut server =
        Server::start_with_config(&config_with("[sync]\nclock_skew_allowance_secs = 0\n"));
    let dir = server.dir.path().to_owned();
    let port = server.port;
    let mut laptop = Desktop::new(TOKEN, DEVICE_A, "0a000000-0000-4000-8000-00000000000a");
    let mut phone = Desktop::new(TOKEN_2, DEVICE_B, "0b000000-0000-4000-8000-00000000000b");
    let mut desk = Desktop::new(TOKEN, DEVICE_C, "0c000000-0000-4000-8000-00000000000c");
    for device in [&mut laptop, &mut phone, &mut desk] {
        device.add("before the backup");
        device.sync(port);
    }

    // Two devices add and sync without pause while the backup is taken.
    let stop = AtomicBool::new(false);
    let (started, syncing_started) = std::sync::mpsc::channel();
    let backup = std::thread::scope(|scope| {
        let syncing = scope.spawn(|| {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) || round < 3 {
                round += 1;
                laptop.add(&format!("laptop during the backup {round}"));
                laptop.sync(port);
                phone.add(&format!("phone during the backup {round}"));
                phone.sync(port);
                let _ = started.send(());
            }
        });
        syncing_started.recv().expect("the first round of syncs");
        let output = run_cli(&dir, &["backup", "backup.sqlite"]);
        stop.store(true, Ordering::Relaxed);
        syncing.join().expect("the syncing thread");
        output
    });
    assert!(backup.status.success(), "{}", stderr(&backup));

    // What happens after the backup is lost from the server when it is restored, but the
    // devices hold it: one added by a device the backup knows, one by a device new since.
    let laptop_after = laptop.add("laptop after the backup");
    laptop.sync(port);
    phone.sync(port);
    let mut tablet = Desktop::new(TOKEN_2, DEVICE_D, "0d000000-0000-4000-8000-00000000000d");
    tablet.sync(port);
    tablet.add("tablet after the backup");
    tablet.sync(port);
    desk.add("desk after the backup, never synced before the restore");

    server.stop_ok();
    let dir_handle = server.into_dir();
    for file in ["tickit-sync.sqlite-wal", "tickit-sync.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    std::fs::copy(dir.join("backup.sqlite"), dir.join("tickit-sync.sqlite")).unwrap();
    let server = Server::start_in(dir_handle, &[], &[]);
    let restored = ids(&everything(&server, "e5e5e5e5-0000-4000-8000-000000000001"));
    assert!(
        !restored.contains(&laptop_after),
        "what was added after the backup is not in it"
    );

    let mut devices = [laptop, phone, desk, tablet];
    for _round in 0..3 {
        for device in devices.iter_mut() {
            device.sync(server.port);
        }
    }
    let added: usize = devices.iter().map(|device| device.added).sum();
    let everyone = devices[0].tasks();
    assert_eq!(
        everyone.len(),
        added,
        "every task any device added: {everyone:?}"
    );
    for device in &devices[1..] {
        assert_eq!(
            device.tasks(),
            everyone,
            "{} converged",
            device.device.device_id
        );
    }
    let on_server: BTreeSet<String> =
        ids(&everything(&server, "e5e5e5e5-0000-4000-8000-000000000001"))
            .into_iter()
            .filter(|id| everyone.iter().any(|(task, _)| task == id))
            .collect();
    assert_eq!(
        on_server.len(),
        added,
        "the restored server holds every task again"
    );
}

#[test]
fn devices_and_backup_explain_themselves() {
    let devices = run_cli(Path::new("."), &["devices", "--help"]);
    assert!(devices.status.success());
    let help = stdout(&devices);
    assert!(
        help.starts_with(
            "Usage: tickit-sync devices [--account <account>] [--json] [--config <config>]"
        ),
        "{help}"
    );
    assert!(
        help.contains("WAITING counts the changes other devices made"),
        "{help}"
    );
    let backup = run_cli(Path::new("."), &["backup", "--help"]);
    assert!(backup.status.success());
    let help = stdout(&backup);
    assert!(
        help.starts_with("Usage: tickit-sync backup [--config <config>] [--] <path>"),
        "{help}"
    );
    assert!(help.contains("To restore: stop the server"), "{help}");
}
