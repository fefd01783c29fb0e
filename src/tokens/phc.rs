//! The original server's argon2 `token_hash` entries, checked without letting argon2's cost
//! reach every request.
//!
//! Argon2 is slow on purpose (tens of milliseconds), so a presented token is verified once and
//! the match remembered by the token's SHA-256: each device pays argon2 once per server start.
//! Tokens that fail are remembered too (the most recent few thousand), and only one argon2
//! verification runs at a time in the whole server, on tokio's blocking pool: a flood of bad
//! tokens costs at most one core, and known tokens, which never wait for that turn, stay fast.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use argon2::password_hash::PasswordHashString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::Holder;

/// How many failed tokens are remembered; older ones are forgotten first.
const FAILURE_CACHE_CAPACITY: usize = 4096;

/// The turn to run argon2, one at a time across every token set (a reload makes a new set).
static ARGON2_TURN: Semaphore = Semaphore::const_new(1);

/// Reads a `token_hash` value. `None` when it is not a PHC string (the original server then
/// took it as the plaintext token); otherwise the hash, or why argon2 cannot verify it.
pub(super) fn parse(value: &str) -> Option<Result<PasswordHashString, String>> {
    let parsed = PasswordHash::new(value).ok()?;
    Some(verifiable(&parsed).map(|()| parsed.serialize()))
}

fn verifiable(parsed: &PasswordHash<'_>) -> Result<(), String> {
    Algorithm::try_from(parsed.algorithm)
        .map_err(|_| format!("it is a {} hash, not argon2", parsed.algorithm))?;
    if let Some(version) = parsed.version {
        Version::try_from(version).map_err(|e| format!("argon2 version {version}: {e}"))?;
    }
    Params::try_from(parsed).map_err(|e| format!("its argon2 parameters are invalid: {e}"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("it lacks the salt or the hash".into());
    }
    Ok(())
}

/// The argon2 entries of one config, with what has been learnt about presented tokens.
pub(super) struct PhcTokens {
    entries: Vec<PhcEntry>,
    /// Tokens that verified: their digest and the index of the entry they matched. At most
    /// one per entry in practice, so scanning it in constant time is cheap.
    verified: Mutex<Vec<([u8; 32], usize)>>,
    failed: Mutex<FailureCache>,
    /// How many argon2 verifications ran, for tests to see what the caches saved.
    #[cfg(test)]
    pub(super) verifications: std::sync::atomic::AtomicUsize,
}

struct PhcEntry {
    hash: PasswordHashString,
    holder: Holder,
}

impl PhcTokens {
    /// The entries: each hash (from [`parse`]) and whose it is.
    pub(super) fn new(entries: Vec<(PasswordHashString, Holder)>) -> PhcTokens {
        PhcTokens {
            entries: entries
                .into_iter()
                .map(|(hash, holder)| PhcEntry { hash, holder })
                .collect(),
            verified: Mutex::default(),
            failed: Mutex::new(FailureCache::new(FAILURE_CACHE_CAPACITY)),
            #[cfg(test)]
            verifications: Default::default(),
        }
    }

    /// How many argon2 entries there are.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The holder of a token verified before. Compares against every remembered match in
    /// constant time each, and never waits for argon2.
    pub(super) fn verified_holder(&self, digest: &[u8; 32]) -> Option<&Holder> {
        let mut found = None;
        for (known, index) in lock(&self.verified).iter() {
            if bool::from(known.ct_eq(digest)) {
                found = self.entries.get(*index).map(|entry| &entry.holder);
            }
        }
        found
    }

    /// Verifies a token not seen before against every argon2 entry, remembering the outcome.
    /// Waits for the server-wide argon2 turn; a token that failed recently fails at once.
    pub(super) async fn verify(
        self: &Arc<Self>,
        presented: &str,
        digest: [u8; 32],
    ) -> Option<&Holder> {
        if self.entries.is_empty() || self.recently_failed(&digest) {
            return None;
        }
        let turn = ARGON2_TURN.acquire().await.ok()?;
        // Another request may have settled this token while this one waited for the turn.
        if let Some(holder) = self.verified_holder(&digest) {
            return Some(holder);
        }
        if self.recently_failed(&digest) {
            return None;
        }
        let tokens = Arc::clone(self);
        let presented = presented.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            // The turn ends when argon2 does, even if the request is dropped meanwhile.
            let _turn = turn;
            tokens.verify_now(&presented, digest)
        })
        .await
        .ok()??;
        self.entries.get(matched).map(|entry| &entry.holder)
    }

    /// Runs argon2 (blocking) and records the outcome; the index of the matching entry.
    fn verify_now(&self, presented: &str, digest: [u8; 32]) -> Option<usize> {
        let argon2 = Argon2::default();
        let matched = self.entries.iter().position(|entry| {
            #[cfg(test)]
            self.verifications
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            argon2
                .verify_password(presented.as_bytes(), &entry.hash.password_hash())
                .is_ok()
        });
        match matched {
            Some(index) => lock(&self.verified).push((digest, index)),
            None => lock(&self.failed).insert(digest),
        }
        matched
    }

    fn recently_failed(&self, digest: &[u8; 32]) -> bool {
        lock(&self.failed).contains(digest)
    }

    /// Takes over the matches `previous` verified whose hash is still in this set (with this
    /// set's holder for it); matches of entries that are gone are dropped, so a revoked
    /// token is refused at once. Failures are not taken over: a new entry may accept them.
    pub(super) fn keep_verified_from(&self, previous: &PhcTokens) {
        let remembered = lock(&previous.verified).clone();
        let mut verified = lock(&self.verified);
        for (digest, old_index) in remembered {
            let Some(old) = previous.entries.get(old_index) else {
                continue;
            };
            let index = self
                .entries
                .iter()
                .position(|entry| entry.hash.as_str() == old.hash.as_str());
            if let Some(index) = index
                && !verified.iter().any(|(known, _)| *known == digest)
            {
                verified.push((digest, index));
            }
        }
    }
}

impl fmt::Debug for PhcTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhcTokens")
            .field("entries", &self.entries.len())
            .field("verified", &lock(&self.verified).len())
            .finish_non_exhaustive()
    }
}

/// The digests of recently failed tokens, at most `capacity`, the oldest forgotten first.
struct FailureCache {
    capacity: usize,
    order: VecDeque<[u8; 32]>,
    digests: HashSet<[u8; 32]>,
}

impl FailureCache {
    fn new(capacity: usize) -> FailureCache {
        FailureCache {
            capacity,
            order: VecDeque::new(),
            digests: HashSet::new(),
        }
    }

    fn contains(&self, digest: &[u8; 32]) -> bool {
        self.digests.contains(digest)
    }

    fn insert(&mut self, digest: [u8; 32]) {
        if self.capacity == 0 || !self.digests.insert(digest) {
            return;
        }
        self.order.push_back(digest);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.digests.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

/// The caches stay consistent whatever panicked while holding them (each change is one push
/// or one insert), so a poisoned lock is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_cache_forgets_the_oldest_beyond_its_capacity() {
        let mut cache = FailureCache::new(3);
        for byte in 0..5u8 {
            cache.insert([byte; 32]);
        }
        cache.insert([4; 32]);
        assert_eq!(cache.len(), 3);
        assert!(!cache.contains(&[0; 32]) && !cache.contains(&[1; 32]));
        assert!((2..5u8).all(|byte| cache.contains(&[byte; 32])));
    }

    #[test]
    fn the_server_wide_failure_cache_is_bounded() {
        let tokens = PhcTokens::new(Vec::new());
        let mut failed = lock(&tokens.failed);
        for index in 0..FAILURE_CACHE_CAPACITY + 10 {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&index.to_le_bytes());
            failed.insert(digest);
        }
        assert_eq!(failed.len(), FAILURE_CACHE_CAPACITY);
    }

    #[test]
    fn phc_strings_of_other_algorithms_or_without_a_hash_are_refused() {
        assert!(parse("not a phc string").is_none());
        let pbkdf2 = "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$ZGlnZXN0ZGlnZXN0ZGlnZXN0";
        assert!(parse(pbkdf2).unwrap().unwrap_err().contains("not argon2"));
        let no_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0";
        assert!(parse(no_hash).unwrap().is_err());
    }
}
