//! Broadcast fan-out: subscribers that only listen, and a publisher (or several, taking turns)
//! whose every message the server's handler broadcasts to the whole endpoint (publishers
//! included).
//!
//! One burst of 100 broadcasts to 1,000 subscribers is over in a tenth of a second, so a
//! single burst is at the mercy of one unlucky context switch; the load sends `repeat`
//! bursts over the same subscribers and reports each and their median.

use crate::client::{self, Client};
use crate::marks::Marks;
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

pub struct Plan {
    pub subscribers: usize,
    pub publishers: usize,
    /// Broadcasts per burst.
    pub messages: usize,
    pub repeat: usize,
    pub size: usize,
    pub timeout: Duration,
}

/// Counts shared by the subscribers and the publisher.
#[derive(Default)]
struct Progress {
    /// Subscribers that have seen a priming message, so the server has them registered.
    primed: AtomicUsize,
    /// Subscribers that have received the whole of the current burst, over all bursts.
    finished: AtomicUsize,
    /// When the last subscriber finished the current burst.
    burst_done: Mutex<Option<Instant>>,
    changed: Notify,
}

pub async fn run(url: &str, also: Option<&str>, plan: Plan, mut marks: Marks) -> Result<serde_json::Value, String> {
    let sockets: Vec<Client> = stream::iter(0..plan.subscribers)
        // With a second server, every other subscriber is its client.
        .map(|index| client::connect(also.filter(|_| index % 2 == 1).unwrap_or(url)))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let progress = Arc::new(Progress::default());
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|socket| tokio::spawn(listen(socket, plan.messages, plan.subscribers, progress.clone())))
        .collect();

    let mut publishers = Vec::with_capacity(plan.publishers);
    let mut drains = Vec::with_capacity(plan.publishers);
    for _ in 0..plan.publishers {
        let (publish, mut replies) = client::connect(url).await?.split();
        publishers.push(publish);
        // A publisher's own copies of each broadcast are read and dropped.
        drains.push(tokio::spawn(async move { while let Some(Ok(_)) = replies.next().await {} }));
    }
    let deadline = Instant::now() + plan.timeout;
    // A subscriber's handshake can complete a moment before the server's handler has joined
    // it to the endpoint; broadcast a priming message until every subscriber has seen one.
    let mut round = 0;
    while progress.primed.load(Ordering::Acquire) < plan.subscribers {
        if Instant::now() >= deadline {
            let primed = progress.primed.load(Ordering::Acquire);
            return Err(format!("only {primed} of {} subscribers received a broadcast", plan.subscribers));
        }
        let changed = progress.changed.notified();
        let publish = &mut publishers[0];
        publish.send(Message::text(client::payload('p', round, plan.size))).await.map_err(|e| e.to_string())?;
        round += 1;
        let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
    }

    let per_burst = plan.subscribers * plan.messages;
    let mut rates = Vec::new();
    // Every subscriber is connected and registered: what is measured starts here.
    marks.wait("start").await?;
    for burst in 1..=plan.repeat {
        let start = Instant::now();
        for index in 0..plan.messages {
            let message = client::payload('m', index, plan.size);
            let publish = &mut publishers[index % plan.publishers];
            publish.send(Message::text(message)).await.map_err(|e| e.to_string())?;
        }
        let done = loop {
            let changed = progress.changed.notified();
            if progress.finished.load(Ordering::Acquire) >= burst * plan.subscribers {
                break progress.burst_done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, changed).await.is_err() {
                let finished = progress.finished.load(Ordering::Acquire) - (burst - 1) * plan.subscribers;
                return Err(format!(
                    "burst {burst}: only {finished} of {} subscribers received all {} broadcasts in time",
                    plan.subscribers, plan.messages
                ));
            }
        };
        let seconds = (done.unwrap_or_else(Instant::now) - start).as_secs_f64();
        rates.push(per_burst as f64 / seconds);
    }
    marks.wait("end").await?;
    for drain in drains {
        drain.abort();
    }
    for listener in listeners {
        listener.abort();
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "load": "fanout",
        "subscribers": plan.subscribers,
        "publishers": plan.publishers,
        "messages": plan.messages,
        "size": plan.size,
        "bursts": rates,
        "rate": sorted[sorted.len() / 2],
    }))
}

/// Reads broadcasts for as long as the load runs; reports each finished burst.
async fn listen(mut socket: Client, messages: usize, subscribers: usize, progress: Arc<Progress>) {
    let mut primed = false;
    let mut received = 0;
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else { continue };
        if text.starts_with('p') {
            if !primed {
                primed = true;
                progress.primed.fetch_add(1, Ordering::AcqRel);
                progress.changed.notify_waiters();
            }
            continue;
        }
        received += 1;
        if received % messages == 0 {
            let finished = progress.finished.fetch_add(1, Ordering::AcqRel) + 1;
            if finished % subscribers == 0 {
                *progress.burst_done.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
                progress.changed.notify_waiters();
            }
        }
    }
}
