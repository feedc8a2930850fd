//! The cycle as a pure state machine. Given what kind of run this is and the
//! steps that have ended so far (from the journal), it decides the next
//! step, or the outcome. It knows nothing of SSH, DNS or clocks: the
//! executor performs the step, journals its end, and asks again. Because
//! the decision depends only on the journal, an interrupted run is resumed
//! by the same function once the interrupted step has been resolved
//! (`resolve_interrupted`).

use serde::{Deserialize, Serialize};

/// What kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The full cycle with a change.
    Apply,
    /// Swap roles, no change.
    Switchover,
    /// The primary is dead: verify the standby, fence the old primary,
    /// switch, verify. The old primary is then marked failed.
    Failover,
    /// Make a failed host the standby again: clear any traffic it still
    /// holds, verify it.
    Rejoin,
    /// No host holds a VIP pair's traffic and no run was interrupted: put
    /// the address back on the recorded primary (`to`), which must pass its
    /// checks, and verify through it (`baton recover`).
    Restore,
}

impl Kind {
    /// The kind's name in journals and output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Apply => "apply",
            Kind::Switchover => "switchover",
            Kind::Failover => "failover",
            Kind::Rejoin => "rejoin",
            Kind::Restore => "restore",
        }
    }
}

/// One step of a cycle. `from`/`to` are the old and the new primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Config, lock, both hosts reachable and healthy, traffic where recorded.
    Preflight,
    /// Apply the change to the standby (`to`).
    ApplyStandby,
    /// Verify the standby directly.
    VerifyStandby,
    /// Move traffic `from` → `to` (compare-and-swap).
    Switch,
    /// Verify through the service address: the answer comes from `to`.
    VerifyService,
    /// Wait until `from` no longer receives traffic.
    Drain,
    /// Apply the change to the old primary (`from`).
    ApplyOldPrimary,
    /// Verify the old primary directly; it is now the standby.
    VerifyOldPrimary,
    /// Undo: move traffic back `to` → `from`.
    SwitchBack,
    /// Undo: the change's rollback steps on the standby (`to`).
    RollbackStandby,
    /// Failover: make sure the old primary (`from`) holds no traffic (the
    /// fence command, removing the VIP if it still answers over SSH, and
    /// proving that no other host answers for the VIP). Also, with role
    /// hooks, an old primary that did not follow the new one.
    Fence,
    /// Rejoin: the rejoining host (`to`) gives up any traffic it came back
    /// with (a VIP it still holds is removed over SSH). Never the fence
    /// command: the host is repaired, not dead. Journals written before
    /// this step existed call it `fence` in a rejoin.
    Release,
    /// Roles: the old primary (`from`) stops accepting writes and flushes
    /// (the pair's `demote` hook).
    Demote,
    /// Roles: wait until the standby's (`to`) replication position reaches
    /// the old primary's final one (within `max_lag`); in a failover, check
    /// that it is within `max_lag_on_failover` of the last one seen.
    CatchUp,
    /// Roles: the standby (`to`) becomes writable (`promote`). From here on
    /// the old primary must never take writes again.
    Promote,
    /// Roles: the old primary (`from`) becomes a standby of the new one
    /// (`follow`, rewinding first if it must); in a rejoin, the repaired
    /// host (`to`) follows the primary.
    Follow,
    /// Roles, undo: the old primary (`from`) accepts writes again after a
    /// hand-over that stopped before `promote` (`resume`).
    Resume,
    /// A ramp (behind a balancer): a growing share of new requests to the
    /// standby (`to`), step by step, each step compared between the two
    /// hosts; the last step is the switch that follows.
    Ramp,
    /// An A/B experiment (behind a balancer): a fixed share of new
    /// requests to the standby (`to`), sampled and compared with the old
    /// primary every interval while baton watches; ending well, the run is
    /// held with the split until the operator decides.
    Experiment,
    /// The operator's decision that ends a held run (`baton ab PAIR --end
    /// --keep new|old`, `baton finish`, `baton revert`): ok goes on (the
    /// experiment's switch, the hold's update of the old primary), not ok
    /// undoes the run (a switch back, verified, then the change's
    /// rollback, verified). Journaled as one record, with no begin: it
    /// performs nothing.
    Decide,
    /// After the operator decided to keep the old version (a revert, or an
    /// experiment ended keeping the old one), before traffic goes back:
    /// verify the old primary (`from`) directly. When it fails, nothing
    /// moves and the run is held again.
    VerifyKept,
    /// Then, once traffic went back: verify through the service address
    /// that the old primary (`from`) answers.
    VerifyBack,
    /// Then wait until the updated host (`to`) no longer receives traffic
    /// (the drain, in the other direction), before its change is rolled
    /// back.
    DrainBack,
    /// Then, after the change's rollback on the updated host (`to`),
    /// verify it directly: it is the standby again, on the old version.
    VerifyRolledBack,
}

/// What a run's steps are made of besides its kind, fixed when it starts
/// (the start record says which, so that a run is recovered with the
/// steps it began with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The plain cycle.
    Plain,
    /// With role hooks: the primary role is handed over too.
    Roles,
    /// An apply ramped through a balancer (`--ramp`): the standby gets a
    /// growing share of requests before the switch.
    Ramp,
    /// An apply with an A/B experiment (`baton ab`): the standby gets a
    /// fixed share of requests, and the run is held until the operator
    /// decides.
    Experiment,
    /// An apply with a hold (`apply --hold`): after the switch and the
    /// drain the old primary is not updated; the run is held, the old
    /// primary a warm standby on the old version, until the operator
    /// finishes it (the old primary updated) or reverts it (traffic back,
    /// the change rolled back).
    Hold,
}

impl Shape {
    /// The shape of a run from its start record's flags (at most one of
    /// them is set: a run is refused before it starts otherwise).
    pub fn of(roles: bool, ramp: bool, experiment: bool, hold: bool) -> Shape {
        match (roles, ramp, experiment, hold) {
            (true, ..) => Shape::Roles,
            (false, true, ..) => Shape::Ramp,
            (false, false, true, _) => Shape::Experiment,
            (false, false, false, true) => Shape::Hold,
            (false, false, false, false) => Shape::Plain,
        }
    }
}

impl Step {
    /// The step's name in journals and output.
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::ApplyStandby => "apply_standby",
            Step::VerifyStandby => "verify_standby",
            Step::Switch => "switch",
            Step::VerifyService => "verify_service",
            Step::Drain => "drain",
            Step::ApplyOldPrimary => "apply_old_primary",
            Step::VerifyOldPrimary => "verify_old_primary",
            Step::SwitchBack => "switch_back",
            Step::RollbackStandby => "rollback_standby",
            Step::Fence => "fence",
            Step::Release => "release",
            Step::Demote => "demote",
            Step::CatchUp => "catch_up",
            Step::Promote => "promote",
            Step::Follow => "follow",
            Step::Resume => "resume",
            Step::Ramp => "ramp",
            Step::Experiment => "experiment",
            Step::Decide => "decide",
            Step::VerifyKept => "verify_kept",
            Step::VerifyBack => "verify_back",
            Step::DrainBack => "drain_back",
            Step::VerifyRolledBack => "verify_rolled_back",
        }
    }

    /// The host(s) the step concerns in a run of `kind` from `from` to
    /// `to`, as progress and `plan` show them.
    pub fn concerns(self, kind: Kind, from: &str, to: &str) -> String {
        match self {
            Step::Preflight => format!("{from},{to}"),
            Step::ApplyStandby
            | Step::VerifyStandby
            | Step::RollbackStandby
            | Step::Release
            | Step::Promote
            | Step::Decide
            | Step::DrainBack
            | Step::VerifyRolledBack => to.to_string(),
            // A rejoin's repaired host follows; otherwise the old primary.
            Step::Follow if kind == Kind::Rejoin => to.to_string(),
            Step::ApplyOldPrimary
            | Step::VerifyOldPrimary
            | Step::Drain
            | Step::VerifyKept
            | Step::Fence
            | Step::Demote
            | Step::Follow
            | Step::Resume => from.to_string(),
            Step::CatchUp => format!("{to}<-{from}"),
            Step::Switch | Step::Ramp | Step::Experiment => format!("{from}->{to}"),
            Step::SwitchBack => format!("{to}->{from}"),
            Step::VerifyService => format!("service->{to}"),
            Step::VerifyBack => format!("service->{from}"),
        }
    }

    /// Whether the step moves traffic (its interruption must be resolved
    /// by asking where traffic is, never by guessing).
    pub fn moves_traffic(self) -> bool {
        matches!(
            self,
            Step::Switch | Step::SwitchBack | Step::Ramp | Step::Experiment
        )
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything done.
    Ok,
    /// Held for the operator's decision (an A/B experiment's split): the
    /// run is not finished, and no finish record is written.
    Held,
    /// Failed before or at the switch and undone: traffic on the old primary.
    RolledBack,
    /// Traffic moved and verified, but the old primary is not updated/healthy.
    Incomplete,
    /// An undo step failed: someone must look.
    Operator,
    /// Preflight refused: nothing was changed.
    NotStarted,
}

impl Outcome {
    /// The outcome's name in journals, JSON and output.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Held => "held",
            Outcome::RolledBack => "rolled_back",
            Outcome::Incomplete => "incomplete",
            Outcome::Operator => "operator",
            Outcome::NotStarted => "not_started",
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run this step.
    Run(Step),
    /// The run is over.
    Finish(Outcome),
}

/// A step that ended, as the journal records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// Which step.
    pub step: Step,
    /// Whether it succeeded.
    pub ok: bool,
}

/// The forward sequence of a kind of run, for a pair with role hooks
/// (`roles`: a replicated service whose primary role is handed over) or
/// without.
pub fn sequence_for(kind: Kind, shape: Shape) -> Vec<Step> {
    use Step::*;
    match (shape, kind) {
        (Shape::Plain, _) => return sequence(kind),
        (Shape::Ramp, Kind::Apply) => {
            let mut steps = sequence(kind);
            steps.insert(3, Ramp);
            return steps;
        }
        (Shape::Experiment, Kind::Apply) => {
            let mut steps = sequence(kind);
            steps.splice(3..3, [Experiment, Decide]);
            return steps;
        }
        (Shape::Hold, Kind::Apply) => {
            let mut steps = sequence(kind);
            steps.insert(6, Decide);
            return steps;
        }
        (Shape::Ramp | Shape::Experiment | Shape::Hold, _) => return sequence(kind),
        (Shape::Roles, _) => {}
    }
    match kind {
        Kind::Apply => vec![
            Preflight,
            ApplyStandby,
            VerifyStandby,
            Demote,
            CatchUp,
            Promote,
            Switch,
            VerifyService,
            Drain,
            Follow,
            ApplyOldPrimary,
            VerifyOldPrimary,
        ],
        Kind::Switchover => vec![
            Preflight,
            VerifyStandby,
            Demote,
            CatchUp,
            Promote,
            Switch,
            VerifyService,
            Drain,
            Follow,
            VerifyOldPrimary,
        ],
        Kind::Failover => vec![
            Preflight,
            VerifyStandby,
            Fence,
            CatchUp,
            Promote,
            Switch,
            VerifyService,
        ],
        Kind::Rejoin => vec![Preflight, Release, Follow, VerifyStandby],
        Kind::Restore => sequence(Kind::Restore),
    }
}

/// The forward sequence of a kind of run (a pair without role hooks).
pub fn sequence(kind: Kind) -> Vec<Step> {
    match kind {
        Kind::Apply => vec![
            Step::Preflight,
            Step::ApplyStandby,
            Step::VerifyStandby,
            Step::Switch,
            Step::VerifyService,
            Step::Drain,
            Step::ApplyOldPrimary,
            Step::VerifyOldPrimary,
        ],
        Kind::Switchover => vec![
            Step::Preflight,
            Step::VerifyStandby,
            Step::Switch,
            Step::VerifyService,
            Step::Drain,
        ],
        Kind::Failover => vec![
            Step::Preflight,
            Step::VerifyStandby,
            Step::Fence,
            Step::Switch,
            Step::VerifyService,
        ],
        Kind::Rejoin => vec![Step::Preflight, Step::Release, Step::VerifyStandby],
        Kind::Restore => vec![Step::Preflight, Step::Switch, Step::VerifyService],
    }
}

/// How many times a hand-over with role hooks tries its switch: after
/// `promote` traffic can only go forward, to the new primary.
pub const SWITCH_ATTEMPTS: usize = 2;

/// Decides the next step from the steps ended so far (a pair without role
/// hooks).
pub fn decide(kind: Kind, ended: &[Ended]) -> Next {
    decide_for(kind, Shape::Plain, ended)
}

/// Decides the next step from the steps ended so far, for a pair with role
/// hooks (`roles`) or without. With roles, a hand-over that fails before
/// `promote` is undone (`resume` makes the old primary writable again, then
/// the change is rolled back); once `promote` ran, nothing ever makes the
/// old primary writable again or moves traffic back to it: a failure then
/// is for an operator, or leaves the run incomplete with the old primary
/// demoted.
pub fn decide_for(kind: Kind, shape: Shape, ended: &[Ended]) -> Next {
    let roles = shape == Shape::Roles;
    let forward = sequence_for(kind, shape);
    let undo_standby = |ended: &[Ended]| {
        if kind == Kind::Apply && !ran(ended, Step::RollbackStandby) {
            Next::Run(Step::RollbackStandby)
        } else {
            Next::Finish(Outcome::RolledBack)
        }
    };
    let Some(last) = ended.last().copied() else {
        return Next::Run(Step::Preflight);
    };
    // An older journal's rejoin called its release step `fence`.
    let last = match (kind, last.step) {
        (Kind::Rejoin, Step::Fence) => Ended {
            step: Step::Release,
            ok: last.ok,
        },
        _ => last,
    };
    if matches!(kind, Kind::Failover | Kind::Rejoin | Kind::Restore) {
        // No undo: the old primary is dead (failover), traffic is not
        // touched (rejoin), or there was none to go back to (restore).
        // Stop at the first failure.
        return match (last.step, last.ok) {
            (step, true) => next_forward(&forward, step),
            (Step::Preflight, false) => Next::Finish(Outcome::NotStarted),
            // Nothing has changed yet: the standby is not fit to take over,
            // or the failed host stays failed.
            (Step::VerifyStandby, false) => Next::Finish(Outcome::RolledBack),
            _ => Next::Finish(Outcome::Operator),
        };
    }
    if roles {
        return match (last.step, last.ok) {
            (Step::RollbackStandby, true) => Next::Finish(Outcome::RolledBack),
            (Step::RollbackStandby | Step::Resume, false) => Next::Finish(Outcome::Operator),
            (Step::Resume, true) => undo_standby(ended),
            (Step::Preflight, false) => Next::Finish(Outcome::NotStarted),
            (Step::ApplyStandby | Step::VerifyStandby, false) => undo_standby(ended),
            // Before promote: the old primary takes writes again.
            (Step::Demote | Step::CatchUp, false) => Next::Run(Step::Resume),
            // After promote the only way is forward: a failed switch (which
            // put traffic back on the demoted old primary, where nothing
            // can be written) is tried once more.
            (Step::Switch, false)
                if ended.iter().filter(|e| e.step == Step::Switch).count() < SWITCH_ATTEMPTS =>
            {
                Next::Run(Step::Switch)
            }
            // Never back to the old primary.
            (Step::Promote | Step::Switch | Step::VerifyService, false) => {
                Next::Finish(Outcome::Operator)
            }
            (Step::Drain, false) => next_forward(&forward, Step::Drain),
            // The old primary did not become a standby: it stays demoted,
            // and is fenced (the fence command when one is configured; a
            // VIP it might still hold removed), then the run is incomplete.
            (Step::Follow, false) if !ran(ended, Step::Fence) => Next::Run(Step::Fence),
            (Step::Fence, true) if ran(ended, Step::Follow) => Next::Finish(Outcome::Incomplete),
            (Step::Follow | Step::ApplyOldPrimary | Step::VerifyOldPrimary, false) => {
                Next::Finish(Outcome::Incomplete)
            }
            // A ramp or an experiment is never part of a hand-over (refused
            // before it starts).
            (
                Step::SwitchBack
                | Step::Fence
                | Step::Release
                | Step::Ramp
                | Step::Experiment
                | Step::Decide
                | Step::VerifyKept
                | Step::VerifyBack
                | Step::DrainBack
                | Step::VerifyRolledBack,
                false,
            ) => Next::Finish(Outcome::Operator),
            (step, true) => next_forward(&forward, step),
        };
    }
    // The operator decided to keep the old version (a revert, or an
    // experiment ended so): the way back is verified at every step.
    let reverting = ended
        .iter()
        .rev()
        .find(|e| e.step == Step::Decide)
        .is_some_and(|e| !e.ok);
    match (last.step, last.ok) {
        // The held host is checked before anything moves back to it; when
        // it fails, the run is held again, nothing changed.
        (Step::Decide, false) => Next::Run(Step::VerifyKept),
        (Step::VerifyKept, true) => Next::Run(Step::SwitchBack),
        (Step::VerifyKept, false) => Next::Finish(Outcome::Held),
        (Step::SwitchBack, true) if reverting => Next::Run(Step::VerifyBack),
        // A ramp or an experiment that failed left the standby with a
        // share: it drains, and waits as the standby again, before its
        // change is rolled back.
        (Step::SwitchBack, true)
            if ended
                .iter()
                .any(|e| matches!(e.step, Step::Ramp | Step::Experiment) && !e.ok) =>
        {
            Next::Run(Step::DrainBack)
        }
        (Step::VerifyBack, true) => Next::Run(Step::DrainBack),
        // Traffic is back on the old primary either way: go on.
        (Step::DrainBack, _) => Next::Run(Step::RollbackStandby),
        (Step::RollbackStandby, true) if reverting => Next::Run(Step::VerifyRolledBack),
        (Step::VerifyRolledBack, true) => Next::Finish(Outcome::RolledBack),
        // Back on the old primary, which now fails its checks.
        (Step::VerifyBack, false) => Next::Finish(Outcome::Operator),
        // Traffic is on the verified old primary; the standby is not well.
        (Step::VerifyRolledBack, false) => Next::Finish(Outcome::Incomplete),
        // Undo steps decide the end.
        (Step::RollbackStandby, true) => Next::Finish(Outcome::RolledBack),
        (Step::RollbackStandby, false) | (Step::SwitchBack, false) => {
            Next::Finish(Outcome::Operator)
        }
        (Step::SwitchBack, true) => undo_standby(ended),
        // Forward failures.
        (Step::Preflight, false) => Next::Finish(Outcome::NotStarted),
        (Step::ApplyStandby | Step::VerifyStandby, false) => undo_standby(ended),
        // A failed switch may have half happened, and a failed ramp or
        // experiment (or the decision to keep the old version) leaves a
        // share on the standby: put traffic back first.
        (Step::Switch | Step::VerifyService | Step::Ramp | Step::Experiment, false) => {
            Next::Run(Step::SwitchBack)
        }
        // The step before the operator's decision (a watched experiment,
        // the drain of a hold) holds the run until they decide.
        (step, true) if next_forward(&forward, step) == Next::Run(Step::Decide) => {
            Next::Finish(Outcome::Held)
        }
        // A hold's drain that failed: traffic is safe on the new primary,
        // held all the same.
        (Step::Drain, false) if next_forward(&forward, Step::Drain) == Next::Run(Step::Decide) => {
            Next::Finish(Outcome::Held)
        }
        // Traffic is already safe on the new primary: go on.
        (Step::Drain, false) => next_forward(&forward, Step::Drain),
        (Step::ApplyOldPrimary | Step::VerifyOldPrimary, false) => {
            Next::Finish(Outcome::Incomplete)
        }
        // Fencing, releasing and the role steps are not part of these runs.
        (
            Step::Fence
            | Step::Release
            | Step::Demote
            | Step::CatchUp
            | Step::Promote
            | Step::Follow
            | Step::Resume,
            false,
        ) => Next::Finish(Outcome::Operator),
        // Forward successes.
        (step, true) => next_forward(&forward, step),
    }
}

fn next_forward(forward: &[Step], after: Step) -> Next {
    match forward.iter().position(|s| *s == after) {
        Some(i) if i + 1 < forward.len() => Next::Run(forward[i + 1]),
        _ => Next::Finish(Outcome::Ok),
    }
}

fn ran(ended: &[Ended], step: Step) -> bool {
    ended.iter().any(|e| e.step == step)
}

/// Which host holds traffic after the steps ended so far: `true` when the
/// new primary (`to`) does. Used to keep the recorded roles true.
pub fn traffic_on_new(ended: &[Ended]) -> bool {
    let mut on_new = false;
    for e in ended {
        match (e.step, e.ok) {
            (Step::Switch, true) => on_new = true,
            (Step::SwitchBack, true) => on_new = false,
            _ => {}
        }
    }
    on_new
}

/// Where traffic was found when resolving an interrupted step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// On the old primary (`from`).
    Old,
    /// On the new primary (`to`).
    New,
    /// On no host (a VIP removed from one host and not yet added).
    Neither,
    /// Split between the two by a balancer's weights (a ramp's step):
    /// both take new requests.
    Split,
    /// Both, somewhere else, or unknowable.
    Unclear,
}

/// How an interrupted step is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Record it as ended with this result, then decide as usual.
    Ended(Ended),
    /// Run it again (it is safe to repeat, and needed).
    Retry,
    /// Only an operator can tell what is safe.
    Operator,
}

/// Resolves a step that began but never ended (the controller died inside
/// it) from where traffic is now. A switch counts as done exactly when
/// traffic is at its target; a switch back that did not finish is run
/// again (it restores traffic to the host verified before the run), and so
/// is an interrupted rollback (rollback steps must be safe to repeat); any
/// other interrupted step counts as failed, so the run is undone rather
/// than trusted. Traffic that is unclear is for an operator.
pub fn resolve_interrupted(kind: Kind, step: Step, holder: Side) -> Resolution {
    resolve_interrupted_for(kind, Shape::Plain, step, holder)
}

/// Resolves an interrupted step of a run that hands the primary role over
/// (`roles`) or not. With roles, once the standby's promotion began there
/// is only forward: an interrupted `promote` runs again (the hooks are
/// idempotent, the old primary is demoted and the standby had caught up),
/// an interrupted switch finishes moving traffic to the new primary, and
/// an interrupted verification of the service runs again.
pub fn resolve_interrupted_for(kind: Kind, shape: Shape, step: Step, holder: Side) -> Resolution {
    let ended = |ok| Resolution::Ended(Ended { step, ok });
    if shape == Shape::Roles {
        match (step, holder) {
            (Step::Switch, Side::Unclear | Side::Split) => return Resolution::Operator,
            (Step::Switch, Side::New) => return ended(true),
            (Step::Switch, Side::Old | Side::Neither)
            | (Step::Promote | Step::VerifyService, _) => return Resolution::Retry,
            _ => {}
        }
    }
    match (step, holder) {
        (Step::Switch | Step::SwitchBack, Side::Unclear) => Resolution::Operator,
        (Step::Switch, Side::New) => ended(true),
        // A failover has no way back: finish moving traffic to the standby.
        (Step::Switch, Side::Old | Side::Neither)
            if matches!(kind, Kind::Failover | Kind::Restore) =>
        {
            Resolution::Retry
        }
        (Step::Switch, Side::Old | Side::Neither) => ended(false),
        // A failover's verification through the service address, cut off:
        // there is no way back, and the checks only read, so they run
        // again (counting it failed would leave a healthy new primary for
        // an operator).
        (Step::VerifyService, _) if matches!(kind, Kind::Failover | Kind::Restore) => {
            Resolution::Retry
        }
        (Step::SwitchBack, Side::Old) => ended(true),
        // A balancer's switch back is one line and forced: a share left on
        // the standby by a ramp is taken back by running it again.
        (Step::SwitchBack, Side::New | Side::Neither | Side::Split) => Resolution::Retry,
        // A balancer's switch is one line: split, it did not happen.
        (Step::Switch, Side::Split) => ended(false),
        // A ramp never counts as done when interrupted: its comparison is
        // lost, so traffic goes back and the change is rolled back.
        (Step::Ramp, _) => ended(false),
        // An experiment whose watcher died: a split still in place is what
        // the operator asked for, held (unwatched) until they decide;
        // anything else goes back like a failed ramp.
        (Step::Experiment, Side::Split) => ended(true),
        (Step::Experiment, _) => ended(false),
        // Rollback steps restore a known state and must be safe to repeat;
        // fencing, releasing, resuming and following are idempotent.
        (Step::RollbackStandby | Step::Fence | Step::Release | Step::Resume | Step::Follow, _) => {
            Resolution::Retry
        }
        // A promote that may or may not have happened: which host takes
        // writes must be asked, never guessed.
        (Step::Promote, _) => Resolution::Operator,
        // A revert's checks and its drain are safe to repeat.
        (Step::VerifyKept | Step::VerifyBack | Step::DrainBack | Step::VerifyRolledBack, _) => {
            Resolution::Retry
        }
        _ => ended(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(step: Step) -> Ended {
        Ended { step, ok: true }
    }
    fn fail(step: Step) -> Ended {
        Ended { step, ok: false }
    }

    /// Runs the machine to its end, failing the steps listed.
    fn run(kind: Kind, failing: &[Step]) -> (Vec<Step>, Outcome) {
        run_for(kind, Shape::Plain, failing)
    }

    /// Runs the machine of a pair with role hooks or without to its end,
    /// failing the steps listed (each time it runs).
    fn run_for(kind: Kind, shape: Shape, failing: &[Step]) -> (Vec<Step>, Outcome) {
        run_deciding(kind, shape, None, failing)
    }

    /// As `run_for`; when the run is held the first time, the operator's
    /// `decision` (keep the new version: `true`) is recorded as a `decide`
    /// step and the run goes on. Without one, a held run ends held.
    fn run_deciding(
        kind: Kind,
        shape: Shape,
        decision: Option<bool>,
        failing: &[Step],
    ) -> (Vec<Step>, Outcome) {
        let mut ended = Vec::new();
        let mut steps = Vec::new();
        let mut decision = decision;
        loop {
            let step = match decide_for(kind, shape, &ended) {
                Next::Finish(Outcome::Held) if decision.is_some() => {
                    let keep_new = decision.take().unwrap_or_default();
                    steps.push(Step::Decide);
                    ended.push(Ended {
                        step: Step::Decide,
                        ok: keep_new,
                    });
                    continue;
                }
                Next::Finish(o) => return (steps, o),
                Next::Run(s) => s,
            };
            assert!(steps.len() < 30, "runaway: {steps:?}");
            steps.push(step);
            ended.push(Ended {
                step,
                ok: !failing.contains(&step),
            });
        }
    }

    use Step::*;

    #[test]
    fn apply_all_success() {
        let (steps, o) = run(Kind::Apply, &[]);
        assert_eq!(steps, sequence(Kind::Apply));
        assert_eq!(o, Outcome::Ok);
    }

    #[test]
    fn switchover_all_success() {
        let (steps, o) = run(Kind::Switchover, &[]);
        assert_eq!(
            steps,
            vec![Preflight, VerifyStandby, Switch, VerifyService, Drain]
        );
        assert_eq!(o, Outcome::Ok);
    }

    #[test]
    fn preflight_failure_changes_nothing() {
        assert_eq!(
            run(Kind::Apply, &[Preflight]),
            (vec![Preflight], Outcome::NotStarted)
        );
        assert_eq!(
            run(Kind::Switchover, &[Preflight]),
            (vec![Preflight], Outcome::NotStarted)
        );
    }

    #[test]
    fn standby_failures_roll_back_without_touching_traffic() {
        for failing in [ApplyStandby, VerifyStandby] {
            let (steps, o) = run(Kind::Apply, &[failing]);
            assert_eq!(o, Outcome::RolledBack, "{failing:?}");
            assert_eq!(*steps.last().unwrap(), RollbackStandby);
            assert!(
                !steps.contains(&Switch),
                "traffic never moves after {failing:?}"
            );
        }
        // A switchover has no change to roll back.
        let (steps, o) = run(Kind::Switchover, &[VerifyStandby]);
        assert_eq!(
            (steps, o),
            (vec![Preflight, VerifyStandby], Outcome::RolledBack)
        );
    }

    #[test]
    fn switch_and_service_failures_switch_back_then_roll_back() {
        for failing in [Switch, VerifyService] {
            let (steps, o) = run(Kind::Apply, &[failing]);
            assert_eq!(o, Outcome::RolledBack, "{failing:?}");
            let i = steps.iter().position(|s| *s == failing).unwrap();
            assert_eq!(
                &steps[i + 1..],
                &[SwitchBack, RollbackStandby],
                "{failing:?}"
            );
            let (steps, o) = run(Kind::Switchover, &[failing]);
            assert_eq!(o, Outcome::RolledBack);
            assert_eq!(*steps.last().unwrap(), SwitchBack);
        }
    }

    #[test]
    fn failed_undo_needs_an_operator() {
        assert_eq!(
            run(Kind::Apply, &[VerifyService, SwitchBack]).1,
            Outcome::Operator
        );
        assert_eq!(
            run(Kind::Apply, &[VerifyStandby, RollbackStandby]).1,
            Outcome::Operator
        );
        assert_eq!(
            run(Kind::Apply, &[Switch, RollbackStandby]).1,
            Outcome::Operator
        );
    }

    #[test]
    fn drain_failure_goes_on() {
        let (steps, o) = run(Kind::Apply, &[Drain]);
        assert_eq!(o, Outcome::Ok);
        assert!(steps.ends_with(&[Drain, ApplyOldPrimary, VerifyOldPrimary]));
        assert_eq!(run(Kind::Switchover, &[Drain]).1, Outcome::Ok);
    }

    #[test]
    fn old_primary_failures_are_incomplete() {
        assert_eq!(
            run(Kind::Apply, &[ApplyOldPrimary]),
            (sequence(Kind::Apply)[..7].to_vec(), Outcome::Incomplete)
        );
        assert_eq!(run(Kind::Apply, &[VerifyOldPrimary]).1, Outcome::Incomplete);
    }

    #[test]
    fn every_run_ends_with_traffic_on_a_verified_host() {
        // Exhaustively: any set of failing steps. Traffic ends on the new
        // primary only if VerifyService passed and no switch back happened.
        let all = [
            Preflight,
            ApplyStandby,
            VerifyStandby,
            Switch,
            VerifyService,
            Drain,
            ApplyOldPrimary,
            VerifyOldPrimary,
            SwitchBack,
            RollbackStandby,
        ];
        for kind in [Kind::Apply, Kind::Switchover] {
            for mask in 0u32..(1 << all.len()) {
                let failing: Vec<Step> = all
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, s)| *s)
                    .collect();
                let mut ended = Vec::new();
                let outcome = loop {
                    match decide(kind, &ended) {
                        Next::Finish(o) => break o,
                        Next::Run(s) => ended.push(Ended {
                            step: s,
                            ok: !failing.contains(&s),
                        }),
                    }
                };
                let on_new = traffic_on_new(&ended);
                if on_new && ended.contains(&fail(SwitchBack)) {
                    // Putting traffic back failed: only an operator can say what is safe.
                    assert_eq!(outcome, Outcome::Operator, "{kind:?} {failing:?}");
                } else if on_new {
                    assert!(
                        ended.contains(&ok(VerifyService)),
                        "{kind:?} {failing:?}: traffic on an unverified host"
                    );
                    assert!(
                        matches!(outcome, Outcome::Ok | Outcome::Incomplete),
                        "{kind:?} {failing:?}: {outcome:?}"
                    );
                } else {
                    assert!(
                        matches!(
                            outcome,
                            Outcome::RolledBack | Outcome::NotStarted | Outcome::Operator
                        ),
                        "{kind:?} {failing:?}: {outcome:?} with traffic on the old primary"
                    );
                }
                // Each step runs at most once.
                for s in all {
                    assert!(
                        ended.iter().filter(|e| e.step == s).count() <= 1,
                        "{kind:?} {failing:?}: {s:?} twice"
                    );
                }
            }
        }
    }

    #[test]
    fn resuming_from_every_point_continues_the_same_run() {
        // Cutting a run's journal anywhere and deciding again gives the
        // step the uninterrupted run took next.
        for failing in [
            vec![],
            vec![VerifyService],
            vec![ApplyStandby],
            vec![VerifyOldPrimary],
        ] {
            let mut ended = Vec::new();
            while let Next::Run(s) = decide(Kind::Apply, &ended) {
                ended.push(Ended {
                    step: s,
                    ok: !failing.contains(&s),
                });
            }
            for cut in 0..ended.len() {
                assert_eq!(
                    decide(Kind::Apply, &ended[..cut]),
                    Next::Run(ended[cut].step)
                );
            }
        }
    }

    #[test]
    fn interrupted_steps_resolve_from_reality() {
        use Resolution::{Ended as E, Operator as Op, Retry};
        assert_eq!(
            resolve_interrupted(Kind::Apply, Switch, Side::New),
            E(ok(Switch))
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, Switch, Side::Old),
            E(fail(Switch))
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, Switch, Side::Neither),
            E(fail(Switch))
        );
        assert_eq!(resolve_interrupted(Kind::Apply, Switch, Side::Unclear), Op);
        assert_eq!(
            resolve_interrupted(Kind::Apply, SwitchBack, Side::Old),
            E(ok(SwitchBack))
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, SwitchBack, Side::New),
            Retry
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, SwitchBack, Side::Neither),
            Retry
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, SwitchBack, Side::Unclear),
            Op
        );
        // Everything else counts as failed, whatever traffic says.
        for s in [
            Preflight,
            ApplyStandby,
            VerifyStandby,
            VerifyService,
            Drain,
            ApplyOldPrimary,
            VerifyOldPrimary,
        ] {
            for h in [Side::Old, Side::New, Side::Neither, Side::Unclear] {
                assert_eq!(resolve_interrupted(Kind::Apply, s, h), E(fail(s)));
            }
        }
        // An interrupted rollback is run again: rollback steps must be safe to repeat.
        assert_eq!(
            resolve_interrupted(Kind::Apply, RollbackStandby, Side::Old),
            Retry
        );
        // A run killed inside its switch, with traffic already moved, goes on
        // to verify through the service (the standby was verified before).
        let mut ended = vec![ok(Preflight), ok(ApplyStandby), ok(VerifyStandby)];
        if let E(e) = resolve_interrupted(Kind::Apply, Switch, Side::New) {
            ended.push(e);
        }
        assert_eq!(decide(Kind::Apply, &ended), Next::Run(VerifyService));
        // Killed between removing and adding the VIP: the switch failed, and
        // the switch back restores traffic to the old primary.
        let mut ended = vec![ok(Preflight), ok(ApplyStandby), ok(VerifyStandby)];
        if let E(e) = resolve_interrupted(Kind::Apply, Switch, Side::Neither) {
            ended.push(e);
        }
        assert_eq!(decide(Kind::Apply, &ended), Next::Run(SwitchBack));
        // Retrying a switch back means deciding the same step again.
        let ended = vec![
            ok(Preflight),
            ok(ApplyStandby),
            ok(VerifyStandby),
            ok(Switch),
            fail(VerifyService),
        ];
        assert_eq!(decide(Kind::Apply, &ended), Next::Run(SwitchBack));
    }

    #[test]
    fn failover_has_no_undo() {
        assert_eq!(
            run(Kind::Failover, &[]),
            (
                vec![Preflight, VerifyStandby, Fence, Switch, VerifyService],
                Outcome::Ok
            )
        );
        assert_eq!(run(Kind::Failover, &[Preflight]).1, Outcome::NotStarted);
        assert_eq!(
            run(Kind::Failover, &[VerifyStandby]),
            (vec![Preflight, VerifyStandby], Outcome::RolledBack)
        );
        // Never switch without a successful fence.
        assert_eq!(
            run(Kind::Failover, &[Fence]),
            (vec![Preflight, VerifyStandby, Fence], Outcome::Operator)
        );
        assert_eq!(run(Kind::Failover, &[Switch]).1, Outcome::Operator);
        assert_eq!(run(Kind::Failover, &[VerifyService]).1, Outcome::Operator);
        // Interrupted: the switch is finished, the fence repeated.
        assert_eq!(
            resolve_interrupted(Kind::Failover, Switch, Side::Old),
            Resolution::Retry
        );
        assert_eq!(
            resolve_interrupted(Kind::Failover, Switch, Side::New),
            Resolution::Ended(ok(Switch))
        );
        assert_eq!(
            resolve_interrupted(Kind::Failover, Fence, Side::Unclear),
            Resolution::Retry
        );
        // Interrupted while verifying the service: verified again, not
        // counted failed (which would need an operator).
        for side in [Side::New, Side::Old, Side::Neither, Side::Unclear] {
            assert_eq!(
                resolve_interrupted(Kind::Failover, VerifyService, side),
                Resolution::Retry,
                "{side:?}"
            );
        }
        // An apply's interrupted verification still counts failed.
        assert_eq!(
            resolve_interrupted(Kind::Apply, VerifyService, Side::New),
            Resolution::Ended(fail(VerifyService))
        );
    }

    #[test]
    fn rejoin_releases_then_verifies_and_never_fences() {
        assert_eq!(
            run(Kind::Rejoin, &[]),
            (vec![Preflight, Release, VerifyStandby], Outcome::Ok)
        );
        assert_eq!(run(Kind::Rejoin, &[VerifyStandby]).1, Outcome::RolledBack);
        assert_eq!(run(Kind::Rejoin, &[Release]).1, Outcome::Operator);
        // A rejoin journaled before `release` existed (its step was called
        // `fence`) goes on to verify, not straight to its end.
        assert_eq!(
            decide(Kind::Rejoin, &[ok(Preflight), ok(Fence)]),
            Next::Run(VerifyStandby)
        );
        assert_eq!(
            decide(Kind::Rejoin, &[ok(Preflight), fail(Fence)]),
            Next::Finish(Outcome::Operator)
        );
        assert_eq!(
            resolve_interrupted(Kind::Rejoin, Release, Side::Unclear),
            Resolution::Retry
        );
    }

    #[test]
    fn restore_takes_the_address_back_and_has_no_undo() {
        assert_eq!(
            run(Kind::Restore, &[]),
            (vec![Preflight, Switch, VerifyService], Outcome::Ok)
        );
        assert_eq!(run(Kind::Restore, &[Preflight]).1, Outcome::NotStarted);
        assert_eq!(run(Kind::Restore, &[Switch]).1, Outcome::Operator);
        assert_eq!(run(Kind::Restore, &[VerifyService]).1, Outcome::Operator);
        // Interrupted inside the switch: finish putting the address back.
        assert_eq!(
            resolve_interrupted(Kind::Restore, Switch, Side::Neither),
            Resolution::Retry
        );
        assert_eq!(
            resolve_interrupted(Kind::Restore, Switch, Side::New),
            Resolution::Ended(ok(Switch))
        );
        assert!(traffic_on_new(&[ok(Preflight), ok(Switch)]));
    }

    #[test]
    fn outcome_names_match_their_serialization() {
        for o in [
            Outcome::Ok,
            Outcome::RolledBack,
            Outcome::Incomplete,
            Outcome::Operator,
            Outcome::NotStarted,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.name());
        }
    }

    fn run_roles(kind: Kind, failing: &[Step]) -> (Vec<Step>, Outcome) {
        run_for(kind, Shape::Roles, failing)
    }

    #[test]
    fn with_roles_the_hand_over_demotes_waits_promotes_then_switches() {
        let (steps, o) = run_roles(Kind::Apply, &[]);
        assert_eq!(o, Outcome::Ok);
        assert_eq!(steps, sequence_for(Kind::Apply, Shape::Roles));
        let at = |s: Step| steps.iter().position(|x| *x == s).unwrap();
        assert!(at(Demote) < at(CatchUp) && at(CatchUp) < at(Promote));
        assert!(at(Promote) < at(Switch) && at(VerifyService) < at(Follow));
        assert!(at(Follow) < at(ApplyOldPrimary));
        let (steps, o) = run_roles(Kind::Switchover, &[]);
        assert_eq!(o, Outcome::Ok);
        assert_eq!(
            steps,
            [
                Preflight,
                VerifyStandby,
                Demote,
                CatchUp,
                Promote,
                Switch,
                VerifyService,
                Drain,
                Follow,
                VerifyOldPrimary
            ]
        );
        assert_eq!(
            run_roles(Kind::Rejoin, &[]).0,
            [Preflight, Release, Follow, VerifyStandby]
        );
        // Without roles, nothing changes.
        assert_eq!(
            sequence_for(Kind::Apply, Shape::Plain),
            sequence(Kind::Apply)
        );
    }

    #[test]
    fn with_roles_a_failure_before_promote_resumes_the_old_primary_and_rolls_back() {
        for failing in [Demote, CatchUp] {
            let (steps, o) = run_roles(Kind::Apply, &[failing]);
            assert_eq!(o, Outcome::RolledBack, "{failing:?}");
            assert_eq!(
                steps[steps.len() - 2..],
                [Resume, RollbackStandby],
                "{failing:?}"
            );
            assert!(!steps.contains(&Promote) && !steps.contains(&Switch));
            let (steps, o) = run_roles(Kind::Switchover, &[failing]);
            assert_eq!(o, Outcome::RolledBack);
            assert_eq!(steps.last(), Some(&Resume));
        }
        // A resume that fails leaves the old primary demoted: an operator.
        assert_eq!(
            run_roles(Kind::Apply, &[CatchUp, Resume]).1,
            Outcome::Operator
        );
    }

    #[test]
    fn with_roles_nothing_goes_back_to_the_old_primary_once_the_standby_was_promoted() {
        for failing in [Promote, Switch, VerifyService] {
            let (steps, o) = run_roles(Kind::Apply, &[failing]);
            assert_eq!(o, Outcome::Operator, "{failing:?}");
            assert!(
                !steps.contains(&Resume) && !steps.contains(&SwitchBack),
                "{steps:?}"
            );
        }
        for failing in [Follow, ApplyOldPrimary, VerifyOldPrimary] {
            let (steps, o) = run_roles(Kind::Apply, &[failing]);
            assert_eq!(o, Outcome::Incomplete, "{failing:?}");
            assert!(!steps.contains(&Resume) && !steps.contains(&SwitchBack));
            // Only an old primary that did not follow is fenced.
            assert_eq!(steps.contains(&Fence), failing == Follow, "{steps:?}");
        }
        // A failed follow: fenced, then incomplete; a fence that fails too
        // needs an operator.
        let (steps, o) = run_roles(Kind::Switchover, &[Follow]);
        assert_eq!((steps.last(), o), (Some(&Fence), Outcome::Incomplete));
        assert_eq!(
            run_roles(Kind::Switchover, &[Follow, Fence]).1,
            Outcome::Operator
        );
        assert_eq!(run_roles(Kind::Apply, &[Drain]).1, Outcome::Ok);
        // A switch that fails always is tried twice, then an operator.
        let (steps, o) = run_roles(Kind::Switchover, &[Switch]);
        assert_eq!(o, Outcome::Operator);
        assert_eq!(
            steps.iter().filter(|s| **s == Switch).count(),
            SWITCH_ATTEMPTS
        );
        // Once: the second attempt goes on.
        let before = [Preflight, VerifyStandby, Demote, CatchUp, Promote].map(ok);
        let mut ended = before.to_vec();
        ended.push(fail(Switch));
        assert_eq!(
            decide_for(Kind::Switchover, Shape::Roles, &ended),
            Next::Run(Switch)
        );
        ended.push(ok(Switch));
        assert_eq!(
            decide_for(Kind::Switchover, Shape::Roles, &ended),
            Next::Run(VerifyService)
        );
        // Without roles a failed switch is undone, never retried.
        assert_eq!(
            decide(
                Kind::Switchover,
                &[ok(Preflight), ok(VerifyStandby), fail(Switch)]
            ),
            Next::Run(SwitchBack)
        );
    }

    #[test]
    fn with_roles_no_failure_anywhere_makes_two_writable_primaries() {
        // Every subset of failing steps: once promote succeeded, resume
        // never runs and traffic never goes back; a rolled-back run never
        // promoted.
        for kind in [Kind::Apply, Kind::Switchover, Kind::Failover, Kind::Rejoin] {
            let all = sequence_for(kind, Shape::Roles);
            let candidates: Vec<Step> = all
                .iter()
                .copied()
                .chain([Resume, RollbackStandby])
                .collect();
            for mask in 0u32..(1 << candidates.len()) {
                let failing: Vec<Step> = candidates
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, s)| *s)
                    .collect();
                let (steps, o) = run_roles(kind, &failing);
                let promoted = steps
                    .iter()
                    .position(|s| *s == Promote && !failing.contains(s));
                if let Some(p) = promoted {
                    assert!(
                        !steps[p..].contains(&Resume) && !steps[p..].contains(&SwitchBack),
                        "{kind:?} failing {failing:?}: {steps:?}"
                    );
                    assert_ne!(o, Outcome::RolledBack, "{kind:?} failing {failing:?}");
                }
                if steps.contains(&Resume) {
                    assert!(!steps.contains(&Promote), "{kind:?} failing {failing:?}");
                }
            }
        }
    }

    #[test]
    fn with_roles_an_interrupted_promote_is_finished_and_the_rest_is_safe_to_resolve() {
        // Without roles no run has a promote: were one found, it is for an
        // operator.
        assert_eq!(
            resolve_interrupted(Kind::Apply, Promote, Side::Old),
            Resolution::Operator
        );
        let with = |step, side| resolve_interrupted_for(Kind::Switchover, Shape::Roles, step, side);
        // Promotion began: only forward.
        assert_eq!(with(Promote, Side::Old), Resolution::Retry);
        assert_eq!(with(Switch, Side::Old), Resolution::Retry);
        assert_eq!(with(Switch, Side::Neither), Resolution::Retry);
        assert_eq!(with(Switch, Side::New), Resolution::Ended(ok(Switch)));
        assert_eq!(with(Switch, Side::Unclear), Resolution::Operator);
        assert_eq!(with(VerifyService, Side::New), Resolution::Retry);
        // Before it: undone (a failed demote or catch-up resumes).
        assert_eq!(with(Demote, Side::Old), Resolution::Ended(fail(Demote)));
        assert_eq!(with(CatchUp, Side::Old), Resolution::Ended(fail(CatchUp)));
        assert_eq!(with(Resume, Side::Old), Resolution::Retry);
        assert_eq!(
            resolve_interrupted(Kind::Apply, Demote, Side::Old),
            Resolution::Ended(fail(Demote))
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, CatchUp, Side::Old),
            Resolution::Ended(fail(CatchUp))
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, Resume, Side::Old),
            Resolution::Retry
        );
        assert_eq!(
            resolve_interrupted(Kind::Apply, Follow, Side::New),
            Resolution::Retry
        );
    }

    #[test]
    fn each_step_names_the_hosts_it_concerns() {
        assert_eq!(Demote.concerns(Kind::Apply, "db1", "db2"), "db1");
        assert_eq!(Promote.concerns(Kind::Apply, "db1", "db2"), "db2");
        assert_eq!(CatchUp.concerns(Kind::Apply, "db1", "db2"), "db2<-db1");
        assert_eq!(Follow.concerns(Kind::Apply, "db1", "db2"), "db1");
        assert_eq!(Follow.concerns(Kind::Rejoin, "db1", "db2"), "db2");
        assert_eq!(SwitchBack.concerns(Kind::Apply, "db1", "db2"), "db2->db1");
        assert_eq!(Preflight.concerns(Kind::Apply, "db1", "db2"), "db1,db2");
    }

    #[test]
    fn a_ramp_comes_before_the_switch_and_a_failed_one_is_undone() {
        let (steps, outcome) = run_for(Kind::Apply, Shape::Ramp, &[]);
        assert_eq!(outcome, Outcome::Ok);
        assert_eq!(
            steps,
            [
                Step::Preflight,
                Step::ApplyStandby,
                Step::VerifyStandby,
                Step::Ramp,
                Step::Switch,
                Step::VerifyService,
                Step::Drain,
                Step::ApplyOldPrimary,
                Step::VerifyOldPrimary
            ]
        );
        let (steps, outcome) = run_for(Kind::Apply, Shape::Ramp, &[Step::Ramp]);
        assert_eq!(outcome, Outcome::RolledBack);
        assert_eq!(
            &steps[3..],
            [
                Step::Ramp,
                Step::SwitchBack,
                Step::DrainBack,
                Step::RollbackStandby
            ]
        );
        // Only an apply ramps.
        assert_eq!(
            sequence_for(Kind::Switchover, Shape::Ramp),
            sequence(Kind::Switchover)
        );
        assert_eq!(Shape::of(true, true, false, false), Shape::Roles);
        assert_eq!(Shape::of(false, true, false, true), Shape::Ramp);
        assert_eq!(Shape::of(false, false, true, true), Shape::Experiment);
        assert_eq!(Shape::of(true, false, true, false), Shape::Roles);
        assert_eq!(Shape::of(false, false, false, true), Shape::Hold);
        assert_eq!(Shape::of(false, false, false, false), Shape::Plain);
    }

    /// Runs an experiment's apply: to its hold, then on from the
    /// operator's decision (`keep` new or old), failing the steps listed:
    /// the steps up to the hold, `Held` (or the outcome when it never got
    /// there), the steps after the decision, the end.
    fn experiment(keep_new: bool, failing: &[Step]) -> (Vec<Step>, Outcome, Vec<Step>, Outcome) {
        let (steps, end) = run_deciding(Kind::Apply, Shape::Experiment, Some(keep_new), failing);
        match steps.iter().position(|s| *s == Step::Decide) {
            Some(i) => (
                steps[..i].to_vec(),
                Outcome::Held,
                steps[i + 1..].to_vec(),
                end,
            ),
            None => (steps, end, vec![], end),
        }
    }

    #[test]
    fn an_experiment_is_held_until_the_operator_decides() {
        use Step::*;
        let (held, o, after, end) = experiment(true, &[]);
        assert_eq!(
            (held.as_slice(), o),
            (
                &[Preflight, ApplyStandby, VerifyStandby, Experiment][..],
                Outcome::Held
            )
        );
        assert_eq!(
            (after.as_slice(), end),
            (
                &[
                    Switch,
                    VerifyService,
                    Drain,
                    ApplyOldPrimary,
                    VerifyOldPrimary
                ][..],
                Outcome::Ok
            )
        );
        // Keeping the old version undoes the run, verified at each step.
        let (_, _, after, end) = experiment(false, &[]);
        assert_eq!(
            (after.as_slice(), end),
            (
                &[
                    VerifyKept,
                    SwitchBack,
                    VerifyBack,
                    DrainBack,
                    RollbackStandby,
                    VerifyRolledBack
                ][..],
                Outcome::RolledBack
            )
        );
        // Keeping the new one whose switch fails goes back too.
        let (_, _, after, end) = experiment(true, &[VerifyService]);
        assert_eq!(
            (after.as_slice(), end),
            (
                &[Switch, VerifyService, SwitchBack, RollbackStandby][..],
                Outcome::RolledBack
            )
        );
        // The guard aborts it: never held.
        let (steps, o, after, _) = experiment(true, &[Experiment]);
        assert_eq!(o, Outcome::RolledBack);
        assert!(after.is_empty());
        assert_eq!(
            &steps[3..],
            [Experiment, SwitchBack, DrainBack, RollbackStandby]
        );
        // A standby that fails never gets a share.
        let (steps, o, _, _) = experiment(true, &[VerifyStandby]);
        assert_eq!(
            (o, steps.contains(&Experiment)),
            (Outcome::RolledBack, false)
        );
        // Only an apply has one.
        assert_eq!(
            sequence_for(Kind::Switchover, Shape::Experiment),
            sequence(Kind::Switchover)
        );
    }

    /// Runs a held apply to its hold, then on from the decision, failing
    /// the steps listed (each time).
    fn held(keep_new: bool, failing: &[Step]) -> (Vec<Step>, Outcome) {
        run_deciding(Kind::Apply, Shape::Hold, Some(keep_new), failing)
    }

    #[test]
    fn a_hold_waits_after_the_drain_then_finishes_or_reverts() {
        use Step::*;
        let (steps, o) = held(true, &[]);
        assert_eq!(o, Outcome::Ok);
        assert_eq!(
            steps,
            [
                Preflight,
                ApplyStandby,
                VerifyStandby,
                Switch,
                VerifyService,
                Drain,
                Decide,
                ApplyOldPrimary,
                VerifyOldPrimary
            ]
        );
        // A drain that timed out is held all the same.
        assert_eq!(held(true, &[Drain]).1, Outcome::Ok);
        assert!(held(true, &[Drain]).0.contains(&Decide));
        // Finishing can still leave the old primary unwell.
        assert_eq!(held(true, &[ApplyOldPrimary]).1, Outcome::Incomplete);
        // The revert.
        let (steps, o) = held(false, &[]);
        assert_eq!(o, Outcome::RolledBack);
        assert_eq!(
            &steps[6..],
            [
                Decide,
                VerifyKept,
                SwitchBack,
                VerifyBack,
                DrainBack,
                RollbackStandby,
                VerifyRolledBack
            ]
        );
        // A held host that fails its checks: nothing moves, held again.
        assert_eq!(held(false, &[VerifyKept]).1, Outcome::Held);
        // Back on an old primary that then fails through the service: an
        // operator.
        assert_eq!(held(false, &[VerifyBack]).1, Outcome::Operator);
        // A drain back that timed out goes on.
        assert_eq!(held(false, &[DrainBack]).1, Outcome::RolledBack);
        // The rolled back host unwell: traffic safe, incomplete.
        assert_eq!(held(false, &[VerifyRolledBack]).1, Outcome::Incomplete);
        assert_eq!(held(false, &[RollbackStandby]).1, Outcome::Operator);
        assert_eq!(held(false, &[SwitchBack]).1, Outcome::Operator);
        // Failures before the hold undo the run as usual.
        assert_eq!(
            held(true, &[VerifyService]),
            (
                vec![
                    Preflight,
                    ApplyStandby,
                    VerifyStandby,
                    Switch,
                    VerifyService,
                    SwitchBack,
                    RollbackStandby
                ],
                Outcome::RolledBack
            )
        );
        // After a refused revert, the last decision counts: finishing goes
        // on forward.
        let mut ended: Vec<Ended> = [
            Preflight,
            ApplyStandby,
            VerifyStandby,
            Switch,
            VerifyService,
            Drain,
        ]
        .iter()
        .map(|s| ok(*s))
        .collect();
        ended.extend([fail(Decide), fail(VerifyKept)]);
        assert_eq!(
            decide_for(Kind::Apply, Shape::Hold, &ended),
            Next::Finish(Outcome::Held)
        );
        ended.push(ok(Decide));
        assert_eq!(
            decide_for(Kind::Apply, Shape::Hold, &ended),
            Next::Run(ApplyOldPrimary)
        );
        // The revert's own steps are repeated when cut off.
        for step in [VerifyKept, VerifyBack, DrainBack, VerifyRolledBack] {
            assert_eq!(
                resolve_interrupted_for(Kind::Apply, Shape::Hold, step, Side::Old),
                Resolution::Retry
            );
        }
        assert_eq!(
            sequence_for(Kind::Switchover, Shape::Hold),
            sequence(Kind::Switchover)
        );
    }

    #[test]
    fn an_interrupted_experiment_keeps_a_split_and_undoes_anything_else() {
        let r =
            |side| resolve_interrupted_for(Kind::Apply, Shape::Experiment, Step::Experiment, side);
        let ended = |ok| {
            Resolution::Ended(Ended {
                step: Step::Experiment,
                ok,
            })
        };
        assert_eq!(r(Side::Split), ended(true));
        for side in [Side::Old, Side::New, Side::Neither, Side::Unclear] {
            assert_eq!(r(side), ended(false), "{side:?}");
        }
        assert!(Step::Experiment.moves_traffic());
        assert!(!Step::Decide.moves_traffic());
    }

    #[test]
    fn an_interrupted_ramp_goes_back_and_a_split_switch_back_runs_again() {
        let r = |step, side| resolve_interrupted_for(Kind::Apply, Shape::Ramp, step, side);
        for side in [
            Side::Old,
            Side::New,
            Side::Split,
            Side::Neither,
            Side::Unclear,
        ] {
            assert_eq!(
                r(Step::Ramp, side),
                Resolution::Ended(Ended {
                    step: Step::Ramp,
                    ok: false
                })
            );
        }
        assert_eq!(r(Step::SwitchBack, Side::Split), Resolution::Retry);
        assert_eq!(
            r(Step::Switch, Side::Split),
            Resolution::Ended(Ended {
                step: Step::Switch,
                ok: false
            })
        );
        assert_eq!(r(Step::Switch, Side::Unclear), Resolution::Operator);
    }
}
