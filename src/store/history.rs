//! The fleet's history, read from the journals: the completed applies in
//! every pair's journal and the gate's decision for one pair (the rule
//! itself is the pure `core::gate`), how long recent runs took, and whether
//! a pair's last run is settled, in progress or interrupted.

use std::time::{Duration, SystemTime};

use crate::core::assess::{HeldBy, LastRun};
use crate::core::cycle::{Kind, Outcome, Shape};
use crate::core::gate::{self, Completion, Decision, Member};
use crate::store::journal::{Journal, JournalError, Record, RunView};
use crate::store::Store;

/// Every apply that finished well, on the given pairs.
pub fn completions(store: &Store, members: &[Member]) -> Result<Vec<Completion>, JournalError> {
    let mut out = Vec::new();
    for m in members {
        for view in Journal::of(store, &m.pair).runs()? {
            let Record::Start {
                kind: Kind::Apply,
                hash: Some(hash),
                reverse,
                ..
            } = &view.start
            else {
                continue;
            };
            // A finished rollback withdraws the change from the pair: its
            // earlier completions no longer count.
            if *reverse {
                // A rollback that moved traffic and left one host unwell
                // took the change back all the same.
                if matches!(view.finished, Some(Outcome::Ok | Outcome::Incomplete)) {
                    out.retain(|c: &Completion| !(c.pair == m.pair && &c.hash == hash));
                }
                continue;
            }
            if view.held() {
                out.push(Completion {
                    pair: m.pair.clone(),
                    hash: hash.clone(),
                    at: SystemTime::now(),
                    held: true,
                });
                continue;
            }
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
                held: false,
            });
        }
    }
    Ok(out)
}

/// Where a change stands on a pair, by the pair's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Its last apply finished on both hosts, or moved traffic and left
    /// the old primary unwell (incomplete), and no rollback since.
    Finished,
    /// A run holds it (a hold, an A/B experiment): not finished.
    Held,
    /// A rollback took it back since.
    Withdrawn,
    /// It never finished on this pair.
    Never,
}

/// Where the change `hash` stands on `pair`: the last of its applies or
/// rollbacks that finished well (or holds the pair) decides.
pub fn standing(store: &Store, pair: &str, hash: &str) -> Result<Standing, JournalError> {
    let mut now = Standing::Never;
    for view in Journal::of(store, pair).runs()? {
        let Record::Start {
            kind: Kind::Apply,
            hash: Some(h),
            reverse,
            ..
        } = &view.start
        else {
            continue;
        };
        if h != hash {
            continue;
        }
        match (view.finished, *reverse) {
            (Some(Outcome::Ok | Outcome::Incomplete), false) => now = Standing::Finished,
            (Some(Outcome::Ok | Outcome::Incomplete), true) => now = Standing::Withdrawn,
            (None, false) if view.held() => now = Standing::Held,
            _ => {}
        }
    }
    Ok(now)
}

/// The gate's decision for `hash` on a pair of `environment`.
pub fn decide(
    store: &Store,
    order: &[String],
    soak: Option<Duration>,
    members: &[Member],
    environment: &str,
    hash: &str,
) -> Result<Decision, JournalError> {
    let done = completions(store, members)?;
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
pub fn last_run(store: &Store, pair: &str) -> Result<LastRun, JournalError> {
    Ok(judge(
        store,
        pair,
        Journal::of(store, pair).last_run()?.as_ref(),
    ))
}

/// `last_run` of a run already read from the journal (its last: `None`
/// when it has none).
pub fn judge(store: &Store, pair: &str, view: Option<&RunView>) -> LastRun {
    let Some(view) = view else {
        return LastRun::Settled;
    };
    if view.finished.is_some() {
        return LastRun::Settled;
    }
    let Record::Start {
        run,
        kind,
        from,
        to,
        change,
        experiment,
        hold,
        ..
    } = &view.start
    else {
        return LastRun::Settled;
    };
    let splits = matches!(view.shape(), Shape::Ramp | Shape::Experiment);
    match store.held_by(pair) {
        Some(holder) => LastRun::InProgress {
            run: run.clone(),
            pid: holder.pid,
            operator: holder.operator,
            splits,
        },
        None if view.held() => LastRun::Held {
            pair: pair.to_string(),
            run: run.clone(),
            to: to.clone(),
            from: from.clone(),
            change: change.clone().unwrap_or_default(),
            by: match (experiment, hold) {
                (Some(e), _) => HeldBy::Experiment { percent: e.percent },
                (None, hold) => {
                    let since = view
                        .last_at
                        .as_deref()
                        .and_then(|t| humantime::parse_rfc3339(t).ok())
                        .unwrap_or_else(SystemTime::now);
                    let until = since + hold.unwrap_or_default();
                    HeldBy::Hold {
                        until: humantime::format_rfc3339_seconds(until).to_string(),
                        expired: until <= SystemTime::now(),
                    }
                }
            },
        },
        None => LastRun::Interrupted {
            pair: pair.to_string(),
            run: run.clone(),
            kind: *kind,
            open: view.open,
            last: view.ended.last().map(|e| e.step),
        },
    }
}

/// When the last run of `kind` on `pair` started (seconds since the
/// epoch), whoever started it: the watcher's cooldown counts every
/// failover, from the journal every controller shares.
pub fn last_started(store: &Store, pair: &str, kind: Kind) -> Result<Option<u64>, JournalError> {
    Ok(Journal::of(store, pair)
        .runs()?
        .iter()
        .rev()
        .find_map(|v| match &v.start {
            Record::Start { kind: k, at, .. } if *k == kind => humantime::parse_rfc3339(at)
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            _ => None,
        }))
}

/// How many recent runs the expected duration looks at.
const RECENT: usize = 5;

/// How long a run of `kind` on `pair` is expected to take: the longest of
/// its last few runs of that kind that ended ok, and how many there were;
/// `None` when there are none. A run's time is the sum of its steps' own
/// durations, so a run interrupted on Friday and recovered on Monday counts
/// what its steps took, not the weekend in between.
pub fn expected_duration(
    store: &Store,
    pair: &str,
    kind: Kind,
) -> Result<Option<(Duration, usize)>, JournalError> {
    let took: Vec<Duration> = Journal::of(store, pair)
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
            roles: false,
            data_loss: None,
            ramp: None,
            experiment: None,
            hold: None,
            reverse: false,
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
    fn the_last_start_of_a_kind_is_read_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local(dir.path());
        assert_eq!(last_started(&store, "web", Kind::Failover).unwrap(), None);
        let j = Journal::new(dir.path(), "web");
        run(
            &j,
            "a",
            Kind::Failover,
            &[5],
            Outcome::Ok,
            "2026-11-20T02:00:01.000Z",
        );
        run(
            &j,
            "b",
            Kind::Switchover,
            &[5],
            Outcome::Ok,
            "2026-11-20T02:00:01.000Z",
        );
        // Every start in `run` is at 2026-11-20T02:00:00Z.
        assert_eq!(
            last_started(&store, "web", Kind::Failover).unwrap(),
            Some(1_795_140_000)
        );
        assert_eq!(last_started(&store, "web", Kind::Apply).unwrap(), None);
    }

    #[test]
    fn a_finished_rollback_withdraws_the_change_from_the_gate_and_the_pair() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local(dir.path());
        let j = Journal::new(dir.path(), "web");
        let web = [member("web", "dev")];
        assert_eq!(standing(&store, "web", "h1").unwrap(), Standing::Never);
        start(&j, "a", Kind::Apply, Some("h1"));
        finish(&j, "a", Outcome::Ok, "2026-11-20T03:00:00.000Z");
        assert_eq!(standing(&store, "web", "h1").unwrap(), Standing::Finished);
        assert_eq!(completions(&store, &web).unwrap().len(), 1);
        // A rollback of h1 that finished.
        start_as(&j, "b", Kind::Apply, Some("h1"), true);
        finish(&j, "b", Outcome::Ok, "2026-11-20T04:01:00.000Z");
        assert_eq!(standing(&store, "web", "h1").unwrap(), Standing::Withdrawn);
        assert!(completions(&store, &web).unwrap().is_empty());
        // Applied again: it counts again.
        start(&j, "c", Kind::Apply, Some("h1"));
        finish(&j, "c", Outcome::Ok, "2026-11-20T05:00:00.000Z");
        assert_eq!(standing(&store, "web", "h1").unwrap(), Standing::Finished);
        assert_eq!(completions(&store, &web).unwrap().len(), 1);
    }

    #[test]
    fn the_expected_duration_is_the_longest_recent_ok_run_by_its_steps() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local(dir.path());
        let j = Journal::new(dir.path(), "web");
        assert_eq!(expected_duration(&store, "web", Kind::Apply).unwrap(), None);
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
            expected_duration(&store, "web", Kind::Apply).unwrap(),
            Some((Duration::from_millis(1500), 2))
        );
        assert_eq!(
            expected_duration(&store, "web", Kind::Switchover).unwrap(),
            Some((Duration::from_millis(7000), 1))
        );
    }

    fn start(j: &Journal, id: &str, kind: Kind, hash: Option<&str>) {
        start_as(j, id, kind, hash, false);
    }

    /// A start record, of a rollback (`reverse`) or not.
    fn start_as(j: &Journal, id: &str, kind: Kind, hash: Option<&str>, reverse: bool) {
        j.append(&Record::Start {
            run: id.into(),
            pair: "web".into(),
            kind,
            from: "blue".into(),
            to: "green".into(),
            change: hash.map(|_| "patch".into()),
            label: None,
            hash: hash.map(String::from),
            operator: "alice".into(),
            reason: None,
            gate: None,
            window: None,
            forced: None,
            roles: false,
            data_loss: None,
            ramp: None,
            experiment: None,
            hold: None,
            reverse,
            at: "2026-11-20T02:00:00.000Z".into(),
        })
        .unwrap();
    }

    fn finish(j: &Journal, id: &str, outcome: Outcome, at: &str) {
        j.append(&Record::Finish {
            run: id.into(),
            outcome,
            message: String::new(),
            at: at.into(),
        })
        .unwrap();
    }

    fn member(pair: &str, environment: &str) -> Member {
        Member {
            pair: pair.into(),
            environment: environment.into(),
        }
    }

    #[test]
    fn only_applies_of_a_change_that_ended_ok_are_completions() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local(dir.path());
        let j = Journal::new(dir.path(), "web");
        start(&j, "a", Kind::Apply, Some("h1"));
        finish(&j, "a", Outcome::Ok, "2026-11-20T03:00:00.000Z");
        start(&j, "b", Kind::Apply, Some("h2"));
        finish(&j, "b", Outcome::RolledBack, "2026-11-20T04:00:00.000Z");
        start(&j, "c", Kind::Switchover, None);
        finish(&j, "c", Outcome::Ok, "2026-11-20T05:00:00.000Z");
        start(&j, "d", Kind::Apply, Some("h3"));
        finish(&j, "d", Outcome::Ok, "not a time");
        start(&j, "e", Kind::Apply, Some("h4")); // never finished
        let api = Journal::new(dir.path(), "api");
        start(&api, "f", Kind::Apply, Some("h1"));
        finish(&api, "f", Outcome::Ok, "2026-11-20T06:00:00.000Z");
        let done = completions(
            &store,
            &[
                member("web", "dev"),
                member("api", "dev"),
                member("db", "dev"),
            ],
        )
        .unwrap();
        assert_eq!(
            done,
            vec![
                Completion {
                    pair: "web".into(),
                    hash: "h1".into(),
                    at: humantime::parse_rfc3339("2026-11-20T03:00:00Z").unwrap(),
                    held: false,
                },
                Completion {
                    pair: "api".into(),
                    hash: "h1".into(),
                    at: humantime::parse_rfc3339("2026-11-20T06:00:00Z").unwrap(),
                    held: false,
                },
            ]
        );
    }

    #[test]
    fn the_gate_reads_the_earlier_environments_journals() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local(dir.path());
        let order = ["dev".to_string(), "prod".to_string()];
        let members = [member("web", "dev"), member("api", "prod")];
        let d = decide(&store, &order, None, &members, "prod", "h1").unwrap();
        assert!(
            matches!(d, Decision::Closed(ref why) if why.contains("web (dev)")),
            "{d:?}"
        );
        let j = Journal::new(dir.path(), "web");
        start(&j, "a", Kind::Apply, Some("h1"));
        finish(&j, "a", Outcome::Ok, "2026-11-20T03:00:00.000Z");
        let d = decide(&store, &order, None, &members, "prod", "h1").unwrap();
        assert!(matches!(d, Decision::Open(_)), "{d:?}");
        // Completed years ago: well soaked.
        let soak = Some(Duration::from_secs(3600));
        let d = decide(&store, &order, soak, &members, "prod", "h1").unwrap();
        assert!(matches!(d, Decision::Open(_)), "{d:?}");
        // A journal that cannot be read closes nothing silently: an error.
        std::fs::write(j.path(), "garbage\n{}\n").unwrap();
        assert!(decide(&store, &order, None, &members, "prod", "h1").is_err());
    }

    #[test]
    fn the_last_run_is_settled_interrupted_or_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local(dir.path());
        assert_eq!(last_run(&store, "web").unwrap(), LastRun::Settled);
        let j = Journal::new(dir.path(), "web");
        start(&j, "a", Kind::Switchover, None);
        finish(&j, "a", Outcome::Ok, "2026-11-20T03:00:00.000Z");
        assert_eq!(last_run(&store, "web").unwrap(), LastRun::Settled);
        start(&j, "b", Kind::Failover, None);
        j.append(&Record::End {
            run: "b".into(),
            step: Step::Fence,
            ok: true,
            detail: String::new(),
            duration_ms: 5,
            commands: vec![],
            at: "2026-11-20T04:00:00.000Z".into(),
        })
        .unwrap();
        j.append(&Record::Begin {
            run: "b".into(),
            step: Step::Switch,
            at: "2026-11-20T04:00:01.000Z".into(),
        })
        .unwrap();
        assert_eq!(
            last_run(&store, "web").unwrap(),
            LastRun::Interrupted {
                pair: "web".into(),
                run: "b".into(),
                kind: Kind::Failover,
                open: Some(Step::Switch),
                last: Some(Step::Fence),
            }
        );
        // A live process holds the pair's lock: the run is going on.
        let holder = crate::store::lock::LockOwner {
            pid: std::process::id(),
            operator: "bob".into(),
            command: "failover web".into(),
            since: "2026-11-20T04:00:00.000Z".into(),
            host: None,
        };
        let held = crate::store::lock::acquire(dir.path(), "web", &holder).unwrap();
        assert_eq!(
            last_run(&store, "web").unwrap(),
            LastRun::InProgress {
                run: "b".into(),
                pid: std::process::id(),
                operator: "bob".into(),
                splits: false,
            }
        );
        drop(held);
        assert!(matches!(
            last_run(&store, "web").unwrap(),
            LastRun::Interrupted { .. }
        ));
    }

    #[test]
    fn only_the_last_five_ok_runs_set_the_expected_duration() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local(dir.path());
        let j = Journal::new(dir.path(), "web");
        let at = "2026-11-23T02:00:00.000Z";
        // The oldest is the longest, and no longer counts.
        run(&j, "old", Kind::Apply, &[60_000], Outcome::Ok, at);
        for (i, ms) in [1000, 3000, 2000, 1500, 2500].iter().enumerate() {
            run(&j, &format!("r{i}"), Kind::Apply, &[*ms], Outcome::Ok, at);
        }
        assert_eq!(
            expected_duration(&store, "web", Kind::Apply).unwrap(),
            Some((Duration::from_millis(3000), 5))
        );
        assert_eq!(
            expected_duration(&store, "web", Kind::Failover).unwrap(),
            None
        );
    }
}
