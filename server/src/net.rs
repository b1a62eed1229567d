//! Networking: the accept loop, one task per connection, per-connection state, and the
//! registry of connected clients.

pub mod connection;
pub mod listener;
pub mod pause;
pub mod push;
pub mod registry;
pub mod session;
