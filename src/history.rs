//! The fleet's history, for the environment gate: the completed applies in
//! every pair's journal, and the gate's decision for one pair (the rule
//! itself is the pure `core::gate`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::core::cycle::{Kind, Outcome};
use crate::core::gate::{self, Completion, Decision, Member};
use crate::store::journal::{runs, Journal, JournalError, Record};

/// Every apply that finished well, on the given pairs.
pub fn completions(state_dir: &Path, members: &[Member]) -> Result<Vec<Completion>, JournalError> {
    let mut out = Vec::new();
    for m in members {
        for view in runs(&Journal::new(state_dir, &m.pair).read()?) {
            let Record::Start {
                kind: Kind::Apply,
                hash: Some(hash),
                ..
            } = &view.start
            else {
                continue;
            };
            if view.finished != Some(Outcome::Ok) {
                continue;
            }
            let Some(at) = view
                .finished_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339(t).ok())
            else {
                continue;
            };
            out.push(Completion {
                pair: m.pair.clone(),
                hash: hash.clone(),
                at,
            });
        }
    }
    Ok(out)
}

/// The gate's decision for `hash` on a pair of `environment`.
pub fn decide(
    state_dir: &Path,
    order: &[String],
    soak: Option<Duration>,
    members: &[Member],
    environment: &str,
    hash: &str,
) -> Result<Decision, JournalError> {
    let done = completions(state_dir, members)?;
    Ok(gate::decide(
        order,
        environment,
        hash,
        members,
        &done,
        SystemTime::now(),
        soak,
    ))
}

/// How many recent runs the expected duration looks at.
const RECENT: usize = 5;

/// How long a run of `kind` on `pair` is expected to take: the longest of
/// its last few runs of that kind that ended ok, and how many there were;
/// `None` when there are none.
pub fn expected_duration(
    state_dir: &Path,
    pair: &str,
    kind: Kind,
) -> Result<Option<(Duration, usize)>, JournalError> {
    let took: Vec<Duration> = runs(&Journal::new(state_dir, pair).read()?)
        .iter()
        .filter(|v| v.finished == Some(Outcome::Ok))
        .filter_map(|v| {
            let Record::Start { kind: k, at, .. } = &v.start else {
                return None;
            };
            let start = humantime::parse_rfc3339(at).ok()?;
            let end = humantime::parse_rfc3339(v.finished_at.as_deref()?).ok()?;
            (*k == kind).then(|| end.duration_since(start).unwrap_or_default())
        })
        .collect();
    let recent = &took[took.len().saturating_sub(RECENT)..];
    Ok(recent.iter().max().map(|d| (*d, recent.len())))
}
