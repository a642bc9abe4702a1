//! One-thread mode: the asyncio loop's selector runs the network side. Where asyncio would wait
//! for I/O, `Driver.run` runs tokio's current-thread runtime on the loop thread, with the GIL
//! released, until there are events for Python, one of asyncio's own descriptors is ready, or
//! the timeout passes; then it hands the events to the dispatcher. A message reaches its
//! handler, and the reply reaches its socket, without a thread switch.
//!
//! asyncio's own descriptors (the self-pipe that `call_soon_threadsafe` writes, the app's own
//! sockets) stay in asyncio's selector; that selector's epoll descriptor is registered with
//! tokio's reactor, so one wait covers both.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use pyo3::prelude::*;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::runtime::Runtime;

use super::busy_clock::loop_waiting;
use super::dispatcher::Dispatcher;
use super::standby::Standby;
use crate::bridge::Bridge;
use crate::wake;

#[pyclass(module = "robyn._native")]
pub struct Driver {
    runtime: Arc<Runtime>,
    bridge: Arc<Bridge>,
    dispatcher: Py<Dispatcher>,
    /// asyncio's selector (a descriptor of our own on its epoll instance), as tokio's reactor
    /// watches it.
    asyncio: Option<AsyncFd<OwnedFd>>,
    standby: Arc<Standby>,
}

impl Driver {
    pub fn new(runtime: Arc<Runtime>, bridge: Arc<Bridge>, dispatcher: Py<Dispatcher>) -> std::io::Result<Self> {
        let standby = Standby::start(runtime.clone())?;
        wake::defer_on_this_thread();
        Ok(Self { runtime, bridge, dispatcher, asyncio: None, standby })
    }

    /// One turn of the network side. Returns whether asyncio's selector may have events.
    async fn turn(&self, timeout: Option<Duration>, asyncio_idle: bool) -> bool {
        // Inside the runtime now: the wakes Python made cost a queue push each.
        wake::wake_deferred();
        if asyncio_idle {
            // asyncio found nothing on the last look: forget the readiness that sent it
            // looking, so the next wait blocks until its selector has something new.
            if let Some(Some(Ok(mut ready))) = self.asyncio.as_ref().map(|fd| fd.readable().now_or_never()) {
                ready.clear_ready();
            }
        }
        if timeout == Some(Duration::ZERO) || self.bridge.has_events() {
            // Python has work already: run what is runnable and look at the sockets once.
            tokio::task::yield_now().await;
        } else {
            let asyncio = async {
                match &self.asyncio {
                    Some(fd) => fd.readable().await.map(|mut ready| ready.retain_ready()),
                    None => std::future::pending().await,
                }
            };
            let timer = async {
                match timeout {
                    Some(timeout) => tokio::time::sleep(timeout).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.bridge.until_events() => {}
                _ = asyncio => {}
                () = timer => {}
            }
        }
        wake::defer_on_this_thread();
        self.asyncio.as_ref().is_some_and(|fd| matches!(fd.readable().now_or_never(), Some(Ok(_))))
    }
}

#[pymethods]
impl Driver {
    /// Registers asyncio's selector (its epoll descriptor) with the network side's reactor.
    #[allow(
        unsafe_code,
        reason = "dup(2) has no safe wrapper for a descriptor Python owns, and tokio registers raw descriptors only unsafely"
    )]
    fn watch(&mut self, fd: RawFd) -> PyResult<()> {
        // SAFETY: dup(2) reads no memory; a negative result is an error.
        let own = unsafe { libc::dup(fd) };
        if own < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: `own` is a fresh descriptor that nothing else owns.
        let own = unsafe { OwnedFd::from_raw_fd(own) };
        let _runtime = self.runtime.enter();
        // SAFETY: the AsyncFd owns `own`, which stays open, on the same epoll instance, until the
        // AsyncFd is dropped.
        let registered = unsafe { AsyncFd::register_with_interest(own, Interest::READABLE) };
        self.asyncio = Some(registered.map_err(std::io::Error::from)?);
        Ok(())
    }

    /// Forgets asyncio's selector, before it is closed.
    fn unwatch(&mut self) {
        let _runtime = self.runtime.enter();
        self.asyncio = None;
    }

    /// Waits for I/O as asyncio's selector would (`timeout` in seconds, None for no limit),
    /// running the network side meanwhile, then hands the events for Python to the
    /// dispatcher. Returns whether asyncio's own descriptors may be ready; `asyncio_idle`
    /// says asyncio looked last time and found none.
    #[pyo3(signature = (timeout, asyncio_idle))]
    fn run(&self, py: Python<'_>, timeout: Option<f64>, asyncio_idle: bool) -> bool {
        let timeout = timeout.map(|seconds| Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO));
        loop_waiting(true);
        self.standby.reclaim();
        let asyncio_ready = py.detach(|| self.runtime.block_on(self.turn(timeout, asyncio_idle)));
        loop_waiting(false);
        if self.bridge.has_events() {
            self.dispatcher.borrow_mut(py).drain(py);
        }
        asyncio_ready
    }
}
