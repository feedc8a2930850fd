//! Moving traffic and finding where it is, for every method, as
//! operations on an `Exec`: one file per method (`vip`, `dns`, `command`,
//! `haproxy`),
//! each with the same four parts (what its source of truth says, the move,
//! the service address, the drain), dispatched here; the hold on new
//! connections of a VIP switch in `quiesce`. Who holds traffic is decided
//! by `core::holder` from what the method's source said.

pub mod command;
pub mod dns;
pub mod fence;
pub mod handover;
pub mod haproxy;
pub mod quiesce;
pub mod vip;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{Host, Pair, Traffic};
use crate::core::cycle::Side;
use crate::core::holder::{classify, Classified, Holder, HostSays, Unknown};
use crate::exec::{Exec, Failed, World};

/// What a successful switch learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switched {
    /// A line for the journal and the progress output.
    pub detail: String,
    /// For DNS: the TTL the drain must wait out.
    pub ttl: Option<u32>,
    /// For a VIP: the host that announces it in the background, whose
    /// report the executor reads at the end of the next step.
    pub announced: Option<(String, IpAddr)>,
}

/// How a switch treats traffic that is not where a plain switch expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Traffic must be exactly on `from` (compare-and-swap).
    Normal,
    /// A switch back: a VIP on neither host is put on `to`, the host
    /// verified before the run (how a switch interrupted between its two
    /// halves heals); a quiesce hold that fails does not stop it.
    Restore,
    /// A failover: `from` is dead and fenced; a VIP is put on `to` whatever
    /// `from` can say.
    Failover,
}

/// Asks the method's source of truth, and classifies what it said.
pub async fn holder<W: World>(x: &mut Exec<'_, W>) -> Classified {
    let pair = x.pair;
    let mut hosts = pair.hosts.clone().map(|h| HostSays {
        name: h.name,
        address: Some(h.address),
        holds_vip: None,
    });
    match &pair.traffic {
        Traffic::Vip(v) => {
            let [a, b] = vip::holds_both(x, [&hosts[0].name, &hosts[1].name], v).await;
            hosts[0].holds_vip = a.ok();
            hosts[1].holds_vip = b.ok();
            classify(&hosts, &crate::core::holder::Says::Vip)
        }
        Traffic::Dns(d) => {
            let answers = dns::answers(x, d).await;
            classify(&hosts, &crate::core::holder::Says::Dns(&answers))
        }
        Traffic::Haproxy(b) => {
            let stats = haproxy::stats(x).await;
            classify(
                &hosts,
                &crate::core::holder::Says::Balancer {
                    backend: &b.backend,
                    stats: &stats,
                },
            )
        }
        Traffic::Command(c) => {
            let said = command::ask(x, c).await;
            classify(&hosts, &crate::core::holder::Says::Hook(&said))
        }
    }
}

/// Where traffic is, relative to a run's old (`from`) and new (`to`)
/// primary, certain or unclear. A run stopped inside a DNS switch may have
/// left the zone's primary changed and a secondary not yet following (a
/// transfer on its way): as the switch itself would, this asks again, up
/// to `propagation_timeout`, while the servers disagree.
pub async fn side<W: World>(x: &mut Exec<'_, W>, from: &str, to: &str) -> (Side, String) {
    let patience = match &x.pair.traffic {
        Traffic::Dns(d) => d.propagation_timeout,
        _ => Duration::ZERO,
    };
    let deadline = Instant::now() + patience;
    let holder = loop {
        let holder = holder(x).await.certain();
        if holder != Holder::Unknown(Unknown::Disagree) || Instant::now() >= deadline {
            break holder;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let why = describe(x.pair, &holder);
    let side = match holder {
        Holder::Host(h) if h == from => Side::Old,
        Holder::Host(h) if h == to => Side::New,
        Holder::Neither => Side::Neither,
        // Behind a balancer, both taking new requests is a ramp's split.
        Holder::Both if matches!(x.pair.traffic, Traffic::Haproxy(_)) => Side::Split,
        _ => Side::Unclear,
    };
    (side, why)
}

/// A VIP found on `host` when a run stopped inside a switch is announced
/// again (the announcement of the switch may have died with the
/// controller: neighbours would go on sending to the old holder until
/// their caches expire); other methods have no neighbours to tell. Words
/// for the step's detail.
pub async fn announce_again<W: World>(x: &mut Exec<'_, W>, host: &str) -> String {
    match &x.pair.traffic {
        Traffic::Vip(v) => {
            let v = v.clone();
            match vip::announce(x, &v, host).await {
                None => format!("; {} announced again from {host}", v.address),
                Some(note) => note,
            }
        }
        _ => String::new(),
    }
}

/// Runs one nft transaction on a host (the quiesce hold, the hand-back);
/// why it failed, as `what` did, and how to fix it.
async fn nft<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    (purpose, script): (crate::core::op::NftPurpose, String),
    what: &str,
    fix: &str,
) -> Result<(), crate::exec::Failed> {
    x.remote_ok(host, crate::core::op::Remote::Nft { purpose, script }, what)
        .await
        .map(|_| ())
        .map_err(|e| e.with(&format!("; {fix}")))
}

/// The holder in words, for step details.
pub fn describe(pair: &Pair, holder: &Holder) -> String {
    match (&pair.traffic, holder) {
        (Traffic::Vip(v), Holder::Host(h)) => format!("{h} holds {v}"),
        (Traffic::Vip(v), Holder::Both) => format!("both hosts hold {v}"),
        (Traffic::Vip(v), Holder::Neither) => format!("no host holds {v}"),
        (Traffic::Dns(d), Holder::Host(h)) => format!("{} points at {h}", d.name),
        (Traffic::Dns(d), Holder::Both) => format!("{} points at both hosts", d.name),
        (Traffic::Dns(d), Holder::Neither) => format!("{} points at neither host", d.name),
        (Traffic::Command(_), Holder::Host(h)) => format!("the query hook says {h}"),
        (Traffic::Command(_), other) => format!("the query hook says traffic is {other}"),
        (Traffic::Haproxy(b), Holder::Host(h)) => {
            format!(
                "{h} alone takes new requests in backend {} on {}",
                b.backend, b.host.name
            )
        }
        (Traffic::Haproxy(b), Holder::Both) => {
            format!(
                "both hosts take new requests in backend {} on {}",
                b.backend, b.host.name
            )
        }
        (Traffic::Haproxy(b), Holder::Neither) => {
            format!(
                "neither host takes new requests in backend {} on {}",
                b.backend, b.host.name
            )
        }
        (_, Holder::Unknown(why)) => format!("who holds traffic is unclear: {why}"),
    }
}

/// Moves traffic from `from` to `to`.
pub async fn switch<W: World>(
    x: &mut Exec<'_, W>,
    from: &Host,
    to: &Host,
    mode: Mode,
) -> Result<Switched, Failed> {
    let pair = x.pair;
    if let (Mode::Failover, Traffic::Vip(v)) = (mode, &pair.traffic) {
        return vip::take(x, v, &to.name).await;
    }
    // A DNS record is compared where it is changed: on the zone's primary
    // (the UPDATE's own prerequisite is the swap). The secondaries may lag
    // behind it, which is what the switch waits for, not a reason to refuse
    // (a switch back after they failed to follow must still happen).
    if let Traffic::Dns(d) = &pair.traffic {
        return dns::switch(x, d, from, to).await;
    }
    // The balancer's own word is the compare; a switch back or a failover
    // sets the servers whatever it says.
    if let Traffic::Haproxy(b) = &pair.traffic {
        return haproxy::switch(x, b, from, to, mode).await;
    }
    // Compare first: traffic must be exactly on `from`. Already on `to` is
    // success (a resumed run, or a switch back after a switch that never
    // happened); anywhere else is someone else's doing, and not ours to undo.
    let holder = holder(x).await.certain();
    let why = describe(pair, &holder);
    match holder {
        Holder::Host(h) if h == to.name => {
            // A run stopped between the old primary's quiesce hold and the
            // move left it holding traffic but dropping new connections
            // (until the hold lapses): it must accept them again.
            let mut note = String::new();
            if let Traffic::Vip(v) = &pair.traffic {
                if v.quiesce.is_some() {
                    note = vip::release_note(quiesce::release(x, &to.name, v).await);
                }
                // A run stopped inside an overlap handover the other way
                // may have left the address on `to` with a lifetime.
                if let crate::config::Handover::Overlap(_) = v.handover {
                    note.push_str(&vip::keep_note(vip::keep(x, v, &to.name).await));
                }
            }
            Ok(Switched {
                detail: format!("traffic is already on {}: {why}{note}", to.name),
                ..Switched::default()
            })
        }
        Holder::Host(h) if h == from.name => match &pair.traffic {
            Traffic::Vip(v) => vip::switch(x, v, &from.name, &to.name, mode).await,
            Traffic::Command(c) => command::switch(x, c, from, to).await,
            Traffic::Haproxy(b) => haproxy::switch(x, b, from, to, Mode::Normal).await,
            Traffic::Dns(d) => dns::switch(x, d, from, to).await,
        },
        Holder::Neither if mode == Mode::Restore => match &pair.traffic {
            Traffic::Vip(v) => vip::take(x, v, &to.name).await,
            _ => Err(Failed(format!("{why}: not restoring by hand"))),
        },
        _ => Err(Failed(format!(
            "traffic is not on {} any more ({why}): not switching",
            from.name
        ))),
    }
}

/// The address the service answers on for `to`: the VIP, the address the
/// zone's primary gives for the name, the balancer's frontend, or `to`'s
/// own.
pub async fn service_address<W: World>(x: &mut Exec<'_, W>, to: &Host) -> Result<IpAddr, Failed> {
    match &x.pair.traffic {
        Traffic::Vip(v) => Ok(v.address),
        Traffic::Dns(d) => dns::resolve(x, d, to).await,
        Traffic::Command(_) => Ok(to.address),
        Traffic::Haproxy(b) => Ok(b.frontend.ip()),
    }
}

/// The drain after a switch: for DNS, the record's TTL (`ttl`, learned by
/// the switch, else asked); for a balancer, the old server's sessions.
pub async fn drain<W: World>(
    x: &mut Exec<'_, W>,
    from: &Host,
    to: &Host,
    ttl: Option<u32>,
) -> Result<String, Failed> {
    match &x.pair.traffic {
        Traffic::Dns(d) => dns::drain(x, d, from, to, ttl).await,
        Traffic::Vip(_) => Ok(format!(
            "the virtual IP left {}: no new connections reach it",
            from.name
        )),
        Traffic::Command(_) => Ok("the switch hook moved traffic; nothing to wait for".to_string()),
        Traffic::Haproxy(b) => haproxy::drain(x, b, from).await,
    }
}
