//! Delivery latency between two clients: a publisher whose every message the server
//! broadcasts to the others, and one subscriber, on the same process or another (another
//! worker of `--processes`, or another instance behind the broker). One message in flight:
//! what is measured is the time from the publisher's send to the subscriber's receipt.
//!
//! The server's `/relay` endpoint greets each client with `pid <pid>`, which is how the load
//! places its subscriber: it reconnects until the subscriber lands where `place` says.

use crate::client::{self, Client};
use crate::echo::percentile_us;
use crate::marks::Marks;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How many connections the load tries before it gives up placing the subscriber.
const PLACING_ATTEMPTS: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Place {
    /// The subscriber is served by the publisher's process.
    Same,
    /// By another process.
    Other,
}

pub struct Plan {
    pub place: Place,
    pub size: usize,
    pub warmup: Duration,
    pub measured: Duration,
}

pub async fn run(from: &str, to: &str, plan: Plan, marks: Marks) -> Result<serde_json::Value, String> {
    let (mut publisher, publisher_pid) = greeted(from).await?;
    let mut subscriber = None;
    for _ in 0..PLACING_ATTEMPTS {
        let (socket, pid) = greeted(to).await?;
        if (pid == publisher_pid) == (plan.place == Place::Same) {
            subscriber = Some(socket);
            break;
        }
        client::abort(socket);
    }
    let mut subscriber = subscriber.ok_or_else(|| {
        format!("no connection to {to} in {PLACING_ATTEMPTS} tries was served where the load needs it")
    })?;
    prime(&mut publisher, &mut subscriber, plan.size).await?;

    let begin = Instant::now();
    let (measure_from, end) = (begin + plan.warmup, begin + plan.warmup + plan.measured);
    let mut started = false;
    let mut latencies_ns = Vec::new();
    let mut index = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= measure_from && !started {
            marks.pass("start");
            started = true;
        }
        index += 1;
        let took =
            relay_once(&mut publisher, &mut subscriber, &client::payload('m', index, plan.size), end - now).await?;
        if now >= measure_from {
            latencies_ns.push(took.as_nanos().min(u32::MAX as u128) as u32);
        }
    }
    marks.pass("end");
    client::abort(publisher);
    client::abort(subscriber);
    latencies_ns.sort_unstable();
    let seconds = plan.measured.as_secs_f64();
    Ok(json!({
        "load": "relay",
        "size": plan.size,
        "seconds": seconds,
        "messages": latencies_ns.len(),
        "rate": latencies_ns.len() as f64 / seconds,
        "p50_us": percentile_us(&latencies_ns, 0.50),
        "p99_us": percentile_us(&latencies_ns, 0.99),
    }))
}

/// A connection to `url` and the pid its greeting names.
async fn greeted(url: &str) -> Result<(Client, String), String> {
    let mut socket = client::connect(url).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => match text.as_str().strip_prefix("pid ") {
                Some(pid) => return Ok((socket, pid.to_owned())),
                None => return Err(format!("{url} greeted with {:?}, not `pid <pid>`", text.as_str())),
            },
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(format!("{url}: {error}")),
            None => return Err(format!("{url} closed before its greeting")),
        }
    }
}

/// The subscriber's handler may join its endpoint (and a broker's channel be subscribed) a
/// moment after the greeting: priming messages go out every 100 ms until one arrives.
async fn prime(publisher: &mut Client, subscriber: &mut Client, size: usize) -> Result<(), String> {
    for round in 0..100 {
        publisher.send(Message::text(client::payload('p', round, size))).await.map_err(|error| error.to_string())?;
        let heard = tokio::time::timeout(Duration::from_millis(100), async {
            loop {
                match subscriber.next().await {
                    Some(Ok(Message::Text(text))) if text.as_str().starts_with('p') => return Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(format!("subscriber: {error}")),
                    None => return Err("the server closed the subscriber".to_owned()),
                }
            }
        });
        if let Ok(heard) = heard.await {
            return heard;
        }
    }
    Err("no broadcast reached the subscriber within 10 s".to_owned())
}

/// Sends `message` from the publisher and waits for the subscriber to have it; answers how
/// long that took.
async fn relay_once(
    publisher: &mut Client,
    subscriber: &mut Client,
    message: &str,
    within: Duration,
) -> Result<Duration, String> {
    let sent = Instant::now();
    publisher.send(Message::text(message)).await.map_err(|error| error.to_string())?;
    let arrived = async {
        loop {
            match subscriber.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == message => return Ok(Instant::now()),
                // A priming message, arriving late.
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(format!("subscriber: {error}")),
                None => return Err("the server closed the subscriber".to_owned()),
            }
        }
    };
    match tokio::time::timeout(within.max(Duration::from_secs(10)), arrived).await {
        Ok(arrived) => Ok(arrived? - sent),
        Err(_) => Err(format!("{message:.16}… never reached the subscriber")),
    }
}
