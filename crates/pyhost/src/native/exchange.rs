//! One HTTP request as the Python side sees it: what the client sent, read lazily into Python
//! objects, and `respond`, which hands the answer back to the network side from any thread.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use pyo3::exceptions::{PyConnectionResetError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use tokio::sync::oneshot;

use super::hooks::create_future;
use crate::bridge::{FormParts, HttpCall, HttpReply, ReplyBody};
use crate::locks::lock;
use crate::stream::{Pushed, ResponseStream};

#[pyclass(module = "robyn._native", frozen)]
pub struct Exchange {
    head: http::request::Parts,
    path_params: Vec<(String, String)>,
    body: Bytes,
    form: Option<Box<FormParts>>,
    client: std::net::SocketAddr,
    scheme: &'static str,
    /// Taken by the one `respond`; a handler thread and the loop may race for it.
    reply: Mutex<Option<oneshot::Sender<HttpReply>>>,
    /// The body being streamed, once `start` sent the head.
    stream: OnceLock<Arc<ResponseStream>>,
}

impl Exchange {
    pub(super) fn new(call: HttpCall) -> Self {
        let HttpCall { route: _, head, path_params, body, form, client, scheme, reply } = call;
        Self { head, path_params, body, form, client, scheme, reply: Mutex::new(Some(reply)), stream: OnceLock::new() }
    }

    fn take_reply(&self) -> PyResult<oneshot::Sender<HttpReply>> {
        lock(&self.reply).take().ok_or_else(|| PyRuntimeError::new_err("this request has been answered already"))
    }

    fn started(&self) -> PyResult<&Arc<ResponseStream>> {
        self.stream.get().ok_or_else(|| PyRuntimeError::new_err("the stream has not been started: call start() first"))
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Python's objects go with the exchange (its owner is Python, so the GIL is held here),
        // not later with the network side's share of the stream.
        if let Some(stream) = self.stream.get() {
            drop(stream.take_python());
        }
    }
}

fn check_status(status: u16) -> PyResult<()> {
    if (100..=999).contains(&status) {
        return Ok(());
    }
    Err(PyValueError::new_err(format!("{status} is not an HTTP status code (100-999)")))
}

/// `bytes`, `str` (as UTF-8) or anything `bytes()` takes.
fn bytes_of(body: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    Ok(match body.cast::<PyBytes>() {
        Ok(bytes) => Bytes::copy_from_slice(bytes.as_bytes()),
        Err(_) => match body.cast::<PyString>() {
            Ok(text) => Bytes::copy_from_slice(text.to_cow()?.as_bytes()),
            Err(_) => Bytes::from(body.extract::<Vec<u8>>()?),
        },
    })
}

fn client_gone() -> PyErr {
    PyConnectionResetError::new_err("the client has gone: the rest of the stream is not sent")
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

    /// A multipart/form-data body's text fields, `(name, text)` in order; None for any other body.
    #[getter]
    fn form_fields(&self) -> Option<Vec<(String, String)>> {
        self.form.as_ref().map(|form| form.fields.clone())
    }

    /// A multipart/form-data body's files, `(file name, content)` in order; None for any other body.
    #[getter]
    fn form_files<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some(form) = &self.form else { return Ok(None) };
        let pairs = form.files.iter().map(|(name, data)| (name.as_str(), PyBytes::new(py, data)));
        Ok(Some(PyList::new(py, pairs)?))
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
        check_status(status)?;
        let body = ReplyBody::Whole(bytes_of(body)?);
        // The client may be gone; nobody is left to tell.
        let _ = self.take_reply()?.send(HttpReply { status, headers, body });
        Ok(())
    }

    /// Sends the head of an answer whose body follows in chunks (`send`, then `finish`), on the
    /// loop thread. `events`: a text/event-stream, kept alive by comments while idle.
    /// `on_gone()` is called on the loop thread if the client goes away before `finish`.
    fn start(&self, status: u16, headers: Vec<(String, String)>, events: bool, on_gone: Py<PyAny>) -> PyResult<()> {
        check_status(status)?;
        let reply = self.take_reply()?;
        let stream = Arc::new(ResponseStream::new(events));
        stream.python_side(|python| python.on_gone = Some(on_gone));
        let _ = self.stream.set(stream.clone());
        if reply.send(HttpReply { status, headers, body: ReplyBody::Streamed(stream.clone()) }).is_err() {
            stream.close();
            drop(stream.take_python());
            return Err(client_gone());
        }
        Ok(())
    }

    /// Queues a chunk of the body (`bytes` or `str`); returns None, or a future to await
    /// before the next one while the client is behind. Raises ConnectionResetError once the
    /// client is gone.
    fn send(&self, py: Python<'_>, chunk: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let stream = self.started()?;
        match stream.push(bytes_of(chunk)?) {
            Pushed::Room => Ok(None),
            Pushed::Full => {
                let future = create_future(py)?;
                let waiter = future.clone_ref(py);
                stream.python_side(|python| python.waiter = Some(waiter));
                Ok(Some(future))
            }
            Pushed::Closed => Err(client_gone()),
        }
    }

    /// Ends the body; answers whether the client was there to get the end of it.
    /// `complete=False`: the app failed midway, and the client sees the body cut off rather
    /// than complete.
    #[pyo3(signature = (complete = true))]
    fn finish(&self, complete: bool) -> PyResult<bool> {
        let stream = self.started()?;
        let ended = stream.finish(complete);
        drop(stream.take_python());
        Ok(ended)
    }
}
