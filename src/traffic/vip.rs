//! The `vip` method. By default (`handover = "overlap"`) the new host
//! takes the address before the old one lets go (`handover`); when the
//! hosts cannot do that, and with `handover = "classic"`, the classic
//! order runs and, for a fallback, its detail says why. The classic
//! order: remove the address from the old holder, add it on
//! the new one (each one line to an `ip -batch` started on the host before
//! the gap, so the gap is two round trips; an IPv6 address `nodad`, usable
//! at once), announce it in the background (repeated gratuitous ARP, or
//! for IPv6 unsolicited neighbour advertisements: `core::announce`), then
//! confirm on both hosts that exactly the new one holds it. Removing fails
//! when the old holder no longer has the address: a stale run never steals
//! it. With `quiesce`, the old holder first holds new connections off
//! (`quiesce`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{handover, quiesce, Mode, Switched};
use crate::config::{Handover, Vip};
use crate::core::announce::{announce_status, announcement, is_status_line, NO_PYTHON_EXIT};
use crate::core::ifaddr::{self, Held};
use crate::core::op::{AddrAction, Op, Remote, WaitFor};
use crate::core::overlap::{self, Target};
use crate::exec::{output, succeeded, Exec, Failed, OpError, World};

fn show(host: &str, v: &Vip) -> Op {
    Op::Remote {
        host: host.to_string(),
        command: Remote::AddrShow {
            interface: v.interface.clone(),
        },
    }
}

/// Whether `host` holds the VIP (`ip -o addr show dev IF`).
pub async fn holds<W: World>(x: &mut Exec<'_, W>, host: &str, v: &Vip) -> Result<bool, Failed> {
    let op = show(host, v);
    let out = output(&op, x.perform(op.clone()).await);
    read_holds(host, v, out)
}

/// Whether each of two hosts holds the VIP, asked at once.
pub async fn holds_both<W: World>(
    x: &mut Exec<'_, W>,
    hosts: [&str; 2],
    v: &Vip,
) -> [Result<bool, Failed>; 2] {
    let ops = vec![show(hosts[0], v), show(hosts[1], v)];
    let mut answers = x.perform_all(ops.clone()).await.into_iter();
    [0, 1].map(|i| {
        let out = answers.next().map_or_else(
            || Err(OpError::Unsupported("no answer".into())),
            |r| output(&ops[i], r),
        );
        read_holds(hosts[i], v, out)
    })
}

fn read_holds(
    host: &str,
    v: &Vip,
    out: Result<crate::io::ssh::Output, OpError>,
) -> Result<bool, Failed> {
    match out {
        Ok(o) if o.success() => match ifaddr::held(&o.stdout_text(), &v.address) {
            Held::No => Ok(false),
            // A tentative address becomes usable by itself (baton adds
            // IPv6 addresses `nodad`, so only one added by hand is).
            Held::Yes | Held::Tentative => Ok(true),
            Held::DadFailed => Err(Failed(dad_failed(host, v))),
        },
        Ok(o) => Err(Failed(format!(
            "`ip addr show dev {}` failed on {host}: {} (check `interface` in the pair's [traffic]: it must name the interface on both hosts)",
            v.interface,
            o.stderr_text().trim()
        ))),
        Err(e) => Err(Failed(format!("cannot ask {host} about {v}: {e}"))),
    }
}

/// Why a host holding the address with failed duplicate address
/// detection can be said neither to hold it nor not to.
pub fn dad_failed(host: &str, v: &Vip) -> String {
    format!(
        "{host} has {v} on {} marked `dadfailed` (another host answered for it when it was added without `nodad`): it does not use it, yet it is there; remove it there (`ip addr del {v} dev {}`)",
        v.interface, v.interface
    )
}

fn addr(action: AddrAction, v: &Vip, batch: bool) -> Remote {
    Remote::Addr {
        action,
        cidr: v.to_string(),
        interface: v.interface.clone(),
        batch,
    }
}

/// Starts `ip -o -batch -` on `host` when the pair uses it; whether it runs.
async fn arm<W: World>(x: &mut Exec<'_, W>, host: &str, v: &Vip) -> bool {
    v.batch
        && x.perform(Op::Arm {
            host: host.to_string(),
        })
        .await
        .is_ok()
}

/// Starts `ip -o -batch -` on both hosts at once when the pair uses it.
async fn arm_both<W: World>(x: &mut Exec<'_, W>, hosts: [&str; 2], v: &Vip) -> [bool; 2] {
    if !v.batch {
        return [false, false];
    }
    let ops = hosts
        .iter()
        .map(|h| Op::Arm {
            host: h.to_string(),
        })
        .collect();
    let done = x.perform_all(ops).await;
    [0, 1].map(|i| done.get(i).is_some_and(Result::is_ok))
}

/// Moves the VIP from `from` to `to` (traffic was found on `from`), in
/// the pair's `handover` order; an overlap the hosts cannot do falls back
/// to the classic order, and the detail says why.
pub async fn switch<W: World>(
    x: &mut Exec<'_, W>,
    v: &Vip,
    from: &str,
    to: &str,
    mode: Mode,
) -> Result<Switched, Failed> {
    let fallback = match v.handover {
        Handover::Classic => String::new(),
        Handover::Overlap(keep) => match overlap(x, v, from, to, keep).await {
            Overlapped::Done(r) => return r,
            Overlapped::Unsupported(why) => format!(" (handover classic, not overlap: {why})"),
        },
    };
    classic(x, v, from, to, mode, &fallback).await
}

/// The old holder's own address to which the new holder hands the packets
/// of its connections back (`core::overlap::target`: the one baton reaches
/// it by, or one of the VIP's family, for IPv6 in the VIP's prefix, asked
/// of it).
async fn own_address<W: World>(
    x: &mut Exec<'_, W>,
    from: &str,
    v: &Vip,
    reached: IpAddr,
) -> Result<IpAddr, String> {
    let shown = match overlap::target(reached, v.address, v.prefix, None) {
        Target::Is(a) => return Ok(a),
        Target::Missing(why) => return Err(format!("{from}: {why}")),
        Target::Ask => {
            let op = show(from, v);
            match output(&op, x.perform(op.clone()).await) {
                Ok(o) if o.success() => o.stdout_text(),
                Ok(o) => {
                    return Err(format!(
                        "cannot read {from}'s addresses on {}: {}",
                        v.interface,
                        o.stderr_text().trim()
                    ))
                }
                Err(e) => return Err(format!("cannot ask {from} for its addresses: {e}")),
            }
        }
    };
    match overlap::target(reached, v.address, v.prefix, Some(&shown)) {
        Target::Is(a) => Ok(a),
        Target::Missing(why) => Err(format!("{from}: {why}")),
        Target::Ask => Err(format!("{from}'s addresses could not be read")),
    }
}

/// What an overlap handover came to.
enum Overlapped {
    /// It ran (or failed after it began to move the address): the
    /// switch's result.
    Done(Result<Switched, Failed>),
    /// A host lacks what it needs, found before anything moved: the
    /// classic order runs instead, and this says why.
    Unsupported(String),
}

/// The overlap handover (`traffic::handover`): the new host takes the
/// address first, the old one keeps it `keep` longer for its own
/// connections, which the new one hands back to it.
async fn overlap<W: World>(
    x: &mut Exec<'_, W>,
    v: &Vip,
    from: &str,
    to: &str,
    keep: Duration,
) -> Overlapped {
    let cidr = v.to_string();
    let Some(reached) = x
        .pair
        .hosts
        .iter()
        .find(|h| h.name == from)
        .map(|h| h.address)
    else {
        return Overlapped::Unsupported(format!("{from} is no host of the pair"));
    };
    let old = match own_address(x, from, v, reached).await {
        Ok(a) => a,
        Err(why) => return Overlapped::Unsupported(why),
    };
    // (nft applies all or nothing: a failed hand-back left nothing)
    if let Err(e) = handover::hand_back(x, to, v, &old, keep).await {
        return Overlapped::Unsupported(e.0);
    }
    let new_batch = arm(x, to, v).await;
    let secs = handover::lifetime(keep);
    let lapsing = x
        .remote(from, addr(AddrAction::Lapse(secs), v, false))
        .await;
    // sudo refused `ip -o -batch -`: nothing ran, the address is as it was.
    if let Err(e) = &lapsing {
        if e.sudo_refused() {
            let ended = end_note(handover::end(x, to, v, &old).await);
            return Overlapped::Unsupported(format!(
                "{from} cannot give {cidr} a lifetime: {e}{ended}"
            ));
        }
    }
    let lapsing = succeeded(
        &format!("giving {cidr} on {from} a lifetime of {secs} s"),
        lapsing,
    );
    if let Err(e) = lapsing {
        let ended = end_note(handover::end(x, to, v, &old).await);
        // (An IPv6 address that is not there is not changed, an IPv4 one is
        // added: ask where it is.)
        return match holds(x, from, v).await {
            Ok(true) => {
                // Whatever lifetime it may have got, it keeps it for good.
                let kept = x
                    .remote_ok(from, addr(AddrAction::Keep, v, false), "keeping it")
                    .await;
                if kept.is_ok() {
                    Overlapped::Unsupported(format!("{}{ended}", e.0))
                } else {
                    Overlapped::Done(Err(e.with(&format!(
                        "; and {cidr} could not be kept for good on {from}: it may lapse{ended}"
                    ))))
                }
            }
            Ok(false) => {
                let back = x
                    .remote_ok(from, addr(AddrAction::Keep, v, false), "putting it back")
                    .await;
                let restored = if back.is_ok() {
                    "put back on"
                } else {
                    "NOT put back on"
                };
                Overlapped::Done(Err(e.with(&format!(
                    "; {cidr} was {restored} {from}{ended}; traffic stays on {from}"
                ))))
            }
            Err(asked) => Overlapped::Done(Err(e.with(&format!("; {}{ended}", asked.0)))),
        };
    }
    x.world.crash_point("vip-overlap-after-lifetime");
    let started = Instant::now();
    let added = x
        .remote_ok(
            to,
            addr(AddrAction::Replace, v, new_batch),
            &format!("adding {cidr} on {to}"),
        )
        .await;
    let took = started.elapsed();
    // An add whose answer was lost may still have happened: ask.
    if let Err(why) = added {
        if holds(x, to, v).await != Ok(true) {
            let back = x
                .remote_ok(from, addr(AddrAction::Keep, v, false), "keeping it")
                .await;
            let kept = if back.is_ok() {
                "kept for good on the old host"
            } else {
                "NOT kept for good on the old host: its lifetime ends within seconds"
            };
            let ended = end_note(handover::end(x, to, v, &old).await);
            return Overlapped::Done(Err(why.with(&format!("; the address was {kept}{ended}"))));
        }
    }
    let arp_note = announce(x, v, to).await;
    x.world.crash_point("vip-overlap-both-hold");
    let _ = x
        .perform(Op::Wait {
            duration: keep,
            reason: WaitFor::Overlap,
        })
        .await;
    // The hand-back ends first: a connection still open on the old host is
    // then reset at once by the new one, instead of waiting for a packet
    // sent to a host that no longer has the address.
    let ended = end_note(handover::end(x, to, v, &old).await);
    // The old host's own connections to the address end now, each with a
    // reset its client sees at once: left alone, they would wait for
    // answers that can no longer leave, and linger until the host takes
    // the address again, when a client reusing the port meets them.
    let closed = match x
        .remote_ok(
            from,
            Remote::EndConnections { address: v.address },
            &format!("ending {from}'s connections to {}", v.address),
        )
        .await
    {
        Ok(_) => String::new(),
        Err(e) => format!(
            "; {} (they are left to time out; sudoers: `/usr/bin/ss -K -t -n src *`)",
            e.0
        ),
    };
    let removed = x
        .remote_ok(
            from,
            addr(AddrAction::Del, v, false),
            &format!("removing {cidr} from {from}"),
        )
        .await;
    let removed = match removed {
        Ok(_) => String::new(),
        Err(e) => {
            // Its lifetime removes it: wait for that rather than leave two
            // holders (the answer of a del that did happen may be lost
            // too; the confirmation below tells).
            let _ = x
                .perform(Op::Wait {
                    duration: Duration::from_secs(secs),
                    reason: WaitFor::Lifetime,
                })
                .await;
            format!("; {} (waited {secs} s for its lifetime to end)", e.0)
        }
    };
    let [on_from, on_to] = holds_both(x, [from, to], v).await;
    Overlapped::Done(match (on_from, on_to) {
        (Ok(false), Ok(true)) => Ok(Switched {
            detail: format!(
                "{cidr} taken by {to} in {} ms; {from} kept it {} more for its open connections (handover overlap){closed}{removed}{ended}{}",
                took.as_millis(),
                humantime::format_duration(keep),
                arp_note.as_deref().unwrap_or_default()
            ),
            ttl: None,
            announced: arp_note.is_none().then(|| (to.to_string(), v.address)),
        }),
        (a, b) => Err(Failed(format!(
            "after the move, {from} holds {cidr}: {a:?}, {to} holds it: {b:?}{closed}{removed}{ended}"
        ))),
    })
}

/// What a step's detail says when ending a hand-back failed.
fn end_note(ended: Result<(), Failed>) -> String {
    match ended {
        Ok(()) => String::new(),
        Err(e) => format!("; {e} (the hand-back lapses by itself)"),
    }
}

/// The classic order: del on the old holder, then add on the new one.
/// `fallback` says why an overlap handover was not possible, when it was
/// the pair's choice.
async fn classic<W: World>(
    x: &mut Exec<'_, W>,
    v: &Vip,
    from: &str,
    to: &str,
    mode: Mode,
    fallback: &str,
) -> Result<Switched, Failed> {
    let cidr = v.to_string();
    // A switch back (Restore) puts traffic back on the host verified before
    // the run: it must not fail for want of a quiesce hold.
    let best_effort = mode == Mode::Restore;
    let mut skipped = String::new();
    let (held, old_batch, new_batch) = match v.quiesce {
        None => {
            let [old, new] = arm_both(x, [from, to], v).await;
            (None, old, new)
        }
        Some(q) => {
            // The new host first: it ends any hold of its own (left by an
            // earlier switch the other way) and gets ready. Only then does
            // the old one start holding new connections off, so that the
            // hold lasts no longer than it must.
            match quiesce::release(x, to, v).await {
                Err(e) if !best_effort => return Err(e.with(&format!("; traffic stays on {from}"))),
                Err(e) => skipped.push_str(&format!(" ({e}; moved anyway: this is a switch back)")),
                Ok(()) => {}
            }
            let new = arm(x, to, v).await;
            let held = match quiesce::hold(x, from, v, q).await {
                Ok(()) => {
                    x.world.crash_point("vip-after-hold");
                    Some((Instant::now(), q))
                }
                Err(e) => {
                    // (nft applies all or nothing; this is for a hold whose
                    // answer was lost)
                    let note = release_note(quiesce::release(x, from, v).await);
                    if !best_effort {
                        return Err(e.with(&format!("{note}; traffic stays on {from}")));
                    }
                    skipped.push_str(&format!(
                        " ({e}{note}; moved without the hold: this is a switch back)"
                    ));
                    None
                }
            };
            (held, arm(x, from, v).await, new)
        }
    };
    let note = match held {
        Some((since, q)) => {
            // The connections open when the hold began have the rest of
            // the quiesce time to finish.
            let _ = x
                .perform(Op::Wait {
                    duration: q,
                    reason: crate::core::op::WaitFor::Quiesce,
                })
                .await;
            // Starting ip on the old host is bounded by its own timeout,
            // not by the hold's: say so if the hold ran out first.
            let lapsed = if since.elapsed() >= q + quiesce::LAPSE {
                " (the hold had lapsed before the move: starting ip took too long)"
            } else {
                ""
            };
            format!(
                ", after holding new connections off {from} for {}{lapsed}",
                humantime::format_duration(q)
            )
        }
        None => skipped,
    };
    let started = Instant::now();
    let removed = x
        .remote_ok(
            from,
            addr(AddrAction::Del, v, old_batch),
            &format!("removing {cidr} from {from}"),
        )
        .await;
    if let Err(e) = removed {
        let note = end_hold(x, from, v, held.is_some()).await;
        return Err(e.with(&note));
    }
    x.world.crash_point("vip-between-del-and-add");
    let added = x
        .remote_ok(
            to,
            addr(AddrAction::Add, v, new_batch),
            &format!("adding {cidr} on {to}"),
        )
        .await;
    let gap = started.elapsed();
    // An add whose answer was lost may still have happened: ask.
    if let Err(why) = added {
        if holds(x, to, v).await != Ok(true) {
            // Put it back where it was, so the service keeps its address.
            let back = x
                .remote_ok(from, addr(AddrAction::Add, v, false), "putting it back")
                .await;
            let restored = if back.is_ok() {
                "restored on the old host"
            } else {
                "NOT restored"
            };
            let note = end_hold(x, from, v, held.is_some()).await;
            return Err(why.with(&format!("; the address was {restored}{note}")));
        }
    }
    let arp_note = announce(x, v, to).await;
    // Confirm: exactly the new host holds it.
    let [on_from, on_to] = holds_both(x, [from, to], v).await;
    match (on_from, on_to) {
        (Ok(false), Ok(true)) => Ok(Switched {
            detail: format!(
                "{cidr} moved to {to} in {} ms{note}{fallback}{}",
                gap.as_millis(),
                arp_note.as_deref().unwrap_or_default()
            ),
            ttl: None,
            announced: arp_note.is_none().then(|| (to.to_string(), v.address)),
        }),
        (a, b) => {
            let note = end_hold(x, from, v, held.is_some()).await;
            Err(Failed(format!(
                "after the move, {from} holds {cidr}: {a:?}, {to} holds it: {b:?}{note}"
            )))
        }
    }
}

/// The announcement (gratuitous ARP, or for IPv6 unsolicited neighbour
/// advertisements), repeated, in the background on the new holder: arping
/// takes a second per packet and the switch must not wait for it. Its
/// report goes to a file on the host that the executor reads at the end of
/// the next step (`report`). A note for the step's detail when it could
/// not start (then there is no report to read).
pub(super) async fn announce<W: World>(x: &mut Exec<'_, W>, v: &Vip, to: &str) -> Option<String> {
    let sudo = x.pair.ssh.sudo;
    let started = x
        .remote(
            to,
            Remote::Announce {
                interface: v.interface.clone(),
                address: v.address,
                count: v.arp_count,
                sudo,
            },
        )
        .await;
    let what = announcement(&v.address);
    match started {
        Ok(o) if o.success() => None,
        Ok(o) if v.address.is_ipv6() && o.status == Some(NO_PYTHON_EXIT) => Some(format!(
            " (NOT announced: {to} has no python3, which sends the {what}s; neighbours keep sending to the old holder until their cache entries expire, about 35 s: install python3 there)"
        )),
        Ok(o) => Some(format!(
            " (starting the {what} failed: {}; neighbours learn the move only as their caches expire)",
            o.stderr_text().trim()
        )),
        Err(e) => Some(format!(" (starting the {what}: {e})")),
    }
}

/// Reads what the background announcement on `host` printed into the
/// journal (the sender's wrapper writes its status when it ends); a note
/// for the step's detail when it failed or the report could not be read.
pub async fn report<W: World>(x: &mut Exec<'_, W>, host: &str, v: &Vip) -> String {
    let what = announcement(&v.address);
    let out = x.remote(host, Remote::Report { address: v.address }).await;
    let text = match &out {
        Ok(o) if o.success() => o.stdout_text(),
        Ok(o) => {
            return format!(
                "; the {what}'s report could not be read: {}",
                o.stderr_text().trim()
            )
        }
        Err(e) => return format!("; the {what}'s report could not be read: {e}"),
    };
    match announce_status(&text) {
        // Still running: the wrapper reports only when the sender ends.
        Some(0) | None => String::new(),
        Some(code) => {
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty() && !is_status_line(l))
                .unwrap_or("no output");
            format!("; {what} FAILED (exit {code}: {why}): neighbours learn the move only as their caches expire")
        }
    }
}

/// Ends the old host's quiesce hold after a failed move, when it had one;
/// what the step's detail says about it.
async fn end_hold<W: World>(x: &mut Exec<'_, W>, host: &str, v: &Vip, held: bool) -> String {
    if !held {
        return String::new();
    }
    release_note(quiesce::release(x, host, v).await)
}

/// What a step's detail says when ending a quiesce hold failed.
pub fn release_note(released: Result<(), Failed>) -> String {
    match released {
        Ok(()) => String::new(),
        Err(e) => format!("; {e} (the hold lapses by itself)"),
    }
}

/// Puts the VIP on `to` (unless it is there already), announces it and
/// confirms it: for a VIP no host holds, or a failover from a fenced host.
pub async fn take<W: World>(x: &mut Exec<'_, W>, v: &Vip, to: &str) -> Result<Switched, Failed> {
    let cidr = v.to_string();
    if v.quiesce.is_some() {
        // A hold of its own from an earlier switch would drop new
        // connections for a moment; it lapses anyway, so an emergency
        // move does not wait on nft working.
        let _ = quiesce::release(x, to, v).await;
    }
    match holds(x, to, v).await {
        // An address left with a lifetime by an interrupted overlap is
        // kept for good.
        Ok(true) if matches!(v.handover, Handover::Overlap(_)) => {
            x.remote_ok(
                to,
                addr(AddrAction::Keep, v, false),
                &format!("keeping {cidr} on {to} for good"),
            )
            .await?;
        }
        Ok(true) => {}
        Ok(false) => {
            x.remote_ok(
                to,
                addr(AddrAction::Add, v, false),
                &format!("adding {cidr} on {to}"),
            )
            .await?;
        }
        Err(e) => return Err(e.with(&format!(": {to} cannot take {v}"))),
    }
    let arp_note = announce(x, v, to).await;
    match holds(x, to, v).await {
        Ok(true) => Ok(Switched {
            detail: format!(
                "{cidr} is on {to}{}",
                arp_note.as_deref().unwrap_or_default()
            ),
            ttl: None,
            announced: arp_note.is_none().then(|| (to.to_string(), v.address)),
        }),
        other => Err(Failed(format!(
            "after adding, {to} holds {cidr}: {other:?}"
        ))),
    }
}

/// Keeps the VIP on `host` for good (an overlap handover gives the old
/// holder's address a lifetime; a run stopped inside one may leave it on
/// the host that must keep it).
pub async fn keep<W: World>(x: &mut Exec<'_, W>, v: &Vip, host: &str) -> Result<(), Failed> {
    x.remote_ok(
        host,
        addr(AddrAction::Keep, v, false),
        &format!("keeping {v} on {host} for good"),
    )
    .await
    .map(|_| ())
}

/// What a step's detail says when keeping the VIP for good failed.
pub fn keep_note(kept: Result<(), Failed>) -> String {
    match kept {
        Ok(()) => String::new(),
        Err(e) => format!("; {e} (it may lapse within seconds)"),
    }
}
