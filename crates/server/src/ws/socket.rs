//! A WebSocket as the connection task drives it, whichever layer runs it underneath:
//! `plain::PlainSocket` (tungstenite) or `deflate::DeflateSocket` (yawc).

use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::Message;

/// Messages in, messages out. Pings are answered, and a Close frame from the client is
/// answered, by the layer itself; everything else is the connection task's to decide.
pub trait Socket:
    Stream<Item = Result<Message, SocketError>> + Sink<Message, Error = SocketError> + Unpin + Send
{
    /// Writes what the layer owes the client on its own (answers to pings, to a Close frame,
    /// the Close frame it queued after a protocol error) along with what was sent, then
    /// flushes.
    fn poll_flush_owed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>>;

    /// Once nothing more will be said (the closing handshake is over, or the connection has
    /// failed and its Close frame is out): shut the write side and read and drop what the
    /// client still sends until it closes, so the client's unread bytes do not turn our
    /// Close frame into a TCP reset. Ready when the client has closed (or where the layer
    /// cannot reach its stream).
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A failed read or write, as the connection task needs to know it.
#[derive(Debug)]
pub struct SocketError {
    /// The close code that matches (RFC 6455 section 7.4.1); 1006 when the connection itself
    /// is gone and no Close frame can be sent.
    pub code: u16,
    /// The WebSocket layer has already queued its Close frame with `code`.
    pub close_queued: bool,
    pub detail: String,
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (close code {})", self.detail, self.code)
    }
}
