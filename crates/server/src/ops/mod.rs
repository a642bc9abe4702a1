//! What an operator asks of a running server: `/health`, `/ready` and `/metrics` (`probes`),
//! live counts (`stats`, `--stats-path`), and giving freed memory back after a peak
//! (`memory`).

pub mod memory;
pub mod probes;
pub mod stats;
