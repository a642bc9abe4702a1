//! Many processes and hosts as one server: the supervisor of `--processes` and its local bus
//! between workers (`supervisor`, `bus`), and Redis between hosts (`broker`). Both carry what
//! the registry cannot deliver itself, through its `Fabric`; which process runs the app's once
//! handlers (`lease`); and, under `--reload`, replacing the workers when the app's files change
//! (`reload`).

pub mod broker;
pub mod bus;
pub mod lease;
pub mod reload;
pub mod supervisor;
