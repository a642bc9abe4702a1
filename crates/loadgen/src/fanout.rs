//! Broadcast fan-out: subscribers that only listen, and a publisher whose every message the
//! server's handler broadcasts to the whole endpoint (publisher included).

use crate::client::{self, Client};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Counts shared by the subscribers and the publisher.
#[derive(Default)]
struct Progress {
    /// Subscribers that have seen a priming message, so the server has them registered.
    primed: AtomicUsize,
    delivered: AtomicU64,
    changed: Notify,
}

pub async fn run(
    url: &str,
    subscribers: usize,
    messages: usize,
    size: usize,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let sockets: Vec<Client> = stream::iter(0..subscribers)
        .map(|_| client::connect(url))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let progress = Arc::new(Progress::default());
    let listeners: Vec<_> =
        sockets.into_iter().map(|socket| tokio::spawn(listen(socket, messages, progress.clone()))).collect();

    let (mut publish, mut replies) = client::connect(url).await?.split();
    // The publisher's own copies of each broadcast are read and dropped.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = replies.next().await {} });
    let deadline = Instant::now() + timeout;
    // A subscriber's handshake can complete a moment before the server's handler has joined
    // it to the endpoint; broadcast a priming message until every subscriber has seen one.
    let mut round = 0;
    while progress.primed.load(Ordering::Acquire) < subscribers {
        if Instant::now() >= deadline {
            return Err(format!(
                "only {} of {subscribers} subscribers received a broadcast",
                progress.primed.load(Ordering::Acquire)
            ));
        }
        let primed = progress.changed.notified();
        publish.send(Message::text(client::payload('p', round, size))).await.map_err(|error| error.to_string())?;
        round += 1;
        let _ = tokio::time::timeout(Duration::from_millis(100), primed).await;
    }

    let start = Instant::now();
    for index in 0..messages {
        publish.send(Message::text(client::payload('m', index, size))).await.map_err(|error| error.to_string())?;
    }
    let mut last_arrival = start;
    let mut complete = 0;
    for listener in listeners {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(Ok(Ok(arrived))) = tokio::time::timeout(left, listener).await {
            complete += 1;
            last_arrival = last_arrival.max(arrived);
        }
    }
    drain.abort();
    let delivered = progress.delivered.load(Ordering::Acquire);
    let seconds = client::seconds(last_arrival - start);
    Ok(json!({
        "load": "fanout",
        "subscribers": subscribers,
        "messages": messages,
        "size": size,
        "delivered": delivered,
        "expected": (subscribers * messages) as u64,
        "subscribers_complete": complete,
        "seconds": seconds,
        "rate": if complete == subscribers { delivered as f64 / seconds } else { 0.0 },
    }))
}

/// Reads until all `messages` measured broadcasts have arrived; returns when the last did.
async fn listen(mut socket: Client, messages: usize, progress: Arc<Progress>) -> Result<Instant, String> {
    let mut primed = false;
    let mut received = 0;
    while received < messages {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.starts_with('p') => {
                if !primed {
                    primed = true;
                    progress.primed.fetch_add(1, Ordering::AcqRel);
                    progress.changed.notify_waiters();
                }
            }
            Some(Ok(Message::Text(_))) => {
                received += 1;
                progress.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.to_string()),
            None => return Err("the server closed a subscriber".into()),
        }
    }
    let arrived = Instant::now();
    client::abort(socket);
    Ok(arrived)
}
