//! The memory budget for request bodies: every body held in memory, from its first byte until
//! its sync has been applied, counts against `[server] max_bodies_in_flight_bytes`, so many
//! large requests at once cannot exhaust the server's memory. A request that does not fit
//! waits a little for others to finish, then is refused (the caller answers 503).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a request waits for room in the budget before it is refused.
pub const WAIT_FOR_ROOM: Duration = Duration::from_secs(3);

/// Bytes of request bodies held now, over all requests. The budget's size is passed in by
/// each request from the config it runs with, so a reload takes effect for new requests.
#[derive(Default)]
pub struct BodyBudget {
    held: Mutex<u64>,
    /// Notified whenever bytes are given back.
    freed: Notify,
}

/// The budget had no room for a request's body within [`WAIT_FOR_ROOM`].
#[derive(Debug)]
pub struct NoRoom;

impl BodyBudget {
    /// Reserves `bytes` of a budget of `capacity`, waiting up to [`WAIT_FOR_ROOM`] for room.
    pub async fn reserve(&self, bytes: u64, capacity: u64) -> Result<Reservation<'_>, NoRoom> {
        self.take(bytes, capacity).await?;
        Ok(Reservation {
            budget: self,
            bytes,
            capacity,
        })
    }

    async fn take(&self, bytes: u64, capacity: u64) -> Result<(), NoRoom> {
        let give_up = Instant::now() + WAIT_FOR_ROOM;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut held = lock(&self.held);
                if *held + bytes <= capacity {
                    *held += bytes;
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(give_up, freed).await.is_err() {
                return Err(NoRoom);
            }
        }
    }

    fn give_back(&self, bytes: u64) {
        let mut held = lock(&self.held);
        *held = held.saturating_sub(bytes);
        drop(held);
        self.freed.notify_waiters();
    }
}

/// A request's share of the budget, given back when dropped.
pub struct Reservation<'a> {
    budget: &'a BodyBudget,
    bytes: u64,
    capacity: u64,
}

impl Reservation<'_> {
    /// Grows the share to `bytes` (a body without Content-Length, as it arrives), waiting up
    /// to [`WAIT_FOR_ROOM`] for room.
    pub async fn grow_to(&mut self, bytes: u64) -> Result<(), NoRoom> {
        if bytes <= self.bytes {
            return Ok(());
        }
        self.budget.take(bytes - self.bytes, self.capacity).await?;
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

fn lock(held: &Mutex<u64>) -> MutexGuard<'_, u64> {
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_waits_for_room_given_back_and_every_byte_returns() {
        let budget = BodyBudget::default();
        let held = budget.reserve(600, 1000).await.unwrap();
        let mut growing = budget.reserve(300, 1000).await.unwrap();
        let started = Instant::now();
        let (grown, ()) = tokio::join!(growing.grow_to(700), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(held);
        });
        assert!(grown.is_ok());
        assert!(started.elapsed() < WAIT_FOR_ROOM, "taken once given back");
        assert_eq!(*lock(&budget.held), 700);
        drop(growing);
        assert_eq!(*lock(&budget.held), 0);
    }
}
