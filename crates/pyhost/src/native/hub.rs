//! The app's reach beyond one connection (`app.send_to`, `app.broadcast`, `app.connections`
//! and `websocket.send_to`): the network side's [`Hub`], set once when the runtime starts.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::answers::{self, now_or_later};
use super::frames::{frame_of, not_broadcastable, type_name};
use crate::bridge::{Frame, Hub};

static HUB: PyOnceLock<Arc<dyn Hub>> = PyOnceLock::new();

pub(super) fn install(py: Python<'_>, hub: Arc<dyn Hub>) -> PyResult<()> {
    HUB.set(py, hub).map_err(|_| PyRuntimeError::new_err("the hub is already set"))
}

fn hub(py: Python<'_>) -> PyResult<&Arc<dyn Hub>> {
    HUB.get(py)
        .ok_or_else(|| PyRuntimeError::new_err("the server is not running yet: reach connections once it serves"))
}

/// `send_to(id, data)`: queues `data` for the open connection with this id. False when there
/// is none (an unknown or malformed id, a connection that has ended, or one whose queue is
/// full, which closes it as a slow consumer); the recipient's fate never raises here.
#[pyfunction]
pub fn send_to(py: Python<'_>, id: &str, data: &Bound<'_, PyAny>) -> PyResult<bool> {
    let frame = frame_of(data)
        .map_err(|_| PyTypeError::new_err(format!("send_to() takes str or bytes, got {}", type_name(data))))?;
    let Ok(id) = uuid::Uuid::parse_str(id) else { return Ok(false) };
    Ok(hub(py)?.send_to(id.as_u128(), frame))
}

/// `send_to_user(user, data)`: queues `data` for every open connection of `user`, on any
/// process of the app; how many.
#[pyfunction]
pub fn send_to_user(py: Python<'_>, user: &str, data: &Bound<'_, PyAny>) -> PyResult<usize> {
    let frame = frame_of(data)
        .map_err(|_| PyTypeError::new_err(format!("send_to_user() takes str or bytes, got {}", type_name(data))))?;
    Ok(hub(py)?.send_to_user(user, frame))
}

/// `presence(endpoint, room=None)`: the users present there, across the cluster, with their
/// open connections.
#[pyfunction]
#[pyo3(signature = (endpoint, room = None))]
pub fn presence(py: Python<'_>, endpoint: usize, room: Option<&str>) -> PyResult<Vec<(String, u32)>> {
    Ok(hub(py)?.presence(endpoint, room))
}

/// `broadcast(endpoint, data, room=None)`: to every joined connection of an endpoint, or of
/// one of its rooms.
#[pyfunction]
#[pyo3(signature = (endpoint, data, room = None))]
pub fn broadcast(py: Python<'_>, endpoint: usize, data: &Bound<'_, PyAny>, room: Option<&str>) -> PyResult<()> {
    let frame = frame_of(data).map_err(|_| not_broadcastable(data))?;
    fits_broadcast(py, &frame)?;
    hub(py)?.broadcast(endpoint, room, frame);
    Ok(())
}

/// Refuses a broadcast over `--max-broadcast-size`: between processes and hosts it travels
/// whole through the bus or the broker (Redis disconnects a subscriber whose output passes
/// 32 MB), so the limit holds for every broadcast, alone or not.
pub(super) fn fits_broadcast(py: Python<'_>, frame: &Frame) -> PyResult<()> {
    let size = match frame {
        Frame::Text(text) => text.len(),
        Frame::Binary(bytes) => bytes.len(),
    };
    let limit = hub(py)?.max_broadcast();
    if size > limit {
        return Err(PyValueError::new_err(format!(
            "this broadcast is {size} bytes, over --max-broadcast-size ({limit} bytes): \
             send it to each client with send_text()/send_bytes(), or raise the limit"
        )));
    }
    Ok(())
}

/// `connections(endpoint)`: the ids of the endpoint's open connections.
#[pyfunction]
pub fn connections(py: Python<'_>, endpoint: usize) -> PyResult<Vec<String>> {
    let ids = hub(py)?.connections(endpoint);
    Ok(ids.into_iter().map(|id| uuid::Uuid::from_u128(id).hyphenated().to_string()).collect())
}

/// `keeps_history(endpoint)`: whether the endpoint was declared with `history=N`.
#[pyfunction]
pub fn keeps_history(py: Python<'_>, endpoint: usize) -> PyResult<bool> {
    Ok(hub(py)?.keeps_history(endpoint))
}

/// `broadcast_kept(endpoint, data, room=None, except_id=None)`: a broadcast kept in the
/// endpoint's history; its offset, or a future of it.
#[pyfunction]
#[pyo3(signature = (endpoint, data, room = None, except_id = None))]
pub fn broadcast_kept(
    py: Python<'_>,
    endpoint: usize,
    data: &Bound<'_, PyAny>,
    room: Option<&str>,
    except_id: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let frame = frame_of(data).map_err(|_| not_broadcastable(data))?;
    fits_broadcast(py, &frame)?;
    let token = answers::token();
    let now = hub(py)?.broadcast_kept(endpoint, room, frame, id_of(except_id), token);
    now_or_later(py, token, answers::offset(now))
}

/// `reserve(endpoint, room=None)`: the next offset of a history, or a future of it, for a
/// message built once it is known (then `commit`).
#[pyfunction]
#[pyo3(signature = (endpoint, room = None))]
pub fn reserve(py: Python<'_>, endpoint: usize, room: Option<&str>) -> PyResult<Py<PyAny>> {
    let token = answers::token();
    let now = hub(py)?.reserve(endpoint, room, token);
    now_or_later(py, token, answers::offset(now))
}

/// `commit(endpoint, room, offset, data, except_id=None)`: the message of a reserved offset;
/// None gives it up. A message that cannot be sent (not str or bytes, too big) is given up
/// too, and the error raised.
#[pyfunction]
#[pyo3(signature = (endpoint, room, offset, data, except_id = None))]
pub fn commit(
    py: Python<'_>,
    endpoint: usize,
    room: Option<&str>,
    offset: u64,
    data: Option<&Bound<'_, PyAny>>,
    except_id: Option<&str>,
) -> PyResult<()> {
    let hub = hub(py)?;
    let frame = match data.map(|data| {
        frame_of(data)
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "broadcast()'s callable must return str or bytes, got {}",
                    type_name(data)
                ))
            })
            .and_then(|frame| fits_broadcast(py, &frame).map(|()| frame))
    }) {
        Some(Err(error)) => {
            hub.commit(endpoint, room, offset, None, None);
            return Err(error);
        }
        Some(Ok(frame)) => Some(frame),
        None => None,
    };
    hub.commit(endpoint, room, offset, frame, id_of(except_id));
    Ok(())
}

/// `missed(endpoint, room=None, epoch=None, since=None)`: `(epoch, offset, messages, gap)`
/// (or a future of it): where the history stands, and what came after `since` in `epoch`
/// (without them: only where it stands).
#[pyfunction]
#[pyo3(signature = (endpoint, room = None, epoch = None, since = None))]
pub fn missed(
    py: Python<'_>,
    endpoint: usize,
    room: Option<&str>,
    epoch: Option<&str>,
    since: Option<u64>,
) -> PyResult<Py<PyAny>> {
    let token = answers::token();
    let since = epoch.zip(since);
    let now = hub(py)?.missed(endpoint, room, since, token);
    now_or_later(py, token, answers::missed(now))
}

fn id_of(text: Option<&str>) -> Option<u128> {
    text.and_then(|text| uuid::Uuid::parse_str(text).ok()).map(|id| id.as_u128())
}
