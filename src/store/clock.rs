//! The server's own clock for stamping changes: the change feed is ordered by it, never by
//! the devices' clocks.

use crate::timestamp::now_nanos;

/// Hands out server stamps: strictly increasing, never behind the wall clock, and never
/// backwards even when the wall clock is.
#[derive(Debug)]
pub struct Clock {
    last: i64,
}

impl Clock {
    /// Starts after the newest stamp already stored.
    pub fn starting_after(newest_stamp: i64) -> Clock {
        Clock { last: newest_stamp }
    }

    /// A new stamp, later than every stamp and horizon handed out before.
    pub fn next_stamp(&mut self) -> i64 {
        self.last = now_nanos().max(self.last + 1);
        self.last
    }

    /// An instant that every stamp handed out later will exceed.
    pub fn horizon(&mut self) -> i64 {
        self.last = now_nanos().max(self.last);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_never_goes_backwards() {
        let far_future = now_nanos() + 3_600_000_000_000;
        let mut clock = Clock::starting_after(far_future);
        let first = clock.next_stamp();
        let horizon = clock.horizon();
        let second = clock.next_stamp();
        assert!(first > far_future && horizon >= first && second > horizon);
    }
}
