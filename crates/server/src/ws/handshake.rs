//! A request for a WebSocket route: answer what is not a valid opening handshake with the
//! right status, let the app's `on_connect` decide, and hand upgraded sockets to
//! `connection::serve` through one of the two WebSocket layers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pyhost::bridge::{Decision, Refusal};

use pyhost::EndpointSpec;

use super::connection::Opened;
use super::{Shared, deflate, deflate_offer, plain, request};
use crate::admission::Admitted;
use crate::proxies::Proxies;

/// The WebSocket route a request asked for.
pub struct Route<'a> {
    pub endpoint: usize,
    pub spec: &'a EndpointSpec,
    /// Its path parameters, percent-decoded, in pattern order.
    pub params: Vec<(String, String)>,
}

/// The answer to a request for a WebSocket route, counted in the metrics.
pub async fn answer(
    state: &Arc<Shared>,
    proxies: Option<&Proxies>,
    route: Route<'_>,
    request: Request,
    remote: SocketAddr,
    admitted: Option<Arc<Admitted>>,
) -> Response {
    let response = upgrade(state, proxies, route, request, remote, admitted).await;
    state.registry.metrics.handshake(response.status().as_u16());
    response
}

/// The answer to a handshake for a path without a WebSocket route (or any other route).
pub fn no_route(state: &Shared) -> Response {
    state.registry.metrics.handshake(StatusCode::NOT_FOUND.as_u16());
    refuse(StatusCode::NOT_FOUND, "no WebSocket route at this path\n")
}

async fn upgrade(
    state: &Arc<Shared>,
    proxies: Option<&Proxies>,
    route: Route<'_>,
    request: Request,
    remote: SocketAddr,
    admitted: Option<Arc<Admitted>>,
) -> Response {
    if state.is_shutting_down() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down\n");
    }
    let (parts, _body) = request.into_parts();
    if let Some(refusal) = refusal(&parts, &state.limits.allowed_origins) {
        return refusal;
    }
    // The place the socket took when it was accepted; none when it was let in over the limit.
    let Some(place) = admitted.and_then(|admitted| admitted.take_place()) else {
        tracing::warn!(
            "refused a connection: --max-connections ({}) are open or in their handshake",
            state.limits.max_connections
        );
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many connections: try again later\n");
    };
    let Route { endpoint, spec, params } = route;
    let mut request = request::read(&parts, remote, proxies, params);
    request.subprotocol = request::subprotocol(&parts.headers, &spec.subprotocols);
    let subprotocol = request.subprotocol.clone();
    let mut opened = Opened::open(state.clone(), endpoint, request, spec.decides, place);
    if let Some(decision) = opened.decision() {
        match tokio::time::timeout(state.limits.http.handshake_timeout, decision).await {
            Ok(Ok(Decision::Accept)) => {}
            Ok(Ok(Decision::Refuse(refusal))) => return refused(&parts, refusal),
            Ok(Err(_)) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down\n"),
            Err(_) => {
                tracing::warn!(
                    "on_connect of {} did not answer within --handshake-timeout ({:?}): refused the connection with 503",
                    parts.uri.path(),
                    state.limits.http.handshake_timeout
                );
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "the app did not accept the connection in time\n");
            }
        }
    }
    if state.limits.deflate
        && let Some(offer) = deflate_offer::acceptable(&parts.headers)
    {
        return deflate::upgrade(state.clone(), opened, parts, offer, subprotocol).await;
    }
    plain::upgrade(state, opened, parts, subprotocol)
}

/// The HTTP response the app answered a handshake with (`on_connect` returned a `Response`).
fn refused(parts: &Parts, refusal: Refusal) -> Response {
    let Refusal { status, headers, body } = refusal;
    tracing::info!("refused a connection to {} with HTTP {status} (on_connect returned a Response)", parts.uri.path());
    let mut response = (StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), body).into_response();
    for (name, value) in headers {
        match (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            (Ok(name), Ok(value)) => {
                response.headers_mut().append(name, value);
            }
            _ => tracing::warn!(
                "on_connect's Response has a header that HTTP cannot carry, left out: {name:?}: {value:?}"
            ),
        }
    }
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The answer to a request that is not an opening handshake (RFC 6455 section 4.2.1), if it
/// is not one. Checked here once for both WebSocket layers, so every refusal looks the same.
fn refusal(parts: &Parts, allowed_origins: &[String]) -> Option<Response> {
    let has = |name: header::HeaderName, token: &str| {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.split(',').any(|item| item.trim().eq_ignore_ascii_case(token)))
    };
    if parts.method != Method::GET {
        return Some(refuse_with(
            StatusCode::METHOD_NOT_ALLOWED,
            "WebSocket handshakes use GET\n",
            header::ALLOW,
            "GET",
        ));
    }
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Some(refuse_with(
            StatusCode::UPGRADE_REQUIRED,
            "this path serves WebSocket connections only: connect with a WebSocket client\n",
            header::UPGRADE,
            "websocket",
        ));
    }
    let mut versions = parts.headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(version), None) if version.as_bytes() == b"13" => {}
        (Some(_), Some(_)) => {
            return Some(refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version is given more than once\n"));
        }
        _ => {
            return Some(refuse_with(
                StatusCode::UPGRADE_REQUIRED,
                "this server speaks WebSocket version 13\n",
                header::SEC_WEBSOCKET_VERSION,
                "13",
            ));
        }
    }
    if !parts.headers.contains_key(header::HOST) {
        return Some(refuse(StatusCode::BAD_REQUEST, "missing Host header\n"));
    }
    let mut keys = parts.headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) if is_key(key) => {}
        (None, _) => return Some(refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key header\n")),
        (Some(_), Some(_)) => {
            return Some(refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is given more than once\n"));
        }
        (Some(_), None) => {
            return Some(refuse(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key must be 16 random bytes in base64 (RFC 6455 section 4.1)\n",
            ));
        }
    }
    if !origin_allowed(parts.headers.get(header::ORIGIN), allowed_origins) {
        return Some(refuse(StatusCode::FORBIDDEN, "this Origin may not open WebSocket connections here\n"));
    }
    None
}

/// A handshake key is 16 bytes, base64-encoded (RFC 6455 section 4.1): 24 characters.
fn is_key(key: &HeaderValue) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(key.as_bytes()).is_ok_and(|bytes| bytes.len() == 16)
}

/// With allowed origins configured, a browser's Origin must be one of them. A request without
/// Origin comes from a non-browser client, which could send any Origin it likes anyway.
fn origin_allowed(origin: Option<&HeaderValue>, allowed: &[String]) -> bool {
    match origin {
        _ if allowed.is_empty() => true,
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|origin| allowed.iter().any(|ok| ok.eq_ignore_ascii_case(origin))),
    }
}

/// An error response that also closes the TCP connection: a refused handshake leaves no
/// socket open behind it.
fn refuse(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `refuse`, with the one header that tells the client what would be accepted.
fn refuse_with(status: StatusCode, body: &'static str, name: header::HeaderName, value: &'static str) -> Response {
    let mut response = refuse(status, body);
    response.headers_mut().insert(name, HeaderValue::from_static(value));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_only_when_configured_and_only_when_sent() {
        let allowed = ["https://example.com".to_owned()];
        let origin = |value: &'static str| HeaderValue::from_static(value);
        assert!(origin_allowed(Some(&origin("https://evil.test")), &[]));
        assert!(origin_allowed(Some(&origin("https://example.com")), &allowed));
        assert!(origin_allowed(Some(&origin("HTTPS://EXAMPLE.COM")), &allowed));
        assert!(!origin_allowed(Some(&origin("https://evil.test")), &allowed));
        assert!(!origin_allowed(Some(&origin("https://example.com.evil.test")), &allowed));
        assert!(origin_allowed(None, &allowed));
    }

    #[test]
    fn keys_are_16_bytes_of_base64() {
        assert!(is_key(&HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==")));
        for bad in
            ["abc", "", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25jZQ==x", "aGVsbG8="]
        {
            assert!(!is_key(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
