//! What the server remembers of the last answer it sent each device: the `server_time` it
//! issued and the server stamp up to which that answer held every change. A device that
//! carries that `server_time` forward as its next `last_sync` continues from that stamp,
//! so it receives each change once, instead of from `server_time` itself (set back by the
//! skew allowance, which would send the last five minutes of changes again on every sync).
//!
//! It lives in memory, owned by the writer thread: a sync that changes nothing writes
//! nothing to disk. Losing it (a restart, an eviction, a failed commit) only makes the next
//! answer start from `last_sync` again, which repeats changes and never skips one.

use std::collections::HashMap;

/// How many devices are remembered; beyond it, the one that synced longest ago is
/// forgotten (its next sync starts from its `last_sync`).
const CAPACITY: usize = 10_000;

/// One millisecond, the precision `server_time` goes out with.
const MILLISECOND: i64 = 1_000_000;

/// The last answer sent to one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastAnswer {
    /// When the request arrived (server clock).
    pub received_at: i64,
    /// The request's `last_sync`.
    pub last_sync: Option<i64>,
    /// The `server_time` sent, as the client reads it back (whole milliseconds).
    pub server_time: i64,
    /// The answer held the changes stamped after this (`None`: from the first).
    pub feed_after: Option<i64>,
    /// Every change stamped up to this was in the answer (or came from the device).
    pub complete_to: i64,
}

impl LastAnswer {
    /// The answer to remember for a request that arrived at `received_at` with `last_sync`,
    /// answered with `server_time` and the changes stamped in `(feed_after, complete_to]`.
    pub fn new(
        received_at: i64,
        last_sync: Option<i64>,
        server_time: i64,
        (feed_after, complete_to): (Option<i64>, i64),
    ) -> Self {
        LastAnswer {
            received_at,
            last_sync,
            server_time: server_time.div_euclid(MILLISECOND) * MILLISECOND,
            feed_after,
            complete_to,
        }
    }

    /// Whether a change stamped `stamp` was in this answer (unless the device sent it).
    pub fn covered(&self, stamp: i64) -> bool {
        self.feed_after.is_none_or(|after| stamp > after) && stamp <= self.complete_to
    }
}

/// The stamp after which a device's answer must start: `None` for everything (a full
/// sync); the stamp its last answer was complete to when `last_sync` is that answer's
/// `server_time`; otherwise `last_sync` itself read as an instant (an older or unknown
/// value, another server's, or an answer the device never received).
pub fn feed_after(last: Option<&LastAnswer>, last_sync: Option<i64>) -> Option<i64> {
    let last_sync = last_sync?;
    Some(match last {
        Some(last) if last.server_time == last_sync => last.complete_to,
        _ => last_sync,
    })
}

/// The last answer of each device the writer has answered since it started.
#[derive(Debug, Default)]
pub struct LastAnswers {
    by_device: HashMap<(String, String), LastAnswer>,
}

impl LastAnswers {
    /// The device's last answer, if remembered.
    pub fn get(&self, account: &str, device: &str) -> Option<&LastAnswer> {
        self.by_device.get(&(account.to_owned(), device.to_owned()))
    }

    /// Remembers `answer` as the device's last. Two answers can carry the same
    /// `server_time` (within one millisecond); a device holding it got at least one of
    /// them, so it continues from the earlier completeness.
    pub fn remember(&mut self, account: &str, device: &str, mut answer: LastAnswer) {
        let key = (account.to_owned(), device.to_owned());
        if let Some(previous) = self.by_device.get(&key) {
            if previous.server_time == answer.server_time {
                answer.complete_to = answer.complete_to.min(previous.complete_to);
            }
        } else if self.by_device.len() >= CAPACITY {
            self.forget_the_longest_idle();
        }
        self.by_device.insert(key, answer);
    }

    /// Forgets the device's last answer: its commit failed, so it was never sent.
    pub fn forget(&mut self, account: &str, device: &str) {
        self.by_device
            .remove(&(account.to_owned(), device.to_owned()));
    }

    fn forget_the_longest_idle(&mut self) {
        let oldest = self
            .by_device
            .iter()
            .min_by_key(|(_, answer)| answer.received_at)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.by_device.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAPTOP: &str = "laptop";
    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn a_device_carrying_its_server_time_forward_continues_from_the_answers_stamp() {
        let mut answers = LastAnswers::default();
        let answer = LastAnswer::new(
            1_000 * SECOND,
            None,
            700 * SECOND + 123_456,
            (None, 1_000 * SECOND),
        );
        answers.remember("a", LAPTOP, answer);
        let last = answers.get("a", LAPTOP);
        assert_eq!(feed_after(last, Some(700 * SECOND)), Some(1_000 * SECOND));
        assert_eq!(
            feed_after(last, Some(700 * SECOND + 1)),
            Some(700 * SECOND + 1)
        );
        assert_eq!(feed_after(last, Some(600 * SECOND)), Some(600 * SECOND));
        assert_eq!(feed_after(last, None), None);
        assert_eq!(
            feed_after(answers.get("b", LAPTOP), Some(700 * SECOND)),
            Some(700 * SECOND)
        );
    }

    #[test]
    fn two_answers_with_one_server_time_continue_from_the_earlier_completeness() {
        let mut answers = LastAnswers::default();
        answers.remember(
            "a",
            LAPTOP,
            LastAnswer::new(10, None, 5 * SECOND, (None, 100)),
        );
        answers.remember(
            "a",
            LAPTOP,
            LastAnswer::new(11, None, 5 * SECOND + 1, (None, 200)),
        );
        assert_eq!(
            feed_after(answers.get("a", LAPTOP), Some(5 * SECOND)),
            Some(100)
        );
        answers.remember(
            "a",
            LAPTOP,
            LastAnswer::new(12, None, 6 * SECOND, (None, 300)),
        );
        assert_eq!(
            feed_after(answers.get("a", LAPTOP), Some(6 * SECOND)),
            Some(300)
        );
    }

    #[test]
    fn a_forgotten_or_evicted_device_starts_from_its_last_sync() {
        let mut answers = LastAnswers::default();
        answers.remember("a", LAPTOP, LastAnswer::new(0, None, SECOND, (None, 100)));
        answers.forget("a", LAPTOP);
        assert_eq!(answers.get("a", LAPTOP), None);
        for device in 0..=CAPACITY {
            let received_at = i64::try_from(device).unwrap();
            answers.remember(
                "a",
                &device.to_string(),
                LastAnswer::new(received_at, None, SECOND, (None, 100)),
            );
        }
        assert_eq!(answers.by_device.len(), CAPACITY);
        assert_eq!(answers.get("a", "0"), None);
        assert!(answers.get("a", "1").is_some());
    }
}
