//! The interpreter side of robyn-ws-server: CPython embedded with PyO3, the `robyn` package
//! users import, and the bridge that carries events between tokio and the asyncio loop.

pub mod bridge;
pub mod close_code;
#[cfg(feature = "embed")]
mod embedding;
mod event_loop;
mod interpreter;
pub mod locks;
mod native;
pub mod stream;
pub mod wake;

pub use event_loop::{Network, PythonLoop};
pub use interpreter::{
    EndpointSpec, HttpApp, HttpRouteSpec, LoadedApp, OnceScope, OnceTask, Settings, StartupError, StaticMount,
    WorkerPlace, run,
};
pub use native::{live_connections, live_connections_changed};
