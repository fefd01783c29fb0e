//! The account's one inbox: every device's inbox id is an alias of it, tasks are stored
//! against it, and each device is sent it under its own id.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::protocol::{Change, Kind, ReceivedChange};

/// The device of an inbox alias the server has not yet seen any device send as its own:
/// the inboxes imported from the original server.
pub const OWNER_UNKNOWN: &str = "";

/// The account's inbox id and the id the requesting device knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxIds {
    pub account_inbox: String,
    pub device_inbox: Option<String>,
}

/// Records every inbox the device sends as an alias of the account inbox, creating the
/// account inbox from the first one ever seen. Returns the account inbox id, if any.
pub fn register_inboxes(
    tx: &Connection,
    account: &str,
    device: &str,
    changes: &[ReceivedChange],
) -> rusqlite::Result<Option<String>> {
    let mut account_inbox = account_inbox(tx, account)?;
    let device_inboxes = changes
        .iter()
        .filter(|change| change.kind == Kind::List && !change.deleted && change.is_inbox);
    for change in device_inboxes {
        if account_inbox.is_none() {
            tx.execute(
                "INSERT INTO inboxes (account, list_id) VALUES (?1, ?2)",
                params![account, change.id],
            )?;
            account_inbox = Some(change.id.clone());
        }
        tx.execute(
            "INSERT INTO inbox_aliases (account, list_id, device) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, list_id) DO UPDATE SET device = excluded.device",
            params![account, change.id, device],
        )?;
    }
    Ok(account_inbox)
}

/// The account's inbox id, once any device has sent its inbox.
pub fn account_inbox(tx: &Connection, account: &str) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached("SELECT list_id FROM inboxes WHERE account = ?1")?
        .query_row([account], |row| row.get(0))
        .optional()
}

/// Every inbox id any device of the account has used.
pub fn inbox_aliases(tx: &Connection, account: &str) -> rusqlite::Result<HashSet<String>> {
    let mut statement =
        tx.prepare_cached("SELECT list_id FROM inbox_aliases WHERE account = ?1")?;
    let aliases = statement.query_map([account], |row| row.get(0))?;
    aliases.collect()
}

/// The inbox id the device itself uses, so it receives the inbox under that id.
pub fn device_inbox(
    tx: &Connection,
    account: &str,
    device: &str,
) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT list_id FROM inbox_aliases WHERE account = ?1 AND device = ?2
         ORDER BY rowid DESC LIMIT 1",
        params![account, device],
        |row| row.get(0),
    )
    .optional()
}

/// Rewrites a device's inbox id to the account inbox. Returns `None` for a change to drop:
/// a delete of an inbox, which every device keeps.
pub fn map_to_account(
    mut change: Change,
    account_inbox: Option<&String>,
    aliases: &HashSet<String>,
) -> Option<Change> {
    let Some(account_inbox) = account_inbox else {
        return Some(change);
    };
    match change.kind {
        Kind::List if aliases.contains(&change.id) => {
            if change.deleted {
                return None;
            }
            change.id = account_inbox.clone();
            change
                .body
                .insert("id".into(), Value::from(account_inbox.as_str()));
        }
        Kind::Task if !change.deleted => {
            let list_id = change.body.get("list_id").and_then(Value::as_str);
            if list_id.is_some_and(|id| aliases.contains(id)) {
                change
                    .body
                    .insert("list_id".into(), Value::from(account_inbox.as_str()));
            }
        }
        _ => {}
    }
    Some(change)
}
