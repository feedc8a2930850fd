//! `baton apply`, `switchover` and `recover`: run the executor on each
//! named pair in turn (stopping at the first that does not end well),
//! printing every step as it goes (plain lines, or one JSON object per
//! line with `--json`), and mapping outcomes to exit codes.

use std::io::Write;

use crate::config::Config;
use crate::core::cycle::Outcome;
use crate::exit::Exit;
use crate::run::{self, Event, Finished, Progress, Request};

/// Prints progress events as they come.
pub struct Printer {
    /// One JSON object per line instead of text.
    pub json: bool,
}

impl Progress for Printer {
    fn event(&self, e: &Event) {
        let mut out = std::io::stdout().lock();
        if self.json {
            if let Ok(s) = serde_json::to_string(e) {
                let _ = writeln!(out, "{s}");
            }
        } else if e.step == "run" {
            let _ = writeln!(out, "{}  {}: {}", e.pair, e.state.to_uppercase(), e.detail);
        } else if e.state == "begin" {
            if e.step == "recover" {
                let _ = writeln!(out, "{}  recover  {}", e.pair, e.detail);
            }
        } else {
            let secs = e.duration_ms as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{:<10} {:<18} {:<22} {:>7.2}s  {:<6} {}",
                e.pair, e.step, e.host, secs, e.state, e.detail
            );
        }
        let _ = out.flush();
    }
}

/// The exit code of one run's end.
pub fn exit_of(f: &Finished) -> Exit {
    match f.outcome {
        Outcome::Ok => Exit::Ok,
        Outcome::RolledBack => Exit::RolledBack,
        Outcome::Incomplete => Exit::Degraded,
        Outcome::Operator => Exit::Operator,
        Outcome::NotStarted if f.drift => Exit::Operator,
        Outcome::NotStarted => Exit::NotStarted,
    }
}

/// Runs a request over the pairs, in order; stops after the first pair
/// that does not end well. Returns the worst exit code.
pub async fn run(config: &Config, req: &Request, json: bool) -> Exit {
    let printer = Printer { json };
    let mut worst = Exit::Ok;
    for pair in config.pairs.values() {
        let finished = run::run(config, pair, req, &printer).await;
        let exit = exit_of(&finished);
        worst = worst.max(exit);
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
