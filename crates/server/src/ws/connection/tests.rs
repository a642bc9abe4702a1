//! The connection task against an in-memory WebSocket layer: every way a connection ends,
//! checked frame by frame and event by event. The layer behaves like the real ones where it
//! matters here: it answers the client's Close frame on its own (like tungstenite), or answers
//! every Close frame, even the answer to ours (like yawc), and can queue its own Close after a
//! protocol error.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use futures_util::{Sink, Stream};
use pyhost::bridge::{Bridge, Event, Frame, Inbound, NetworkLink, Request};
use pyhost::close_code::{self, reason};
use tokio::sync::Notify;

use super::*;
use crate::config::{HttpLimits, Keepalive, Limits};
use crate::ws::registry::{Registry, close_frame};

/// What the client does next, as the layer reads it.
enum Incoming {
    Message(Message),
    Error(SocketError),
    /// The client's stream ends (after its Close frame, or a bare FIN).
    End,
    /// The layer panics: a bug inside a WebSocket layer.
    Panic,
}

#[derive(Default)]
#[allow(clippy::struct_excessive_bools, reason = "a test double recording independent facts about a fake socket")]
struct WireState {
    incoming: VecDeque<Incoming>,
    /// The connection task, to wake when the client does something.
    task: Option<Waker>,
    /// Frames handed to the layer and not flushed yet.
    unflushed: Vec<Message>,
    /// Frames the layer owes the client on its own, written by `poll_flush_owed`.
    owed: VecDeque<Message>,
    /// Everything that reached the client, in order.
    delivered: Vec<Message>,
    /// The layer has written a Close frame of the server's.
    close_written: bool,
    /// The layer has read a Close frame: its stream ends once what it owes is out.
    close_read: bool,
    /// Answer every Close frame, even the answer to ours (yawc does).
    answers_every_close: bool,
    /// The server shut its write side and drains.
    lingering: bool,
    /// The client has closed its TCP side.
    client_gone: bool,
    /// The client takes nothing: flushes wait.
    client_not_reading: bool,
}

/// The test's handle on the in-memory connection; the task owns a `MemorySocket` on the same
/// state.
#[derive(Clone, Default)]
struct Wire {
    state: Arc<Mutex<WireState>>,
    changed: Arc<Notify>,
}

impl Wire {
    fn lock(&self) -> MutexGuard<'_, WireState> {
        self.state.lock().unwrap()
    }

    fn client_does(&self, incoming: Incoming) {
        let mut state = self.lock();
        state.incoming.push_back(incoming);
        if let Some(task) = state.task.take() {
            task.wake();
        }
    }

    fn client_sends(&self, message: Message) {
        self.client_does(Incoming::Message(message));
    }

    /// The client starts (or stops) taking what is written to it.
    fn client_reads(&self, reading: bool) {
        let mut state = self.lock();
        state.client_not_reading = !reading;
        if let Some(task) = state.task.take() {
            task.wake();
        }
    }

    fn client_closes_tcp(&self) {
        let mut state = self.lock();
        state.client_gone = true;
        if let Some(task) = state.task.take() {
            task.wake();
        }
    }

    /// Waits until `check` holds of what the client has received.
    async fn until(&self, what: &str, check: impl Fn(&WireState) -> bool) {
        let waiting = async {
            loop {
                let changed = self.changed.notified();
                if check(&self.lock()) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap_or_else(|_| panic!("the client never saw {what}; it has {:?}", self.lock().delivered));
    }

    fn closes(&self) -> Vec<(u16, String)> {
        self.lock()
            .delivered
            .iter()
            .filter_map(|message| match message {
                Message::Close(Some(frame)) => Some((u16::from(frame.code), frame.reason.to_string())),
                _ => None,
            })
            .collect()
    }
}

struct MemorySocket(Wire);

impl MemorySocket {
    fn deliver(&self, state: &mut WireState, frames: impl IntoIterator<Item = Message>) {
        state.delivered.extend(frames);
        self.0.changed.notify_waiters();
    }
}

impl Stream for MemorySocket {
    type Item = Result<Message, SocketError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.0.lock();
        if state.close_read {
            // As both real layers do, reading past a Close frame writes what is owed first.
            let owed: Vec<Message> = state.owed.drain(..).collect();
            self.deliver(&mut state, owed);
            return Poll::Ready(None);
        }
        match state.incoming.pop_front() {
            None => {
                state.task = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(Incoming::End) => Poll::Ready(None),
            Some(Incoming::Panic) => panic!("a bug inside the WebSocket layer"),
            Some(Incoming::Error(error)) => {
                if error.close_queued {
                    state.owed.push_back(Message::Close(Some(close_frame(error.code, ""))));
                }
                Poll::Ready(Some(Err(error)))
            }
            Some(Incoming::Message(message)) => {
                if let Message::Ping(payload) = &message {
                    // Both real layers queue the pong as they read the ping.
                    state.owed.push_back(Message::Pong(payload.clone()));
                }
                if let Message::Close(frame) = &message {
                    state.close_read = true;
                    if !state.close_written || state.answers_every_close {
                        state.owed.push_back(Message::Close(frame.clone()));
                    }
                }
                Poll::Ready(Some(Ok(message)))
            }
        }
    }
}

impl Sink<Message> for MemorySocket {
    type Error = SocketError;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), SocketError> {
        let mut state = self.0.lock();
        assert!(!state.lingering, "a frame written after the write side was shut: {message:?}");
        state.close_written |= matches!(message, Message::Close(_));
        state.unflushed.push(message);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        let mut state = self.0.lock();
        if state.client_not_reading {
            state.task = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let written = std::mem::take(&mut state.unflushed);
        self.deliver(&mut state, written);
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        self.poll_flush(cx)
    }
}

impl Socket for MemorySocket {
    fn poll_flush_owed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        let mut state = self.0.lock();
        if state.client_not_reading {
            state.task = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut written = std::mem::take(&mut state.unflushed);
        written.extend(state.owed.drain(..));
        self.deliver(&mut state, written);
        Poll::Ready(Ok(()))
    }

    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock();
        if !state.lingering {
            state.lingering = true;
            self.0.changed.notify_waiters();
        }
        if state.client_gone {
            return Poll::Ready(());
        }
        state.task = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// One server with one endpoint, and the interpreter side's view of it: the bridge's events.
struct Harness {
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

fn limits(send_queue: usize, keepalive: Option<Keepalive>) -> Limits {
    Limits {
        max_message_size: 1 << 20,
        send_queue,
        send_queue_bytes: 1 << 20,
        receive_buffer: 1 << 20,
        deflate: false,
        max_connections: 1,
        keepalive,
        allowed_origins: Vec::new(),
        http: HttpLimits {
            handshake_timeout: Duration::from_secs(10),
            max_header_size: 16 << 10,
            max_headers: 100,
            max_body_size: 1 << 20,
            request_timeout: None,
            sse_keepalive: None,
        },
    }
}

impl Harness {
    async fn start(wire: Wire, limits: Limits) -> Self {
        let state = Arc::new(Shared::new(
            Arc::new(Registry::new(vec!["/t".into()], crate::ws::registry::node::Node::random(), usize::MAX)),
            Arc::new(Bridge::new().unwrap()),
            limits,
            yawc::DeflatePool::new(1),
            false,
        ));
        let request = Request {
            path: "/t".into(),
            query: String::new(),
            path_params: Vec::new(),
            headers: String::new(),
            client: "127.0.0.1:1".parse().unwrap(),
            scheme: "ws",
            subprotocol: None,
        };
        let opened = Opened::open(state.clone(), 0, request, false, state.admission.place().unwrap());
        let task = tokio::spawn(serve(opened, MemorySocket(wire.clone())));
        tokio::task::yield_now().await;
        Self { state, task }
    }

    /// The connection as the interpreter side holds it.
    fn link(&self) -> Arc<Link> {
        self.state.registry.all().pop().expect("the connection is registered")
    }

    /// Waits for the task to end; checks what every ending must leave behind.
    async fn ended(self) -> Vec<String> {
        self.ended_within(Duration::from_secs(1)).await
    }

    async fn ended_within(self, limit: Duration) -> Vec<String> {
        let Harness { state, task, .. } = self;
        tokio::time::timeout(limit, task).await.expect("the task ends").expect("no panic");
        assert_eq!(state.registry.live(), 0, "the registry forgot the connection");
        assert!(state.admission.place().is_some(), "the connection's place is free again");
        events(&state)
    }
}

/// Every event the interpreter side got so far, in words.
fn events(state: &Shared) -> Vec<String> {
    let mut batch = Vec::new();
    state.bridge.take(&mut batch);
    batch
        .into_iter()
        .map(|event| match event {
            Event::Conn(_, Inbound::Open(_)) => "open".to_owned(),
            Event::Conn(_, Inbound::Text(text)) => format!("text {}", String::from_utf8_lossy(&text)),
            Event::Conn(_, Inbound::Binary(_)) => "binary".to_owned(),
            Event::Conn(_, Inbound::Writable) => "writable".to_owned(),
            Event::Conn(_, Inbound::Disconnected { code, reason }) => format!("disconnected {code} {reason:?}"),
            Event::ShuttingDown(_)
            | Event::Stop
            | Event::BrokerReconnected { .. }
            | Event::Lease { .. }
            | Event::Presence { .. }
            | Event::Answer(..)
            | Event::Http(_)
            | Event::Stream(..) => {
                unreachable!("the server's own events")
            }
        })
        .collect()
}

fn text(body: &str) -> Message {
    Message::Text(body.into())
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(close_frame(code, reason)))
}

async fn app_close_then_client_answers(answers_every_close: bool) {
    let wire = Wire::default();
    wire.lock().answers_every_close = answers_every_close;
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    let link = harness.link();
    link.send(Frame::Text("hello".into())).unwrap();
    link.close(4001, "done", vec![Frame::Text("farewell".into())]);
    wire.until("the Close frame", |state| state.close_written && state.unflushed.is_empty()).await;
    wire.client_sends(close(4001, "done"));
    wire.until("the write side shut", |state| state.lingering).await;
    wire.client_closes_tcp();
    let events = harness.ended().await;
    assert_eq!(wire.lock().delivered, [text("hello"), text("farewell"), close(4001, "done")]);
    assert_eq!(events, ["open", "disconnected 1000 \"\""], "the app knows: its last event only lets it forget");
}

#[tokio::test(start_paused = true)]
async fn the_apps_close_goes_out_after_its_frames_and_once() {
    app_close_then_client_answers(false).await;
}

/// The bug a browser saw: a layer that answers every Close frame (yawc) must not get to
/// answer the client's answer to ours.
#[tokio::test(start_paused = true)]
async fn the_apps_close_goes_out_once_even_on_a_layer_that_answers_every_close() {
    app_close_then_client_answers(true).await;
}

#[tokio::test(start_paused = true)]
async fn the_clients_close_is_answered_once_and_told_with_its_code() {
    for answers_every_close in [false, true] {
        let wire = Wire::default();
        wire.lock().answers_every_close = answers_every_close;
        let harness = Harness::start(wire.clone(), limits(4, None)).await;
        wire.client_sends(text("hi"));
        wire.client_sends(close(4321, "bye"));
        wire.until("the answer", |state| state.lingering).await;
        assert_eq!(harness.link().send(Frame::Text("late".into())).unwrap_err().0, pyhost::bridge::SendError::Gone);
        wire.client_closes_tcp();
        let events = harness.ended().await;
        assert_eq!(wire.closes(), [(4321, "bye".to_owned())]);
        assert_eq!(events, ["open", "text hi", "disconnected 4321 \"bye\""]);
    }
}

#[tokio::test(start_paused = true)]
async fn closes_crossing_each_other_make_one_close_each_way() {
    // The client's Close arrives before ours is written: the layer's answer is the only one.
    let wire = Wire::default();
    wire.client_sends(close(1001, "leaving"));
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    harness.link().close(close_code::NORMAL, "", vec![]);
    wire.until("the answer", |state| state.lingering).await;
    wire.client_closes_tcp();
    let events = harness.ended().await;
    assert_eq!(wire.closes(), [(1001, "leaving".to_owned())]);
    assert_eq!(events, ["open", "disconnected 1001 \"leaving\""]);

    // Ours is out when the client's own (not an answer) arrives, on a layer that answers
    // every Close: still one each way.
    let wire = Wire::default();
    wire.lock().answers_every_close = true;
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    harness.link().close(close_code::NORMAL, "", vec![]);
    wire.until("our Close", |state| !state.delivered.is_empty()).await;
    wire.client_sends(close(1001, "leaving"));
    wire.until("the write side shut", |state| state.lingering).await;
    wire.client_closes_tcp();
    harness.ended().await;
    assert_eq!(wire.closes(), [(close_code::NORMAL, String::new())]);
}

#[tokio::test(start_paused = true)]
async fn a_read_failure_closes_with_its_code_and_lingers_until_the_client_closes() {
    for close_queued in [false, true] {
        let wire = Wire::default();
        let harness = Harness::start(wire.clone(), limits(4, None)).await;
        let error = SocketError { code: close_code::PROTOCOL_ERROR, close_queued, detail: "bad frame".into() };
        wire.client_does(Incoming::Error(error));
        wire.client_sends(text("after the bad frame"));
        wire.until("the write side shut", |state| state.lingering).await;
        assert!(!harness.task.is_finished(), "lingering until the client closes");
        wire.client_closes_tcp();
        let events = harness.ended().await;
        assert_eq!(wire.closes(), [(close_code::PROTOCOL_ERROR, String::new())]);
        assert_eq!(events, ["open", "disconnected 1002 \"\""], "nothing read after the failure");
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_with_1001_and_drops_what_was_queued() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    let link = harness.link();
    link.send(Frame::Text("never sent".into())).unwrap();
    link.force_close(close_code::GOING_AWAY, reason::SHUTTING_DOWN);
    wire.until("the Close frame", |state| !state.delivered.is_empty()).await;
    wire.client_sends(close(close_code::GOING_AWAY, ""));
    wire.until("the write side shut", |state| state.lingering).await;
    wire.client_closes_tcp();
    let events = harness.ended().await;
    assert_eq!(wire.lock().delivered, [close(close_code::GOING_AWAY, reason::SHUTTING_DOWN)]);
    assert_eq!(events, ["open", "disconnected 1001 \"server shutting down\""]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_is_closed_with_1013() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(1, None)).await;
    let link = harness.link();
    link.join();
    // The task has not taken the first broadcast when the second comes: the queue is full.
    harness.state.registry.broadcast(0, None, &text("one"), None);
    harness.state.registry.broadcast(0, None, &text("two"), None);
    wire.until("the Close frame", |state| !state.delivered.is_empty()).await;
    wire.client_sends(close(close_code::TRY_AGAIN_LATER, ""));
    wire.client_does(Incoming::End);
    wire.client_closes_tcp();
    let events = harness.ended().await;
    assert_eq!(wire.lock().delivered, [close(close_code::TRY_AGAIN_LATER, reason::SLOW_CONSUMER)]);
    assert_eq!(events, ["open", "disconnected 1013 \"slow consumer\""]);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_answer_pings_is_closed_with_1011() {
    let keepalive = Keepalive { interval: Duration::from_secs(20), timeout: Duration::from_secs(20) };
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, Some(keepalive))).await;
    // Paused time moves on by itself while the task waits: 20 s of silence, a ping, 20 more.
    tokio::time::sleep(Duration::from_secs(41)).await;
    wire.until("the Close frame", |state| state.lingering).await;
    wire.client_closes_tcp();
    let events = harness.ended().await;
    assert_eq!(
        wire.lock().delivered,
        [Message::Ping(Bytes::new()), close(close_code::INTERNAL_ERROR, reason::KEEPALIVE_TIMEOUT)]
    );
    assert_eq!(events, ["open", "disconnected 1006 \"keepalive ping timeout\""]);
}

#[tokio::test(start_paused = true)]
async fn a_socket_that_vanishes_mid_close_ends_the_connection_at_once() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    harness.link().close(close_code::NORMAL, "", vec![]);
    wire.until("our Close", |state| !state.delivered.is_empty()).await;
    let reset = SocketError { code: close_code::ABNORMAL, close_queued: false, detail: "connection reset".into() };
    wire.client_does(Incoming::Error(reset));
    let events = harness.ended().await;
    assert_eq!(events, ["open", "disconnected 1000 \"\""], "one last event, whatever happened");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    harness.link().close(close_code::NORMAL, "", vec![]);
    let started = tokio::time::Instant::now();
    wire.until("our Close", |state| !state.delivered.is_empty()).await;
    let events = harness.ended_within(CLOSE_TIMEOUT + Duration::from_secs(1)).await;
    assert!(started.elapsed() >= CLOSE_TIMEOUT);
    assert_eq!(events, ["open", "disconnected 1000 \"\""]);
}

#[tokio::test(start_paused = true)]
async fn a_bare_fin_is_told_as_1006() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    wire.client_does(Incoming::End);
    wire.client_closes_tcp();
    let events = harness.ended().await;
    assert!(wire.closes().is_empty(), "nobody to send a Close frame to");
    assert_eq!(events, ["open", "disconnected 1006 \"\""]);
}

#[tokio::test(start_paused = true)]
async fn messages_after_the_apps_close_are_not_delivered() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    wire.client_sends(text("before"));
    tokio::task::yield_now().await;
    harness.link().close(close_code::NORMAL, "", vec![]);
    wire.until("our Close", |state| !state.delivered.is_empty()).await;
    wire.client_sends(text("after"));
    wire.client_sends(close(close_code::NORMAL, ""));
    wire.client_closes_tcp();
    let events = harness.ended().await;
    assert_eq!(events, ["open", "text before", "disconnected 1000 \"\""]);
}

/// A panic inside a WebSocket layer still frees the connection and tells the handler.
#[tokio::test(start_paused = true)]
async fn a_panic_in_the_layer_still_frees_the_connection_and_tells_the_handler() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    wire.client_does(Incoming::Panic);
    let outcome = tokio::time::timeout(Duration::from_secs(1), harness.task).await.expect("the task ends");
    assert!(outcome.unwrap_err().is_panic());
    assert_eq!(harness.state.registry.live(), 0);
    assert!(harness.state.admission.place().is_some());
    let mut batch = Vec::new();
    harness.state.bridge.take(&mut batch);
    let last = batch.last().expect("events");
    assert!(matches!(last, Event::Conn(_, Inbound::Disconnected { code: close_code::ABNORMAL, .. })));
}

#[tokio::test(start_paused = true)]
async fn a_ping_is_answered_and_what_came_after_it_is_read_without_more_from_the_client() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    wire.client_sends(Message::Ping("are you there".into()));
    wire.client_sends(text("after the ping"));
    let events = the_client_closes(&wire, harness).await;
    assert_eq!(wire.lock().delivered[0], Message::Pong("are you there".into()));
    assert_eq!(events, ["open", "text after the ping", "disconnected 1000 \"\""]);
}

/// A client that takes nothing cannot make the server hold more than one pong, nor read more
/// of its messages meanwhile.
#[tokio::test(start_paused = true)]
async fn a_client_that_owes_a_pong_is_not_read_until_it_is_out() {
    let wire = Wire::default();
    let harness = Harness::start(wire.clone(), limits(4, None)).await;
    wire.client_reads(false);
    wire.client_sends(Message::Ping("1".into()));
    wire.client_sends(Message::Ping("2".into()));
    wire.client_sends(text("held back"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(wire.lock().incoming.len(), 2, "only the first ping was read");
    assert_eq!(wire.lock().owed.len(), 1, "one pong owed");
    wire.client_reads(true);
    let events = the_client_closes(&wire, harness).await;
    assert_eq!(events, ["open", "text held back", "disconnected 1000 \"\""]);
}

/// Past --send-queue-bytes on their way to a client, the client is not read from.
#[tokio::test(start_paused = true)]
async fn a_client_too_far_behind_is_not_read_until_it_catches_up() {
    let wire = Wire::default();
    let mut limits = limits(4, None);
    limits.send_queue_bytes = 10;
    let harness = Harness::start(wire.clone(), limits).await;
    wire.client_reads(false);
    harness.link().send(Frame::Text("twelve bytes".into())).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    wire.client_sends(text("held back"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(wire.lock().incoming.len(), 1, "not read while the client is behind");
    wire.client_reads(true);
    let events = the_client_closes(&wire, harness).await;
    assert_eq!(wire.lock().delivered[0], text("twelve bytes"));
    assert_eq!(events, ["open", "text held back", "disconnected 1000 \"\""]);
}

/// The client closes cleanly, then its TCP side: every event the interpreter side got.
async fn the_client_closes(wire: &Wire, harness: Harness) -> Vec<String> {
    wire.client_sends(close(close_code::NORMAL, ""));
    wire.until("the write side shut", |state| state.lingering).await;
    wire.client_closes_tcp();
    harness.ended().await
}
