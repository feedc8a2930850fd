//! Traffic switches: move traffic from one host of a pair to the other and
//! confirm it, and find where traffic is now.
//!
//! - `vip`: remove the address from the old holder, add it on the new one
//!   (two commands on SSH sessions that are already open, so the gap is two
//!   round trips), announce it with repeated gratuitous ARP, then confirm on
//!   both hosts that exactly the new one holds it. Removing fails when the
//!   old holder no longer has the address: a stale run never steals it.
//! - `dns`: one TSIG-signed UPDATE replacing the record only if it still
//!   points at the old holder, then every authoritative server is asked
//!   until all serve the new address.
//! - `command`: the user's hook, then the query hook to confirm.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{Dns, Host, Pair, Traffic, Vip};
use crate::core::cycle::Holder;
use crate::dns;
use crate::observe::holds_address;
use crate::quiesce;
use crate::quote;
use crate::remote::{failure, Recorder};
use crate::ssh::{Armed, Output, SshError, SshHost};

/// Sessions to the two hosts of a pair, in the pair's host order.
pub type Sessions<'a> = [Option<&'a SshHost>; 2];

fn session<'a>(pair: &Pair, sessions: &Sessions<'a>, host: &Host) -> Option<&'a SshHost> {
    pair.hosts
        .iter()
        .position(|h| h.name == host.name)
        .and_then(|i| sessions[i])
}

/// What a successful switch learned.
#[derive(Debug, Clone, Default)]
pub struct Switched {
    /// A line for the journal and the progress output.
    pub detail: String,
    /// For DNS: the record's TTL, which the drain must wait out.
    pub ttl: Option<u32>,
    /// For a VIP: the file on the new holder into which the background
    /// gratuitous ARP writes; the executor reads it into the journal at
    /// the end of the next step (`announced`), when arping has ended.
    pub announcement: Option<String>,
}

/// Where traffic is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// Exactly this host.
    Host(String),
    /// No host (a VIP on neither, a record with no address).
    Neither,
    /// Both, somewhere else, or it could not be asked.
    Unclear,
}

/// How a switch treats traffic that is not where a plain switch expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Traffic must be exactly on `from` (compare-and-swap).
    Normal,
    /// A switch back: a VIP on neither host is put on `to`, the host
    /// verified before the run (how a switch interrupted between its two
    /// halves heals).
    Restore,
    /// A failover: `from` is dead and fenced; a VIP is put on `to` whatever
    /// `from` can say.
    Failover,
}

/// Moves traffic from `from` to `to`.
pub async fn switch(
    pair: &Pair,
    sessions: &Sessions<'_>,
    from: &Host,
    to: &Host,
    mode: Mode,
    rec: &mut Recorder,
) -> Result<Switched, String> {
    if let (Mode::Failover, Traffic::Vip(v)) = (mode, &pair.traffic) {
        return vip_take(v, session(pair, sessions, to), to, rec).await;
    }
    // A DNS record is compared where it is changed: on the zone's primary
    // (the UPDATE's own prerequisite is the swap). The secondaries may lag
    // behind it, which is what the switch waits for, not a reason to refuse
    // (a switch back after they failed to follow must still happen).
    if let Traffic::Dns(d) = &pair.traffic {
        return dns_switch(pair, d, from, to).await;
    }
    // Compare first: traffic must be exactly on `from`. Already on `to` is
    // success (a resumed run, or a switch back after a switch that never
    // happened); anywhere else is someone else's doing, and not ours to undo.
    match holder(pair, sessions).await {
        (Where::Host(h), why) if h == to.name => {
            // A run stopped between the old primary's quiesce hold and the
            // move left it holding traffic but dropping new connections
            // (until the hold lapses): it must accept them again.
            let mut note = String::new();
            if let (Traffic::Vip(v), Some(s)) = (&pair.traffic, session(pair, sessions, to)) {
                if v.quiesce.is_some() {
                    note = release_note(quiesce::release(rec, s, v).await);
                }
            }
            return Ok(Switched {
                detail: format!("traffic is already on {}: {why}{note}", to.name),
                ttl: None,
                announcement: None,
            });
        }
        (Where::Host(h), _) if h == from.name => {}
        (Where::Neither, why) if mode == Mode::Restore => {
            return match &pair.traffic {
                Traffic::Vip(v) => vip_take(v, session(pair, sessions, to), to, rec).await,
                _ => Err(format!("{why}: not restoring by hand")),
            }
        }
        (_, why) => {
            return Err(format!(
                "traffic is not on {} any more ({why}): not switching",
                from.name
            ))
        }
    }
    match &pair.traffic {
        Traffic::Vip(v) => {
            vip(
                v,
                session(pair, sessions, from),
                session(pair, sessions, to),
                to,
                mode,
                rec,
            )
            .await
        }
        Traffic::Dns(d) => dns_switch(pair, d, from, to).await,
        Traffic::Command(c) => {
            let line = c
                .switch
                .replace("{from}", &quote::quote(&from.name))
                .replace("{to}", &quote::quote(&to.name))
                .replace("{from_address}", &quote::quote(&from.address.to_string()))
                .replace("{to_address}", &quote::quote(&to.address.to_string()));
            let out = rec.local(&line, pair.ssh.command_timeout).await;
            if !out.as_ref().is_ok_and(|o| o.success()) {
                return Err(failure("the switch hook", &out));
            }
            match holder(pair, sessions).await {
                (Where::Host(h), _) if h == to.name => Ok(Switched {
                    detail: format!("the hook moved traffic to {}", to.name),
                    ttl: None,
                    announcement: None,
                }),
                (_, why) => Err(format!(
                    "after the switch hook, traffic is not on {}: {why}",
                    to.name
                )),
            }
        }
    }
}

async fn vip(
    v: &Vip,
    from: Option<&SshHost>,
    to: Option<&SshHost>,
    to_host: &Host,
    mode: Mode,
    rec: &mut Recorder,
) -> Result<Switched, String> {
    let (Some(from), Some(to)) = (from, to) else {
        return Err("both hosts must be reachable to move the virtual IP".to_string());
    };
    let cidr = v.to_string();
    // Before the gap, a privileged `ip -batch -` starts on each host, so
    // removing and adding the address do not wait for sudo.
    let arm = |host| arm_ip(host, v.batch);
    // A switch back (Restore) puts traffic back on the host verified before
    // the run: it must not fail for want of a quiesce hold.
    let best_effort = mode == Mode::Restore;
    let mut skipped = String::new();
    let (held, old_ip, new_ip) = match v.quiesce {
        None => {
            let (old_ip, new_ip) = tokio::join!(arm(from), arm(to));
            (None, old_ip, new_ip)
        }
        Some(q) => {
            // The new host first: it ends any hold of its own (left by an
            // earlier switch the other way) and gets ready. Only then does
            // the old one start holding new connections off, so that the
            // hold lasts no longer than it must.
            let released = quiesce::release(rec, to, v).await;
            match released {
                Err(e) if !best_effort => {
                    return Err(format!("{e}; traffic stays on {}", from.target().name))
                }
                Err(e) => skipped.push_str(&format!(" ({e}; moved anyway: this is a switch back)")),
                Ok(()) => {}
            }
            let new_ip = arm(to).await;
            let held = match quiesce::hold(rec, from, v, q).await {
                Ok(since) => {
                    crate::crash::point("vip-after-hold");
                    Some((since, q))
                }
                Err(e) => {
                    // (nft applies all or nothing; this is for a hold whose
                    // answer was lost)
                    let note = release_note(quiesce::release(rec, from, v).await);
                    if !best_effort {
                        return Err(format!(
                            "{e}{note}; traffic stays on {}",
                            from.target().name
                        ));
                    }
                    skipped.push_str(&format!(
                        " ({e}{note}; moved without the hold: this is a switch back)"
                    ));
                    None
                }
            };
            (held, arm(from).await, new_ip)
        }
    };
    let note = match held {
        Some((since, q)) => {
            // The connections open when the hold began have the rest of
            // the quiesce time to finish.
            tokio::time::sleep(q.saturating_sub(since.elapsed())).await;
            // Starting ip on the old host is bounded by its own timeout,
            // not by the hold's: say so if the hold ran out first.
            let lapsed = if since.elapsed() >= q + quiesce::LAPSE {
                " (the hold had lapsed before the move: starting ip took too long)"
            } else {
                ""
            };
            format!(
                ", after holding new connections off {} for {}{lapsed}",
                from.target().name,
                humantime::format_duration(q)
            )
        }
        None => skipped,
    };
    let started = Instant::now();
    let out = ip_now(
        rec,
        from,
        old_ip,
        &["addr", "del", &cidr, "dev", &v.interface],
    )
    .await;
    if !out.as_ref().is_ok_and(|o| o.success()) {
        drop(new_ip);
        let note = end_hold(rec, from, v, held.is_some()).await;
        return Err(failure(
            &format!("removing {cidr} from {}", from.target().name),
            &out,
        ) + &note);
    }
    crate::crash::point("vip-between-del-and-add");
    let out = ip_now(
        rec,
        to,
        new_ip,
        &["addr", "add", &cidr, "dev", &v.interface],
    )
    .await;
    let gap = started.elapsed();
    let added = out.as_ref().is_ok_and(|o| o.success())
        // An add whose answer was lost may still have happened: ask.
        || matches!(holds_address(to, &v.interface, v.address).await, Ok(true));
    if !added {
        let why = failure(&format!("adding {cidr} on {}", to.target().name), &out);
        // Put it back where it was, so the service keeps its address.
        let back = rec
            .run_privileged(from, &["ip", "addr", "add", &cidr, "dev", &v.interface])
            .await;
        let restored = if back.as_ref().is_ok_and(|o| o.success()) {
            "restored on the old host"
        } else {
            "NOT restored"
        };
        let note = end_hold(rec, from, v, held.is_some()).await;
        return Err(format!("{why}; the address was {restored}{note}"));
    }
    let arping = announce(v, to, rec).await;
    // Confirm: exactly the new host holds it.
    let (on_from, on_to) = tokio::join!(
        holds_address(from, &v.interface, v.address),
        holds_address(to, &v.interface, v.address)
    );
    let (arp_note, announcement) = announcing(arping);
    match (on_from, on_to) {
        (Ok(false), Ok(true)) => Ok(Switched {
            detail: format!(
                "{cidr} moved to {} in {} ms{note}{arp_note}",
                to_host.name,
                gap.as_millis()
            ),
            ttl: None,
            announcement,
        }),
        (a, b) => {
            let note = end_hold(rec, from, v, held.is_some()).await;
            Err(format!(
                "after the move, {} holds {cidr}: {a:?}, {} holds it: {b:?}{note}",
                from.target().name,
                to.target().name
            ))
        }
    }
}

/// Ends the old host's quiesce hold after a failed move, when it had one;
/// what the step's detail says about it.
async fn end_hold(rec: &mut Recorder, host: &SshHost, v: &Vip, held: bool) -> String {
    if !held {
        return String::new();
    }
    release_note(quiesce::release(rec, host, v).await)
}

/// What a step's detail says when ending a quiesce hold failed.
fn release_note(released: Result<(), String>) -> String {
    match released {
        Ok(()) => String::new(),
        Err(e) => format!("; {e} (the hold lapses by itself)"),
    }
}

/// Starts `ip -o -batch -` with root privileges on a host, when `batch`;
/// None when it is off or could not start (the commands then run alone).
async fn arm_ip(host: &SshHost, batch: bool) -> Option<Armed> {
    if !batch {
        return None;
    }
    // `-o`: one line per object; the probe (the loopback link, which every
    // host has) proves ip runs before the gap opens.
    host.arm_privileged(&["ip", "-o", "-batch", "-"], b"link show dev lo\n")
        .await
        .ok()
}

/// Runs `ip ARGS` with root privileges on a host: as one line to its armed
/// `ip -batch -` when there is one and it succeeds, else (no batch, or sudo
/// refused it) as its own privileged command. Both attempts are journaled.
async fn ip_now(
    rec: &mut Recorder,
    host: &SshHost,
    armed: Option<Armed>,
    args: &[&str],
) -> Result<Output, SshError> {
    if let Some(armed) = armed {
        // The values are validated addresses and interface names: no
        // whitespace, so the line splits exactly into these words.
        let out = rec.fire(host, armed, &(args.join(" ") + "\n")).await;
        // Only when sudo itself refused `ip -batch` is it certain that the
        // line did nothing, and the command may run again on its own. Any
        // other failure (ip's own error, a lost channel) is the result.
        let refused_by_sudo = out
            .as_ref()
            .is_ok_and(|o| !o.success() && o.stderr_text().trim_start().starts_with("sudo:"));
        if !refused_by_sudo {
            return out;
        }
    }
    let argv: Vec<&str> = std::iter::once("ip").chain(args.iter().copied()).collect();
    rec.run_privileged(host, &argv).await
}

/// Gratuitous ARP, repeated, in the background on the new holder: arping
/// takes a second per packet and the switch must not wait for it. Its
/// output goes to a private file on the host (removed by itself 30 s after
/// arping ends), which `announced` reads into the journal later: arping
/// reports only when it ends (its capabilities make stdbuf useless).
async fn announce(v: &Vip, to: &SshHost, rec: &mut Recorder) -> Result<String, String> {
    let arping = quote::join(&[
        "arping",
        "-U",
        "-c",
        &v.arp_count.to_string(),
        "-I",
        &v.interface,
        &v.address.to_string(),
    ]);
    // arping usually holds the raw-socket capability itself (Debian sets
    // cap_net_raw on it), so it is tried without sudo first: starting sudo
    // would delay the announcement, and clients keep sending to the old
    // host until it arrives.
    let run = if to.target().sudo {
        format!("{arping} || sudo -n {arping}")
    } else {
        arping
    };
    let inner = format!("{run}; echo \"{ARPING_EXIT}$?\"; sleep 30; rm -f \"$BATON_ARPING_LOG\"");
    let line = format!(
        "PATH=\"$PATH:/usr/sbin:/sbin\"; f=$(mktemp /tmp/baton-arping.XXXXXX) && {{ BATON_ARPING_LOG=\"$f\" nohup sh -c {} </dev/null >\"$f\" 2>&1 & }} && echo \"$f\"",
        quote::quote(&inner)
    );
    let out = rec.run(to, &line).await;
    match &out {
        Ok(o) if o.success() => Ok(o.stdout_text().trim().to_string()),
        _ => Err(failure("starting gratuitous ARP", &out)),
    }
}

/// The line the announcement's wrapper prints when arping has ended.
const ARPING_EXIT: &str = "arping exit ";

/// The note for the switch's detail when the announcement could not be
/// started, else the file to read later.
fn announcing(arping: Result<String, String>) -> (String, Option<String>) {
    match arping {
        Ok(f) if f.starts_with("/tmp/baton-arping.") && !f.contains(char::is_whitespace) => {
            (String::new(), Some(f))
        }
        Ok(f) => (format!(" (gratuitous ARP: unexpected answer `{f}`)"), None),
        Err(e) => (format!(" ({e})"), None),
    }
}

/// Reads what the background announcement in `file` printed into the
/// journal (arping writes its report when it ends; errors at once); a note
/// for the step's detail when it failed or has not ended.
pub async fn announced(file: &str, to: &SshHost, rec: &mut Recorder) -> String {
    let out = rec.run(to, &format!("cat -- {}", quote::quote(file))).await;
    let text = match &out {
        Ok(o) => o.stdout_text(),
        Err(e) => return format!("; the gratuitous ARP's report could not be read: {e}"),
    };
    match arping_status(&text) {
        // Still running: arping reports only when it ends.
        Some(0) | None => String::new(),
        Some(code) => {
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty() && !l.starts_with(ARPING_EXIT))
                .unwrap_or("no output");
            format!("; gratuitous ARP FAILED (exit {code}: {why}): neighbours learn the move only as their caches expire")
        }
    }
}

/// arping's exit status from the wrapper's last line, once it has ended.
fn arping_status(text: &str) -> Option<i32> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(ARPING_EXIT))
        .and_then(|c| c.trim().parse().ok())
}

/// Puts a VIP on `to` (unless it is there already), announces it and
/// confirms it: for a VIP no host holds, or a failover from a fenced host.
async fn vip_take(
    v: &Vip,
    to: Option<&SshHost>,
    to_host: &Host,
    rec: &mut Recorder,
) -> Result<Switched, String> {
    let Some(to) = to else {
        return Err(format!(
            "{} is unreachable: it cannot take {v}",
            to_host.name
        ));
    };
    let cidr = v.to_string();
    if v.quiesce.is_some() {
        // A hold of its own from an earlier switch would drop new
        // connections for a moment; it lapses anyway, so an emergency
        // move does not wait on nft working.
        let _ = quiesce::release(rec, to, v).await;
    }
    if holds_address(to, &v.interface, v.address).await != Ok(true) {
        let out = rec
            .run_privileged(to, &["ip", "addr", "add", &cidr, "dev", &v.interface])
            .await;
        if !out.as_ref().is_ok_and(|o| o.success()) {
            return Err(failure(&format!("adding {cidr} on {}", to_host.name), &out));
        }
    }
    let arping = announce(v, to, rec).await;
    let held = holds_address(to, &v.interface, v.address).await;
    let (note, announcement) = announcing(arping);
    match held {
        Ok(true) => Ok(Switched {
            detail: format!("{cidr} is on {}{note}", to_host.name),
            ttl: None,
            announcement,
        }),
        other => Err(format!(
            "after adding, {} holds {cidr}: {other:?}",
            to_host.name
        )),
    }
}

async fn dns_switch(pair: &Pair, d: &Dns, from: &Host, to: &Host) -> Result<Switched, String> {
    let timeout = pair.ssh.connect_timeout.min(Duration::from_secs(5));
    let rtype = dns::record_type_for(&to.address);
    // The update goes to the first server, the zone's primary; the others
    // get it by zone transfer. The record (and its TTL) is read there.
    let primary = d.servers[0];
    let current = dns::query(primary, &d.name, rtype, timeout)
        .await
        .map_err(|e| format!("the primary server {primary}: {e}"))?;
    let current_ttl = current.ttl.unwrap_or(300);
    let addresses = current.addresses();
    if addresses == vec![to.address] {
        // A resumed run, or a switch back after a switch whose update never
        // landed: only the other servers may still have to follow.
        let ms = propagated(d, to.address, None, rtype, timeout, Instant::now())
            .await
            .map_err(|e| {
                format!(
                    "{} already pointed at {} on the primary server, but {e}",
                    d.name, to.name
                )
            })?;
        return Ok(Switched {
            detail: format!(
                "{} already pointed at {} ({}) on the primary server; all {} server(s) serve it after {ms} ms",
                d.name,
                to.name,
                to.address,
                d.servers.len()
            ),
            ttl: Some(current_ttl),
            announcement: None,
        });
    }
    if addresses != vec![from.address] {
        return Err(format!(
            "{} points at {:?} on {primary}, not at {} ({}): not switching",
            d.name, current.values, from.name, from.address
        ));
    }
    let mut lowered = String::new();
    let mut drain_ttl = current_ttl;
    // Lowering the TTL one old TTL ahead: once the old TTL has passed, no
    // cache holds the old answer for longer than the lowered one, so the
    // drain after the switch is short.
    if let Some(low) = d.switch_ttl.filter(|low| *low < current_ttl) {
        let lower = dns::Replace {
            zone: &d.zone,
            name: &d.name,
            expected: &[from.address],
            new: from.address,
            ttl: low,
        };
        dns::replace(primary, lower, &d.tsig_key, timeout)
            .await
            .map_err(|e| format!("lowering the TTL: {e}"))?;
        // The old TTL counts from when every server gives the lowered one
        // (a secondary takes it a moment later, by transfer).
        if let Err(e) = propagated(d, from.address, Some(low), rtype, timeout, Instant::now()).await
        {
            let note = restore_ttl(d, from, current_ttl, timeout).await;
            return Err(format!("the lowered TTL was accepted, but {e}{note}"));
        }
        tokio::time::sleep(Duration::from_secs(u64::from(current_ttl))).await;
        lowered = format!(" (TTL lowered from {current_ttl}s to {low}s {current_ttl}s ahead)");
        drain_ttl = low;
    }
    // The new record gets the normal TTL straight away: it is the right answer.
    let ttl = d.ttl.unwrap_or(current_ttl);
    let started = Instant::now();
    let replace = dns::Replace {
        zone: &d.zone,
        name: &d.name,
        expected: &[from.address],
        new: to.address,
        ttl,
    };
    if let Err(e) = dns::replace(primary, replace, &d.tsig_key, timeout).await {
        let note = if lowered.is_empty() {
            String::new()
        } else {
            restore_ttl(d, from, current_ttl, timeout).await
        };
        return Err(format!("{e}{note}"));
    }
    crate::crash::point("dns-after-update");
    let ms = propagated(d, to.address, None, rtype, timeout, started)
        .await
        .map_err(|e| format!("the update was accepted, but {e}"))?;
    Ok(Switched {
        detail: format!(
            "{} now points at {} ({}) on all {} server(s) after {ms} ms, TTL {ttl}s{lowered}",
            d.name,
            to.name,
            to.address,
            d.servers.len(),
        ),
        ttl: Some(drain_ttl),
        announcement: None,
    })
}

/// After a switch that lowered the record's TTL and then failed with the
/// record still on `from`: puts the TTL back (compare-and-swap on the
/// address), so the lowered TTL does not become the record's normal one.
/// A note for the step's detail.
async fn restore_ttl(d: &Dns, from: &Host, ttl: u32, timeout: Duration) -> String {
    let back = dns::Replace {
        zone: &d.zone,
        name: &d.name,
        expected: &[from.address],
        new: from.address,
        ttl,
    };
    match dns::replace(d.servers[0], back, &d.tsig_key, timeout).await {
        Ok(()) => format!("; the TTL was put back to {ttl}s"),
        Err(e) => format!("; the TTL could not be put back to {ttl}s: {e}"),
    }
}

/// Waits until every authoritative server serves exactly `address` (with
/// the TTL `ttl`, when given), at most `propagation_timeout`, asking them
/// all every 100 ms; the milliseconds since `started` when they did.
async fn propagated(
    d: &Dns,
    address: IpAddr,
    ttl: Option<u32>,
    rtype: hickory_proto::rr::RecordType,
    timeout: Duration,
    started: Instant,
) -> Result<u128, String> {
    let deadline = Instant::now() + d.propagation_timeout;
    loop {
        let answers = futures_util::future::join_all(
            d.servers
                .iter()
                .map(|s| dns::query(*s, &d.name, rtype, timeout)),
        )
        .await;
        let lagging: Vec<String> = d
            .servers
            .iter()
            .zip(&answers)
            .filter(|(_, a)| {
                !matches!(a, Ok(a) if a.addresses() == vec![address]
                    && ttl.is_none_or(|t| a.ttl == Some(t)))
            })
            .map(|(s, a)| {
                format!(
                    "{s}: {}",
                    a.as_ref()
                        .map(|a| match (ttl, a.ttl) {
                            (Some(_), Some(t)) => format!("{} (TTL {t}s)", a.values.join(",")),
                            _ => a.values.join(","),
                        })
                        .unwrap_or_else(|e| e.to_string())
                )
            })
            .collect();
        if lagging.is_empty() {
            return Ok(started.elapsed().as_millis());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not every server serves it: {}",
                lagging.join("; ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where traffic is now, with the evidence.
pub async fn holder(pair: &Pair, sessions: &Sessions<'_>) -> (Where, String) {
    match &pair.traffic {
        Traffic::Vip(v) => {
            let mut holders = Vec::new();
            for (h, s) in pair.hosts.iter().zip(sessions) {
                match s {
                    None => return (Where::Unclear, format!("{} cannot be asked", h.name)),
                    Some(s) => match holds_address(s, &v.interface, v.address).await {
                        Ok(true) => holders.push(h.name.clone()),
                        Ok(false) => {}
                        Err(e) => return (Where::Unclear, e),
                    },
                }
            }
            match holders.as_slice() {
                [one] => (Where::Host(one.clone()), format!("{one} holds {v}")),
                [] => (Where::Neither, format!("no host holds {v}")),
                _ => (Where::Unclear, format!("both hosts hold {v}")),
            }
        }
        Traffic::Dns(d) => {
            let timeout = pair.ssh.connect_timeout.min(Duration::from_secs(5));
            let rtype = dns::record_type_for(&pair.hosts[0].address);
            let answers = futures_util::future::join_all(
                d.servers
                    .iter()
                    .map(|s| dns::query(*s, &d.name, rtype, timeout)),
            )
            .await;
            let mut seen: Option<Vec<IpAddr>> = None;
            for (s, a) in d.servers.iter().zip(answers) {
                match a {
                    Err(e) => return (Where::Unclear, format!("{s}: {e}")),
                    Ok(a) => {
                        let addrs = a.addresses();
                        if seen.as_ref().is_some_and(|prev| *prev != addrs) {
                            return (Where::Unclear, DISAGREE.to_string());
                        }
                        seen = Some(addrs);
                    }
                }
            }
            let addrs = seen.unwrap_or_default();
            let ours: Vec<&Host> = pair
                .hosts
                .iter()
                .filter(|h| addrs.contains(&h.address))
                .collect();
            match ours.as_slice() {
                _ if addrs.is_empty() => {
                    (Where::Neither, format!("{} has no address record", d.name))
                }
                [one] if addrs.len() == 1 => (
                    Where::Host(one.name.clone()),
                    format!("{} points at {}", d.name, one.name),
                ),
                _ => (Where::Unclear, format!("{} points at {addrs:?}", d.name)),
            }
        }
        Traffic::Command(c) => {
            let mut rec = Recorder::default();
            match rec.local(&c.query, pair.ssh.command_timeout).await {
                Ok(o) if o.success() => {
                    let said = o.stdout_text().trim().to_string();
                    match pair
                        .hosts
                        .iter()
                        .find(|h| h.name == said || h.address.to_string() == said)
                    {
                        Some(h) => (
                            Where::Host(h.name.clone()),
                            format!("the query hook says {}", h.name),
                        ),
                        None => (Where::Unclear, format!("the query hook says `{said}`")),
                    }
                }
                other => (Where::Unclear, failure("the query hook", &other)),
            }
        }
    }
}

/// What `holder` says of DNS servers that give different answers.
const DISAGREE: &str = "the authoritative servers disagree";

/// Where traffic is, relative to a run's old (`from`) and new (`to`) primary.
/// A run stopped inside a DNS switch may have left the zone's primary
/// changed and a secondary not yet following (a transfer on its way): as
/// the switch itself would, this waits up to `propagation_timeout` for the
/// servers to agree before calling traffic unclear.
pub async fn holder_for_run(
    pair: &Pair,
    sessions: &Sessions<'_>,
    from: &str,
    to: &str,
) -> (Holder, String) {
    let patience = match &pair.traffic {
        Traffic::Dns(d) => d.propagation_timeout,
        _ => Duration::ZERO,
    };
    let deadline = Instant::now() + patience;
    let (h, why) = loop {
        let (h, why) = holder(pair, sessions).await;
        if h != Where::Unclear || why != DISAGREE || Instant::now() >= deadline {
            break (h, why);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let holder = match h {
        Where::Host(h) if h == from => Holder::Old,
        Where::Host(h) if h == to => Holder::New,
        Where::Neither => Holder::Neither,
        _ => Holder::Unclear,
    };
    (holder, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announcements_exit_status_is_read_from_its_wrappers_last_line() {
        assert_eq!(
            arping_status("ARPING 198.18.0.100 from 198.18.0.100 eth0\n"),
            None
        );
        assert_eq!(
            arping_status(
                "Sent 3 probes (3 broadcast(s))\nReceived 0 response(s)\narping exit 0\n"
            ),
            Some(0)
        );
        assert_eq!(
            arping_status(
                "arping: Device eth9 not available.\nsudo: a password is required\narping exit 1\n"
            ),
            Some(1)
        );
    }
}
