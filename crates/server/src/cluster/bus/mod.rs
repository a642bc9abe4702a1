//! The local bus of `--processes`: the supervisor listens on a Unix socket, each worker
//! connects once, and the supervisor passes what a worker broadcasts (or sends to another
//! worker's connection) on to the others, in the order each worker sent it: one socket write
//! per batch of notes, no shared memory to size or clean up after a worker dies (the costs
//! measured, and why, in ARCHITECTURE.md "Processes and hosts").

mod protocol;
mod switchboard;
mod worker;

use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

pub use switchboard::{Heard, Switchboard};
pub use worker::Bus;

/// Notes waiting for one end of the bus; past this many (that end stalled) they are dropped
/// and counted rather than held.
const OUTBOX: usize = 65_536;

/// Largest note: a broadcast is bounded by `--max-broadcast-size` (at most this).
pub const LARGEST_NOTE: usize = 256 << 20;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(LARGEST_NOTE + 1024).new_codec()
}

type Sink = SplitSink<Framed<UnixStream, LengthDelimitedCodec>, Bytes>;

/// Sends the notes as they come, everything that piled up meanwhile in one write.
async fn write_batches(mut sink: Sink, mut pending: mpsc::Receiver<Bytes>) {
    while let Some(note) = pending.recv().await {
        if sink.feed(note).await.is_err() {
            return;
        }
        while let Ok(more) = pending.try_recv() {
            if sink.feed(more).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}
