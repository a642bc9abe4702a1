//! The supervisor's end of the local bus. Each worker's notes are read in order and passed
//! on as they are (a broadcast to every other worker, a `send_to` to the worker its id
//! names); the workers' numbers are summed into the totals every worker serves at `/metrics`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use super::protocol::{Note, Question, Reply, Route, route};
use super::{OUTBOX, codec, write_batches};
use crate::metrics::Snapshot;
use crate::ws::registry::history::{Log, Logs, Outgoing, log_of, tend};
use crate::ws::registry::presence::Scope;
use pyhost::locks::lock;

/// How often the totals go out.
const TOTALS_EVERY: Duration = Duration::from_secs(1);
/// How often reserved offsets are checked for a message that never came (its worker died),
/// and histories for being idle.
const TEND_EVERY: Duration = Duration::from_millis(500);

/// What the supervisor hears from the bus.
#[derive(Debug)]
pub enum Heard {
    /// Worker `worker` (process `pid`) serves, at `address`.
    Ready { worker: u32, pid: u32, address: String },
}

pub struct Switchboard {
    /// By node tag: under `--reload` the old and the new process of one worker number are
    /// both members while the new one takes over.
    members: Mutex<HashMap<u32, Member>>,
    /// Counters of workers that have exited, so the totals never go backwards.
    retired: Mutex<Snapshot>,
    /// Notes a stalled worker could not take.
    drops: AtomicU64,
    heard: mpsc::UnboundedSender<Heard>,
    /// The histories of the app's endpoints, kept here for every worker: they outlive a
    /// worker, and a reload.
    logs: Mutex<Logs>,
}

/// One connected worker.
struct Member {
    pid: u32,
    outbox: mpsc::Sender<Bytes>,
    /// Its numbers as it last reported them.
    last: Snapshot,
}

impl Switchboard {
    /// Listens at `path`; what the supervisor must act on comes out of the receiver.
    pub fn listen(path: &Path) -> std::io::Result<(Arc<Self>, mpsc::UnboundedReceiver<Heard>)> {
        let listener = UnixListener::bind(path)?;
        let (heard, hearing) = mpsc::unbounded_channel();
        let board = Arc::new(Self {
            members: Mutex::new(HashMap::new()),
            retired: Mutex::new(Snapshot::default()),
            drops: AtomicU64::new(0),
            heard,
            logs: Mutex::new(HashMap::new()),
        });
        let accepting = board.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().serve(stream));
            }
        });
        let keeping = board.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TEND_EVERY);
            loop {
                every.tick().await;
                keeping.tend_histories();
            }
        });
        let summing = board.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TOTALS_EVERY);
            loop {
                every.tick().await;
                summing.send_totals();
            }
        });
        Ok((board, hearing))
    }

    async fn serve(self: Arc<Self>, stream: UnixStream) {
        let (sink, mut notes) = Framed::new(stream, codec()).split();
        let Some(Ok(hello)) = notes.next().await else { return };
        let Some(Note::Hello { worker, node, pid }) = Note::decode(hello.freeze()) else {
            tracing::warn!("a process joined the bus without saying which worker it is: ignored");
            return;
        };
        let (outbox, pending) = mpsc::channel(OUTBOX);
        tokio::spawn(write_batches(sink, pending));
        lock(&self.members).insert(node, Member { pid, outbox, last: Snapshot::default() });
        self.send_peers();
        // The worker waits for its first totals before it serves.
        self.send_totals();
        while let Some(Ok(frame)) = notes.next().await {
            let frame = frame.freeze();
            match route(&frame) {
                Route::Others => self.pass(&frame, |member| member != node),
                Route::Node(tag) => self.pass(&frame, |member| member == tag),
                Route::Supervisor => self.read(worker, node, pid, frame),
            }
        }
        let gone = lock(&self.members).remove(&node);
        if let Some(mut gone) = gone {
            // Its connections are gone with it; what it counted stays counted.
            gone.last.connections.clear();
            lock(&self.retired).add(&gone.last);
        }
        self.send_peers();
    }

    fn pass(&self, frame: &Bytes, to: impl Fn(u32) -> bool) {
        for (node, member) in lock(&self.members).iter() {
            if to(*node) && member.outbox.try_send(frame.clone()).is_err() {
                self.drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn read(&self, worker: u32, node: u32, pid: u32, frame: Bytes) {
        match Note::decode(frame) {
            Some(Note::Ready { worker, address }) => {
                let _ = self.heard.send(Heard::Ready { worker, pid, address });
            }
            Some(Note::Metrics(snapshot)) => {
                if let Some(member) = lock(&self.members).get_mut(&node) {
                    member.last = snapshot;
                }
            }
            Some(Note::HistoryAsk { token, scope, keep, question }) => {
                let mut logs = lock(&self.logs);
                let (reply, released) = answer(log_of(&mut logs, &scope, keep), question);
                // The answer first: the asking handler goes on to its next broadcast while the
                // workers deliver this one. Released while the logs are locked: every worker
                // gets them in offset order.
                if let Some(member) = lock(&self.members).get(&node) {
                    let _ = member.outbox.try_send(Note::HistoryAnswer { token, reply }.encode());
                }
                self.release(&scope, released);
            }
            Some(Note::HistoryCommit { scope, keep, offset, except, message }) => {
                let outgoing = message.map(|message| Outgoing { message, except });
                let mut logs = lock(&self.logs);
                let released = log_of(&mut logs, &scope, keep).commit(offset, outgoing, Instant::now());
                self.release(&scope, released);
            }
            _ => tracing::debug!(worker, "an unexpected note on the bus: ignored"),
        }
    }

    /// Kept broadcasts released: to every worker, the one that made them too.
    fn release(&self, scope: &Scope, released: Vec<(u64, Outgoing)>) {
        for (offset, Outgoing { message, except }) in released {
            let note = Note::Released { scope: scope.clone(), offset, except, message }.encode();
            self.pass(&note, |_| true);
        }
    }

    /// Gives up offsets whose message never came (its worker died), forgets idle histories.
    fn tend_histories(&self) {
        let mut logs = lock(&self.logs);
        for (scope, released) in tend(&mut logs, Instant::now()) {
            self.release(&scope, released);
        }
    }

    /// Asks worker process `pid` to hand over to the new one (`--reload`): it closes its
    /// clients with 1012 and exits. False when no such process is on the bus.
    pub fn restart(&self, pid: u32) -> bool {
        let members = lock(&self.members);
        let Some(member) = members.values().find(|member| member.pid == pid) else { return false };
        member.outbox.try_send(Note::Restart.encode()).is_ok()
    }

    fn send_peers(&self) {
        let members = lock(&self.members);
        let note = Note::Peers(members.keys().copied().collect()).encode();
        for member in members.values() {
            let _ = member.outbox.try_send(note.clone());
        }
    }

    fn send_totals(&self) {
        let mut totals = lock(&self.retired).clone();
        totals.bus_drops += self.drops.load(Ordering::Relaxed);
        let members = lock(&self.members);
        for member in members.values() {
            totals.add(&member.last);
        }
        let note = Note::Totals(totals).encode();
        for member in members.values() {
            let _ = member.outbox.try_send(note.clone());
        }
    }
}

/// A worker's question to a history: the reply, and what it releases.
fn answer(log: &mut Log, question: Question) -> (Reply, Vec<(u64, Outgoing)>) {
    let now = Instant::now();
    match question {
        Question::Append { except, message } => {
            let offset = log.reserve(now);
            (Reply::Offset(offset), log.commit(offset, Some(Outgoing { message, except }), now))
        }
        Question::Reserve => (Reply::Offset(log.reserve(now)), Vec::new()),
        Question::CatchUp { since } => {
            let catchup = match since {
                Some((epoch, offset)) => log.since(&epoch, offset, now),
                None => Ok(Vec::new()),
            };
            (Reply::CaughtUp(log.position(), catchup), Vec::new())
        }
    }
}
