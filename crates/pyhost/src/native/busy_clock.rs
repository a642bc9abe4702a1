//! The watchdog's clock: when the event loop last stopped waiting for I/O. The loop's
//! selector sets it around each wait (`loop_waiting`); the watchdog thread reads it without
//! the GIL, so nothing runs per message.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// When the event loop last stopped waiting for I/O, in nanoseconds since `EPOCH` plus one;
/// zero while it waits.
static BUSY_SINCE: AtomicU64 = AtomicU64::new(0);
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// How long the event loop has been running callbacks without waiting for I/O, and a token
/// that stays the same for one busy stretch; None while it waits.
pub fn busy() -> Option<(Duration, u64)> {
    let since = BUSY_SINCE.load(Ordering::SeqCst);
    (since != 0).then(|| (EPOCH.elapsed().saturating_sub(Duration::from_nanos(since - 1)), since))
}

/// `loop_waiting(waiting)`: called by the selector around each wait for I/O.
#[pyfunction]
pub fn loop_waiting(waiting: bool) {
    let value = if waiting { 0 } else { u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1 };
    // Sequentially consistent: the one-thread mode's standby driver pairs it with its own flag.
    BUSY_SINCE.store(value, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_from_the_end_of_a_wait_until_the_next_one() {
        loop_waiting(true);
        assert!(busy().is_none());
        loop_waiting(false);
        let (_, first) = busy().expect("busy after the wait ended");
        std::thread::sleep(Duration::from_millis(2));
        let (elapsed, same) = busy().expect("still busy");
        assert_eq!(first, same, "one busy stretch keeps its token");
        assert!(elapsed >= Duration::from_millis(2));
        loop_waiting(true);
        assert!(busy().is_none());
    }
}
