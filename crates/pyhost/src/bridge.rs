//! The crossing between the network side (tokio threads) and the interpreter side (the one
//! thread that runs the asyncio loop).
//!
//! Inbound, network tasks append events to one shared vector and wake the loop thread only
//! when the vector goes from empty to non-empty; the loop thread takes the whole vector in a
//! single swap. Many messages therefore cost one wake-up, and no tokio thread ever touches the
//! GIL. With two threads the wake-up is an eventfd the asyncio loop watches; with one thread
//! (the loop thread runs the network side itself) it is a notification inside the runtime.
//!
//! Outbound, the interpreter side calls a connection's [`NetworkLink`], which the network side
//! implements with its own bounded queue; nothing crosses back through this module (wakes of
//! network tasks go through [`crate::wake`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::close_code::Departure;
use crate::locks::lock;
use crate::stream::{ResponseStream, StreamSignal};

/// Identifies one connection across the crossing; assigned by the network side.
pub type ConnKey = u64;

/// What the network side tells the interpreter side.
pub enum Event {
    /// Something happened on one connection.
    Conn(ConnKey, Inbound),
    /// The server is shutting down, or (`--reload`) restarting: every open connection is
    /// going away (1001, or 1012).
    ShuttingDown(Departure),
    /// Every connection is gone (or the grace period is over): run the shutdown handlers and
    /// stop the loop.
    Stop,
    /// The broker hears this server again after `gap_seconds` without it (broadcasts of
    /// other hosts made meanwhile did not arrive): run the `on_broker_reconnect` handlers.
    BrokerReconnected { gap_seconds: f64 },
    /// This process gained (`held`) or lost the lease of the app's once handler number
    /// `task`: start it, or cancel it.
    Lease { task: usize, held: bool },
    /// Users joined or left an endpoint (`room` None) or one of its rooms, across the cluster
    /// (announced by one process only): run the endpoint's `on_presence`.
    Presence { endpoint: usize, room: Option<String>, joined: Vec<String>, left: Vec<String> },
    /// The answer to a question the app asked that the network side could not answer at once
    /// (a history kept by the supervisor or by Redis): resolve the future `token` names.
    Answer(Token, Answer),
    /// An HTTP request for the app: run its route and answer through `HttpCall::reply`.
    Http(Box<HttpCall>),
    /// News of a streamed response body for the app that produces it.
    Stream(std::sync::Arc<ResponseStream>, StreamSignal),
}

/// One HTTP request for the app's Python side, read whole (its body within
/// `--max-body-size`). Its head is handed over as hyper parsed it: what Python asks of it is
/// turned into Python objects then, and only then.
#[derive(Debug)]
pub struct HttpCall {
    /// Index into the app's HTTP routes; None when no route matched (the app's global
    /// middlewares still see the 404).
    pub route: Option<usize>,
    /// Method, URI (path and query as sent) and headers.
    pub head: http::request::Parts,
    /// The route's parameters, percent-decoded, in pattern order.
    pub path_params: Vec<(String, String)>,
    pub body: Bytes,
    /// A `multipart/form-data` body, split into its parts.
    pub form: Option<Box<FormParts>>,
    pub client: std::net::SocketAddr,
    /// `http` or `https` (behind a trusted proxy that terminated TLS).
    pub scheme: &'static str,
    /// Where the answer goes; dropped unanswered, the client gets a 500.
    pub reply: tokio::sync::oneshot::Sender<HttpReply>,
}

/// The parts of a `multipart/form-data` body, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormParts {
    /// Parts without a file name: field name and text (not UTF-8: replaced).
    pub fields: Vec<(String, String)>,
    /// Parts with a file name: file name and content.
    pub files: Vec<(String, Bytes)>,
}

/// The app's answer to an HTTP request.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
}

/// An answer's body: whole, or produced while it is sent.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    Whole(Bytes),
    Streamed(std::sync::Arc<ResponseStream>),
}

/// One connection's events, in the order the network side saw them. `Disconnected` is always
/// the last event of a connection.
pub enum Inbound {
    Open(Box<Opening>),
    /// A text message; the network side has validated it as UTF-8.
    Text(Bytes),
    Binary(Bytes),
    /// The outbound queue has room again after [`NetworkLink::send`] answered [`SendError::Full`].
    Writable,
    /// The connection is over from the network's point of view: the client closed it (its
    /// code), vanished (1006), or the server dropped it (for example 1013, slow consumer).
    Disconnected {
        code: u16,
        reason: String,
    },
}

/// A connection that asked for an endpoint: its handshake is complete, or (when `decides`) it
/// waits for the interpreter side's [`NetworkLink::decide`].
pub struct Opening {
    /// Index of the endpoint in the app's list of WebSocket routes.
    pub endpoint: usize,
    /// The connection's UUID4 (its text is made when Python first asks for it).
    pub id: u128,
    pub request: Box<Request>,
    /// The app decides before the upgrade (it runs `on_connect` first): the handshake waits
    /// for [`NetworkLink::decide`].
    pub decides: bool,
    pub link: std::sync::Arc<dyn NetworkLink>,
}

/// What the client's opening handshake said, as the handler's `websocket` shows it. Kept
/// compact: an idle connection holds it for its whole life.
#[derive(Debug)]
pub struct Request {
    pub path: String,
    /// The query string as sent, without the `?`.
    pub query: String,
    /// The route's parameters (`/user/:id`), percent-decoded, in pattern order.
    pub path_params: Vec<(String, String)>,
    /// Every header line, `name: value` (names lower-case) one after another, `\n` between.
    pub headers: String,
    /// The client's address: the connecting socket's, or through `--proxy-headers` the one a trusted
    /// proxy names.
    pub client: std::net::SocketAddr,
    /// `ws` or `wss` (behind a trusted proxy that terminated TLS).
    pub scheme: &'static str,
    /// The subprotocol chosen from the client's offers, if any.
    pub subprotocol: Option<String>,
}

impl Request {
    /// The header lines as (name, value) pairs, in order.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.split('\n').filter_map(|line| line.split_once(": "))
    }
}

/// The app's answer to a handshake it decides on.
#[derive(Debug)]
pub enum Decision {
    /// Upgrade: the 101 response, then what the app queued.
    Accept,
    /// Answer the handshake with this HTTP response instead; the handler never runs.
    Refuse(Refusal),
}

#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Names a question of the app's whose answer comes later, as [`Event::Answer`].
pub type Token = u64;

/// An answer now, or (None) later as [`Event::Answer`]; an error says what went wrong (the
/// broker cannot be reached, say) and what to do.
pub type Now<T> = Option<Result<T, String>>;

/// What comes back to the app from a history.
#[derive(Debug)]
pub enum Answer {
    /// The offset a broadcast got (or was reserved).
    Offset(Result<u64, String>),
    /// What a client missed, or why it cannot be caught up.
    Missed(Result<Missed, String>),
    /// A recovery: how many missed messages were queued for the client, or the gap.
    Recovered(Result<Recovered, String>),
}

/// Where a history stands: its epoch, and the last offset released in it (0: none yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}

/// Why a client's position cannot be caught up from the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// The client's epoch is not the history's: it was lost (the server or Redis restarted
    /// empty) and offsets started again.
    Epoch,
    /// Some of what the client missed is no longer kept (older than the history).
    TooOld,
}

#[derive(Debug)]
pub struct Missed {
    pub position: Position,
    /// The messages after the client's offset, in order (none when only the position was
    /// asked for).
    pub messages: Result<Vec<Frame>, Gap>,
}

#[derive(Debug)]
pub struct Recovered {
    pub position: Position,
    pub queued: Result<usize, Gap>,
}

/// A message the interpreter side wants delivered.
#[derive(Debug)]
pub enum Frame {
    Text(String),
    Binary(Bytes),
}

#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The outbound queue is at capacity; `Inbound::Writable` follows once it has room.
    Full,
    /// The connection is closed or closing; nothing more can be sent on it.
    Gone,
}

/// The network side of one connection, as the interpreter side sees it. Every method is
/// called on the loop thread and must not block.
pub trait NetworkLink: Send + Sync {
    /// Queue one frame for this connection; a refused frame is handed back.
    fn send(&self, frame: Frame) -> Result<(), (SendError, Frame)>;
    /// Queue one frame for every joined connection of this endpoint, or of one of its rooms;
    /// this one included unless `exclude_self`.
    fn broadcast(&self, frame: Frame, room: Option<&str>, exclude_self: bool);
    /// Broadcasts reach this connection from now on (its greeting has been queued).
    fn join(&self);
    /// Broadcasts no longer reach this connection, nor do its rooms' broadcasts.
    fn leave(&self);
    /// Adds the connection to a room of its endpoint (it stays until it leaves or ends).
    fn join_room(&self, room: &str);
    fn leave_room(&self, room: &str);
    /// The rooms this connection is in.
    fn rooms(&self) -> Vec<String>;
    /// The connection is `user`'s (`websocket.identify`): it counts in presence and
    /// `send_to_user` while the app serves it.
    fn identify(&self, user: &str);
    /// The users present on this connection's endpoint (or one of its rooms), across the
    /// cluster, with their open connections.
    fn presence(&self, room: Option<&str>) -> Vec<(String, u32)>;
    /// Joins `room` (None: starts the endpoint's broadcasts) and queues, in order and once
    /// each, what the client missed since `since` in `epoch` and then what is broadcast
    /// meanwhile.
    fn recover(&self, room: Option<&str>, epoch: &str, since: u64, token: Token) -> Now<Recovered>;
    /// Index of the connection's endpoint in the app's list of WebSocket routes.
    fn endpoint(&self) -> usize;
    /// The app's answer to a handshake it decides on (`Opening::decides`); ignored once the
    /// connection is upgraded or gone.
    fn decide(&self, decision: Decision);
    /// The handler has taken (or the connection dropped) `bytes` of received messages; the
    /// network side reads from the client again once enough is taken.
    fn consumed(&self, bytes: usize);
    /// Queue `last` whatever the queue's capacity (the farewell, and any sends that were
    /// still waiting for room), then the Close frame, then end the connection (upgrading it
    /// first if the handshake still waits for a decision). The last call the interpreter side
    /// makes for a connection.
    fn close(&self, code: u16, reason: &str, last: Vec<Frame>);
}

/// The network side as a whole, as the app reaches it from any coroutine (not only a
/// connection's handler). With a broker between servers (scale-out), these go through it.
pub trait Hub: Send + Sync {
    /// Queues a frame for the open connection with this id; false when there is none (or its
    /// queue is full, which closes it as a slow consumer).
    fn send_to(&self, id: u128, frame: Frame) -> bool;
    /// Queues a frame for every joined connection of an endpoint, or of one of its rooms.
    fn broadcast(&self, endpoint: usize, room: Option<&str>, frame: Frame);
    /// Largest frame `broadcast` takes, in bytes (the interpreter side refuses bigger ones).
    fn max_broadcast(&self) -> usize;
    /// The ids of an endpoint's open connections.
    fn connections(&self, endpoint: usize) -> Vec<u128>;
    /// Queues a frame for every open connection of `user`, on any process; how many.
    fn send_to_user(&self, user: &str, frame: Frame) -> usize;
    /// The users present in an endpoint (or one of its rooms), across the cluster, with their
    /// open connections (0 while one lingers after leaving).
    fn presence(&self, endpoint: usize, room: Option<&str>) -> Vec<(String, u32)>;
    /// Whether the endpoint keeps a history (`@app.websocket(path, history=N)`).
    fn keeps_history(&self, endpoint: usize) -> bool;
    /// A broadcast kept in the endpoint's history (but not to connection `except`): its offset.
    fn broadcast_kept(
        &self,
        endpoint: usize,
        room: Option<&str>,
        frame: Frame,
        except: Option<u128>,
        token: Token,
    ) -> Now<u64>;
    /// Reserves the next offset of a history, for a message built once it is known.
    fn reserve(&self, endpoint: usize, room: Option<&str>, token: Token) -> Now<u64>;
    /// The message of a reserved offset (None: given up), released in offset order.
    fn commit(&self, endpoint: usize, room: Option<&str>, offset: u64, frame: Option<Frame>, except: Option<u128>);
    /// What was broadcast after `since` in `epoch` (None: only where the history stands).
    fn missed(&self, endpoint: usize, room: Option<&str>, since: Option<(&str, u64)>, token: Token) -> Now<Missed>;
}

/// The shared event vector and how the loop thread learns of it.
pub struct Bridge {
    pending: Mutex<Vec<Event>>,
    /// True from the moment the loop thread is woken until it starts draining: while it is
    /// set, producers append without waking it again.
    rung: AtomicBool,
    wakeup: Wakeup,
}

enum Wakeup {
    /// Two threads: an eventfd the asyncio loop watches (`loop.add_reader`).
    Doorbell(Doorbell),
    /// One thread: the loop thread, running the network side, waits on this between turns; a
    /// notification from a task of the same runtime costs no system call.
    Notify(tokio::sync::Notify),
}

impl Bridge {
    /// For an asyncio loop on a thread of its own, woken through an eventfd.
    pub fn new() -> io::Result<Self> {
        Ok(Self::with(Wakeup::Doorbell(Doorbell::new()?)))
    }

    /// For a loop thread that runs the network side itself.
    pub fn for_one_thread() -> Self {
        Self::with(Wakeup::Notify(tokio::sync::Notify::new()))
    }

    fn with(wakeup: Wakeup) -> Self {
        Self { pending: Mutex::new(Vec::new()), rung: AtomicBool::new(false), wakeup }
    }

    pub fn push(&self, event: Event) {
        lock(&self.pending).push(event);
        self.ring();
    }

    /// Appends a whole batch under one lock and at most one wake-up.
    pub fn push_all(&self, events: &mut Vec<Event>) {
        if events.is_empty() {
            return;
        }
        lock(&self.pending).append(events);
        self.ring();
    }

    fn ring(&self) {
        if !self.rung.swap(true, Ordering::SeqCst) {
            match &self.wakeup {
                Wakeup::Doorbell(doorbell) => doorbell.ring(),
                Wakeup::Notify(notify) => notify.notify_one(),
            }
        }
    }

    /// Whether events are waiting.
    pub fn has_events(&self) -> bool {
        self.rung.load(Ordering::SeqCst)
    }

    /// Returns once events are waiting (one-thread mode; with a doorbell, never).
    pub(crate) async fn until_events(&self) {
        let Wakeup::Notify(notify) = &self.wakeup else { return std::future::pending().await };
        // A notification left from a batch already taken only costs one more look.
        while !self.has_events() {
            notify.notified().await;
        }
    }

    /// Takes every pending event. Resets the doorbell first, then the flag, so a producer that
    /// appends after the swap always rings again.
    pub fn take(&self, into: &mut Vec<Event>) {
        if let Wakeup::Doorbell(doorbell) = &self.wakeup {
            doorbell.reset();
        }
        self.rung.store(false, Ordering::SeqCst);
        std::mem::swap(&mut *lock(&self.pending), into);
    }

    /// The eventfd the asyncio loop watches, with two threads.
    pub(crate) fn fileno(&self) -> Option<RawFd> {
        match &self.wakeup {
            Wakeup::Doorbell(doorbell) => Some(doorbell.fd.as_raw_fd()),
            Wakeup::Notify(_) => None,
        }
    }
}

/// A non-blocking eventfd the asyncio loop watches with `loop.add_reader`.
struct Doorbell {
    fd: OwnedFd,
}

#[allow(unsafe_code, reason = "eventfd(2), read(2) and write(2) have no safe wrapper in std")]
impl Doorbell {
    fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; a negative result is an error.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(raw) } })
    }

    fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. The only possible failure is EAGAIN when the
        // counter is saturated, which still leaves the fd readable: the wake-up is not lost.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn reset(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64. EAGAIN (not rung) is expected.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code, reason = "poll(2) has no safe wrapper in std")]
    fn readable(fd: RawFd) -> bool {
        let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut poll, 1, 0) == 1 }
    }

    fn text(key: ConnKey) -> Event {
        Event::Conn(key, Inbound::Text(Bytes::from_static(b"x")))
    }

    #[test]
    fn many_pushes_ring_the_doorbell_once_and_drain_in_order() {
        let bridge = Bridge::new().unwrap();
        assert!(!readable(bridge.fileno().unwrap()));
        for key in 0..100 {
            bridge.push(text(key));
        }
        assert!(readable(bridge.fileno().unwrap()));
        let mut batch = Vec::new();
        bridge.take(&mut batch);
        assert!(!readable(bridge.fileno().unwrap()), "taking the batch resets the doorbell");
        let keys: Vec<ConnKey> = batch
            .iter()
            .map(|event| match event {
                Event::Conn(key, _) => *key,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(keys, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_push_after_a_take_rings_again() {
        let bridge = Bridge::new().unwrap();
        bridge.push(text(1));
        let mut batch = Vec::new();
        bridge.take(&mut batch);
        bridge.push(text(2));
        assert!(readable(bridge.fileno().unwrap()));
        batch.clear();
        bridge.take(&mut batch);
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn push_all_moves_the_whole_batch() {
        let bridge = Bridge::new().unwrap();
        let mut events = vec![text(1), text(2), Event::Stop];
        bridge.push_all(&mut events);
        assert!(events.is_empty());
        let mut batch = Vec::new();
        bridge.take(&mut batch);
        assert_eq!(batch.len(), 3);
    }

    #[test]
    fn concurrent_producers_lose_nothing() {
        let bridge = std::sync::Arc::new(Bridge::new().unwrap());
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let bridge = bridge.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        bridge.push(text(p * 100_000 + i));
                    }
                })
            })
            .collect();
        let mut seen = 0;
        let mut batch = Vec::new();
        while seen < 40_000 {
            batch.clear();
            bridge.take(&mut batch);
            seen += batch.len();
            if batch.is_empty() {
                std::thread::yield_now();
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert_eq!(seen, 40_000);
    }
}
