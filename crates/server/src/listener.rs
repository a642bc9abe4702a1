//! Accepting TCP connections and serving HTTP/1.1 on them until shutdown begins.

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Accepts until `stop` is cancelled; then the listening socket is closed, so new clients
/// are refused while the open connections finish. A client gets `handshake_timeout` to send
/// its whole HTTP request; one that sends nothing, or half a request, is disconnected.
pub async fn accept_until(listener: TcpListener, router: Router, handshake_timeout: Duration, stop: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Small frames must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        // The handshake reads the client's address from the request (`ConnectInfo`).
        let service = TowerToHyperService::new(router.clone().layer(Extension(ConnectInfo(peer))));
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handshake_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
}
