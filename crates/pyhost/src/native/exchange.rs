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
    head: http::request::Parts,
    path_params: Vec<(String, String)>,
    body: Bytes,
    client: std::net::SocketAddr,
    scheme: &'static str,
    /// Taken by the one `respond`; a handler thread and the loop may race for it.
    reply: Mutex<Option<oneshot::Sender<HttpReply>>>,
}

impl Exchange {
    pub(super) fn new(call: HttpCall) -> Self {
        let HttpCall { route: _, head, path_params, body, client, scheme, reply } = call;
        Self { head, path_params, body, client, scheme, reply: Mutex::new(Some(reply)) }
    }
}

#[pymethods]
impl Exchange {
    #[getter]
    fn method<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.head.method.as_str())
    }

    /// The path, percent-decoded (a byte sequence that is not UTF-8 is replaced).
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, &percent_encoding::percent_decode_str(self.head.uri.path()).decode_utf8_lossy())
    }

    #[getter]
    fn query_string<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.head.uri.query().unwrap_or_default())
    }

    /// Every header, names lower-case, in order, repeats kept.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let pairs = self
            .head
            .headers
            .iter()
            .map(|(name, value)| PyTuple::new(py, [name.as_str(), &String::from_utf8_lossy(value.as_bytes())]));
        PyList::new(py, pairs.collect::<PyResult<Vec<_>>>()?)
    }

    #[getter]
    fn path_params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let pairs = self.path_params.iter().map(|(name, value)| PyTuple::new(py, [name.as_str(), value.as_str()]));
        PyList::new(py, pairs.collect::<PyResult<Vec<_>>>()?)
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

    /// The Host header (with its port, if it has one), or empty.
    #[getter]
    fn host<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        let host = self.head.headers.get(http::header::HOST).map(|host| String::from_utf8_lossy(host.as_bytes()));
        PyString::new(py, host.as_deref().unwrap_or_default())
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
