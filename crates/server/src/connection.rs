//! One task per connection, driving its socket in both directions from a single poll
//! function: messages read go to the bridge in one batch per wake-up, frames the link queued
//! are written as a batch and flushed once. One task (instead of a reader and a writer) keeps
//! an idle connection small and needs no lock around the socket.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use pyhost::bridge::{Event, Inbound, Opening};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::keepalive::{Verdict, Watch};
use crate::link::{Closing, Link, close_frame};
use crate::state::{ServerState, Slot};

/// A WebSocket as the connection task drives it: `plain::PlainSocket` (tungstenite) or
/// `deflate::DeflateSocket` (yawc).
pub trait Socket:
    Stream<Item = Result<Message, SocketError>> + Sink<Message, Error = SocketError> + Unpin + Send
{
    /// Once the conversation is over (the server failed the connection and its Close frame
    /// is out, or the client's stream ended and the answer is out): read and drop what the
    /// client still sends until it closes, so the client's unread bytes do not turn our
    /// Close frame into a TCP reset. Ready when the client has closed (or where the layer
    /// cannot reach its stream).
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A failed read or write, as the connection task needs to know it.
#[derive(Debug)]
pub struct SocketError {
    /// The close code that matches (RFC 6455 section 7.4.1); 1006 when the connection itself
    /// is gone and no Close frame can be sent.
    pub code: u16,
    /// The WebSocket layer has already queued its Close frame with `code`.
    pub close_queued: bool,
    pub detail: String,
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (close code {})", self.detail, self.code)
    }
}

/// How long to wait for the client's answer to our Close frame before dropping the socket.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages read per wake-up before the task yields, so one flooding client cannot hold a
/// worker thread.
const READ_BUDGET: usize = 64;

/// Serves one upgraded connection until it is closed; `slot` is its place among
/// `--max-connections`, given back when it ends.
pub async fn serve(
    state: Arc<ServerState>,
    endpoint: usize,
    socket: impl Socket,
    query: Vec<(String, String)>,
    slot: Slot,
) {
    let key = state.next_key();
    let limits = &state.limits;
    let link = Arc::new(Link::new(key, endpoint, state.registry.clone(), limits.send_queue, limits.receive_buffer));
    state.registry.insert(&link);
    let opening = Opening { endpoint, id: uuid::Uuid::new_v4().to_string(), query, peer: link.clone() };
    state.bridge.push(Event::Conn(key, Inbound::Open(Box::new(opening))));

    let mut driver = Driver {
        state: state.clone(),
        link: link.clone(),
        socket,
        keepalive: limits.keepalive.map(Watch::new),
        outgoing: VecDeque::new(),
        events: Vec::new(),
        closing: None,
        close_sent: false,
        close_timer: None,
        unflushed: false,
        python_told: false,
        disconnect_sent: false,
        read_failed: false,
        ended: false,
        peer_closed: false,
    };
    poll_fn(|cx| driver.poll(cx)).await;
    driver.tell_python(1006, "");
    if !driver.disconnect_sent {
        // The app closed it, so the handler knew; the interpreter side still needs the final
        // event to forget the connection.
        driver.push_disconnected(1000, "");
    }
    state.bridge.push_all(&mut driver.events);
    link.set_gone();
    state.registry.remove(&link);
    drop(slot);
}

struct Driver<S> {
    state: Arc<ServerState>,
    link: Arc<Link>,
    socket: S,
    keepalive: Option<Watch>,
    /// Frames taken from the link, not yet handed to the socket.
    outgoing: VecDeque<Message>,
    /// Events for the bridge, pushed together at the end of each poll.
    events: Vec<Event>,
    /// The Close frame to send once `outgoing` is written.
    closing: Option<CloseFrame>,
    close_sent: bool,
    close_timer: Option<Pin<Box<Sleep>>>,
    unflushed: bool,
    /// The interpreter side knows this connection is over (`Inbound::Disconnected` queued, or
    /// it asked for the close itself). No messages are reported after that.
    python_told: bool,
    /// `Inbound::Disconnected` was queued: it is always a connection's last event, exactly once.
    disconnect_sent: bool,
    /// Reading hit a protocol error: only the Close frame is still written, then the client's
    /// remaining input is drained.
    read_failed: bool,
    /// The client sent its Close frame: only the WebSocket layer's answer is still written.
    peer_closed: bool,
    /// The client's WebSocket stream ended (after its Close frame, or a bare FIN): once the
    /// answer is written, its remaining input is drained before the socket closes.
    ended: bool,
}

enum Step {
    Continue,
    Done,
}

impl<S: Socket> Driver<S> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut step = self.read(cx);
        if let Step::Continue = step {
            step = self.watch(cx);
        }
        if let Step::Continue = step {
            step = self.write(cx);
        }
        self.state.bridge.push_all(&mut self.events);
        let timed_out = self.close_timer.as_mut().is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        match step {
            Step::Done => Poll::Ready(()),
            Step::Continue if timed_out => Poll::Ready(()),
            Step::Continue => Poll::Pending,
        }
    }

    fn read(&mut self, cx: &mut Context<'_>) -> Step {
        if self.read_failed || self.ended {
            return Step::Continue;
        }
        for _ in 0..READ_BUDGET {
            if self.link.receive_full() && !self.python_told {
                // The handler is behind: leave the client's data in the socket (TCP pushes
                // back on it) until the link wakes us after the handler caught up.
                return Step::Continue;
            }
            let message = match Pin::new(&mut self.socket).poll_next(cx) {
                Poll::Pending => return Step::Continue,
                Poll::Ready(None) => {
                    self.ended = true;
                    self.start_close_timer();
                    return Step::Continue;
                }
                Poll::Ready(Some(Err(error))) => return self.read_error(&error),
                Poll::Ready(Some(Ok(message))) => message,
            };
            if let Some(watch) = &mut self.keepalive {
                watch.heard();
            }
            match message {
                Message::Text(text) => self.deliver(text.len(), Inbound::Text(text.into())),
                Message::Binary(bytes) => self.deliver(bytes.len(), Inbound::Binary(bytes)),
                // The WebSocket layer answers pings itself; the answer goes out with the next
                // flush.
                Message::Ping(_) | Message::Pong(_) => self.unflushed = true,
                Message::Close(frame) => self.peer_closed(frame),
                // Only produced when writing raw frames, never by reading.
                Message::Frame(_) => {}
            }
        }
        // Budget spent with messages still coming: run again after others had their turn.
        cx.waker().wake_by_ref();
        Step::Continue
    }

    fn deliver(&mut self, bytes: usize, inbound: Inbound) {
        if !self.python_told {
            self.link.received(bytes);
            self.events.push(Event::Conn(self.link.key, inbound));
        }
    }

    fn peer_closed(&mut self, frame: Option<CloseFrame>) {
        let (code, reason) = frame.map_or((1005, String::new()), |f| (f.code.into(), f.reason.to_string()));
        self.tell_python(code, &reason);
        // Frames still queued can no longer be sent; the layer has queued its answer to the
        // Close, which goes out with the next flush. Then the stream ends.
        self.peer_closed = true;
        self.link.set_gone();
        self.outgoing.clear();
        self.closing = None;
        self.unflushed = true;
    }

    fn read_error(&mut self, failure: &SocketError) -> Step {
        tracing::debug!(key = self.link.key, %failure, "connection read failed");
        if failure.code == 1006 {
            return Step::Done;
        }
        // The client broke the protocol: tell it why in a Close frame, then drop it.
        self.read_failed = true;
        self.tell_python(failure.code, "");
        self.outgoing.clear();
        if failure.close_queued {
            // The WebSocket layer queued that Close itself; it only needs flushing.
            self.close_sent = true;
            self.unflushed = true;
        } else if self.closing.is_none() && !self.close_sent {
            self.closing = Some(close_frame(failure.code, ""));
        }
        self.start_close_timer();
        Step::Continue
    }

    /// Keep-alive: ping a silent client, drop one that does not answer.
    fn watch(&mut self, cx: &mut Context<'_>) -> Step {
        if self.close_sent || self.peer_closed || self.read_failed {
            return Step::Continue;
        }
        let Some(watch) = &mut self.keepalive else { return Step::Continue };
        match watch.poll(cx, self.link.receive_full()) {
            Verdict::Quiet => Step::Continue,
            Verdict::SendPing => {
                self.outgoing.push_back(Message::Ping(bytes::Bytes::new()));
                Step::Continue
            }
            Verdict::Gone => {
                tracing::debug!(key = self.link.key, "client did not answer a keep-alive ping: dropping it");
                self.tell_python(1006, "keepalive ping timeout");
                // One attempt at a Close frame; an unresponsive client gets no more time.
                let close = Message::Close(Some(close_frame(1011, "keepalive ping timeout")));
                if let Poll::Ready(Ok(())) = Pin::new(&mut self.socket).poll_ready(cx)
                    && Pin::new(&mut self.socket).start_send(close).is_ok()
                {
                    let _ = Pin::new(&mut self.socket).poll_flush(cx);
                }
                Step::Done
            }
        }
    }

    /// Takes the next batch of frames from the link (when the last is in the socket) and
    /// whatever it says about room and closing; answers whether it took any frames.
    fn refill(&mut self, cx: &mut Context<'_>) -> bool {
        if self.close_sent || self.peer_closed {
            return false;
        }
        let before = self.outgoing.len();
        let taken = self.link.take(cx.waker(), &mut self.outgoing);
        if taken.writable && !self.python_told {
            self.events.push(Event::Conn(self.link.key, Inbound::Writable));
        }
        if taken.close_pending {
            self.start_close_timer();
        }
        if let Some(Closing { frame, by_app }) = taken.closing {
            if by_app {
                // The interpreter side ended this connection; it needs no telling, and what it
                // queued before (on_close's message) goes out first.
                self.python_told = true;
            } else {
                // The server's own decision (slow consumer, shutdown): close at once.
                self.tell_python(frame.code.into(), frame.reason.as_str());
                self.outgoing.clear();
            }
            if self.closing.is_none() {
                self.closing = Some(frame);
                self.start_close_timer();
            }
        }
        self.outgoing.len() > before
    }

    fn write(&mut self, cx: &mut Context<'_>) -> Step {
        self.refill(cx);
        loop {
            let next = match self.outgoing.pop_front() {
                Some(message) => message,
                // The last batch is in the socket: the link may hold the next one already.
                None if self.refill(cx) => continue,
                None => match self.closing.take() {
                    Some(frame) if !self.close_sent => {
                        self.close_sent = true;
                        Message::Close(Some(frame))
                    }
                    _ => break,
                },
            };
            match Pin::new(&mut self.socket).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Step::Done,
                Poll::Pending => {
                    self.put_back(next);
                    return Step::Continue;
                }
            }
            if Pin::new(&mut self.socket).start_send(next).is_err() {
                return Step::Done;
            }
            self.unflushed = true;
        }
        if self.unflushed {
            match self.flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return Step::Done,
                Poll::Pending => {}
            }
        }
        if (self.read_failed && self.close_sent || self.ended) && !self.unflushed {
            // Bounded by the close timer like any closing connection.
            return match self.socket.poll_linger(cx) {
                Poll::Ready(()) => Step::Done,
                Poll::Pending => Step::Continue,
            };
        }
        Step::Continue
    }

    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SocketError>> {
        // yawc writes the frames it owes the client (pongs, the Close it queued after a
        // protocol error) in `poll_ready`, not in `poll_flush`; for tungstenite an idle
        // `poll_ready` returns at once.
        std::task::ready!(Pin::new(&mut self.socket).poll_ready(cx))?;
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    /// A client gets `CLOSE_TIMEOUT` from the moment the server decides to close: to read
    /// what is still queued for it, and to answer the Close frame.
    fn start_close_timer(&mut self) {
        if self.close_timer.is_none() {
            self.close_timer = Some(Box::pin(tokio::time::sleep(CLOSE_TIMEOUT)));
        }
    }

    fn put_back(&mut self, message: Message) {
        match message {
            Message::Close(frame) => {
                self.close_sent = false;
                self.closing = frame;
            }
            other => self.outgoing.push_front(other),
        }
    }

    /// Queues `Inbound::Disconnected` once: the handler's pending receive raises
    /// `WebSocketDisconnect(code, reason)`.
    fn tell_python(&mut self, code: u16, reason: &str) {
        if !self.python_told {
            self.python_told = true;
            self.push_disconnected(code, reason);
        }
    }

    fn push_disconnected(&mut self, code: u16, reason: &str) {
        if !self.disconnect_sent {
            self.disconnect_sent = true;
            let reason = reason.to_owned();
            self.events.push(Event::Conn(self.link.key, Inbound::Disconnected { code, reason }));
        }
    }
}
