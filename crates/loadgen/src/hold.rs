//! Held connections: open many, keep them idle (answering the server's pings, as a browser
//! would), and on request have every one prove it is still served.

use crate::client::{self, Client};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Message;

/// What the controller on stdin asks of every held connection.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    Idle,
    Check(usize),
    Stop,
}

pub async fn run(
    url: &str,
    connections: usize,
    concurrency: usize,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    let results: Vec<Result<Client, String>> =
        stream::iter(0..connections).map(|_| client::connect(url)).buffer_unordered(concurrency).collect().await;
    let opening_seconds = started.elapsed().as_secs_f64();
    let mut first_error = None;
    let (orders, order) = watch::channel(Order::Idle);
    let answered = Arc::new(Answers::default());
    let mut held = Vec::new();
    for result in results {
        match result {
            Ok(socket) => held.push(tokio::spawn(keep(socket, order.clone(), answered.clone()))),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let opened = held.len();
    println!(
        "{}",
        json!({"load": "hold", "opened": opened, "failed": connections - opened,
               "error": first_error, "opening_seconds": opening_seconds})
    );

    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let mut checks = 0;
    while let Ok(Some(command)) = commands.next_line().await {
        if command.trim() != "check" {
            continue;
        }
        checks += 1;
        answered.count.store(0, Ordering::Release);
        let _ = orders.send(Order::Check(checks));
        let deadline = Instant::now() + timeout;
        loop {
            let more = answered.arrived.notified();
            if answered.count.load(Ordering::Acquire) >= opened
                || tokio::time::timeout_at(deadline.into(), more).await.is_err()
            {
                break;
            }
        }
        println!("{}", json!({"load": "check", "answered": answered.count.load(Ordering::Acquire), "of": opened}));
    }
    let _ = orders.send(Order::Stop);
    for connection in held {
        let _ = connection.await;
    }
    Ok(json!({"load": "hold", "closed": opened}))
}

/// Echoes received during a check; the controller waits on `arrived` rather than polling.
#[derive(Default)]
struct Answers {
    count: AtomicUsize,
    arrived: Notify,
}

async fn keep(mut socket: Client, mut order: watch::Receiver<Order>, answered: Arc<Answers>) {
    let mut awaiting: Option<String> = None;
    loop {
        tokio::select! {
            changed = order.changed() => {
                let current = *order.borrow_and_update();
                match current {
                    _ if changed.is_err() => break,
                    Order::Stop => break,
                    Order::Check(round) => {
                        let text = client::payload('c', round, 32);
                        if socket.send(Message::text(text.as_str())).await.is_err() {
                            break;
                        }
                        awaiting = Some(text);
                    }
                    Order::Idle => {}
                }
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if awaiting.as_deref() == Some(text.as_str()) {
                        awaiting = None;
                        answered.count.fetch_add(1, Ordering::AcqRel);
                        answered.arrived.notify_one();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
    client::abort(socket);
}
