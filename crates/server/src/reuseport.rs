//! Listening sockets the worker processes of `--processes` share (SO_REUSEPORT): the
//! kernel spreads new connections over them. Under `--reload` the supervisor listens itself
//! and its workers inherit that one socket instead (see [`listen_inherited`]).

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

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

/// The first address `host` resolves to.
async fn first_address(host: &str, port: u16) -> std::io::Result<std::net::SocketAddr> {
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "the host has no address"))
}

async fn shared_socket(host: &str, port: u16) -> std::io::Result<Socket> {
    let address = first_address(host, port).await?;
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}

/// A listening socket for the supervisor of `--reload` to hand to every generation of its
/// workers (they inherit it: no close-on-exec). With SO_REUSEPORT each worker would have a
/// queue of its own, and the connections waiting in an old worker's queue when it closes it
/// are reset; one socket has one queue, which outlives every worker, so no connection is
/// lost while new code takes over: the old worker stops accepting, the new one goes on.
pub async fn listen_inherited(host: &str, port: u16) -> std::io::Result<Socket> {
    let address = first_address(host, port).await?;
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_cloexec(false)?;
    Ok(socket)
}

/// The number a worker is told its inherited listening socket has.
pub fn inherited_number(socket: &Socket) -> RawFd {
    socket.as_raw_fd()
}

/// Takes the listening socket the supervisor handed down as descriptor `fd` (`--listen-fd`).
#[allow(unsafe_code, reason = "a descriptor inherited from the parent can only be adopted by its number")]
pub fn adopt_inherited(fd: RawFd) -> std::io::Result<TcpListener> {
    if fd < 0 {
        return Err(std::io::Error::other(format!("descriptor {fd} is not a listening TCP socket")));
    }
    // SAFETY: the supervisor passes, by this hidden flag, the number of a listening socket it
    // created for its workers to inherit; nothing else in this process knows the number, so
    // it gets exactly one owner.
    let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if !socket.is_listener().unwrap_or(false) || socket.r#type().ok() != Some(Type::STREAM) {
        // Someone else's descriptor (the flag given by hand): left open, not ours to close.
        let _ = socket.into_raw_fd();
        return Err(std::io::Error::other(format!("descriptor {fd} is not a listening TCP socket")));
    }
    // Not to be inherited further (by whatever the app starts).
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_inherited_listener_is_adopted_and_anything_else_refused() {
        let socket = listen_inherited("127.0.0.1", 0).await.unwrap();
        let address = socket.local_addr().unwrap().as_socket().unwrap();
        let fd = inherited_number(&socket);
        std::mem::forget(socket);
        let listener = adopt_inherited(fd).unwrap();
        assert_eq!(listener.local_addr().unwrap(), address);
        let client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (_accepted, from) = listener.accept().await.unwrap();
        assert_eq!(from, client.local_addr().unwrap());

        let datagrams = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(adopt_inherited(datagrams.as_raw_fd()).is_err());
        assert!(datagrams.local_addr().is_ok(), "a descriptor that is not ours stays open");
        assert!(adopt_inherited(-1).is_err());
    }
}
