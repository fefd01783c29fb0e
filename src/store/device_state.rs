//! What the server records of each device as it syncs, for the person running it
//! (`tickit-sync devices`, `token --list`, the status line): when it was first seen and last
//! synced, the token entry and client it synced with, and the stamp its last answer was
//! complete to; and when each token was last used. A sync that is sent nothing records
//! itself only once its record is [`LAST_SYNC_PRECISION`] old, so polling, and uploading,
//! still write no more than they did.

use rusqlite::{Connection, params};

/// How stale a device's last sync may be on record: a sync that is sent nothing records
/// itself only once the recorded one is older than this (a minute).
pub const LAST_SYNC_PRECISION: i64 = 60_000_000_000;

/// The longest `User-Agent` kept, in bytes; a longer one is cut.
const USER_AGENT_MAX: usize = 200;

/// Who sent a sync: the account and `[[tokens]]` entry its token belongs to, and the
/// client's `User-Agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    pub token_name: String,
    pub user_agent: Option<String>,
}

impl Caller {
    /// The caller with `user_agent` as it may be stored: printable ASCII only (anything else
    /// becomes `?`), at most [`USER_AGENT_MAX`] bytes, and none when blank.
    pub fn new(account: &str, token_name: &str, user_agent: Option<&[u8]>) -> Caller {
        let user_agent = user_agent
            .map(|raw| {
                raw.iter()
                    .take(USER_AGENT_MAX)
                    .map(|&byte| match byte {
                        b' '..=b'~' => char::from(byte),
                        _ => '?',
                    })
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .filter(|agent| !agent.is_empty());
        Caller {
            account: account.to_owned(),
            token_name: token_name.to_owned(),
            user_agent,
        }
    }
}

/// Registers the device of the account at its first sync, seen first at `now`; true when
/// it is new.
pub fn register(tx: &Connection, account: &str, device: &str, now: i64) -> rusqlite::Result<bool> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO devices (account, device, first_seen_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![account, device, now])?;
    Ok(inserted == 1)
}

/// Records a sync of `device` that arrived at `received_at` and was answered with every
/// change stamped up to `answered_through`. `delivered` says whether it was sent anything:
/// it is then recorded whatever its age, as what waits for the device changed. The token's
/// last use is recorded with it, to within [`LAST_SYNC_PRECISION`] too.
pub fn note_sync(
    tx: &Connection,
    caller: &Caller,
    device: &str,
    received_at: i64,
    answered_through: i64,
    delivered: bool,
) -> rusqlite::Result<()> {
    let recorded = tx
        .prepare_cached(
            "UPDATE devices
             SET last_sync_at = ?3, answered_through = ?4, token_name = ?5, user_agent = ?6
             WHERE account = ?1 AND device = ?2
               AND (?7 OR last_sync_at IS NULL OR last_sync_at < ?3 - ?8
                    OR token_name IS NOT ?5 OR user_agent IS NOT ?6)",
        )?
        .execute(params![
            caller.account,
            device,
            received_at,
            answered_through,
            caller.token_name,
            caller.user_agent,
            delivered,
            LAST_SYNC_PRECISION
        ])?;
    if recorded == 1 {
        tx.prepare_cached(
            "INSERT INTO token_use (name, last_used_at) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_used_at = excluded.last_used_at
             WHERE last_used_at < excluded.last_used_at - ?3",
        )?
        .execute(params![caller.token_name, received_at, LAST_SYNC_PRECISION])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_agent_is_kept_printable_and_short() {
        let caller = Caller::new("a", "phone", Some(b"  tickit/0.5.8 \x1b[31m\n"));
        assert_eq!(caller.user_agent.as_deref(), Some("tickit/0.5.8 ?[31m?"));
        assert_eq!(Caller::new("a", "phone", Some(b"   ")).user_agent, None);
        let long = Caller::new("a", "phone", Some(&[b'x'; 500]));
        assert_eq!(
            long.user_agent.map(|agent| agent.len()),
            Some(USER_AGENT_MAX)
        );
    }
}
