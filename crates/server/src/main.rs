//! The standalone binary: starts CPython in this process and serves the app (see the library).

use std::process::ExitCode;

fn main() -> ExitCode {
    match robyn_ws_server::Invocation::this_executable() {
        Ok(invocation) => ExitCode::from(robyn_ws_server::main(&invocation)),
        Err(error) => {
            eprintln!("error: cannot find this program's own path: {error}");
            ExitCode::FAILURE
        }
    }
}
