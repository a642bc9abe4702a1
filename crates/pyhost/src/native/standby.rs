//! One-thread mode's standby driver. The loop thread runs the network side only between
//! Python's turns; a callback that keeps Python busy (a blocking call, a long computation)
//! would also stop every socket: no handshakes, no pongs, no writes. So a standby thread
//! watches the loop's busy clock and, once Python has been busy for a while, runs the network
//! side itself until the loop thread comes back for it. In the usual case (Python's turns are
//! short) it only looks at the clock a few hundred times a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::Notify;

use super::busy_clock::busy;

/// How often the standby looks at the busy clock.
const CHECK_EVERY: Duration = Duration::from_millis(2);

/// How long Python may keep the loop thread before the standby runs the network side.
const TAKE_OVER_AFTER: Duration = Duration::from_millis(5);

pub(super) struct Standby {
    /// The standby is running the network side (or about to).
    driving: AtomicBool,
    /// The loop thread wants the runtime back.
    back: Notify,
}

impl Standby {
    pub fn start(runtime: Arc<Runtime>) -> std::io::Result<Arc<Self>> {
        let standby = Arc::new(Self { driving: AtomicBool::new(false), back: Notify::new() });
        let watching = standby.clone();
        // Runs until the process exits: if the loop thread ever ends early, the network side
        // (shutdown on a signal among it) still runs.
        thread::Builder::new().name("io-standby".into()).spawn(move || watching.watch(&runtime))?;
        Ok(standby)
    }

    /// Called by the loop thread after it marked itself waiting on the busy clock, before it
    /// runs the network side: the standby, if driving, gives the runtime back.
    pub fn reclaim(&self) {
        if self.driving.load(Ordering::SeqCst) {
            self.back.notify_one();
        }
    }

    fn watch(&self, runtime: &Runtime) {
        loop {
            thread::sleep(CHECK_EVERY);
            if busy().is_none_or(|(busy_for, _)| busy_for < TAKE_OVER_AFTER) {
                continue;
            }
            self.driving.store(true, Ordering::SeqCst);
            // Either this sees the loop thread back on the clock, or the loop thread sees
            // `driving` and notifies: both are sequentially consistent.
            if busy().is_some() {
                runtime.block_on(self.until_reclaimed());
            }
            self.driving.store(false, Ordering::SeqCst);
        }
    }

    async fn until_reclaimed(&self) {
        loop {
            let back = self.back.notified();
            // A notification left from an earlier turn only costs one more look.
            if busy().is_none() {
                return;
            }
            back.await;
        }
    }
}
