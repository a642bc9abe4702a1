//! SIGINT and SIGTERM, as the server and the supervisor of `--processes` catch them, and
//! SIGHUP where it means something (reading the TLS certificate again).

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT and SIGTERM, caught from the moment this exists: create it before saying the
/// server is ready, so a signal sent right after that cannot kill the process outright.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Must be called inside the tokio runtime.
    pub fn install() -> io::Result<Self> {
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Returns when the process is asked to stop, with the signal that asked.
    pub async fn received(mut self) -> libc::c_int {
        let (name, number) = tokio::select! {
            _ = self.interrupt.recv() => ("SIGINT", libc::SIGINT),
            _ = self.terminate.recv() => ("SIGTERM", libc::SIGTERM),
        };
        tracing::info!("{name} received: shutting down");
        number
    }
}

/// SIGHUP, caught from the moment this exists (without it, SIGHUP ends the process).
pub struct Hangups(Signal);

impl Hangups {
    /// Must be called inside the tokio runtime.
    pub fn install() -> io::Result<Self> {
        Ok(Self(signal(SignalKind::hangup())?))
    }

    /// Returns true at each SIGHUP (false once no more can come).
    pub async fn received(&mut self) -> bool {
        self.0.recv().await.is_some()
    }
}
