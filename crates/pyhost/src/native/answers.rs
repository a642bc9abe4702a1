//! Answers the app awaits from a history kept elsewhere (by the supervisor of `--processes`,
//! or by Redis): each question gets a token and an asyncio future; `Event::Answer` brings the
//! answer to the loop thread, which resolves the future. An answer known at once is returned
//! as it is, with no future.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyConnectionError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::hooks::{create_future, fail, resolve};
use crate::bridge::{Answer, Frame, Gap, Missed, Now, Position, Recovered, Token};
use crate::locks::lock;

static NEXT: AtomicU64 = AtomicU64::new(1);
static WAITING: Mutex<BTreeMap<Token, Py<PyAny>>> = Mutex::new(BTreeMap::new());

/// A token for a question whose answer may come later.
pub(super) fn token() -> Token {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The answer now (`now` is Some), or a future that `answered` resolves.
pub(super) fn now_or_later(py: Python<'_>, token: Token, now: Option<Answer>) -> PyResult<Py<PyAny>> {
    if let Some(answer) = now {
        return value_of(py, answer);
    }
    let future = create_future(py)?;
    lock(&WAITING).insert(token, future.clone_ref(py));
    Ok(future)
}

/// The answer to question `token` came.
pub(super) fn answered(py: Python<'_>, token: Token, answer: Answer) {
    let Some(future) = lock(&WAITING).remove(&token) else { return };
    match value_of(py, answer) {
        Ok(value) => {
            resolve(py, &future, value);
        }
        Err(error) => fail(py, &future, &error),
    }
}

/// An answer wrapped the way [`now_or_later`] takes it.
pub(super) fn offset(now: Now<u64>) -> Option<Answer> {
    now.map(Answer::Offset)
}

pub(super) fn missed(now: Now<Missed>) -> Option<Answer> {
    now.map(Answer::Missed)
}

pub(super) fn recovered(now: Now<Recovered>) -> Option<Answer> {
    now.map(Answer::Recovered)
}

/// An offset as an int; what was missed as `(epoch, offset, messages or None, gap or None)`;
/// a recovery as `(epoch, offset, count or None, gap or None)`; a failure as ConnectionError.
fn value_of(py: Python<'_>, answer: Answer) -> PyResult<Py<PyAny>> {
    match answer {
        Answer::Offset(outcome) => outcome.map_err(PyConnectionError::new_err)?.into_py_any(py),
        Answer::Missed(outcome) => {
            let Missed { position, messages } = outcome.map_err(PyConnectionError::new_err)?;
            let (messages, gap) = match messages {
                Ok(frames) => (Some(list_of(py, frames)?), None),
                Err(gap) => (None, Some(gap_name(gap))),
            };
            tuple_of(py, position, messages, gap)
        }
        Answer::Recovered(outcome) => {
            let Recovered { position, queued } = outcome.map_err(PyConnectionError::new_err)?;
            let (count, gap) = match queued {
                Ok(count) => (Some(count.into_py_any(py)?), None),
                Err(gap) => (None, Some(gap_name(gap))),
            };
            tuple_of(py, position, count, gap)
        }
    }
}

fn tuple_of(py: Python<'_>, position: Position, value: Option<Py<PyAny>>, gap: Option<&str>) -> PyResult<Py<PyAny>> {
    (position.epoch, position.offset, value, gap).into_py_any(py)
}

fn list_of(py: Python<'_>, frames: Vec<Frame>) -> PyResult<Py<PyAny>> {
    let list = PyList::empty(py);
    for frame in frames {
        match frame {
            Frame::Text(text) => list.append(text)?,
            Frame::Binary(bytes) => list.append(PyBytes::new(py, &bytes))?,
        }
    }
    Ok(list.into_any().unbind())
}

/// How the Python side names a gap (`HistoryGap.reason`).
fn gap_name(gap: Gap) -> &'static str {
    match gap {
        Gap::Epoch => "epoch",
        Gap::TooOld => "too old",
    }
}
