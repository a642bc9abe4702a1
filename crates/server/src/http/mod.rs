//! The HTTP side: accepting connections (`listener`), routing each request (`routing`,
//! `service`), and answering it: an app route through Python (`app`), a file of a served
//! folder (`static_files`), a WebSocket handshake (handed to `ws`), or one of the server's
//! own paths (`ops`).

pub mod app;
pub mod listener;
pub mod multipart;
pub mod routing;
pub mod service;
pub mod static_files;
pub mod streaming;

use std::sync::Arc;

use pyhost::EndpointSpec;

use crate::cluster::bus::Bus;
use crate::ops::probes::OnMainPort;
use crate::proxies::Proxies;
use crate::ws::Shared;

/// Everything a request may be answered from: the app's routes of both kinds, and the
/// server's shared state behind them.
pub struct Site {
    pub server: Arc<Shared>,
    pub websocket_routes: routing::WebSocketRoutes,
    /// Per WebSocket endpoint: its subprotocols and whether it decides on handshakes.
    pub endpoints: Vec<EndpointSpec>,
    pub app: app::AppRoutes,
    /// Where live counts are served, if anywhere.
    pub stats_path: Option<String>,
    /// Whose forwarding headers are believed (`--proxy-headers`).
    pub proxies: Option<Proxies>,
    /// `/health`, `/ready` and `/metrics` on the main port (no `--metrics-port`).
    pub probes_here: OnMainPort,
    /// The local bus to the other processes of `--processes`, whose sums `/metrics` shows.
    pub bus: Option<Arc<Bus>>,
}
