//! Python values as WebSocket frames, and the names of the values that are not: shared by a
//! connection's sends and the app's reach beyond it.

use bytes::Bytes;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

use crate::bridge::Frame;

/// A Python value as a frame: `str` as text, bytes-like as binary.
pub(super) fn frame_of(data: &Bound<'_, PyAny>) -> PyResult<Frame> {
    if let Ok(text) = data.cast::<PyString>() {
        return Ok(Frame::Text(text.to_cow()?.into_owned()));
    }
    binary_of(data).ok_or_else(|| PyTypeError::new_err(format!("expected str or bytes, got {}", type_name(data))))
}

pub(super) fn binary_of(data: &Bound<'_, PyAny>) -> Option<Frame> {
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

pub(super) fn type_name(data: &Bound<'_, PyAny>) -> String {
    data.get_type().name().map(|name| name.to_string()).unwrap_or_else(|_| "?".into())
}

/// A broadcast of something that is not a message: what it takes, and where a function is
/// taken instead.
pub(super) fn not_broadcastable(data: &Bound<'_, PyAny>) -> PyErr {
    if data.is_callable() {
        return PyTypeError::new_err(
            "broadcast() takes a function (called with the offset) only on a route with a history: \
             @app.websocket(path, history=N); here it takes str or bytes",
        );
    }
    PyTypeError::new_err(format!("broadcast() takes str or bytes, got {}", type_name(data)))
}
