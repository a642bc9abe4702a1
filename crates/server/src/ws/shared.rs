//! What every WebSocket connection task shares: the registry, the bridge, the limits, the
//! places, and whether the server is shutting down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyhost::bridge::{Bridge, ConnKey};

use crate::admission::Admission;
use crate::config::Limits;
use crate::in_flight::InFlight;
use crate::ws::registry::Registry;

pub struct Shared {
    pub registry: Arc<Registry>,
    pub bridge: Arc<Bridge>,
    pub limits: Limits,
    /// Deflate state shared by every compressed connection between messages.
    pub deflate_pool: yawc::DeflatePool,
    /// Access lines at info (`--access-log`) rather than debug.
    pub access_log: bool,
    /// The places sockets take, from accept to close (`--max-connections`).
    pub admission: Arc<Admission>,
    /// The streamed HTTP responses being sent.
    pub streams: Arc<InFlight>,
    /// The HTTP connections open (until they are upgraded or closed).
    pub http_connections: Arc<InFlight>,
    next_key: AtomicU64,
    shutting_down: AtomicBool,
}

impl Shared {
    pub fn new(
        registry: Arc<Registry>,
        bridge: Arc<Bridge>,
        limits: Limits,
        deflate_pool: yawc::DeflatePool,
        access_log: bool,
    ) -> Self {
        let admission = Admission::new(limits.max_connections);
        Self {
            registry,
            bridge,
            limits,
            deflate_pool,
            access_log,
            admission,
            streams: Arc::default(),
            http_connections: Arc::default(),
            next_key: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Whether connections keep what their access line needs.
    pub fn logs_access(&self) -> bool {
        self.access_log || tracing::enabled!(target: "robyn_ws_server::access", tracing::Level::DEBUG)
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

    /// Why this process should not get new clients now, if it should not (`/ready`).
    pub fn unready_because(&self) -> Option<&'static str> {
        if self.is_shutting_down() {
            Some("shutting down")
        } else if !self.registry.hears_others() {
            Some("not connected to the other processes (the broker or the supervisor)")
        } else {
            None
        }
    }
}
