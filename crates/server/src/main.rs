//! The standalone binary: starts CPython in this process and serves the app (see the library).

use std::process::ExitCode;

// Only for bench/memory.py, which measures other allocators against glibc's (the default).
#[cfg(feature = "alloc-mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(feature = "alloc-jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    match robyn_ws_server::Invocation::this_executable() {
        Ok(invocation) => ExitCode::from(robyn_ws_server::main(&invocation)),
        Err(error) => {
            eprintln!("error: cannot find this program's own path: {error}");
            ExitCode::FAILURE
        }
    }
}
