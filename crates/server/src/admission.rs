//! Places for connections (`--max-connections`). A socket takes a place when it is accepted,
//! keeps it through its HTTP handshake and, once upgraded, for the WebSocket connection's
//! life: a client that opens sockets and says nothing uses up places, not the process's file
//! descriptors. Over the limit a few more sockets are let in, only to be answered 503 (a
//! client is told, not left waiting); past those, accepting waits until a place frees up and
//! new clients wait in the kernel's backlog.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pyhost::locks::lock;
use tokio::sync::Notify;

/// Sockets let in over the limit to be answered 503, at most.
pub const REFUSING: usize = 16;

pub struct Admission {
    max: usize,
    /// Sockets holding a place.
    placed: AtomicUsize,
    /// Sockets let in over the limit (each to be answered 503).
    refusing: AtomicUsize,
    /// Sockets still in their HTTP phase (not upgraded, not closed), placed or not.
    handshakes: AtomicUsize,
    /// Notified whenever a count goes down or a handshake starts.
    changed: Notify,
}

/// What an accepted socket holds until it closes: a place, which its handshake may take for
/// the WebSocket connection, or none (it is answered 503).
pub struct Admitted {
    place: Mutex<Option<Place>>,
    _handshake: Handshake,
    _refusal: Option<Refusal>,
}

impl Admission {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            placed: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            changed: Notify::new(),
        })
    }

    /// Waits until the next socket can be let in: with a place, or to be refused.
    pub async fn until_room(&self) {
        loop {
            let changed = self.changed.notified();
            if self.placed.load(Ordering::Acquire) < self.max || self.refusing.load(Ordering::Acquire) < REFUSING {
                return;
            }
            changed.await;
        }
    }

    /// Lets an accepted socket in: with a place if one is free, else as one to refuse (the
    /// caller waited for [`Admission::until_room`], so one of the two is there).
    pub fn admit(self: &Arc<Self>) -> Admitted {
        let place = self.place();
        let refusal = place.is_none().then(|| {
            self.refusing.fetch_add(1, Ordering::AcqRel);
            Refusal { admission: self.clone() }
        });
        self.handshakes.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        Admitted { place: Mutex::new(place), _handshake: Handshake { admission: self.clone() }, _refusal: refusal }
    }

    /// Takes one of the places, or None when all are taken.
    pub fn place(self: &Arc<Self>) -> Option<Place> {
        let taken = self.placed.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max {
            self.placed.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Place { admission: self.clone() })
    }

    /// Sockets still in their HTTP phase.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Acquire)
    }

    /// Notified whenever a place or a refusal frees up, or a handshake starts or ends (create
    /// the `Notified` before reading the counts).
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    fn release(&self, count: &AtomicUsize) {
        count.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }
}

impl Admitted {
    /// The socket's place, for the WebSocket connection its handshake opens; None when it has
    /// none (let in over the limit) or gave it away already.
    pub fn take_place(&self) -> Option<Place> {
        lock(&self.place).take()
    }
}

/// One of the `--max-connections` places, given back when dropped.
pub struct Place {
    admission: Arc<Admission>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.admission.release(&self.admission.placed);
    }
}

struct Refusal {
    admission: Arc<Admission>,
}

impl Drop for Refusal {
    fn drop(&mut self) {
        self.admission.release(&self.admission.refusing);
    }
}

struct Handshake {
    admission: Arc<Admission>,
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.admission.release(&self.admission.handshakes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_keeps_its_place_until_its_connection_gives_it_back() {
        let admission = Admission::new(2);
        let first = admission.admit();
        assert_eq!(admission.handshakes(), 1);
        let place = first.take_place().expect("a free place");
        assert!(first.take_place().is_none(), "a place is taken once");
        drop(first);
        assert_eq!(admission.handshakes(), 0, "the handshake is over");
        assert_eq!(admission.placed.load(Ordering::Acquire), 1, "the connection still holds its place");
        drop(place);
        assert_eq!(admission.placed.load(Ordering::Acquire), 0);
    }

    #[test]
    fn over_the_limit_a_few_are_let_in_to_be_refused_then_none() {
        let admission = Admission::new(1);
        let placed = admission.admit();
        let refused: Vec<Admitted> = (0..REFUSING).map(|_| admission.admit()).collect();
        assert!(refused.iter().all(|admitted| admitted.take_place().is_none()));
        let room = std::pin::pin!(admission.until_room());
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut room = room;
        assert!(room.as_mut().poll(&mut context).is_pending(), "no place and no more refusals");
        drop(refused);
        assert!(room.as_mut().poll(&mut context).is_ready(), "refusals freed up");
        drop(placed);
        assert!(admission.admit().take_place().is_some(), "the place is free again");
    }
}
