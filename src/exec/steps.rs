//! Each step of a cycle as the operations it performs: apply and roll back
//! a change (`change`), verify a host or the service (checks with their
//! policy, then the observation period), switch and switch back
//! (`traffic`), drain, fence and release (`fence`). The same function
//! serves a run (real world) and `baton plan` (the simulated world).

use std::net::IpAddr;

use super::{Exec, Failed, OpError, Value, World};
use crate::config::{Change, Host, Traffic};
use crate::core::cycle::{Kind, Step};
use crate::core::op::Op;
use crate::exec::change;
use crate::traffic::{self, Mode};

/// What a run works on: its kind, its old and new primary, its change.
#[derive(Debug, Clone, Copy)]
pub struct Cycle<'a> {
    /// The kind of run.
    pub kind: Kind,
    /// The old primary.
    pub from: &'a Host,
    /// The new primary.
    pub to: &'a Host,
    /// The change (apply).
    pub change: Option<&'a Change>,
    /// Whether SSH reached the old primary when the run began (a failover's
    /// fence removes the VIP from it over SSH, or else proves it gone).
    pub from_reachable: bool,
}

/// What a step hands on to later ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carry {
    /// The DNS record's TTL the drain waits out, learned by the switch.
    pub ttl: Option<u32>,
    /// The background announcement a switch started (host, address),
    /// whose report the end of the next step reads.
    pub announced: Option<(String, IpAddr)>,
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
            match c.change {
                Some(change) => change::apply(x, &host.name, change).await,
                None => Err(Failed("no change to apply".to_string())),
            }
        }
        Step::RollbackStandby => match c.change {
            Some(change) => change::rollback(x, &to.name, change).await,
            None => Ok("no change to roll back".to_string()),
        },
        Step::VerifyStandby | Step::VerifyOldPrimary => {
            let host = if step == Step::VerifyStandby {
                to
            } else {
                from
            };
            verify(x, &host.name, host.address).await
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
        Step::VerifyService => {
            let address = traffic::service_address(x, to).await?;
            verify(x, &to.name, address).await?;
            let op = Op::Observe {
                host: to.name.clone(),
                address,
                period: x.pair.observe_period,
            };
            match x.perform(op).await {
                Ok(Value::Passed(detail)) => Ok(detail),
                Ok(other) => Err(Failed(format!("unexpected {other:?}"))),
                Err(e) => Err(Failed(e.to_string())),
            }
        }
        Step::Drain => traffic::drain(x, from, to, carry.ttl).await,
        Step::Fence => crate::traffic::fence::fence(x, from, c.from_reachable, to).await,
        Step::Release => crate::traffic::fence::release(x, to, from).await,
        // Only a pair with role hooks runs these (issue 14): none can be
        // configured yet, so no run of this version reaches them.
        Step::Demote | Step::CatchUp | Step::Promote | Step::Follow | Step::Resume => Err(Failed(
            format!("{} needs the pair's role hooks", step.name()),
        )),
    }
}

/// Every check of the pair against `address`, where `host` must answer,
/// all at once.
pub async fn verify<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    address: IpAddr,
) -> Result<String, Failed> {
    let ops = (0..x.pair.checks.len())
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
