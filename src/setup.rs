//! The commands that write the config: `init`, `token`, and the first-run config `serve`
//! creates when there is none.

use std::path::Path;

use crate::config::{self, Config, ListenAddr, Overrides};
use crate::timestamp::now_nanos;
use crate::{config_edit, devices, permissions, store, tokens};

/// `init`: writes a commented config with every default, refusing to overwrite one.
pub fn init(path: &Path, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!(
            "{} already exists; keeping it. Use --force to replace it (its tokens would be lost)",
            path.display()
        ));
    }
    write_new(path, &config::template())?;
    println!(
        "Wrote {}.\nNext: add a device with `tickit-sync token --name NAME --config {}`, then \
         start the server with `tickit-sync serve --config {}`.",
        path.display(),
        path.display(),
        path.display()
    );
    Ok(())
}

/// First `serve` with no config: writes the default config with one token and prints it.
pub fn create_first_config(path: &Path) -> Result<(), String> {
    write_new(path, &config::template())?;
    eprintln!(
        "No config at {}: created one with the defaults.",
        path.display()
    );
    add_token(path, "first-device", None)
}

/// `token --name`: adds a hashed token to the config and prints it once with the client's
/// settings. Creates the file when it does not exist (a tokens-only file is a valid config).
pub fn add_token(path: &Path, name: &str, account: Option<&str>) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("--name must not be empty; name the device, e.g. --name laptop".into());
    }
    create_parent_dir(path)?;
    let token = tokens::generate();
    tokens::add_to_config(path, name, account, &token)?;
    let server = client_server_url(path);
    let account_note = account
        .map(|account| format!(" in account {account:?}"))
        .unwrap_or_default();
    println!(
        "New token for {name:?}{account_note}, added to {config} (only its hash is stored, so \
         copy it now):\n\n    {token}\n\nOn that device, put this in ~/.config/tickit/config.toml:\n\n\
         [sync]\nenabled = true\nserver = \"{server}\"\ntoken = \"{token}\"\ninterval_secs = 300\n\n\
         A running server picks the new token up within 2 seconds.",
        config = path.display(),
    );
    Ok(())
}

/// `token --list`: names and accounts of the tokens in the file, how each is stored
/// (`sha256`, `argon2` or `plaintext`; never the secret), and when each last synced, read
/// from the database (a token never used, or unused since it was made, is easy to spot).
pub fn list_tokens(path: &Path) -> Result<(), String> {
    let file = config::read_file(path)?;
    if file.tokens().len() == 0 {
        println!(
            "{} has no tokens; add one with `tickit-sync token --name NAME`.",
            path.display()
        );
        return Ok(());
    }
    let database = file.database(path);
    let last_use = if database.exists() {
        store::token_last_use(&database)
            .map_err(|e| eprintln!("warning: last use unknown: {e}"))
            .ok()
    } else {
        eprintln!(
            "note: no database at {}, so no last use is known; if the server keeps its \
             database elsewhere, name it with TICKIT_SYNC_DB",
            database.display()
        );
        None
    };
    let now = now_nanos();
    for entry in file.tokens() {
        let account = entry.account();
        let stored = match entry.secret_kind() {
            Ok(kind) => kind.to_owned(),
            Err(e) => format!("invalid: {e}"),
        };
        let used = match last_use.as_ref().map(|uses| uses.get(&entry.name)) {
            Some(Some(&at)) => devices::when(at, now),
            Some(None) => "never".to_owned(),
            None => "unknown".to_owned(),
        };
        println!(
            "{}\taccount: {account}\tstored: {stored}\tlast use: {used}",
            entry.name
        );
    }
    Ok(())
}

/// `token --revoke`: removes a token; a running server refuses it within 2 seconds.
pub fn revoke_token(path: &Path, name: &str) -> Result<(), String> {
    tokens::revoke_in_config(path, name)?;
    println!(
        "Revoked {name:?} in {}; a running server refuses it within 2 seconds.",
        path.display()
    );
    Ok(())
}

/// The address a client should use, as well as this file can tell.
fn client_server_url(path: &Path) -> String {
    let config: Option<Config> = config::load(path, &Overrides::default()).ok();
    match config.map(|config| config.listen) {
        Some(ListenAddr::Tcp { host, port })
            if !["0.0.0.0", "::", "[::]"].contains(&host.as_str()) =>
        {
            format!("http://{host}:{port}")
        }
        Some(ListenAddr::Tcp { port, .. }) => format!("http://YOUR-SERVER:{port}"),
        _ => "https://YOUR-SERVER".into(),
    }
}

/// Writes `text` as the whole config at `path`, whatever was there.
fn write_new(path: &Path, text: &str) -> Result<(), String> {
    create_parent_dir(path)?;
    config_edit::edit(path, |_| Ok(text.to_owned()))
}

fn create_parent_dir(path: &Path) -> Result<(), String> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir)
            .map_err(|e| permissions::write_error(dir, &e, config_edit::SETTING)),
        None => Ok(()),
    }
}
