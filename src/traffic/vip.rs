//! The `vip` method: remove the address from the old holder, add it on
//! the new one (each one line to an `ip -batch` started on the host before
//! the gap, so the gap is two round trips; an IPv6 address `nodad`, usable
//! at once), announce it in the background (repeated gratuitous ARP, or
//! for IPv6 unsolicited neighbour advertisements: `core::announce`), then
//! confirm on both hosts that exactly the new one holds it. Removing fails
//! when the old holder no longer has the address: a stale run never steals
//! it. With `quiesce`, the old holder first holds new connections off
//! (`quiesce`).

use std::time::Instant;

use super::{quiesce, Mode, Switched};
use crate::config::Vip;
use crate::core::announce::{announce_status, announcement, is_status_line, NO_PYTHON_EXIT};
use crate::core::ifaddr::{self, Held};
use crate::core::op::{AddrAction, Op, Remote};
use crate::exec::{output, Exec, Failed, OpError, World};

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

/// Moves the VIP from `from` to `to` (traffic was found on `from`).
pub async fn switch<W: World>(
    x: &mut Exec<'_, W>,
    v: &Vip,
    from: &str,
    to: &str,
    mode: Mode,
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
                "{cidr} moved to {to} in {} ms{note}{}",
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
