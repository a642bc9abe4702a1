//! What travels on the local bus between the supervisor and its workers: length-delimited
//! frames, each a kind byte and its fields. A broadcast carries the frame's opcode and payload
//! as the client will see them, so every worker builds the client's frame once.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::metrics::Snapshot;
use crate::ws::registry::history::{Catchup, Gap, Keep, Position};
use crate::ws::registry::presence::Scope;

#[derive(Debug, PartialEq)]
pub enum Note {
    /// The first note of a worker: its number, the node tag its connection ids carry, and its
    /// process id (under `--reload` two processes have the same number while one takes over).
    Hello {
        worker: u32,
        node: u32,
        pid: u32,
    },
    /// The worker serves, at this address.
    Ready {
        worker: u32,
        address: String,
    },
    Broadcast {
        endpoint: String,
        room: Option<String>,
        message: Message,
    },
    /// For the worker whose node tag `id` carries.
    SendTo {
        id: u128,
        message: Message,
    },
    /// (From the supervisor) the node tags of the workers up now.
    Peers(Vec<u32>),
    /// A worker's own numbers (every second), and (from the supervisor) everyone's sum.
    Metrics(Snapshot),
    Totals(Snapshot),
    /// (From the supervisor, under `--reload`) a worker with new code serves in this one's
    /// place: close every client with 1012 and exit.
    Restart,
    /// A presence note, for every other worker.
    Presence(Bytes),
    /// For every connection of `user` on the worker tagged `node`.
    SendToUser {
        node: u32,
        user: String,
        message: Message,
    },
    /// (To the supervisor, which keeps the histories) a question; the answer comes back to
    /// the asking worker with `token`.
    HistoryAsk {
        token: u64,
        scope: Scope,
        keep: Keep,
        question: Question,
    },
    /// (To the supervisor) the message of a reserved offset (None: given up).
    HistoryCommit {
        scope: Scope,
        keep: Keep,
        offset: u64,
        except: Option<u128>,
        message: Option<Message>,
    },
    /// (From the supervisor, to the worker that asked.)
    HistoryAnswer {
        token: u64,
        reply: Reply,
    },
    /// (From the supervisor, to every worker, in offset order) a kept broadcast released.
    Released {
        scope: Scope,
        offset: u64,
        except: Option<u128>,
        message: Message,
    },
}

/// What a worker asks of a history.
#[derive(Debug, PartialEq)]
pub enum Question {
    /// Keep this broadcast: its offset.
    Append { except: Option<u128>, message: Message },
    /// The next offset, for a message built once it is known.
    Reserve,
    /// Where the history stands, and what came after an epoch and offset.
    CatchUp { since: Option<(String, u64)> },
}

#[derive(Debug, PartialEq)]
pub enum Reply {
    Offset(u64),
    CaughtUp(Position, Catchup),
}

const HELLO: u8 = 1;
const READY: u8 = 2;
const BROADCAST: u8 = 3;
const SEND_TO: u8 = 4;
const PEERS: u8 = 5;
const METRICS: u8 = 6;
const TOTALS: u8 = 7;
const RESTART: u8 = 8;
const PRESENCE: u8 = 9;
const SEND_TO_USER: u8 = 10;
const HISTORY_ASK: u8 = 11;
const HISTORY_COMMIT: u8 = 12;
const HISTORY_ANSWER: u8 = 13;
const RELEASED: u8 = 14;

const APPEND: u8 = 1;
const RESERVE: u8 = 2;
const CATCH_UP: u8 = 3;
const OFFSET: u8 = 1;
const CAUGHT_UP: u8 = 2;
const NO_GAP: u8 = 0;
const EPOCH_GAP: u8 = 1;
const TOO_OLD_GAP: u8 = 2;

const TEXT: u8 = 1;
const BINARY: u8 = 2;

impl Note {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Note::Hello { worker, node, pid } => {
                out.put_u8(HELLO);
                out.put_u32(*worker);
                out.put_u32(*node);
                out.put_u32(*pid);
            }
            Note::Ready { worker, address } => {
                out.put_u8(READY);
                out.put_u32(*worker);
                put_str(&mut out, address);
            }
            Note::Broadcast { endpoint, room, message } => {
                out.put_u8(BROADCAST);
                put_str(&mut out, endpoint);
                put_str(&mut out, room.as_deref().unwrap_or_default());
                out.put_u8(u8::from(room.is_some()));
                put_message(&mut out, message);
            }
            Note::SendTo { id, message } => {
                out.put_u8(SEND_TO);
                out.put_u128(*id);
                put_message(&mut out, message);
            }
            Note::Peers(nodes) => {
                out.put_u8(PEERS);
                for node in nodes {
                    out.put_u32(*node);
                }
            }
            Note::Metrics(snapshot) | Note::Totals(snapshot) => {
                out.put_u8(if matches!(self, Note::Metrics(_)) { METRICS } else { TOTALS });
                // A snapshot is small and goes once a second: JSON is plenty.
                out.put_slice(&serde_json::to_vec(snapshot).unwrap_or_default());
            }
            Note::Restart => out.put_u8(RESTART),
            Note::Presence(note) => {
                out.put_u8(PRESENCE);
                out.put_slice(note);
            }
            Note::SendToUser { node, user, message } => {
                out.put_u8(SEND_TO_USER);
                out.put_u32(*node);
                put_str(&mut out, user);
                put_message(&mut out, message);
            }
            Note::HistoryAsk { token, scope, keep, question } => {
                out.put_u8(HISTORY_ASK);
                out.put_u64(*token);
                put_scope(&mut out, scope);
                put_keep(&mut out, *keep);
                match question {
                    Question::Append { except, message } => {
                        out.put_u8(APPEND);
                        out.put_u128(except.unwrap_or(0));
                        put_message(&mut out, message);
                    }
                    Question::Reserve => out.put_u8(RESERVE),
                    Question::CatchUp { since } => {
                        out.put_u8(CATCH_UP);
                        out.put_u8(u8::from(since.is_some()));
                        let (epoch, offset) = since.clone().unwrap_or_default();
                        put_str(&mut out, &epoch);
                        out.put_u64(offset);
                    }
                }
            }
            Note::HistoryCommit { scope, keep, offset, except, message } => {
                out.put_u8(HISTORY_COMMIT);
                put_scope(&mut out, scope);
                put_keep(&mut out, *keep);
                out.put_u64(*offset);
                out.put_u128(except.unwrap_or(0));
                out.put_u8(u8::from(message.is_some()));
                if let Some(message) = message {
                    put_message(&mut out, message);
                }
            }
            Note::HistoryAnswer { token, reply } => {
                out.put_u8(HISTORY_ANSWER);
                out.put_u64(*token);
                match reply {
                    Reply::Offset(offset) => {
                        out.put_u8(OFFSET);
                        out.put_u64(*offset);
                    }
                    Reply::CaughtUp(position, catchup) => {
                        out.put_u8(CAUGHT_UP);
                        put_str(&mut out, &position.epoch);
                        out.put_u64(position.offset);
                        match catchup {
                            Ok(messages) => {
                                out.put_u8(NO_GAP);
                                for (offset, message) in messages {
                                    out.put_u64(*offset);
                                    put_sized_message(&mut out, message);
                                }
                            }
                            Err(Gap::Epoch) => out.put_u8(EPOCH_GAP),
                            Err(Gap::TooOld) => out.put_u8(TOO_OLD_GAP),
                        }
                    }
                }
            }
            Note::Released { scope, offset, except, message } => {
                out.put_u8(RELEASED);
                put_scope(&mut out, scope);
                out.put_u64(*offset);
                out.put_u128(except.unwrap_or(0));
                put_message(&mut out, message);
            }
        }
        out.freeze()
    }

    /// The note in a frame; None for one this build does not know (or a broken one).
    pub fn decode(mut frame: Bytes) -> Option<Note> {
        if !frame.has_remaining() {
            return None;
        }
        let note = match frame.get_u8() {
            HELLO => {
                Note::Hello { worker: get_u32(&mut frame)?, node: get_u32(&mut frame)?, pid: get_u32(&mut frame)? }
            }
            READY => Note::Ready { worker: get_u32(&mut frame)?, address: get_str(&mut frame)? },
            BROADCAST => {
                let endpoint = get_str(&mut frame)?;
                let room = get_str(&mut frame)?;
                let has_room = get_u8(&mut frame)? == 1;
                Note::Broadcast { endpoint, room: has_room.then_some(room), message: get_message(&mut frame)? }
            }
            SEND_TO => Note::SendTo { id: get_u128(&mut frame)?, message: get_message(&mut frame)? },
            PEERS => {
                let mut nodes = Vec::with_capacity(frame.remaining() / 4);
                while frame.has_remaining() {
                    nodes.push(get_u32(&mut frame)?);
                }
                Note::Peers(nodes)
            }
            METRICS => Note::Metrics(serde_json::from_slice(&frame).ok()?),
            TOTALS => Note::Totals(serde_json::from_slice(&frame).ok()?),
            RESTART => Note::Restart,
            PRESENCE => Note::Presence(frame),
            SEND_TO_USER => Note::SendToUser {
                node: get_u32(&mut frame)?,
                user: get_str(&mut frame)?,
                message: get_message(&mut frame)?,
            },
            HISTORY_ASK => {
                let token = get_u64(&mut frame)?;
                let scope = get_scope(&mut frame)?;
                let keep = get_keep(&mut frame)?;
                let question = match get_u8(&mut frame)? {
                    APPEND => Question::Append { except: get_id(&mut frame)?, message: get_message(&mut frame)? },
                    RESERVE => Question::Reserve,
                    CATCH_UP => {
                        let has_since = get_u8(&mut frame)? == 1;
                        let since = (get_str(&mut frame)?, get_u64(&mut frame)?);
                        Question::CatchUp { since: has_since.then_some(since) }
                    }
                    _ => return None,
                };
                Note::HistoryAsk { token, scope, keep, question }
            }
            HISTORY_COMMIT => {
                let scope = get_scope(&mut frame)?;
                let keep = get_keep(&mut frame)?;
                let offset = get_u64(&mut frame)?;
                let except = get_id(&mut frame)?;
                let message = if get_u8(&mut frame)? == 1 { Some(get_message(&mut frame)?) } else { None };
                Note::HistoryCommit { scope, keep, offset, except, message }
            }
            HISTORY_ANSWER => {
                let token = get_u64(&mut frame)?;
                let reply = match get_u8(&mut frame)? {
                    OFFSET => Reply::Offset(get_u64(&mut frame)?),
                    CAUGHT_UP => {
                        let position = Position { epoch: get_str(&mut frame)?, offset: get_u64(&mut frame)? };
                        let catchup = match get_u8(&mut frame)? {
                            NO_GAP => {
                                let mut messages = Vec::new();
                                while frame.has_remaining() {
                                    messages.push((get_u64(&mut frame)?, get_sized_message(&mut frame)?));
                                }
                                Ok(messages)
                            }
                            EPOCH_GAP => Err(Gap::Epoch),
                            TOO_OLD_GAP => Err(Gap::TooOld),
                            _ => return None,
                        };
                        Reply::CaughtUp(position, catchup)
                    }
                    _ => return None,
                };
                Note::HistoryAnswer { token, reply }
            }
            RELEASED => Note::Released {
                scope: get_scope(&mut frame)?,
                offset: get_u64(&mut frame)?,
                except: get_id(&mut frame)?,
                message: get_message(&mut frame)?,
            },
            _ => return None,
        };
        Some(note)
    }
}

/// Where the supervisor sends a worker's frame on, as it is, without decoding it all.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// To every other worker.
    Others,
    /// To the worker with this node tag.
    Node(u32),
    /// Nowhere: the supervisor reads it.
    Supervisor,
}

pub fn route(frame: &[u8]) -> Route {
    match frame {
        [BROADCAST | PRESENCE, ..] => Route::Others,
        // A SendTo's id starts with the node tag; a SendToUser names it first.
        [SEND_TO | SEND_TO_USER, a, b, c, d, ..] => Route::Node(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Route::Supervisor,
    }
}

fn put_str(out: &mut BytesMut, text: &str) {
    out.put_u32(u32::try_from(text.len()).unwrap_or(u32::MAX));
    out.put_slice(text.as_bytes());
}

fn put_message(out: &mut BytesMut, message: &Message) {
    match message {
        Message::Text(text) => {
            out.put_u8(TEXT);
            out.put_slice(text.as_bytes());
        }
        other => {
            out.put_u8(BINARY);
            out.put_slice(&other.clone().into_data());
        }
    }
}

fn put_scope(out: &mut BytesMut, scope: &Scope) {
    put_str(out, &scope.endpoint);
    out.put_u8(u8::from(scope.room.is_some()));
    put_str(out, scope.room.as_deref().unwrap_or_default());
}

fn get_scope(frame: &mut Bytes) -> Option<Scope> {
    let endpoint = get_str(frame)?;
    let has_room = get_u8(frame)? == 1;
    let room = get_str(frame)?;
    Some(Scope { endpoint, room: has_room.then_some(room) })
}

fn put_keep(out: &mut BytesMut, keep: Keep) {
    out.put_u64(keep.count as u64);
    out.put_u64(keep.span.map_or(0, |span| u64::try_from(span.as_millis()).unwrap_or(u64::MAX)));
}

fn get_keep(frame: &mut Bytes) -> Option<Keep> {
    let count = usize::try_from(get_u64(frame)?).ok()?;
    let span = get_u64(frame)?;
    Some(Keep { count, span: (span > 0).then(|| std::time::Duration::from_millis(span)) })
}

/// A message that other fields follow: its length first.
fn put_sized_message(out: &mut BytesMut, message: &Message) {
    let payload = message.clone().into_data();
    out.put_u8(if matches!(message, Message::Text(_)) { TEXT } else { BINARY });
    out.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    out.put_slice(&payload);
}

fn get_sized_message(frame: &mut Bytes) -> Option<Message> {
    let kind = get_u8(frame)?;
    let length = usize::try_from(get_u32(frame)?).ok()?;
    if frame.remaining() < length {
        return None;
    }
    let payload = frame.split_to(length);
    match kind {
        TEXT => Utf8Bytes::try_from(payload).ok().map(Message::Text),
        BINARY => Some(Message::Binary(payload)),
        _ => None,
    }
}

/// A connection id, 0 for none (no id is 0: its node tag never is).
fn get_id(frame: &mut Bytes) -> Option<Option<u128>> {
    let id = get_u128(frame)?;
    Some((id != 0).then_some(id))
}

fn get_u64(frame: &mut Bytes) -> Option<u64> {
    (frame.remaining() >= 8).then(|| frame.get_u64())
}

fn get_u8(frame: &mut Bytes) -> Option<u8> {
    frame.has_remaining().then(|| frame.get_u8())
}

fn get_u32(frame: &mut Bytes) -> Option<u32> {
    (frame.remaining() >= 4).then(|| frame.get_u32())
}

fn get_u128(frame: &mut Bytes) -> Option<u128> {
    (frame.remaining() >= 16).then(|| frame.get_u128())
}

fn get_str(frame: &mut Bytes) -> Option<String> {
    let length = usize::try_from(get_u32(frame)?).ok()?;
    if frame.remaining() < length {
        return None;
    }
    String::from_utf8(frame.split_to(length).to_vec()).ok()
}

fn get_message(frame: &mut Bytes) -> Option<Message> {
    match get_u8(frame)? {
        TEXT => Utf8Bytes::try_from(std::mem::take(frame)).ok().map(Message::Text),
        BINARY => Some(Message::Binary(std::mem::take(frame))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_note_comes_back_as_it_went() {
        let totals = Snapshot { messages_in: 7, ..Snapshot::default() };
        for note in [
            Note::Hello { worker: 3, node: 0xdead_beef, pid: 4242 },
            Note::Ready { worker: 1, address: "127.0.0.1:8080".into() },
            Note::Broadcast {
                endpoint: "/chat".into(), room: Some("red".into()), message: Message::Text("hé".into())
            },
            Note::Broadcast {
                endpoint: "/chat".into(),
                room: None,
                message: Message::Binary(Bytes::from_static(b"\0\xff")),
            },
            Note::SendTo { id: u128::MAX - 5, message: Message::Text("psst".into()) },
            Note::Peers(vec![1, u32::MAX]),
            Note::Peers(Vec::new()),
            Note::Metrics(totals.clone()),
            Note::Totals(totals),
            Note::Restart,
            Note::Presence(Bytes::from_static(b"{}")),
            Note::SendToUser { node: 9, user: "ann".into(), message: Message::Text("hi".into()) },
            Note::HistoryAsk {
                token: 5,
                scope: Scope::new("/chat", Some("red")),
                keep: Keep { count: 100, span: Some(std::time::Duration::from_secs(60)) },
                question: Question::Append { except: Some(42), message: Message::Text("kept".into()) },
            },
            Note::HistoryAsk {
                token: 6,
                scope: Scope::new("/chat", None),
                keep: Keep { count: 1, span: None },
                question: Question::CatchUp { since: Some(("e1".into(), 7)) },
            },
            Note::HistoryAsk {
                token: 7,
                scope: Scope::new("/chat", None),
                keep: Keep { count: 1, span: None },
                question: Question::Reserve,
            },
            Note::HistoryCommit {
                scope: Scope::new("/chat", None),
                keep: Keep { count: 3, span: None },
                offset: 9,
                except: None,
                message: None,
            },
            Note::HistoryAnswer {
                token: 8,
                reply: Reply::CaughtUp(
                    Position { epoch: "e".into(), offset: 3 },
                    Ok(vec![(2, Message::Text("a".into())), (3, Message::Binary(Bytes::from_static(b"\0")))]),
                ),
            },
            Note::HistoryAnswer {
                token: 9,
                reply: Reply::CaughtUp(Position { epoch: "e".into(), offset: 3 }, Err(Gap::TooOld)),
            },
            Note::HistoryAnswer { token: 10, reply: Reply::Offset(11) },
            Note::Released {
                scope: Scope::new("/chat", Some("red")),
                offset: 4,
                except: Some(1),
                message: Message::Text("x".into()),
            },
        ] {
            assert_eq!(Note::decode(note.encode()), Some(note));
        }
    }

    #[test]
    fn the_supervisor_routes_by_kind_and_node() {
        let broadcast = Note::Broadcast { endpoint: "/c".into(), room: None, message: Message::Text("x".into()) };
        assert_eq!(route(&broadcast.encode()), Route::Others);
        let send_to = Note::SendTo { id: (7u128 << 96) | 99, message: Message::Text("x".into()) };
        assert_eq!(route(&send_to.encode()), Route::Node(7));
        let to_user = Note::SendToUser { node: 8, user: "ann".into(), message: Message::Text("x".into()) };
        assert_eq!(route(&to_user.encode()), Route::Node(8));
        assert_eq!(route(&Note::Presence(Bytes::new()).encode()), Route::Others);
        assert_eq!(route(&Note::Ready { worker: 0, address: String::new() }.encode()), Route::Supervisor);
        assert_eq!(route(&[SEND_TO, 1]), Route::Supervisor);
    }

    #[test]
    fn broken_frames_are_ignored() {
        assert_eq!(Note::decode(Bytes::new()), None);
        assert_eq!(Note::decode(Bytes::from_static(&[SEND_TO, 1, 2])), None);
        assert_eq!(Note::decode(Bytes::from_static(&[99])), None);
        assert_eq!(Note::decode(Bytes::from_static(&[BROADCAST, 0, 0, 0, 9, b'/'])), None);
    }
}
