//! Work that shutdown ends and then waits for, as it waits for WebSocket connections: the
//! streamed HTTP responses being sent (each ends after what its app queued), and the HTTP
//! connections open (each answers the request it has begun, then closes), so that neither a
//! stream nor a request a worker had already accepted is cut off when it stops (SIGTERM, or
//! `--reload` handing over to new code).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct InFlight {
    open: AtomicUsize,
    changed: Notify,
    /// Cancelled when shutdown begins: every stream ends after what the app queued, every
    /// connection after its current request.
    ending: CancellationToken,
}

/// One stream's (or connection's) place among the open ones, given back when it is dropped.
pub struct Place {
    streams: Arc<InFlight>,
}

impl InFlight {
    pub fn open(self: &Arc<Self>) -> Place {
        self.open.fetch_add(1, Ordering::AcqRel);
        Place { streams: self.clone() }
    }

    pub fn count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Resolves when shutdown begins.
    pub fn ending(&self) -> &CancellationToken {
        &self.ending
    }

    pub fn end_all(&self) {
        self.ending.cancel();
    }

    pub async fn until_none(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Listening before looking, so a place given back in between is not missed.
            changed.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.streams.open.fetch_sub(1, Ordering::AcqRel);
        self.streams.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn until_none_waits_for_the_last_place() {
        let streams = Arc::new(InFlight::default());
        let first = streams.open();
        let second = streams.open();
        assert_eq!(streams.count(), 2);
        drop(first);
        let waiting = streams.until_none();
        tokio::pin!(waiting);
        assert!(futures_util::poll!(&mut waiting).is_pending());
        drop(second);
        waiting.await;
        assert_eq!(streams.count(), 0);
    }
}
