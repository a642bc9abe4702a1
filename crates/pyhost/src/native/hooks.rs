//! The Python objects the native side calls back into (asyncio's future factory, the
//! `WebSocketDisconnect` class, the runtime's open, stop, broker, HTTP, lease and presence callbacks), set once by
//! `Dispatcher.configure`, and the few ways the native side uses them.

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

pub(super) struct Hooks {
    pub create_future: Py<PyAny>,
    pub disconnect: Py<PyAny>,
    pub on_open: Py<PyAny>,
    pub on_stop: Py<PyAny>,
    pub on_broker_reconnect: Py<PyAny>,
    /// `on_http(route, exchange)`: route -1 when no route matched.
    pub on_http: Py<PyAny>,
    /// `on_lease(task, held)`: this process gained or lost the lease of a once handler.
    pub on_lease: Py<PyAny>,
    /// `on_presence(endpoint, room, joined, left)`: users joined or left, across the cluster.
    pub on_presence: Py<PyAny>,
}

static HOOKS: PyOnceLock<Hooks> = PyOnceLock::new();

pub(super) fn configure(py: Python<'_>, hooks: Hooks) -> PyResult<()> {
    HOOKS.set(py, hooks).map_err(|_| PyRuntimeError::new_err("the dispatcher is already configured"))
}

pub(super) fn hooks(py: Python<'_>) -> PyResult<&Hooks> {
    HOOKS
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("robyn._native is not configured: the server's runtime starts it"))
}

/// A `WebSocketDisconnect(code, reason)` ready to raise or to set on a future.
pub(super) fn disconnect(py: Python<'_>, code: u16, reason: &str) -> PyErr {
    match hooks(py).and_then(|hooks| hooks.disconnect.call1(py, (code, reason))) {
        Ok(exception) => PyErr::from_value(exception.into_bound(py)),
        Err(err) => err,
    }
}

pub(super) fn create_future(py: Python<'_>) -> PyResult<Py<PyAny>> {
    hooks(py)?.create_future.call0(py)
}

/// Resolves a future unless its awaiting task was cancelled meanwhile; answers whether it did.
pub(super) fn resolve(py: Python<'_>, future: &Py<PyAny>, value: Py<PyAny>) -> bool {
    future.call_method1(py, intern!(py, "set_result"), (value,)).is_ok()
}

pub(super) fn fail(py: Python<'_>, future: &Py<PyAny>, error: &PyErr) {
    // A cancelled future refuses the exception; nobody is waiting for it then.
    let _ = future.call_method1(py, intern!(py, "set_exception"), (error.value(py),));
}
