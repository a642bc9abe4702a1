//! Connections that negotiate permessage-deflate (RFC 7692) run on yawc; all others on
//! tungstenite (see ARCHITECTURE.md for why both). This module adapts a yawc socket to the
//! same `Message` stream and sink the connection task drives, and sets up the negotiation.
//!
//! The adapter reads yawc's frame-level `Streaming` API (frames already decompressed) and
//! assembles messages itself: yawc's own assembly step drops the connection without a Close
//! frame on a bad fragment sequence or invalid UTF-8, where RFC 6455 wants 1002 and 1007.
//!
//! Compression is negotiated without context takeover in both directions (RFC 7692 lets the
//! server impose that), so no connection keeps deflate state between messages: compressors
//! and decompressors come from one pool shared by the whole server, and an idle compressed
//! connection costs about what an uncompressed one does.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use yawc::close::CloseCode;
use yawc::streaming::Streaming;
use yawc::{DeflatePool, Frame, HttpStream, IncomingUpgrade, OpCode, Options, WebSocketError};

use pyhost::close_code;

use crate::config::WRITE_BUFFER;
use crate::ws::Shared;
use crate::ws::connection::{self, Opened};
use crate::ws::socket::{Socket, SocketError};

/// yawc's read buffer per compressed connection: 8 KiB reads a typical message in one system
/// call (its default, 128 KiB, would make every idle connection cost that much).
const READ_BUFFER: usize = 8 * 1024;

/// Idle compressors (and, separately, decompressors) the pool keeps: about the number of
/// messages compressed at the same moment, which the I/O threads bound.
const POOL_SIZE: usize = 16;

pub fn pool() -> DeflatePool {
    DeflatePool::new(POOL_SIZE)
}

/// Completes the handshake on the compressing layer with the client's `offer` and
/// `subprotocol`, and serves the connection.
pub async fn upgrade(
    state: Arc<Shared>,
    opened: Opened,
    mut parts: Parts,
    offer: HeaderValue,
    subprotocol: Option<String>,
) -> Response {
    // The one offer chosen (`deflate_offer::acceptable`), in place of all the client made.
    parts.headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, offer);
    let upgrade = match IncomingUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(status) => return status.into_response(),
    };
    let max_message_size = state.limits.max_message_size;
    let (response, upgraded) = match upgrade.upgrade(options(max_message_size, state.deflate_pool.clone())) {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::debug!(%error, "permessage-deflate negotiation failed");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    tokio::spawn(async move {
        match upgraded.await {
            Ok(socket) => {
                let socket = DeflateSocket { inner: socket.into_streaming(), partial: None, max_message_size };
                connection::serve(opened, socket).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    let mut response = response.map(Body::new);
    if let Some(chosen) = subprotocol.and_then(|chosen| HeaderValue::try_from(chosen).ok()) {
        response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, chosen);
    }
    response
}

fn options(max_message_size: usize, pool: DeflatePool) -> Options {
    // yawc's limits are exclusive; ours admit a message of exactly the maximum.
    let limit = max_message_size.saturating_add(1);
    Options::default()
        .with_max_payload_read(limit)
        .with_max_read_buffer(limit)
        .with_read_buffer_capacity(READ_BUFFER)
        .with_write_buffer_capacity(WRITE_BUFFER)
        .with_low_latency_compression()
        .server_no_context_takeover()
        .client_no_context_takeover()
        .with_deflate_pool(pool)
}

fn failure(code: u16, close_queued: bool, detail: &dyn std::fmt::Display) -> SocketError {
    SocketError { code, close_queued, detail: detail.to_string() }
}

/// A yawc connection seen as a stream and sink of `Message`s.
pub struct DeflateSocket {
    inner: Streaming<HttpStream>,
    /// A fragmented message being received: its first frame's opcode and the payload so far.
    partial: Option<(OpCode, BytesMut)>,
    max_message_size: usize,
}

impl DeflateSocket {
    /// Adds a frame to the message being assembled; returns the message once it is whole,
    /// or the close code for a frame that breaks the protocol.
    fn assemble(&mut self, frame: Frame) -> Result<Option<Message>, u16> {
        let fin = frame.is_fin();
        let opcode = frame.opcode();
        match opcode {
            OpCode::Ping | OpCode::Pong | OpCode::Close => Ok(Some(control(frame))),
            // A new message may not start inside a fragmented one.
            OpCode::Text | OpCode::Binary if self.partial.is_some() => Err(close_code::PROTOCOL_ERROR),
            OpCode::Text | OpCode::Binary if fin => whole(opcode, frame.into_payload()).map(Some),
            OpCode::Text | OpCode::Binary => {
                self.partial = Some((opcode, BytesMut::from(frame.into_payload())));
                Ok(None)
            }
            OpCode::Continuation => {
                let Some((_, payload)) = &mut self.partial else { return Err(close_code::PROTOCOL_ERROR) };
                if payload.len() + frame.payload().len() > self.max_message_size {
                    return Err(close_code::MESSAGE_TOO_BIG);
                }
                payload.extend_from_slice(frame.payload());
                if !fin {
                    return Ok(None);
                }
                let (opcode, payload) = self.partial.take().expect("checked above");
                whole(opcode, payload.freeze()).map(Some)
            }
        }
    }
}

fn whole(opcode: OpCode, payload: Bytes) -> Result<Message, u16> {
    if opcode == OpCode::Text {
        return Utf8Bytes::try_from(payload).map(Message::Text).map_err(|_| close_code::INVALID_PAYLOAD);
    }
    Ok(Message::Binary(payload))
}

fn control(frame: Frame) -> Message {
    match frame.opcode() {
        OpCode::Ping => Message::Ping(frame.into_payload()),
        OpCode::Pong => Message::Pong(frame.into_payload()),
        _ => {
            let reason = frame.close_reason().ok().flatten().unwrap_or_default();
            let close = frame
                .close_code()
                .map(|code| CloseFrame { code: u16::from(code).into(), reason: Utf8Bytes::from(reason) });
            Message::Close(close)
        }
    }
}

/// Whether an I/O error means the TCP connection is gone (rather than, say, a compressed
/// payload that does not inflate, which yawc also reports as an I/O error).
fn connection_lost(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, NotConnected, UnexpectedEof};
    matches!(error.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | NotConnected | UnexpectedEof)
}

/// The code yawc puts in its Close frame for a read error (as its `Streaming` does).
fn close_code(error: &WebSocketError) -> CloseCode {
    match error {
        WebSocketError::FrameTooLarge => CloseCode::Size,
        WebSocketError::InvalidUTF8 => CloseCode::Invalid,
        WebSocketError::InvalidOpCode(_) => CloseCode::Unsupported,
        WebSocketError::ReservedBitsNotZero
        | WebSocketError::ControlFrameFragmented
        | WebSocketError::PingFrameTooLarge
        | WebSocketError::InvalidFragment
        | WebSocketError::InvalidCloseFrame
        | WebSocketError::InvalidCloseCode
        | WebSocketError::FragmentTimeout
        | WebSocketError::InvalidContinuationFrame
        | WebSocketError::CompressionNotSupported => CloseCode::Protocol,
        _ => CloseCode::Error,
    }
}

impl Stream for DeflateSocket {
    type Item = Result<Message, SocketError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let frame = match ready!(self.inner.poll_next_frame(cx)) {
                Ok(frame) => frame,
                Err(WebSocketError::ConnectionClosed) => return Poll::Ready(None),
                Err(WebSocketError::IoError(error)) if connection_lost(&error) => {
                    return Poll::Ready(Some(Err(failure(close_code::ABNORMAL, false, &error))));
                }
                // Everything else (bad frames, undecodable compressed data) yawc answers with a
                // Close frame it has already queued.
                Err(error) => return Poll::Ready(Some(Err(failure(u16::from(close_code(&error)), true, &error)))),
            };
            match self.assemble(frame) {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => continue,
                Err(code) => return Poll::Ready(Some(Err(failure(code, false, &"invalid message")))),
            }
        }
    }
}

/// A write failure: the connection is gone.
fn lost(error: &WebSocketError) -> SocketError {
    failure(close_code::ABNORMAL, false, error)
}

fn frame(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::text(Bytes::from(text)),
        Message::Binary(bytes) => Frame::binary(bytes),
        Message::Ping(bytes) => Frame::ping(bytes),
        Message::Pong(bytes) => Frame::pong(bytes),
        Message::Close(Some(close)) => Frame::close(CloseCode::from(u16::from(close.code)), close.reason.as_bytes()),
        // The connection task always sends a code; yawc has no public code-less Close.
        Message::Close(None) => Frame::close(CloseCode::Normal, b""),
        // The connection task never queues raw frames; the match only has to be complete.
        Message::Frame(raw) => Frame::binary(raw.into_payload()),
    }
}

impl Socket for DeflateSocket {
    /// yawc writes the frames it owes the client (pongs, answers to Close frames, the Close it
    /// queued after a protocol error) in `poll_ready`, not in `poll_flush`.
    fn poll_flush_owed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        ready!(Pin::new(&mut *self).poll_ready(cx))?;
        Pin::new(self).poll_flush(cx)
    }

    /// yawc does not hand out its stream, so there is nothing to drain: done at once.
    fn poll_linger(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

impl Sink<Message> for DeflateSocket {
    type Error = SocketError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx).map_err(|error| lost(&error))
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.inner).start_send(frame(item)).map_err(|error| lost(&error))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(|error| lost(&error))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx).map_err(|error| lost(&error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_messages_become_the_matching_frames() {
        for (message, opcode, payload) in [
            (Message::Text("héllo".into()), OpCode::Text, "héllo".as_bytes()),
            (Message::Binary(Bytes::from_static(b"\x00\xff")), OpCode::Binary, b"\x00\xff"),
            (Message::Ping(Bytes::from_static(b"p")), OpCode::Ping, b"p"),
            (Message::Pong(Bytes::from_static(b"q")), OpCode::Pong, b"q"),
        ] {
            let frame = frame(message);
            assert_eq!((frame.opcode(), frame.payload().as_ref()), (opcode, payload));
        }
        let close = frame(Message::Close(Some(CloseFrame { code: 4000.into(), reason: "bye".into() })));
        assert_eq!(control(close), Message::Close(Some(CloseFrame { code: 4000.into(), reason: "bye".into() })));
    }

    #[test]
    fn whole_messages_check_utf8() {
        assert_eq!(whole(OpCode::Text, Bytes::from_static("é".as_bytes())), Ok(Message::Text("é".into())));
        assert_eq!(whole(OpCode::Text, Bytes::from_static(b"caf\xc3")), Err(close_code::INVALID_PAYLOAD));
        assert_eq!(
            whole(OpCode::Binary, Bytes::from_static(b"caf\xc3")),
            Ok(Message::Binary(Bytes::from_static(b"caf\xc3")))
        );
    }
}
