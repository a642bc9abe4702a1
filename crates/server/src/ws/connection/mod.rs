//! One task per connection, driving its socket in both directions from a single poll
//! function: messages read go to the bridge in one batch per wake-up, frames the link queued
//! are written as a batch and flushed once. One task (instead of a reader and a writer) keeps
//! an idle connection small and needs no lock around the socket. How the connection ends is
//! [`lifecycle`]'s to decide; this module does the I/O.

mod keepalive;
mod lifecycle;
mod opened;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use pyhost::bridge::{Event, Inbound};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Message;

use self::keepalive::{Verdict, Watch};
use self::lifecycle::{Happening, Lifecycle, SocketPhase};
pub use self::opened::Opened;
use self::opened::{Access, Parts};
use crate::admission::Place;
use crate::config::CLOSE_TIMEOUT;
use crate::metrics::Metrics;
use crate::ws::Shared;
use crate::ws::registry::{Closing, Link};
use crate::ws::socket::{Socket, SocketError};

/// Messages read per wake-up before the task yields, so one flooding client cannot hold a
/// worker thread.
const READ_BUDGET: usize = 64;

/// Serves one upgraded connection until it is closed.
pub async fn serve(opened: Opened, socket: impl Socket) {
    let Parts { state, link, place, access } = opened.into_parts();
    let mut task = SocketTask {
        keepalive: state.limits.keepalive.map(Watch::new),
        state,
        link,
        socket,
        outgoing: VecDeque::new(),
        events: Vec::new(),
        lifecycle: Lifecycle::new(),
        close_timer: None,
        unflushed: false,
        behind: Behind::default(),
        access,
        tally: Tally::default(),
        _place: place,
    };
    poll_fn(|cx| task.poll(cx)).await;
}

struct SocketTask<S> {
    state: Arc<Shared>,
    link: Arc<Link>,
    socket: S,
    keepalive: Option<Watch>,
    /// Frames taken from the link, not yet handed to the socket.
    outgoing: VecDeque<Message>,
    /// Events for the bridge, pushed together at the end of each poll (unallocated between).
    events: Vec<Event>,
    lifecycle: Lifecycle,
    /// Runs from the moment the server decides to close, or the client did.
    close_timer: Option<Pin<Box<Sleep>>>,
    /// Frames went into the layer since the last flush. (An I/O fact, not a phase.)
    unflushed: bool,
    /// What the client has not taken yet of what is on its way to it.
    behind: Behind,
    /// For the access log line at the end, when access lines are logged.
    access: Option<Box<Access>>,
    /// Messages and bytes since the last poll, added to the metrics once per poll.
    tally: Tally,
    /// Given back when the task is dropped.
    _place: Place,
}

/// Cleanup that cannot be skipped: however the task ends (returned, cancelled, or a panic
/// inside a WebSocket layer), the interpreter side gets the connection's last event and the
/// registry forgets it.
impl<S> Drop for SocketTask<S> {
    fn drop(&mut self) {
        if let Some((code, reason)) = self.lifecycle.last_word() {
            self.events.push(Event::Conn(self.link.key, Inbound::Disconnected { code, reason }));
        }
        self.state.bridge.push_all(&mut self.events);
        self.link.set_gone();
        self.state.registry.remove(&self.link);
        self.tally.add_to(&self.state.registry.metrics);
        self.state.registry.metrics.closed(self.lifecycle.close_code());
        if let Some(access) = &self.access {
            access.log(&self.state, self.lifecycle.close_code());
        }
    }
}

/// How far a client is behind in reading what the server writes to it. While it is too far
/// behind (the bytes on their way to it, or a pong it has not taken yet) the server does not
/// read from it either: a client that sends and never reads cannot make the server hold more
/// than a bound, pongs included (RFC 6455 section 5.5.3 lets an endpoint answer only the most
/// recent ping, so one owed at a time is enough).
#[derive(Default)]
struct Behind {
    /// Taken from the link, not yet handed to the WebSocket layer.
    taken: usize,
    /// Handed to the layer, not yet reported to the link (at its next take, which then makes
    /// room for a waiting sender).
    handed: usize,
    /// Handed to the layer since its last complete flush.
    in_layer: usize,
    /// A ping was read, and the flush that writes its pong has not completed.
    pong_owed: bool,
}

impl Behind {
    fn too_far(&self, limit: usize) -> bool {
        self.pong_owed || self.taken + self.in_layer >= limit
    }

    /// Everything handed to the layer is in the socket.
    fn flushed(&mut self) {
        self.in_layer = 0;
        self.pong_owed = false;
    }
}

/// Why a read burst stopped.
#[derive(PartialEq, Eq)]
enum ReadEnd {
    /// Nothing more to read now, or no more reading (the task is woken when there is).
    Done,
    /// A ping: its pong goes out before anything more is read.
    Pinged,
}

impl<S: Socket> SocketTask<S> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let held_back = self.held_back();
        let mut pinged = false;
        if self.lifecycle.reads() && !held_back {
            pinged = self.read(cx) == ReadEnd::Pinged;
        }
        if *self.lifecycle.phase() == SocketPhase::Open {
            self.watch(cx);
        }
        if let Poll::Ready(Err(error)) = self.write(cx) {
            tracing::debug!(key = self.link.key, %error, "connection write failed");
            self.happen(Happening::WriteFailed);
        }
        if *self.lifecycle.phase() == SocketPhase::Lingering
            && !self.unflushed
            && self.socket.poll_linger(cx).is_ready()
        {
            self.happen(Happening::Lingered);
        }
        if self.poll_close_timer(cx).is_ready() {
            self.happen(Happening::TimedOut);
        }
        if (held_back || pinged) && !self.held_back() && self.lifecycle.reads() {
            // The writes caught up in this poll (the pong is out): read again, as nothing else
            // would wake the task for what is already read ahead.
            cx.waker().wake_by_ref();
        }
        if !self.events.is_empty() {
            // The vector goes with its events: an idle connection keeps no buffer for them.
            self.state.bridge.push_all(&mut std::mem::take(&mut self.events));
        }
        self.tally.add_to(&self.state.registry.metrics);
        if *self.lifecycle.phase() == SocketPhase::Ended { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Reading waits for the client to take what is on its way to it.
    fn held_back(&self) -> bool {
        self.behind.too_far(self.state.limits.send_queue_bytes)
    }

    /// Reports a happening to the lifecycle and does what it says.
    fn happen(&mut self, happening: Happening) {
        let before = self.lifecycle.phase().clone();
        tracing::trace!(key = self.link.key, ?happening, "connection event");
        let outcome = self.lifecycle.on(happening);
        if *self.lifecycle.phase() != before {
            tracing::trace!(key = self.link.key, phase = ?self.lifecycle.phase(), "connection phase");
        }
        if let Some((code, reason)) = outcome.tell {
            self.events.push(Event::Conn(self.link.key, Inbound::Disconnected { code, reason }));
        }
        if outcome.stop_sending {
            self.outgoing.clear();
            self.behind.taken = 0;
            self.link.set_gone();
        }
    }

    fn read(&mut self, cx: &mut Context<'_>) -> ReadEnd {
        for _ in 0..READ_BUDGET {
            if !self.lifecycle.reads() {
                return ReadEnd::Done;
            }
            if self.lifecycle.delivers() && self.link.receive_full() {
                // The handler is behind: leave the client's data in the socket (TCP pushes
                // back on it) until the link wakes us after the handler caught up.
                return ReadEnd::Done;
            }
            let message = match Pin::new(&mut self.socket).poll_next(cx) {
                Poll::Pending => return ReadEnd::Done,
                Poll::Ready(None) => {
                    self.happen(Happening::StreamEnded);
                    return ReadEnd::Done;
                }
                Poll::Ready(Some(Err(failure))) => {
                    tracing::debug!(key = self.link.key, %failure, "connection read failed");
                    let SocketError { code, close_queued, .. } = failure;
                    self.happen(Happening::ReadFailed { code, close_queued });
                    return ReadEnd::Done;
                }
                Poll::Ready(Some(Ok(message))) => message,
            };
            if let Some(watch) = &mut self.keepalive {
                watch.heard();
            }
            match message {
                Message::Text(text) => self.deliver(text.len(), Inbound::Text(text.into())),
                Message::Binary(bytes) => self.deliver(bytes.len(), Inbound::Binary(bytes)),
                // The WebSocket layer answers pings itself; the answer goes out with the flush
                // that follows this read, and nothing more is read until it is out.
                Message::Ping(_) => {
                    self.unflushed = true;
                    self.behind.pong_owed = true;
                    return ReadEnd::Pinged;
                }
                Message::Pong(_) => {}
                Message::Close(frame) => self.happen(Happening::PeerClosed(frame)),
                // Only produced when writing raw frames, never by reading.
                Message::Frame(_) => {}
            }
        }
        // Budget spent with messages still coming: run again after others had their turn.
        cx.waker().wake_by_ref();
        ReadEnd::Done
    }

    fn deliver(&mut self, bytes: usize, inbound: Inbound) {
        self.tally.messages_in += 1;
        self.tally.bytes_in += bytes as u64;
        if let Some(access) = &mut self.access {
            access.received += 1;
        }
        if self.lifecycle.delivers() {
            self.link.received(bytes);
            self.events.push(Event::Conn(self.link.key, inbound));
        }
    }

    /// Keep-alive: ping a silent client, drop one that does not answer.
    fn watch(&mut self, cx: &mut Context<'_>) {
        // A client the server stopped reading from is not judged by its silence.
        let paused = self.link.receive_full() || self.held_back();
        let Some(watch) = &mut self.keepalive else { return };
        match watch.poll(cx, paused) {
            Verdict::Quiet => {}
            Verdict::SendPing => self.outgoing.push_back(Message::Ping(Bytes::new())),
            Verdict::Gone => {
                tracing::debug!(key = self.link.key, "client did not answer a keep-alive ping: dropping it");
                self.happen(Happening::KeepaliveLost);
            }
        }
    }

    /// Takes the next batch of frames from the link (when the last is in the socket) and
    /// whatever it says about room and closing; answers whether it took any frames.
    fn refill(&mut self, cx: &mut Context<'_>) -> bool {
        let before = self.outgoing.len();
        let taken = self.link.take(cx.waker(), &mut self.outgoing, std::mem::take(&mut self.behind.handed));
        self.behind.taken += self.outgoing.iter().skip(before).map(Message::len).sum::<usize>();
        if taken.writable && self.lifecycle.delivers() {
            self.events.push(Event::Conn(self.link.key, Inbound::Writable));
        }
        if taken.close_pending {
            self.start_close_timer();
        }
        if let Some(Closing { frame, by_app }) = taken.closing {
            // The app's close comes after what it queued before (on_close's message); the
            // server's own (slow consumer, shutdown) at once.
            self.happen(if by_app { Happening::AppCloses(frame) } else { Happening::ServerCloses(frame) });
        }
        self.outgoing.len() > before
    }

    /// Writes what the phase has to say, then flushes as the phase wants it flushed.
    fn write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        if *self.lifecycle.phase() == SocketPhase::Open {
            self.refill(cx);
        }
        if matches!(self.lifecycle.phase(), SocketPhase::Open | SocketPhase::Closing { .. }) {
            ready!(self.send_queued(cx))?;
        }
        if let Some(frame) = self.lifecycle.close_due() {
            let close = Message::Close(Some(frame.clone()));
            ready!(Pin::new(&mut self.socket).poll_ready(cx))?;
            Pin::new(&mut self.socket).start_send(close)?;
            self.unflushed = true;
            self.happen(Happening::CloseWritten);
        }
        match self.lifecycle.phase() {
            SocketPhase::Ended => {}
            // Nothing more is said: push out only what was written, never what a layer would
            // add on its own (yawc answers every Close frame, even the answer to ours).
            SocketPhase::Lingering if self.unflushed => {
                ready!(Pin::new(&mut self.socket).poll_flush(cx))?;
                self.unflushed = false;
                self.behind.flushed();
            }
            SocketPhase::Lingering => {}
            // The layer owes the client its answer (to the Close, or the one it queued after
            // a protocol error).
            SocketPhase::Answering | SocketPhase::Failing { .. } => {
                ready!(self.socket.poll_flush_owed(cx))?;
                self.unflushed = false;
                self.behind.flushed();
                self.happen(Happening::Flushed);
            }
            SocketPhase::Open | SocketPhase::Closing { .. } | SocketPhase::CloseSent if self.unflushed => {
                ready!(self.socket.poll_flush_owed(cx))?;
                self.unflushed = false;
                self.behind.flushed();
            }
            SocketPhase::Open | SocketPhase::Closing { .. } | SocketPhase::CloseSent => {}
        }
        Poll::Ready(Ok(()))
    }

    /// Hands the queued frames to the layer, taking the link's next batch as each is done;
    /// ready once everything is in.
    fn send_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        loop {
            let Some(next) = self.outgoing.pop_front() else {
                if *self.lifecycle.phase() == SocketPhase::Open && self.refill(cx) {
                    continue;
                }
                return Poll::Ready(Ok(()));
            };
            match Pin::new(&mut self.socket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    self.outgoing.push_front(next);
                    return Poll::Pending;
                }
            }
            let bytes = next.len();
            if let Message::Text(_) | Message::Binary(_) = &next {
                self.tally.messages_out += 1;
                self.tally.bytes_out += bytes as u64;
                if let Some(access) = &mut self.access {
                    access.sent += 1;
                }
            }
            self.behind.taken = self.behind.taken.saturating_sub(bytes);
            self.behind.handed += bytes;
            self.behind.in_layer += bytes;
            Pin::new(&mut self.socket).start_send(next)?;
            self.unflushed = true;
        }
    }

    fn start_close_timer(&mut self) {
        if self.close_timer.is_none() {
            self.close_timer = Some(Box::pin(tokio::time::sleep(CLOSE_TIMEOUT)));
        }
    }

    /// Ready once the close timeout has run out. The timer runs from the moment the server
    /// decides to close (a close queued behind frames counts) or the client did.
    fn poll_close_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.lifecycle.phase() {
            SocketPhase::Ended => return Poll::Pending,
            SocketPhase::Open => {}
            _ => self.start_close_timer(),
        }
        self.close_timer.as_mut().map_or(Poll::Pending, |timer| timer.as_mut().poll(cx))
    }
}

/// What a connection counted since it last added to the metrics: shared counters are touched
/// once per poll, not once per message.
#[derive(Default)]
struct Tally {
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
}

impl Tally {
    fn add_to(&mut self, metrics: &Metrics) {
        if self.messages_in == 0 && self.messages_out == 0 {
            return;
        }
        let Tally { messages_in, bytes_in, messages_out, bytes_out } = std::mem::take(self);
        metrics.messages_in.fetch_add(messages_in, Ordering::Relaxed);
        metrics.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        metrics.messages_out.fetch_add(messages_out, Ordering::Relaxed);
        metrics.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }
}
