//! What a version says, as a short digest: two versions with the same fingerprint differ at
//! most in when they were written, so a client's re-stamped copy matches what it was sent.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::protocol::{Kind, content_key, version_instant};
use crate::timestamp::saturating_nanos;

/// The fingerprint of a version's content: its `updated_at` left out, and every tombstone
/// of a record alike.
pub fn content(kind: Kind, deleted: bool, body: &Map<String, Value>) -> Vec<u8> {
    if deleted {
        return tombstone();
    }
    Sha256::digest(content_key(kind, body).as_bytes()).to_vec()
}

/// The fingerprint every tombstone has.
fn tombstone() -> Vec<u8> {
    Sha256::digest(b"deleted").to_vec()
}

/// The fingerprint of one exact upload, its content and the instant it carries, so a
/// client's retry of the very same upload is recognised.
pub fn exact(content: &[u8], instant: i64) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(content);
    digest.update(instant.to_le_bytes());
    digest.finalize().to_vec()
}

/// The instant of a record's `updated_at` as clients read it (a tag written without one is
/// sent with its `created_at`), as stored (see [`saturating_nanos`]); `None` for a tombstone.
pub fn updated_at(deleted: bool, body: &Map<String, Value>) -> Option<i64> {
    if deleted {
        return None;
    }
    version_instant(deleted, body).map(saturating_nanos)
}
