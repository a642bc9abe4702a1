//! Graceful shutdown: on SIGINT or SIGTERM (or, under `--reload`, when a worker with new code
//! has taken over), stop accepting, let every handler see `WebSocketDisconnect` (1001, or 1012
//! for a restart) and finish, then stop the interpreter side.

use std::time::Duration;

use pyhost::bridge::Event;
use pyhost::close_code::Departure;

use crate::config::CLOSE_TIMEOUT;
use crate::ws::Shared;

/// Closes every connection with the departure's code (1001, 1012), ends every streamed
/// response (after what its app queued) and HTTP connection (after its current request), and
/// waits for them, at most `grace` (then the rest
/// are closed without waiting for their handlers), then tells the interpreter side to stop.
pub async fn close_all(state: &Shared, grace: Duration, departure: Departure) {
    state.begin_shutdown();
    state.bridge.push(Event::ShuttingDown(departure));
    state.streams.end_all();
    state.http_connections.end_all();
    let all = async {
        tokio::join!(state.registry.until_empty(), state.streams.until_none(), state.http_connections.until_none())
    };
    if tokio::time::timeout(grace, all).await.is_err() {
        if state.http_connections.count() > 0 {
            tracing::warn!(
                "{} HTTP connection(s) still in a request after {grace:?}: they are cut off",
                state.http_connections.count()
            );
        }
        if state.streams.count() > 0 {
            tracing::warn!(
                "{} streamed response(s) still sending after {grace:?}: their clients read too slowly; they are cut off",
                state.streams.count()
            );
        }
        let stuck = state.registry.all();
        tracing::warn!("{} connection(s) still open after {grace:?}: closing them now", stuck.len());
        for link in stuck {
            link.force_close(departure.code(), departure.reason());
        }
        // Each gets the usual few seconds to answer our Close frame (and its task a moment to
        // notice the timeout).
        let _ = tokio::time::timeout(CLOSE_TIMEOUT + Duration::from_secs(1), state.registry.until_empty()).await;
    }
    state.bridge.push(Event::Stop);
}
