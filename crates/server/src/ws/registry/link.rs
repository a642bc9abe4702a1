//! A connection's link between the interpreter side and its socket task: the bounded
//! outbound queue the loop thread fills and the socket task empties.
//!
//! A `Mutex<VecDeque>` rather than a tokio channel: the socket task takes the whole queue in
//! one lock (so it can write a batch and flush once), and an idle connection holds no
//! pre-allocated channel block.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::task::AtomicWaker;
use pyhost::bridge::{ConnKey, Decision, Frame, NetworkLink, Now, Recovered, SendError, Token};
use pyhost::close_code::{self, reason};
use pyhost::locks::lock;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::Registry;

pub struct Link {
    pub key: ConnKey,
    /// The connection's UUID4, by which the app reaches it (`send_to`).
    pub id: u128,
    pub endpoint: usize,
    registry: Arc<Registry>,
    outbox: Mutex<Outbox>,
    /// The socket task, to wake when the queue changes.
    waker: AtomicWaker,
    joined: AtomicBool,
    /// Bytes of received messages the handler has not taken yet, and how many it may have
    /// before the socket task stops reading.
    unreceived: AtomicUsize,
    receive_limit: usize,
    membership: Mutex<Membership>,
}

/// Where the connection belongs: its rooms, and who the app says its client is.
#[derive(Default)]
pub(super) struct Membership {
    /// The rooms of its endpoint the connection is in (rarely more than a few).
    pub rooms: Vec<Box<str>>,
    /// The user the app identified (`websocket.identify`).
    pub user: Option<Box<str>>,
    pub stage: Stage,
    /// Recoveries under way (`websocket.recover`): what is broadcast to their room meanwhile
    /// is held here, to be queued after what the client missed.
    pub recovering: Vec<Recovering>,
}

/// One recovery under way: its room (None: the endpoint's broadcasts), and the broadcasts
/// held meanwhile with their offsets.
pub(super) struct Recovering {
    pub room: Option<Box<str>>,
    pub held: Vec<(u64, Message)>,
}

/// Whether an identified connection counts in presence and `send_to_user`: only while the
/// app serves it (a handshake it refuses never counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Stage {
    /// The handshake, `on_connect` included.
    #[default]
    Opening,
    /// Accepted: its handler runs.
    Serving,
    /// The conversation is over (closing, or closed).
    Over,
}

impl Membership {
    /// The user it counts for in presence now, if any.
    pub fn counted_user(&self) -> Option<&str> {
        self.user.as_deref().filter(|_| self.stage == Stage::Serving)
    }
}

struct Outbox {
    frames: VecDeque<Message>,
    capacity: usize,
    /// Payload bytes of the queued frames and of those the socket task took and has not
    /// handed to the WebSocket layer yet.
    bytes: usize,
    /// Bytes it holds before sends wait (one message more may go in while it is under).
    byte_capacity: usize,
    closing: Option<Closing>,
    /// A send was refused for lack of room; tell the loop thread when there is room again.
    want_writable: bool,
    /// The socket task has ended; nothing is sent any more.
    gone: bool,
    /// The handshake waits for the app's decision (`on_connect` runs before the 101).
    decision: Option<oneshot::Sender<Decision>>,
}

/// The server decided to close the connection.
#[derive(Clone)]
pub struct Closing {
    pub frame: CloseFrame,
    /// The interpreter side asked for it (so it knows); otherwise the socket task must tell it.
    pub by_app: bool,
}

impl Outbox {
    fn has_room(&self) -> bool {
        self.frames.len() < self.capacity && self.bytes < self.byte_capacity
    }

    fn push(&mut self, message: Message) {
        self.bytes += message.len();
        self.frames.push_back(message);
    }

    /// Drops what is queued (the server closes the connection on its own).
    fn clear(&mut self) {
        self.bytes -= self.frames.drain(..).map(|frame| frame.len()).sum::<usize>();
    }

    /// A sender waits for room and there is room now: it is told once.
    fn room_made(&mut self) -> bool {
        let made = self.want_writable && self.has_room();
        if made {
            self.want_writable = false;
        }
        made
    }
}

/// What the socket task takes from the link in one go.
pub struct Taken {
    /// The loop thread is waiting for room in the queue, and now has it.
    pub writable: bool,
    /// Close after the frames taken (handed over once every frame before it is taken).
    pub closing: Option<Closing>,
    /// A close is queued behind frames not taken yet.
    pub close_pending: bool,
}

/// How a connection is set up.
pub struct LinkSettings {
    pub key: ConnKey,
    pub id: u128,
    pub endpoint: usize,
    /// Frames the outbound queue holds.
    pub capacity: usize,
    /// Bytes it holds (one message more may go in while it is under).
    pub byte_capacity: usize,
    pub receive_limit: usize,
    /// Where the app's decision on the handshake goes, when it decides one.
    pub decision: Option<oneshot::Sender<Decision>>,
}

impl Link {
    pub fn new(settings: LinkSettings, registry: Arc<Registry>) -> Self {
        let LinkSettings { key, id, endpoint, capacity, byte_capacity, receive_limit, decision } = settings;
        Self {
            key,
            id,
            endpoint,
            registry,
            outbox: Mutex::new(Outbox {
                frames: VecDeque::new(),
                capacity,
                bytes: 0,
                byte_capacity,
                closing: None,
                want_writable: false,
                gone: false,
                decision,
            }),
            waker: AtomicWaker::new(),
            joined: AtomicBool::new(false),
            unreceived: AtomicUsize::new(0),
            receive_limit,
            membership: Mutex::new(Membership::default()),
        }
    }

    /// Its rooms and user.
    pub(super) fn membership(&self) -> MutexGuard<'_, Membership> {
        // Nothing panics while holding this lock.
        lock(&self.membership)
    }

    /// Holds a broadcast of `room` with its offset while a recovery of that room is under way;
    /// false when none is.
    pub(super) fn hold_if_recovering(&self, room: Option<&str>, offset: u64, message: &Message) -> bool {
        let mut membership = self.membership();
        let Some(recovery) = membership.recovering.iter_mut().find(|recovery| recovery.room.as_deref() == room) else {
            return false;
        };
        recovery.held.push((offset, message.clone()));
        true
    }

    /// Ends the recovery of `room`: queues `missed` (in order), then what was held meanwhile
    /// after `upto` (the rest was in `missed`), whatever the queue's capacity (a history is
    /// bounded). Answers how many of the missed it queued.
    pub(super) fn end_recovery(&self, room: Option<&str>, missed: Vec<(u64, Message)>, upto: u64) -> usize {
        // Held across the queueing, so no broadcast overtakes what was missed.
        let mut membership = self.membership();
        let held = match membership.recovering.iter().position(|recovery| recovery.room.as_deref() == room) {
            Some(found) => membership.recovering.swap_remove(found).held,
            None => Vec::new(),
        };
        let count = missed.len();
        self.queue_past_capacity(missed.into_iter().chain(held.into_iter().filter(|(offset, _)| *offset > upto)));
        drop(membership);
        count
    }

    /// Starts holding the broadcasts of `room` for a recovery.
    pub(super) fn begin_recovery(&self, room: Option<&str>) {
        self.membership().recovering.push(Recovering { room: room.map(Into::into), held: Vec::new() });
    }

    /// Queues frames whatever the queue's capacity (unless the connection is closing).
    pub(super) fn queue_past_capacity(&self, frames: impl Iterator<Item = (u64, Message)>) {
        let mut outbox = self.outbox();
        if outbox.gone || outbox.closing.is_some() {
            return;
        }
        for (_, message) in frames {
            outbox.push(message);
        }
        drop(outbox);
        self.wake_task();
    }

    /// The endpoint's broadcasts reach this connection from now on (a recovery of them in
    /// `on_connect`, before the handler runs).
    pub(super) fn open_broadcasts(&self) {
        self.joined.store(true, Ordering::Release);
    }

    /// Wakes the socket task (from the loop thread in one-thread mode: when it next runs the
    /// network side; see `pyhost::wake`).
    fn wake_task(&self) {
        if let Some(waker) = self.waker.take() {
            pyhost::wake::wake(waker);
        }
    }

    /// A message of `bytes` went to the handler's side.
    pub fn received(&self, bytes: usize) {
        self.unreceived.fetch_add(bytes, Ordering::AcqRel);
    }

    /// The handler is this far behind: stop reading from the client for now.
    pub fn receive_full(&self) -> bool {
        self.unreceived.load(Ordering::Acquire) >= self.receive_limit
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // Nothing panics while holding this lock; a poisoned lock still holds a whole queue.
        lock(&self.outbox)
    }

    pub fn is_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    /// Registers the socket task's waker, then moves the queued frames into `into` if it is
    /// empty. Taking a new batch only once the last one is in the socket keeps the queue's
    /// bound real: while the client reads slowly, the queue stays full and `send_*` waits.
    /// The frames taken still count toward the bytes the queue holds until the task says it
    /// `handed` them to the WebSocket layer (at its next take: one lock for both).
    pub fn take(&self, waker: &std::task::Waker, into: &mut VecDeque<Message>, handed: usize) -> Taken {
        self.waker.register(waker);
        let mut outbox = self.outbox();
        outbox.bytes = outbox.bytes.saturating_sub(handed);
        if into.is_empty() {
            into.append(&mut outbox.frames);
        }
        // Room was made: tell a waiting sender. Otherwise the flag waits for more room.
        let writable = outbox.room_made();
        let closing = if outbox.frames.is_empty() { outbox.closing.take() } else { None };
        Taken { writable, closing, close_pending: outbox.closing.is_some() }
    }

    /// A frame for this connection that no sender waits for (a broadcast, `send_to`). A client
    /// whose queue is full (in frames or bytes) is not waited for: its queue is dropped and it
    /// is closed with 1013, so no other client loses a message to it and no memory is held
    /// for it. Answers whether the frame was queued.
    pub fn offer(&self, message: Message) -> bool {
        let mut outbox = self.outbox();
        if outbox.gone || outbox.closing.is_some() {
            return false;
        }
        let queued = outbox.has_room();
        if queued {
            outbox.push(message);
        } else {
            outbox.clear();
            outbox.closing =
                Some(Closing { frame: close_frame(close_code::TRY_AGAIN_LATER, reason::SLOW_CONSUMER), by_app: false });
            self.joined.store(false, Ordering::Release);
            self.registry.metrics.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
        }
        drop(outbox);
        self.wake_task();
        queued
    }

    /// The server closes the connection on its own (shutdown grace period over, say); what
    /// was still queued is dropped.
    pub fn force_close(&self, code: u16, reason: &str) {
        let mut outbox = self.outbox();
        if outbox.gone || outbox.closing.is_some() {
            return;
        }
        outbox.clear();
        outbox.closing = Some(Closing { frame: close_frame(code, reason), by_app: false });
        drop(outbox);
        self.joined.store(false, Ordering::Release);
        self.wake_task();
    }

    /// The socket task has ended: later sends are refused.
    pub fn set_gone(&self) {
        self.outbox().gone = true;
        self.joined.store(false, Ordering::Release);
    }
}

pub fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame { code: code.into(), reason: Utf8Bytes::from(reason) }
}

pub fn message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => Message::Text(Utf8Bytes::from(text)),
        Frame::Binary(bytes) => Message::Binary(bytes),
    }
}

impl NetworkLink for Link {
    fn send(&self, frame: Frame) -> Result<(), (SendError, Frame)> {
        let mut outbox = self.outbox();
        if outbox.gone || outbox.closing.is_some() {
            return Err((SendError::Gone, frame));
        }
        if !outbox.has_room() {
            // Set under the same lock the socket task takes the queue with, so the room it
            // makes next is always reported.
            outbox.want_writable = true;
            return Err((SendError::Full, frame));
        }
        outbox.push(message(frame));
        drop(outbox);
        self.wake_task();
        Ok(())
    }

    fn broadcast(&self, frame: Frame, room: Option<&str>, exclude_self: bool) {
        let except = exclude_self.then_some(self.key);
        self.registry.broadcast(self.endpoint, room, &message(frame), except);
    }

    fn join(&self) {
        self.joined.store(true, Ordering::Release);
        self.registry.set_stage(self, Stage::Serving);
    }

    fn leave(&self) {
        self.joined.store(false, Ordering::Release);
        self.registry.set_stage(self, Stage::Over);
    }

    fn join_room(&self, room: &str) {
        self.registry.join_room(self, room);
    }

    fn leave_room(&self, room: &str) {
        self.registry.leave_room(self, room);
    }

    fn identify(&self, user: &str) {
        self.registry.identify(self, user);
    }

    fn presence(&self, room: Option<&str>) -> Vec<(String, u32)> {
        self.registry.present(self.endpoint, room)
    }

    fn recover(&self, room: Option<&str>, epoch: &str, since: u64, token: Token) -> Now<Recovered> {
        // The registry's handle on this link (the same one), which a later answer needs.
        let Some(me) = self.registry.link_of(self) else {
            return Some(Err("the connection has ended".to_owned()));
        };
        self.registry.recover(&me, room, epoch, since, token)
    }

    fn endpoint(&self) -> usize {
        self.endpoint
    }

    fn rooms(&self) -> Vec<String> {
        self.membership().rooms.iter().map(ToString::to_string).collect()
    }

    fn decide(&self, decision: Decision) {
        if let Some(waiting) = self.outbox().decision.take() {
            // The handshake may have given up (the client left, the wait timed out).
            let _ = waiting.send(decision);
        }
    }

    fn consumed(&self, bytes: usize) {
        let before = self.unreceived.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.receive_limit && before - bytes < self.receive_limit {
            // The socket task paused reading; it can go on.
            self.wake_task();
        }
    }

    fn close(&self, code: u16, reason: &str, last: Vec<Frame>) {
        let mut outbox = self.outbox();
        if outbox.gone || outbox.closing.is_some() {
            return;
        }
        if let Some(waiting) = outbox.decision.take() {
            // Closing a connection whose handshake still waits: upgrade it, so the client gets
            // what was queued and the Close frame (a browser cannot read an HTTP status).
            let _ = waiting.send(Decision::Accept);
        }
        for frame in last {
            outbox.push(message(frame));
        }
        outbox.closing = Some(Closing { frame: close_frame(code, reason), by_app: true });
        drop(outbox);
        self.joined.store(false, Ordering::Release);
        self.wake_task();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn settings(key: ConnKey, capacity: usize) -> LinkSettings {
        LinkSettings {
            key,
            id: u128::from(key),
            endpoint: 0,
            capacity,
            byte_capacity: 1 << 20,
            receive_limit: 1024,
            decision: None,
        }
    }

    fn link(capacity: usize) -> Arc<Link> {
        let registry =
            Arc::new(Registry::new(vec!["/a".into()], crate::ws::registry::node::Node::random(), usize::MAX));
        let link = Arc::new(Link::new(settings(1, capacity), registry.clone()));
        registry.insert(&link);
        link
    }

    fn text(s: &str) -> Frame {
        Frame::Text(s.to_owned())
    }

    fn drain(link: &Link) -> (Vec<String>, Taken) {
        let mut frames = VecDeque::new();
        let taken = link.take(Waker::noop(), &mut frames, 0);
        let texts = frames.into_iter().map(|m| m.into_text().unwrap().to_string()).collect();
        (texts, taken)
    }

    #[test]
    fn a_new_batch_is_taken_only_once_the_last_one_is_written() {
        let link = link(2);
        link.send(text("a")).unwrap();
        let mut written = VecDeque::new();
        link.take(Waker::noop(), &mut written, 0);
        link.send(text("b")).unwrap();
        link.send(text("c")).unwrap();
        assert_eq!(link.send(text("d")).unwrap_err().0, SendError::Full);
        let taken = link.take(Waker::noop(), &mut written, 0);
        assert_eq!(written.len(), 1, "\"a\" is not in the socket yet: nothing more is taken");
        assert!(!taken.writable, "no room was made");
        written.clear();
        let taken = link.take(Waker::noop(), &mut written, 0);
        assert_eq!(written.len(), 2);
        assert!(taken.writable);
    }

    #[test]
    fn an_apps_close_comes_after_everything_it_queued_before() {
        let link = link(2);
        link.send(text("a")).unwrap();
        let mut written = VecDeque::new();
        link.take(Waker::noop(), &mut written, 0);
        link.close(close_code::NORMAL, "", vec![text("farewell")]);
        let taken = link.take(Waker::noop(), &mut written, 0);
        assert!(taken.closing.is_none() && taken.close_pending, "\"farewell\" is not taken yet");
        written.clear();
        let taken = link.take(Waker::noop(), &mut written, 0);
        assert_eq!(written.len(), 1);
        assert!(taken.closing.is_some() && !taken.close_pending);
    }

    #[test]
    fn a_full_queue_refuses_then_reports_room() {
        let link = link(2);
        link.send(text("a")).unwrap();
        link.send(text("b")).unwrap();
        let (error, frame) = link.send(text("c")).unwrap_err();
        assert_eq!(error, SendError::Full);
        assert!(matches!(frame, Frame::Text(ref t) if t == "c"), "the refused frame is handed back");
        let (texts, taken) = drain(&link);
        assert_eq!(texts, ["a", "b"]);
        assert!(taken.writable);
        assert!(!drain(&link).1.writable, "room is reported once");
    }

    #[test]
    fn close_queues_the_last_frames_past_capacity_then_refuses_sends() {
        let link = link(1);
        link.send(text("a")).unwrap();
        link.close(close_code::NORMAL, "", vec![text("bye")]);
        assert_eq!(link.send(text("late")).unwrap_err().0, SendError::Gone);
        let (texts, taken) = drain(&link);
        assert_eq!(texts, ["a", "bye"]);
        let closing = taken.closing.unwrap();
        assert_eq!(u16::from(closing.frame.code), close_code::NORMAL);
        assert!(closing.by_app);
    }

    #[test]
    fn broadcast_reaches_joined_links_only_and_drops_a_slow_one() {
        let registry =
            Arc::new(Registry::new(vec!["/a".into()], crate::ws::registry::node::Node::random(), usize::MAX));
        let fast = Arc::new(Link::new(settings(1, 4), registry.clone()));
        let slow = Arc::new(Link::new(settings(2, 1), registry.clone()));
        let outside = Arc::new(Link::new(settings(3, 4), registry.clone()));
        for link in [&fast, &slow, &outside] {
            registry.insert(link);
        }
        fast.join();
        slow.join();
        fast.broadcast(text("one"), None, false);
        fast.broadcast(text("two"), None, false);
        assert_eq!(drain(&fast).0, ["one", "two"]);
        assert!(drain(&outside).0.is_empty(), "not joined: no broadcasts");
        let (texts, taken) = drain(&slow);
        assert!(texts.is_empty(), "a slow consumer's queue is dropped");
        let closing = taken.closing.unwrap();
        assert_eq!(u16::from(closing.frame.code), close_code::TRY_AGAIN_LATER);
        assert!(!closing.by_app);
        assert!(!slow.is_joined());
    }

    #[test]
    fn reading_pauses_past_the_receive_limit_and_resumes_once_consumed() {
        let link = link(4);
        link.received(1000);
        assert!(!link.receive_full());
        link.received(100);
        assert!(link.receive_full());
        link.consumed(100);
        assert!(!link.receive_full());
        link.consumed(1000);
        assert_eq!(link.unreceived.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_until_they_are_handed_to_the_layer() {
        let registry =
            Arc::new(Registry::new(vec!["/a".into()], crate::ws::registry::node::Node::random(), usize::MAX));
        let link = Link::new(LinkSettings { byte_capacity: 10, ..settings(1, 100) }, registry);
        link.send(text("12345678")).unwrap();
        link.send(text("one message more goes in while under the bound")).unwrap();
        assert_eq!(link.send(text("x")).unwrap_err().0, SendError::Full);
        let mut taken = VecDeque::new();
        assert!(!link.take(Waker::noop(), &mut taken, 0).writable, "taken, but not in the socket yet");
        assert_eq!(taken.len(), 2);
        assert!(!link.take(Waker::noop(), &mut taken, 8).writable, "still over the bound");
        assert!(link.take(Waker::noop(), &mut taken, 46).writable, "room: the waiting sender is told");
        assert!(!link.take(Waker::noop(), &mut taken, 0).writable, "once");
        link.send(text("x")).unwrap();
    }

    #[test]
    fn an_offer_over_the_byte_bound_closes_the_slow_consumer_and_frees_its_queue() {
        let registry =
            Arc::new(Registry::new(vec!["/a".into()], crate::ws::registry::node::Node::random(), usize::MAX));
        let link = Link::new(LinkSettings { byte_capacity: 4, ..settings(1, 100) }, registry);
        assert!(link.offer(message(Frame::Binary(bytes::Bytes::from_static(b"a big one")))));
        assert!(!link.offer(message(text("y"))), "over the bound: refused");
        assert_eq!(link.outbox().bytes, 0, "the queue was dropped");
        let (texts, taken) = drain(&link);
        assert!(texts.is_empty());
        assert_eq!(u16::from(taken.closing.unwrap().frame.code), close_code::TRY_AGAIN_LATER);
    }

    #[test]
    fn a_gone_link_refuses_everything() {
        let link = link(4);
        link.set_gone();
        assert_eq!(link.send(text("x")).unwrap_err().0, SendError::Gone);
        link.offer(message(text("y")));
        assert!(drain(&link).0.is_empty());
    }
}
