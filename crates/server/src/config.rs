//! What the server is told at start-up (limits, keep-alive), and the fixed sizes and times
//! every part shares. A leaf: it imports nothing from the rest of the crate.

use std::time::Duration;

/// Limits from the command line, read by every connection.
pub struct Limits {
    /// Largest message (and frame) accepted from a client, in bytes.
    pub max_message_size: usize,
    /// Frames a connection's outbound queue holds before sends wait.
    pub send_queue: usize,
    /// Bytes a connection's outbound queue holds before sends wait (one message may go in
    /// while it is under); a connection this far behind is not read from either.
    pub send_queue_bytes: usize,
    /// Bytes of received messages a connection holds before the server stops reading it.
    pub receive_buffer: usize,
    /// Negotiate permessage-deflate with clients that offer it.
    pub deflate: bool,
    /// WebSocket connections open at once, handshakes in progress included.
    pub max_connections: usize,
    pub keepalive: Option<Keepalive>,
    /// Origins a handshake may come from; empty means any.
    pub allowed_origins: Vec<String>,
    pub http: HttpLimits,
}

/// What a client may make the HTTP side hold before its request is answered.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// How long a client has to send a request head (the first, or the next on a keep-alive
    /// connection), and the app's `on_connect` to answer a handshake.
    pub handshake_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_size: usize,
    /// Most header lines in a request.
    pub max_headers: usize,
    /// Largest request body an HTTP route takes, in bytes (413 beyond).
    pub max_body_size: usize,
    /// How long the app has to answer an HTTP request (None: as long as it takes).
    pub request_timeout: Option<Duration>,
    /// Silence after which a server-sent events stream gets a comment (None: never).
    pub sse_keepalive: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    /// Silence after which the client is pinged.
    pub interval: Duration,
    /// Time a pinged client has to answer.
    pub timeout: Duration,
}

/// Frames accumulate up to this much before a WebSocket layer writes; the connection task
/// flushes once per batch anyway.
pub const WRITE_BUFFER: usize = 16 * 1024;

/// How long a client gets, from the moment the server decides to close, to read what is still
/// queued for it and to answer the Close frame, before the socket is dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
