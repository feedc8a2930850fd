//! SIGINT and SIGTERM (signal-hook). The first asks for a stop at the next
//! safe point: no new pair starts, and a pair in flight that has not moved
//! traffic yet is rolled back, one that has finishes. The second aborts the
//! step in flight: its end is journaled as aborted and the process exits,
//! leaving the run for `baton recover`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio::sync::Notify;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicUsize = AtomicUsize::new(0);

fn notify() -> &'static Notify {
    static N: OnceLock<Notify> = OnceLock::new();
    N.get_or_init(Notify::new)
}

/// Starts counting SIGINT and SIGTERM (once per process).
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                LAST.store(sig as usize, Ordering::SeqCst);
                let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
                tracing::warn!(signal = sig, count = n, "signal received");
                notify().notify_waiters();
            }
        })?;
    Ok(())
}

/// How many stop signals arrived.
pub fn count() -> usize {
    COUNT.load(Ordering::SeqCst)
}

/// The name of the last signal, for the journal.
pub fn last_name() -> &'static str {
    match LAST.load(Ordering::SeqCst) as i32 {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Resolves once a second stop signal has arrived.
pub async fn second() {
    at_least(2).await;
}

/// Resolves once a stop signal has arrived (a long wait inside a step,
/// like a ramp's, ends early on it).
pub async fn first() {
    at_least(1).await;
}

async fn at_least(n: usize) {
    loop {
        let notified = notify().notified();
        if count() >= n {
            return;
        }
        notified.await;
    }
}
