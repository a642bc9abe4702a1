//! What a node publishes to the broker: a compact binary envelope, built once per broadcast
//! and read once per receiving node (which then shares the payload with all its clients).
//!
//! ```text
//! version u8 | kind u8 | node u32 | published u64 (µs since the Unix epoch) | [id u128] | payload
//! ```
//!
//! The id is there for `send_to` only; `send_to_user` carries the user instead (its length
//! as u16, then its bytes), and a presence note is its JSON as the payload. No JSON, no base64: the payload is the client's frame
//! payload as it is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const VERSION: u8 = 1;

const TEXT: u8 = 1;
const BINARY: u8 = 2;
/// `send_to`: an id follows, then the payload.
const TEXT_TO: u8 = 3;
const BINARY_TO: u8 = 4;
/// A node's probe of its own subscription: no payload, never delivered.
const PROBE: u8 = 5;
const PRESENCE: u8 = 6;
/// `send_to_user`: the user follows, then the payload.
const TEXT_TO_USER: u8 = 7;
const BINARY_TO_USER: u8 = 8;
/// A broadcast kept in a history: the id it must not reach (0: none) follows, then the payload.
const KEPT_TEXT: u8 = 9;
const KEPT_BINARY: u8 = 10;

const HEADER: usize = 1 + 1 + 4 + 8;

#[derive(Debug, PartialEq)]
pub enum Content {
    Broadcast(Message),
    SendTo { id: u128, message: Message },
    Probe,
    Presence(Bytes),
    SendToUser { user: String, message: Message },
    Kept { except: Option<u128>, message: Message },
}

#[derive(Debug, PartialEq)]
pub struct Envelope {
    /// The node that published it.
    pub node: u32,
    /// When it was published, in µs since the Unix epoch.
    pub published: u64,
    pub content: Content,
}

impl Envelope {
    pub fn new(node: u32, content: Content) -> Self {
        Self { node, published: now_micros(), content }
    }

    pub fn encode(&self) -> Bytes {
        let (kind, payload): (u8, &[u8]) = match &self.content {
            Content::Broadcast(message) => (kind_of(message, TEXT, BINARY), payload_of(message)),
            Content::SendTo { message, .. } => (kind_of(message, TEXT_TO, BINARY_TO), payload_of(message)),
            Content::Probe => (PROBE, &[]),
            Content::Presence(note) => (PRESENCE, note),
            Content::SendToUser { message, .. } => {
                (kind_of(message, TEXT_TO_USER, BINARY_TO_USER), payload_of(message))
            }
            Content::Kept { message, .. } => (kind_of(message, KEPT_TEXT, KEPT_BINARY), payload_of(message)),
        };
        let mut out = BytesMut::with_capacity(HEADER + 16 + payload.len());
        out.put_u8(VERSION);
        out.put_u8(kind);
        out.put_u32(self.node);
        out.put_u64(self.published);
        match &self.content {
            Content::SendTo { id, .. } => out.put_u128(*id),
            Content::Kept { except, .. } => out.put_u128(except.unwrap_or(0)),
            Content::SendToUser { user, .. } => {
                out.put_u16(u16::try_from(user.len()).unwrap_or(u16::MAX));
                out.put_slice(user.as_bytes());
            }
            _ => {}
        }
        out.put_slice(payload);
        out.freeze()
    }

    /// None for an envelope of another version or a broken one (ignored, counted by the caller).
    pub fn decode(mut data: Bytes) -> Option<Self> {
        if data.len() < HEADER || data.get_u8() != VERSION {
            return None;
        }
        let kind = data.get_u8();
        let node = data.get_u32();
        let published = data.get_u64();
        let content = match kind {
            TEXT => Content::Broadcast(Message::Text(Utf8Bytes::try_from(data).ok()?)),
            BINARY => Content::Broadcast(Message::Binary(data)),
            TEXT_TO | BINARY_TO | KEPT_TEXT | KEPT_BINARY => {
                if data.len() < 16 {
                    return None;
                }
                let id = data.get_u128();
                let message = match kind {
                    TEXT_TO | KEPT_TEXT => Message::Text(Utf8Bytes::try_from(data).ok()?),
                    _ => Message::Binary(data),
                };
                if matches!(kind, TEXT_TO | BINARY_TO) {
                    Content::SendTo { id, message }
                } else {
                    Content::Kept { except: (id != 0).then_some(id), message }
                }
            }
            PROBE => Content::Probe,
            PRESENCE => Content::Presence(data),
            TEXT_TO_USER | BINARY_TO_USER => {
                if data.len() < 2 {
                    return None;
                }
                let length = usize::from(data.get_u16());
                if data.len() < length {
                    return None;
                }
                let user = String::from_utf8(data.split_to(length).to_vec()).ok()?;
                let message = match kind {
                    TEXT_TO_USER => Message::Text(Utf8Bytes::try_from(data).ok()?),
                    _ => Message::Binary(data),
                };
                Content::SendToUser { user, message }
            }
            _ => return None,
        };
        Some(Self { node, published, content })
    }

    /// How long ago it was published (zero if the clocks disagree the other way).
    pub fn age(&self) -> Duration {
        Duration::from_micros(now_micros().saturating_sub(self.published))
    }
}

fn kind_of(message: &Message, text: u8, binary: u8) -> u8 {
    if matches!(message, Message::Text(_)) { text } else { binary }
}

fn payload_of(message: &Message) -> &[u8] {
    match message {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => &[],
    }
}

fn now_micros() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_comes_back_as_it_went() {
        for content in [
            Content::Broadcast(Message::Text("héllo".into())),
            Content::Broadcast(Message::Binary(Bytes::from_static(b"\0\x01\xff"))),
            Content::Broadcast(Message::Text("".into())),
            Content::SendTo { id: u128::MAX - 1, message: Message::Text("psst".into()) },
            Content::SendTo { id: 7, message: Message::Binary(Bytes::new()) },
            Content::Probe,
            Content::Presence(Bytes::from_static(b"{\"n\":1}")),
            Content::SendToUser { user: "ann".into(), message: Message::Text("psst".into()) },
            Content::SendToUser { user: "bob".into(), message: Message::Binary(Bytes::from_static(b"\0")) },
            Content::Kept { except: None, message: Message::Text("kept".into()) },
            Content::Kept { except: Some(9), message: Message::Binary(Bytes::from_static(b"\x01")) },
        ] {
            let envelope = Envelope::new(0xfeed_f00d, content);
            assert_eq!(Envelope::decode(envelope.encode()), Some(envelope));
        }
    }

    #[test]
    fn the_header_is_fourteen_bytes_and_the_payload_follows_as_it_is() {
        let encoded = Envelope::new(1, Content::Broadcast(Message::Text("abc".into()))).encode();
        assert_eq!(encoded.len(), HEADER + 3);
        assert_eq!(&encoded[HEADER..], b"abc");
    }

    #[test]
    fn other_versions_and_broken_envelopes_are_ignored() {
        let mut encoded = Envelope::new(1, Content::Probe).encode().to_vec();
        encoded[0] = 2;
        assert_eq!(Envelope::decode(Bytes::from(encoded)), None);
        assert_eq!(Envelope::decode(Bytes::from_static(b"\x01\x01")), None);
        let short_id = [VERSION, TEXT_TO, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        assert_eq!(Envelope::decode(Bytes::copy_from_slice(&short_id)), None);
        let bad_utf8 = [VERSION, TEXT, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff];
        assert_eq!(Envelope::decode(Bytes::copy_from_slice(&bad_utf8)), None);
    }
}
