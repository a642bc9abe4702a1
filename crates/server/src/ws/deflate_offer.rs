//! Reading a client's permessage-deflate offers (RFC 7692 section 5). A client may offer the
//! extension several times, in order of preference; an offer with a parameter the RFC does not
//! define, a parameter given twice, or a value out of range is declined and the next one
//! considered. The offer taken is written back in a canonical form, so the compression layer
//! never sees (and never echoes) anything malformed.

use axum::http::{HeaderMap, HeaderValue, header};

const EXTENSION: &str = "permessage-deflate";

/// The parameters of one valid offer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// The largest window the server may compress with (8 to 15).
    server_max_window_bits: Option<u8>,
    /// The client can take a window size from the server (`Some(None)`), or asks at most
    /// this one.
    client_max_window_bits: Option<Option<u8>>,
}

/// The first permessage-deflate offer the server can accept, written back canonically; None
/// when the client offers none that is valid.
pub fn acceptable(headers: &HeaderMap) -> Option<HeaderValue> {
    let offer = headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(parse)?;
    HeaderValue::from_str(&canonical(&offer)).ok()
}

/// One offer (`permessage-deflate; param; param=value`), if it is a valid permessage-deflate
/// offer.
fn parse(offer: &str) -> Option<Offer> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case(EXTENSION) {
        return None;
    }
    let mut parsed = Offer::default();
    for parameter in parts {
        let (name, value) = match parameter.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
            None => (parameter, None),
        };
        let fresh = match (name, value) {
            ("server_no_context_takeover", None) => !std::mem::replace(&mut parsed.server_no_context_takeover, true),
            ("client_no_context_takeover", None) => !std::mem::replace(&mut parsed.client_no_context_takeover, true),
            ("server_max_window_bits", Some(value)) => {
                parsed.server_max_window_bits.replace(window_bits(value)?).is_none()
            }
            ("client_max_window_bits", value) => {
                let bits = match value {
                    None => None,
                    Some(value) => Some(window_bits(value)?),
                };
                parsed.client_max_window_bits.replace(bits).is_none()
            }
            _ => false,
        };
        if !fresh {
            return None;
        }
    }
    Some(parsed)
}

/// A quoted value's content (RFC 7692 allows a quoted string; the window sizes are digits).
fn unquote(value: &str) -> &str {
    value.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).unwrap_or(value)
}

/// A window size: a number from 8 to 15, without a leading zero.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

fn canonical(offer: &Offer) -> String {
    let mut text = EXTENSION.to_owned();
    if offer.server_no_context_takeover {
        text.push_str("; server_no_context_takeover");
    }
    if offer.client_no_context_takeover {
        text.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = offer.server_max_window_bits {
        text.push_str(&format!("; server_max_window_bits={bits}"));
    }
    match offer.client_max_window_bits {
        Some(Some(bits)) => text.push_str(&format!("; client_max_window_bits={bits}")),
        Some(None) => text.push_str("; client_max_window_bits"),
        None => {}
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(values: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(value).unwrap());
        }
        acceptable(&headers).map(|value| value.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_browsers_offer_is_taken_as_it_is() {
        assert_eq!(
            offered(&["permessage-deflate; client_max_window_bits"]).as_deref(),
            Some("permessage-deflate; client_max_window_bits")
        );
        assert_eq!(offered(&["permessage-deflate"]).as_deref(), Some("permessage-deflate"));
    }

    #[test]
    fn the_first_valid_offer_wins_across_header_lines_and_other_extensions() {
        assert_eq!(
            offered(&[
                "x-webkit-deflate-frame",
                "permessage-deflate; server_max_window_bits=7, permessage-deflate; server_no_context_takeover; \
                 server_max_window_bits=9",
                "permessage-deflate",
            ])
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
        );
    }

    #[test]
    fn offers_the_rfc_says_to_decline_are_declined() {
        for offer in [
            "permessage-deflate; unknown_param",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=",
            "permessage-deflate; client_max_window_bits=1x",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-snappy",
        ] {
            assert_eq!(offered(&[offer]), None, "{offer}");
        }
        assert_eq!(offered(&[]), None);
    }

    #[test]
    fn quoted_values_and_spacing_are_read_and_written_back_plainly() {
        assert_eq!(
            offered(&["permessage-deflate ;client_max_window_bits = \"12\"; client_no_context_takeover"]).as_deref(),
            Some("permessage-deflate; client_no_context_takeover; client_max_window_bits=12")
        );
    }
}
