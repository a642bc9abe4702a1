//! Keep-alive for one connection: after `interval` without hearing from the client, ping it;
//! if it still says nothing for `timeout`, it is gone. Anything the client sends counts as
//! proof of life, so a busy connection never pings. One timer per connection, re-armed only
//! when it fires (not on every message).

use std::pin::Pin;
use std::task::Context;

use tokio::time::{Instant, Sleep, sleep};

use crate::config::Keepalive;

pub struct Watch {
    settings: Keepalive,
    timer: Pin<Box<Sleep>>,
    /// Something arrived from the client since the timer was last armed.
    heard: bool,
    /// A ping is out and unanswered.
    pinged: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Quiet,
    SendPing,
    /// No answer within the timeout after a ping.
    Gone,
}

impl Watch {
    pub fn new(settings: Keepalive) -> Self {
        Self { settings, timer: Box::pin(sleep(settings.interval)), heard: false, pinged: false }
    }

    pub fn heard(&mut self) {
        self.heard = true;
    }

    /// What to do now. `paused` says the server itself stopped reading this client (its
    /// handler is behind), so its silence proves nothing.
    pub fn poll(&mut self, cx: &mut Context<'_>, paused: bool) -> Verdict {
        if self.timer.as_mut().poll(cx).is_pending() {
            return Verdict::Quiet;
        }
        let verdict = if self.heard || paused {
            self.pinged = false;
            self.arm(self.settings.interval);
            Verdict::Quiet
        } else if self.pinged {
            return Verdict::Gone;
        } else {
            self.pinged = true;
            self.arm(self.settings.timeout);
            Verdict::SendPing
        };
        self.heard = false;
        // Registers the waker for the new deadline.
        let _ = self.timer.as_mut().poll(cx);
        verdict
    }

    fn arm(&mut self, after: std::time::Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::task::Poll;
    use std::time::Duration;

    fn watch() -> Watch {
        Watch::new(Keepalive { interval: Duration::from_secs(20), timeout: Duration::from_secs(5) })
    }

    async fn next_verdict(watch: &mut Watch, paused: bool) -> Verdict {
        poll_fn(|cx| match watch.poll(cx, paused) {
            Verdict::Quiet => Poll::Pending,
            verdict => Poll::Ready(verdict),
        })
        .await
    }

    async fn verdict_after(watch: &mut Watch, seconds: u64, paused: bool) -> Verdict {
        tokio::time::advance(Duration::from_secs(seconds)).await;
        poll_fn(|cx| Poll::Ready(watch.poll(cx, paused))).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_pinged_then_dropped() {
        let mut watch = watch();
        assert_eq!(verdict_after(&mut watch, 19, false).await, Verdict::Quiet);
        assert_eq!(verdict_after(&mut watch, 1, false).await, Verdict::SendPing);
        assert_eq!(verdict_after(&mut watch, 4, false).await, Verdict::Quiet);
        assert_eq!(verdict_after(&mut watch, 1, false).await, Verdict::Gone);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_to_the_ping_keeps_the_client() {
        let mut watch = watch();
        assert_eq!(next_verdict(&mut watch, false).await, Verdict::SendPing);
        watch.heard();
        assert_eq!(verdict_after(&mut watch, 5, false).await, Verdict::Quiet);
        assert_eq!(verdict_after(&mut watch, 20, false).await, Verdict::SendPing);
    }

    #[tokio::test(start_paused = true)]
    async fn a_talking_client_is_never_pinged() {
        let mut watch = watch();
        for _ in 0..5 {
            watch.heard();
            assert_eq!(verdict_after(&mut watch, 20, false).await, Verdict::Quiet);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_the_server_stopped_reading_is_not_judged() {
        let mut watch = watch();
        assert_eq!(next_verdict(&mut watch, false).await, Verdict::SendPing);
        assert_eq!(verdict_after(&mut watch, 5, true).await, Verdict::Quiet);
    }
}
