//! What a client's opening handshake tells the app: its path, query, headers, its address
//! (through trusted proxies, as uvicorn reads them), and the subprotocol chosen from its
//! offers.

use std::net::{IpAddr, SocketAddr};

use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use pyhost::bridge::Request;

use crate::config::Proxies;

/// The request as the app sees it.
pub fn read(parts: &Parts, peer: SocketAddr, proxies: Option<&Proxies>, path_params: Vec<(String, String)>) -> Request {
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
    let (client, scheme) = match proxies {
        Some(proxies) if proxies.trusts(peer.ip()) => proxies.forwarded(&parts.headers, peer),
        _ => (peer, "ws"),
    };
    Request {
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        path_params,
        headers,
        client,
        scheme,
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

impl Proxies {
    /// The client's address and the scheme, as a trusted proxy reports them: `Forwarded`
    /// (RFC 7239) when present, else `X-Forwarded-For` and `X-Forwarded-Proto`. Proxies append
    /// to the list, so it is read from the right: the first address that is not itself a
    /// trusted proxy is the client (all trusted: the leftmost). A forwarded address has no port
    /// (0), as in uvicorn.
    fn forwarded(&self, headers: &HeaderMap, peer: SocketAddr) -> (SocketAddr, &'static str) {
        let text = |name: &str| {
            headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect::<Vec<_>>().join(",")
        };
        let (hops, protos): (Vec<Option<IpAddr>>, Vec<Option<String>>) = if headers.contains_key(header::FORWARDED) {
            forwarded_elements(&text("forwarded")).into_iter().unzip()
        } else {
            let hops = text("x-forwarded-for").split(',').map(|hop| parse_ip(hop.trim())).collect();
            (hops, vec![Some(text("x-forwarded-proto")).filter(|proto| !proto.is_empty())])
        };
        let chosen = hops.iter().rposition(|hop| hop.is_none_or(|ip| !self.trusts(ip))).unwrap_or(0);
        let client = hops.get(chosen).copied().flatten().map_or(peer, |ip| SocketAddr::new(ip, 0));
        let proto = protos.get(chosen.min(protos.len().saturating_sub(1))).cloned().flatten();
        let scheme = match proto.as_deref().map(str::trim).map(str::to_ascii_lowercase).as_deref() {
            Some("https" | "wss") => "wss",
            _ => "ws",
        };
        (client, scheme)
    }
}

/// `for=` and `proto=` of each element of a `Forwarded` header.
fn forwarded_elements(value: &str) -> Vec<(Option<IpAddr>, Option<String>)> {
    value
        .split(',')
        .map(|element| {
            let mut hop = None;
            let mut proto = None;
            for pair in element.split(';') {
                let Some((key, value)) = pair.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop = parse_ip(value),
                    "proto" => proto = Some(value.to_owned()),
                    _ => {}
                }
            }
            (hop, proto)
        })
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:4711`, `::1`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    text.parse::<SocketAddr>().ok().map(|address| address.ip())
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

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
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

    #[test]
    fn x_forwarded_for_is_read_from_the_right_skipping_trusted_proxies() {
        let proxies = Proxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.7, 10.1.2.3"), ("x-forwarded-proto", "https")]);
        assert_eq!(proxies.forwarded(&forwarded, peer()), ("203.0.113.7:0".parse().unwrap(), "wss"));
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
        assert_eq!(proxies.forwarded(&all_trusted, peer()), ("10.0.0.1:0".parse().unwrap(), "ws"));
        assert_eq!(proxies.forwarded(&HeaderMap::new(), peer()).0, peer(), "no header: the peer");
    }

    #[test]
    fn forwarded_is_read_like_x_forwarded_for() {
        let proxies = Proxies::parse("127.0.0.1").unwrap();
        let forwarded = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https, for=127.0.0.1;proto=http")]);
        assert_eq!(proxies.forwarded(&forwarded, peer()), ("[2001:db8::1]:0".parse().unwrap(), "wss"));
    }

    #[test]
    fn everyone_is_trusted_with_a_star_and_nobody_else_by_default() {
        assert!(Proxies::parse("*").unwrap().trusts("198.51.100.1".parse().unwrap()));
        let local = Proxies::parse("127.0.0.1").unwrap();
        assert!(!local.trusts("198.51.100.1".parse().unwrap()));
        assert!(Proxies::parse("300.1.1.1").is_err());
    }
}
