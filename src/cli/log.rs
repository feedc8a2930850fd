//! `baton log`: the audit trail from the journals. One line per run (when,
//! pair, kind, change, who, why, outcome), filtered by pair, `--since` and
//! `--outcome`, or every step and command of one run with `--run ID`;
//! `--json` prints the journal records themselves, and with `--run ID` one
//! object per operation the run performed (the fields of `plan --json`,
//! then its exit status, outputs and duration).

use std::time::SystemTime;

use crate::cli::exit::Exit;
use crate::config::Config;
use crate::store::journal::{Journal, Record};

/// One line of the audit trail, with every control character from the
/// journal (a reason, an operator's name, a command's output) escaped, so
/// that no recorded text can forge a line or drive the terminal.
macro_rules! say {
    ($($arg:tt)*) => {
        crate::outln!("{}", crate::core::printable::escape(&format!($($arg)*)))
    };
}

/// One operation a run performed, as `log --run ID --json` prints it: the
/// fields of `plan --json`, then what it did.
#[derive(serde::Serialize)]
struct OpDone<'a> {
    pair: &'a str,
    run: &'a str,
    step: &'a str,
    host: &'a str,
    op: crate::core::op::OpKind,
    command: &'a str,
    status: Option<i32>,
    stdout: &'a str,
    stderr: &'a str,
    duration_ms: u64,
}

/// Why `--since` or `--outcome` was refused, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// Which runs `log` lists.
#[derive(Debug, Default)]
pub struct Filter {
    since: Option<SystemTime>,
    outcome: Option<String>,
}

const OUTCOMES: [&str; 7] = [
    "ok",
    "rolled_back",
    "incomplete",
    "operator",
    "not_started",
    "interrupted",
    "held",
];

impl Filter {
    /// From `--since` (a time or an age) and `--outcome`.
    pub fn new(since: Option<&str>, outcome: Option<&str>) -> Result<Filter, FilterError> {
        let since = match since {
            None => None,
            Some(s) => Some(match humantime::parse_rfc3339_weak(s) {
                Ok(t) => t,
                Err(_) => match humantime::parse_duration(s) {
                    Ok(d) => SystemTime::now().checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH),
                    Err(_) => return Err(FilterError(format!("--since `{s}` is neither a time (2026-11-22T02:00:00Z) nor an age (2h, 7days)"))),
                },
            }),
        };
        if let Some(o) = outcome {
            if !OUTCOMES.contains(&o) {
                return Err(FilterError(format!(
                    "--outcome `{o}` is not one of: {}",
                    OUTCOMES.join(", ")
                )));
            }
        }
        Ok(Filter {
            since,
            outcome: outcome.map(str::to_string),
        })
    }

    fn keeps(&self, started: &str, outcome: &str) -> bool {
        let recent = match (self.since, humantime::parse_rfc3339_weak(started)) {
            (Some(since), Ok(t)) => t >= since,
            (Some(_), Err(_)) => false,
            (None, _) => true,
        };
        recent && self.outcome.as_deref().is_none_or(|o| o == outcome)
    }
}

/// Prints the log of the configured pairs.
pub fn show(config: &Config, run: Option<&str>, filter: &Filter, json: bool) -> Exit {
    let backend = match super::open_store(config) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    if let Some(id) = run {
        let mut chosen: Vec<Record> = Vec::new();
        for pair in config.pairs.keys() {
            let journal = Journal::of(&backend, pair);
            if let Err(e) = journal.each(|r| {
                if r.run() == id {
                    chosen.push(r);
                }
            }) {
                eprintln!("baton: {e}");
                return Exit::Internal;
            }
        }
        if chosen.is_empty() {
            eprintln!("baton: no run `{id}` in the journals of the selected pairs (`baton log` lists the runs)");
            return Exit::Config;
        }
        for r in &chosen {
            if !json {
                print_record(r);
                continue;
            }
            // One object per operation, with the fields of `plan --json`
            // (so that the two can be compared) and what it did.
            if let Record::End { step, commands, .. } = r {
                let pair = chosen.iter().find_map(|r| match r {
                    Record::Start { pair, .. } => Some(pair.as_str()),
                    _ => None,
                });
                for c in commands {
                    let line = OpDone {
                        pair: pair.unwrap_or_default(),
                        run: id,
                        step: step.name(),
                        host: &c.host,
                        op: c.op,
                        command: &c.command,
                        status: c.status,
                        stdout: &c.stdout,
                        stderr: &c.stderr,
                        duration_ms: c.duration_ms,
                    };
                    say!("{}", serde_json::to_string(&line).unwrap_or_default());
                }
            }
        }
        return Exit::Ok;
    }
    let mut views = Vec::new();
    for pair in config.pairs.keys() {
        match Journal::of(&backend, pair).runs() {
            Ok(r) => views.extend(r),
            Err(e) => {
                eprintln!("baton: {e}");
                return Exit::Internal;
            }
        }
    }
    views.sort_by(|a, b| a.start.at().cmp(b.start.at()));
    for v in views {
        let Record::Start {
            run,
            pair,
            kind,
            change,
            label,
            hash,
            operator,
            reason,
            at,
            from,
            to,
            forced,
            data_loss,
            reverse,
            ..
        } = &v.start
        else {
            continue;
        };
        let held = v.finished.is_none() && v.held();
        let state = match v.finished {
            Some(o) => o.name(),
            None if held => "held",
            None => "interrupted",
        };
        if !filter.keeps(at, state) {
            continue;
        }
        // A held run's decision, as the operator made it.
        let decided = v
            .ended
            .iter()
            .find(|e| e.step == crate::core::cycle::Step::Decide)
            .map(|d| match (d.ok, v.shape()) {
                (true, crate::core::cycle::Shape::Experiment) => " (A/B: kept the new version)",
                (false, crate::core::cycle::Shape::Experiment) => " (A/B: kept the old version)",
                (true, _) => " (finished after a hold)",
                (false, _) => " (REVERTED)",
            })
            .unwrap_or("");
        let outcome = match (v.finished, v.open) {
            (Some(o), _) => format!("{}{decided}", o.name().to_uppercase()),
            (None, _) if held => {
                "HELD (`baton finish`, `baton revert`, `baton ab --end`)".to_string()
            }
            (None, Some(step)) => format!("INTERRUPTED in {}", step.name()),
            (None, None) => "INTERRUPTED".to_string(),
        };
        // A notification that failed is said on the run's line: the run's
        // people may not have heard of it.
        let notify = match (v.notify_failed, v.notified) {
            (0, _) => String::new(),
            (failed, sent) => format!(
                "  NOTIFY FAILED ({failed} of {}: `baton log --run {run}`)",
                failed + sent
            ),
        };
        if json {
            say!(
                "{}",
                serde_json::json!({"run": run, "pair": pair, "kind": kind, "from": from, "to": to, "change": change, "label": label,
                    "hash": hash, "operator": operator, "reason": reason, "at": at, "outcome": outcome, "forced": forced,
                    "data_loss": data_loss, "notified": v.notified, "notify_failed": v.notify_failed})
            );
        } else {
            let what = match (change, hash) {
                (Some(c), Some(h)) => format!("{c} ({}, {h})", label.as_deref().unwrap_or(c)),
                _ => "-".to_string(),
            };
            let kind_shown = match (forced, data_loss) {
                _ if *reverse => "rollback".to_string(),
                (Some(_), Some(_)) => format!("{} --force --accept-data-loss", kind.name()),
                (Some(_), None) => format!("{} --force", kind.name()),
                (None, Some(_)) => format!("{} --accept-data-loss", kind.name()),
                (None, None) => kind.name().to_string(),
            };
            say!(
                "{at}  {pair:<10} {run}  {:<10} {from}->{to}  {what}  by {operator}  {}  {outcome}{notify}",
                kind_shown,
                reason
                    .as_deref()
                    .map(|r| format!("\"{r}\""))
                    .unwrap_or_else(|| "(no reason)".into()),
            );
        }
    }
    Exit::Ok
}

fn print_record(r: &Record) {
    match r {
        Record::Start {
            kind,
            from,
            to,
            change,
            hash,
            operator,
            reason,
            gate,
            window,
            forced,
            data_loss,
            at,
            ..
        } => {
            say!(
                "{at}  start {kind:?} {from}->{to} change={} hash={} by {operator} reason={}",
                change.as_deref().unwrap_or("-"),
                hash.as_deref().unwrap_or("-"),
                reason.as_deref().unwrap_or("-")
            );
            if let Some(g) = gate {
                say!("        environment gate: {g}");
            }
            if let Some(w) = window {
                say!("        maintenance window: {w}");
            }
            if let Some(f) = forced {
                say!("        FORCED: {f}");
            }
            if let Some(d) = data_loss {
                say!("        DATA LOSS ACCEPTED: {d}");
            }
        }
        Record::Begin { step, at, .. } => say!("{at}  begin {}", step.name()),
        Record::End {
            step,
            ok,
            detail,
            duration_ms,
            commands,
            at,
            ..
        } => {
            say!(
                "{at}  end   {} {} in {duration_ms} ms: {detail}",
                step.name(),
                if *ok { "ok" } else { "FAILED" }
            );
            for c in commands {
                say!(
                    "        [{}] $ {}  (exit {}, {} ms)",
                    c.host,
                    c.command,
                    c.status.map_or("-".into(), |s| s.to_string()),
                    c.duration_ms
                );
                for line in c.stdout.lines() {
                    say!("          | {line}");
                }
                for line in c.stderr.lines() {
                    say!("          ! {line}");
                }
            }
        }
        Record::Sample { sample, at, .. } => say!("{at}  sample {}", sample.sentence()),
        Record::Finish {
            outcome,
            message,
            at,
            ..
        } => say!("{at}  finish {outcome:?}: {message}"),
        Record::Notify {
            about,
            target,
            ok,
            detail,
            duration_ms,
            at,
            ..
        } => say!(
            "{at}  notify {} via {target}: {} in {duration_ms} ms: {detail}",
            about.name(),
            if *ok { "sent" } else { "FAILED" }
        ),
    }
}
