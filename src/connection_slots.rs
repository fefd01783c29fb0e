//! Connection slots: at most `max_connections` connections are served at once, and when a new
//! one finds every slot taken, the least useful open connection is shed to make room. In
//! order: connections that have not sent a valid token, then idle keep-alive connections,
//! then syncs still receiving their body, oldest first; never a sync being applied or
//! answered. Only when none may be shed does the new connection wait. Each connection's
//! task and its request handler keep its phase here, which also tells the task when a
//! keep-alive connection has been idle too long.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The open connections, and the wake-up of an accept loop waiting for room.
#[derive(Default)]
pub struct ConnectionSlots {
    open: Mutex<Vec<Arc<ConnectionState>>>,
    /// Notified when a connection closes or becomes one that may be shed.
    room: Arc<Notify>,
}

impl ConnectionSlots {
    /// A slot for a new connection. With `max` or more open, sheds the least useful open
    /// connection first; if none may be shed, waits until one closes or may be.
    pub async fn admit(self: &Arc<Self>, max: usize) -> Occupant {
        loop {
            let room = self.room.notified();
            if let Some(occupant) = self.try_admit(max) {
                return occupant;
            }
            room.await;
        }
    }

    fn try_admit(self: &Arc<Self>, max: usize) -> Option<Occupant> {
        let mut open = lock(&self.open);
        while open.len() >= max {
            let (_, victim) = open
                .iter()
                .enumerate()
                .filter_map(|(index, connection)| Some((connection.shed_order()?, index)))
                .min()?;
            // It may have started applying a sync since it was ranked; then rank them again.
            if open[victim].shed() {
                open.swap_remove(victim);
            }
        }
        let connection = Arc::new(ConnectionState {
            state: Mutex::new(State {
                phase: Phase::Waiting,
                trusted: false,
                served: false,
                since: Instant::now(),
                shed: false,
            }),
            changed: Notify::new(),
            room: self.room.clone(),
        });
        open.push(connection.clone());
        Some(Occupant {
            slots: self.clone(),
            connection,
        })
    }

    fn release(&self, connection: &Arc<ConnectionState>) {
        let mut open = lock(&self.open);
        if let Some(index) = open.iter().position(|c| Arc::ptr_eq(c, connection)) {
            open.swap_remove(index);
        }
        drop(open);
        self.room.notify_one();
    }
}

/// A connection's hold on its slot, kept by its task; dropping it frees the slot.
pub struct Occupant {
    slots: Arc<ConnectionSlots>,
    connection: Arc<ConnectionState>,
}

impl Occupant {
    /// The connection's record, for its request handlers.
    pub fn connection(&self) -> Arc<ConnectionState> {
        self.connection.clone()
    }

    /// Resolves when the server should close the connection: it was shed (a sync receiving
    /// its body is answered first), or it has waited for its next request longer than
    /// `keep_alive`.
    pub async fn close_requested(&self, keep_alive: Duration) {
        let connection = &self.connection;
        loop {
            let changed = connection.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let idle_until = {
                let state = lock(&connection.state);
                if state.shed && state.phase != Phase::Receiving {
                    return;
                }
                (state.phase == Phase::Waiting && state.served).then(|| state.since + keep_alive)
            };
            match idle_until {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

impl Drop for Occupant {
    fn drop(&mut self) {
        self.slots.release(&self.connection);
    }
}

/// What a connection is doing, as far as shedding it is concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress: just accepted, or between requests.
    Waiting,
    /// A request whose token has not been checked (yet), or one that needs none.
    Unverified,
    /// A sync with a valid token whose body is still arriving.
    Receiving,
    /// A sync being applied or answered: never shed.
    Applying,
}

struct State {
    phase: Phase,
    /// A request on this connection carried a valid token.
    trusted: bool,
    /// A request has been answered, so waiting now is keep-alive idleness.
    served: bool,
    /// When `phase` last changed.
    since: Instant,
    shed: bool,
}

/// One open connection: its phase, set by its request handlers, and whether it was shed.
pub struct ConnectionState {
    state: Mutex<State>,
    /// Notified on every change of `state`.
    changed: Notify,
    room: Arc<Notify>,
}

impl ConnectionState {
    /// Marks a request as begun; it counts as in progress until the returned tracker (held
    /// by its response body) is dropped.
    pub fn request_started(self: &Arc<Self>) -> RequestTracker {
        self.update(|state| state.phase = Phase::Unverified);
        RequestTracker {
            connection: self.clone(),
            started: Instant::now(),
        }
    }

    /// Lower sheds first: (rank, since). `None` for a connection that is never shed.
    fn shed_order(&self) -> Option<(u8, Instant)> {
        let state = lock(&self.state);
        if state.shed {
            return None;
        }
        let rank = match (state.phase, state.trusted) {
            (Phase::Applying, _) => return None,
            (Phase::Receiving, _) => 2,
            (Phase::Waiting | Phase::Unverified, false) => 0,
            (Phase::Waiting | Phase::Unverified, true) => 1,
        };
        Some((rank, state.since))
    }

    /// Marks the connection shed, unless it has become one that is never shed.
    fn shed(&self) -> bool {
        let mut state = lock(&self.state);
        if state.shed || state.phase == Phase::Applying {
            return false;
        }
        state.shed = true;
        drop(state);
        self.changed.notify_waiters();
        true
    }

    /// Applies `change`, notes when, and wakes whoever watches this connection.
    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let mut state = lock(&self.state);
        let outcome = change(&mut state);
        state.since = Instant::now();
        drop(state);
        self.changed.notify_waiters();
        outcome
    }
}

/// A request in progress on a connection: what its handler reports, and what it asks.
pub struct RequestTracker {
    connection: Arc<ConnectionState>,
    started: Instant,
}

/// The connection was shed to make room for another while its request was still arriving.
#[derive(Debug)]
pub struct Shed;

impl RequestTracker {
    /// When the request's headers were in.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The request's token is valid: its connection is no longer shed before unknown ones.
    pub fn token_accepted(&self) {
        self.connection.update(|state| {
            state.trusted = true;
            state.phase = Phase::Receiving;
        });
    }

    /// The whole body is in: from now on the request is never shed. Fails if it already was.
    pub fn start_applying(&self) -> Result<(), Shed> {
        self.connection.update(|state| {
            if state.shed {
                return Err(Shed);
            }
            state.phase = Phase::Applying;
            Ok(())
        })
    }

    /// Resolves once the connection has been shed.
    pub async fn shed(&self) {
        loop {
            let changed = self.connection.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if lock(&self.connection.state).shed {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        self.connection.update(|state| {
            state.phase = Phase::Waiting;
            state.served = true;
        });
        // It may now be shed, if the accept loop is waiting for that.
        self.connection.room.notify_one();
    }
}

/// A response body that keeps its request in progress until it has been sent (or dropped).
pub struct TrackedBody<B> {
    body: B,
    _request: RequestTracker,
}

impl<B> TrackedBody<B> {
    /// `body`, holding `request` in progress until it is dropped.
    pub fn new(body: B, request: RequestTracker) -> Self {
        TrackedBody {
            body,
            _request: request,
        }
    }
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Locks, ignoring poisoning: the state stays consistent (every change is one assignment).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_shed(occupant: &Occupant) -> bool {
        lock(&occupant.connection.state).shed
    }

    /// A request on `occupant`'s connection with a valid token, its body still arriving.
    fn receiving(occupant: &Occupant) -> RequestTracker {
        let request = occupant.connection().request_started();
        request.token_accepted();
        request
    }

    /// A sync on `occupant`'s connection being applied.
    fn applying(occupant: &Occupant) -> RequestTracker {
        let request = receiving(occupant);
        request.start_applying().unwrap();
        request
    }

    #[tokio::test]
    async fn unknown_go_first_then_idle_then_the_oldest_body_arriving_never_a_sync_applied() {
        const MAX: usize = 4;
        let slots = Arc::new(ConnectionSlots::default());
        let a = slots.admit(MAX).await;
        let a_sync = applying(&a);
        let b = slots.admit(MAX).await;
        let b_body = receiving(&b);
        let c = slots.admit(MAX).await;
        drop(receiving(&c)); // answered: c is idle, and sent a valid token
        let d = slots.admit(MAX).await; // has sent nothing

        let e = slots.admit(MAX).await;
        assert!(is_shed(&d) && !is_shed(&c) && !is_shed(&b) && !is_shed(&a));
        let _e_body = receiving(&e);
        let f = slots.admit(MAX).await;
        assert!(is_shed(&c) && !is_shed(&b) && !is_shed(&e));
        let _f_sync = applying(&f);
        let g = slots.admit(MAX).await;
        assert!(is_shed(&b) && !is_shed(&e), "the oldest body arriving");
        assert!(b_body.start_applying().is_err(), "its handler is told");
        let _g_sync = applying(&g);
        let h = slots.admit(MAX).await;
        assert!(is_shed(&e));
        let _h_sync = applying(&h);

        // Only syncs being applied: a newcomer waits until one is done.
        let waited = tokio::time::timeout(Duration::from_millis(50), slots.admit(MAX)).await;
        assert!(waited.is_err(), "admitted although nothing could be shed");
        let (admitted, ()) = tokio::join!(slots.admit(MAX), async { drop(a_sync) });
        assert!(is_shed(&a) && !is_shed(&admitted));
    }
}
