//! Routes the network's events to connections; one per server, owned by the loop thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::exceptions::PyConnectionResetError;
use pyo3::prelude::*;
use tokio::sync::Notify;

use super::connection::Connection;
use super::exchange::Exchange;
use super::hooks::{self, Hooks, fail, hooks, resolve};
use super::hub;
use super::log::log_python_error;
use crate::bridge::{Bridge, ConnKey, Event, Hub, Inbound};
use crate::close_code::Departure;
use crate::stream::StreamSignal;

/// Connections the dispatcher still routes events to; back to zero when all are gone.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static LIVE_CHANGED: Notify = Notify::const_new();

/// How many connections the interpreter side still tracks.
#[pyfunction]
pub fn live_connections() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Notified whenever `live_connections` changes, for whoever waits for a count.
pub fn live_connections_changed() -> &'static Notify {
    &LIVE_CHANGED
}

fn set_live(count: usize) {
    LIVE.store(count, Ordering::Relaxed);
    LIVE_CHANGED.notify_waiters();
}

#[pyclass(module = "robyn._native")]
pub struct Dispatcher {
    bridge: Arc<Bridge>,
    /// Handed to `hub` when the runtime configures the dispatcher.
    hub: Arc<dyn Hub>,
    connections: HashMap<ConnKey, Py<Connection>>,
    batch: Vec<Event>,
    /// Set by `Event::ShuttingDown`: connections opened later are going away from the start.
    shutting_down: Option<Departure>,
}

impl Dispatcher {
    pub fn new(bridge: Arc<Bridge>, hub: Arc<dyn Hub>) -> Self {
        Self { bridge, hub, connections: HashMap::new(), batch: Vec::new(), shutting_down: None }
    }

    fn dispatch(&mut self, py: Python<'_>, event: Event) -> PyResult<()> {
        match event {
            Event::Conn(key, Inbound::Open(opening)) => {
                let endpoint = opening.endpoint;
                let mut opened = Connection::open(*opening);
                if let Some(departure) = self.shutting_down {
                    // Its handshake finished just as shutdown began.
                    opened.going_away(py, departure);
                }
                let conn = Py::new(py, opened)?;
                self.connections.insert(key, conn.clone_ref(py));
                set_live(self.connections.len());
                hooks(py)?.on_open.call1(py, (endpoint, conn))?;
            }
            Event::Conn(key, Inbound::Disconnected { code, reason }) => {
                if let Some(conn) = self.connections.remove(&key) {
                    set_live(self.connections.len());
                    conn.borrow_mut(py).network_gone(py, code, reason);
                }
            }
            Event::Conn(key, inbound) => {
                let Some(conn) = self.connections.get(&key) else {
                    return Ok(());
                };
                let mut conn = conn.borrow_mut(py);
                match inbound {
                    Inbound::Text(bytes) => conn.text(py, bytes)?,
                    Inbound::Binary(bytes) => conn.binary(py, bytes)?,
                    Inbound::Writable => conn.writable(py),
                    Inbound::Open(_) | Inbound::Disconnected { .. } => {
                        unreachable!("handled above")
                    }
                }
            }
            Event::ShuttingDown(departure) => {
                self.shutting_down = Some(departure);
                for conn in self.connections.values() {
                    conn.borrow_mut(py).going_away(py, departure);
                }
            }
            Event::Stop => {
                hooks(py)?.on_stop.call0(py)?;
            }
            Event::BrokerReconnected { gap_seconds } => {
                hooks(py)?.on_broker_reconnect.call1(py, (gap_seconds,))?;
            }
            Event::Lease { task, held } => {
                hooks(py)?.on_lease.call1(py, (task, held))?;
            }
            Event::Answer(token, answer) => super::answers::answered(py, token, answer),
            Event::Presence { endpoint, room, joined, left } => {
                hooks(py)?.on_presence.call1(py, (endpoint, room, joined, left))?;
            }
            Event::Http(call) => {
                let route = call.route.and_then(|route| isize::try_from(route).ok()).unwrap_or(-1);
                let exchange = Py::new(py, Exchange::new(*call))?;
                hooks(py)?.on_http.call1(py, (route, exchange))?;
            }
            Event::Stream(stream, signal) => match signal {
                StreamSignal::Writable => {
                    if let Some(waiter) = stream.python_side(|python| python.waiter.take()) {
                        resolve(py, &waiter, py.None());
                    }
                }
                StreamSignal::Gone => {
                    let python = stream.take_python();
                    if let Some(waiter) = python.waiter {
                        fail(py, &waiter, &PyConnectionResetError::new_err("the client has gone"));
                    }
                    if let Some(on_gone) = python.on_gone {
                        on_gone.call0(py)?;
                    }
                }
            },
        }
        Ok(())
    }
}

#[pymethods]
impl Dispatcher {
    /// Called once by the runtime, on the loop thread, before the first event.
    #[allow(clippy::too_many_arguments, reason = "one argument per callback Python hands over, once")]
    fn configure(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        disconnect: Py<PyAny>,
        on_open: Py<PyAny>,
        on_stop: Py<PyAny>,
        on_broker_reconnect: Py<PyAny>,
        on_http: Py<PyAny>,
        on_lease: Py<PyAny>,
        on_presence: Py<PyAny>,
    ) -> PyResult<()> {
        let create_future = event_loop.getattr("create_future")?.unbind();
        hub::install(py, self.hub.clone())?;
        hooks::configure(
            py,
            Hooks { create_future, disconnect, on_open, on_stop, on_broker_reconnect, on_http, on_lease, on_presence },
        )
    }

    /// The descriptor the loop watches, readable while events are waiting; None when the
    /// loop thread runs the network side itself (and drains after each turn).
    fn fileno(&self) -> Option<i32> {
        self.bridge.fileno()
    }

    /// Hands every waiting event to its connection. One failing event is logged and the
    /// others still go through: a message is never dropped because another one failed.
    pub(crate) fn drain(&mut self, py: Python<'_>) {
        let mut batch = std::mem::take(&mut self.batch);
        self.bridge.take(&mut batch);
        for event in batch.drain(..) {
            if let Err(err) = self.dispatch(py, event) {
                log_python_error(py, "dispatching a network event failed", &err);
            }
        }
        self.batch = batch;
    }
}
