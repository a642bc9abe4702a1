//! The WebSocket side: the opening handshake (`handshake`, with `request` for what the app
//! sees of it), the two socket layers behind one trait (`socket`: `plain` on tungstenite with
//! `client_stream`, `deflate` on yawc with `deflate_offer`), the task per connection and its
//! close lifecycle (`connection`), and the registry of open connections, rooms and broadcast
//! (`registry`), all sharing `Shared`.

pub mod client_stream;
pub mod connection;
pub mod deflate;
pub mod deflate_offer;
pub mod handshake;
pub mod plain;
pub mod registry;
pub mod request;
mod shared;
pub mod socket;

pub use shared::Shared;
