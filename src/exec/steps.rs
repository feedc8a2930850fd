//! Each step of a cycle as the operations it performs: apply and roll back
//! a change (`change`), verify a host or the service (checks with their
//! policy, then the observation period), switch and switch back
//! (`traffic`), drain, fence and release (`fence`). The same function
//! serves a run (real world) and `baton plan` (the simulated world).

use std::net::IpAddr;

use super::{Exec, Failed, OpError, Value, World};
use crate::config::{Change, CheckRole, Host, Roles, Traffic};
use crate::core::cycle::{Kind, Step};
use crate::core::op::{fill_role, Op, RoleAction};
use crate::core::position::{Position, Report, RoleState};
use crate::exec::change;
use crate::traffic::{self, Mode};

/// What a run works on: its kind, its old and new primary, its change.
#[derive(Clone, Copy)]
pub struct Cycle<'a> {
    /// The kind of run.
    pub kind: Kind,
    /// The old primary.
    pub from: &'a Host,
    /// The new primary.
    pub to: &'a Host,
    /// The change (apply).
    pub change: Option<&'a Change>,
    /// The change's hash when the run began (its start record's): applying
    /// it is refused once it hashes otherwise.
    pub hash: Option<&'a str>,
    /// Whether SSH reached the old primary when the run began (a failover's
    /// fence removes the VIP from it over SSH, or else proves it gone).
    pub from_reachable: bool,
    /// A failover of a pair with role hooks: the last position seen from
    /// the old primary (and when), which the standby must be within
    /// `max_lag_on_failover` of.
    pub last_seen: Option<&'a crate::store::state::SeenPosition>,
    /// `failover --accept-data-loss`: promote the standby however far
    /// behind it is (its position is still recorded).
    pub accept_data_loss: bool,
    /// `apply --ramp`: the ramp's steps.
    pub ramp: Option<&'a crate::core::ramp::Ramp>,
    /// `baton rollback`: the change is taken back (its rollback steps are
    /// what is applied, the change itself what undoes them).
    pub reverse: bool,
    /// `baton ab`: the experiment, and where its samples go as they are
    /// taken.
    pub experiment: Option<(
        &'a crate::core::experiment::Experiment,
        traffic::haproxy::SampleSink<'a>,
    )>,
}

/// What a step hands on to later ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carry {
    /// The DNS record's TTL the drain waits out, learned by the switch.
    pub ttl: Option<u32>,
    /// The background announcement a switch started (host, address),
    /// whose report the end of the next step reads.
    pub announced: Option<(String, IpAddr)>,
    /// A host that a role step just made the writable primary, and its
    /// position: the run remembers it as the last position seen from the
    /// primary (a later failover's reference).
    pub writable: Option<(String, Position)>,
}

/// Performs one step.
pub async fn perform<W: World>(
    x: &mut Exec<'_, W>,
    c: &Cycle<'_>,
    step: Step,
    carry: &mut Carry,
) -> Result<String, Failed> {
    let (from, to) = (c.from, c.to);
    match step {
        Step::Preflight => Err(Failed(
            "preflight runs only at the start of a run".to_string(),
        )),
        Step::ApplyStandby | Step::ApplyOldPrimary => {
            let host = if step == Step::ApplyStandby { to } else { from };
            match (c.change, c.reverse) {
                (Some(change), false) => change::apply(x, &host.name, change, c.hash).await,
                (Some(change), true) if change.reversible() => {
                    change::rollback(x, &host.name, change).await
                }
                (Some(change), true) => Err(Failed(format!(
                    "change {} has no rollback steps and no uploads",
                    change.name
                ))),
                (None, _) => Err(Failed("no change to apply".to_string())),
            }
        }
        Step::RollbackStandby => match (c.change, c.reverse) {
            // Undoing a rollback applies the change again.
            (Some(change), true) => change::apply(x, &to.name, change, c.hash).await,
            (Some(change), false) => change::rollback(x, &to.name, change).await,
            (None, _) => Ok("no change to roll back".to_string()),
        },
        Step::VerifyStandby | Step::VerifyOldPrimary => {
            let host = if step == Step::VerifyStandby {
                to
            } else {
                from
            };
            // A failover's standby lost its primary: it cannot pass the
            // checks that it replicates, only those of any host.
            let r#as = if c.kind == Kind::Failover && x.pair.roles.is_some() {
                CheckRole::Any
            } else {
                CheckRole::Standby
            };
            verify(x, &host.name, host.address, r#as).await
        }
        Step::Switch | Step::SwitchBack => {
            let (a, b) = if step == Step::Switch {
                (from, to)
            } else {
                (to, from)
            };
            let mode = match (step, c.kind) {
                (Step::SwitchBack, _) => Mode::Restore,
                (_, Kind::Failover) => Mode::Failover,
                (_, Kind::Restore) => Mode::Restore,
                _ => Mode::Normal,
            };
            let switched = traffic::switch(x, a, b, mode).await?;
            if switched.ttl.is_some() {
                carry.ttl = switched.ttl;
            }
            carry.announced = switched.announced;
            Ok(switched.detail)
        }
        Step::VerifyService => through_service(x, to).await,
        Step::VerifyKept => {
            // An experiment's old primary serves; a hold's waits as the
            // standby.
            let r#as = if c.experiment.is_some() {
                CheckRole::Primary
            } else {
                CheckRole::Standby
            };
            verify(x, &from.name, from.address, r#as).await
        }
        Step::VerifyBack => through_service(x, from).await,
        Step::Drain => traffic::drain(x, from, to, carry.ttl).await,
        Step::DrainBack => traffic::drain(x, to, from, carry.ttl).await,
        Step::VerifyRolledBack => verify(x, &to.name, to.address, CheckRole::Standby).await,
        Step::Fence => crate::traffic::fence::fence(x, from, c.from_reachable, to).await,
        Step::Release => crate::traffic::fence::release(x, to, from).await,
        Step::Demote => role(x, RoleAction::Demote, from, to).await,
        Step::Promote => {
            role(x, RoleAction::Promote, to, from).await?;
            let report = became(x, to, from, RoleState::Primary).await?;
            carry.writable = Some((to.name.clone(), report.position));
            Ok(format!("{} is {report}", to.name))
        }
        Step::Resume => {
            role(x, RoleAction::Resume, from, to).await?;
            let report = became(x, from, to, RoleState::Primary).await?;
            carry.writable = Some((from.name.clone(), report.position));
            Ok(format!("{} is {report}", from.name))
        }
        // A rejoin's repaired host follows the primary; otherwise the old
        // primary follows the new one.
        Step::Follow => {
            let (host, peer) = if c.kind == Kind::Rejoin {
                (to, from)
            } else {
                (from, to)
            };
            role(x, RoleAction::Follow, host, peer).await?;
            let report = became(x, host, peer, RoleState::Standby).await?;
            Ok(format!("{} is {report}", host.name))
        }
        Step::CatchUp => catch_up(x, c).await,
        Step::Ramp => match (&x.pair.traffic, c.ramp) {
            (Traffic::Haproxy(b), Some(ramp)) => traffic::haproxy::ramp(x, b, from, to, ramp).await,
            _ => Err(Failed(
                "a ramp needs a balancer (traffic method haproxy) and the ramp's steps".to_string(),
            )),
        },
        Step::Experiment => match (&x.pair.traffic, c.experiment) {
            (Traffic::Haproxy(b), Some((e, sink))) => {
                traffic::haproxy::experiment(x, b, (from, to), e, sink).await
            }
            _ => Err(Failed(
                "an A/B experiment needs a balancer (traffic method haproxy) and its settings"
                    .to_string(),
            )),
        },
        // The operator's decision is journaled by the run; nothing to do.
        Step::Decide => Ok(String::new()),
    }
}

/// Verifies through the service address that `host` answers, then for
/// the observation period that every answer comes from it.
async fn through_service<W: World>(x: &mut Exec<'_, W>, host: &Host) -> Result<String, Failed> {
    let address = traffic::service_address(x, host).await?;
    verify(x, &host.name, address, CheckRole::Primary).await?;
    let op = Op::Observe {
        host: host.name.clone(),
        address,
        period: x.pair.observe_period,
    };
    match x.perform(op).await {
        Ok(Value::Passed(detail)) => Ok(detail),
        Ok(other) => Err(Failed(format!("unexpected {other:?}"))),
        Err(e) => Err(Failed(e.to_string())),
    }
}

/// The pair's role hooks, or the failure of a role step without them.
fn roles<'p, W: World>(x: &Exec<'p, W>) -> Result<&'p Roles, Failed> {
    x.pair
        .roles
        .as_ref()
        .ok_or_else(|| Failed("the pair has no [roles]: role steps need its hooks".to_string()))
}

/// Runs one role hook on `host` (its peer is `peer`); it must succeed.
async fn role<W: World>(
    x: &mut Exec<'_, W>,
    action: RoleAction,
    host: &Host,
    peer: &Host,
) -> Result<String, Failed> {
    let command = action.command(roles(x)?, host, peer);
    let what = format!("{} on {}", action.name(), host.name);
    x.remote_ok(&host.name, command, &what).await?;
    Ok(format!("{} ran on {}", action.name(), host.name))
}

/// After a role hook: the host's `position` hook must say it is `state`
/// now (a hook that returned early is a failed step, not a hand-over).
async fn became<W: World>(
    x: &mut Exec<'_, W>,
    host: &Host,
    peer: &Host,
    state: RoleState,
) -> Result<Report, Failed> {
    let report = position(x, host, peer).await?;
    if report.state == state {
        Ok(report)
    } else {
        Err(Failed(format!(
            "{} is {report} after its hook, not {}",
            host.name,
            state.name()
        )))
    }
}

/// Reads a host's role and position (the `position` hook).
pub async fn position<W: World>(
    x: &mut Exec<'_, W>,
    host: &Host,
    peer: &Host,
) -> Result<Report, Failed> {
    let command = RoleAction::Position.command(roles(x)?, host, peer);
    let what = format!("position on {}", host.name);
    let out = x.remote_ok(&host.name, command, &what).await?;
    Report::parse(&out.stdout_text()).map_err(|e| Failed(format!("{what}: {e}")))
}

/// The standby has what it must have before it is promoted. A hand-over:
/// the old primary, demoted, no longer takes writes and tells its final
/// position; the standby must reach it within `max_lag`, in
/// `catch_up_timeout`. A failover: the standby must be within
/// `max_lag_on_failover` of the last position seen from the old primary,
/// unless the operator accepted the loss.
async fn catch_up<W: World>(x: &mut Exec<'_, W>, c: &Cycle<'_>) -> Result<String, Failed> {
    let r = roles(x)?.clone();
    let (from, to) = (c.from, c.to);
    let (target, max_lag, whose) = if c.kind == Kind::Failover {
        // Only a position of the old primary itself is a reference (one
        // seen when the standby was the primary says nothing of what the
        // old primary wrote since).
        let Some(seen) = c.last_seen.filter(|s| s.host == from.name) else {
            if c.accept_data_loss {
                let report = position(x, to, from).await?;
                return Ok(format!(
                    "{} {report}; no position of {} was ever seen: the loss is unknown, accepted by the operator",
                    to.name, from.name
                ));
            }
            return Err(Failed(format!(
                "baton never saw a replication position of {} as the primary, so it cannot tell what promoting {} would lose; `baton status` records one while the primary is up; fail over with --accept-data-loss --reason TEXT to promote it anyway",
                from.name, to.name
            )));
        };
        let target = Position::parse(&seen.position)
            .map_err(|e| Failed(format!("the recorded position of {}: {e}", seen.host)))?;
        (
            target,
            r.max_lag_on_failover,
            format!(
                "the last position seen from {} ({} at {})",
                from.name, seen.position, seen.at
            ),
        )
    } else {
        let last = position(x, from, to).await?;
        if last.state == RoleState::Primary {
            return Err(Failed(format!(
                "{} still takes writes after demote ({last}): the standby cannot have everything",
                from.name
            )));
        }
        (
            last.position,
            r.max_lag,
            format!("the final position of {} ({})", from.name, last.position),
        )
    };
    let within = r.catch_up_timeout;
    let op = Op::CatchUp {
        host: to.name.clone(),
        line: fill_role(&r.position.command, to, from),
        timeout: r.position.timeout,
        target,
        max_lag,
        within,
    };
    match x.perform(op).await {
        Ok(Value::Passed(detail)) => Ok(format!("{detail} ({whose})")),
        Ok(other) => Err(Failed(format!("unexpected {other:?}"))),
        Err(e) if c.accept_data_loss => {
            let report = position(x, to, from).await?;
            Ok(format!(
                "{e}; promoting {} anyway ({report}): the operator accepted the loss",
                to.name
            ))
        }
        Err(e) => Err(Failed(format!(
            "{e} (the target: {whose}; allowed lag {max_lag})"
        ))),
    }
}

/// Every check of the pair that runs where a host is verified `as` the
/// primary or the standby, against `address`, where `host` must answer,
/// all at once.
pub async fn verify<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    address: IpAddr,
    r#as: CheckRole,
) -> Result<String, Failed> {
    let ops = (0..x.pair.checks.len())
        .filter(|i| x.pair.checks[*i].role.runs_as(r#as))
        .map(|index| Op::Check {
            host: host.to_string(),
            address,
            index,
        })
        .collect();
    let results = x.perform_all(ops).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(OpError::to_string))
        .collect();
    if failed.is_empty() {
        Ok(format!("{} check(s) passed on {host}", results.len()))
    } else {
        Err(Failed(failed.join("; ")))
    }
}

/// Reads the report of the announcement the last switch started (by now
/// it has usually ended) into this step's records; a note for the step's
/// detail when it failed.
pub async fn report<W: World>(x: &mut Exec<'_, W>, carry: &mut Carry) -> String {
    let (Some((host, _)), Traffic::Vip(v)) = (carry.announced.take(), &x.pair.traffic) else {
        return String::new();
    };
    traffic::vip::report(x, &host, v).await
}
