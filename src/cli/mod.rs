//! The command line: argument parsing, configuration loading with readable
//! diagnostics, dispatch to the commands, and exit codes.

mod ab;
mod abreport;
pub(crate) mod apply;
pub mod exit;
mod log;
pub mod metrics;
pub mod out;
pub mod plan;
mod progress;
mod rollback;
mod status;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::exit::Exit;
use crate::config::{self, Config};
use crate::core::cycle::Kind;
use crate::core::fleet;
use crate::core::gate::Member;
use crate::exec::run::{self, Request};

/// baton: blue-green switchovers for primary/standby server pairs.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about, long_about = None)]
pub struct Cli {
    /// The settings file; pair files are read from `pairs/` beside it.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "BATON_CONFIG",
        default_value = "baton.toml"
    )]
    pub config: PathBuf,
    /// Machine-readable output (see the README for the schema).
    #[arg(long, global = true)]
    pub json: bool,
    /// After the command, write every pair's last outcome, time, duration
    /// and traffic holder here, in Prometheus text format.
    #[arg(long, global = true, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// More log output on stderr (-v: info, -vv: debug).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration offline; every problem with file, line,
    /// column and fix.
    Check {
        /// Pairs to check (all when none).
        pairs: Vec<String>,
    },
    /// Live view of each pair: who holds traffic, roles, reachability,
    /// health, versions, drift. Non-zero exit when something is wrong.
    Status {
        /// Pairs to show (all when none).
        pairs: Vec<String>,
        /// Pairs observed at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// The full blue-green cycle with a change: apply to the standby,
    /// verify, switch, verify, drain, apply to the old primary, verify.
    Apply {
        /// Pairs to apply to (or --env, or --all).
        pairs: Vec<String>,
        /// Every pair of this environment.
        #[arg(long, conflicts_with_all = ["pairs", "all"])]
        env: Option<String>,
        /// Every pair.
        #[arg(long, conflicts_with = "pairs")]
        all: bool,
        /// Batch sizes after the canaries, like `1,2,25%` (the last repeats).
        #[arg(long, default_value = "1")]
        batch: String,
        /// Pairs of a batch that run at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Failed pairs tolerated; once more have failed, no further pair starts.
        #[arg(long, default_value_t = 0)]
        max_failures: usize,
        /// The change to apply (`[changes.NAME]` in the pair file).
        #[arg(long)]
        change: String,
        /// Why (recorded in the journal; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
        /// Run even if the environment gate is closed (the change has not
        /// completed on the earlier environments); needs --reason.
        #[arg(long, requires = "reason")]
        skip_gate: bool,
        /// Start even outside the maintenance window (or when the run is
        /// expected to overrun it); needs --reason.
        #[arg(long, requires = "reason")]
        ignore_window: bool,
        /// Ramp the change (a pair behind a balancer, traffic method
        /// haproxy): the percentages of new requests the updated host gets,
        /// step by step, like `1,10,50,100`; each step is compared with the
        /// other host and the first one that does worse aborts the run.
        #[arg(long, requires = "step")]
        ramp: Option<String>,
        /// How long each step of --ramp lasts before the comparison, like
        /// `2m`.
        #[arg(long, value_parser = humantime::parse_duration, requires = "ramp")]
        step: Option<std::time::Duration>,
        /// Hold the old primary on the old version this long after the
        /// switch (instead of updating it): `baton revert` goes back to it in
        /// one switch, `baton finish` updates it. Overrides the pair's
        /// `hold`; `0s`: no hold.
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "ramp")]
        hold: Option<std::time::Duration>,
    },
    /// Finish held runs: update the held old primary with the change
    /// (steps 6 and 7), inside the maintenance window. With --env or
    /// --all, every held pair of them.
    Finish {
        /// Pairs to finish (or --env, or --all).
        pairs: Vec<String>,
        /// Every held pair of this environment.
        #[arg(long, conflicts_with_all = ["pairs", "all"])]
        env: Option<String>,
        /// Every held pair.
        #[arg(long, conflicts_with = "pairs")]
        all: bool,
        /// Why (recorded in the journal; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
        /// Start even outside the maintenance window; needs --reason.
        #[arg(long, requires = "reason")]
        ignore_window: bool,
    },
    /// Take a finished change back across the fleet: on each selected pair
    /// where it finished on both hosts, a full blue-green cycle whose change
    /// is the rollback (its rollback steps; the change itself undoes a
    /// failed one), in the reverse of apply's order (the last environment
    /// first, canaries last), with apply's batches, failure budget, windows
    /// and signals. The gate then treats the change as withdrawn.
    Rollback {
        /// Pairs (or --env, or --all).
        pairs: Vec<String>,
        /// Every pair of this environment.
        #[arg(long, conflicts_with_all = ["pairs", "all"])]
        env: Option<String>,
        /// Every pair.
        #[arg(long, conflicts_with = "pairs")]
        all: bool,
        /// The change to take back (`[changes.NAME]`, as it was applied).
        #[arg(long)]
        change: String,
        /// Batch sizes after the canaries, as for apply.
        #[arg(long, default_value = "1")]
        batch: String,
        /// Pairs of a batch that run at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Failed pairs tolerated; once more have failed, no further pair starts.
        #[arg(long, default_value_t = 0)]
        max_failures: usize,
        /// Why (recorded in the journal; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
        /// Start even outside the maintenance window; needs --reason.
        #[arg(long, requires = "reason")]
        ignore_window: bool,
    },
    /// Revert held runs: traffic back to the held old primary (verified),
    /// then the change rolled back on the other host (verified).
    Revert {
        /// Pairs to revert.
        #[arg(required = true)]
        pairs: Vec<String>,
        /// Why (recorded in the journal; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
    },
    /// Dry run: the steps, commands, DNS updates and checks a run would
    /// make, and what happens on failure. Changes nothing.
    Plan {
        /// Pairs (all when none).
        pairs: Vec<String>,
        /// Plan an apply of this change (else a switchover).
        #[arg(long)]
        change: Option<String>,
        /// Plan the apply ramped like `apply --ramp` (needs --change and
        /// --step).
        #[arg(long, requires_all = ["step", "change"])]
        ramp: Option<String>,
        /// Each ramp step's length, as for `apply --step`.
        #[arg(long, value_parser = humantime::parse_duration, requires = "ramp")]
        step: Option<std::time::Duration>,
    },
    /// Swap roles without a change: verify the standby, switch, verify.
    Switchover {
        /// The pair.
        pair: String,
        /// Why (recorded in the journal; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
        /// Start even outside the maintenance window; needs --reason.
        #[arg(long, requires = "reason")]
        ignore_window: bool,
    },
    /// The primary is dead: verify the standby, fence the old primary (the
    /// `fence` command; the VIP removed over SSH, or proven gone from the
    /// link), switch, verify. The old primary is marked failed until
    /// `rejoin`. Refused while the primary still passes its checks.
    Failover {
        /// The pair.
        pair: String,
        /// Why (recorded in the journal; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
        /// Fail over although the primary still passes its checks (reachable
        /// or not): the operator declares it unfit. Its fence must still
        /// succeed before traffic moves. Needs --reason; recorded.
        #[arg(long, requires = "reason")]
        force: bool,
        /// A pair with role hooks: promote the standby even when it is
        /// further behind the last position seen from the old primary than
        /// `max_lag_on_failover` allows (or no position was ever seen):
        /// what it lacks is lost. Needs --reason; recorded.
        #[arg(long, requires = "reason")]
        accept_data_loss: bool,
    },
    /// Make a failed host the standby again: take away any traffic it still
    /// holds, verify it, clear the mark.
    Rejoin {
        /// The pair.
        pair: String,
        /// Why (recorded in the journal; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
    },
    /// An A/B experiment on a pair behind a balancer (traffic method
    /// haproxy). Start one with --change: the change is applied to the
    /// standby, which then gets --weight percent of new requests; every
    /// --interval both hosts are compared (error rate, response time) and
    /// the first interval in which the updated host does worse aborts it
    /// (exit 1: all requests back, the change rolled back). Watched --for
    /// that long, then held (exit 0) until --end. --report shows it;
    /// --end --keep new finishes the cycle, --keep old rolls it back.
    Ab {
        /// The pair.
        pair: String,
        /// Start an experiment of this change (`[changes.NAME]`).
        #[arg(long, conflicts_with_all = ["report", "end"], requires_all = ["weight", "length"])]
        change: Option<String>,
        /// The percentage of new requests the updated host gets (1 to 99).
        #[arg(long, value_name = "PERCENT", requires = "change")]
        weight: Option<u32>,
        /// How long baton watches it, like `1h`; then the split is held,
        /// unwatched, until --end.
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration, requires = "change")]
        length: Option<std::time::Duration>,
        /// How often the two hosts are sampled and compared.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
        interval: std::time::Duration,
        /// Why (recorded in the journal; required to start or end one, or
        /// from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
        /// Start even if the environment gate is closed; needs --reason.
        #[arg(long, requires_all = ["reason", "change"])]
        skip_gate: bool,
        /// Start even outside the maintenance window; needs --reason.
        #[arg(long, requires_all = ["reason", "change"])]
        ignore_window: bool,
        /// Show the experiment's samples, interval by interval, and the
        /// totals (the last experiment, or --run).
        #[arg(long, conflicts_with = "end")]
        report: bool,
        /// With --report: also write an SVG plot of both hosts to FILE.
        #[arg(long, value_name = "FILE", requires = "report")]
        svg: Option<PathBuf>,
        /// With --report: this run instead of the last experiment.
        #[arg(long, requires = "report")]
        run: Option<String>,
        /// End the held experiment (asking a process still watching it to
        /// stop first).
        #[arg(long, requires = "keep")]
        end: bool,
        /// Which version --end keeps: `new` (switch, update the old
        /// primary) or `old` (all requests back, roll the change back).
        #[arg(long, value_enum, requires = "end")]
        keep: Option<KeepArg>,
    },
    /// Finish or undo an interrupted run from its journal and from where
    /// traffic really is.
    Recover {
        /// Pairs (all when none).
        pairs: Vec<String>,
    },
    /// The audit trail: every run, who, why, which change, how it ended.
    Log {
        /// Pairs (all when none).
        pairs: Vec<String>,
        /// Show every step and command of one run.
        #[arg(long)]
        run: Option<String>,
        /// Only runs that started since then: a time ("2026-11-22T02:00:00Z")
        /// or an age ("2h", "7days").
        #[arg(long)]
        since: Option<String>,
        /// Only runs with this outcome: ok, rolled_back, incomplete,
        /// operator, not_started, interrupted.
        #[arg(long)]
        outcome: Option<String>,
    },
    /// Watch the pairs and fail over a pair whose primary failed its checks
    /// `failure_threshold` observations in a row while its standby passed
    /// (`[watch]` in baton.toml). Never applies or switches over. Runs until
    /// SIGINT or SIGTERM.
    Watch {
        /// Pairs (all when none).
        pairs: Vec<String>,
        /// Observe every pair once, act on what is seen, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Stop `baton watch` from failing a pair over (maintenance); it still
    /// observes it. Recorded.
    Pause {
        /// The pair.
        pair: String,
        /// Why (recorded; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
    },
    /// Let `baton watch` fail a paused pair over again. Recorded.
    Resume {
        /// The pair.
        pair: String,
        /// Why (recorded; required, or from BATON_REASON).
        #[arg(long, env = "BATON_REASON")]
        reason: Option<String>,
    },
}

/// Which version `ab --end` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeepArg {
    /// The old version: all requests back, the change rolled back.
    Old,
    /// The new version: the switch, then the old primary updated.
    New,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    if let Err(e) = crate::exec::signals::install() {
        eprintln!("baton: cannot watch for SIGINT/SIGTERM ({e}); a signal will kill baton outright, and the next run will recover");
    }
    let metrics = cli.metrics_file.clone();
    let config_file = cli.config.clone();
    let exit = run(cli);
    if let Some(path) = metrics {
        // Every valid pair, even when another pair file is broken.
        let loaded = config::load(&config_file);
        if let Some(settings) = loaded.settings {
            let config = Config {
                file: loaded.file,
                settings,
                pairs: loaded.pairs,
            };
            if let Err(e) = crate::cli::metrics::write(&config, &path) {
                eprintln!(
                    "baton: cannot write the metrics file {}: {e}",
                    path.display()
                );
            }
        }
    }
    ExitCode::from(exit.code())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: a log file or a pipe (cron,
    // systemd) gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(progress::log_writer)
        .with_target(false)
        .try_init();
}

fn run(cli: Cli) -> Exit {
    let pairs: Vec<String> = match &cli.command {
        Command::Check { pairs } => return check(&cli, pairs),
        Command::Status { pairs, .. }
        | Command::Plan { pairs, .. }
        | Command::Recover { pairs }
        | Command::Watch { pairs, .. }
        | Command::Log { pairs, .. } => pairs.clone(),
        Command::Pause { pair, .. } | Command::Resume { pair, .. } => vec![pair.clone()],
        Command::Apply {
            pairs, env, all, ..
        }
        | Command::Finish {
            pairs, env, all, ..
        }
        | Command::Rollback {
            pairs, env, all, ..
        } => match selection(&cli, pairs, env.as_deref(), *all) {
            Some(names) => names,
            None => return Exit::Config,
        },
        Command::Revert { pairs, .. } => pairs.clone(),
        Command::Switchover { pair, .. }
        | Command::Failover { pair, .. }
        | Command::Rejoin { pair, .. }
        | Command::Ab { pair, .. } => vec![pair.clone()],
    };
    let ab_changes =
        matches!(&cli.command, Command::Ab { change, end, .. } if change.is_some() || *end);
    if let Command::Ab {
        change: None,
        end: false,
        report: false,
        ..
    } = &cli.command
    {
        eprintln!("baton: ab needs one of --change NAME --weight PERCENT --for DURATION (start), --report, or --end --keep new|old. Nothing was done.");
        return Exit::Config;
    }
    let mutating = match &cli.command {
        Command::Apply { reason, .. }
        | Command::Switchover { reason, .. }
        | Command::Failover { reason, .. }
        | Command::Rejoin { reason, .. }
        | Command::Finish { reason, .. }
        | Command::Revert { reason, .. }
        | Command::Rollback { reason, .. }
        | Command::Pause { reason, .. }
        | Command::Resume { reason, .. } => Some(reason),
        Command::Ab { reason, .. } if ab_changes => Some(reason),
        _ => None,
    };
    if let Some(reason) = mutating {
        if reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            eprintln!("baton: say why with --reason TEXT (or BATON_REASON in the environment of a timer or cron job): every run records who, when and why. Nothing was done.");
            return Exit::Config;
        }
        if let Some(r) = reason
            .as_deref()
            .filter(|r| r.chars().any(char::is_control))
        {
            eprintln!(
                "baton: the reason holds control characters (a newline, an escape: `{}`); give it as one line of plain text. Nothing was done.",
                crate::core::printable::escape(r)
            );
            return Exit::Config;
        }
    }
    let Some(config) = load(&cli, &pairs) else {
        return Exit::Config;
    };
    match crate::store::dir::check(&config.settings.state_dir) {
        Ok(None) => {}
        Ok(Some(exposed)) => eprintln!(
            "baton: warning: state_dir {} is readable by group or others (mode {:04o}); its journals hold command outputs: `chmod 700 {}`",
            config.settings.state_dir.display(),
            exposed.mode,
            config.settings.state_dir.display()
        ),
        Err(e) => {
            eprintln!("baton: {e}. Nothing was done.");
            return Exit::Config;
        }
    }
    let wanted = match &cli.command {
        Command::Apply { change, .. } | Command::Rollback { change, .. } => Some(change),
        Command::Plan { change, .. } | Command::Ab { change, .. } => change.as_ref(),
        _ => None,
    };
    if let Some(change) = wanted {
        let missing: Vec<&str> = config
            .pairs
            .values()
            .filter(|p| !p.changes.contains_key(change))
            .map(|p| p.name.as_str())
            .collect();
        if !missing.is_empty() {
            eprintln!("baton: pair(s) {} have no change `{change}`; define [changes.{change}] in their pair files. Nothing was done.", missing.join(", "));
            return Exit::Config;
        }
    }
    if let Command::Pause { pair, reason } | Command::Resume { pair, reason } = &cli.command {
        let on = matches!(cli.command, Command::Pause { .. });
        return watch::pause(&config, pair, on, reason.as_deref().unwrap_or_default());
    }
    if let Command::Log { run, .. } = &cli.command {
        let Command::Log { since, outcome, .. } = &cli.command else {
            return Exit::Internal;
        };
        let filter = match log::Filter::new(since.as_deref(), outcome.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("baton: {e}");
                return Exit::Config;
            }
        };
        return log::show(&config, run.as_deref(), &filter, cli.json);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baton: cannot start the async runtime: {e}");
            return Exit::Internal;
        }
    };
    // The gate looks at every valid pair, not only the ones of this run.
    let members: Vec<Member> = config::load(&cli.config)
        .pairs
        .values()
        .map(|p| Member {
            pair: p.name.clone(),
            environment: p.environment.clone(),
        })
        .collect();
    let request = |kind: Option<Kind>,
                   change: Option<String>,
                   reason: &Option<String>,
                   skip_gate: bool,
                   ignore_window: bool| Request {
        kind,
        change,
        reason: reason.clone(),
        operator: run::operator(),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        members: members.clone(),
        skip_gate,
        ignore_window,
        force: false,
        accept_data_loss: false,
        ramp: None,
        experiment: None,
        decide: None,
        hold: None,
        reverse: false,
    };
    let req = match &cli.command {
        Command::Apply {
            change,
            reason,
            skip_gate,
            ignore_window,
            ramp,
            step,
            hold,
            ..
        } => {
            let ramp = match parse_ramp(ramp.as_deref(), *step) {
                Ok(r) => r,
                Err(exit) => return exit,
            };
            if hold.is_some_and(|h| h > crate::config::MAX_HOLD) {
                eprintln!("baton: --hold is at most 30 days. Nothing was done.");
                return Exit::Config;
            }
            Request {
                ramp,
                hold: *hold,
                ..request(
                    Some(Kind::Apply),
                    Some(change.clone()),
                    reason,
                    *skip_gate,
                    *ignore_window,
                )
            }
        }
        Command::Switchover {
            reason,
            ignore_window,
            ..
        } => request(Some(Kind::Switchover), None, reason, false, *ignore_window),
        Command::Failover {
            reason,
            force,
            accept_data_loss,
            ..
        } => Request {
            force: *force,
            accept_data_loss: *accept_data_loss,
            ..request(Some(Kind::Failover), None, reason, false, false)
        },
        Command::Rejoin { reason, .. } => request(Some(Kind::Rejoin), None, reason, false, false),
        Command::Recover { .. } => request(None, None, &None, false, false),
        Command::Finish {
            reason,
            ignore_window,
            pairs,
            ..
        } => {
            let req = Request {
                decide: Some(run::Keep::New),
                ..request(None, None, reason, false, *ignore_window)
            };
            return block_on(
                runtime,
                apply::decide_all(&config, &req, pairs.is_empty(), cli.json),
            );
        }
        Command::Rollback {
            change,
            reason,
            ignore_window,
            batch,
            concurrency,
            max_failures,
            ..
        } => {
            let req = Request {
                reverse: true,
                ..request(
                    Some(Kind::Apply),
                    Some(change.clone()),
                    reason,
                    false,
                    *ignore_window,
                )
            };
            let opts = match fleet_options(batch, *concurrency, *max_failures, true) {
                Ok(o) => o,
                Err(exit) => return exit,
            };
            return block_on(
                runtime,
                rollback::rollback_fleet(&config, &req, cli.json, &opts),
            );
        }
        Command::Revert { reason, .. } => {
            let req = Request {
                decide: Some(run::Keep::Old),
                ..request(None, None, reason, false, false)
            };
            return block_on(runtime, apply::decide_all(&config, &req, false, cli.json));
        }
        Command::Watch { once, .. } => {
            let template = request(Some(Kind::Failover), None, &None, false, false);
            let opts = watch::Options {
                once: *once,
                json: cli.json,
            };
            return block_on(runtime, watch::watch(&config, &template, opts));
        }
        Command::Ab {
            change,
            weight,
            length,
            interval,
            reason,
            skip_gate,
            ignore_window,
            svg,
            run,
            keep,
            ..
        } => {
            let action = match (change, keep) {
                (Some(change), _) => {
                    let (Some(weight), Some(length)) = (weight, length) else {
                        return Exit::Internal;
                    };
                    match crate::core::experiment::Experiment::new(*weight, *length, *interval) {
                        Ok(experiment) => ab::Action::Start {
                            change: change.clone(),
                            experiment,
                        },
                        Err(e) => {
                            eprintln!("baton: {e}. Nothing was done.");
                            return Exit::Config;
                        }
                    }
                }
                (None, Some(keep)) => ab::Action::End(match keep {
                    KeepArg::Old => run::Keep::Old,
                    KeepArg::New => run::Keep::New,
                }),
                (None, None) => ab::Action::Report {
                    run: run.clone(),
                    svg: svg.clone(),
                },
            };
            let Some(pair) = config.pairs.values().next() else {
                return Exit::Internal;
            };
            let base = request(None, None, reason, *skip_gate, *ignore_window);
            return block_on(runtime, ab::run(&config, pair, action, base, cli.json));
        }
        Command::Plan {
            change, ramp, step, ..
        } => {
            let kind = if change.is_some() {
                Kind::Apply
            } else {
                Kind::Switchover
            };
            let ramp = match parse_ramp(ramp.as_deref(), *step) {
                Ok(r) => r,
                Err(exit) => return exit,
            };
            return block_on(
                runtime,
                plan::run(
                    &config,
                    (kind, change.as_deref(), ramp.as_ref()),
                    &members,
                    cli.json,
                ),
            );
        }
        Command::Status { concurrency, .. } => {
            return block_on(runtime, status::run(&config, cli.json, *concurrency))
        }
        _ => return Exit::Internal,
    };
    if let Command::Apply {
        batch,
        concurrency,
        max_failures,
        ..
    } = &cli.command
    {
        let opts = match fleet_options(batch, *concurrency, *max_failures, false) {
            Ok(o) => o,
            Err(exit) => return exit,
        };
        return block_on(runtime, apply::apply_fleet(&config, &req, cli.json, &opts));
    }
    block_on(runtime, apply::run(&config, &req, cli.json))
}

/// A fleet run's options from `--batch`, `--concurrency` and
/// `--max-failures`, or the exit after saying what is wrong.
fn fleet_options(
    batch: &str,
    concurrency: usize,
    max_failures: usize,
    reverse: bool,
) -> Result<apply::FleetOptions, Exit> {
    let batches = fleet::parse_spec(batch).map_err(|e| {
        eprintln!("baton: --batch: {e}");
        Exit::Config
    })?;
    Ok(apply::FleetOptions {
        batches,
        concurrency,
        max_failures,
        reverse,
    })
}

/// `--ramp` and `--step` read into a ramp (none without them), or the
/// exit after saying what is wrong.
fn parse_ramp(
    ramp: Option<&str>,
    step: Option<std::time::Duration>,
) -> Result<Option<crate::core::ramp::Ramp>, Exit> {
    match (ramp, step) {
        (Some(r), Some(s)) => crate::core::ramp::Ramp::parse(r, s).map(Some).map_err(|e| {
            eprintln!("baton: {e}. Nothing was done.");
            Exit::Config
        }),
        _ => Ok(None),
    }
}

/// The pairs an `apply` names: the listed ones, those of `--env`, or all
/// (`--all`, an empty list). Exactly one way must be used.
fn selection(cli: &Cli, pairs: &[String], env: Option<&str>, all: bool) -> Option<Vec<String>> {
    match (pairs.is_empty(), env, all) {
        (false, None, false) => Some(pairs.to_vec()),
        (true, None, true) => Some(vec![]),
        (true, Some(env), false) => {
            let loaded = config::load(&cli.config);
            let names: Vec<String> = loaded
                .pairs
                .values()
                .filter(|p| p.environment == env)
                .map(|p| p.name.clone())
                .collect();
            if names.is_empty() {
                eprintln!("baton: no (valid) pair is in environment `{env}`; nothing was done");
                return None;
            }
            Some(names)
        }
        _ => {
            eprintln!(
                "baton: name the pairs to apply to, or use --env ENV, or --all; nothing was done"
            );
            None
        }
    }
}

/// Runs a future to its end, then leaves without waiting for blocking
/// threads that a second signal may have abandoned mid-command.
fn block_on<F: std::future::Future>(runtime: tokio::runtime::Runtime, f: F) -> F::Output {
    let out = runtime.block_on(f);
    runtime.shutdown_background();
    out
}

/// Loads and validates the configuration for the named pairs, printing
/// every problem; `None` when it is unusable.
fn load(cli: &Cli, pairs: &[String]) -> Option<Config> {
    match config::load(&cli.config).select(pairs) {
        Ok((config, warnings)) => {
            for w in &warnings {
                eprintln!("warning (another pair): {w}");
            }
            Some(config)
        }
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!(
                "baton: {} configuration problem(s); nothing was done",
                diags.0.len()
            );
            None
        }
    }
}

/// A host as `check` shows its route: where it connects, and from where
/// that came.
type Routed = (crate::io::ssh::Target, Vec<String>);

/// Each pair's hosts that are reached otherwise than straight at their
/// address (jump hosts, an OpenSSH configuration), with where that came
/// from: what `check` shows.
fn ssh_routes(config: &Config) -> Vec<(String, Vec<Routed>)> {
    config
        .pairs
        .values()
        .filter_map(|p| {
            let hosts: Vec<_> = p
                .hosts
                .iter()
                .filter_map(|h| {
                    let route = p.ssh.routes.get(&h.name);
                    if route.is_none() && p.ssh.jump.is_empty() {
                        return None;
                    }
                    let mut from = route.map(|r| r.from.clone()).unwrap_or_default();
                    if !p.ssh.jump.is_empty() && route.is_none_or(|r| r.jump.is_none()) {
                        from.push("[ssh] jump".to_string());
                    }
                    Some((crate::io::ssh::Target::new(h, &p.ssh), from))
                })
                .collect();
            (!hosts.is_empty()).then(|| (p.name.clone(), hosts))
        })
        .collect()
}

/// The configured store, or the exit of a command that cannot work
/// without it (said on stderr: exit 4, an operator must bring it back).
pub(crate) fn open_store(config: &Config) -> Result<crate::store::Store, Exit> {
    crate::store::open(&config.settings).map_err(|e| {
        eprintln!("baton: {e}");
        Exit::Operator
    })
}

fn check(cli: &Cli, pairs: &[String]) -> Exit {
    let loaded = config::load(&cli.config);
    // Warnings never change the exit code.
    let notes = loaded.warnings_for(pairs);
    let notes_json: Vec<_> = notes
        .iter()
        .map(|w| {
            let d = &w.diagnostic;
            serde_json::json!({"kind": w.kind.code(), "pairs": w.pairs, "file": d.file, "line": d.line, "column": d.column, "message": d.message, "fix": d.fix})
        })
        .collect();
    let print_notes = || {
        for w in &notes {
            crate::outln!("warning: {}", w.diagnostic);
        }
    };
    match loaded.select(pairs) {
        Ok((config, warnings)) => {
            for w in &warnings {
                eprintln!("warning (another pair): {w}");
            }
            let routes = ssh_routes(&config);
            if cli.json {
                let names: Vec<&String> = config.pairs.keys().collect();
                let ssh: serde_json::Map<String, serde_json::Value> = routes
                    .iter()
                    .map(|(pair, hosts)| {
                        let hosts: serde_json::Map<String, serde_json::Value> = hosts
                            .iter()
                            .map(|(t, from)| {
                                (
                                    t.name.clone(),
                                    serde_json::json!({"user": t.user, "host": t.host(), "port": t.port, "jump": t.jump.iter().map(ToString::to_string).collect::<Vec<_>>(), "from": from}),
                                )
                            })
                            .collect();
                        (pair.clone(), serde_json::Value::Object(hosts))
                    })
                    .collect();
                crate::outln!(
                    "{}",
                    serde_json::json!({"ok": true, "pairs": names, "problems": [], "warnings": notes_json, "ssh": ssh})
                );
            } else {
                for (pair, hosts) in &routes {
                    for (t, from) in hosts {
                        let by = if from.is_empty() {
                            String::new()
                        } else {
                            format!(" (from {})", from.join(", "))
                        };
                        crate::outln!("{pair}: {}{by}", t.label());
                    }
                }
                print_notes();
                crate::outln!(
                    "{}: configuration is valid ({} pair{}: {})",
                    config.file.display(),
                    config.pairs.len(),
                    if config.pairs.len() == 1 { "" } else { "s" },
                    config.pairs.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            Exit::Ok
        }
        Err(diags) => {
            if cli.json {
                let problems: Vec<_> = diags
                    .0
                    .iter()
                    .map(|d| serde_json::json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message, "fix": d.fix}))
                    .collect();
                crate::outln!(
                    "{}",
                    serde_json::json!({"ok": false, "problems": problems, "warnings": notes_json})
                );
            } else {
                crate::outln!("{diags}");
                print_notes();
                crate::outln!(
                    "{} problem{} found",
                    diags.0.len(),
                    if diags.0.len() == 1 { "" } else { "s" }
                );
            }
            Exit::Config
        }
    }
}
