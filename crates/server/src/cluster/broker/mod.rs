//! `--broker redis://host:port/db`: servers on many hosts (each process a node) reach each
//! other's clients through Redis pub/sub.
//!
//! A broadcast is offered to this node's clients first (the registry does that before it
//! gets here), then published; every node delivers what it receives to its own clients and
//! skips what it published itself. Delivery is at most once, each publisher's order is kept
//! per endpoint and per room (one connection, one queue), and there is no global order. The
//! sender's own delivery never waits on Redis: publishing goes through a bounded queue that
//! drops (and counts) what Redis cannot take.
//!
//! Channels follow interest ([`channels`]); [`publisher`] pipelines whatever has queued into
//! one write and keeps the list of live nodes for `send_to`; [`subscriber`] follows the
//! registry's interest, reconnects with jittered backoff, and probes its own subscription.

mod channels;
mod envelope;
mod history;
mod publisher;
mod subscriber;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use pyhost::bridge::Bridge;
use redis::ConnectionLike;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

use self::channels::{Channels, Target};
use self::envelope::{Content, Envelope};
use self::subscriber::Interest;
use crate::ws::registry::history::{Catchup, Keep, Position};
use crate::ws::registry::presence::Scope;
use crate::ws::registry::{Fabric, Registry};
use pyhost::locks::{read, write};

/// Publishes waiting for Redis; past this many (Redis slow or gone) new ones are dropped and
/// counted, so the sender's memory stays bounded.
const PUBLISH_QUEUE: usize = 16_384;

/// Reconnection waits start here and double, with jitter, up to `LONGEST_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(5);
/// How long connecting to Redis, or one command, may take before it counts as a failure.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach Redis: `--broker` (`redis://`, or `rediss://` for TLS; credentials in the URL)
/// and `--broker-ca`.
pub struct BrokerLink {
    pub url: String,
    /// CA certificates (PEM) the server's certificate must come from; None: the system's.
    pub ca_certs: Option<Vec<u8>>,
}

impl BrokerLink {
    /// The URL with its password replaced, for messages and logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => self.url.clone(),
        }
    }

    pub(crate) fn client(&self, info: impl redis::IntoConnectionInfo) -> Result<redis::Client, String> {
        let client = match &self.ca_certs {
            None => redis::Client::open(info),
            Some(ca_certs) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates { client_tls: None, root_cert: Some(ca_certs.clone()) },
            ),
        };
        client.map_err(|error| {
            format!(
                "--broker {}: {error} (expected redis://[user:password@]host:port/db, or rediss:// for TLS)",
                self.redacted()
            )
        })
    }
}

pub struct Broker {
    node: u32,
    channels: Channels,
    publish: mpsc::Sender<(String, Bytes)>,
    interest: mpsc::UnboundedSender<Interest>,
    /// Node tags of the other nodes up now (they renew their entry every few seconds).
    peers: RwLock<HashSet<u32>>,
    /// Whether the subscription is up and answering its probes (`/ready`).
    subscribed: AtomicBool,
    /// Told by the subscriber when it has Redis again after losing it: the publisher's
    /// connection, if it still has one, is to the Redis that went away.
    redis_back: Notify,
    registry: Arc<Registry>,
    histories: Arc<history::Histories>,
    /// The channels subscribed now, and a signal when that changes.
    hearing: std::sync::Mutex<HashSet<String>>,
    hearing_changed: Notify,
    /// This broker, for the futures its questions return.
    me: std::sync::Weak<Broker>,
}

/// How long a recovery waits for this node to hear its room's channel.
const HEARING_WITHIN: Duration = Duration::from_secs(3);

impl Broker {
    /// Starts the broker's tasks on the current runtime. Redis need not be up: until it is,
    /// this node serves its own clients and keeps trying (saying so in the log).
    pub fn start(link: &BrokerLink, registry: Arc<Registry>, bridge: Arc<Bridge>) -> Result<Arc<Self>, String> {
        let client = link.client(link.url.as_str())?;
        // The subscriber speaks RESP3 (Redis 6 or later), whose pushes it takes without waiting.
        let info = client.get_connection_info().clone();
        let resp3 = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
        let subscribing = link.client(info.set_redis_settings(resp3))?;
        let channels = Channels::new(client.get_db());
        let histories = history::Histories::new(client.clone(), client.get_db(), registry.node.tag());
        let (publish, queued) = mpsc::channel(PUBLISH_QUEUE);
        let (interest, interests) = mpsc::unbounded_channel();
        let broker = Arc::new_cyclic(|me| Self {
            node: registry.node.tag(),
            channels,
            publish,
            interest,
            peers: RwLock::new(HashSet::new()),
            subscribed: AtomicBool::new(false),
            redis_back: Notify::new(),
            registry,
            histories,
            hearing: std::sync::Mutex::new(HashSet::new()),
            hearing_changed: Notify::new(),
            me: me.clone(),
        });
        tokio::spawn(publisher::run(broker.clone(), client.clone(), queued));
        tokio::spawn(subscriber::run(broker.clone(), subscribing, interests, bridge));
        Ok(broker)
    }

    fn publish(&self, channel: String, content: Content) {
        let envelope = Envelope::new(self.node, content).encode();
        if self.publish.try_send((channel, envelope)).is_err() {
            self.registry.metrics.broker_drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether this node hears `channel` now, and a signal when that changes.
    fn heard(&self, channels: impl IntoIterator<Item = String>, hearing: bool) {
        let mut heard = pyhost::locks::lock(&self.hearing);
        for channel in channels {
            if hearing {
                heard.insert(channel);
            } else {
                heard.remove(&channel);
            }
        }
        drop(heard);
        self.hearing_changed.notify_waiters();
    }

    fn self_handle(&self) -> Option<Arc<Broker>> {
        self.me.upgrade()
    }

    fn hears_nothing(&self) {
        pyhost::locks::lock(&self.hearing).clear();
    }

    /// What came in on the channel of `target` (None: this node's own channel): delivered to
    /// this node's clients, unless this node sent it (but for kept broadcasts, which every
    /// node delivers as Redis releases them, in offset order).
    fn receive(&self, target: Option<&Target>, payload: Bytes, probes: &mut subscriber::Probes) {
        if let Some((offset, envelope)) = history::kept_offset(&payload) {
            if let (Some(Target { endpoint, room }), Some(envelope)) =
                (target, Envelope::decode(payload.slice_ref(envelope)))
                && let Content::Kept { except, message } = envelope.content
            {
                self.registry.deliver_kept(endpoint, room.as_deref(), offset, &message, except);
            }
            return;
        }
        let Some(envelope) = Envelope::decode(payload) else {
            tracing::debug!("a message on the broker that is not ours (or of another version): ignored");
            return;
        };
        if envelope.node == self.node {
            if envelope.content == Content::Probe {
                probes.heard();
            }
            return;
        }
        let metrics = &self.registry.metrics;
        metrics.broker_receives.fetch_add(1, Ordering::Relaxed);
        metrics.lag(envelope.age());
        match envelope.content {
            Content::Broadcast(message) => {
                if let Some(Target { endpoint, room }) = target {
                    self.registry.deliver(endpoint, room.as_deref(), &message);
                }
            }
            Content::SendTo { id, message } => {
                self.registry.deliver_to(id, message);
            }
            Content::Presence(note) => self.registry.presence_heard(&note),
            Content::SendToUser { user, message } => {
                self.registry.deliver_to_user(&user, &message);
            }
            Content::Probe | Content::Kept { .. } => {}
        }
    }
}

impl Fabric for Broker {
    fn broadcast(&self, endpoint: &str, room: Option<&str>, message: &Message) {
        self.publish(self.channels.of(endpoint, room), Content::Broadcast(message.clone()));
    }

    fn send_to(&self, node: u32, id: u128, message: &Message) -> bool {
        if !read(&self.peers).contains(&node) {
            return false;
        }
        self.publish(self.channels.node(node), Content::SendTo { id, message: message.clone() });
        true
    }

    fn interest(&self, endpoint: &str, room: Option<&str>, present: bool) {
        let channel = self.channels.of(endpoint, room);
        let change = if present {
            Interest::Subscribe {
                channel,
                target: Target { endpoint: endpoint.to_owned(), room: room.map(str::to_owned) },
            }
        } else {
            Interest::Unsubscribe { channel }
        };
        let _ = self.interest.send(change);
    }

    fn connected(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    fn presence(&self, note: Bytes) {
        self.publish(self.channels.presence(), Content::Presence(note));
    }

    fn send_to_user(&self, node: u32, user: &str, message: &Message) -> bool {
        // Presence names the node: it was heard from, and would have been forgotten if gone.
        self.publish(self.channels.node(node), Content::SendToUser { user: user.to_owned(), message: message.clone() });
        true
    }

    fn append(
        &self,
        scope: &Scope,
        keep: Keep,
        message: Message,
        except: Option<u128>,
    ) -> BoxFuture<'static, Result<u64, String>> {
        self.histories.append(scope, keep, message, except)
    }

    fn reserve(&self, scope: &Scope, keep: Keep) -> BoxFuture<'static, Result<u64, String>> {
        self.histories.reserve(scope, keep)
    }

    fn commit(
        &self,
        scope: &Scope,
        keep: Keep,
        offset: u64,
        message: Option<Message>,
        except: Option<u128>,
    ) -> BoxFuture<'static, ()> {
        self.histories.commit(scope, keep, offset, message, except)
    }

    fn catch_up(
        &self,
        scope: &Scope,
        keep: Keep,
        since: Option<(String, u64)>,
    ) -> BoxFuture<'static, Result<(Position, Catchup), String>> {
        self.histories.catch_up(scope, keep, since)
    }

    fn hearing(&self, scope: &Scope) -> BoxFuture<'static, ()> {
        let channel = self.channels.of(&scope.endpoint, scope.room.as_deref());
        let broker = self.self_handle();
        Box::pin(async move {
            let Some(broker) = broker else { return };
            let heard = async {
                loop {
                    let changed = broker.hearing_changed.notified();
                    if pyhost::locks::lock(&broker.hearing).contains(&channel) {
                        return;
                    }
                    changed.await;
                }
            };
            let _ = tokio::time::timeout(HEARING_WITHIN, heard).await;
        })
    }
}

/// The wait before the next attempt after `failures` failed ones: doubling, capped, with
/// jitter so that nodes cut off together do not come back in lockstep.
fn retry_after(failures: u32) -> Duration {
    let ceiling = FIRST_RETRY.saturating_mul(1 << failures.min(10)).min(LONGEST_RETRY);
    // Half fixed, half random.
    let random = f64::from(tag_random() % 1000) / 1000.0;
    ceiling.mul_f64(0.5 + random / 2.0)
}

fn tag_random() -> u32 {
    crate::ws::registry::node::tag_of(uuid::Uuid::new_v4().as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_with_jitter_up_to_a_ceiling() {
        for _ in 0..50 {
            let first = retry_after(0);
            assert!(first >= FIRST_RETRY / 2 && first <= FIRST_RETRY, "{first:?}");
            let later = retry_after(30);
            assert!(later >= LONGEST_RETRY / 2 && later <= LONGEST_RETRY, "{later:?}");
        }
        let spread: HashSet<Duration> = (0..20).map(|_| retry_after(3)).collect();
        assert!(spread.len() > 1, "jittered");
    }
}
