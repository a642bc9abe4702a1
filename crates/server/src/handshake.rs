//! The HTTP side of a connection: route the request, answer what is not a WebSocket
//! handshake with the right status, and hand upgraded sockets to `connection::serve`.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::connection;
use crate::state::ServerState;

/// Read buffer per connection. tungstenite's default (128 KiB) would make every idle
/// connection cost that much; 8 KiB reads a typical message in one system call.
const READ_BUFFER: usize = 8 * 1024;
/// Frames accumulate up to this much before tungstenite writes; the connection task flushes
/// once per batch anyway.
const WRITE_BUFFER: usize = 16 * 1024;

pub async fn handle(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let Some(endpoint) = state.routes.lookup(request.uri().path()) else {
        return refuse(StatusCode::NOT_FOUND, "no WebSocket route at this path\n");
    };
    if state.is_shutting_down() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down\n",
        );
    }
    let query = parse_query(request.uri().query());
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return reject_handshake(&rejection),
    };
    let max = state.limits.max_message_size;
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|error| tracing::debug!(%error, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| connection::serve(state, endpoint, socket, query))
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query.map_or_else(Vec::new, |query| {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    })
}

/// What a request to a WebSocket path gets when it is not a valid handshake.
fn reject_handshake(rejection: &WebSocketUpgradeRejection) -> Response {
    use WebSocketUpgradeRejection as R;
    let (status, body, hint) = match rejection {
        R::MethodNotGet(_) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "WebSocket handshakes use GET\n",
            Some((header::ALLOW, "GET")),
        ),
        R::InvalidWebSocketVersionHeader(_) => (
            StatusCode::UPGRADE_REQUIRED,
            "this server speaks WebSocket version 13\n",
            Some((header::SEC_WEBSOCKET_VERSION, "13")),
        ),
        R::WebSocketKeyHeaderMissing(_) => (
            StatusCode::BAD_REQUEST,
            "missing Sec-WebSocket-Key header\n",
            None,
        ),
        _ => (
            StatusCode::UPGRADE_REQUIRED,
            "this path serves WebSocket connections only: connect with a WebSocket client\n",
            Some((header::UPGRADE, "websocket")),
        ),
    };
    let mut response = refuse(status, body);
    if let Some((name, value)) = hint {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An error response that also closes the TCP connection: a refused handshake leaves no
/// socket open behind it.
fn refuse(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded_with_repeats_kept() {
        assert_eq!(
            parse_query(Some(
                "name=gordon&role=commissioner&tag=a&tag=b%20c&sp=x+y&empty="
            )),
            [
                ("name", "gordon"),
                ("role", "commissioner"),
                ("tag", "a"),
                ("tag", "b c"),
                ("sp", "x y"),
                ("empty", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(parse_query(None).is_empty());
        assert!(parse_query(Some("")).is_empty());
    }
}
