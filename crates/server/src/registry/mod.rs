//! The open connections of each endpoint, and broadcast over them. Each connection is a
//! [`Link`]: its bounded outbound queue, shared by its socket task and the interpreter side.

mod link;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pyhost::bridge::ConnKey;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

pub use link::{Closing, Link, close_frame};

type Links = HashMap<ConnKey, Arc<Link>>;

pub struct Registry {
    endpoints: Vec<RwLock<Links>>,
    live: AtomicUsize,
    /// Notified whenever a connection comes or goes.
    changed: Notify,
}

impl Registry {
    pub fn new(endpoint_count: usize) -> Self {
        Self {
            endpoints: (0..endpoint_count).map(|_| RwLock::new(HashMap::new())).collect(),
            live: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn read(&self, endpoint: usize) -> RwLockReadGuard<'_, Links> {
        // Inserts and removes cannot panic half-way; a poisoned map is still whole.
        self.endpoints[endpoint].read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self, endpoint: usize) -> RwLockWriteGuard<'_, Links> {
        self.endpoints[endpoint].write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn insert(&self, link: &Arc<Link>) {
        self.write(link.endpoint).insert(link.key, link.clone());
        self.live.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    pub fn remove(&self, link: &Link) {
        if self.write(link.endpoint).remove(&link.key).is_some() {
            self.live.fetch_sub(1, Ordering::AcqRel);
            self.changed.notify_waiters();
        }
    }

    /// Notified whenever a connection comes or goes (create the `Notified` before looking at
    /// the counts, so no change between the two is missed).
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// One frame to every joined connection of `endpoint`. The frame's bytes are shared by
    /// every queue they go into; nothing waits on a slow client (see [`Link::offer`]).
    pub fn broadcast(&self, endpoint: usize, message: &Message) {
        for link in self.read(endpoint).values() {
            if link.is_joined() {
                link.offer(message.clone());
            }
        }
    }

    /// Open connections of one endpoint.
    pub fn count(&self, endpoint: usize) -> usize {
        self.read(endpoint).len()
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Every open connection, across endpoints.
    pub fn all(&self) -> Vec<Arc<Link>> {
        (0..self.endpoints.len())
            .flat_map(|endpoint| self.read(endpoint).values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Returns once no connection is left.
    pub async fn until_empty(&self) {
        loop {
            let changed = self.changed.notified();
            if self.live() == 0 {
                return;
            }
            changed.await;
        }
    }
}
