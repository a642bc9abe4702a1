//! What a client's opening handshake tells the app: its path, query, headers, its address
//! (see `proxies`), and the subprotocol chosen from its offers.

use std::net::SocketAddr;

use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use pyhost::bridge::Request;

use crate::proxies::{self, Proxies};
use crate::tls::Encrypted;

/// The request as the app sees it.
pub fn read(
    parts: &Parts,
    remote: SocketAddr,
    proxies: Option<&Proxies>,
    path_params: Vec<(String, String)>,
) -> Request {
    // Kept for the connection's life, so allocated once at its exact size (a string grown and
    // then shrunk leaves a hole behind in the heap per connection).
    let size: usize = parts.headers.iter().map(|(name, value)| name.as_str().len() + 3 + value.len()).sum();
    let mut headers = String::with_capacity(size);
    for (name, value) in &parts.headers {
        if !headers.is_empty() {
            headers.push('\n');
        }
        headers.push_str(name.as_str());
        headers.push_str(": ");
        headers.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
    // Only a value that was not UTF-8 (replaced, so longer) makes it grow.
    headers.shrink_to_fit();
    let (client, forwarded_secure) = proxies::client(&parts.headers, remote, proxies);
    let secure = forwarded_secure || parts.extensions.get::<Encrypted>().is_some();
    Request {
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        path_params,
        headers,
        client,
        scheme: if secure { "wss" } else { "ws" },
        subprotocol: None,
    }
}

/// The first of the client's subprotocol offers (in its order) that the route speaks.
pub fn subprotocol(headers: &HeaderMap, spoken: &[String]) -> Option<String> {
    if spoken.is_empty() {
        return None;
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find(|offer| spoken.iter().any(|spoken| spoken == offer))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_first_client_offer_the_route_speaks_is_chosen() {
        let spoken = vec!["graphql-transport-ws".to_owned(), "graphql-ws".to_owned()];
        let offers = headers(&[
            ("sec-websocket-protocol", "chat, graphql-ws"),
            ("sec-websocket-protocol", "graphql-transport-ws"),
        ]);
        assert_eq!(subprotocol(&offers, &spoken).as_deref(), Some("graphql-ws"));
        assert_eq!(subprotocol(&headers(&[("sec-websocket-protocol", "chat")]), &spoken), None);
        assert_eq!(subprotocol(&offers, &[]), None, "a route that lists none answers none");
    }
}
