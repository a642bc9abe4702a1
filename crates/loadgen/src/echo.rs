//! Echo and latency: every connection sends a message and waits for the same text back,
//! keeping `in_flight` messages outstanding.

use crate::client::{self, Client};
use crate::marks::Marks;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub struct Plan {
    pub connections: usize,
    pub in_flight: usize,
    pub size: usize,
    pub warmup: Duration,
    pub measured: Duration,
}

/// What one connection saw inside the measured window.
#[derive(Default)]
struct Tally {
    echoed: u64,
    round_trips_ns: Vec<u32>,
}

pub async fn run(url: &str, plan: Plan, marks: Marks) -> Result<serde_json::Value, String> {
    let mut sockets = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        sockets.push(client::connect(url).await?);
    }
    // Every connection starts together, once all handshakes are done.
    let begin = Instant::now();
    let window = (begin + plan.warmup, begin + plan.warmup + plan.measured);
    // The load cannot pause: the marks go out on time while it runs.
    let marking = tokio::spawn(async move {
        tokio::time::sleep_until(window.0.into()).await;
        marks.pass("start");
        tokio::time::sleep_until(window.1.into()).await;
        marks.pass("end");
    });
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, socket)| tokio::spawn(drive(socket, index, plan.in_flight, plan.size, window)))
        .collect();
    let mut round_trips = Vec::new();
    let mut echoed = 0;
    for task in tasks {
        let tally = task.await.map_err(|error| error.to_string())??;
        echoed += tally.echoed;
        round_trips.extend(tally.round_trips_ns);
    }
    marking.await.map_err(|error| error.to_string())?;
    round_trips.sort_unstable();
    let seconds = plan.measured.as_secs_f64();
    Ok(json!({
        "load": "echo",
        "connections": plan.connections,
        "in_flight": plan.in_flight,
        "size": plan.size,
        "seconds": seconds,
        "messages": echoed,
        "rate": echoed as f64 / seconds,
        "p50_us": percentile_us(&round_trips, 0.50),
        "p99_us": percentile_us(&round_trips, 0.99),
    }))
}

async fn drive(
    mut socket: Client,
    index: usize,
    in_flight: usize,
    size: usize,
    (measure_from, end): (Instant, Instant),
) -> Result<Tally, String> {
    let message = client::payload('e', index, size);
    let mut sent_at = VecDeque::with_capacity(in_flight);
    let mut tally = Tally::default();
    for _ in 0..in_flight {
        socket.feed(Message::text(message.as_str())).await.map_err(|error| error.to_string())?;
        sent_at.push_back(Instant::now());
    }
    socket.flush().await.map_err(|error| error.to_string())?;
    loop {
        let reply = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => return Err(format!("connection {index}: expected the echo, got {other:?}")),
            Some(Err(error)) => return Err(format!("connection {index}: {error}")),
            None => return Err(format!("connection {index}: the server closed the connection")),
        };
        let now = Instant::now();
        let sent = sent_at.pop_front().ok_or("an echo nobody sent")?;
        if reply.as_str() != message {
            return Err(format!("connection {index}: echoed {:?}, sent {message:?}", reply.as_str()));
        }
        if now >= end {
            break;
        }
        if sent >= measure_from {
            tally.echoed += 1;
            tally.round_trips_ns.push((now - sent).as_nanos().min(u32::MAX as u128) as u32);
        }
        socket.send(Message::text(message.as_str())).await.map_err(|error| error.to_string())?;
        sent_at.push_back(Instant::now());
    }
    client::abort(socket);
    Ok(tally)
}

pub fn percentile_us(sorted_ns: &[u32], quantile: f64) -> Option<f64> {
    let last = sorted_ns.len().checked_sub(1)?;
    let at = ((last as f64) * quantile).round() as usize;
    Some(f64::from(sorted_ns[at]) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::percentile_us;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let ns: Vec<u32> = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(percentile_us(&ns, 0.5), Some(51.0));
        assert_eq!(percentile_us(&ns, 0.99), Some(99.0));
        assert_eq!(percentile_us(&[], 0.5), None);
    }
}
