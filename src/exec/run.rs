//! The executor: the imperative shell around `core::cycle`. It takes the
//! pair's lock, finishes or undoes an interrupted run first (from the
//! journal and where traffic really is), runs preflight on a fresh
//! observation, then performs the step the core decides, journaling each
//! before and after it runs and keeping the recorded roles equal to where
//! traffic is, until the core names the outcome.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Change, Config, Host, Pair, Traffic};
use crate::core::assess::{self, PairSeen, Roles};
use crate::core::cycle::{self, Ended, Kind, Next, Outcome, Resolution, Shape, Step};
use crate::core::experiment::{Experiment, Sample};
use crate::core::gate::{Decision, Member};
use crate::core::holder::Holder as Seen;
use crate::core::preflight;
use crate::exec::change;
use crate::exec::notify::Notifier;
use crate::exec::real::RealWorld;
use crate::exec::schedule;
use crate::exec::signals;
use crate::exec::steps::{self, Carry, Cycle};
use crate::exec::{Exec, World};
use crate::io::hostlock;
use crate::io::observe;
use crate::store::journal::{Journal, Record, RunView};
use crate::store::lock::LockOwner;
use crate::store::state::{now_rfc3339, PairState, StateStore};
use crate::store::{self, history, Store};
use crate::traffic;

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Apply or switchover; `None` for `recover` (only finish what was interrupted).
    pub kind: Option<Kind>,
    /// The change's name (apply).
    pub change: Option<String>,
    /// Why, in the operator's words.
    pub reason: Option<String>,
    /// Who.
    pub operator: String,
    /// The command line, for the lock file.
    pub command: String,
    /// Every valid pair of the configuration with its environment (the
    /// gate looks at all of them, not only the pairs of this run).
    pub members: Vec<Member>,
    /// Run even if the environment gate is closed (`--skip-gate`; the
    /// reason is required and recorded).
    pub skip_gate: bool,
    /// Start even outside the maintenance window (`--ignore-window`; the
    /// reason is required and recorded).
    pub ignore_window: bool,
    /// `failover --force`: the operator declares the primary unfit although
    /// it passes its checks (the reason is required and recorded).
    pub force: bool,
    /// `failover --accept-data-loss`: promote the standby of a pair with
    /// role hooks however far behind the old primary it is (the reason is
    /// required and recorded).
    pub accept_data_loss: bool,
    /// `apply --ramp`: a growing share of requests to the standby, step by
    /// step, compared with the old primary, before the switch (a pair
    /// behind a balancer, without role hooks).
    pub ramp: Option<crate::core::ramp::Ramp>,
    /// `baton ab`: an A/B experiment (a fixed share of requests to the
    /// standby, watched, then held) instead of the switch.
    pub experiment: Option<Experiment>,
    /// `baton ab --end --keep old|new`, `baton finish` (new), `baton
    /// revert` (old): the decision that ends a held run.
    pub decide: Option<Keep>,
    /// `apply --hold D`: hold the old primary on the old version for D
    /// after the switch (0: no hold, whatever the pair's `hold` says;
    /// `None`: the pair's `hold`).
    pub hold: Option<Duration>,
    /// `baton rollback`: a cycle whose change is the rollback of
    /// `change` (its rollback steps on each host, the change itself to
    /// undo), taking a finished change back.
    pub reverse: bool,
}

/// Which version an A/B experiment's end keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The old one: all requests back to the old primary, the change
    /// rolled back on the standby.
    Old,
    /// The new one: the cycle goes on (the switch, then the old primary
    /// updated).
    New,
}

/// What a progress event is about: a step, the settling of an
/// interrupted run, or the run as a whole (its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A step of the cycle.
    Step(Step),
    /// `recover` resuming an interrupted run.
    Recover,
    /// The run's end (or a refusal before it started).
    Run,
}

impl Stage {
    /// Its name in progress output.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Step(s) => s.name(),
            Stage::Recover => "recover",
            Stage::Run => "run",
        }
    }
}

/// What happened at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// It began.
    Begin,
    /// The step succeeded.
    Ok,
    /// The step failed.
    Failed,
    /// A sample of an A/B experiment was taken (the step goes on).
    Sample,
    /// A long wait began (`Op::long_wait`): what it waits for is the
    /// detail, until when the event's `until` (the step goes on).
    Wait,
    /// The run ended so.
    Ended(Outcome),
}

impl State {
    /// Its name in progress output (an outcome's own name at the end).
    pub fn name(self) -> &'static str {
        match self {
            State::Begin => "begin",
            State::Ok => "ok",
            State::Failed => "failed",
            State::Sample => "sample",
            State::Wait => "wait",
            State::Ended(o) => o.name(),
        }
    }
}

macro_rules! serialize_by_name {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
    };
}
serialize_by_name!(Stage);
serialize_by_name!(State);

/// One progress event: a step that started or ended, or the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The pair.
    pub pair: String,
    /// The run id.
    pub run: String,
    /// The step, `recover`, or `run` for the run's end.
    pub step: Stage,
    /// The host(s) the step concerns.
    pub host: String,
    /// `begin`, `ok`, `failed`, or the outcome at the end.
    pub state: State,
    /// Milliseconds the step took.
    pub duration_ms: u64,
    /// What happened.
    pub detail: String,
    /// When the event happened (RFC 3339, milliseconds, UTC).
    pub at: String,
    /// For a wait: when it ends at the latest (RFC 3339, milliseconds,
    /// UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl Event {
    /// The event that ends a run (or reports a refusal before it started).
    fn end_of_run(pair: &str, run: &str, outcome: Outcome, message: &str) -> Event {
        Event {
            pair: pair.to_string(),
            run: run.to_string(),
            step: Stage::Run,
            host: String::new(),
            state: State::Ended(outcome),
            duration_ms: 0,
            detail: message.to_string(),
            at: now_rfc3339(),
            until: None,
        }
    }
}

/// Where progress goes (the CLI prints it).
pub trait Progress: Sync {
    /// One event.
    fn event(&self, event: &Event);
}

/// How a run ended, for the CLI.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The core's outcome.
    pub outcome: Outcome,
    /// For a run that did not start: what held it back, where that decides
    /// the exit code.
    pub held: Held,
    /// A sentence for the operator.
    pub message: String,
}

/// What held back a run that did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Nothing in particular (or the run started).
    Not,
    /// Preflight found drift: needs an operator, not just "did not start".
    ByDrift,
    /// The maintenance window, and nothing else.
    ByWindow,
    /// A held run (a hold, an A/B experiment) waits for the operator's
    /// decision.
    ByHold,
}

/// The operator's name: `$SUDO_USER`, else `$USER`, else the uid.
pub fn operator() -> String {
    for var in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v;
            }
        }
    }
    // SAFETY: getuid cannot fail and touches no memory of ours.
    #[allow(unsafe_code, reason = "getuid(2): std cannot tell who we are")]
    let uid = unsafe { libc::getuid() };
    format!("uid {uid}")
}

/// A refusal before any step ran; reported as the run's end.
fn refuse(progress: &dyn Progress, pair: &str, outcome: Outcome, message: String) -> Finished {
    progress.event(&Event::end_of_run(pair, "", outcome, &message));
    Finished {
        outcome,
        held: Held::Not,
        message,
    }
}

/// Runs a request on one pair.
pub async fn run(config: &Config, pair: &Pair, req: &Request, progress: &dyn Progress) -> Finished {
    let backend = match store::open(&config.settings) {
        Ok(b) => b,
        Err(e) => return refuse(progress, &pair.name, Outcome::NotStarted, e.to_string()),
    };
    let holder = LockOwner {
        pid: std::process::id(),
        operator: req.operator.clone(),
        command: req.command.clone(),
        since: now_rfc3339(),
        host: Some(store::lock::this_host()),
    };
    let _lock = match backend.lock(&pair.name, &holder) {
        Ok(l) => l,
        Err(e) => return refuse(progress, &pair.name, Outcome::NotStarted, e.to_string()),
    };
    let journal = Journal::of(&backend, &pair.name);
    let store = StateStore::of(&backend);
    let last = match journal.last_run() {
        Ok(l) => l,
        Err(e) => return refuse(progress, &pair.name, Outcome::Operator, e.to_string()),
    };

    // The new run's id is known before its first event.
    let run_id = format!(
        "{}-{}",
        now_rfc3339().replace([':', '-'], ""),
        std::process::id()
    );
    // A new run's preflight begins now (a decision or a recovery goes on
    // with a run that began earlier: its events carry that run's id).
    if req.kind.is_some() {
        progress.event(&Event {
            pair: pair.name.clone(),
            run: run_id.clone(),
            step: Stage::Step(Step::Preflight),
            host: both_hosts(pair),
            state: State::Begin,
            duration_ms: 0,
            detail: "connecting, asking where traffic is, checking both hosts".into(),
            at: now_rfc3339(),
            until: None,
        });
    }
    // The preflight step's time includes this observation (connecting,
    // asking where traffic is, checking both hosts).
    let observed_from = Instant::now();
    // The hosts' own lock, tried while the pair is observed: another
    // controller (another state directory) may be running on this pair.
    let me = hostlock::holder(&req.operator, &req.command, &holder.since);
    let (observed, tried) = tokio::join!(observe::observe(pair), hostlock::try_both(pair, &me));
    let reachable = [
        observed.sessions[0].is_some(),
        observed.sessions[1].is_some(),
    ];
    let _host_locks = match hostlock::keep(tried, reachable) {
        Ok(l) => l,
        Err(e) => return refuse(progress, &pair.name, Outcome::NotStarted, e.to_string()),
    };

    let observe::Observed {
        seen,
        sessions,
        balancer,
    } = observed;
    let world = RealWorld::new(
        [sessions[0].as_ref(), sessions[1].as_ref()],
        balancer.as_ref(),
    );
    let notify = Notifier::for_pair(pair);
    let at = Places {
        journal: &journal,
        store: &store,
        progress,
        notify: &notify,
    };
    proceed(
        config,
        pair,
        req,
        at,
        &world,
        (last, run_id),
        (seen, observed_from),
    )
    .await
}

/// Where a run records and reports.
#[derive(Clone, Copy)]
pub struct Places<'a> {
    /// The pair's journal.
    pub journal: &'a Journal,
    /// The state files.
    pub store: &'a StateStore,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Where notifications go.
    pub notify: &'a Notifier,
}

/// The run once the pair's lock is held and the pair observed: settle an
/// interrupted run, then start the one asked for; then the notifications
/// still on their way, within their timeout. On any world.
pub async fn proceed<W: World>(
    config: &Config,
    pair: &Pair,
    req: &Request,
    at: Places<'_>,
    world: &W,
    last: (Option<RunView>, String),
    seen: (PairSeen, Instant),
) -> Finished {
    let finished = settle_then_start(config, pair, req, at, world, last, seen).await;
    at.notify
        .settle(at.journal, req, (finished.outcome, &finished.message))
        .await;
    finished
}

/// `proceed` without the notifications' end.
async fn settle_then_start<W: World>(
    config: &Config,
    pair: &Pair,
    req: &Request,
    at: Places<'_>,
    world: &W,
    (last, run_id): (Option<RunView>, String),
    (mut seen, mut observed_from): (PairSeen, Instant),
) -> Finished {
    let Places {
        store, progress, ..
    } = at;
    let mut last = last.filter(|v| v.finished.is_none());
    if let Some(view) = last.as_ref().filter(|v| !v.held()) {
        // A decision already recorded (the command that made it was cut
        // off) is what the recovery carries out, whatever is asked now.
        let recorded = view
            .ended
            .iter()
            .rev()
            .find(|e| e.step == Step::Decide)
            .map(|e| if e.ok { Keep::New } else { Keep::Old });
        let recovered = recover(pair, at, view, world, &seen).await;
        if let (Some(asked), Some(was)) = (req.decide, recorded) {
            if recovered.outcome != Outcome::Held {
                let word = |k: Keep| match k {
                    Keep::New => "keep the new version (finish)",
                    Keep::Old => "keep the old version (revert)",
                };
                return Finished {
                    outcome: if asked == was {
                        recovered.outcome
                    } else {
                        Outcome::NotStarted
                    },
                    held: Held::Not,
                    message: format!(
                        "run {} had already been decided ({}) and was cut off; it is settled now: {}{}",
                        view.start.run(),
                        word(was),
                        recovered.message,
                        if asked == was {
                            String::new()
                        } else {
                            format!("; nothing was done to {}", word(asked))
                        }
                    ),
                };
            }
        }
        // A run settled into a hold (an experiment whose watcher died) holds
        // the pair: a new run does not start.
        if recovered.outcome == Outcome::Held && req.kind.is_some() {
            return Finished {
                outcome: Outcome::NotStarted,
                held: Held::ByHold,
                message: format!("did not start, nothing was changed: {}", recovered.message),
            };
        }
        // An experiment whose watcher died is held again: the operator's
        // decision can end it now.
        let decide_now = recovered.outcome == Outcome::Held && req.decide.is_some();
        if !decide_now
            && (req.kind.is_none()
                || !matches!(
                    recovered.outcome,
                    Outcome::Ok | Outcome::RolledBack | Outcome::NotStarted
                ))
        {
            return recovered;
        }
        // The interrupted run is settled; look at the pair afresh.
        last = match at.journal.last_run() {
            Ok(l) => l.filter(|v| v.finished.is_none()),
            Err(e) => return refuse(progress, &pair.name, Outcome::Operator, e.to_string()),
        };
        observed_from = Instant::now();
        seen = world.observe(pair).await;
    }
    match (last.filter(RunView::held), req.decide) {
        (Some(view), Some(keep)) => {
            // Going on updates a host: the maintenance window applies (a
            // revert only goes back).
            if keep == Keep::New {
                if let Entry::Refused(outside) =
                    window_for(at.journal.store(), pair, req, Kind::Apply)
                {
                    return Finished {
                        held: Held::ByWindow,
                        ..refuse(
                            progress,
                            &pair.name,
                            Outcome::NotStarted,
                            format!("did not start, nothing was changed: {outside}"),
                        )
                    };
                }
            }
            return conclude(pair, at, &view, world, &seen, (keep, req)).await;
        }
        // A failover supersedes a held run: the hold ends undecided (the
        // change stays where it is), then the failover starts.
        (Some(view), None) if req.kind == Some(Kind::Failover) => {
            let message = format!(
                "superseded by a failover ({}, {}): held without a decision; the change stays on {}",
                req.operator,
                req.reason.as_deref().unwrap_or("no reason"),
                match &view.start {
                    Record::Start { to, .. } => to.as_str(),
                    _ => "the updated host",
                }
            );
            if let Err(e) = at.journal.append(&Record::Finish {
                run: view.start.run().to_string(),
                outcome: Outcome::Incomplete,
                message: message.clone(),
                at: now_rfc3339(),
            }) {
                return refuse(progress, &pair.name, Outcome::NotStarted, e.to_string());
            }
            at.notify.know(&view.start);
            let run = view.start.run();
            at.notify
                .end(run, &view.ended, Outcome::Incomplete, &message);
        }
        (Some(view), None) => {
            let held = held_text(&view, &pair.name);
            return match req.kind {
                None => refuse(
                    progress,
                    &pair.name,
                    Outcome::Ok,
                    format!("nothing to recover: {held}"),
                ),
                Some(_) => Finished {
                    held: Held::ByHold,
                    ..refuse(
                        progress,
                        &pair.name,
                        Outcome::NotStarted,
                        format!("did not start, nothing was changed: {held}"),
                    )
                },
            };
        }
        (None, Some(_)) => {
            return refuse(
                progress,
                &pair.name,
                Outcome::NotStarted,
                format!(
                "no run holds {}: nothing to finish, revert or end (`baton log {}` shows its runs)",
                pair.name, pair.name
            ),
            )
        }
        (None, None) => {}
    }
    // `recover` with nothing interrupted: a VIP that no host holds goes
    // back to the recorded primary (a restore run, which checks it first).
    let restore =
        (req.kind.is_none() && nobody_holds_the_vip(pair, store, &seen)).then_some(Kind::Restore);
    if req.kind.is_none() && restore.is_none() {
        return refuse(
            progress,
            &pair.name,
            Outcome::Ok,
            format!("nothing to recover: the last run of {} finished", pair.name),
        );
    }
    let Some(kind) = req.kind.or(restore) else {
        return refuse(
            progress,
            &pair.name,
            Outcome::NotStarted,
            "nothing to do".to_string(),
        );
    };
    fresh(
        config,
        pair,
        (kind, run_id),
        req,
        at,
        world,
        (seen, observed_from),
    )
    .await
}

/// Whether a VIP pair with recorded roles has its address on neither host.
fn nobody_holds_the_vip(pair: &Pair, store: &StateStore, seen: &PairSeen) -> bool {
    let Ok(Some(recorded)) = store.load(&pair.name) else {
        return false;
    };
    let mut seen = seen.clone();
    seen.recorded = Some(Roles {
        primary: recorded.primary,
        standby: recorded.standby,
    });
    matches!(pair.traffic, Traffic::Vip(_)) && assess::assess(&seen).holder == Seen::Neither
}

/// Whether a pair's requests can be split (`what`: `--ramp`, `baton
/// ab`): only a balancer splits requests between the hosts, and a pair
/// with role hooks takes writes on one host only.
pub fn splittable(pair: &Pair, what: &str) -> Result<(), String> {
    if !matches!(pair.traffic, crate::config::Traffic::Haproxy(_)) {
        return Err(format!(
            "{what} needs a balancer that splits requests between the hosts (traffic method \"haproxy\"); {} moves traffic by {}, all at once: apply it with a plain `baton apply`",
            pair.name,
            pair.traffic.method()
        ));
    }
    if pair.roles.is_some() {
        return Err(format!(
            "{} has role hooks: only its primary takes writes, so its requests cannot be split ({what}); apply it with a plain `baton apply`",
            pair.name
        ));
    }
    Ok(())
}

/// A new run: preflight on a fresh observation, then the cycle.
async fn fresh<W: World>(
    config: &Config,
    pair: &Pair,
    (kind, run_id): (Kind, String),
    req: &Request,
    at: Places<'_>,
    world: &W,
    (mut seen, started): (PairSeen, Instant),
) -> Finished {
    let Places {
        journal,
        store,
        progress,
        ..
    } = at;
    let recorded = match store.load(&pair.name) {
        Ok(s) => s,
        Err(e) => return refuse(progress, &pair.name, Outcome::NotStarted, e.to_string()),
    };
    seen.recorded = recorded.as_ref().map(|s| Roles {
        primary: s.primary.clone(),
        standby: s.standby.clone(),
    });
    let assessment = assess::assess(&seen);
    // The last position seen from the primary, for a later failover (a
    // record that cannot be written is found by the run's own records).
    if let Some((host, position)) = assess::primary_position(&seen, &assessment.holder) {
        let _ = store.remember_position(&pair.name, host, position);
    }
    let failed = recorded.as_ref().and_then(|s| s.failed.clone());
    let from = preflight::old_primary(
        kind,
        failed.as_deref(),
        seen.recorded.as_ref(),
        &assessment.holder,
        [&pair.hosts[0].name, &pair.hosts[1].name],
    );
    let (Some(from_host), Some(to_host)) = (pair.host(&from).cloned(), pair.other(&from).cloned())
    else {
        return refuse(
            progress,
            &pair.name,
            Outcome::NotStarted,
            format!(
                "the recorded primary `{from}` is not a host of {}",
                pair.name
            ),
        );
    };
    let change = match change_for(pair, kind, req) {
        Ok(c) => c,
        Err(why) => return refuse(progress, &pair.name, Outcome::NotStarted, why.0),
    };
    let ramp = req.ramp.clone().filter(|_| kind == Kind::Apply);
    let experiment = req.experiment.clone().filter(|_| kind == Kind::Apply);
    // A hold: asked for, else the pair's (not for a ramp or an experiment,
    // whose splits come before the switch).
    let hold = match req.hold {
        Some(d) => Some(d).filter(|d| !d.is_zero()),
        // A rollback takes a change back, whole.
        None if ramp.is_none() && experiment.is_none() && !req.reverse => pair.hold,
        None => None,
    }
    .filter(|_| kind == Kind::Apply);
    if hold.is_some() && pair.roles.is_some() {
        return refuse(progress, &pair.name, Outcome::NotStarted, format!("{} has role hooks: a hold (the old primary kept on the old version) is not supported for replicated pairs yet; apply it without --hold", pair.name));
    }
    for (asked, what) in [
        (ramp.is_some(), "--ramp"),
        (experiment.is_some(), "an A/B experiment (baton ab)"),
    ] {
        let refused = if asked {
            splittable(pair, what).err()
        } else {
            None
        };
        if let Some(why) = refused {
            return refuse(progress, &pair.name, Outcome::NotStarted, why);
        }
    }
    let hash = match change.as_ref().map(change::hash).transpose() {
        Ok(h) => h,
        Err(e) => {
            return refuse(
                progress,
                &pair.name,
                Outcome::NotStarted,
                format!("cannot hash the change: {e}"),
            )
        }
    };
    if req.reverse && change.as_ref().is_some_and(|c| !c.reversible()) {
        return refuse(
            progress,
            &pair.name,
            Outcome::NotStarted,
            format!(
                "change `{}` has no rollback steps and no uploads: it cannot be rolled back",
                req.change.as_deref().unwrap_or("")
            ),
        );
    }
    // A rollback goes back: the gate, which guards going forward, is not
    // asked (and says so in the start record).
    let gate = hash.as_deref().filter(|_| kind == Kind::Apply).map(|h| {
        if req.reverse {
            Entry::Allowed(format!("gate not asked: a rollback of change {h}"))
        } else {
            gate_for(config, at.journal.store(), pair, req, h)
        }
    });
    let window =
        schedule::applies_to(kind).then(|| window_for(at.journal.store(), pair, req, kind));
    let start = Record::Start {
        run: run_id.clone(),
        pair: pair.name.clone(),
        kind,
        from: from_host.name.clone(),
        to: to_host.name.clone(),
        change: change.as_ref().map(|c| c.name.clone()),
        label: change.as_ref().map(|c| c.label.clone()),
        hash: hash.clone(),
        operator: req.operator.clone(),
        reason: req.reason.clone().or_else(|| {
            (kind == Kind::Restore)
                .then(|| "baton recover: no host held the virtual IP".to_string())
        }),
        gate: gate.as_ref().map(|g| g.text().to_string()),
        window: window.as_ref().map(|w| w.text().to_string()),
        forced: (kind == Kind::Failover && req.force).then(|| {
            format!(
                "forced by {} ({}): {} declared unfit whatever its checks say",
                req.operator,
                req.reason.as_deref().unwrap_or("no reason"),
                from_host.name
            )
        }),
        roles: pair.roles.is_some(),
        ramp: ramp.clone(),
        experiment: experiment.clone(),
        hold,
        reverse: req.reverse && kind == Kind::Apply,
        data_loss: (kind == Kind::Failover && req.accept_data_loss && pair.roles.is_some()).then(
            || {
                format!(
                    "accepted by {} ({}): {} is promoted however far behind {} it is",
                    req.operator,
                    req.reason.as_deref().unwrap_or("no reason"),
                    to_host.name,
                    from_host.name
                )
            },
        ),
        at: now_rfc3339(),
    };
    if let Err(e) = journal.append(&start) {
        return refuse(progress, &pair.name, Outcome::NotStarted, e.to_string());
    }
    at.notify.know(&start);

    // Step 0, preflight: everything must be well before anything changes.
    if let Err(e) = journal.append(&Record::Begin {
        run: run_id.clone(),
        step: Step::Preflight,
        at: now_rfc3339(),
    }) {
        return refuse(progress, &pair.name, Outcome::NotStarted, e.to_string());
    }
    let roles = preflight::Roles {
        from: &from_host.name,
        to: &to_host.name,
        failed: failed.as_deref(),
        forced: req.force,
    };
    let mut problems = preflight::problems(kind, &pair.name, &seen, &assessment, roles);
    if let Some(Entry::Refused(closed)) = &gate {
        problems.insert(0, closed.clone());
    }
    // The window decides the exit code only when nothing else stopped the
    // run: a closed gate or an unhealthy host outweighs "not now".
    let outside_window = matches!(window, Some(Entry::Refused(_))) && problems.is_empty();
    if let Some(Entry::Refused(outside)) = &window {
        problems.insert(0, outside.clone());
    }
    let drift = preflight::needs_operator(kind, &assessment);
    let ok = problems.is_empty();
    let detail = if ok {
        let gate_note = match &gate {
            Some(Entry::Allowed(g)) => format!("; {g}"),
            _ => String::new(),
        };
        match kind {
            Kind::Failover => format!(
                "{}; {} is healthy and takes over",
                preflight::primary_state(&seen, &from_host.name),
                to_host.name
            ),
            Kind::Rejoin => format!("{} is back; traffic is on {}", to_host.name, from_host.name),
            Kind::Restore => format!(
                "no host holds traffic; {}, the recorded primary, passes its checks and takes it back",
                to_host.name
            ),
            _ => format!(
                "{} holds traffic; both hosts reachable and healthy{gate_note}",
                from_host.name
            ),
        }
    } else {
        problems.join("; ")
    };
    if ok && recorded.is_none() {
        if let Err(e) = save_roles(
            store,
            &pair.name,
            &from_host.name,
            &to_host.name,
            "observed",
            None,
        ) {
            return refuse(progress, &pair.name, Outcome::NotStarted, e.0);
        }
    }
    let mut ctx = Ctx::new(
        pair,
        (run_id, kind),
        (from_host, to_host, change),
        &seen,
        at,
        world,
    );
    ctx.shape = Shape::of(
        pair.roles.is_some(),
        ramp.is_some(),
        experiment.is_some(),
        hold.is_some(),
    );
    ctx.ramp = ramp;
    ctx.experiment = experiment;
    ctx.hold = hold;
    ctx.reverse = req.reverse && kind == Kind::Apply;
    ctx.accept_data_loss = req.accept_data_loss;
    ctx.hash = hash;
    if let Err(e) = ctx.end(Step::Preflight, ok, &detail, started.elapsed(), vec![]) {
        return ctx.stopped(&e, &[]);
    }
    if !ok {
        let message = format!("did not start, nothing was changed: {detail}");
        let refused = [Ended {
            step: Step::Preflight,
            ok: false,
        }];
        if let Err(e) = ctx.finish(Outcome::NotStarted, &message, &refused) {
            return ctx.stopped(&e, &refused);
        }
        return Finished {
            outcome: Outcome::NotStarted,
            held: if drift {
                Held::ByDrift
            } else if outside_window {
                Held::ByWindow
            } else {
                Held::Not
            },
            message,
        };
    }
    let mut ended = vec![Ended {
        step: Step::Preflight,
        ok,
    }];
    at.notify.start(&ctx.run, None);
    ctx.drive(&mut ended).await
}

/// Whether the gate or the window lets a run start, with the sentence
/// the journal's start record keeps either way.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// It may (the decision, or the override and its reason).
    Allowed(String),
    /// It may not: why, and how to override.
    Refused(String),
}

impl Entry {
    fn text(&self) -> &str {
        match self {
            Entry::Allowed(t) | Entry::Refused(t) => t,
        }
    }
}

/// Why a run was refused before preflight, in a sentence.
struct Refusal(String);

/// The change an apply applies (none for other runs).
fn change_for(pair: &Pair, kind: Kind, req: &Request) -> Result<Option<Change>, Refusal> {
    match (kind, &req.change) {
        (Kind::Apply, Some(name)) => match pair.changes.get(name) {
            Some(c) => Ok(Some(c.clone())),
            None => {
                let known: Vec<&String> = pair.changes.keys().collect();
                Err(Refusal(format!(
                    "pair {} has no change `{name}` (it has: {known:?})",
                    pair.name
                )))
            }
        },
        (Kind::Apply, None) => Err(Refusal("apply needs --change NAME".to_string())),
        (_, _) => Ok(None),
    }
}

/// The environment gate: the same change (by `hash`) must have completed
/// on every pair of every earlier environment, unless `--skip-gate`.
fn gate_for(config: &Config, store: &Store, pair: &Pair, req: &Request, hash: &str) -> Entry {
    let s = &config.settings;
    match history::decide(
        store,
        &s.environments,
        s.soak,
        &req.members,
        &pair.environment,
        hash,
    ) {
        Ok(Decision::Open(why)) => Entry::Allowed(format!("gate open: {why}")),
        Ok(Decision::Closed(why)) if req.skip_gate => Entry::Allowed(format!(
            "gate SKIPPED by {} ({}): {why}",
            req.operator,
            req.reason.as_deref().unwrap_or("no reason")
        )),
        Ok(Decision::Closed(why)) => Entry::Refused(format!(
            "environment gate closed: {why}; override with --skip-gate --reason TEXT"
        )),
        Err(e) => Entry::Refused(format!("environment gate: {e}")),
    }
}

/// The maintenance window, unless `--ignore-window`.
fn window_for(store: &Store, pair: &Pair, req: &Request, kind: Kind) -> Entry {
    let v = schedule::check(store, pair, kind);
    match (v.allowed, req.ignore_window) {
        (true, _) => Entry::Allowed(format!("window: {}", v.text)),
        (false, true) => Entry::Allowed(format!(
            "window IGNORED by {} ({}): {}",
            req.operator,
            req.reason.as_deref().unwrap_or("no reason"),
            v.text
        )),
        (false, false) => Entry::Refused(format!(
            "{}; start it inside the window, or override with --ignore-window --reason TEXT",
            v.text
        )),
    }
}

/// The context of a run that began earlier (an interrupted or a held
/// one), from its start record: the hosts, the change and the shape it
/// began with. A refusal when the configuration no longer allows going on.
fn resumed<'a, W: World>(
    pair: &'a Pair,
    at: Places<'a>,
    view: &RunView,
    world: &'a W,
    seen: &PairSeen,
) -> Result<Ctx<'a, W>, Finished> {
    let progress = at.progress;
    let Record::Start {
        run,
        kind,
        from,
        to,
        change,
        roles,
        data_loss,
        ramp,
        experiment,
        hold,
        reverse,
        hash: began,
        ..
    } = &view.start
    else {
        return Err(refuse(
            progress,
            &pair.name,
            Outcome::Operator,
            "the journal's last run has no start record".to_string(),
        ));
    };
    let (Some(from_host), Some(to_host)) = (pair.host(from).cloned(), pair.host(to).cloned())
    else {
        return Err(refuse(progress, &pair.name, Outcome::Operator, format!("the unfinished run {run} names hosts {from} and {to}, which are not this pair's hosts any more")));
    };
    let change = match change {
        Some(name) => match pair.changes.get(name) {
            Some(c) => Some(c.clone()),
            None => {
                return Err(refuse(progress, &pair.name, Outcome::Operator, format!("the unfinished run {run} applied change `{name}`, which is no longer configured: it cannot be rolled back")))
            }
        },
        None => None,
    };
    if *roles && pair.roles.is_none() {
        return Err(refuse(progress, &pair.name, Outcome::Operator, format!("the unfinished run {run} handed the primary role over with the pair's [roles] hooks, which are no longer configured: put them back to settle it")));
    }
    at.notify.know(&view.start);
    let mut ctx = Ctx::new(
        pair,
        (run.clone(), *kind),
        (from_host, to_host, change),
        seen,
        at,
        world,
    );
    ctx.shape = Shape::of(*roles, ramp.is_some(), experiment.is_some(), hold.is_some());
    ctx.ramp = ramp.clone();
    ctx.experiment = experiment.clone();
    ctx.hold = *hold;
    ctx.reverse = *reverse;
    ctx.accept_data_loss = data_loss.is_some();
    ctx.hash = began.clone();
    Ok(ctx)
}

/// What holds a pair, and how to end it, in a sentence.
fn held_text(view: &RunView, pair: &str) -> String {
    let run = view.start.run();
    match &view.start {
        Record::Start {
            experiment: Some(e),
            to,
            ..
        } => format!(
            "an A/B experiment (run {run}) holds {pair}, {}% of new requests on {to}; end it with `baton ab {pair} --end --keep new` (finish the cycle) or `--keep old` (roll the change back)",
            e.percent
        ),
        Record::Start { from, to, .. } => format!(
            "run {run} holds {pair}: traffic on {to}, {from} kept on the old version; `baton finish {pair}` updates {from}, `baton revert {pair}` sends traffic back to it and rolls the change back"
        ),
        _ => format!("run {run} holds {pair}"),
    }
}

/// Ends a held A/B experiment with the operator's decision: journaled as
/// the `decide` step (no begin: it performs nothing), then the core goes
/// on: keeping the new version switches and updates the old primary;
/// keeping the old switches back and rolls the change back.
async fn conclude<W: World>(
    pair: &Pair,
    at: Places<'_>,
    view: &RunView,
    world: &W,
    seen: &PairSeen,
    (keep, req): (Keep, &Request),
) -> Finished {
    let mut ctx = match resumed(pair, at, view, world, seen) {
        Ok(ctx) => ctx,
        Err(refused) => return refused,
    };
    if let Some(why) = undecidable(&ctx, view, seen) {
        return refuse(
            at.progress,
            &pair.name,
            Outcome::NotStarted,
            format!("did not start, nothing was changed, the run is still held: {why}"),
        );
    }
    let change = match &view.start {
        Record::Start {
            change: Some(name),
            hash,
            ..
        } => format!(
            "change {name} (hash {})",
            hash.as_deref().unwrap_or("unknown")
        ),
        _ => "the change".to_string(),
    };
    let reason = req.reason.as_deref().unwrap_or("no reason");
    let detail = match (ctx.experiment.is_some(), keep) {
        (true, Keep::New) => format!("{} ended the A/B experiment of {change} keeping the new version ({reason}): the switch and the old primary's update follow", req.operator),
        (true, Keep::Old) => format!("{} ended the A/B experiment of {change} keeping the old version ({reason}): all new requests go back, and the change is rolled back", req.operator),
        (false, Keep::New) => format!("{} finished the hold of {change} ({reason}): {} is updated", req.operator, ctx.from.name),
        (false, Keep::Old) => format!("{} reverted {change} ({reason}): traffic goes back to {}, and the change is rolled back on {}", req.operator, ctx.from.name, ctx.to.name),
    };
    let mut ended = view.ended.clone();
    if let Err(e) = ctx.end(
        Step::Decide,
        keep == Keep::New,
        &detail,
        Duration::ZERO,
        vec![],
    ) {
        return ctx.stopped(&e, &ended);
    }
    ended.push(Ended {
        step: Step::Decide,
        ok: keep == Keep::New,
    });
    let decision = crate::core::notify::Decision::of(keep == Keep::New, ctx.shape);
    at.notify.start(&ctx.run, Some(decision));
    ctx.drive(&mut ended).await
}

/// Why a held run cannot be decided now: the change was edited since it
/// was applied (finishing would spread, and reverting would roll back,
/// something else), or a hold's traffic is no longer on the updated host
/// (moved by hand: updating the held host would touch the one serving).
fn undecidable<W: World>(ctx: &Ctx<'_, W>, view: &RunView, seen: &PairSeen) -> Option<String> {
    let Record::Start { hash, run, .. } = &view.start else {
        return None;
    };
    let now = ctx.change.as_ref().map(change::hash);
    match (hash, now) {
        (Some(was), Some(Ok(now))) if *was != now => {
            return Some(format!(
                "change {} was edited since run {run} applied it (hash {was}, now {now}): put [changes.{}] back as it was",
                ctx.change.as_ref().map_or("", |c| c.name.as_str()),
                ctx.change.as_ref().map_or("", |c| c.name.as_str())
            ))
        }
        (_, Some(Err(e))) => return Some(format!("cannot hash the change: {e}")),
        _ => {}
    }
    if ctx.shape == Shape::Hold {
        let holder = assess::assess(seen).holder;
        if holder != Seen::Host(ctx.to.name.clone()) {
            return Some(format!(
                "the hold left traffic on {}, and it is {} now: put it back on {}, or settle the pair by hand",
                ctx.to.name, holder, ctx.to.name
            ));
        }
    }
    None
}

/// Whether run `run`'s last A/B sample found the updated host worse.
fn last_sample_worse(journal: &Journal, run: &str) -> bool {
    let mut worse = false;
    let _ = journal.each(|r| {
        if let Record::Sample {
            run: r_run, sample, ..
        } = r
        {
            if r_run == run {
                worse = sample.verdict == crate::core::experiment::Verdict::Worse;
            }
        }
    });
    worse
}

/// Settles an interrupted run: resolves the step it died in from where
/// traffic really is, then lets the core finish or undo it.
async fn recover<W: World>(
    pair: &Pair,
    at: Places<'_>,
    view: &RunView,
    world: &W,
    seen: &PairSeen,
) -> Finished {
    let mut ctx = match resumed(pair, at, view, world, seen) {
        Ok(ctx) => ctx,
        Err(refused) => return refused,
    };
    let (run, kind, from, to) = (
        ctx.run.clone(),
        ctx.kind,
        ctx.from.name.clone(),
        ctx.to.name.clone(),
    );
    let mut ended = view.ended.clone();
    if let Some(step) = view.open {
        let mut x = Exec::new(world, pair);
        let (holder, why) = traffic::side(&mut x, &from, &to).await;
        // An experiment whose guard found a worse interval and was cut off
        // before it could say so is undone, whatever split is left.
        let resolution = if step == Step::Experiment && last_sample_worse(at.journal, &run) {
            Resolution::Ended(Ended { step, ok: false })
        } else {
            cycle::resolve_interrupted_for(kind, ctx.shape, step, holder)
        };
        match resolution {
            Resolution::Ended(e) => {
                // The switch's announcement may have died with it.
                let again = match (step, holder) {
                    (Step::Switch | Step::SwitchBack, cycle::Side::New) => {
                        traffic::announce_again(&mut x, &to).await
                    }
                    (Step::Switch | Step::SwitchBack, cycle::Side::Old) => {
                        traffic::announce_again(&mut x, &from).await
                    }
                    _ => String::new(),
                };
                let detail =
                    format!("interrupted (the controller stopped inside it); now {why}{again}");
                if let Err(err) = ctx.end(step, e.ok, &detail, Duration::ZERO, x.records) {
                    return ctx.stopped(&err, &ended);
                }
                ended.push(e);
                if let Err(err) = ctx.record_roles(&ended, "recover", false) {
                    return ctx.stopped(&err, &ended);
                }
            }
            Resolution::Retry => {}
            Resolution::Operator => {
                let message = format!("run {run} was interrupted inside {} and traffic is unclear ({why}); an operator must decide", step.name());
                if let Err(e) = ctx.finish(Outcome::Operator, &message, &ended) {
                    return ctx.stopped(&e, &ended);
                }
                return Finished {
                    outcome: Outcome::Operator,
                    held: Held::Not,
                    message,
                };
            }
        }
    }
    ctx.progress.event(&Event {
        pair: pair.name.clone(),
        run: run.clone(),
        step: Stage::Recover,
        host: String::new(),
        state: State::Begin,
        duration_ms: 0,
        detail: format!(
            "resuming interrupted run {run} after {} step(s)",
            ended.len()
        ),
        at: now_rfc3339(),
        until: None,
    });
    ctx.drive(&mut ended).await
}

struct Ctx<'a, W> {
    pair: &'a Pair,
    run: String,
    kind: Kind,
    from: Host,
    to: Host,
    change: Option<Change>,
    /// The change's hash as the run's start record has it.
    hash: Option<String>,
    /// SSH reached the old primary when the run began.
    from_reachable: bool,
    journal: &'a Journal,
    store: &'a StateStore,
    world: &'a W,
    progress: &'a dyn Progress,
    notify: &'a Notifier,
    /// What a step hands on to later ones (the TTL to drain, the
    /// announcement whose report the next step reads).
    carry: Carry,
    /// The run's steps besides its kind: handing the primary role over
    /// (the pair's role hooks), or ramping.
    shape: Shape,
    /// `apply --ramp`: the ramp's steps.
    ramp: Option<crate::core::ramp::Ramp>,
    /// `baton ab`: the experiment.
    experiment: Option<Experiment>,
    /// `apply --hold`: how long the old primary is held.
    hold: Option<Duration>,
    /// `baton rollback`: the change is taken back.
    reverse: bool,
    /// The last position seen from the old primary (a failover's limit).
    last_seen: Option<crate::store::state::SeenPosition>,
    /// The operator accepted a failover's data loss.
    accept_data_loss: bool,
}

/// Both hosts of a pair, in the pair file's order, as progress shows them.
fn both_hosts(pair: &Pair) -> String {
    format!("{},{}", pair.hosts[0].name, pair.hosts[1].name)
}

/// A journal record or the state could not be written (a full disk, a
/// broken state directory): the run stops before its next action.
#[derive(Debug)]
struct Unrecorded(String);

fn save_roles(
    store: &StateStore,
    pair: &str,
    primary: &str,
    standby: &str,
    source: &str,
    failed: Option<String>,
) -> Result<(), Unrecorded> {
    let state = PairState {
        pair: pair.to_string(),
        primary: primary.to_string(),
        standby: standby.to_string(),
        updated_at: now_rfc3339(),
        source: source.to_string(),
        failed,
    };
    store
        .save(&state)
        .map_err(|e| Unrecorded(format!("cannot record the roles: {e}")))
}

/// Where an A/B experiment's samples go as they are taken: the journal,
/// and the progress output.
struct Samples<'a> {
    journal: &'a Journal,
    progress: &'a dyn Progress,
    pair: &'a str,
    run: &'a str,
    host: String,
}

impl Samples<'_> {
    fn write(&self, sample: &Sample) -> Result<(), String> {
        let written = self.journal.append(&Record::Sample {
            run: self.run.to_string(),
            sample: sample.clone(),
            at: now_rfc3339(),
        });
        self.progress.event(&Event {
            pair: self.pair.to_string(),
            run: self.run.to_string(),
            step: Stage::Step(Step::Experiment),
            host: self.host.clone(),
            state: State::Sample,
            duration_ms: sample.interval_ms,
            detail: sample.sentence(),
            at: now_rfc3339(),
            until: None,
        });
        written.map_err(|e| format!("cannot journal the sample: {e}"))
    }
}

impl<'a, W: World> Ctx<'a, W> {
    /// The context of run `run` of `kind` from `from` to `to`, as `seen`
    /// at its start.
    fn new(
        pair: &'a Pair,
        (run, kind): (String, Kind),
        (from, to, change): (Host, Host, Option<Change>),
        seen: &PairSeen,
        at: Places<'a>,
        world: &'a W,
    ) -> Self {
        let from_reachable = seen
            .hosts
            .iter()
            .any(|h| h.name == from.name && h.ssh.is_ok());
        Ctx {
            pair,
            run,
            kind,
            from,
            to,
            change,
            hash: None,
            from_reachable,
            journal: at.journal,
            store: at.store,
            world,
            progress: at.progress,
            notify: at.notify,
            carry: Carry::default(),
            shape: Shape::Plain,
            ramp: None,
            experiment: None,
            hold: None,
            reverse: false,
            last_seen: at.store.load_position(&pair.name).ok().flatten(),
            accept_data_loss: false,
        }
    }

    fn host_of(&self, step: Step) -> String {
        match step {
            // Progress names both hosts in the pair file's order.
            Step::Preflight => both_hosts(self.pair),
            _ => step.concerns(self.kind, &self.from.name, &self.to.name),
        }
    }

    fn end(
        &self,
        step: Step,
        ok: bool,
        detail: &str,
        took: Duration,
        commands: Vec<crate::store::journal::CommandRecord>,
    ) -> Result<(), Unrecorded> {
        let written = self.journal.append(&Record::End {
            run: self.run.clone(),
            step,
            ok,
            detail: detail.to_string(),
            duration_ms: took.as_millis() as u64,
            commands,
            at: now_rfc3339(),
        });
        self.progress.event(&Event {
            pair: self.pair.name.clone(),
            run: self.run.clone(),
            step: Stage::Step(step),
            host: self.host_of(step),
            // A decision is recorded whichever it is (its `ok` in the
            // journal says which version is kept).
            state: if ok || step == Step::Decide {
                State::Ok
            } else {
                State::Failed
            },
            duration_ms: took.as_millis() as u64,
            detail: detail.to_string(),
            at: now_rfc3339(),
            until: None,
        });
        written.map_err(|e| Unrecorded(format!("cannot journal the end of {}: {e}", step.name())))
    }

    /// Journals that a step is about to run.
    fn begin(&self, step: Step) -> Result<(), Unrecorded> {
        self.journal
            .append(&Record::Begin {
                run: self.run.clone(),
                step,
                at: now_rfc3339(),
            })
            .map_err(|e| Unrecorded(format!("cannot journal the start of {}: {e}", step.name())))
    }

    /// Journals the run's end (after the steps `ended`) and reports it;
    /// when the record cannot be written, nothing is reported as done (the
    /// caller stops).
    fn finish(&self, outcome: Outcome, message: &str, ended: &[Ended]) -> Result<(), Unrecorded> {
        self.journal
            .append(&Record::Finish {
                run: self.run.clone(),
                outcome,
                message: message.to_string(),
                at: now_rfc3339(),
            })
            .map_err(|e| Unrecorded(format!("cannot journal the end of the run: {e}")))?;
        self.progress.event(&Event::end_of_run(
            &self.pair.name,
            &self.run,
            outcome,
            message,
        ));
        self.notify.end(&self.run, ended, outcome, message);
        Ok(())
    }

    /// Stops the run because a record could not be written: nothing more is
    /// done (baton never acts without a record), the run stays unfinished
    /// in the journal so that the next command settles it from where
    /// traffic really is, and the operator is told: needs an operator.
    fn stopped(&self, e: &Unrecorded, ended: &[Ended]) -> Finished {
        let on = if cycle::traffic_on_new(ended) {
            &self.to.name
        } else {
            &self.from.name
        };
        let message = format!(
            "STOPPED: {}; nothing more was done, and traffic was last known on {on}. {}, then run `baton recover {}`, which settles this run from where traffic really is",
            e.0,
            self.journal.mend_hint(),
            self.pair.name
        );
        self.progress.event(&Event::end_of_run(
            &self.pair.name,
            &self.run,
            Outcome::Operator,
            &message,
        ));
        self.notify
            .end(&self.run, ended, Outcome::Operator, &message);
        Finished {
            outcome: Outcome::Operator,
            held: Held::Not,
            message,
        }
    }

    /// Asks the core for the next step and performs it, until the outcome.
    async fn drive(&mut self, ended: &mut Vec<Ended>) -> Finished {
        loop {
            match cycle::decide_for(self.kind, self.shape, ended) {
                // Held for the operator: no finish record (the run goes on
                // when they decide), traffic split as the experiment left it.
                Next::Finish(Outcome::Held) => {
                    let message = self.message(Outcome::Held, ended);
                    self.progress.event(&Event::end_of_run(
                        &self.pair.name,
                        &self.run,
                        Outcome::Held,
                        &message,
                    ));
                    self.notify.end(&self.run, ended, Outcome::Held, &message);
                    return Finished {
                        outcome: Outcome::Held,
                        held: Held::Not,
                        message,
                    };
                }
                Next::Finish(outcome) => {
                    if outcome != Outcome::NotStarted {
                        if let Err(e) = self.record_roles(
                            ended,
                            "finish",
                            self.kind == Kind::Rejoin && outcome == Outcome::Ok,
                        ) {
                            return self.stopped(&e, ended);
                        }
                    }
                    let message = self.message(outcome, ended);
                    if let Err(e) = self.finish(outcome, &message, ended) {
                        return self.stopped(&e, ended);
                    }
                    return Finished {
                        outcome,
                        held: Held::Not,
                        message,
                    };
                }
                Next::Run(step) => {
                    // A stop was asked for: steps that would move traffic
                    // forward are not run, so the core undoes the run. Once
                    // a standby was promoted there is no way back: traffic
                    // follows it.
                    let promoted = ended.iter().any(|e| e.step == Step::Promote && e.ok);
                    if signals::count() >= 1
                        && matches!(
                            step,
                            Step::ApplyStandby
                                | Step::VerifyStandby
                                | Step::Fence
                                | Step::Release
                                | Step::Demote
                                | Step::CatchUp
                                | Step::Promote
                                | Step::Experiment
                        )
                        || signals::count() >= 1 && step == Step::Switch && !promoted
                    {
                        let why = format!("not run: {} asked baton to stop", signals::last_name());
                        if let Err(e) = self.begin(step) {
                            return self.stopped(&e, ended);
                        }
                        if let Err(e) = self.end(step, false, &why, Duration::ZERO, vec![]) {
                            return self.stopped(&e, ended);
                        }
                        ended.push(Ended { step, ok: false });
                        continue;
                    }
                    // Never act without a record.
                    if let Err(e) = self.begin(step) {
                        return self.stopped(&e, ended);
                    }
                    self.progress.event(&Event {
                        pair: self.pair.name.clone(),
                        run: self.run.clone(),
                        step: Stage::Step(step),
                        host: self.host_of(step),
                        state: State::Begin,
                        duration_ms: 0,
                        detail: String::new(),
                        at: now_rfc3339(),
                        until: None,
                    });
                    let started = Instant::now();
                    let mut x = Exec::new(self.world, self.pair);
                    // Each long wait is announced: what for, and until when.
                    let (progress, pair_name, run_id) =
                        (self.progress, self.pair.name.clone(), self.run.clone());
                    let waits = move |r: &crate::core::op::Rendered, d: Duration| {
                        progress.event(&Event {
                            pair: pair_name.clone(),
                            run: run_id.clone(),
                            step: Stage::Step(step),
                            host: r.host.clone(),
                            state: State::Wait,
                            duration_ms: d.as_millis() as u64,
                            detail: r.command.clone(),
                            at: now_rfc3339(),
                            until: Some(
                                humantime::format_rfc3339_millis(std::time::SystemTime::now() + d)
                                    .to_string(),
                            ),
                        });
                    };
                    x.on_wait = Some(&waits);
                    crate::exec::crash::point(&format!("begin-{}", step.name()));
                    let samples = Samples {
                        journal: self.journal,
                        progress: self.progress,
                        pair: &self.pair.name,
                        run: &self.run,
                        host: self.host_of(Step::Experiment),
                    };
                    let sink = |sample: &Sample| samples.write(sample);
                    let sink: crate::traffic::haproxy::SampleSink<'_> = &sink;
                    let cycle = Cycle {
                        experiment: self.experiment.as_ref().map(|e| (e, sink)),
                        kind: self.kind,
                        from: &self.from,
                        to: &self.to,
                        change: self.change.as_ref(),
                        hash: self.hash.as_deref(),
                        from_reachable: self.from_reachable,
                        last_seen: self.last_seen.as_ref(),
                        accept_data_loss: self.accept_data_loss,
                        ramp: self.ramp.as_ref(),
                        reverse: self.reverse,
                    };
                    let result = tokio::select! {
                        r = steps::perform(&mut x, &cycle, step, &mut self.carry) => r,
                        () = signals::second() => {
                            // A second signal: give up the step in flight, say
                            // so, and leave the run to `baton recover`.
                            let why = format!("aborted by a second {}; run `baton recover {}`", signals::last_name(), self.pair.name);
                            if let Err(e) = self.end(step, false, &why, started.elapsed(), x.records) {
                                return self.stopped(&e, ended);
                            }
                            self.notify.end(&self.run, ended, Outcome::Operator, &why);
                            return Finished {
                                outcome: Outcome::Operator,
                                held: Held::Not,
                                message: why,
                            };
                        }
                    };
                    crate::exec::crash::point(&format!("end-{}", step.name()));
                    let ok = result.is_ok();
                    let mut detail = result.unwrap_or_else(|e| e.0);
                    if !step.moves_traffic() {
                        detail.push_str(&steps::report(&mut x, &mut self.carry).await);
                    }
                    let written = self.end(step, ok, &detail, started.elapsed(), x.records);
                    ended.push(Ended { step, ok });
                    // A promoted (or resumed) primary's position: the last
                    // seen, for a later failover (a state file that cannot
                    // be written is reported by the next status).
                    if let Some((host, position)) = self.carry.writable.take() {
                        let _ = self
                            .store
                            .remember_position(&self.pair.name, &host, position);
                    }
                    if let Err(e) = written {
                        // The step did happen: the message says where
                        // traffic went; the journal lacks its end, which
                        // recovery settles from reality.
                        return self.stopped(&e, ended);
                    }
                    if step.moves_traffic() && ok {
                        if let Err(e) = self.record_roles(ended, step.name(), false) {
                            return self.stopped(&e, ended);
                        }
                    }
                }
            }
        }
    }

    /// Records the roles that follow from the steps ended so far. A
    /// failover that moved traffic marks the old primary failed; a rejoin
    /// that finished well clears the mark; otherwise the mark stays.
    fn record_roles(
        &self,
        ended: &[Ended],
        source: &str,
        rejoined: bool,
    ) -> Result<(), Unrecorded> {
        let on_new = cycle::traffic_on_new(ended);
        let (p, s) = if on_new {
            (&self.to, &self.from)
        } else {
            (&self.from, &self.to)
        };
        let failed = match self.kind {
            Kind::Failover if on_new => Some(self.from.name.clone()),
            Kind::Rejoin if rejoined => None,
            _ => self
                .store
                .load(&self.pair.name)
                .ok()
                .flatten()
                .and_then(|s| s.failed),
        };
        save_roles(
            self.store,
            &self.pair.name,
            &p.name,
            &s.name,
            source,
            failed,
        )
    }

    fn message(&self, outcome: Outcome, ended: &[Ended]) -> String {
        let failed: Vec<&str> = ended
            .iter()
            .filter(|e| !e.ok)
            .map(|e| e.step.name())
            .collect();
        let on = if cycle::traffic_on_new(ended) {
            &self.to.name
        } else {
            &self.from.name
        };
        let decided_old = ended
            .iter()
            .rev()
            .find(|e| e.step == Step::Decide)
            .is_some_and(|e| !e.ok);
        let refused_back = ended
            .last()
            .is_some_and(|e| e.step == Step::VerifyKept && !e.ok);
        match outcome {
            Outcome::Held if refused_back => format!(
                "NOT REVERTED: {} (kept on the old version) fails its checks, so nothing moved back to it; traffic stays on {}, and the run is still held. Repair {}, then decide again",
                self.from.name, self.to.name, self.from.name
            ),
            Outcome::Incomplete if decided_old => format!(
                "INCOMPLETE: traffic is back on {on} and verified, but {} failed: {} is not a healthy standby",
                failed.join(", "),
                self.to.name
            ),
            Outcome::Held => match &self.experiment {
                Some(e) => format!(
                    "HELD: an A/B experiment sends {}% of new requests to {} (change {}), the rest to {}; end it with `baton ab {} --end --keep new` (finish the cycle) or `--keep old` (roll the change back)",
                    e.percent,
                    self.to.name,
                    self.change.as_ref().map_or("-", |c| c.name.as_str()),
                    self.from.name,
                    self.pair.name
                ),
                None => format!(
                    "HELD: traffic is on {} with change {}, {} is kept on the old version{}; `baton finish {}` updates it, `baton revert {}` goes back to it",
                    self.to.name,
                    self.change.as_ref().map_or("-", |c| c.name.as_str()),
                    self.from.name,
                    self.hold.map_or(String::new(), |d| format!(
                        " for {} (until {})",
                        humantime::format_duration(d),
                        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + d)
                    )),
                    self.pair.name,
                    self.pair.name
                ),
            },
            Outcome::RolledBack if decided_old && self.experiment.is_some() => format!(
                "the A/B experiment ended keeping the old version: all new requests go to {on} again, and the change was rolled back on {}",
                self.to.name
            ),
            Outcome::RolledBack if decided_old => format!(
                "reverted: traffic is back on {on} (verified), and the change was rolled back on {} (verified)",
                self.to.name
            ),
            Outcome::Ok if self.kind == Kind::Restore => format!("done: traffic is back on {on}, {} is the standby", self.from.name),
            Outcome::Ok if self.kind == Kind::Failover => format!("done: traffic is on {on}; {} is marked failed until `baton rejoin {}`", self.from.name, self.pair.name),
            Outcome::Ok if self.reverse => format!("done: change {} rolled back on both hosts; traffic is on {on}, {} is the standby", self.change.as_ref().map_or("-", |c| c.name.as_str()), if on == &self.to.name { &self.from.name } else { &self.to.name }),
            Outcome::Ok => format!("done: traffic is on {on}, {} is the standby", if on == &self.to.name { &self.from.name } else { &self.to.name }),
            Outcome::RolledBack if ended.iter().any(|e| e.step == Step::Switch && e.ok) => format!(
                "failed at {} and undone: traffic moved to {} and was switched back to {on}",
                failed.join(", "),
                self.to.name
            ),
            Outcome::RolledBack if ended.iter().any(|e| e.step == Step::Ramp) => format!(
                "failed at {} and undone: a share of new requests went to {} during the ramp, and all go to {on} again",
                failed.join(", "),
                self.to.name
            ),
            Outcome::RolledBack if ended.iter().any(|e| e.step == Step::Experiment) => format!(
                "failed at {} and undone: a share of new requests went to {} during the A/B experiment, and all go to {on} again",
                failed.join(", "),
                self.to.name
            ),
            Outcome::RolledBack if self.kind == Kind::Rejoin => format!(
                "failed at {}: {} stays marked failed; traffic stayed on {on}",
                failed.join(", "),
                self.to.name
            ),
            Outcome::RolledBack => format!("failed at {} and undone: traffic stayed on {on}", failed.join(", ")),
            Outcome::Incomplete => format!("INCOMPLETE: traffic is on {on} and verified, but {} failed: {} is not a healthy standby", failed.join(", "), self.from.name),
            Outcome::Operator => format!("NEEDS AN OPERATOR: {} failed; traffic was last known on {on}", failed.join(", ")),
            Outcome::NotStarted => format!("did not start: preflight refused ({})", failed.join(", ")),
        }
    }
}
