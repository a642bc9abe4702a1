//! A response body the app produces while it is being sent (`StreamingResponse`,
//! `SSEResponse`): the chunks the app made and the client has not taken yet, between the
//! interpreter side, which adds them, and the network side, which hands them to the socket.
//!
//! The app may run ahead of the client by at most [`HIGH_WATER`] bytes (plus the one chunk
//! that crossed it); then its `send` waits until the client has taken all but [`LOW_WATER`]
//! of them. A client that never reads therefore holds the app's generator, never a growing
//! buffer. The network side tells the interpreter side two things, through the bridge:
//! there is room again, and the client is gone.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::Waker;

use bytes::Bytes;
use pyo3::prelude::*;

use crate::locks::lock;

/// Bytes the app may have queued before its `send` waits.
pub const HIGH_WATER: usize = 64 * 1024;
/// A waiting `send` resumes once the queue is down to this.
pub const LOW_WATER: usize = 16 * 1024;

/// What the network side tells the app's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSignal {
    /// The client took enough: a waiting `send` may go on.
    Writable,
    /// The client is gone (or the server is shutting down) before the stream ended: the app's
    /// generator is stopped.
    Gone,
}

/// Where a stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The app is producing.
    Open,
    /// The app ended it: what is queued is the rest of the body.
    Finished,
    /// The app failed midway: what is queued goes out, then the body is cut off, so that the
    /// client sees it incomplete rather than complete.
    Failed,
    /// The network side will take nothing more (the client went away, or shutdown).
    Closed,
}

#[derive(Debug)]
struct Queue {
    chunks: VecDeque<Bytes>,
    queued: usize,
    phase: Phase,
    /// The app's `send` waits for `Writable`.
    producer_waits: bool,
    /// The network side's task, parked until there is a chunk or an end.
    consumer: Option<Waker>,
}

/// What the network side gets when it asks for the next piece of the body.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// The next chunk; `wake_producer` when the app waits for room and now has it.
    Chunk { bytes: Bytes, wake_producer: bool },
    /// The body is complete.
    End,
    /// The body is cut off here (the app failed).
    CutOff,
    /// Nothing yet: the waker is kept and woken by the next chunk or the end.
    Pending,
}

/// What `push` tells the app.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued, with room for more.
    Room,
    /// Queued, but the app should wait for `Writable` before the next one.
    Full,
    /// The client is gone: nothing was queued.
    Closed,
}

/// One streamed response body, shared by both sides.
pub struct ResponseStream {
    queue: Mutex<Queue>,
    /// A text/event-stream: idle stretches get a keep-alive comment.
    pub events: bool,
    /// Python's side (touched with the GIL only): the future a waiting `send` awaits, and
    /// what to call when the client goes away.
    python: Mutex<PythonSide>,
}

#[derive(Default)]
pub(crate) struct PythonSide {
    pub(crate) waiter: Option<Py<PyAny>>,
    pub(crate) on_gone: Option<Py<PyAny>>,
}

impl std::fmt::Debug for ResponseStream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ResponseStream").field("queue", &self.queue).field("events", &self.events).finish()
    }
}

impl ResponseStream {
    pub fn new(events: bool) -> Self {
        Self {
            queue: Mutex::new(Queue {
                chunks: VecDeque::new(),
                queued: 0,
                phase: Phase::Open,
                producer_waits: false,
                consumer: None,
            }),
            events,
            python: Mutex::new(PythonSide::default()),
        }
    }

    /// The app adds a chunk (an empty one is dropped: in chunked encoding it would end the body).
    pub fn push(&self, bytes: Bytes) -> Pushed {
        let (pushed, waker) = {
            let mut queue = lock(&self.queue);
            if queue.phase != Phase::Open {
                return Pushed::Closed;
            }
            if !bytes.is_empty() {
                queue.queued += bytes.len();
                queue.chunks.push_back(bytes);
            }
            let pushed = if queue.queued > HIGH_WATER {
                queue.producer_waits = true;
                Pushed::Full
            } else {
                Pushed::Room
            };
            (pushed, queue.consumer.take())
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        pushed
    }

    /// The app ended the body (`complete`: as it should; else it failed midway); answers
    /// whether the client was still there to get its end.
    pub fn finish(&self, complete: bool) -> bool {
        let waker = {
            let mut queue = lock(&self.queue);
            if queue.phase != Phase::Open {
                return queue.phase == Phase::Finished;
            }
            queue.phase = if complete { Phase::Finished } else { Phase::Failed };
            queue.consumer.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    pub(crate) fn python_side<T>(&self, change: impl FnOnce(&mut PythonSide) -> T) -> T {
        change(&mut lock(&self.python))
    }

    /// Python's objects, taken out to be dropped (with the GIL, outside the lock).
    pub(crate) fn take_python(&self) -> PythonSide {
        std::mem::take(&mut *lock(&self.python))
    }

    /// The network side takes the next piece.
    pub fn take(&self, waker: &Waker) -> Take {
        let mut queue = lock(&self.queue);
        if let Some(bytes) = queue.chunks.pop_front() {
            queue.queued -= bytes.len();
            let wake_producer = queue.producer_waits && queue.queued <= LOW_WATER;
            if wake_producer {
                queue.producer_waits = false;
            }
            return Take::Chunk { bytes, wake_producer };
        }
        match queue.phase {
            Phase::Open => {
                if !queue.consumer.as_ref().is_some_and(|kept| kept.will_wake(waker)) {
                    queue.consumer = Some(waker.clone());
                }
                Take::Pending
            }
            Phase::Finished | Phase::Closed => Take::End,
            Phase::Failed => Take::CutOff,
        }
    }

    /// The network side will take nothing more (the client went away, or the server ends the
    /// stream at shutdown). Answers whether the app was still producing, and must hear of it.
    pub fn close(&self) -> bool {
        let mut queue = lock(&self.queue);
        let was_open = queue.phase == Phase::Open;
        queue.phase = Phase::Closed;
        queue.chunks.clear();
        queue.queued = 0;
        queue.consumer = None;
        was_open
    }

    /// Ends the stream from the server's side once what is queued has been taken (shutdown):
    /// the client sees a complete body. Answers whether the app was still producing.
    pub fn end_early(&self) -> bool {
        let mut queue = lock(&self.queue);
        let was_open = queue.phase == Phase::Open;
        if was_open {
            // `Finished` keeps what is queued; the app hears `Gone` and stops producing.
            queue.phase = Phase::Finished;
        }
        was_open
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Counted>, Waker) {
        let counted = Arc::new(Counted::default());
        (counted.clone(), Waker::from(counted))
    }

    #[test]
    fn chunks_come_out_in_order_then_the_end() {
        let stream = ResponseStream::new(false);
        let (_, waker) = waker();
        assert_eq!(stream.push(Bytes::from_static(b"a")), Pushed::Room);
        assert_eq!(stream.push(Bytes::from_static(b"b")), Pushed::Room);
        assert!(stream.finish(true));
        assert_eq!(stream.take(&waker), Take::Chunk { bytes: Bytes::from_static(b"a"), wake_producer: false });
        assert_eq!(stream.take(&waker), Take::Chunk { bytes: Bytes::from_static(b"b"), wake_producer: false });
        assert_eq!(stream.take(&waker), Take::End);
    }

    #[test]
    fn a_waiting_consumer_is_woken_by_a_chunk_and_by_the_end() {
        let stream = ResponseStream::new(false);
        let (woken, waker) = waker();
        assert_eq!(stream.take(&waker), Take::Pending);
        stream.push(Bytes::from_static(b"a"));
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        assert!(matches!(stream.take(&waker), Take::Chunk { .. }));
        assert_eq!(stream.take(&waker), Take::Pending);
        stream.finish(true);
        assert_eq!(woken.0.load(Ordering::Relaxed), 2);
        assert_eq!(stream.take(&waker), Take::End);
    }

    #[test]
    fn the_producer_waits_past_high_water_and_resumes_at_low_water() {
        let stream = ResponseStream::new(false);
        let (_, waker) = waker();
        let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
        for _ in 0..4 {
            assert_eq!(stream.push(chunk.clone()), Pushed::Room);
        }
        assert_eq!(stream.push(chunk.clone()), Pushed::Full);
        // 80 KiB queued: three takes leave 32 KiB, the fourth 16 KiB, which wakes the producer.
        for _ in 0..3 {
            assert!(matches!(stream.take(&waker), Take::Chunk { wake_producer: false, .. }));
        }
        assert!(matches!(stream.take(&waker), Take::Chunk { wake_producer: true, .. }));
        // Woken once: the next take does not wake it again.
        assert!(matches!(stream.take(&waker), Take::Chunk { wake_producer: false, .. }));
    }

    #[test]
    fn a_failed_stream_sends_what_is_queued_then_is_cut_off() {
        let stream = ResponseStream::new(false);
        let (_, waker) = waker();
        stream.push(Bytes::from_static(b"a"));
        assert!(stream.finish(false));
        assert!(matches!(stream.take(&waker), Take::Chunk { .. }));
        assert_eq!(stream.take(&waker), Take::CutOff);
    }

    #[test]
    fn empty_chunks_are_not_queued() {
        let stream = ResponseStream::new(false);
        let (_, waker) = waker();
        stream.push(Bytes::new());
        assert_eq!(stream.take(&waker), Take::Pending);
    }

    #[test]
    fn a_closed_stream_refuses_chunks_and_tells_whether_the_app_was_producing() {
        let stream = ResponseStream::new(false);
        stream.push(Bytes::from_static(b"a"));
        assert!(stream.close());
        assert_eq!(stream.push(Bytes::from_static(b"b")), Pushed::Closed);
        assert!(!stream.finish(true));
        assert!(!stream.close());

        let finished = ResponseStream::new(false);
        finished.finish(true);
        assert!(!finished.close());
    }

    #[test]
    fn ending_early_keeps_what_is_queued_and_refuses_more() {
        let stream = ResponseStream::new(true);
        let (_, waker) = waker();
        stream.push(Bytes::from_static(b"a"));
        assert!(stream.end_early());
        assert_eq!(stream.push(Bytes::from_static(b"b")), Pushed::Closed);
        assert!(matches!(stream.take(&waker), Take::Chunk { .. }));
        assert_eq!(stream.take(&waker), Take::End);
        assert!(!stream.end_early());
    }
}
