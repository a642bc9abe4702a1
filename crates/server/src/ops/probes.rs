//! What an orchestrator asks a server: `/health` (the process answers), `/ready` (it should
//! get traffic: not while shutting down, nor while it cannot hear the other processes), and
//! `/metrics` (Prometheus). Served on the main port where no WebSocket route claims the path,
//! or on `--metrics-port`.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cluster::bus::Bus;
use crate::metrics::Snapshot;
use crate::ws::Shared;

/// The OpenMetrics text format prometheus-client writes.
const METRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Health,
    Ready,
    Metrics,
}

/// Which of the server's own paths the main port answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMainPort {
    /// `--metrics-port`: they all have a port of their own.
    Nothing,
    /// The default: `/health` and `/ready`, which load balancers ask; not `/metrics`, which
    /// would tell anyone the app's per-route counts.
    HealthAndReady,
    /// `--expose-metrics`: all three.
    All,
}

impl OnMainPort {
    pub fn serves(self, probe: &Probe) -> bool {
        match self {
            Self::Nothing => false,
            Self::HealthAndReady => !matches!(probe, Probe::Metrics),
            Self::All => true,
        }
    }
}

impl Probe {
    pub fn at(path: &str) -> Option<Self> {
        match path {
            "/health" => Some(Self::Health),
            "/ready" => Some(Self::Ready),
            "/metrics" => Some(Self::Metrics),
            _ => None,
        }
    }
}

pub fn respond(state: &Shared, bus: Option<&Bus>, probe: Probe) -> Response {
    match probe {
        Probe::Health => (StatusCode::OK, "ok\n").into_response(),
        Probe::Ready => match state.unready_because() {
            None => (StatusCode::OK, "ready\n").into_response(),
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
        },
        Probe::Metrics => ([(header::CONTENT_TYPE, METRICS_TYPE)], metrics(state, bus).render()).into_response(),
    }
}

/// The numbers `/metrics` shows: this process's, or every process's summed when it is one
/// of several.
fn metrics(state: &Shared, bus: Option<&Bus>) -> Snapshot {
    bus.and_then(Bus::totals).unwrap_or_else(|| state.registry.snapshot())
}

/// What `--metrics-port` serves from.
pub struct ProbesOnly {
    pub state: Arc<Shared>,
    pub bus: Option<Arc<Bus>>,
}

/// The whole of `--metrics-port`: the probes, and 404 elsewhere.
pub fn handle(probes: &ProbesOnly, request: &Request) -> Response {
    match Probe::at(request.uri().path()) {
        Some(probe) => respond(&probes.state, probes.bus.as_deref(), probe),
        None => (StatusCode::NOT_FOUND, "here: /health, /ready and /metrics\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_port_serves_metrics_only_when_asked() {
        let probes = ["/health", "/ready", "/metrics"].map(|path| Probe::at(path).unwrap());
        let served = |on: OnMainPort| probes.iter().filter(|probe| on.serves(probe)).count();
        assert_eq!(served(OnMainPort::Nothing), 0);
        assert_eq!(served(OnMainPort::HealthAndReady), 2);
        assert!(!OnMainPort::HealthAndReady.serves(&Probe::Metrics));
        assert_eq!(served(OnMainPort::All), 3);
    }
}
