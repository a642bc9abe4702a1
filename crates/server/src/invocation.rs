//! How this server was started, so that `--processes` starts its workers the same way: the
//! binary runs itself again; inside Python, the package runs `python -m robyn_ws_server`.

use std::ffi::OsString;
use std::path::PathBuf;

/// How the server was started: `--processes` starts each worker the same way.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The program, and what comes before the flags (`-m robyn_ws_server` for Python).
    pub program: PathBuf,
    pub prefix: Vec<OsString>,
    /// The user's flags, without the program's name.
    pub flags: Vec<OsString>,
}

impl Invocation {
    /// This executable, with the flags it was started with.
    pub fn this_executable() -> std::io::Result<Self> {
        Ok(Self { program: std::env::current_exe()?, prefix: Vec::new(), flags: std::env::args_os().skip(1).collect() })
    }
}
