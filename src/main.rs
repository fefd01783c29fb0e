//! tickit-sync: a self-hosted sync server for the Tickit task manager.
//!
//! `main` parses the command line, runs one command and turns its error into a message
//! and a non-zero exit code.

mod accept_loop;
mod activity;
mod answer;
mod api;
mod body_budget;
mod check;
mod config;
mod config_edit;
mod connection_slots;
mod devices;
mod health;
mod lifecycle;
mod listener;
mod metrics;
mod open_files;
mod permissions;
mod problem;
mod protocol;
mod reload;
mod setup;
mod store;
mod systemd;
mod timestamp;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;

/// mimalloc in every build. musl's own malloc serialises threads (a full sync under load ran
/// about 6x slower, BENCHMARKS.md); glibc's kept most of what a large request had used: after
/// four 30 MB syncs one after another it stayed at 63 MB against 11 MB idle, having peaked at
/// 124 MB. mimalloc, purging at once, peaked at 53 MB and went back to 18 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Has mimalloc hand freed memory back to the system as soon as it is free. By default it
/// waits a second or more, and checks only when it next allocates or frees: an idle server
/// then kept the memory of its last large request for good.
fn purge_freed_memory_at_once() {
    /// `mi_option_purge_delay`, in milliseconds (the same index in mimalloc 2 and 3).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set only stores the option's value; mimalloc reads it on every purge.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

#[derive(FromArgs)]
/// Self-hosted sync server for the Tickit task manager: keeps the tasks, lists and tags of
/// your laptop, desktop and phone in one place you own.
#[argh(
    note = "Config lookup (every command): --config PATH, else $TICKIT_SYNC_CONFIG, else \
            ./config.toml in the working directory.",
    example = "tickit-sync serve",
    example = "tickit-sync token --name laptop"
)]
struct Cli {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Init(InitArgs),
    Token(TokenArgs),
    Serve(ServeArgs),
    Health(HealthArgs),
    Check(CheckArgs),
    Import(ImportArgs),
    Devices(DevicesArgs),
    Backup(BackupArgs),
}

#[derive(FromArgs)]
/// Write a commented config file with every setting at its default.
#[argh(subcommand, name = "init")]
struct InitArgs {
    /// where to write it (default: $TICKIT_SYNC_CONFIG, else ./config.toml)
    #[argh(option)]
    config: Option<PathBuf>,
    /// overwrite an existing file (its tokens are lost)
    #[argh(switch)]
    force: bool,
}

#[derive(FromArgs)]
/// Add a device token (printed once, stored hashed), list tokens, or revoke one. A running
/// server notices the change within 2 seconds.
#[argh(
    subcommand,
    name = "token",
    example = "tickit-sync token --name laptop",
    example = "tickit-sync token --name kids-tablet --account kids",
    example = "tickit-sync token --list",
    example = "tickit-sync token --revoke laptop"
)]
struct TokenArgs {
    /// name of the device the new token is for
    #[argh(option)]
    name: Option<String>,
    /// account the token belongs to; accounts never see each other's tasks (default: the
    /// shared default account)
    #[argh(option)]
    account: Option<String>,
    /// list the tokens' names, accounts, and when each was last used to sync
    #[argh(switch)]
    list: bool,
    /// remove the token with this name
    #[argh(option)]
    revoke: Option<String>,
    /// config file to edit (default: $TICKIT_SYNC_CONFIG, else ./config.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Run the sync server. With no config file at the looked-up path, creates one with a fresh
/// token and prints it. Takes its socket from systemd when socket-activated.
#[argh(
    subcommand,
    name = "serve",
    note = "Config lookup: --config PATH, else $TICKIT_SYNC_CONFIG, else ./config.toml. \
            Environment overrides: TICKIT_SYNC_HOST, TICKIT_SYNC_PORT, TICKIT_SYNC_DB \
            (command-line options win over them). SIGHUP or editing the config reloads \
            tokens; SIGTERM/SIGINT stop after in-flight requests finish."
)]
struct ServeArgs {
    /// config file (default: $TICKIT_SYNC_CONFIG, else ./config.toml)
    #[argh(option)]
    config: Option<PathBuf>,
    /// address to listen on, e.g. 127.0.0.1, 0.0.0.0 or unix:/run/tickit-sync/sock
    #[argh(option)]
    bind: Option<String>,
    /// TCP port to listen on (0 picks a free one)
    #[argh(option)]
    port: Option<u16>,
    /// exit after this many seconds without any connection (for socket activation; off by
    /// default)
    #[argh(option)]
    exit_idle_after: Option<u64>,
}

#[derive(FromArgs)]
/// Check that a server answers /health; exits 0 if healthy, 1 with the reason otherwise.
#[argh(subcommand, name = "health")]
struct HealthArgs {
    /// URL to probe (default: http://127.0.0.1:PORT/health, PORT being $TICKIT_SYNC_PORT, else
    /// the config's port, else 3030)
    #[argh(option)]
    url: Option<String>,
}

#[derive(FromArgs)]
/// Check an installation without changing anything: the config (every mistake with its line,
/// names or tokens listed twice, plaintext tokens other users may read) and the database
/// (opened read-only: its schema version, SQLite's integrity check, the one-inbox-per-account
/// rules). Prints each finding and a verdict.
#[argh(
    subcommand,
    name = "check",
    example = "tickit-sync check",
    example = "tickit-sync check --config /etc/tickit-sync/config.toml --json",
    note = "Exit status: 0 when nothing is wrong (warnings allowed), 1 when an error was \
            found. The database is the one `serve` would use: the config's [database] path, \
            or TICKIT_SYNC_DB. It only reads, creates no file, and runs beside a running \
            server, so a systemd timer or a container HEALTHCHECK can run it; it reads the \
            whole database, so for a probe every few seconds use `tickit-sync health`."
)]
struct CheckArgs {
    /// config file (default: $TICKIT_SYNC_CONFIG, else ./config.toml)
    #[argh(option)]
    config: Option<PathBuf>,
    /// print one JSON object instead of lines (its shape is in the README)
    #[argh(switch)]
    json: bool,
}

#[derive(FromArgs)]
/// Import the tasks, lists, tags and deletions of an original tickit-sync (0.2.1) database
/// file, for a move to a new path or machine. Devices then sync on as before, unchanged.
/// (`serve` imports the original's tables by itself when they are in its own database file.)
#[argh(
    subcommand,
    name = "import",
    example = "tickit-sync import --from /old/server/tickit-sync.sqlite",
    example = "tickit-sync import --from old.sqlite --account family --merge"
)]
struct ImportArgs {
    /// the original server's database file (its [database] path, by default
    /// tickit-sync.sqlite); it is only read
    #[argh(option)]
    from: PathBuf,
    /// account to import into (default: the shared default account)
    #[argh(option)]
    account: Option<String>,
    /// import even into an account that already holds tasks; of two versions of a record,
    /// the newer stays
    #[argh(switch)]
    merge: bool,
    /// config file naming the database to import into (default: $TICKIT_SYNC_CONFIG, else
    /// ./config.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// List the devices that sync with this server: account, token, last sync, first seen,
/// client (from its User-Agent), changes waiting for it, and any clock warning. Reads the
/// database only; works while the server runs and on a stopped server's database.
#[argh(
    subcommand,
    name = "devices",
    example = "tickit-sync devices",
    example = "tickit-sync devices --account kids --json",
    note = "A last sync is recorded to within a minute. WAITING counts the changes other \
            devices made that this one has not been sent yet."
)]
struct DevicesArgs {
    /// only the devices of this account
    #[argh(option)]
    account: Option<String>,
    /// print JSON (shape in the README) instead of a table
    #[argh(switch)]
    json: bool,
    /// config file naming the database (default: $TICKIT_SYNC_CONFIG, else ./config.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Copy the database, consistently, while the server runs. The copy is checked with
/// SQLite's integrity_check and written atomically: PATH is the old file or the new copy,
/// never half of one. PATH may be a directory: the copy is then named by the time it was
/// taken.
#[argh(
    subcommand,
    name = "backup",
    example = "tickit-sync backup /var/backups/tickit-sync.sqlite",
    example = "tickit-sync backup /var/backups/",
    note = "To restore: stop the server, copy the backup over the database file (its [database] \
            path; delete the -wal and -shm files beside it), and start the server. Each device \
            then uploads again what it changed since the backup, so nothing any device still \
            holds is lost."
)]
struct BackupArgs {
    /// where to write the copy: a file (replaced if it exists) or a directory
    #[argh(positional)]
    path: PathBuf,
    /// config file naming the database (default: $TICKIT_SYNC_CONFIG, else ./config.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let cli: Cli = argh::from_env();
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    let done = match command {
        Command::Check(args) => return Ok(check::run(&config::locate(args.config), args.json)),
        Command::Init(args) => setup::init(&config::locate(args.config), args.force),
        Command::Token(args) => token(args),
        Command::Serve(args) => lifecycle::run(lifecycle::ServeOptions {
            config: args.config,
            overrides: config::Overrides {
                bind: args.bind,
                port: args.port,
            },
            exit_idle_after: args.exit_idle_after.map(Duration::from_secs),
        }),
        Command::Import(args) => import(args),
        Command::Devices(args) => {
            let database = config::database_of(&config::locate(args.config))?;
            devices::print(&database, args.account.as_deref(), args.json)
        }
        Command::Backup(args) => backup(args),
        Command::Health(args) => {
            let url = args.url.unwrap_or_else(health::default_url);
            health::probe(&url)?;
            println!("ok: {url}");
            Ok(())
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

fn import(args: ImportArgs) -> Result<(), String> {
    let config = config::load(&config::locate(args.config), &config::Overrides::default())?;
    let account = args.account.as_deref().unwrap_or(tokens::DEFAULT_ACCOUNT);
    let report = store::import_file(&config.database, &args.from, account, args.merge)?;
    println!(
        "{report}\nfrom {} into {}. Devices sync on with no change.",
        args.from.display(),
        config.database.display()
    );
    Ok(())
}

fn backup(args: BackupArgs) -> Result<(), String> {
    let database = config::database_of(&config::locate(args.config))?;
    let report = store::backup(&database, &args.path)?;
    println!(
        "Backed up {} to {}: {} bytes, {} records (tasks, lists, tags), {} devices; \
         integrity_check: ok. Restoring: see `tickit-sync backup --help`.",
        database.display(),
        report.path.display(),
        report.bytes,
        report.records,
        report.devices
    );
    Ok(())
}

fn token(args: TokenArgs) -> Result<(), String> {
    let path = config::locate(args.config);
    match (args.name, args.list, args.revoke) {
        (Some(name), false, None) => setup::add_token(&path, &name, args.account.as_deref()),
        (None, true, None) => setup::list_tokens(&path),
        (None, false, Some(name)) => setup::revoke_token(&path, &name),
        _ => Err(
            "say what to do: --name NAME to add a token, --list, or --revoke NAME \
                  (one at a time); see `tickit-sync token --help`"
                .into(),
        ),
    }
}
