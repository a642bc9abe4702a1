//! A response body the app streams (`StreamingResponse`, `SSEResponse`), as hyper sends it:
//! each chunk when hyper has room for it, so the client's socket paces the app's generator;
//! a comment on a server-sent events stream that has been idle `--sse-keepalive`; the end
//! after what is queued when shutdown begins; and the app told when the client goes away.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use pyhost::bridge::{Bridge, Event};
use pyhost::stream::{ResponseStream, StreamSignal, Take};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::in_flight::{InFlight, Place};

/// What an idle event stream gets: a comment line, which EventSource ignores.
const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

pub struct StreamingBody {
    stream: Arc<ResponseStream>,
    bridge: Arc<Bridge>,
    keepalive: Option<Keepalive>,
    /// Resolves when shutdown begins.
    ending: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The body was sent to its end (else, when dropped, the client went away first).
    ended: bool,
    /// The app failed and the body is to be cut off, once hyper has flushed what it holds.
    cutting_off: bool,
    _place: Place,
}

struct Keepalive {
    every: Duration,
    timer: Pin<Box<Sleep>>,
}

impl StreamingBody {
    pub fn new(
        stream: Arc<ResponseStream>,
        bridge: Arc<Bridge>,
        streams: &Arc<InFlight>,
        keepalive: Option<Duration>,
    ) -> Self {
        let keepalive = keepalive
            .filter(|_| stream.events)
            .map(|every| Keepalive { every, timer: Box::pin(tokio::time::sleep(every)) });
        Self {
            stream,
            bridge,
            keepalive,
            ending: Box::pin(streams.ending().clone().cancelled_owned()),
            ended: false,
            cutting_off: false,
            _place: streams.open(),
        }
    }

    fn tell_app(&self, signal: StreamSignal) {
        self.bridge.push(Event::Stream(self.stream.clone(), signal));
    }
}

impl Body for StreamingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            match this.stream.take(cx.waker()) {
                Take::Chunk { bytes, wake_producer } => {
                    if wake_producer {
                        this.tell_app(StreamSignal::Writable);
                    }
                    if let Some(keepalive) = &mut this.keepalive {
                        keepalive.timer.as_mut().reset(Instant::now() + keepalive.every);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Take::End => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Take::CutOff if !this.cutting_off => {
                    // hyper drops what it has not written yet along with the connection: one
                    // Pending first, on which it flushes the head and the chunks before.
                    this.cutting_off = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Take::CutOff => {
                    this.ended = true;
                    // hyper drops the connection without the last chunk: the client knows.
                    return Poll::Ready(Some(Err(std::io::Error::other("the app's stream failed midway"))));
                }
                Take::Pending => {}
            }
            if this.ending.as_mut().poll(cx).is_ready() {
                if this.stream.end_early() {
                    this.tell_app(StreamSignal::Gone);
                }
                // Once more: what the app queued meanwhile goes out before the end.
                continue;
            }
            if let Some(keepalive) = &mut this.keepalive
                && keepalive.timer.as_mut().poll(cx).is_ready()
            {
                keepalive.timer.as_mut().reset(Instant::now() + keepalive.every);
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEPALIVE_COMMENT)))));
            }
            return Poll::Pending;
        }
    }
}

impl Drop for StreamingBody {
    fn drop(&mut self) {
        // Dropped before its end: the client went away (or hyper gave up on the connection).
        if !self.ended && self.stream.close() {
            self.tell_app(StreamSignal::Gone);
        }
    }
}
