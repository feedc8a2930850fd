//! baton: a blue-green switchover controller for primary/standby server
//! pairs. The library holds everything; `main.rs` only calls `cli::main`.

pub mod config;
pub mod quote;
pub mod ssh;
