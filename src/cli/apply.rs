//! `baton apply`, `switchover` and `recover`: run the executor on each
//! named pair in turn (stopping at the first that does not end well),
//! printing every step as it goes (plain lines, or one JSON object per
//! line with `--json`), and mapping outcomes to exit codes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::cli::exit::Exit;
use crate::cli::progress::{Mode, Printer};
use crate::config::Config;
use crate::core::cycle::Outcome;
use crate::core::fleet::{self, Candidate};
use crate::exec::run::{self, Finished, Request};
use crate::store::state::StateStore;

/// The exit code of one run's end.
pub fn exit_of(f: &Finished) -> Exit {
    match f.outcome {
        Outcome::Ok | Outcome::Held => Exit::Ok,
        Outcome::RolledBack => Exit::RolledBack,
        Outcome::Incomplete => Exit::Degraded,
        Outcome::Operator => Exit::Operator,
        Outcome::NotStarted if f.held == run::Held::ByDrift => Exit::Operator,
        Outcome::NotStarted if f.held == run::Held::ByWindow => Exit::OutsideWindow,
        Outcome::NotStarted => Exit::NotStarted,
    }
}

/// Runs a request over the pairs, in order; stops after the first pair
/// that does not end well. Returns the worst exit code.
pub async fn run(config: &Config, req: &Request, json: bool) -> Exit {
    let printer = Printer::new(Mode::detect(json), config.pairs.len());
    let mut worst = Exit::Ok;
    for pair in config.pairs.values() {
        let finished = run::run(config, pair, req, &printer).await;
        let exit = exit_of(&finished);
        worst = worst.worst(exit);
        if exit != Exit::Ok {
            let rest: Vec<&String> = config
                .pairs
                .keys()
                .skip_while(|n| **n != pair.name)
                .skip(1)
                .collect();
            if !rest.is_empty() {
                eprintln!(
                    "baton: stopping; not started: {}",
                    rest.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            break;
        }
    }
    worst
}

/// `finish` or `revert` (the request's decision) on the configured pairs,
/// one after the other; with `held_only` (`--env`, `--all`), only those a
/// run holds (the others are listed as not held). Keeping the old version
/// The pair's last run by the configured store (`None` when the store or
/// the journal cannot be read).
fn last_run(config: &Config, pair: &str) -> Option<crate::core::assess::LastRun> {
    let store = crate::store::open(&config.settings).ok()?;
    crate::store::history::last_run(&store, pair).ok()
}

/// is what a revert asks: it exits 0 when it went well.
pub async fn decide_all(config: &Config, req: &Request, held_only: bool, json: bool) -> Exit {
    let printer = Printer::new(Mode::detect(json), config.pairs.len());
    let mut worst = Exit::Ok;
    for pair in config.pairs.values() {
        // `--env`/`--all` take the holds; an A/B experiment is ended by
        // `baton ab PAIR --end` (or by naming the pair).
        if held_only
            && !matches!(
                last_run(config, &pair.name),
                Some(crate::core::assess::LastRun::Held {
                    by: crate::core::assess::HeldBy::Hold { .. },
                    ..
                })
            )
        {
            eprintln!("baton: {}: no hold; nothing to do", pair.name);
            continue;
        }
        let finished = run::run(config, pair, req, &printer).await;
        let exit = decided_exit(req.decide, &finished);
        worst = worst.worst(exit);
    }
    worst
}

/// The exit code of a run that carried out a decision: keeping the old
/// version ends rolled back, which is what was asked; a decision that left
/// the run held (the held host failed its checks) did nothing.
pub fn decided_exit(decide: Option<run::Keep>, finished: &run::Finished) -> Exit {
    match (decide, finished.outcome) {
        (Some(run::Keep::Old), Outcome::RolledBack) => Exit::Ok,
        (Some(_), Outcome::Held) => Exit::NotStarted,
        _ => exit_of(finished),
    }
}

/// How a fleet apply is run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Batch sizes.
    pub batches: fleet::Spec,
    /// Pairs of a batch that run at once.
    pub concurrency: usize,
    /// Failures tolerated before no further pair starts.
    pub max_failures: usize,
    /// The reverse of the running order (a fleet rollback).
    pub reverse: bool,
}

/// How a pair of a fleet apply ended, as the summary shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Its run ended so.
    Ran(Outcome),
    /// Its maintenance window held it back (not a failure).
    OutsideWindow,
    /// A hold or an A/B experiment waits for the operator's decision on it
    /// (not a failure: a hold the operator chose).
    Held,
    /// It never ran (the failure budget was spent, a stop was asked for).
    Skipped,
}

impl Ended {
    fn name(self) -> &'static str {
        match self {
            Ended::Ran(o) => o.name(),
            Ended::OutsideWindow => "outside_window",
            Ended::Held => "held",
            Ended::Skipped => "skipped",
        }
    }
}

impl Serialize for Ended {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One pair's line in the summary.
#[derive(Debug, Clone, Serialize)]
struct Summary {
    pair: String,
    environment: String,
    outcome: Ended,
    duration_ms: u64,
    traffic: String,
    message: String,
}

/// `apply` over many pairs: environments in order, canaries first, then
/// batches of bounded concurrency; no pair starts once more than
/// `max_failures` pairs failed. Prints a summary table at the end.
pub async fn apply_fleet(config: &Config, req: &Request, json: bool, opts: &FleetOptions) -> Exit {
    let mut printer = Printer::new(Mode::detect(json), config.pairs.len());
    let envs = &config.settings.environments;
    let candidates: Vec<Candidate> = config
        .pairs
        .values()
        .map(|p| Candidate {
            pair: p.name.clone(),
            environment: envs
                .iter()
                .position(|e| *e == p.environment)
                .unwrap_or(envs.len()),
            canary: p.canary,
        })
        .collect();
    let ordered = if opts.reverse {
        fleet::reverse_order(candidates)
    } else {
        fleet::order(candidates)
    };
    let batches = fleet::batches(&ordered, &opts.batches);
    let failures = AtomicUsize::new(0);
    let semaphore = Semaphore::new(opts.concurrency.max(1));
    let mut summary: Vec<Summary> = Vec::new();
    let mut worst = Exit::Ok;
    for batch in batches {
        let results = join_all(batch.iter().map(|name| {
            let (failures, semaphore, printer) = (&failures, &semaphore, &printer);
            async move {
                let skipped = |why: String| Err(format!("not started: {why}"));
                let Some(pair) = config.pairs.get(name) else {
                    return skipped("not a configured pair".to_string());
                };
                let Ok(_permit) = semaphore.acquire().await else {
                    return skipped("the run was shutting down".to_string());
                };
                // Why a pair is skipped is decided now, not when the
                // summary is printed.
                if crate::exec::signals::count() > 0 {
                    return skipped("a stop signal asked baton to stop".to_string());
                }
                if failures.load(Ordering::SeqCst) > opts.max_failures {
                    return skipped(format!(
                        "the failure budget ({}) was spent",
                        opts.max_failures
                    ));
                }
                let started = Instant::now();
                // A hold that has ended is finished first (the old primary
                // updated with the held change), inside the same rules.
                if let Some(finished) = finish_expired(config, pair, req, printer).await {
                    if finished.outcome != Outcome::Ok {
                        if failed(&finished) {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                        return Ok((finished, started.elapsed()));
                    }
                }
                let finished = run::run(config, pair, req, printer).await;
                if failed(&finished) {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                Ok((finished, started.elapsed()))
            }
        }))
        .await;
        let states = crate::store::open(&config.settings)
            .ok()
            .map(|s| StateStore::of(&s));
        for (name, result) in batch.iter().zip(results) {
            let env = config
                .pairs
                .get(name)
                .map(|p| p.environment.clone())
                .unwrap_or_default();
            let traffic = states
                .as_ref()
                .and_then(|s| s.load(name).ok().flatten())
                .map(|s| s.primary)
                .unwrap_or_else(|| "?".into());
            match result {
                Ok((finished, took)) => {
                    let outcome = match finished.held {
                        run::Held::ByWindow => Ended::OutsideWindow,
                        run::Held::ByHold => Ended::Held,
                        _ => Ended::Ran(finished.outcome),
                    };
                    // A pair a hold kept back did not start (exit 5), but
                    // it is not a failure that stops the fleet.
                    worst = worst.worst(if outcome == Ended::Held {
                        Exit::NotStarted
                    } else {
                        exit_of(&finished)
                    });
                    summary.push(Summary {
                        pair: name.clone(),
                        environment: env,
                        outcome,
                        duration_ms: took.as_millis() as u64,
                        traffic,
                        message: finished.message,
                    });
                }
                Err(message) => {
                    // A pair that never ran keeps the exit code from saying
                    // everything was done.
                    worst = worst.worst(Exit::NotStarted);
                    summary.push(Summary {
                        pair: name.clone(),
                        environment: env,
                        outcome: Ended::Skipped,
                        duration_ms: 0,
                        traffic,
                        message,
                    });
                }
            }
        }
    }
    printer.close();
    print_summary(&summary, json);
    worst
}

/// Whether a pair's run counts against the failure budget: not when its
/// window or a hold kept it back, nor when it was held on purpose.
fn failed(finished: &run::Finished) -> bool {
    !matches!(finished.outcome, Outcome::Ok | Outcome::Held)
        && !matches!(finished.held, run::Held::ByWindow | run::Held::ByHold)
}

/// Finishes the pair's hold first when it has ended and the settings say
/// so (`finish_expired_holds`): the run that finishes it, if one ran.
async fn finish_expired(
    config: &Config,
    pair: &crate::config::Pair,
    req: &Request,
    printer: &Printer,
) -> Option<run::Finished> {
    if !config.settings.finish_expired_holds
        || req.reverse
        || req.kind != Some(crate::core::cycle::Kind::Apply)
    {
        return None;
    }
    let expired = matches!(
        last_run(config, &pair.name),
        Some(crate::core::assess::LastRun::Held {
            by: crate::core::assess::HeldBy::Hold { expired: true, .. },
            ..
        })
    );
    if !expired {
        return None;
    }
    let finish = Request {
        kind: None,
        decide: Some(run::Keep::New),
        reason: Some(format!(
            "the hold expired: finished before the apply ({})",
            req.reason.as_deref().unwrap_or("no reason")
        )),
        ..req.clone()
    };
    Some(run::run(config, pair, &finish, printer).await)
}

fn print_summary(rows: &[Summary], json: bool) {
    if json {
        crate::outln!("{}", serde_json::json!({ "summary": rows }));
        return;
    }
    crate::outln!();
    let w = rows.iter().map(|r| r.pair.len()).max().unwrap_or(4).max(4);
    let e = rows
        .iter()
        .map(|r| r.environment.len())
        .max()
        .unwrap_or(3)
        .max(3);
    crate::outln!(
        "{:<w$}  {:<e$}  {:<14} {:>9}  TRAFFIC",
        "PAIR",
        "ENV",
        "OUTCOME",
        "DURATION"
    );
    for r in rows {
        let note = if r.outcome == Ended::Ran(Outcome::Ok) {
            String::new()
        } else {
            format!("  {}", r.message)
        };
        crate::outln!(
            "{:<w$}  {:<e$}  {:<14} {:>8.1}s  {:<7}{note}",
            r.pair,
            r.environment,
            r.outcome.name().to_uppercase(),
            r.duration_ms as f64 / 1000.0,
            r.traffic
        );
    }
}
