//! The commands' output on standard output. A reader that goes away
//! (`baton plan | head -c1`, a closed pipe) ends the output quietly, never
//! the command: the rest of the output is dropped, the command finishes its
//! work (a run in flight is journaled as always) and exits with its own
//! code. `println!` would panic there instead.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output could not be written: nothing more is tried.
static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output, unless its reader has gone.
pub fn write(text: std::fmt::Arguments<'_>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_fmt(text).is_err() {
        GONE.store(true, Ordering::Relaxed);
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}
