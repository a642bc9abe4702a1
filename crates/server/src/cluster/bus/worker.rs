//! A worker's end of the local bus: what this process broadcasts, or sends to a connection
//! another worker holds, goes to the supervisor, which passes it on; what the others send
//! comes back here for this process's clients. Nothing here waits on the bus: notes queue for
//! one writer task, which sends whatever has piled up in one write.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::protocol::{Note, Question, Reply};
use super::{OUTBOX, codec, write_batches};
use crate::metrics::Snapshot;
use crate::ws::registry::history::{Catchup, Keep, Position};
use crate::ws::registry::presence::Scope;
use crate::ws::registry::{Fabric, Registry};
use pyhost::locks::{lock, read, write};

/// How often a worker tells the supervisor its numbers.
const METRICS_EVERY: Duration = Duration::from_secs(1);
/// How long a question to the supervisor's histories may wait for its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How long a joining worker waits for the supervisor's first totals.
const FIRST_TOTALS: Duration = Duration::from_secs(5);

pub struct Bus {
    outbox: mpsc::Sender<Bytes>,
    registry: Arc<Registry>,
    /// Node tags of the other workers up now, as the supervisor last said.
    peers: RwLock<HashSet<u32>>,
    /// Everyone's numbers, as the supervisor last summed them.
    totals: Mutex<Option<Snapshot>>,
    /// Told when the first totals arrive.
    counted: Notify,
    /// Cancelled when the supervisor is gone: the worker then shuts down.
    lost: CancellationToken,
    /// Cancelled when the supervisor asks this worker to hand over (`--reload`).
    restart: CancellationToken,
    /// The bus joins this worker to the others (no broker does): it carries presence, and
    /// the supervisor's list of workers says which nodes are alive.
    carries: std::sync::atomic::AtomicBool,
    /// Questions to the supervisor's histories, waiting for their answers.
    asked: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next_question: std::sync::atomic::AtomicU64,
}

impl Bus {
    /// Connects to the supervisor's bus as worker `worker`; the tasks that carry notes both
    /// ways run on the current runtime. Returns once the supervisor has sent the totals, so
    /// a worker never answers `/metrics` with only its own numbers.
    pub async fn join(path: &Path, worker: u32, registry: Arc<Registry>) -> std::io::Result<Arc<Self>> {
        let stream = UnixStream::connect(path).await?;
        let (mut sink, mut stream) = Framed::new(stream, codec()).split();
        sink.send(Note::Hello { worker, node: registry.node.tag(), pid: std::process::id() }.encode()).await?;
        let (outbox, pending) = mpsc::channel::<Bytes>(OUTBOX);
        let bus = Arc::new(Self {
            outbox,
            registry,
            peers: RwLock::new(HashSet::new()),
            totals: Mutex::new(None),
            counted: Notify::new(),
            lost: CancellationToken::new(),
            restart: CancellationToken::new(),
            carries: std::sync::atomic::AtomicBool::new(false),
            asked: Mutex::new(HashMap::new()),
            next_question: std::sync::atomic::AtomicU64::new(1),
        });
        tokio::spawn(write_batches(sink, pending));
        let reader = bus.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                reader.receive(frame.freeze());
            }
            reader.lost.cancel();
        });
        tokio::time::timeout(FIRST_TOTALS, bus.counted.notified()).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "the supervisor sent no totals within 5 s of joining")
        })?;
        Ok(bus)
    }

    fn receive(&self, frame: Bytes) {
        match Note::decode(frame) {
            Some(Note::Broadcast { endpoint, room, message }) => {
                self.registry.deliver(&endpoint, room.as_deref(), &message);
            }
            Some(Note::SendTo { id, message }) => {
                self.registry.deliver_to(id, message);
            }
            Some(Note::Peers(nodes)) => {
                // Under the lock `carry` takes too: presence never gets an older list after a newer.
                let mut peers = write(&self.peers);
                *peers = nodes.into_iter().filter(|node| *node != self.registry.node.tag()).collect();
                if self.carries.load(Ordering::Acquire) {
                    self.registry.presence_alive(&peers, true, Duration::ZERO);
                }
            }
            Some(Note::Presence(note)) => self.registry.presence_heard(&note),
            Some(Note::HistoryAnswer { token, reply }) => {
                if let Some(asker) = lock(&self.asked).remove(&token) {
                    let _ = asker.send(reply);
                }
            }
            Some(Note::Released { scope, offset, except, message }) => {
                self.registry.deliver_kept(&scope.endpoint, scope.room.as_deref(), offset, &message, except);
            }
            Some(Note::SendToUser { user, message, .. }) => {
                self.registry.deliver_to_user(&user, &message);
            }
            Some(Note::Totals(totals)) => {
                *lock(&self.totals) = Some(totals);
                self.counted.notify_one();
            }
            Some(Note::Restart) => self.restart.cancel(),
            Some(
                Note::Hello { .. }
                | Note::Ready { .. }
                | Note::Metrics(_)
                | Note::HistoryAsk { .. }
                | Note::HistoryCommit { .. },
            )
            | None => {}
        }
    }

    fn post(&self, note: &Note) {
        if self.outbox.try_send(note.encode()).is_err() {
            self.registry.metrics.bus_drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks the supervisor's histories; the answer, or an error after [`ANSWER_WITHIN`].
    fn ask(&self, scope: &Scope, keep: Keep, question: Question) -> BoxFuture<'static, Result<Reply, String>> {
        let token = self.next_question.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        lock(&self.asked).insert(token, answer);
        self.post(&Note::HistoryAsk { token, scope: scope.clone(), keep, question });
        Box::pin(async move {
            match tokio::time::timeout(ANSWER_WITHIN, answered).await {
                Ok(Ok(reply)) => Ok(reply),
                _ => Err(format!("the supervisor's history did not answer within {ANSWER_WITHIN:?}")),
            }
        })
    }

    /// The bus is what joins this worker to the others (there is no broker): the workers it
    /// lists are the nodes presence waits to hear from.
    pub fn carry(&self) {
        let peers = write(&self.peers);
        self.carries.store(true, Ordering::Release);
        self.registry.presence_alive(&peers, true, Duration::ZERO);
    }

    /// Tells the supervisor this worker serves at `address`.
    pub fn ready(&self, worker: u32, address: String) {
        self.post(&Note::Ready { worker, address });
    }

    /// Sends this worker's numbers every second (`snapshot` reads them).
    pub fn report_metrics(self: &Arc<Self>, snapshot: impl Fn() -> Snapshot + Send + 'static) {
        let bus = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(METRICS_EVERY);
            loop {
                every.tick().await;
                bus.post(&Note::Metrics(snapshot()));
            }
        });
    }

    /// Every worker's numbers, as the supervisor summed them last (within a second or so).
    pub fn totals(&self) -> Option<Snapshot> {
        lock(&self.totals).clone()
    }

    /// Returns when the supervisor is gone.
    pub async fn lost(&self) {
        self.lost.cancelled().await;
    }

    /// Returns when the supervisor asks this worker to hand over to one with new code.
    pub async fn restart_asked(&self) {
        self.restart.cancelled().await;
    }
}

impl Fabric for Bus {
    fn broadcast(&self, endpoint: &str, room: Option<&str>, message: &Message) {
        self.post(&Note::Broadcast {
            endpoint: endpoint.to_owned(),
            room: room.map(str::to_owned),
            message: message.clone(),
        });
    }

    fn send_to(&self, node: u32, id: u128, message: &Message) -> bool {
        if !read(&self.peers).contains(&node) {
            return false;
        }
        self.post(&Note::SendTo { id, message: message.clone() });
        true
    }

    /// The supervisor passes every broadcast to every worker: nothing to subscribe to.
    fn interest(&self, _endpoint: &str, _room: Option<&str>, _present: bool) {}

    fn connected(&self) -> bool {
        !self.lost.is_cancelled()
    }

    fn presence(&self, note: Bytes) {
        self.post(&Note::Presence(note));
    }

    fn send_to_user(&self, node: u32, user: &str, message: &Message) -> bool {
        // Presence names the worker: it was heard from, and would have been forgotten if gone.
        self.post(&Note::SendToUser { node, user: user.to_owned(), message: message.clone() });
        true
    }

    fn append(
        &self,
        scope: &Scope,
        keep: Keep,
        message: Message,
        except: Option<u128>,
    ) -> BoxFuture<'static, Result<u64, String>> {
        offset_of(self.ask(scope, keep, Question::Append { except, message }))
    }

    fn reserve(&self, scope: &Scope, keep: Keep) -> BoxFuture<'static, Result<u64, String>> {
        offset_of(self.ask(scope, keep, Question::Reserve))
    }

    fn commit(
        &self,
        scope: &Scope,
        keep: Keep,
        offset: u64,
        message: Option<Message>,
        except: Option<u128>,
    ) -> BoxFuture<'static, ()> {
        self.post(&Note::HistoryCommit { scope: scope.clone(), keep, offset, except, message });
        Self::always_hearing()
    }

    fn catch_up(
        &self,
        scope: &Scope,
        keep: Keep,
        since: Option<(String, u64)>,
    ) -> BoxFuture<'static, Result<(Position, Catchup), String>> {
        let asking = self.ask(scope, keep, Question::CatchUp { since });
        Box::pin(async move {
            match asking.await? {
                Reply::CaughtUp(position, catchup) => Ok((position, catchup)),
                Reply::Offset(_) => Err("the supervisor answered another question".to_owned()),
            }
        })
    }

    fn hearing(&self, _scope: &Scope) -> BoxFuture<'static, ()> {
        Self::always_hearing()
    }
}

impl Bus {
    /// Nothing to wait for: the supervisor passes every released broadcast to every worker,
    /// and a note is posted at once.
    fn always_hearing() -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

fn offset_of(asking: BoxFuture<'static, Result<Reply, String>>) -> BoxFuture<'static, Result<u64, String>> {
    Box::pin(async move {
        match asking.await? {
            Reply::Offset(offset) => Ok(offset),
            Reply::CaughtUp(..) => Err("the supervisor answered another question".to_owned()),
        }
    })
}
