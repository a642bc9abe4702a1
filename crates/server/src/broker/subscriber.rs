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
use futures_util::StreamExt;
use pyhost::bridge::{Bridge, Event};
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;

use super::channels::Target;
use super::envelope::Content;
use super::{Broker, REDIS_TIMEOUT, retry_after};

/// How often the node publishes a probe to its own channel, and how long it may go without
/// hearing one back before it takes its subscription for deaf.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const DEAF_AFTER: Duration = Duration::from_secs(3);

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
    // Every channel this node wants, by name, with what it delivers to (None: its own).
    let mut wanted: HashMap<String, Option<Target>> = HashMap::from([(own, None)]);
    let mut failures = 0;
    // Since when the node has not heard the broker (None: it never has yet).
    let mut deaf_since: Option<Instant> = None;
    loop {
        let attempt = async {
            let pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await.map_err(|_| {
                redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"))
            })??;
            let (mut sink, stream) = pubsub.split();
            let channels: Vec<&String> = wanted.keys().collect();
            tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(channels)).await.map_err(|_| {
                redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "subscribing timed out"))
            })??;
            Ok::<_, redis::RedisError>((sink, stream))
        };
        let (sink, stream) = match attempt.await {
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
        let lost = listen(&broker, sink, stream, &mut interests, &mut wanted).await;
        broker.subscribed.store(false, Ordering::Release);
        deaf_since = Some(Instant::now());
        tracing::warn!("lost the broker subscription ({lost}): reconnecting");
    }
}

/// Delivers what comes in, follows interest changes, and probes, until the subscription is lost.
async fn listen(
    broker: &Broker,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    interests: &mut mpsc::UnboundedReceiver<Interest>,
    wanted: &mut HashMap<String, Option<Target>>,
) -> Lost {
    let own = broker.channels.node(broker.node);
    let mut probes = Probes { heard: Instant::now() };
    let mut probe = tokio::time::interval(PROBE_EVERY);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return Lost::Closed };
                let target = wanted.get(message.get_channel_name()).and_then(Option::as_ref);
                let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                broker.receive(target, payload, &mut probes);
            }
            Some(change) = interests.recv() => {
                let outcome = match change {
                    Interest::Subscribe { channel, target } => {
                        let outcome = sink.subscribe(&channel).await;
                        wanted.insert(channel, Some(target));
                        outcome
                    }
                    Interest::Unsubscribe { channel } => {
                        wanted.remove(&channel);
                        sink.unsubscribe(&channel).await
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
