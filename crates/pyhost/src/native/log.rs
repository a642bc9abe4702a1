//! Python's side of the server's log: log records forwarded from Python's `logging`, and
//! Python exceptions written with their tracebacks.

use pyo3::prelude::*;

/// An exception with its traceback, as Python would print it.
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py
        .import("traceback")
        .and_then(|traceback| traceback.call_method1("format_exception", (err.value(py),)))
        .and_then(|lines| lines.extract::<Vec<String>>());
    match formatted {
        Ok(lines) => lines.concat().trim_end().to_owned(),
        Err(_) => err.to_string(),
    }
}

/// Logs a Python exception with its traceback through the server's log.
pub fn log_python_error(py: Python<'_>, context: &str, err: &PyErr) {
    let traceback = format_exception(py, err);
    tracing::error!(target: "robyn_ws_server::python", "{context}\n{traceback}");
}

/// `emit(levelno, logger, message)`: one Python log record, into the server's log. The
/// logger's name leads the message (a tracing target cannot be chosen at run time).
#[pyfunction]
pub fn emit(level: i32, logger: &str, message: &str) {
    match level {
        40.. => tracing::error!(target: "python", "{logger}: {message}"),
        30..=39 => tracing::warn!(target: "python", "{logger}: {message}"),
        20..=29 => tracing::info!(target: "python", "{logger}: {message}"),
        10..=19 => tracing::debug!(target: "python", "{logger}: {message}"),
        _ => tracing::trace!(target: "python", "{logger}: {message}"),
    }
}
