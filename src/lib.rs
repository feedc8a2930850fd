//! baton: a blue-green switchover controller for primary/standby server
//! pairs. The library holds everything; `main.rs` only calls `cli::main`.

pub mod change;
pub mod checks;
pub mod cli;
pub mod config;
pub mod core;
pub mod crash;
pub mod dns;
pub mod exec;
pub mod exit;
pub mod fence;
pub mod history;
pub mod hostlock;
pub mod metrics;
pub mod observe;
pub mod printable;
pub mod quote;
pub mod readfile;
pub mod remote;
// TODO(issue 13): run.rs reads the operator's uid with `libc::getuid()`;
// once that statement carries its own allow, drop this one.
#[allow(unsafe_code, reason = "getuid(2) in run.rs; see above")]
pub mod run;
pub mod signals;
pub mod ssh;
pub mod store;
pub mod traffic;
pub mod verify;
pub mod windows;
