//! `robyn_ws_server._server`: the server as an extension module, so that `pip install
//! robyn-ws-server` gives a `robyn-ws-server` command that runs in the user's own Python
//! (any CPython from 3.9 on: one abi3 wheel). The server is the same library the standalone
//! binary runs; here Python is already running, so it is not started again.

use pyo3::prelude::*;

#[pymodule]
mod _server {
    use std::ffi::OsString;
    use std::path::PathBuf;

    use pyo3::prelude::*;

    /// Runs the server with `flags` (the command line, without the program) until it is
    /// stopped, and returns its exit status. `python` is this interpreter, which starts the
    /// workers of `--processes` (as `python -m robyn_ws_server`). The GIL is released while it
    /// serves: the server's own loop thread runs the app.
    #[pyfunction]
    fn serve(py: Python<'_>, python: PathBuf, flags: Vec<OsString>) -> u8 {
        let invocation =
            robyn_ws_server::Invocation { program: python, prefix: vec!["-m".into(), "robyn_ws_server".into()], flags };
        py.detach(|| robyn_ws_server::main(&invocation))
    }
}
