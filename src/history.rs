//! The fleet's history, read from the journals: the completed applies in
//! every pair's journal and the gate's decision for one pair (the rule
//! itself is the pure `core::gate`), how long recent runs took, and whether
//! a pair's last run is settled, in progress or interrupted.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::core::assess::LastRun;
use crate::core::cycle::{Kind, Outcome};
use crate::core::gate::{self, Completion, Decision, Member};
use crate::store::journal::{Journal, JournalError, Record};
use crate::store::lock;

/// Every apply that finished well, on the given pairs.
pub fn completions(state_dir: &Path, members: &[Member]) -> Result<Vec<Completion>, JournalError> {
    let mut out = Vec::new();
    for m in members {
        for view in Journal::new(state_dir, &m.pair).runs()? {
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

/// The pair's last run as `status` and the metrics show it: settled, in
/// progress (a live process holds the pair's lock), or interrupted (never
/// finished, and nobody holds the lock: `baton recover` must settle it).
pub fn last_run(state_dir: &Path, pair: &str) -> Result<LastRun, JournalError> {
    let Some(view) = Journal::new(state_dir, pair).last_run()? else {
        return Ok(LastRun::Settled);
    };
    if view.finished.is_some() {
        return Ok(LastRun::Settled);
    }
    let Record::Start { run, kind, .. } = &view.start else {
        return Ok(LastRun::Settled);
    };
    Ok(match lock::held_by(state_dir, pair) {
        Some(holder) => LastRun::InProgress {
            run: run.clone(),
            pid: holder.pid,
            operator: holder.operator,
        },
        None => LastRun::Interrupted {
            pair: pair.to_string(),
            run: run.clone(),
            kind: *kind,
            open: view.open,
            last: view.ended.last().map(|e| e.step),
        },
    })
}

/// How many recent runs the expected duration looks at.
const RECENT: usize = 5;

/// How long a run of `kind` on `pair` is expected to take: the longest of
/// its last few runs of that kind that ended ok, and how many there were;
/// `None` when there are none. A run's time is the sum of its steps' own
/// durations, so a run interrupted on Friday and recovered on Monday counts
/// what its steps took, not the weekend in between.
pub fn expected_duration(
    state_dir: &Path,
    pair: &str,
    kind: Kind,
) -> Result<Option<(Duration, usize)>, JournalError> {
    let took: Vec<Duration> = Journal::new(state_dir, pair)
        .runs()?
        .iter()
        .filter(|v| v.finished == Some(Outcome::Ok))
        .filter(|v| matches!(&v.start, Record::Start { kind: k, .. } if *k == kind))
        .map(|v| Duration::from_millis(v.took_ms))
        .collect();
    let recent = &took[took.len().saturating_sub(RECENT)..];
    Ok(recent.iter().max().map(|d| (*d, recent.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cycle::Step;

    fn run(j: &Journal, id: &str, kind: Kind, steps: &[u64], outcome: Outcome, at: &str) {
        j.append(&Record::Start {
            run: id.into(),
            pair: "web".into(),
            kind,
            from: "blue".into(),
            to: "green".into(),
            change: None,
            label: None,
            hash: None,
            operator: "t".into(),
            reason: Some("test".into()),
            gate: None,
            window: None,
            forced: None,
            at: "2026-11-20T02:00:00.000Z".into(),
        })
        .unwrap();
        for ms in steps {
            j.append(&Record::End {
                run: id.into(),
                step: Step::Switch,
                ok: true,
                detail: String::new(),
                duration_ms: *ms,
                commands: vec![],
                at: at.into(),
            })
            .unwrap();
        }
        j.append(&Record::Finish {
            run: id.into(),
            outcome,
            message: String::new(),
            at: at.into(),
        })
        .unwrap();
    }

    #[test]
    fn the_expected_duration_is_the_longest_recent_ok_run_by_its_steps() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path(), "web");
        assert_eq!(
            expected_duration(dir.path(), "web", Kind::Apply).unwrap(),
            None
        );
        // Finished three days after it started (recovered after a crash):
        // its steps took 1.5 s, and that is what counts.
        run(
            &j,
            "a",
            Kind::Apply,
            &[1000, 500],
            Outcome::Ok,
            "2026-11-23T02:00:00.000Z",
        );
        run(
            &j,
            "b",
            Kind::Apply,
            &[9000],
            Outcome::RolledBack,
            "2026-11-23T03:00:00.000Z",
        );
        run(
            &j,
            "c",
            Kind::Switchover,
            &[7000],
            Outcome::Ok,
            "2026-11-23T04:00:00.000Z",
        );
        run(
            &j,
            "d",
            Kind::Apply,
            &[1200],
            Outcome::Ok,
            "2026-11-23T05:00:00.000Z",
        );
        assert_eq!(
            expected_duration(dir.path(), "web", Kind::Apply).unwrap(),
            Some((Duration::from_millis(1500), 2))
        );
        assert_eq!(
            expected_duration(dir.path(), "web", Kind::Switchover).unwrap(),
            Some((Duration::from_millis(7000), 1))
        );
    }
}
