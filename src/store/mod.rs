//! The store: everything baton keeps under the state directory. State files
//! (recorded roles), the per-pair journal, and the per-pair run lock. Local
//! files only; every file is 0600 in a 0700 directory owned by the user
//! running baton (`dir` checks it before any command uses it).

pub mod archive;
pub mod dir;
pub mod history;
pub mod journal;
pub mod lock;
pub mod state;
