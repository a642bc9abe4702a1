//! Who the client is: the connecting address, or, behind `--proxy-headers`, what a trusted proxy
//! says in `Forwarded` / `X-Forwarded-*` (read as uvicorn reads them). A leaf: both the HTTP
//! side and the WebSocket handshake ask it.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

/// The proxies whose `Forwarded` / `X-Forwarded-*` headers say who the client is
/// (`--proxy-headers`, `--forwarded-allow-ips`).
#[derive(Debug)]
pub struct Proxies {
    trusted: Vec<ipnet::IpNet>,
    /// `*`: every connecting address is a trusted proxy.
    everyone: bool,
}

impl Proxies {
    /// A comma-separated list of addresses and networks (`127.0.0.1, 10.0.0.0/8`), or `*`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut trusted = Vec::new();
        let mut everyone = false;
        for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            if item == "*" {
                everyone = true;
            } else if let Ok(network) = item.parse::<ipnet::IpNet>() {
                trusted.push(network);
            } else if let Ok(address) = item.parse::<std::net::IpAddr>() {
                trusted.push(address.into());
            } else {
                return Err(format!("{item:?} is not an IP address or network (like 127.0.0.1 or 10.0.0.0/8), nor *"));
            }
        }
        Ok(Self { trusted, everyone })
    }

    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.everyone || self.trusted.iter().any(|network| network.contains(&ip))
    }
}

/// The client's address, and whether it reached us over TLS: the connecting address, or what a
/// trusted proxy says of it.
pub fn client(headers: &HeaderMap, remote: SocketAddr, proxies: Option<&Proxies>) -> (SocketAddr, bool) {
    match proxies {
        Some(proxies) if proxies.trusts(remote.ip()) => proxies.forwarded(headers, remote),
        _ => (remote, false),
    }
}

impl Proxies {
    /// The client's address and the scheme, as a trusted proxy reports them: `Forwarded`
    /// (RFC 7239) when present, else `X-Forwarded-For` and `X-Forwarded-Proto`. Proxies append
    /// to the list, so it is read from the right: the first address that is not itself a
    /// trusted proxy is the client (all trusted: the leftmost). A forwarded address has no port
    /// (0), as in uvicorn. The flag: the proxy says it took the client's request over TLS.
    fn forwarded(&self, headers: &HeaderMap, remote: SocketAddr) -> (SocketAddr, bool) {
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
        let client = hops.get(chosen).copied().flatten().map_or(remote, |ip| SocketAddr::new(ip, 0));
        let proto = protos.get(chosen.min(protos.len().saturating_sub(1))).cloned().flatten();
        let secure =
            matches!(proto.as_deref().map(str::trim).map(str::to_ascii_lowercase).as_deref(), Some("https" | "wss"));
        (client, secure)
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

    fn remote() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_skipping_trusted_proxies() {
        let proxies = Proxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let forwarded = headers(&[("x-forwarded-for", "203.0.113.7, 10.1.2.3"), ("x-forwarded-proto", "https")]);
        assert_eq!(proxies.forwarded(&forwarded, remote()), ("203.0.113.7:0".parse().unwrap(), true));
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
        assert_eq!(proxies.forwarded(&all_trusted, remote()), ("10.0.0.1:0".parse().unwrap(), false));
        assert_eq!(proxies.forwarded(&HeaderMap::new(), remote()).0, remote(), "no header: the remote");
    }

    #[test]
    fn forwarded_is_read_like_x_forwarded_for() {
        let proxies = Proxies::parse("127.0.0.1").unwrap();
        let forwarded = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https, for=127.0.0.1;proto=http")]);
        assert_eq!(proxies.forwarded(&forwarded, remote()), ("[2001:db8::1]:0".parse().unwrap(), true));
    }

    #[test]
    fn everyone_is_trusted_with_a_star_and_nobody_else_by_default() {
        assert!(Proxies::parse("*").unwrap().trusts("198.51.100.1".parse().unwrap()));
        let local = Proxies::parse("127.0.0.1").unwrap();
        assert!(!local.trusts("198.51.100.1".parse().unwrap()));
        assert!(Proxies::parse("300.1.1.1").is_err());
    }
}
