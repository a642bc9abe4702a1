//! `robyn._native`: the part of the `robyn` package written in Rust. It runs only on the loop
//! thread, where the GIL is held: [`Dispatcher::drain`] hands a batch of network events to the
//! connections, and each [`Connection`] keeps the state its websocket object needs (messages
//! not yet received, the future of a pending receive, sends waiting for room).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

use crate::bridge::{Bridge, ConnKey, Event, Frame, Inbound, Opening, Peer, SendError};

/// Python objects the native side calls back into, set once by `Dispatcher.configure`.
struct Hooks {
    create_future: Py<PyAny>,
    disconnect: Py<PyAny>,
    on_open: Py<PyAny>,
    on_stop: Py<PyAny>,
}

static HOOKS: PyOnceLock<Hooks> = PyOnceLock::new();

/// Connections the dispatcher still routes events to; back to zero when all are gone.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// When the event loop last stopped waiting for I/O, in nanoseconds since `EPOCH` plus one;
/// zero while it waits. The watchdog reads it without the GIL.
static BUSY_SINCE: AtomicU64 = AtomicU64::new(0);
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// How long the event loop has been running callbacks without waiting for I/O, and a token
/// that stays the same for one busy stretch; None while it waits.
pub(crate) fn busy() -> Option<(Duration, u64)> {
    let since = BUSY_SINCE.load(Ordering::Acquire);
    (since != 0).then(|| (EPOCH.elapsed().saturating_sub(Duration::from_nanos(since - 1)), since))
}

/// `loop_waiting(waiting)`: called by the selector around each wait for I/O.
#[pyfunction]
fn loop_waiting(waiting: bool) {
    let value = if waiting { 0 } else { u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1 };
    BUSY_SINCE.store(value, Ordering::Release);
}

fn hooks(py: Python<'_>) -> PyResult<&Hooks> {
    HOOKS
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("robyn._native is not configured: the server's runtime starts it"))
}

/// A `WebSocketDisconnect(code, reason)` ready to raise or to set on a future.
fn disconnect(py: Python<'_>, code: u16, reason: &str) -> PyErr {
    match hooks(py).and_then(|hooks| hooks.disconnect.call1(py, (code, reason))) {
        Ok(exception) => PyErr::from_value(exception.into_bound(py)),
        Err(err) => err,
    }
}

fn create_future(py: Python<'_>) -> PyResult<Py<PyAny>> {
    hooks(py)?.create_future.call0(py)
}

/// Resolves a future unless its awaiting task was cancelled meanwhile; answers whether it did.
fn resolve(py: Python<'_>, future: &Py<PyAny>, value: Py<PyAny>) -> bool {
    future.call_method1(py, intern!(py, "set_result"), (value,)).is_ok()
}

fn fail(py: Python<'_>, future: &Py<PyAny>, error: &PyErr) {
    // A cancelled future refuses the exception; nobody is waiting for it then.
    let _ = future.call_method1(py, intern!(py, "set_exception"), (error.value(py),));
}

/// A message received and not yet handed to the handler.
#[derive(Clone)]
enum Received {
    Text(Bytes),
    Binary(Bytes),
}

impl Received {
    fn len(&self) -> usize {
        match self {
            Received::Text(bytes) | Received::Binary(bytes) => bytes.len(),
        }
    }

    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Received::Text(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|err| PyValueError::new_err(err.to_string()))?;
                Ok(PyString::new(py, text).into_any().unbind())
            }
            Received::Binary(bytes) => Ok(PyBytes::new(py, &bytes).into_any().unbind()),
        }
    }
}

/// Why the conversation is over for the handler: what `WebSocketDisconnect` carries.
struct Ended {
    code: u16,
    reason: String,
}

/// One connection, as the loop thread sees it.
#[pyclass(module = "robyn._native")]
pub struct Connection {
    id: Py<PyString>,
    query: Vec<(String, String)>,
    peer: Arc<dyn Peer>,
    inbox: VecDeque<Received>,
    waiter: Option<Py<PyAny>>,
    /// Sends refused for lack of room, in order, each with the future its sender awaits.
    blocked: VecDeque<(Frame, Py<PyAny>)>,
    ended: Option<Ended>,
    /// `close()` was called with this code and reason.
    closed_by_handler: Option<(u16, String)>,
    going_away: bool,
    network_gone: bool,
    joined: bool,
    finished: bool,
}

impl Connection {
    fn open(py: Python<'_>, opening: Opening) -> Self {
        Self {
            id: PyString::new(py, &opening.id).unbind(),
            query: opening.query,
            peer: opening.peer,
            inbox: VecDeque::new(),
            waiter: None,
            blocked: VecDeque::new(),
            ended: None,
            closed_by_handler: None,
            going_away: false,
            network_gone: false,
            joined: false,
            finished: false,
        }
    }

    fn deliver(&mut self, py: Python<'_>, message: Received) -> PyResult<()> {
        if self.closed_by_handler.is_some() {
            // Still on its way when the handler closed: the handler wants no more.
            self.peer.consumed(message.len());
            return Ok(());
        }
        if let Some(waiter) = self.waiter.take()
            // Cloning shares the bytes; the copy is kept if the receiver was cancelled meanwhile.
            && resolve(py, &waiter, message.clone().into_py(py)?)
        {
            self.peer.consumed(message.len());
            return Ok(());
        }
        self.inbox.push_back(message);
        Ok(())
    }

    /// Ends the conversation for the handler: the pending receive and every blocked send
    /// raise `WebSocketDisconnect(code, reason)`, and so will every later one.
    fn end(&mut self, py: Python<'_>, code: u16, reason: String) {
        if self.ended.is_some() {
            return;
        }
        let error = disconnect(py, code, &reason);
        self.ended = Some(Ended { code, reason });
        self.leave();
        if let Some(waiter) = self.waiter.take() {
            fail(py, &waiter, &error);
        }
        for (_, future) in self.blocked.drain(..) {
            fail(py, &future, &error);
        }
    }

    fn leave(&mut self) {
        if self.joined {
            self.joined = false;
            self.peer.leave();
        }
    }

    fn writable(&mut self, py: Python<'_>) {
        while let Some((frame, future)) = self.blocked.pop_front() {
            match self.peer.send(frame) {
                Ok(()) => {
                    resolve(py, &future, py.None());
                }
                Err((SendError::Full, frame)) => {
                    self.blocked.push_front((frame, future));
                    return;
                }
                Err((SendError::Gone, frame)) => {
                    // Back in line, so that ending the connection fails its future too.
                    self.blocked.push_front((frame, future));
                    self.network_gone(py, 1006, String::new());
                    return;
                }
            }
        }
    }

    fn network_gone(&mut self, py: Python<'_>, code: u16, reason: String) {
        self.network_gone = true;
        self.end(py, code, reason);
    }

    fn disconnected_error(&self, py: Python<'_>) -> PyErr {
        match &self.ended {
            Some(ended) => disconnect(py, ended.code, &ended.reason),
            None => disconnect(py, 1006, ""),
        }
    }

    /// Queues a frame, or parks it behind the ones already waiting for room. Returns the
    /// future to await when the frame could not be queued yet.
    fn send_frame(&mut self, py: Python<'_>, frame: Frame) -> PyResult<Option<Py<PyAny>>> {
        if self.ended.is_some() || self.finished {
            return Err(self.disconnected_error(py));
        }
        if self.blocked.is_empty() {
            match self.peer.send(frame) {
                Ok(()) => return Ok(None),
                Err((SendError::Gone, _)) => {
                    self.network_gone(py, 1006, String::new());
                    return Err(self.disconnected_error(py));
                }
                Err((SendError::Full, frame)) => return self.park(py, frame).map(Some),
            }
        }
        self.park(py, frame).map(Some)
    }

    fn park(&mut self, py: Python<'_>, frame: Frame) -> PyResult<Py<PyAny>> {
        let future = create_future(py)?;
        self.blocked.push_back((frame, future.clone_ref(py)));
        Ok(future)
    }
}

/// A Python value as a frame: `str` as text, bytes-like as binary.
fn frame_of(data: &Bound<'_, PyAny>) -> PyResult<Frame> {
    if let Ok(text) = data.cast::<PyString>() {
        return Ok(Frame::Text(text.to_str()?.to_owned()));
    }
    binary_of(data).ok_or_else(|| PyTypeError::new_err(format!("expected str or bytes, got {}", type_name(data))))
}

fn binary_of(data: &Bound<'_, PyAny>) -> Option<Frame> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Some(Frame::Binary(Bytes::copy_from_slice(bytes.as_bytes())));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Some(Frame::Binary(Bytes::from(array.to_vec())));
    }
    if data.cast::<PyMemoryView>().is_ok() {
        let bytes = data.call_method0("tobytes").ok()?;
        return binary_of(&bytes);
    }
    None
}

fn type_name(data: &Bound<'_, PyAny>) -> String {
    data.get_type().name().map(|name| name.to_string()).unwrap_or_else(|_| "?".into())
}

/// RFC 6455, section 7.4: the codes an endpoint may put in a Close frame.
fn check_close_code(code: u16) -> PyResult<()> {
    match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => Ok(()),
        _ => Err(PyValueError::new_err(format!(
            "{code} is not a close code a server may send: use 1000-1003, 1007-1014 or 3000-4999"
        ))),
    }
}

#[pymethods]
impl Connection {
    #[getter]
    fn id(&self, py: Python<'_>) -> Py<PyString> {
        self.id.clone_ref(py)
    }

    #[getter]
    fn query(&self) -> Vec<(String, String)> {
        self.query.clone()
    }

    /// The next message if one is waiting, else None; raises `WebSocketDisconnect` once the
    /// connection is over and every message that arrived before has been received.
    fn receive_now(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(message) = self.inbox.pop_front() {
            self.peer.consumed(message.len());
            return message.into_py(py).map(Some);
        }
        match &self.ended {
            Some(ended) => Err(disconnect(py, ended.code, &ended.reason)),
            None => Ok(None),
        }
    }

    /// A future resolved with the next message (or failed with `WebSocketDisconnect`).
    fn receive_later(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(waiter) = &self.waiter {
            let done = waiter.call_method0(py, intern!(py, "done"))?;
            if !done.is_truthy(py)? {
                return Err(PyRuntimeError::new_err(
                    "another coroutine is already waiting for the next message on this websocket",
                ));
            }
        }
        let future = create_future(py)?;
        self.waiter = Some(future.clone_ref(py));
        Ok(future)
    }

    /// Sends a text frame; returns None, or a future to await while the queue is full.
    fn send_text(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let text = data
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("send_text() takes a str, got {}", type_name(data))))?;
        self.send_frame(py, Frame::Text(text.to_str()?.to_owned()))
    }

    /// Sends a binary frame; returns None, or a future to await while the queue is full.
    fn send_bytes(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let frame = binary_of(data).ok_or_else(|| {
            PyTypeError::new_err(format!("send_bytes() takes bytes, bytearray or memoryview, got {}", type_name(data)))
        })?;
        self.send_frame(py, frame)
    }

    /// Sends `str` as text and bytes-like as binary.
    fn send(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let frame = frame_of(data)?;
        self.send_frame(py, frame)
    }

    /// Sends to every joined connection on this endpoint. Works after this connection has
    /// ended too, so a handler can tell the others that its client left.
    fn broadcast(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let frame = frame_of(data)
            .map_err(|_| PyTypeError::new_err(format!("broadcast() takes str or bytes, got {}", type_name(data))))?;
        self.peer.broadcast(frame);
        Ok(())
    }

    /// Broadcasts reach this connection from now on.
    fn join(&mut self) {
        if !self.joined && self.ended.is_none() {
            self.joined = true;
            self.peer.join();
        }
    }

    /// `websocket.close()`: the conversation ends now; the Close frame with `code` follows
    /// when the handler returns, after `on_close`'s message.
    #[pyo3(signature = (code = 1000, reason = String::new()))]
    fn close(&mut self, py: Python<'_>, code: u16, reason: String) -> PyResult<()> {
        check_close_code(code)?;
        if reason.len() > 123 {
            return Err(PyValueError::new_err(format!(
                "a close reason holds at most 123 bytes of UTF-8, this one has {}",
                reason.len()
            )));
        }
        if self.ended.is_some() {
            return Ok(());
        }
        let dropped = self.inbox.drain(..).map(|message| message.len()).sum();
        self.peer.consumed(dropped);
        self.closed_by_handler = Some((code, reason.clone()));
        self.end(py, code, reason);
        Ok(())
    }

    /// Refuses the connection before its handler runs: one text message, then Close 1008.
    fn reject(&mut self, py: Python<'_>, message: String) {
        self.finished = true;
        self.end(py, 1008, "invalid query parameters".into());
        if !self.network_gone {
            self.peer.close(1008, "invalid query parameters", vec![Frame::Text(message)]);
        }
    }

    /// The handler and `on_close` are done: send `farewell` (if the client is still there),
    /// then the Close frame. The code says how it ended: `close()`'s code, 1011 after an
    /// unhandled exception, 1001 when the server is going away, else 1000.
    #[pyo3(signature = (failed, farewell = None))]
    fn finish(&mut self, py: Python<'_>, failed: bool, farewell: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.leave();
        let (code, reason) = match (&self.closed_by_handler, failed, self.going_away) {
            (Some((code, reason)), _, _) => (*code, reason.clone()),
            (None, true, _) => (1011, "internal error".to_owned()),
            (None, false, true) => (1001, "server shutting down".to_owned()),
            (None, false, false) => (1000, String::new()),
        };
        let mut last: Vec<Frame> = self.blocked.drain(..).map(|(frame, _)| frame).collect();
        if let Some(farewell) = farewell {
            last.push(frame_of(farewell)?);
        }
        self.end(py, code, reason.clone());
        if !self.network_gone {
            self.peer.close(code, &reason, last);
        }
        Ok(())
    }
}

/// Routes the network's events to connections; one per server, owned by the loop thread.
#[pyclass(module = "robyn._native")]
pub struct Dispatcher {
    bridge: Arc<Bridge>,
    connections: HashMap<ConnKey, Py<Connection>>,
    batch: Vec<Event>,
    /// Set by `Event::ShuttingDown`: connections opened later are going away from the start.
    shutting_down: bool,
}

impl Dispatcher {
    pub(crate) fn new(bridge: Arc<Bridge>) -> Self {
        Self { bridge, connections: HashMap::new(), batch: Vec::new(), shutting_down: false }
    }

    fn dispatch(&mut self, py: Python<'_>, event: Event) -> PyResult<()> {
        match event {
            Event::Conn(key, Inbound::Open(opening)) => {
                let endpoint = opening.endpoint;
                let mut opened = Connection::open(py, *opening);
                if self.shutting_down {
                    // Its handshake finished just as shutdown began.
                    opened.going_away = true;
                    opened.end(py, 1001, "server shutting down".into());
                }
                let conn = Py::new(py, opened)?;
                self.connections.insert(key, conn.clone_ref(py));
                LIVE.store(self.connections.len(), Ordering::Relaxed);
                hooks(py)?.on_open.call1(py, (endpoint, conn))?;
            }
            Event::Conn(key, Inbound::Disconnected { code, reason }) => {
                if let Some(conn) = self.connections.remove(&key) {
                    LIVE.store(self.connections.len(), Ordering::Relaxed);
                    conn.borrow_mut(py).network_gone(py, code, reason);
                }
            }
            Event::Conn(key, inbound) => {
                let Some(conn) = self.connections.get(&key) else {
                    return Ok(());
                };
                let mut conn = conn.borrow_mut(py);
                match inbound {
                    Inbound::Text(bytes) => conn.deliver(py, Received::Text(bytes))?,
                    Inbound::Binary(bytes) => conn.deliver(py, Received::Binary(bytes))?,
                    Inbound::Writable => conn.writable(py),
                    Inbound::Open(_) | Inbound::Disconnected { .. } => {
                        unreachable!("handled above")
                    }
                }
            }
            Event::ShuttingDown => {
                self.shutting_down = true;
                for conn in self.connections.values() {
                    let mut conn = conn.borrow_mut(py);
                    if conn.ended.is_none() {
                        conn.going_away = true;
                        conn.end(py, 1001, "server shutting down".into());
                    }
                }
            }
            Event::Stop => {
                hooks(py)?.on_stop.call0(py)?;
            }
        }
        Ok(())
    }
}

#[pymethods]
impl Dispatcher {
    /// Called once by the runtime, on the loop thread, before the first event.
    fn configure(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        disconnect: Py<PyAny>,
        on_open: Py<PyAny>,
        on_stop: Py<PyAny>,
    ) -> PyResult<()> {
        let hooks =
            Hooks { create_future: event_loop.getattr("create_future")?.unbind(), disconnect, on_open, on_stop };
        HOOKS.set(py, hooks).map_err(|_| PyRuntimeError::new_err("the dispatcher is already configured"))
    }

    /// The descriptor the loop watches: readable while events are waiting.
    fn fileno(&self) -> i32 {
        self.bridge.fileno()
    }

    /// Hands every waiting event to its connection. One failing event is logged and the
    /// others still go through: a message is never dropped because another one failed.
    fn drain(&mut self, py: Python<'_>) {
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

/// Logs a Python exception with its traceback through the server's log.
pub(crate) fn log_python_error(py: Python<'_>, context: &str, err: &PyErr) {
    let traceback = crate::interpreter::format_exception(py, err);
    tracing::error!(target: "robyn_ws_server::python", "{context}\n{traceback}");
}

/// `emit(levelno, logger, message)`: one Python log record, into the server's log. The
/// logger's name leads the message (a tracing target cannot be chosen at run time).
#[pyfunction]
fn emit(level: i32, logger: &str, message: &str) {
    match level {
        40.. => tracing::error!(target: "python", "{logger}: {message}"),
        30..=39 => tracing::warn!(target: "python", "{logger}: {message}"),
        20..=29 => tracing::info!(target: "python", "{logger}: {message}"),
        10..=19 => tracing::debug!(target: "python", "{logger}: {message}"),
        _ => tracing::trace!(target: "python", "{logger}: {message}"),
    }
}

/// How many connections the interpreter side still tracks.
#[pyfunction]
pub fn live_connections() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Builds the `robyn._native` module object.
pub(crate) fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let module = PyModule::new(py, "robyn._native")?;
    module.add_class::<Connection>()?;
    module.add_class::<Dispatcher>()?;
    module.add_function(wrap_pyfunction!(emit, &module)?)?;
    module.add_function(wrap_pyfunction!(live_connections, &module)?)?;
    module.add_function(wrap_pyfunction!(loop_waiting, &module)?)?;
    Ok(module)
}
