//! What `/metrics` reports. Counted as plain atomics where the work happens (the connection
//! task adds once per poll, not once per message), snapshotted as plain numbers (which the
//! workers of `--processes` send to each other to sum), and rendered with prometheus-client
//! only when scraped.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use serde::{Deserialize, Serialize};

use pyhost::locks::lock;

/// Upper bounds of the pub/sub lag histogram, in seconds.
const LAG_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

#[derive(Default)]
pub struct Metrics {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Broadcast calls (to an endpoint or a room), from this process's handlers.
    pub broadcasts: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub broker_publishes: AtomicU64,
    pub broker_receives: AtomicU64,
    pub broker_drops: AtomicU64,
    pub broker_reconnects: AtomicU64,
    /// Time without the broker subscription, between losing it and having it again (µs).
    pub broker_gap_micros: AtomicU64,
    /// Notes the local bus of `--processes` could not carry (a process stalled).
    pub bus_drops: AtomicU64,
    /// Handshake answers by status (101 for an upgrade).
    handshakes: Mutex<BTreeMap<u16, u64>>,
    /// Connections ended, by the close code of their closing handshake (1006: none).
    close_codes: Mutex<BTreeMap<u16, u64>>,
    /// Publish-to-delivery lag of broker messages: counts per bucket (the last: above all),
    /// and the sum in microseconds.
    lag_buckets: [AtomicU64; LAG_BUCKETS.len() + 1],
    lag_micros: AtomicU64,
}

/// The numbers at one moment, to send, sum and render.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Open connections per route pattern.
    pub connections: BTreeMap<String, u64>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub broadcasts: u64,
    pub slow_consumer_closes: u64,
    pub broker_publishes: u64,
    pub broker_receives: u64,
    pub broker_drops: u64,
    pub broker_reconnects: u64,
    pub broker_gap_micros: u64,
    pub bus_drops: u64,
    pub handshakes: BTreeMap<u16, u64>,
    pub close_codes: BTreeMap<u16, u64>,
    pub lag_buckets: Vec<u64>,
    pub lag_micros: u64,
}

impl Metrics {
    pub fn handshake(&self, status: u16) {
        *lock(&self.handshakes).entry(status).or_default() += 1;
    }

    pub fn closed(&self, code: u16) {
        *lock(&self.close_codes).entry(code).or_default() += 1;
    }

    /// A broker message delivered `lag` after it was published.
    pub fn lag(&self, lag: std::time::Duration) {
        let seconds = lag.as_secs_f64();
        let bucket = LAG_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(LAG_BUCKETS.len());
        self.lag_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.lag_micros.fetch_add(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// This process's numbers, with `connections` as the registry counts them now.
    pub fn snapshot(&self, connections: BTreeMap<String, u64>) -> Snapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Snapshot {
            connections,
            messages_in: read(&self.messages_in),
            messages_out: read(&self.messages_out),
            bytes_in: read(&self.bytes_in),
            bytes_out: read(&self.bytes_out),
            broadcasts: read(&self.broadcasts),
            slow_consumer_closes: read(&self.slow_consumer_closes),
            broker_publishes: read(&self.broker_publishes),
            broker_receives: read(&self.broker_receives),
            broker_drops: read(&self.broker_drops),
            broker_reconnects: read(&self.broker_reconnects),
            broker_gap_micros: read(&self.broker_gap_micros),
            bus_drops: read(&self.bus_drops),
            handshakes: lock(&self.handshakes).clone(),
            close_codes: lock(&self.close_codes).clone(),
            lag_buckets: self.lag_buckets.iter().map(read).collect(),
            lag_micros: read(&self.lag_micros),
        }
    }
}

impl Snapshot {
    /// Adds another process's numbers to these.
    pub fn add(&mut self, other: &Snapshot) {
        merge(&mut self.connections, &other.connections);
        merge(&mut self.handshakes, &other.handshakes);
        merge(&mut self.close_codes, &other.close_codes);
        self.messages_in += other.messages_in;
        self.messages_out += other.messages_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.broadcasts += other.broadcasts;
        self.slow_consumer_closes += other.slow_consumer_closes;
        self.broker_publishes += other.broker_publishes;
        self.broker_receives += other.broker_receives;
        self.broker_drops += other.broker_drops;
        self.broker_reconnects += other.broker_reconnects;
        self.broker_gap_micros += other.broker_gap_micros;
        self.bus_drops += other.bus_drops;
        self.lag_buckets.resize(self.lag_buckets.len().max(other.lag_buckets.len()), 0);
        for (into, from) in self.lag_buckets.iter_mut().zip(&other.lag_buckets) {
            *into += from;
        }
        self.lag_micros += other.lag_micros;
    }

    /// The Prometheus (OpenMetrics) text exposition.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("robyn_ws");
        let connections = Family::<Vec<(String, String)>, Gauge>::default();
        for (path, count) in &self.connections {
            connections
                .get_or_create(&vec![("path".into(), path.clone())])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        registry.register("connections", "Open WebSocket connections, by route", connections);
        let handshakes = Family::<Vec<(String, String)>, Counter>::default();
        for (status, count) in &self.handshakes {
            handshakes.get_or_create(&vec![("status".into(), status.to_string())]).inc_by(*count);
        }
        registry.register("handshakes", "Handshakes answered, by HTTP status (101: upgraded)", handshakes);
        let close_codes = Family::<Vec<(String, String)>, Counter>::default();
        for (code, count) in &self.close_codes {
            close_codes.get_or_create(&vec![("code".into(), code.to_string())]).inc_by(*count);
        }
        registry.register("closes", "Connections ended, by close code (1006: no closing handshake)", close_codes);
        for (name, help, value) in [
            ("messages_in", "Messages received from clients", self.messages_in),
            ("messages_out", "Messages sent to clients", self.messages_out),
            ("bytes_in", "Payload bytes received from clients", self.bytes_in),
            ("bytes_out", "Payload bytes sent to clients", self.bytes_out),
            ("broadcasts", "Broadcasts made by handlers (to a route or a room)", self.broadcasts),
            (
                "slow_consumer_closes",
                "Clients closed with 1013 for not reading their broadcasts",
                self.slow_consumer_closes,
            ),
            ("broker_publishes", "Messages published to the broker", self.broker_publishes),
            ("broker_receives", "Messages received from the broker for this node", self.broker_receives),
            (
                "broker_drops",
                "Messages not published (broker unreachable) or not delivered (queue full)",
                self.broker_drops,
            ),
            ("broker_reconnects", "Reconnections to the broker", self.broker_reconnects),
            ("bus_drops", "Messages the local bus between processes could not carry", self.bus_drops),
        ] {
            let counter = Counter::<u64>::default();
            counter.inc_by(value);
            registry.register(name, help, counter);
        }
        let gap = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        gap.inc_by(micros_as_seconds(self.broker_gap_micros));
        registry.register("broker_gap_seconds", "Time the broker subscription was down, reconnections included", gap);
        registry.register("broker_lag_seconds", "Broker messages, time from publish to delivery", self.lag_histogram());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }

    fn lag_histogram(&self) -> LagHistogram {
        // Counts per bucket (the encoder adds them up into the exposition's cumulative ones).
        let buckets: Vec<(f64, u64)> = LAG_BUCKETS
            .iter()
            .chain([&f64::INFINITY])
            .enumerate()
            .map(|(index, bound)| (*bound, self.lag_buckets.get(index).copied().unwrap_or(0)))
            .collect();
        let count = buckets.iter().map(|(_, count)| count).sum();
        LagHistogram { sum: micros_as_seconds(self.lag_micros), count, buckets }
    }
}

#[allow(clippy::cast_precision_loss, reason = "sums of microseconds, shown in seconds")]
fn micros_as_seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

fn merge<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, value) in from {
        *into.entry(key.clone()).or_default() += value;
    }
}

/// A histogram whose buckets are already counted (summed over workers), encoded as one.
#[derive(Debug)]
struct LagHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl prometheus_client::metrics::TypedMetric for LagHistogram {
    const TYPE: prometheus_client::metrics::MetricType = prometheus_client::metrics::MetricType::Histogram;
}

impl prometheus_client::encoding::EncodeMetric for LagHistogram {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn snapshots_add_up_and_render_as_openmetrics() {
        let metrics = Metrics::default();
        for status in [101, 101, 404] {
            metrics.handshake(status);
        }
        metrics.closed(1000);
        metrics.messages_in.fetch_add(3, Ordering::Relaxed);
        for lag in [Duration::from_micros(300), Duration::from_millis(20), Duration::from_secs(5)] {
            metrics.lag(lag);
        }
        let mut total = metrics.snapshot(BTreeMap::from([("/chat".to_owned(), 2)]));
        total.add(&metrics.snapshot(BTreeMap::from([("/chat".to_owned(), 1)])));
        let text = total.render();
        for line in [
            "robyn_ws_connections{path=\"/chat\"} 3",
            "robyn_ws_handshakes_total{status=\"101\"} 4",
            "robyn_ws_handshakes_total{status=\"404\"} 2",
            "robyn_ws_closes_total{code=\"1000\"} 2",
            "robyn_ws_messages_in_total 6",
            "robyn_ws_broker_lag_seconds_bucket{le=\"0.0005\"} 2",
            "robyn_ws_broker_lag_seconds_bucket{le=\"0.025\"} 4",
            "robyn_ws_broker_lag_seconds_bucket{le=\"+Inf\"} 6",
            "robyn_ws_broker_lag_seconds_count 6",
        ] {
            assert!(text.lines().any(|written| written == line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
