//! baton: a blue-green switchover controller for primary/standby server
//! pairs. The library holds everything; `main.rs` only calls `cli::main`.
//!
//! - `core`: the pure rules: the cycle, preflight, the gate, windows, who
//!   holds traffic, and every operation a run performs, as data.
//! - `exec`: the interpreter of operations, on the real world or a
//!   simulated one; a run from its lock to its outcome.
//! - `traffic`: one file per way of moving traffic.
//! - `io`: the adapters that move bytes: SSH, DNS, health checks.
//! - `store`: state, journal, locks, history.
//! - `config`: the configuration and its validation.
//! - `cli`: commands, output, exit codes.

pub mod cli;
pub mod config;
pub mod core;
pub mod exec;
pub mod io;
pub mod store;
pub mod traffic;
