//! Listening sockets the worker processes of `--processes` share (SO_REUSEPORT): the
//! kernel spreads new connections over them.

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

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
