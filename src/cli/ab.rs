//! `baton ab`: an A/B experiment on a pair behind a balancer. Starting one
//! (an apply whose switch is replaced by a watched, then held, split),
//! ending one (the operator's decision: keep the new version or the old),
//! first asking a process still watching it to stop; and the report of
//! its samples (`cli::abreport`).

use std::time::{Duration, Instant};

use crate::cli::abreport;
use crate::cli::apply::exit_of;
use crate::cli::exit::Exit;
use crate::cli::progress::{Mode, Printer};
use crate::config::{Config, Pair};
use crate::core::assess::LastRun;
use crate::core::cycle::{Kind, Step};
use crate::core::experiment::Experiment;
use crate::exec::run::{self, Keep, Request};
use crate::store::history;
use crate::store::journal::Journal;

/// What `baton ab` was asked to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Start an experiment of `change` with these settings.
    Start {
        /// The change.
        change: String,
        /// Its share, length and interval.
        experiment: Experiment,
    },
    /// End the held experiment, keeping one version.
    End(Keep),
    /// Show an experiment's samples (`run`: that one, else the last).
    Report {
        /// The run.
        run: Option<String>,
        /// Where to write the SVG plot.
        svg: Option<std::path::PathBuf>,
    },
}

/// How long `--end` waits for a process watching the experiment to stop
/// after asking it to.
const WATCHER_STOPS_WITHIN: Duration = Duration::from_secs(20);

/// Runs `baton ab` on one pair; `base` is the request every run carries
/// (operator, reason, command line, the fleet's members, overrides).
pub async fn run(config: &Config, pair: &Pair, action: Action, base: Request, json: bool) -> Exit {
    match action {
        Action::Report { run, svg } => {
            abreport::show(config, pair, run.as_deref(), svg.as_deref(), json)
        }
        Action::Start { change, experiment } => {
            let req = Request {
                kind: Some(Kind::Apply),
                change: Some(change),
                experiment: Some(experiment),
                ..base
            };
            let printer = Printer::new(Mode::detect(json), 1);
            let finished = run::run(config, pair, &req, &printer).await;
            exit_of(&finished)
        }
        Action::End(keep) => {
            if let Err(why) = stop_watcher(config, pair).await {
                eprintln!("baton: {why}. Nothing was done.");
                return Exit::NotStarted;
            }
            let req = Request {
                kind: None,
                decide: Some(keep),
                ..base
            };
            let printer = Printer::new(Mode::detect(json), 1);
            let finished = run::run(config, pair, &req, &printer).await;
            crate::cli::apply::decided_exit(Some(keep), &finished)
        }
    }
}

/// A process still watching the pair's experiment (its `experiment` step
/// open, the pair's lock held) is asked to stop watching (SIGTERM: the
/// split stays and the run is held), and awaited; any other run holding
/// the lock is left alone (the end is then refused as busy).
async fn stop_watcher(config: &Config, pair: &Pair) -> Result<(), String> {
    let store = crate::store::open(&config.settings).map_err(|e| e.to_string())?;
    let LastRun::InProgress { pid, run, .. } =
        history::last_run(&store, &pair.name).map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    if let Some(other) = store
        .held_by(&pair.name)
        .and_then(|h| h.host)
        .filter(|h| *h != crate::store::lock::this_host())
    {
        return Err(format!(
            "process {pid} on controller {other} is watching the experiment (run {run}): stop it there (or wait for its end), then run this again"
        ));
    }
    let view = Journal::of(&store, &pair.name)
        .last_run()
        .map_err(|e| e.to_string())?;
    if !view.is_some_and(|v| v.open == Some(Step::Experiment)) {
        return Ok(());
    }
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} is out of range"))?;
    // SAFETY: kill(2) with a pid read from the holder of the pair's lock
    // (alive: it holds the lock now) and a constant signal; no memory is
    // shared.
    #[allow(unsafe_code, reason = "kill(2): std cannot signal another process")]
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    if sent != 0 {
        return Err(format!(
            "process {pid} is watching the experiment (run {run}) and cannot be asked to stop ({}): stop it, then run this again",
            std::io::Error::last_os_error()
        ));
    }
    eprintln!(
        "baton: asked process {pid}, which watches the experiment (run {run}), to stop watching"
    );
    let asked = Instant::now();
    while store.held_by(&pair.name).is_some() {
        if asked.elapsed() > WATCHER_STOPS_WITHIN {
            return Err(format!(
                "process {pid} still holds {} after {}s",
                pair.name,
                WATCHER_STOPS_WITHIN.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
