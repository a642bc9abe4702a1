//! What every connection task shares: routes, registries, the bridge, the limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyhost::EndpointSpec;
use pyhost::bridge::{Bridge, ConnKey};

use crate::admission::Admission;
use crate::bus::Bus;
use crate::config::{Limits, Proxies};
use crate::metrics::Snapshot;
use crate::registry::Registry;
use crate::routing::{HttpRoutes, Routes};

pub struct ServerState {
    pub routes: Routes,
    /// Per endpoint: its subprotocols and whether it decides on handshakes.
    pub endpoints: Vec<EndpointSpec>,
    /// The app's HTTP routes (not served: a request there gets a 404 saying so).
    pub http_routes: HttpRoutes,
    pub registry: Arc<Registry>,
    pub bridge: Arc<Bridge>,
    pub limits: Limits,
    /// Deflate state shared by every compressed connection between messages.
    pub deflate_pool: yawc::DeflatePool,
    /// Where live counts are served, if anywhere.
    pub stats_path: Option<String>,
    /// Whose forwarding headers are believed (`--proxy-headers`).
    pub proxies: Option<Proxies>,
    /// Access lines at info (`--access-log`) rather than debug.
    pub access_log: bool,
    /// `/health`, `/ready` and `/metrics` on the main port (no `--metrics-port`).
    pub probes_here: bool,
    /// The local bus to the other processes of `--processes`, whose sums `/metrics` shows.
    pub bus: Option<Arc<Bus>>,
    /// The places sockets take, from accept to close (`--max-connections`).
    pub admission: Arc<Admission>,
    next_key: AtomicU64,
    shutting_down: AtomicBool,
}

/// What the server is assembled from.
pub struct Served {
    pub routes: Routes,
    pub endpoints: Vec<EndpointSpec>,
    pub http_routes: HttpRoutes,
    pub limits: Limits,
    pub deflate_pool: yawc::DeflatePool,
    pub stats_path: Option<String>,
    pub proxies: Option<Proxies>,
    pub access_log: bool,
    pub probes_here: bool,
    pub bus: Option<Arc<Bus>>,
}

impl ServerState {
    pub fn new(served: Served, bridge: Arc<Bridge>, registry: Arc<Registry>) -> Self {
        let Served {
            routes,
            endpoints,
            http_routes,
            limits,
            deflate_pool,
            stats_path,
            proxies,
            access_log,
            probes_here,
            bus,
        } = served;
        let admission = Admission::new(limits.max_connections);
        Self {
            routes,
            endpoints,
            http_routes,
            registry,
            bridge,
            limits,
            deflate_pool,
            stats_path,
            proxies,
            access_log,
            probes_here,
            bus,
            admission,
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

    /// The numbers `/metrics` shows: this process's, or every process's summed when it is
    /// one of several.
    pub fn metrics(&self) -> Snapshot {
        if let Some(totals) = self.bus.as_ref().and_then(|bus| bus.totals()) {
            return totals;
        }
        self.registry.snapshot()
    }
}
