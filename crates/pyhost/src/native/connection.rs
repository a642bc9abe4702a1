//! One connection as its handler sees it, on the loop thread: messages not yet received, the
//! future of a pending receive, sends waiting for room, and where the conversation stands.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::frames::{binary_of, frame_of, not_broadcastable, type_name};
use super::hooks::{create_future, disconnect, fail, resolve};
use super::phase::{Ender, Finish, HandlerPhase};
use crate::bridge::{Decision, Frame, NetworkLink, Opening, Refusal, Request, SendError};
use crate::close_code::{self, Departure};

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

/// One connection, as the loop thread sees it.
#[pyclass(module = "robyn._native")]
pub struct Connection {
    id: u128,
    /// `id` as text, made on first use: a connection whose handler never reads its id costs
    /// no string.
    id_text: Option<Py<PyString>>,
    request: Request,
    link: Arc<dyn NetworkLink>,
    inbox: VecDeque<Received>,
    waiter: Option<Py<PyAny>>,
    /// Sends refused for lack of room, in order, each with the future its sender awaits.
    blocked: VecDeque<(Frame, Py<PyAny>)>,
    phase: HandlerPhase,
}

impl Connection {
    pub(super) fn open(opening: Opening) -> Self {
        Self {
            id: opening.id,
            id_text: None,
            request: *opening.request,
            link: opening.link,
            inbox: VecDeque::new(),
            waiter: None,
            blocked: VecDeque::new(),
            phase: HandlerPhase::new(),
        }
    }

    pub(super) fn text(&mut self, py: Python<'_>, bytes: Bytes) -> PyResult<()> {
        self.deliver(py, Received::Text(bytes))
    }

    pub(super) fn binary(&mut self, py: Python<'_>, bytes: Bytes) -> PyResult<()> {
        self.deliver(py, Received::Binary(bytes))
    }

    fn deliver(&mut self, py: Python<'_>, message: Received) -> PyResult<()> {
        if self.phase.drops_messages() {
            // Still on its way when the handler closed: the handler wants no more.
            self.link.consumed(message.len());
            return Ok(());
        }
        if let Some(waiter) = self.waiter.take()
            // Cloning shares the bytes; the copy is kept if the receiver was cancelled meanwhile.
            && resolve(py, &waiter, message.clone().into_py(py)?)
        {
            self.link.consumed(message.len());
            return Ok(());
        }
        self.inbox.push_back(message);
        Ok(())
    }

    /// The server is going away: the handler's pending and later receives raise
    /// `WebSocketDisconnect(1001)` (1012 when it restarts), and `finish` closes with that code.
    pub(super) fn going_away(&mut self, py: Python<'_>, departure: Departure) {
        self.end(py, Ender::Shutdown, departure.code(), departure.reason().to_owned());
    }

    /// The network side is done with the connection (the client closed it, vanished, or the
    /// server dropped it): its code and reason.
    pub(super) fn network_gone(&mut self, py: Python<'_>, code: u16, reason: String) {
        self.end(py, Ender::Network, code, reason);
    }

    /// Ends the conversation for the handler (see `HandlerPhase::end`): the pending receive and every
    /// blocked send raise `WebSocketDisconnect(code, reason)`, and so will every later one.
    fn end(&mut self, py: Python<'_>, by: Ender, code: u16, reason: String) {
        let Some(was_joined) = self.phase.end(by, code, reason) else { return };
        let error = self.disconnected_error(py);
        if was_joined {
            self.link.leave();
        }
        if let Some(waiter) = self.waiter.take() {
            fail(py, &waiter, &error);
        }
        for (_, future) in self.blocked.drain(..) {
            fail(py, &future, &error);
        }
    }

    /// Makes the connection's last call to the network side: `last` then the Close frame the
    /// phase asks for, if any.
    fn finish_as(&mut self, py: Python<'_>, how: Finish, last: Vec<Frame>) {
        let closing = self.phase.closing(how);
        if let Some((code, reason)) = &closing {
            self.end(py, Ender::Handler, *code, reason.clone());
            self.link.close(*code, reason, last);
        }
        self.phase.finish();
    }

    /// The outbound queue has room again: queue the parked sends, in order, as far as they fit.
    pub(super) fn writable(&mut self, py: Python<'_>) {
        while let Some((frame, future)) = self.blocked.pop_front() {
            match self.link.send(frame) {
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
                    self.network_gone(py, close_code::ABNORMAL, String::new());
                    return;
                }
            }
        }
    }

    fn disconnected_error(&self, py: Python<'_>) -> PyErr {
        match self.phase.ending() {
            Some(ending) => disconnect(py, ending.code, &ending.reason),
            None => disconnect(py, close_code::ABNORMAL, ""),
        }
    }

    /// Queues a frame, or parks it behind the ones already waiting for room. Returns the
    /// future to await when the frame could not be queued yet.
    fn send_frame(&mut self, py: Python<'_>, frame: Frame) -> PyResult<Option<Py<PyAny>>> {
        if !self.phase.is_open() {
            return Err(self.disconnected_error(py));
        }
        if self.blocked.is_empty() {
            match self.link.send(frame) {
                Ok(()) => return Ok(None),
                Err((SendError::Gone, _)) => {
                    self.network_gone(py, close_code::ABNORMAL, String::new());
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

/// The longest reason a Close frame can carry: its payload holds 125 bytes, two of them the code.
const MAX_CLOSE_REASON: usize = 123;
/// Longest user name `identify` takes, in bytes: it travels in every presence note.
const MAX_USER: usize = 256;

#[pymethods]
impl Connection {
    #[getter]
    fn id(&mut self, py: Python<'_>) -> Py<PyString> {
        let uuid = uuid::Uuid::from_u128(self.id);
        self.id_text
            .get_or_insert_with(|| {
                let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
                PyString::new(py, uuid.hyphenated().encode_lower(&mut text)).unbind()
            })
            .clone_ref(py)
    }

    /// The query string's parameters, decoded, in URL order, repeated keys kept.
    #[getter]
    fn query(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.request.query.as_bytes()).into_owned().collect()
    }

    /// The query string as the client sent it.
    #[getter]
    fn query_string(&self) -> &str {
        &self.request.query
    }

    #[getter]
    fn path(&self) -> &str {
        &self.request.path
    }

    #[getter]
    fn path_params(&self) -> Vec<(String, String)> {
        self.request.path_params.clone()
    }

    /// The handshake's header lines, (lower-case name, value), in order.
    #[getter]
    fn headers(&self) -> Vec<(&str, &str)> {
        self.request.header_pairs().collect()
    }

    /// The client's (host, port).
    #[getter]
    fn client(&self) -> (String, u16) {
        (self.request.client.ip().to_string(), self.request.client.port())
    }

    #[getter]
    fn scheme(&self) -> &str {
        self.request.scheme
    }

    #[getter]
    fn subprotocol(&self) -> Option<&str> {
        self.request.subprotocol.as_deref()
    }

    /// Upgrades a connection whose handshake waits for the app (after `on_connect`); nothing
    /// for one already upgraded.
    fn accept(&self) {
        self.link.decide(Decision::Accept);
    }

    /// Answers a handshake that waits for the app with this HTTP response instead of the
    /// upgrade; the connection ends there.
    fn refuse(
        &mut self,
        py: Python<'_>,
        status: u16,
        headers: Vec<(String, String)>,
        body: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if !(200..=599).contains(&status) || status == 101 {
            return Err(PyValueError::new_err(format!(
                "{status} is not a status a refused handshake can answer with: use 200-599 (but not 101)"
            )));
        }
        let body = match frame_of(body)? {
            Frame::Text(text) => Bytes::from(text),
            Frame::Binary(bytes) => bytes,
        };
        self.end(py, Ender::Handler, close_code::POLICY_VIOLATION, format!("refused with HTTP {status}"));
        self.link.decide(Decision::Refuse(Refusal { status, headers, body }));
        self.phase.finish();
        Ok(())
    }

    /// The next message if one is waiting, else None; raises `WebSocketDisconnect` once the
    /// connection is over and every message that arrived before has been received.
    fn receive_now(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(message) = self.inbox.pop_front() {
            self.link.consumed(message.len());
            return message.into_py(py).map(Some);
        }
        if self.phase.is_open() { Ok(None) } else { Err(self.disconnected_error(py)) }
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
        self.send_frame(py, Frame::Text(text.to_cow()?.into_owned()))
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
    #[pyo3(signature = (data, room = None, exclude_self = false))]
    fn broadcast(&self, data: &Bound<'_, PyAny>, room: Option<&str>, exclude_self: bool) -> PyResult<()> {
        let frame = frame_of(data).map_err(|_| not_broadcastable(data))?;
        super::hub::fits_broadcast(data.py(), &frame)?;
        self.link.broadcast(frame, room, exclude_self);
        Ok(())
    }

    /// Adds the connection to a room of its endpoint, until it leaves it or ends.
    fn join_room(&self, room: &str) {
        if self.phase.is_open() {
            self.link.join_room(room);
        }
    }

    fn leave_room(&self, room: &str) {
        self.link.leave_room(room);
    }

    /// The rooms the connection is in.
    fn rooms(&self) -> Vec<String> {
        self.link.rooms()
    }

    /// Index of its endpoint in the app's WebSocket routes.
    #[getter]
    fn endpoint(&self) -> usize {
        self.link.endpoint()
    }

    /// `websocket.recover(room, since=, epoch=)`: `(epoch, offset, count or None, gap or None)`
    /// (or a future of it).
    #[pyo3(signature = (room, epoch, since))]
    fn recover(&self, py: Python<'_>, room: Option<&str>, epoch: &str, since: u64) -> PyResult<Py<PyAny>> {
        let token = super::answers::token();
        let now = self.link.recover(room, epoch, since, token);
        super::answers::now_or_later(py, token, super::answers::recovered(now))
    }

    /// The users present on its endpoint (or one of its rooms), across the cluster.
    #[pyo3(signature = (room = None))]
    fn presence(&self, room: Option<&str>) -> Vec<(String, u32)> {
        self.link.presence(room)
    }

    /// `websocket.identify(user)`: the connection is `user`'s from now on.
    fn identify(&self, user: &str) -> PyResult<()> {
        if user.is_empty() || user.len() > MAX_USER {
            return Err(PyValueError::new_err(format!(
                "identify() takes a user name of 1 to {MAX_USER} bytes (UTF-8), got {} bytes",
                user.len()
            )));
        }
        self.link.identify(user);
        Ok(())
    }

    /// Broadcasts reach this connection from now on.
    fn join(&mut self) {
        if self.phase.join() {
            self.link.join();
        }
    }

    /// `websocket.close()`: the conversation ends now; the Close frame with `code` follows
    /// when the handler returns, after `on_close`'s message.
    #[pyo3(signature = (code = close_code::NORMAL, reason = String::new()))]
    fn close(&mut self, py: Python<'_>, code: u16, reason: String) -> PyResult<()> {
        if !close_code::sendable(code) {
            return Err(PyValueError::new_err(format!(
                "{code} is not a close code a server may send: use 1000-1003, 1007-1014 or 3000-4999"
            )));
        }
        if reason.len() > MAX_CLOSE_REASON {
            return Err(PyValueError::new_err(format!(
                "a close reason holds at most {MAX_CLOSE_REASON} bytes of UTF-8, this one has {}",
                reason.len()
            )));
        }
        if !self.phase.is_open() {
            return Ok(());
        }
        let dropped = self.inbox.drain(..).map(|message| message.len()).sum();
        self.link.consumed(dropped);
        self.end(py, Ender::Handler, code, reason);
        Ok(())
    }

    /// Refuses the connection before its handler runs: one text message, then Close 1008.
    fn reject(&mut self, py: Python<'_>, message: String) {
        self.finish_as(py, Finish::Rejected, vec![Frame::Text(message)]);
    }

    /// The handler and `on_close` are done: send `farewell` (if the client is still there),
    /// then the Close frame. The code says how it ended: `close()`'s code, 1011 after an
    /// unhandled exception, 1001 when the server is going away, else 1000.
    #[pyo3(signature = (failed, farewell = None))]
    fn finish(&mut self, py: Python<'_>, failed: bool, farewell: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        if matches!(self.phase, HandlerPhase::Finished(_)) {
            return Ok(());
        }
        let mut last: Vec<Frame> = self.blocked.drain(..).map(|(frame, _)| frame).collect();
        if let Some(farewell) = farewell {
            last.push(frame_of(farewell)?);
        }
        self.finish_as(py, if failed { Finish::Failed } else { Finish::Returned }, last);
        Ok(())
    }
}
