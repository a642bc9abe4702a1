//! Subscribing: this node's own channel always, and the channel of every endpoint and room
//! that has members here, as the registry reports interest. When the connection is lost (Redis
//! restarted, `CLIENT KILL TYPE pubsub`), or its probes stop coming back (deaf while it looks
//! healthy), it reconnects with jittered backoff, subscribes again to everything, logs how long
//! the node did not hear, and runs the app's `on_broker_reconnect` handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyhost::bridge::{Bridge, Event};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Msg, PushInfo, PushKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::channels::Target;
use super::envelope::Content;
use super::{Broker, REDIS_TIMEOUT, retry_after};
use crate::metrics::Metrics;
use crate::ws::registry::Registry;

/// How often the node publishes a probe to its own channel, and how long it may go without
/// hearing one back before it takes its subscription for deaf.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const DEAF_AFTER: Duration = Duration::from_secs(3);
/// Messages read from Redis and not delivered yet. The connection's reader hands them over
/// without waiting: past this many (this node cannot keep up) they are dropped and counted,
/// so a flood never grows memory and Redis never sees a reader that stopped reading.
const RECEIVED_QUEUE: usize = 16_384;

/// A change of what this node wants to hear.
#[derive(Debug)]
pub enum Interest {
    Subscribe { channel: String, target: Target },
    Unsubscribe { channel: String },
}

/// When this node last heard its own probe.
pub struct Probes {
    heard: Instant,
}

impl Probes {
    pub fn heard(&mut self) {
        self.heard = Instant::now();
    }

    fn deaf(&self) -> bool {
        self.heard.elapsed() > DEAF_AFTER
    }
}

/// Why a subscription ended.
enum Lost {
    Closed,
    Deaf,
    Failed(redis::RedisError),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Closed => write!(f, "the connection closed"),
            Lost::Deaf => write!(f, "its probes stopped coming back within {DEAF_AFTER:?}"),
            Lost::Failed(error) => write!(f, "{error}"),
        }
    }
}

pub async fn run(
    broker: Arc<Broker>,
    client: redis::Client,
    mut interests: mpsc::UnboundedReceiver<Interest>,
    bridge: Arc<Bridge>,
) {
    let own = broker.channels.node(broker.node);
    // Every channel this node wants, by name, with what it delivers to (None: its own, and
    // presence).
    let mut wanted: HashMap<String, Option<Target>> = HashMap::from([(own, None), (broker.channels.presence(), None)]);
    let mut failures = 0;
    // Since when the node has not heard the broker (None: it never has yet).
    let mut deaf_since: Option<Instant> = None;
    loop {
        let subscription = match Subscription::open(&client, &wanted, &broker.registry).await {
            Ok(subscribed) => subscribed,
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(
                        "cannot subscribe to the broker ({error}): this node serves its own clients alone, \
                         and keeps trying"
                    );
                }
                let wait = retry_after(failures);
                failures += 1;
                deaf_since.get_or_insert_with(Instant::now);
                absorb_while_waiting(&mut interests, &mut wanted, wait).await;
                continue;
            }
        };
        failures = 0;
        broker.subscribed.store(true, Ordering::Release);
        broker.heard(wanted.keys().cloned(), true);
        // Whatever changed while this node did not hear the others, it learns (and tells) now.
        broker.registry.presence_rejoined();
        match deaf_since.take() {
            None => tracing::info!("subscribed to the broker"),
            Some(since) => {
                let gap = since.elapsed();
                let metrics = &broker.registry.metrics;
                metrics.broker_reconnects.fetch_add(1, Ordering::Relaxed);
                metrics
                    .broker_gap_micros
                    .fetch_add(u64::try_from(gap.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
                broker.redis_back.notify_one();
                tracing::warn!(
                    "subscribed to the broker again after {:.3} s: what other nodes published meanwhile did not \
                     reach this node's clients",
                    gap.as_secs_f64()
                );
                bridge.push(Event::BrokerReconnected { gap_seconds: gap.as_secs_f64() });
            }
        }
        let lost = listen(&broker, subscription, &mut interests, &mut wanted).await;
        broker.subscribed.store(false, Ordering::Release);
        broker.hears_nothing();
        deaf_since = Some(Instant::now());
        tracing::warn!("lost the broker subscription ({lost}): reconnecting");
    }
}

/// A subscribing connection (RESP3, so that what Redis pushes reaches `received` through a
/// handler that never waits), and the signal that it closed.
struct Subscription {
    connection: MultiplexedConnection,
    received: mpsc::Receiver<Msg>,
    closed: CancellationToken,
}

impl Subscription {
    async fn open(
        client: &redis::Client,
        wanted: &HashMap<String, Option<Target>>,
        registry: &Arc<Registry>,
    ) -> redis::RedisResult<Self> {
        let (queue, received) = mpsc::channel(RECEIVED_QUEUE);
        let closed = CancellationToken::new();
        let handler = {
            let (closed, registry) = (closed.clone(), registry.clone());
            move |push: PushInfo| {
                take_push(push, &queue, &closed, &registry.metrics);
                Ok::<(), std::convert::Infallible>(())
            }
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_push_sender(handler);
        let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
        connection.subscribe(wanted.keys().collect::<Vec<_>>()).await?;
        Ok(Self { connection, received, closed })
    }
}

/// What Redis pushed: a message goes to the queue (or, when it is full, is counted as
/// dropped); the library's note that the connection closed ends the subscription.
fn take_push(push: PushInfo, queue: &mpsc::Sender<Msg>, closed: &CancellationToken, metrics: &Metrics) {
    match push.kind {
        PushKind::Message => {
            if let Some(message) = Msg::from_push_info(push)
                && queue.try_send(message).is_err()
            {
                metrics.broker_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
        PushKind::Disconnection => closed.cancel(),
        // Confirmations of (un)subscribing are awaited by the commands themselves.
        _ => {}
    }
}

/// Delivers what comes in, follows interest changes, and probes, until the subscription is lost.
async fn listen(
    broker: &Broker,
    subscription: Subscription,
    interests: &mut mpsc::UnboundedReceiver<Interest>,
    wanted: &mut HashMap<String, Option<Target>>,
) -> Lost {
    let Subscription { mut connection, mut received, closed } = subscription;
    let own = broker.channels.node(broker.node);
    let mut probes = Probes { heard: Instant::now() };
    let mut probe = tokio::time::interval(PROBE_EVERY);
    loop {
        tokio::select! {
            message = received.recv() => {
                let Some(message) = message else { return Lost::Closed };
                let target = wanted.get(message.get_channel_name()).and_then(Option::as_ref);
                let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                broker.receive(target, payload, &mut probes);
            }
            () = closed.cancelled() => return Lost::Closed,
            Some(change) = interests.recv() => {
                let outcome = match change {
                    Interest::Subscribe { channel, target } => {
                        let outcome = connection.subscribe(&channel).await;
                        wanted.insert(channel.clone(), Some(target));
                        if outcome.is_ok() {
                            broker.heard([channel], true);
                        }
                        outcome
                    }
                    Interest::Unsubscribe { channel } => {
                        wanted.remove(&channel);
                        broker.heard([channel.clone()], false);
                        connection.unsubscribe(&channel).await
                    }
                };
                if let Err(error) = outcome {
                    return Lost::Failed(error);
                }
            }
            _ = probe.tick() => {
                if probes.deaf() {
                    return Lost::Deaf;
                }
                broker.publish(own.clone(), Content::Probe);
            }
        }
    }
}

/// Waits `wait` while keeping `wanted` up to date, so the next subscription is current.
async fn absorb_while_waiting(
    interests: &mut mpsc::UnboundedReceiver<Interest>,
    wanted: &mut HashMap<String, Option<Target>>,
    wait: Duration,
) {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            Some(change) = interests.recv() => match change {
                Interest::Subscribe { channel, target } => {
                    wanted.insert(channel, Some(target));
                }
                Interest::Unsubscribe { channel } => {
                    wanted.remove(&channel);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn message(channel: &str, payload: &[u8]) -> PushInfo {
        PushInfo {
            kind: PushKind::Message,
            data: vec![Value::BulkString(channel.as_bytes().to_vec()), Value::BulkString(payload.to_vec())],
        }
    }

    #[test]
    fn messages_queue_until_full_then_are_dropped_and_counted() {
        let (queue, mut received) = mpsc::channel(1);
        let (closed, metrics) = (CancellationToken::new(), Metrics::default());
        take_push(message("robyn:0:/chat", b"one"), &queue, &closed, &metrics);
        take_push(message("robyn:0:/chat", b"two"), &queue, &closed, &metrics);
        let first = received.try_recv().expect("the first message is queued");
        assert_eq!((first.get_channel_name(), first.get_payload_bytes()), ("robyn:0:/chat", &b"one"[..]));
        assert!(received.try_recv().is_err(), "the second found the queue full");
        assert_eq!(metrics.broker_drops.load(Ordering::Relaxed), 1);
        assert!(!closed.is_cancelled());
    }

    #[test]
    fn the_connection_closing_ends_the_subscription_and_confirmations_are_ignored() {
        let (queue, mut received) = mpsc::channel(1);
        let (closed, metrics) = (CancellationToken::new(), Metrics::default());
        let confirmation = PushInfo { kind: PushKind::Subscribe, data: vec![] };
        take_push(confirmation, &queue, &closed, &metrics);
        assert!(received.try_recv().is_err() && !closed.is_cancelled());
        take_push(PushInfo { kind: PushKind::Disconnection, data: vec![] }, &queue, &closed, &metrics);
        assert!(closed.is_cancelled());
        assert_eq!(metrics.broker_drops.load(Ordering::Relaxed), 0);
    }
}
