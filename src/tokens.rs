//! API tokens: making them, storing them hashed in the config without disturbing the rest of
//! the file, and checking a presented token in constant time.
//!
//! Tokens carry 256 random bits, so one SHA-256 is enough to make the stored form useless to a
//! reader of the config; a slow password hash (what the original server used) would only make
//! every request slow.

use std::path::Path;

use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

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
    pub account: Option<String>,
}

/// The accepted tokens, ready for constant-time lookup.
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    entries: Vec<KnownToken>,
}

#[derive(Debug, Clone)]
struct KnownToken {
    digest: [u8; 32],
    account: String,
}

impl TokenSet {
    /// Validates the entries: each has a name and exactly one of `token` or `hash`.
    pub fn new(entries: &[TokenEntry]) -> Result<TokenSet, String> {
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            let name = &entry.name;
            let digest = match (&entry.token, &entry.hash) {
                (Some(token), None) if !token.is_empty() => digest(token),
                (None, Some(hash)) => parse_hash(hash).ok_or_else(|| {
                    format!(
                        "token {name:?}: hash must be \"sha256:\" and 64 hex digits, as written by \
                         `tickit-sync token`"
                    )
                })?,
                (Some(_), Some(_)) => {
                    return Err(format!("token {name:?}: has both token and hash; keep one"));
                }
                _ => {
                    return Err(format!(
                        "token {name:?}: needs token = \"...\" or hash = \"sha256:...\""
                    ));
                }
            };
            known.push(KnownToken {
                digest,
                account: entry
                    .account
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ACCOUNT.into()),
            });
        }
        Ok(TokenSet { entries: known })
    }

    /// The account a presented token belongs to. Compares against every entry, in constant
    /// time each, so timing reveals neither the token nor which entry matched.
    pub fn account_of(&self, presented: &str) -> Option<&str> {
        let presented = digest(presented);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(entry.account.as_str());
            }
        }
        found
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
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

/// Appends a hashed token entry to the config at `path`, keeping its comments and layout.
pub fn add_to_config(
    path: &Path,
    name: &str,
    account: Option<&str>,
    token: &str,
) -> Result<(), String> {
    let mut document = read_document(path)?;
    let tokens = tokens_table_array(&mut document, path)?;
    if tokens
        .iter()
        .any(|entry| entry.get("name").and_then(Item::as_str) == Some(name))
    {
        return Err(format!(
            "{} already has a token named {name:?}; pick another name, or remove it first with \
             `tickit-sync token --revoke {name}`",
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
    write_document(path, &document)
}

/// Removes every token entry named `name`; says so when there was none.
pub fn revoke_in_config(path: &Path, name: &str) -> Result<(), String> {
    let mut document = read_document(path)?;
    let tokens = tokens_table_array(&mut document, path)?;
    let before = tokens.len();
    tokens.retain(|entry| entry.get("name").and_then(Item::as_str) != Some(name));
    if tokens.len() == before {
        return Err(format!(
            "{} has no token named {name:?}; `tickit-sync token --list` shows the names",
            path.display()
        ));
    }
    write_document(path, &document)
}

fn read_document(path: &Path) -> Result<DocumentMut, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| crate::permissions::read_error(path, &e))?;
    text.parse()
        .map_err(|e| format!("config {}: {e}", path.display()))
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

/// Replaces the file atomically (a running server never reads half of it), keeping its mode.
fn write_document(path: &Path, document: &DocumentMut) -> Result<(), String> {
    let temporary = path.with_extension("toml.tmp");
    let permissions = std::fs::metadata(path).map(|meta| meta.permissions()).ok();
    std::fs::write(&temporary, document.to_string())
        .and_then(|()| match permissions {
            Some(permissions) => std::fs::set_permissions(&temporary, permissions),
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, token: Option<&str>, hash: Option<&str>) -> TokenEntry {
        TokenEntry {
            name: name.into(),
            token: token.map(Into::into),
            hash: hash.map(Into::into),
            account: None,
        }
    }

    #[test]
    fn generated_tokens_are_long_prefixed_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
    }

    #[test]
    fn plaintext_and_hashed_entries_both_authenticate() {
        let token = generate();
        let set = TokenSet::new(&[
            entry("seed", Some("token-1"), None),
            entry("new", None, Some(&hash_for_config(&token))),
        ])
        .unwrap();
        assert_eq!(set.account_of("token-1"), Some(DEFAULT_ACCOUNT));
        assert_eq!(set.account_of(&token), Some(DEFAULT_ACCOUNT));
        assert_eq!(set.account_of("token-2"), None);
        assert_eq!(set.account_of(""), None);
    }

    #[test]
    fn malformed_entries_are_refused_by_name() {
        let error = TokenSet::new(&[entry("phone", None, Some("md5:abc"))]).unwrap_err();
        assert!(error.contains("\"phone\""), "{error}");
        let error = TokenSet::new(&[entry("tablet", None, None)]).unwrap_err();
        assert!(error.contains("needs token"), "{error}");
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
    }
}
