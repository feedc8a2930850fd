//! The store: state files (and, later, journals and locks) under the
//! configured state directory.

pub mod state;
