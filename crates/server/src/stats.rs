//! Live counts, as JSON, at `--stats-path`: what an operator (or a leak test) needs to see
//! that connections come and go.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::state::ServerState;

pub fn respond(state: &ServerState) -> Response {
    let endpoints: Map<String, Value> =
        state.routes.paths().map(|(path, endpoint)| (path.to_owned(), state.registry.count(endpoint).into())).collect();
    Json(json!({
        "connections": state.registry.live(),
        "endpoints": endpoints,
        "interpreter_connections": pyhost::live_connections(),
        "rss_kib": rss_kib(),
    }))
    .into_response()
}

/// Resident memory of this process, from /proc (None where there is no such file).
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(pages * page_size / 1024)
}
