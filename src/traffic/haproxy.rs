//! The `haproxy` method: traffic moves through the runtime API of an
//! HAProxy balancer in front of the pair (over the balancer host's SSH
//! session, to its admin socket), never by a reload. What its source of
//! truth says (`show stat`, read by `core::balancer`); the switch (the new
//! server at full weight and ready, the old one draining, sent as one line
//! so that a controller dying mid-switch cannot leave half of it, then
//! confirmed); the drain (the old server's sessions end, bounded by
//! `drain_timeout`, then it waits as a standby at weight 0); the fence of
//! a failover (the old server in maintenance) and the release of a rejoin
//! (made ready again, at weight 0).

use super::{Mode, Switched};
use crate::config::{Haproxy, Host};
use crate::core::balancer::{self, Command, Judgement, Reply, ServerStat, Window};
use crate::core::experiment::{Experiment, Sample, Side, Verdict};
use crate::core::holder::{classify, Holder, HostSays, Says};
use crate::core::op::{Op, WaitFor};
use crate::core::ramp::Ramp;
use crate::exec::signals;
use crate::exec::{failure, output, Exec, Failed, OpError, World};

/// `show stat`, read, or why it could not be.
pub async fn stats<W: World>(x: &mut Exec<'_, W>) -> Result<Vec<ServerStat>, String> {
    let op = Op::Balancer {
        commands: vec![Command::ShowStat],
    };
    match output(&op, x.perform(op.clone()).await) {
        Ok(o) if o.success() => balancer::parse_stat(&o.stdout_text()).map_err(|e| e.to_string()),
        other => Err(failure("`show stat` on the balancer", &other)),
    }
}

/// Who holds traffic by the balancer's word: the server taking new
/// requests.
pub async fn holder<W: World>(x: &mut Exec<'_, W>, b: &Haproxy) -> Holder {
    let stats = stats(x).await;
    classify(
        &hosts(x),
        &Says::Balancer {
            backend: &b.backend,
            stats: &stats,
        },
    )
    .certain()
}

fn hosts<W: World>(x: &Exec<'_, W>) -> [HostSays; 2] {
    x.pair.hosts.clone().map(|h| HostSays {
        name: h.name,
        address: Some(h.address),
        holds_vip: None,
    })
}

/// Sends runtime API commands as one line; every one must be applied.
async fn send<W: World>(
    x: &mut Exec<'_, W>,
    commands: Vec<Command>,
    what: &str,
) -> Result<(), Failed> {
    let op = Op::Balancer { commands };
    let out = output(&op, x.perform(op.clone()).await);
    match &out {
        Ok(o) if o.success() => match Reply::of(&o.stdout_text()) {
            Reply::Done => Ok(()),
            Reply::Refused(said) => Err(Failed(format!("{what}: the balancer refused it: {said}"))),
        },
        _ => Err(Failed(failure(what, &out))),
    }
}

/// Moves traffic from `from` to `to`: the new server at full weight and
/// ready, the old one draining (one line), then the balancer must say
/// that `to` alone takes new requests. A switch back (`Mode::Restore`)
/// and a failover set the servers whatever the balancer says now; a
/// failover leaves `from` as its fence left it (in maintenance).
/// Otherwise traffic must be on `from` (compare-and-swap) or already on
/// `to`.
pub async fn switch<W: World>(
    x: &mut Exec<'_, W>,
    b: &Haproxy,
    from: &Host,
    to: &Host,
    mode: Mode,
) -> Result<Switched, Failed> {
    let forced = mode != Mode::Normal;
    let before = holder(x, b).await;
    let why = super::describe(x.pair, &before);
    match &before {
        Holder::Host(h) if *h == to.name => {
            return Ok(Switched {
                detail: format!("traffic is already on {}: {why}", to.name),
                ..Switched::default()
            })
        }
        Holder::Host(h) if *h == from.name => {}
        // A ramp's last step left both taking new requests (a run never
        // starts on a split it did not make: preflight refuses it).
        Holder::Both => {}
        _ if forced => {}
        _ => {
            return Err(Failed(format!(
                "traffic is not on {} any more ({why}): not switching",
                from.name
            )))
        }
    }
    let commands = if mode == Mode::Failover {
        balancer::take_commands(&b.backend, &to.name, b.weight)
    } else {
        balancer::switch_commands(&b.backend, &from.name, &to.name, b.weight)
    };
    send(x, commands, &format!("moving {} to {}", b.backend, to.name)).await?;
    match holder(x, b).await {
        Holder::Host(h) if h == to.name => Ok(Switched {
            detail: format!(
                "{} takes new requests in backend {} at weight {}; {} drains",
                to.name, b.backend, b.weight, from.name
            ),
            ..Switched::default()
        }),
        other => Err(Failed(format!(
            "after the switch, traffic is not on {} alone: {}",
            to.name,
            super::describe(x.pair, &other)
        ))),
    }
}

/// A ramp: at each of its steps, `to` gets the step's share of new
/// requests (`from` the rest), the step lasts `ramp.step`, then the two
/// hosts are compared from the balancer's counters over the step
/// (`core::balancer::judge` with the pair's limits). The first step that
/// `to` does worse fails the ramp with the comparison, and so does a stop
/// signal; the run then switches back and rolls the change back. Each
/// step's comparison is in the step's detail (the journal, `log --run`).
pub async fn ramp<W: World>(
    x: &mut Exec<'_, W>,
    b: &Haproxy,
    from: &Host,
    to: &Host,
    ramp: &Ramp,
) -> Result<String, Failed> {
    let mut said: Vec<String> = Vec::new();
    let total = ramp.percents.len();
    for (i, percent) in ramp.percents.iter().enumerate() {
        let at = format!("step {}/{total} ({percent}% to {})", i + 1, to.name);
        let stop = |said: &[String]| {
            Failed(format!(
                "{}{at}: not finished: {} asked baton to stop",
                said.iter().map(|s| format!("{s}; ")).collect::<String>(),
                signals::last_name()
            ))
        };
        if signals::count() >= 1 {
            return Err(stop(&said));
        }
        send(
            x,
            balancer::ramp_commands(
                &b.backend,
                &from.name,
                &to.name,
                balancer::ramp_weights(*percent),
            ),
            &format!("{at}: setting the weights"),
        )
        .await?;
        let before = stats(x).await.map_err(|e| Failed(format!("{at}: {e}")))?;
        let wait = Op::Wait {
            duration: ramp.step,
            reason: WaitFor::RampStep,
        };
        tokio::select! {
            r = x.perform(wait) => { r.map_err(|e| Failed(format!("{at}: {e}")))?; }
            () = signals::first() => return Err(stop(&said)),
        }
        let after = stats(x).await.map_err(|e| Failed(format!("{at}: {e}")))?;
        let window = |host: &Host| -> Result<Window, Failed> {
            let server = |s: &[ServerStat]| {
                balancer::find(s, &b.backend, &host.name)
                    .cloned()
                    .map_err(|e| Failed(format!("{at}: {e}")))
            };
            Ok(Window::between(&server(&before)?, &server(&after)?))
        };
        let (old, new) = (window(from)?, window(to)?);
        let compared = format!(
            "{at} for {}: {} {new}; {} {old}",
            humantime::format_duration(ramp.step),
            to.name,
            from.name
        );
        match balancer::judge(&old, &new, &b.limits) {
            Judgement::Continue => said.push(format!("{compared}: as good")),
            Judgement::TooFew { requests } => said.push(format!(
                "{compared}: too few requests to compare ({requests}, fewer than min_requests {})",
                b.limits.min_requests
            )),
            Judgement::Abort(why) => {
                said.push(format!("{compared}: ABORTED: {why}"));
                return Err(Failed(said.join("; ")));
            }
        }
    }
    Ok(said.join("; "))
}

/// Where an experiment's samples go as they are taken (the run's
/// journal); an error stops the experiment.
pub type SampleSink<'a> = &'a (dyn Fn(&Sample) -> Result<(), String> + Sync);

/// `show stat`, then `clear counters` (one line): the statistics, with
/// the highest values reset so that the next read's are the interval's
/// own.
async fn sample_stats<W: World>(x: &mut Exec<'_, W>) -> Result<Vec<ServerStat>, String> {
    let op = Op::Balancer {
        commands: vec![Command::ShowStat, Command::ClearCounters],
    };
    match output(&op, x.perform(op.clone()).await) {
        Ok(o) if o.success() => balancer::parse_stat(&o.stdout_text()).map_err(|e| e.to_string()),
        other => Err(failure(
            "`show stat; clear counters` on the balancer",
            &other,
        )),
    }
}

/// An A/B experiment (`baton ab`): the split set as one line, then every
/// interval both hosts sampled from counter deltas (`show stat; clear
/// counters`), each sample handed to `sink` as it is taken and judged by
/// the ramp's rule; the first worse sample aborts it (an error: the run
/// switches back and rolls the change back). It ends well once watched
/// for its whole length, or earlier on a stop signal: the split stays,
/// and the run is held until the operator decides.
pub async fn experiment<W: World>(
    x: &mut Exec<'_, W>,
    b: &Haproxy,
    (from, to): (&Host, &Host),
    e: &Experiment,
    sink: SampleSink<'_>,
) -> Result<String, Failed> {
    let split = format!("{}% of new requests to {}", e.percent, to.name);
    send(
        x,
        balancer::ramp_commands(&b.backend, &from.name, &to.name, e.weights()),
        &format!("{split}: setting the weights"),
    )
    .await?;
    let mut before = sample_stats(x)
        .await
        .map_err(|why| Failed(format!("{split}: {why}")))?;
    let (mut as_good, mut too_few) = (0u64, 0u64);
    let total = e.samples();
    for index in 1..=total {
        let watched = |n: u64| {
            format!("{split}: {n} of {total} intervals watched ({as_good} as good, {too_few} too few to compare)")
        };
        let wait = Op::Wait {
            duration: e.interval,
            reason: WaitFor::Sample,
        };
        tokio::select! {
            r = x.perform(wait) => { r.map_err(|why| Failed(format!("{}: {why}", watched(index - 1))))?; }
            () = signals::first() => {
                return Ok(format!(
                    "{}; stopped watching: {} asked baton to stop; the split stays until `baton ab {} --end --keep old|new`",
                    watched(index - 1),
                    signals::last_name(),
                    x.pair.name
                ))
            }
        }
        let after = sample_stats(x)
            .await
            .map_err(|why| Failed(format!("{}: {why}", watched(index - 1))))?;
        let side = |host: &Host| -> Result<Side, Failed> {
            let server = |s: &[ServerStat]| {
                balancer::find(s, &b.backend, &host.name)
                    .cloned()
                    .map_err(|why| Failed(format!("{split}: {why}")))
            };
            Ok(Side {
                host: host.name.clone(),
                window: Window::between(&server(&before)?, &server(&after)?),
            })
        };
        let sample = Sample::judged(index, e.interval, (side(from)?, side(to)?), &b.limits);
        before = after;
        sink(&sample).map_err(|why| Failed(format!("{}: {why}", watched(index - 1))))?;
        match sample.verdict {
            Verdict::AsGood => as_good += 1,
            Verdict::TooFew => too_few += 1,
            Verdict::Worse => {
                return Err(Failed(format!(
                    "{}; ABORTED at {}",
                    watched(index),
                    sample.sentence()
                )))
            }
        }
    }
    Ok(format!(
        "{}; held until `baton ab {} --end --keep old|new`",
        format_args!("{split}: all {total} intervals watched ({as_good} as good, {too_few} too few to compare)"),
        x.pair.name
    ))
}

/// The drain: the old server's current sessions end (at most
/// `drain_timeout`: past it, the sessions left are named and the run goes
/// on, traffic being safe on `to`), then it waits as a standby, weight 0
/// and ready.
pub async fn drain<W: World>(
    x: &mut Exec<'_, W>,
    b: &Haproxy,
    from: &Host,
) -> Result<String, Failed> {
    let op = Op::Drain {
        server: from.name.clone(),
        within: b.drain_timeout,
    };
    let drained = match x.perform(op).await {
        Ok(crate::exec::Value::Passed(d)) => d,
        Ok(other) => return Err(Failed(format!("unexpected {other:?}"))),
        Err(e @ OpError::Busy { .. }) => format!("{e}; going on: traffic is on the new primary"),
        Err(e) => return Err(Failed(e.to_string())),
    };
    send(
        x,
        balancer::standby_commands(&b.backend, &from.name),
        &format!("making {} the standby server", from.name),
    )
    .await?;
    Ok(format!("{drained}; {} waits at weight 0, ready", from.name))
}

/// A failover's fence: the old primary's server at weight 0 and in
/// maintenance, so that the balancer sends it nothing.
pub async fn fence<W: World>(
    x: &mut Exec<'_, W>,
    b: &Haproxy,
    from: &Host,
) -> Result<String, Failed> {
    send(
        x,
        balancer::fence_commands(&b.backend, &from.name),
        &format!("fencing {} on the balancer", from.name),
    )
    .await?;
    Ok(format!(
        "server {}/{} is in maintenance at weight 0",
        b.backend, from.name
    ))
}

/// A rejoin's release: the repaired host's server leaves maintenance as a
/// standby (weight 0, ready), and `from` must still take new requests
/// alone.
pub async fn release<W: World>(
    x: &mut Exec<'_, W>,
    b: &Haproxy,
    to: &Host,
    from: &Host,
) -> Result<String, Failed> {
    send(
        x,
        balancer::standby_commands(&b.backend, &to.name),
        &format!("making {} the standby server", to.name),
    )
    .await?;
    match holder(x, b).await {
        Holder::Host(h) if h == from.name => Ok(format!(
            "server {}/{} is ready at weight 0; {} takes new requests alone",
            b.backend, to.name, from.name
        )),
        other => Err(Failed(format!(
            "after releasing {}, traffic is not on {} alone: {}",
            to.name,
            from.name,
            super::describe(x.pair, &other)
        ))),
    }
}
