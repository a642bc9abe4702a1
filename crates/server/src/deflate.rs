//! Connections that negotiate permessage-deflate (RFC 7692) run on yawc; all others on
//! tungstenite (see ARCHITECTURE.md for why both). This module adapts a yawc socket to the
//! same `Message` stream and sink the connection task drives, and sets up the negotiation.
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
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, Stream};
use yawc::close::CloseCode;
use yawc::{DeflatePool, Frame, HttpStream, IncomingUpgrade, OpCode, Options, WebSocket, WebSocketError};

use crate::connection;
use crate::handshake::{READ_BUFFER, WRITE_BUFFER};
use crate::state::{ServerState, Slot};

/// Idle compressors (and, separately, decompressors) the pool keeps: about the number of
/// messages compressed at the same moment, which the I/O threads bound.
const POOL_SIZE: usize = 16;

pub fn pool() -> DeflatePool {
    DeflatePool::new(POOL_SIZE)
}

/// Whether the client offers permessage-deflate.
pub fn offered(headers: &HeaderMap) -> bool {
    offers(headers).next().is_some()
}

fn offers(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|offer| offer.split(';').next().is_some_and(|name| name.trim() == "permessage-deflate"))
}

/// Completes the handshake on the compressing layer and serves the connection.
pub async fn upgrade(
    state: Arc<ServerState>,
    endpoint: usize,
    mut parts: Parts,
    query: Vec<(String, String)>,
    slot: Slot,
) -> Response {
    // A client may offer several parameter sets in order of preference; take its first.
    let first = offers(&parts.headers).next().and_then(|offer| HeaderValue::from_str(offer).ok());
    if let Some(first) = first {
        parts.headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, first);
    }
    let upgrade = match IncomingUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(status) => return status.into_response(),
    };
    let options = options(state.limits.max_message_size, state.deflate_pool.clone());
    let (response, upgraded) = match upgrade.upgrade(options) {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::debug!(%error, "permessage-deflate negotiation failed");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    tokio::spawn(async move {
        match upgraded.await {
            Ok(socket) => connection::serve(state, endpoint, DeflateSocket { inner: socket }, query, slot).await,
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    response.map(Body::new)
}

fn options(max_message_size: usize, pool: DeflatePool) -> Options {
    // yawc's limits are exclusive; ours admit a message of exactly the maximum.
    let limit = max_message_size.saturating_add(1);
    Options::default()
        .with_utf8()
        .with_max_payload_read(limit)
        .with_max_read_buffer(limit)
        .with_read_buffer_capacity(READ_BUFFER)
        .with_write_buffer_capacity(WRITE_BUFFER)
        .with_low_latency_compression()
        .server_no_context_takeover()
        .client_no_context_takeover()
        .with_deflate_pool(pool)
}

/// A read error on which yawc has already queued the Close frame with `code`; the
/// connection task only has to flush it.
#[derive(Debug)]
pub struct ClosedByLayer {
    pub code: u16,
}

impl std::fmt::Display for ClosedByLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol error, closed with {}", self.code)
    }
}

impl std::error::Error for ClosedByLayer {}

/// A yawc connection seen as a stream and sink of `Message`s.
pub struct DeflateSocket {
    inner: WebSocket<HttpStream>,
}

impl Stream for DeflateSocket {
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match ready!(self.inner.poll_next_frame(cx)) {
            Ok(frame) => Poll::Ready(Some(message(frame))),
            Err(WebSocketError::ConnectionClosed) => Poll::Ready(None),
            Err(WebSocketError::IoError(error)) => Poll::Ready(Some(Err(axum::Error::new(error)))),
            Err(error) => {
                let code = u16::from(close_code(&error));
                Poll::Ready(Some(Err(axum::Error::new(ClosedByLayer { code }))))
            }
        }
    }
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

fn message(frame: Frame) -> Result<Message, axum::Error> {
    Ok(match frame.opcode() {
        // yawc validated the text (`with_utf8`); this check only re-reads it.
        OpCode::Text => Message::Text(Utf8Bytes::try_from(frame.into_payload()).map_err(axum::Error::new)?),
        OpCode::Binary | OpCode::Continuation => Message::Binary(frame.into_payload()),
        OpCode::Ping => Message::Ping(frame.into_payload()),
        OpCode::Pong => Message::Pong(frame.into_payload()),
        OpCode::Close => {
            let reason = frame.close_reason().ok().flatten().unwrap_or_default();
            let close =
                frame.close_code().map(|code| CloseFrame { code: code.into(), reason: Utf8Bytes::from(reason) });
            Message::Close(close)
        }
    })
}

fn frame(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::text(bytes::Bytes::from(text)),
        Message::Binary(bytes) => Frame::binary(bytes),
        Message::Ping(bytes) => Frame::ping(bytes),
        Message::Pong(bytes) => Frame::pong(bytes),
        Message::Close(Some(close)) => Frame::close(CloseCode::from(close.code), close.reason.as_bytes()),
        // The connection task always sends a code; yawc has no public code-less Close.
        Message::Close(None) => Frame::close(CloseCode::Normal, b""),
    }
}

impl Sink<Message> for DeflateSocket {
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx).map_err(axum::Error::new)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.inner).start_send(frame(item)).map_err(axum::Error::new)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(axum::Error::new)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx).map_err(axum::Error::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn finds_deflate_offers_among_other_extensions_and_header_lines() {
        let headers = headers(&[
            "x-webkit-deflate-frame",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9, permessage-deflate",
        ]);
        assert!(offered(&headers));
        assert_eq!(
            offers(&headers).collect::<Vec<_>>(),
            ["permessage-deflate; server_no_context_takeover; server_max_window_bits=9", "permessage-deflate"]
        );
        assert!(!offered(&headers_of("x-webkit-deflate-frame, permessage-snappy")));
        assert!(!offered(&HeaderMap::new()));
    }

    fn headers_of(value: &str) -> HeaderMap {
        headers(&[value])
    }

    #[test]
    fn messages_and_frames_convert_both_ways() {
        for original in [
            Message::Text("héllo".into()),
            Message::Binary(bytes::Bytes::from_static(b"\x00\xff")),
            Message::Ping(bytes::Bytes::from_static(b"p")),
            Message::Pong(bytes::Bytes::from_static(b"q")),
            Message::Close(Some(CloseFrame { code: 4000, reason: "bye".into() })),
        ] {
            let back = message(frame(original.clone())).unwrap();
            assert_eq!(back, original);
        }
    }
}
