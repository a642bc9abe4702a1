//! Accepting TCP connections and serving HTTP/1.1 on them until shutdown begins.

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use socket2::{Domain, Protocol, Socket, Type};
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

/// A listening socket that the other workers of `--processes` bind too (SO_REUSEPORT): the
/// kernel spreads new connections over them.
pub async fn bind_shared(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let socket = shared_socket(host, port).await?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A port for the workers of `--processes` to share, when asked for any free one (port 0):
/// bound but not listening, so the kernel gives it no connections; held until they listen.
pub async fn reserve_shared(host: &str) -> std::io::Result<(Socket, u16)> {
    let socket = shared_socket(host, 0).await?;
    let port = socket
        .local_addr()?
        .as_socket()
        .map(|address| address.port())
        .ok_or_else(|| std::io::Error::other("the reserved socket has no port"))?;
    Ok((socket, port))
}

/// Connections waiting to be accepted, per listening socket (as tokio's `bind` has it).
const LISTEN_BACKLOG: i32 = 1024;

async fn shared_socket(host: &str, port: u16) -> std::io::Result<Socket> {
    let address = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "the host has no address"))?;
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}
