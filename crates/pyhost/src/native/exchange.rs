//! One HTTP request as the Python side sees it: what the client sent, read lazily into Python
//! objects, and `respond`, which hands the answer back to the network side from any thread.

use std::sync::Mutex;

use bytes::Bytes;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use tokio::sync::oneshot;

use crate::bridge::{HttpCall, HttpReply};
use crate::locks::lock;

#[pyclass(module = "robyn._native", frozen)]
pub struct Exchange {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    path_params: Vec<(String, String)>,
    body: Bytes,
    client: std::net::SocketAddr,
    scheme: &'static str,
    host: String,
    /// Taken by the one `respond`; a handler thread and the loop may race for it.
    reply: Mutex<Option<oneshot::Sender<HttpReply>>>,
}

impl Exchange {
    pub(super) fn new(call: HttpCall) -> Self {
        let HttpCall { route: _, method, path, query, headers, path_params, body, client, scheme, host, reply } = call;
        Self { method, path, query, headers, path_params, body, client, scheme, host, reply: Mutex::new(Some(reply)) }
    }
}

fn pairs<'py>(py: Python<'py>, pairs: &[(String, String)]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        pairs
            .iter()
            .map(|(name, value)| PyTuple::new(py, [name.as_str(), value.as_str()]))
            .collect::<PyResult<Vec<_>>>()?,
    )
}

#[pymethods]
impl Exchange {
    #[getter]
    fn method<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.method)
    }

    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.path)
    }

    #[getter]
    fn query_string<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.query)
    }

    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        pairs(py, &self.headers)
    }

    #[getter]
    fn path_params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        pairs(py, &self.path_params)
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    #[getter]
    fn client(&self) -> (String, u16) {
        (self.client.ip().to_string(), self.client.port())
    }

    #[getter]
    fn scheme(&self) -> &'static str {
        self.scheme
    }

    #[getter]
    fn host<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &self.host)
    }

    /// Sends the answer; callable once, from any thread.
    fn respond(&self, status: u16, headers: Vec<(String, String)>, body: &Bound<'_, PyAny>) -> PyResult<()> {
        if !(100..=999).contains(&status) {
            return Err(PyValueError::new_err(format!("{status} is not an HTTP status code (100-999)")));
        }
        let body = match body.cast::<PyBytes>() {
            Ok(bytes) => Bytes::copy_from_slice(bytes.as_bytes()),
            Err(_) => match body.cast::<PyString>() {
                Ok(text) => Bytes::copy_from_slice(text.to_cow()?.as_bytes()),
                Err(_) => Bytes::from(body.extract::<Vec<u8>>()?),
            },
        };
        let reply = lock(&self.reply)
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this request has been answered already"))?;
        // The client may be gone; nobody is left to tell.
        let _ = reply.send(HttpReply { status, headers, body });
        Ok(())
    }
}
