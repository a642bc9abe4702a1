//! Live counts, as JSON, at `--stats-path`: what an operator (or a leak test) needs to see
//! that connections come and go. `?wait=SECONDS&connections=N&interpreter_connections=M`
//! (or `handshakes=K`, sockets still in their HTTP handshake)
//! answers once every named count has its value (or after SECONDS, with the counts then),
//! so a test waits for an event instead of polling.

use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::ws::Shared;

/// The longest a request may wait for its counts.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Reads one live count.
type Count = fn(&Shared) -> usize;

/// The counts a request can wait for, by name.
const COUNTS: [(&str, Count); 3] = [
    ("connections", |state| state.registry.live()),
    ("interpreter_connections", |_| pyhost::live_connections()),
    ("handshakes", |state| state.admission.handshakes()),
];

pub async fn respond(state: &Shared, query: Option<&str>) -> Response {
    let mut wait = None;
    let mut expected = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "wait" {
            wait = value.parse::<f64>().ok().and_then(|seconds| Duration::try_from_secs_f64(seconds).ok());
            continue;
        }
        let (Some((_, read)), Ok(value)) = (COUNTS.iter().find(|(name, _)| *name == key), value.parse::<usize>())
        else {
            let message =
                format!("unknown count {key}={value}: wait for connections, interpreter_connections or handshakes\n");
            return (axum::http::StatusCode::BAD_REQUEST, message).into_response();
        };
        expected.push((*read, value));
    }
    if let Some(wait) = wait {
        let reached = async {
            loop {
                let registry = state.registry.changed().notified();
                let interpreter = pyhost::live_connections_changed().notified();
                let admission = state.admission.changed().notified();
                if expected.iter().all(|(read, value)| read(state) == *value) {
                    return;
                }
                tokio::select! {
                    () = registry => {}
                    () = interpreter => {}
                    () = admission => {}
                }
            }
        };
        let _ = tokio::time::timeout(wait.min(LONGEST_WAIT), reached).await;
    }
    let endpoints: Map<String, Value> = state
        .registry
        .patterns()
        .map(|(path, endpoint)| (path.to_owned(), state.registry.count(endpoint).into()))
        .collect();
    Json(json!({
        "connections": state.registry.live(),
        "endpoints": endpoints,
        "handshakes": state.admission.handshakes(),
        "interpreter_connections": pyhost::live_connections(),
        "rss_kib": rss_kib(),
    }))
    .into_response()
}

/// Resident memory of this process, from /proc (None where there is no such file).
#[allow(unsafe_code, reason = "sysconf(3) has no safe wrapper in std")]
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(pages * page_size / 1024)
}
