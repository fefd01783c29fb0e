//! API tokens: making them, storing them hashed in the config without disturbing the rest of
//! the file, and checking a presented token in constant time.
//!
//! Tokens carry 256 random bits, so one SHA-256 is enough to make the stored form useless to a
//! reader of the config; a slow password hash (what the original server used) would only make
//! every request slow. The original server's argon2 entries are still accepted: [`phc`]
//! verifies each device's token once and remembers it.

mod phc;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toml_edit::{ArrayOfTables, Document, DocumentMut, Item, Table, value};

use crate::problem::Problem;
use crate::{config, config_edit};
use phc::PhcTokens;

/// Every token starts with this, so a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "tks_";
const HASH_PREFIX: &str = "sha256:";
/// The account of tokens that name none.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One `[[tokens]]` entry as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    /// Plaintext, as in the original server's config.
    token: Option<String>,
    /// `sha256:<hex>`, as `tickit-sync token` writes it.
    hash: Option<String>,
    /// What the original server's `token` command wrote: an argon2 PHC string, or the
    /// plaintext token when the value is not one.
    token_hash: Option<String>,
    pub account: Option<String>,
    /// Where it was written ("config.toml line 12"), when read from a file.
    #[serde(skip)]
    place: Option<String>,
}

/// How an entry's secret is checked.
enum Secret {
    /// The SHA-256 of the token, from a plaintext or a `sha256:` entry.
    Digest {
        digest: [u8; 32],
        kind: &'static str,
    },
    /// An argon2 PHC string.
    Argon2(argon2::password_hash::PasswordHashString),
}

impl TokenEntry {
    /// Records where the entry was written ("config.toml line 12"); errors about it say so.
    pub fn written_at(&mut self, place: String) {
        self.place = Some(place);
    }

    /// The account it belongs to.
    pub fn account(&self) -> &str {
        self.account.as_deref().unwrap_or(DEFAULT_ACCOUNT)
    }

    /// An error about this entry, at the place it was written.
    fn fault(&self, message: &str) -> Problem {
        Problem::error(self.place.clone(), message)
    }

    /// Where it was written, for pointing at it from an error about another entry.
    fn place(&self) -> &str {
        self.place.as_deref().unwrap_or("an earlier entry")
    }

    /// What the entry stores, for `token --list`: `sha256`, `argon2` or `plaintext` (never
    /// the secret itself), or why the entry is invalid.
    pub fn secret_kind(&self) -> Result<&'static str, String> {
        Ok(match self.secret()? {
            Secret::Digest { kind, .. } => kind,
            Secret::Argon2(_) => "argon2",
        })
    }

    /// Checks that the entry has exactly one of `token`, `hash` or `token_hash`, well formed.
    fn secret(&self) -> Result<Secret, String> {
        let name = &self.name;
        let plaintext = |field: &str, token: &str| {
            if token.is_empty() {
                return Err(format!(
                    "token {name:?}: {field} is empty; put the token between the quotes"
                ));
            }
            Ok(Secret::Digest {
                digest: digest(token),
                kind: "plaintext",
            })
        };
        match (&self.token, &self.hash, &self.token_hash) {
            (Some(token), None, None) => plaintext("token", token),
            (None, Some(hash), None) => match parse_hash(hash) {
                Some(digest) => Ok(Secret::Digest {
                    digest,
                    kind: "sha256",
                }),
                None => Err(format!(
                    "token {name:?}: hash must be \"sha256:\" and 64 hex digits, as written by \
                     `tickit-sync token`"
                )),
            },
            (None, None, Some(value)) => match phc::parse(value) {
                None => plaintext("token_hash", value),
                Some(Ok(hash)) => Ok(Secret::Argon2(hash)),
                Some(Err(reason)) => Err(format!(
                    "token {name:?}: token_hash is a PHC string argon2 cannot verify ({reason}); \
                     replace it: `tickit-sync token --revoke {name}`, then \
                     `tickit-sync token --name {name}`"
                )),
            },
            (None, None, None) => Err(format!(
                "token {name:?}: needs token = \"...\" or hash = \"sha256:...\" (or the \
                 original server's token_hash = \"...\")"
            )),
            (token, hash, token_hash) => {
                let fields = [("token", token), ("hash", hash), ("token_hash", token_hash)]
                    .into_iter()
                    .filter(|(_, set)| set.is_some())
                    .map(|(field, _)| field)
                    .collect::<Vec<_>>()
                    .join(" and ");
                Err(format!("token {name:?}: has {fields}; keep one"))
            }
        }
    }
}

/// The accepted tokens, ready for constant-time lookup. Clones share what the argon2 entries
/// have learnt.
#[derive(Debug, Clone)]
pub struct TokenSet {
    entries: Vec<KnownToken>,
    argon2: Arc<PhcTokens>,
}

#[derive(Debug, Clone)]
struct KnownToken {
    digest: [u8; 32],
    holder: Holder,
}

/// Whose a token is: the name of its `[[tokens]]` entry and the account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    pub account: String,
}

impl Default for TokenSet {
    fn default() -> TokenSet {
        TokenSet {
            entries: Vec::new(),
            argon2: Arc::new(PhcTokens::new(Vec::new())),
        }
    }
}

impl TokenSet {
    /// Validates the entries: each has a name of its own and exactly one of `token`, `hash`
    /// or `token_hash`, and no two hold the same token (the server could not tell which
    /// entry, or account, a device is). Returns the set of the valid entries, and a problem
    /// naming the line of each entry left out.
    pub fn validate(entries: &[TokenEntry]) -> (TokenSet, Vec<Problem>) {
        let mut known = Vec::with_capacity(entries.len());
        let mut argon2 = Vec::new();
        let mut problems = Vec::new();
        let mut names: HashMap<&str, &TokenEntry> = HashMap::new();
        let mut digests: HashMap<[u8; 32], &TokenEntry> = HashMap::new();
        let mut phc_strings: HashMap<String, &TokenEntry> = HashMap::new();
        for entry in entries {
            if let Some(first) = names.get(entry.name.as_str()) {
                problems.push(entry.fault(&format!(
                    "a second token named {:?} (the first is at {}); give each entry a name of \
                     its own, so that `tickit-sync token --revoke NAME` removes the one meant",
                    entry.name,
                    first.place()
                )));
                continue;
            }
            names.insert(&entry.name, entry);
            let holder = Holder {
                name: entry.name.clone(),
                account: entry.account().to_owned(),
            };
            match entry.secret() {
                Err(e) => problems.push(entry.fault(&e)),
                Ok(Secret::Digest { digest, .. }) => match digests.get(&digest) {
                    Some(first) => problems.push(same_token(first, entry)),
                    None => {
                        digests.insert(digest, entry);
                        known.push(KnownToken { digest, holder });
                    }
                },
                Ok(Secret::Argon2(hash)) => match phc_strings.get(hash.as_str()) {
                    Some(first) => problems.push(same_token(first, entry)),
                    None => {
                        phc_strings.insert(hash.as_str().to_owned(), entry);
                        argon2.push((hash, holder));
                    }
                },
            }
        }
        let set = TokenSet {
            entries: known,
            argon2: Arc::new(PhcTokens::new(argon2)),
        };
        (set, problems)
    }

    /// Whose a presented token is. Compares against every SHA-256 entry and every argon2
    /// match verified before, in constant time each, so timing reveals neither the token nor
    /// which entry matched. Only a token seen for the first time waits for argon2 (when the
    /// config has argon2 entries).
    pub async fn holder_of(&self, presented: &str) -> Option<&Holder> {
        let presented_digest = digest(presented);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented_digest)) {
                found = Some(&entry.holder);
            }
        }
        let verified = self.argon2.verified_holder(&presented_digest);
        match found.or(verified) {
            Some(holder) => Some(holder),
            None => self.argon2.verify(presented, presented_digest).await,
        }
    }

    /// Takes over the argon2 matches `previous` (the config this one replaces) verified, for
    /// entries whose PHC string is unchanged, so a reload does not make every device pay
    /// argon2 again. Matches of removed entries are dropped: a revoked token stops working.
    pub fn keep_verified_from(&self, previous: &TokenSet) {
        self.argon2.keep_verified_from(&previous.argon2);
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.entries.len() + self.argon2.len()
    }
}

/// Why `second` is refused for holding the token `first` holds.
fn same_token(first: &TokenEntry, second: &TokenEntry) -> Problem {
    let accounts = if first.account() == second.account() {
        String::new()
    } else {
        format!(
            ", so the server could not tell whether that device is in account {:?} or {:?}",
            first.account(),
            second.account()
        )
    };
    second.fault(&format!(
        "token {:?} holds the same token as {:?} (at {}){accounts}; each device needs a token \
         of its own: delete one of the two entries, and give that device a new token with \
         `tickit-sync token --name NAME`",
        second.name,
        first.name,
        first.place()
    ))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.strip_prefix(HASH_PREFIX)?, &mut bytes).ok()?;
    Some(bytes)
}

/// A fresh token: the prefix and 256 random bits as hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The form of a token stored in the config.
pub fn hash_for_config(token: &str) -> String {
    format!("{HASH_PREFIX}{}", hex::encode(digest(token)))
}

/// Appends a hashed token entry to the config at `path` (a new file if there is none),
/// keeping its comments and layout. Refuses a name that is taken.
pub fn add_to_config(
    path: &Path,
    name: &str,
    account: Option<&str>,
    token: &str,
) -> Result<(), String> {
    config_edit::edit(path, |text| {
        let mut document = parse_document(path, text.unwrap_or_default())?.into_mut();
        let tokens = tokens_table_array(&mut document, path)?;
        if tokens
            .iter()
            .any(|entry| entry.get("name").and_then(Item::as_str) == Some(name))
        {
            return Err(format!(
                "{} already has a token named {name:?}; pick another name, or remove it first \
                 with `tickit-sync token --revoke {name}`",
                path.display()
            ));
        }
        let mut entry = Table::new();
        entry.insert("name", value(name));
        entry.insert("hash", value(hash_for_config(token)));
        if let Some(account) = account {
            entry.insert("account", value(account));
        }
        tokens.push(entry);
        Ok(document.to_string())
    })
}

/// Removes the token entry named `name`; says so, changing nothing, when there is none or
/// when several entries have that name.
pub fn revoke_in_config(path: &Path, name: &str) -> Result<(), String> {
    config_edit::edit(path, |text| {
        let text = text.ok_or_else(|| {
            crate::permissions::read_error(path, &std::io::ErrorKind::NotFound.into())
        })?;
        let document = parse_document(path, text)?;
        let named: Vec<String> = document
            .get("tokens")
            .and_then(Item::as_array_of_tables)
            .into_iter()
            .flat_map(ArrayOfTables::iter)
            .filter(|entry| entry.get("name").and_then(Item::as_str) == Some(name))
            .map(|entry| {
                let line = entry.span().map_or(String::new(), |span| {
                    format!("line {}, ", config::line_at(text, span.start))
                });
                let account = entry.get("account").and_then(Item::as_str);
                format!("{line}account {}", account.unwrap_or(DEFAULT_ACCOUNT))
            })
            .collect();
        match named.len() {
            0 => {
                return Err(format!(
                    "{} has no token named {name:?}; `tickit-sync token --list` shows the names",
                    path.display()
                ));
            }
            1 => {}
            several => {
                return Err(format!(
                    "{} has {several} tokens named {name:?} ({}); nothing was revoked. Rename \
                     all but one of them in the file (names must be unique), then revoke the one \
                     meant by its name",
                    path.display(),
                    named.join("; ")
                ));
            }
        }
        let mut document = document.into_mut();
        let tokens = tokens_table_array(&mut document, path)?;
        tokens.retain(|entry| entry.get("name").and_then(Item::as_str) != Some(name));
        Ok(document.to_string())
    })
}

fn parse_document<'t>(path: &Path, text: &'t str) -> Result<Document<&'t str>, String> {
    Document::parse(text).map_err(|e| format!("config {}: {e}", path.display()))
}

fn tokens_table_array<'d>(
    document: &'d mut DocumentMut,
    path: &Path,
) -> Result<&'d mut ArrayOfTables, String> {
    let item = document
        .entry("tokens")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    item.as_array_of_tables_mut().ok_or_else(|| {
        format!(
            "config {}: `tokens` must be written as [[tokens]] tables",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};

    use super::*;

    fn entry(name: &str, token: Option<&str>, hash: Option<&str>) -> TokenEntry {
        TokenEntry {
            name: name.into(),
            token: token.map(Into::into),
            hash: hash.map(Into::into),
            token_hash: None,
            account: None,
            place: None,
        }
    }

    /// The set of `entries`, or the first problem found in them as `serve` reports it.
    fn token_set(entries: &[TokenEntry]) -> Result<TokenSet, String> {
        match TokenSet::validate(entries) {
            (_, problems) if !problems.is_empty() => Err(problems[0].report()),
            (set, _) => Ok(set),
        }
    }

    /// An entry as the original server wrote it.
    fn original_entry(name: &str, token_hash: &str, account: Option<&str>) -> TokenEntry {
        TokenEntry {
            token_hash: Some(token_hash.into()),
            account: account.map(Into::into),
            ..entry(name, None, None)
        }
    }

    /// An argon2id PHC string of `token` with the cheapest parameters, so tests stay fast
    /// (verification takes its parameters from the string).
    fn cheap_phc(token: &str) -> String {
        let params = Params::new(8, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"a test salt").unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(token.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    async fn account_of<'a>(set: &'a TokenSet, token: &str) -> Option<&'a str> {
        set.holder_of(token)
            .await
            .map(|holder| holder.account.as_str())
    }

    fn argon2_runs(set: &TokenSet) -> usize {
        set.argon2.verifications.load(Ordering::Relaxed)
    }

    #[test]
    fn generated_tokens_are_long_prefixed_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn plaintext_and_hashed_entries_both_authenticate() {
        let token = generate();
        let set = token_set(&[
            entry("seed", Some("token-1"), None),
            entry("new", None, Some(&hash_for_config(&token))),
        ])
        .unwrap();
        assert_eq!(account_of(&set, "token-1").await, Some(DEFAULT_ACCOUNT));
        assert_eq!(account_of(&set, &token).await, Some(DEFAULT_ACCOUNT));
        assert_eq!(account_of(&set, "token-2").await, None);
        assert_eq!(account_of(&set, "").await, None);
    }

    #[tokio::test]
    async fn an_original_argon2_entry_authenticates_and_a_wrong_token_does_not() {
        // Exactly what the original's `token` command writes: Argon2::default(), random salt.
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let phc = Argon2::default()
            .hash_password(b"tks_original", &salt)
            .unwrap()
            .to_string();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let set = token_set(&[original_entry("laptop", &phc, Some("family"))]).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(account_of(&set, "tks_original").await, Some("family"));
        assert_eq!(account_of(&set, "tks_0riginal").await, None);
        assert_eq!(account_of(&set, "").await, None);
    }

    #[tokio::test]
    async fn a_plaintext_token_hash_is_a_plaintext_token() {
        let set = token_set(&[original_entry("phone", "my-old-token", None)]).unwrap();
        assert_eq!(
            account_of(&set, "my-old-token").await,
            Some(DEFAULT_ACCOUNT)
        );
        assert_eq!(account_of(&set, "my-old-token ").await, None);
        assert_eq!(argon2_runs(&set), 0);
    }

    #[tokio::test]
    async fn argon2_runs_once_per_token_then_the_match_is_remembered() {
        let set = token_set(&[
            original_entry("laptop", &cheap_phc("tks_laptop"), None),
            original_entry("phone", &cheap_phc("tks_phone"), Some("kids")),
        ])
        .unwrap();
        assert_eq!(account_of(&set, "tks_phone").await, Some("kids"));
        let after_first = argon2_runs(&set);
        assert_eq!(after_first, 2, "tried laptop's entry, then phone's");
        assert_eq!(account_of(&set, "tks_phone").await, Some("kids"));
        assert_eq!(account_of(&set.clone(), "tks_phone").await, Some("kids"));
        assert_eq!(argon2_runs(&set), after_first);
    }

    #[tokio::test]
    async fn concurrent_first_uses_of_a_token_run_argon2_once() {
        let set = token_set(&[original_entry("laptop", &cheap_phc("tks_laptop"), None)]).unwrap();
        let (a, b) = tokio::join!(
            account_of(&set, "tks_laptop"),
            account_of(&set, "tks_laptop")
        );
        assert_eq!((a, b), (Some(DEFAULT_ACCOUNT), Some(DEFAULT_ACCOUNT)));
        assert_eq!(argon2_runs(&set), 1);
    }

    #[tokio::test]
    async fn a_repeated_bad_token_costs_argon2_once() {
        let set = token_set(&[original_entry("laptop", &cheap_phc("tks_laptop"), None)]).unwrap();
        for _ in 0..3 {
            assert_eq!(account_of(&set, "tks_guess").await, None);
        }
        assert_eq!(argon2_runs(&set), 1);
        assert_eq!(account_of(&set, "tks_another_guess").await, None);
        assert_eq!(argon2_runs(&set), 2);
        assert_eq!(account_of(&set, "tks_laptop").await, Some(DEFAULT_ACCOUNT));
    }

    #[tokio::test]
    async fn a_reload_keeps_verified_matches_of_unchanged_entries_only() {
        let (laptop, phone) = (cheap_phc("tks_laptop"), cheap_phc("tks_phone"));
        let before = token_set(&[
            original_entry("laptop", &laptop, None),
            original_entry("phone", &phone, None),
        ])
        .unwrap();
        assert!(account_of(&before, "tks_laptop").await.is_some());
        assert!(account_of(&before, "tks_phone").await.is_some());

        // The phone is revoked and the laptop moves to another account.
        let after = token_set(&[
            entry("desktop", Some("tks_desktop"), None),
            original_entry("laptop", &laptop, Some("work")),
        ])
        .unwrap();
        after.keep_verified_from(&before);
        assert_eq!(account_of(&after, "tks_laptop").await, Some("work"));
        assert_eq!(
            argon2_runs(&after),
            0,
            "the laptop's match was carried over"
        );
        assert_eq!(account_of(&after, "tks_phone").await, None);
        assert_eq!(argon2_runs(&after), 1, "the phone's match was dropped");
    }

    #[test]
    fn malformed_entries_are_refused_by_name() {
        let error = token_set(&[entry("phone", None, Some("md5:abc"))]).unwrap_err();
        assert!(error.contains("\"phone\""), "{error}");
        let error = token_set(&[entry("tablet", None, None)]).unwrap_err();
        assert!(error.contains("needs token"), "{error}");
        let both = TokenEntry {
            token_hash: Some("old".into()),
            ..entry("laptop", Some("new"), None)
        };
        let error = token_set(&[both]).unwrap_err();
        assert_eq!(
            error,
            "token \"laptop\": has token and token_hash; keep one"
        );
        let pbkdf2 = "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$ZGlnZXN0ZGlnZXN0ZGlnZXN0";
        let error = token_set(&[original_entry("desk", pbkdf2, None)]).unwrap_err();
        assert!(error.starts_with("token \"desk\": token_hash"), "{error}");
        assert!(error.contains("not argon2"), "{error}");
    }

    #[test]
    fn a_name_or_a_token_listed_twice_is_refused_at_the_second_entry() {
        let placed = |mut entry: TokenEntry, line: usize| {
            entry.written_at(format!("config.toml line {line}"));
            entry
        };
        let kids = |mut entry: TokenEntry| {
            entry.account = Some("kids".into());
            entry
        };
        let error = token_set(&[
            placed(entry("laptop", Some("tks_1"), None), 1),
            placed(entry("laptop", Some("tks_2"), None), 5),
        ])
        .unwrap_err();
        assert!(
            error.starts_with(
                "config.toml line 5: a second token named \"laptop\" (the first is at \
                 config.toml line 1)"
            ),
            "{error}"
        );

        // The same token, once as plaintext and once hashed, in two accounts.
        let error = token_set(&[
            placed(entry("laptop", Some("tks_1"), None), 1),
            placed(
                kids(entry("phone", None, Some(&hash_for_config("tks_1")))),
                9,
            ),
        ])
        .unwrap_err();
        assert!(
            error.starts_with(
                "config.toml line 9: token \"phone\" holds the same token as \"laptop\" (at \
                 config.toml line 1), so the server could not tell whether that device is in \
                 account \"default\" or \"kids\"; "
            ),
            "{error}"
        );
        assert!(!error.contains("tks_1"), "never the secret: {error}");

        let phc = cheap_phc("tks_old");
        let error = token_set(&[
            original_entry("desk", &phc, None),
            original_entry("tablet", &phc, None),
        ])
        .unwrap_err();
        assert!(
            error.starts_with("token \"tablet\" holds the same token as \"desk\""),
            "{error}"
        );
    }

    #[test]
    fn every_faulty_entry_is_reported_and_the_valid_ones_still_work() {
        let placed = |mut entry: TokenEntry, line: usize| {
            entry.written_at(format!("config.toml line {line}"));
            entry
        };
        let (set, problems) = TokenSet::validate(&[
            placed(entry("laptop", Some("tks_1"), None), 1),
            placed(entry("phone", None, None), 5),
            placed(entry("laptop", Some("tks_2"), None), 9),
            placed(entry("tablet", Some("tks_1"), None), 13),
            placed(entry("desk", Some("tks_3"), None), 17),
        ]);
        let places: Vec<Option<&str>> = problems.iter().map(|p| p.place.as_deref()).collect();
        assert_eq!(
            places,
            [
                Some("config.toml line 5"),
                Some("config.toml line 9"),
                Some("config.toml line 13")
            ]
        );
        assert!(problems[0].message.contains("needs token"), "{problems:?}");
        assert!(
            problems[1]
                .message
                .contains("a second token named \"laptop\"")
        );
        assert!(
            problems[2]
                .message
                .contains("holds the same token as \"laptop\"")
        );
        assert!(problems.iter().all(Problem::is_error));
        assert_eq!(set.len(), 2, "laptop and desk");
    }

    #[test]
    fn revoking_a_name_several_entries_share_changes_nothing() {
        let path = std::env::temp_dir().join(format!(
            "tickit-sync-tokens-ambiguous-{}.toml",
            std::process::id()
        ));
        let text = "[[tokens]]\nname = \"laptop\"\ntoken = \"tks_1\"\n\n\
                    [[tokens]]\nname = \"laptop\"\ntoken = \"tks_2\"\naccount = \"kids\"\n";
        std::fs::write(&path, text).unwrap();
        let error = revoke_in_config(&path, "laptop").unwrap_err();
        assert!(
            error.ends_with(
                "has 2 tokens named \"laptop\" (line 1, account default; line 5, account \
                 kids); nothing was revoked. Rename all but one of them in the file (names must \
                 be unique), then revoke the one meant by its name"
            ),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        std::fs::remove_file(&path).unwrap();
        let _ = std::fs::remove_file(path.with_extension("toml.lock"));
    }

    #[test]
    fn entries_say_what_they_store_and_never_the_secret() {
        let kinds = [
            entry("a", Some("plain"), None),
            entry("b", None, Some(&hash_for_config("x"))),
            original_entry("c", &cheap_phc("y"), None),
            original_entry("d", "plain", None),
        ]
        .map(|entry| entry.secret_kind().unwrap());
        assert_eq!(kinds, ["plaintext", "sha256", "argon2", "plaintext"]);
        assert!(entry("e", None, None).secret_kind().is_err());
    }

    #[test]
    fn original_entries_load_from_toml_and_revoke_by_name() {
        let path = std::env::temp_dir().join(format!(
            "tickit-sync-tokens-original-{}.toml",
            std::process::id()
        ));
        let phc = cheap_phc("tks_laptop");
        std::fs::write(
            &path,
            format!("[[tokens]]\nname = \"laptop\"\ntoken_hash = \"{phc}\"\n"),
        )
        .unwrap();
        let file = crate::config::read_file(&path).unwrap();
        let entry = file.tokens().next().unwrap();
        assert_eq!(entry.secret_kind(), Ok("argon2"));
        revoke_in_config(&path, "laptop").unwrap();
        assert_eq!(crate::config::read_file(&path).unwrap().tokens().len(), 0);
        std::fs::remove_file(&path).unwrap();
        let _ = std::fs::remove_file(path.with_extension("toml.lock"));
    }

    #[test]
    fn editing_keeps_comments_and_revoking_an_unknown_name_fails() {
        let path =
            std::env::temp_dir().join(format!("tickit-sync-tokens-{}.toml", std::process::id()));
        std::fs::write(&path, "# keep me\n[server]\nport = 3030 # and me\n").unwrap();
        add_to_config(&path, "laptop", Some("family"), "tks_x").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# keep me\n[server]\nport = 3030 # and me\n"),
            "{text}"
        );
        assert!(text.contains("name = \"laptop\""), "{text}");
        assert!(!text.contains("tks_x"), "{text}");
        assert!(add_to_config(&path, "laptop", None, "tks_y").is_err());
        assert!(
            revoke_in_config(&path, "phone")
                .unwrap_err()
                .contains("no token named")
        );
        revoke_in_config(&path, "laptop").unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("laptop"));
        std::fs::remove_file(&path).unwrap();
        let _ = std::fs::remove_file(path.with_extension("toml.lock"));
    }
}
