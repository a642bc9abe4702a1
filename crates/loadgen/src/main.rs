//! The benchmark's load generator. One process, one thread by default, so that it leaves as
//! much of the machine as possible to the server it measures; every load prints one JSON
//! line that `bench/run.py` reads.

mod client;
mod echo;
mod fanout;
mod hold;
mod marks;
mod relay;

use clap::{Parser, Subcommand};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Load generator for robyn-ws-server's benchmark")]
struct Cli {
    /// Threads for the generator's tokio runtime (1 = a current-thread runtime).
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    /// Print `{"mark": ...}` lines at the edges of the measured span (see `marks`).
    #[arg(long, global = true)]
    marks: bool,
    /// The CA certificates (PEM) that `wss://` servers' certificates must come from.
    #[arg(long, global = true)]
    ca_file: Option<String>,
    #[command(subcommand)]
    load: Load,
}

#[derive(Subcommand)]
enum Load {
    /// Connections that each send a message and wait for its echo, `--in-flight` at a time.
    Echo {
        url: String,
        #[arg(long, default_value_t = 50)]
        connections: usize,
        #[arg(long, default_value_t = 1)]
        in_flight: usize,
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// Seconds measured, after `--warmup` seconds that are not.
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        #[arg(long, default_value_t = 0.5)]
        warmup: f64,
    },
    /// Subscribers on a broadcast endpoint, and one more client whose messages the server
    /// broadcasts to all of them.
    Fanout {
        url: String,
        /// Another server (another instance of the same app): every other subscriber
        /// connects there instead; the publisher stays on `url`.
        #[arg(long)]
        also: Option<String>,
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Broadcasts per burst.
        #[arg(long, default_value_t = 100)]
        messages: usize,
        /// Clients that take turns to publish a burst's messages (each message's broadcast
        /// is then one of several in flight).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        publishers: u32,
        /// Bursts over the same subscribers; the median is reported.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
    },
    /// Delivery latency from a publisher on `from` to one subscriber on `to`, placed on the
    /// publisher's process or another one (the app's `/relay` says which serves it).
    Relay {
        from: String,
        to: String,
        #[arg(long, value_enum, default_value_t = relay::Place::Other)]
        place: relay::Place,
        #[arg(long, default_value_t = 32)]
        size: usize,
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        #[arg(long, default_value_t = 0.5)]
        warmup: f64,
    },
    /// Open connections and keep them idle; `check` on stdin has each send one message and
    /// await its echo; end of stdin closes them all.
    Hold {
        url: String,
        #[arg(long)]
        connections: usize,
        /// Handshakes in progress at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Some(ca_file) = &cli.ca_file
        && let Err(error) = client::trust(ca_file)
    {
        eprintln!("error: {error}");
        std::process::exit(2);
    }
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads).enable_all().build()
    }
    .expect("cannot start the tokio runtime");
    let report = runtime.block_on(async move {
        let marks = marks::Marks::new(cli.marks);
        match cli.load {
            Load::Echo { url, connections, in_flight, size, seconds, warmup } => {
                let plan = echo::Plan {
                    connections,
                    in_flight,
                    size,
                    warmup: Duration::from_secs_f64(warmup),
                    measured: Duration::from_secs_f64(seconds),
                };
                echo::run(&url, plan, marks).await
            }
            Load::Fanout { url, also, subscribers, messages, publishers, repeat, size, timeout } => {
                let plan = fanout::Plan {
                    subscribers,
                    publishers: publishers as usize,
                    messages,
                    repeat: repeat as usize,
                    size,
                    timeout: Duration::from_secs_f64(timeout),
                };
                fanout::run(&url, also.as_deref(), plan, marks).await
            }
            Load::Relay { from, to, place, size, seconds, warmup } => {
                let plan = relay::Plan {
                    place,
                    size,
                    warmup: Duration::from_secs_f64(warmup),
                    measured: Duration::from_secs_f64(seconds),
                };
                relay::run(&from, &to, plan, marks).await
            }
            Load::Hold { url, connections, concurrency, timeout } => {
                hold::run(&url, connections, concurrency, Duration::from_secs_f64(timeout)).await
            }
        }
    });
    match report {
        Ok(mut json) => {
            // What a wss:// load's handshakes negotiated, so the harness can check that every
            // server it compares negotiated the same.
            if let (Some(tls), Some(fields)) = (client::negotiated(), json.as_object_mut()) {
                fields.insert("tls".into(), tls);
            }
            println!("{json}");
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
