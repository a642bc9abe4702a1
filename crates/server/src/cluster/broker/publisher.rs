//! Publishing: whatever has queued since the last write goes to Redis as one pipeline (one
//! write, one round trip), in the order it was queued. While Redis cannot be reached, what
//! comes in is dropped and counted rather than held; the node's own clients got it already.
//! The same connection renews this node's entry among the live nodes and reads the others'.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use super::{Broker, REDIS_TIMEOUT, retry_after, write};

/// Publishes sent in one pipeline at most.
const BATCH: usize = 1024;
/// How often a node renews its entry among the live nodes, and how long an entry lasts.
const PRESENCE_EVERY: Duration = Duration::from_secs(2);
const PRESENCE_LASTS: Duration = Duration::from_secs(6);

pub async fn run(broker: Arc<Broker>, client: redis::Client, mut queued: mpsc::Receiver<(String, Bytes)>) {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    let mut connection: Option<MultiplexedConnection> = None;
    let mut failures = 0;
    let mut next_attempt = tokio::time::Instant::now();
    let mut presence = tokio::time::interval(PRESENCE_EVERY);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = queued.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
            }
            _ = presence.tick() => {}
            () = broker.redis_back.notified() => {
                // Whatever went on the old connection now would be lost: start afresh.
                connection = None;
                next_attempt = tokio::time::Instant::now();
            }
        }
        // The subscriber reaching Redis says it is worth trying now, backoff or not.
        let worth_trying = tokio::time::Instant::now() >= next_attempt || broker.subscribed.load(Ordering::Acquire);
        if connection.is_none() && worth_trying {
            match client.get_multiplexed_async_connection_with_config(&config).await {
                Ok(connected) => {
                    if failures > 0 {
                        tracing::info!("publishing to the broker again");
                    }
                    failures = 0;
                    connection = Some(connected);
                }
                Err(error) => {
                    if failures == 0 {
                        tracing::warn!(
                            "cannot publish to the broker ({error}): broadcasts reach this node's clients only until it is back"
                        );
                    }
                    next_attempt = tokio::time::Instant::now() + retry_after(failures);
                    failures += 1;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            drop_all(&broker, &mut batch);
            continue;
        };
        let outcome =
            if batch.is_empty() { renew(&broker, open).await } else { publish(&broker, open, &mut batch).await };
        if let Err(error) = outcome {
            tracing::warn!("publishing to the broker failed ({error}): reconnecting");
            connection = None;
            failures = 1;
            next_attempt = tokio::time::Instant::now() + retry_after(0);
        }
    }
}

async fn publish(
    broker: &Broker,
    connection: &mut MultiplexedConnection,
    batch: &mut Vec<(String, Bytes)>,
) -> redis::RedisResult<()> {
    let mut pipeline = redis::pipe();
    for (channel, envelope) in batch.iter() {
        pipeline.publish(channel, envelope.as_ref()).ignore();
    }
    let count = batch.len() as u64;
    batch.clear();
    let metrics = &broker.registry.metrics;
    match pipeline.query_async::<()>(connection).await {
        Ok(()) => {
            metrics.broker_publishes.fetch_add(count, Ordering::Relaxed);
            Ok(())
        }
        Err(error) => {
            metrics.broker_drops.fetch_add(count, Ordering::Relaxed);
            Err(error)
        }
    }
}

fn drop_all(broker: &Broker, batch: &mut Vec<(String, Bytes)>) {
    broker.registry.metrics.broker_drops.fetch_add(batch.len() as u64, Ordering::Relaxed);
    batch.clear();
}

/// Renews this node's entry among the live nodes, forgets expired ones, and reads the rest.
async fn renew(broker: &Broker, connection: &mut MultiplexedConnection) -> redis::RedisResult<()> {
    let now = unix_seconds();
    let key = broker.channels.nodes();
    let (live,): (Vec<String>,) = redis::pipe()
        .zadd(&key, format!("{:08x}", broker.node), now + PRESENCE_LASTS.as_secs_f64())
        .ignore()
        .zrembyscore(&key, "-inf", now)
        .ignore()
        .zrangebyscore(&key, now, "+inf")
        .query_async(connection)
        .await?;
    let peers: HashSet<u32> =
        live.iter().filter_map(|tag| u32::from_str_radix(tag, 16).ok()).filter(|tag| *tag != broker.node).collect();
    broker.registry.presence_alive(&peers, false, PRESENCE_LASTS);
    *write(&broker.peers) = peers;
    Ok(())
}

fn unix_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}
