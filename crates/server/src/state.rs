//! What every connection task shares: routes, registries, the bridge, the limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use pyhost::bridge::{Bridge, ConnKey};

use crate::config::Limits;
use crate::registry::Registry;
use crate::routing::Routes;

pub struct ServerState {
    pub routes: Routes,
    pub registry: Arc<Registry>,
    pub bridge: Arc<Bridge>,
    pub limits: Limits,
    /// Deflate state shared by every compressed connection between messages.
    pub deflate_pool: yawc::DeflatePool,
    /// Where live counts are served, if anywhere.
    pub stats_path: Option<String>,
    next_key: AtomicU64,
    open: AtomicUsize,
    shutting_down: AtomicBool,
}

impl ServerState {
    pub fn new(
        routes: Routes,
        bridge: Arc<Bridge>,
        limits: Limits,
        deflate_pool: yawc::DeflatePool,
        stats_path: Option<String>,
    ) -> Self {
        Self {
            registry: Arc::new(Registry::new(routes.len())),
            routes,
            bridge,
            limits,
            deflate_pool,
            stats_path,
            next_key: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn next_key(&self) -> ConnKey {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes one of the `max_connections` places, or None when all are taken. The place is
    /// given back when the returned `Slot` is dropped (the connection ended, or its handshake
    /// failed).
    pub fn reserve(self: &Arc<Self>) -> Option<Slot> {
        let taken = self.open.fetch_add(1, Ordering::AcqRel);
        if taken >= self.limits.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot { state: self.clone() })
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }
}

/// One reserved connection place; see [`ServerState::reserve`].
pub struct Slot {
    state: Arc<ServerState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.open.fetch_sub(1, Ordering::AcqRel);
    }
}
