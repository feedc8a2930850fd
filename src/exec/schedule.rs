//! Maintenance windows at run time: reads the clock and the pair's journal
//! (for how long a run is expected to take) and asks the pure
//! `core::window` whether a run may start now. Used by the executor before
//! a run and by `plan` to show the decision.

use crate::config::Pair;
use crate::core::cycle::Kind;
use crate::core::window::{self, fmt_duration};
use crate::store::{history, Store};

/// Kinds a maintenance window holds back. Failover, rejoin and recover
/// never wait for a window: they are how an outage ends.
pub fn applies_to(kind: Kind) -> bool {
    matches!(kind, Kind::Apply | Kind::Switchover)
}

/// The window's verdict on starting a run of `kind` on `pair` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The run may start.
    pub allowed: bool,
    /// Why, with the window's end or next opening and the expected
    /// duration and where it came from.
    pub text: String,
}

/// Decides for a run starting now.
pub fn check(store: &Store, pair: &Pair, kind: Kind) -> Verdict {
    let m = &pair.maintenance;
    let now = jiff::Timestamp::now();
    if m.windows.is_empty() {
        // Any time: no need to read the journal for an expected duration.
        return Verdict {
            allowed: true,
            text: window::Decision::Always.describe(now),
        };
    }
    let (expected, source) = match history::expected_duration(store, &pair.name, kind) {
        Ok(Some((d, n))) => (
            d,
            format!(
                "the longest of its last {n} {} run{} that ended ok",
                kind.name(),
                if n == 1 { "" } else { "s" }
            ),
        ),
        Ok(None) => (
            m.estimate,
            "[maintenance] estimate: the journal has no run of this kind that ended ok".to_string(),
        ),
        Err(e) => (
            m.estimate,
            format!("[maintenance] estimate: the journal cannot be read ({e})"),
        ),
    };
    let decision = window::decide(&m.windows, &m.time_zone, now, expected);
    let windows: Vec<&str> = m.windows.iter().map(|w| w.spec.as_str()).collect();
    Verdict {
        allowed: decision.allows(),
        text: format!(
            "{} (windows {} in {}; expected duration {} from {source})",
            decision.describe(now),
            windows.join(", "),
            m.zone_name,
            fmt_duration(expected)
        ),
    }
}
