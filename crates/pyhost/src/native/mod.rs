//! `robyn._native`: the part of the `robyn` package written in Rust. It runs only on the loop
//! thread, where the GIL is held: the dispatcher hands a batch of network events to the
//! connections, and each connection keeps the state its websocket object needs.

mod answers;
mod busy_clock;
mod connection;
mod dispatcher;
mod driver;
mod exchange;
mod frames;
mod hooks;
mod hub;
mod log;
mod phase;
mod standby;

use pyo3::prelude::*;

pub use busy_clock::busy;
pub use dispatcher::{Dispatcher, live_connections, live_connections_changed};
pub use driver::Driver;
pub use log::{format_exception, log_python_error};

/// Builds the `robyn._native` module object.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let module = PyModule::new(py, "robyn._native")?;
    module.add_class::<connection::Connection>()?;
    module.add_class::<Dispatcher>()?;
    module.add_class::<Driver>()?;
    module.add_class::<exchange::Exchange>()?;
    module.add_function(wrap_pyfunction!(log::emit, &module)?)?;
    module.add_function(wrap_pyfunction!(live_connections, &module)?)?;
    module.add_function(wrap_pyfunction!(busy_clock::loop_waiting, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::send_to, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::broadcast, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::connections, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::send_to_user, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::presence, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::keeps_history, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::broadcast_kept, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::reserve, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::commit, &module)?)?;
    module.add_function(wrap_pyfunction!(hub::missed, &module)?)?;
    Ok(module)
}
