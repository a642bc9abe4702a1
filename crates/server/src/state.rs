//! What every connection task shares: routes, registries, the bridge, the limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyhost::bridge::{Bridge, ConnKey};

use crate::registry::Registry;
use crate::routing::Routes;

pub struct Limits {
    /// Largest message (and frame) accepted from a client, in bytes.
    pub max_message_size: usize,
    /// Frames a connection's outbound queue holds before sends wait.
    pub send_queue: usize,
    /// Negotiate permessage-deflate with clients that offer it.
    pub deflate: bool,
}

pub struct ServerState {
    pub routes: Routes,
    pub registry: Arc<Registry>,
    pub bridge: Arc<Bridge>,
    pub limits: Limits,
    /// Deflate state shared by every compressed connection between messages.
    pub deflate_pool: yawc::DeflatePool,
    next_key: AtomicU64,
    shutting_down: AtomicBool,
}

impl ServerState {
    pub fn new(routes: Routes, bridge: Arc<Bridge>, limits: Limits) -> Self {
        Self {
            registry: Arc::new(Registry::new(routes.len())),
            routes,
            bridge,
            limits,
            deflate_pool: crate::deflate::pool(),
            next_key: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn next_key(&self) -> ConnKey {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }
}
