//! Connections without compression run on tokio-tungstenite. The upgrade is done here rather
//! than by axum's extractor because the connection task needs the raw stream at the end: after
//! failing a connection, or once the client's stream ended, it keeps reading and discarding
//! until the client closes (see
//! `Socket::poll_linger`), so the client's unread bytes do not turn our Close frame into a
//! TCP reset.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Response, StatusCode, header};
use futures_util::{Sink, Stream};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};

use pyhost::close_code;

use crate::config::WRITE_BUFFER;
use crate::ws::Shared;
use crate::ws::client_stream::{ClientStream, Transport};
use crate::ws::connection::{self, Opened};
use crate::ws::socket::{Socket, SocketError};

/// tungstenite's read buffer, which every connection keeps for its whole life: small, since
/// each read of `ClientStream` also fills a per-thread scratch buffer beside it.
const READ_BUFFER: usize = 128;

/// Answers the handshake (already checked by `handshake::refusal`) with `subprotocol`, and
/// serves the connection once hyper hands over the upgraded stream.
pub fn upgrade(state: &Shared, opened: Opened, mut parts: Parts, subprotocol: Option<String>) -> Response<Body> {
    let (Some(key), Some(on_upgrade)) =
        (parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned(), parts.extensions.remove::<OnUpgrade>())
    else {
        return Response::builder().status(StatusCode::UPGRADE_REQUIRED).body(Body::empty()).unwrap_or_default();
    };
    let max = state.limits.max_message_size;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let Some(client) = client_stream(upgraded) else {
                    tracing::error!("BUG: the upgraded connection is not a stream the listener accepted");
                    return;
                };
                let stream = WebSocketStream::from_raw_socket(client, Role::Server, Some(config)).await;
                connection::serve(opened, PlainSocket(stream)).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(chosen) = subprotocol.and_then(|chosen| HeaderValue::try_from(chosen).ok()) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, chosen);
    }
    response
}

/// The stream the listener accepted (TCP, or TLS over it), back from hyper's type-erased
/// `Upgraded`, with what hyper had read past the handshake request. `read_buf` shares hyper's
/// whole request buffer: what it holds is copied and the buffer let go before the connection
/// settles in.
fn client_stream(upgraded: Upgraded) -> Option<ClientStream> {
    let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => return Some(ClientStream::new(Transport::Tcp(parts.io.into_inner()), &parts.read_buf)),
        Err(upgraded) => upgraded,
    };
    let parts = upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>().ok()?;
    Some(ClientStream::new(Transport::Tls(Box::new(parts.io.into_inner())), &parts.read_buf))
}

pub struct PlainSocket(WebSocketStream<ClientStream>);

impl Stream for PlainSocket {
    type Item = Result<Message, SocketError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx).map(|item| item.map(|result| result.map_err(SocketError::from)))
    }
}

impl Sink<Message> for PlainSocket {
    type Error = SocketError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_ready(cx).map_err(SocketError::from)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.0).start_send(item).map_err(SocketError::from)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(SocketError::from)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_close(cx).map_err(SocketError::from)
    }
}

impl Socket for PlainSocket {
    /// tungstenite writes its answers to pings and Close frames with everything else.
    fn poll_flush_owed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        Pin::new(self).poll_flush(cx)
    }

    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let io = self.0.get_mut();
        // Our FIN tells the client we are done; its unread bytes are read and dropped until
        // it closes too.
        let _ = Pin::new(&mut *io).poll_shutdown(cx);
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl From<Error> for SocketError {
    fn from(error: Error) -> Self {
        use tokio_tungstenite::tungstenite::error::ProtocolError;
        let code = match &error {
            Error::Utf8(_) => close_code::INVALID_PAYLOAD,
            Error::Capacity(_) => close_code::MESSAGE_TOO_BIG,
            Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => close_code::ABNORMAL,
            Error::Protocol(_) => close_code::PROTOCOL_ERROR,
            _ => close_code::ABNORMAL,
        };
        SocketError { code, close_queued: false, detail: error.to_string() }
    }
}
