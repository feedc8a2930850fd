//! Pure assessment of a pair from an observation: who really holds traffic,
//! whether that agrees with the record, what drifted, and how bad it is.
//! No I/O: the observation is gathered by `observe`, the verdict rendered
//! by the CLI.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::config::CheckRole;
use crate::core::position::{Report, RoleState};

use crate::core::cycle::{Kind, Step};
use crate::core::holder::{classify, list, Doubt, HostSays, Says};

/// The recorded roles of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Roles {
    /// Host holding traffic.
    pub primary: String,
    /// The other one.
    pub standby: String,
}

/// One check's outcome on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    /// Check name.
    pub name: String,
    /// Passed or not.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
    /// Whether it runs over SSH (a command check) rather than asking the
    /// host's service directly.
    #[serde(skip)]
    pub via_ssh: bool,
    /// Where it must pass (a check of the primary fails on a standby by
    /// design, and is not held against it).
    #[serde(skip)]
    pub role: CheckRole,
}

impl CheckOutcome {
    /// Whether it counts on a host seen as `role` (`None`: not known,
    /// only the checks of any host count).
    pub fn counts_as(&self, role: Option<CheckRole>) -> bool {
        match role {
            Some(r) => self.role.runs_as(r),
            None => self.role == CheckRole::Any,
        }
    }
}

/// What was seen of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSeen {
    /// Host name.
    pub name: String,
    /// Its own address.
    pub address: Option<IpAddr>,
    /// `Err(reason)` when SSH could not reach it.
    pub ssh: Result<(), String>,
    /// For a VIP pair: whether the VIP is on its interface (`None`: unknown).
    pub holds_vip: Option<bool>,
    /// For a VIP pair: why the host could not be asked whether it holds the
    /// VIP although SSH reached it (a wrong interface, `ip` missing).
    pub vip_error: Option<String>,
    /// For a pair whose VIP is IPv6: whether the host can announce it
    /// (`python3` found, which sends the neighbour advertisements;
    /// `None`: not asked).
    pub announces: Option<bool>,
    /// For a VIP pair whose handover is the overlap: whether the host can
    /// take part, and whether the pair chose it (`None`: not asked).
    pub overlaps: Option<crate::core::overlap::Seen>,
    /// Output of the version command, or why it failed.
    pub version: Option<Version>,
    /// Health checks.
    pub checks: Vec<CheckOutcome>,
    /// A pair with role hooks: what its `position` hook said (`Err`: why
    /// it could not tell); `None` without role hooks or SSH.
    pub role: Option<Result<Report, String>>,
}

impl HostSeen {
    /// Reachable and every check of any host passed (the checks of a
    /// primary or a standby are judged where the host's role is known).
    pub fn healthy(&self) -> bool {
        self.ssh.is_ok()
            && self
                .checks
                .iter()
                .filter(|c| c.counts_as(None))
                .all(|c| c.ok)
    }

    /// What its `position` hook said of its role, when it said it.
    pub fn role_state(&self) -> Option<RoleState> {
        match &self.role {
            Some(Ok(r)) => Some(r.state),
            _ => None,
        }
    }

    /// Its service answers on its own address: it has checks that do not
    /// need SSH, and every one of them passed (whatever SSH says). A host
    /// that serves may still hold traffic, even when SSH cannot reach it.
    pub fn serving(&self) -> bool {
        let direct: Vec<&CheckOutcome> = self.checks.iter().filter(|c| !c.via_ssh).collect();
        !direct.is_empty() && direct.iter().all(|c| c.ok)
    }

    /// The names of the checks of any host it failed, with what was seen.
    pub fn failing_checks(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok && c.counts_as(None))
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }
}

/// What the version command said on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// What it printed (trimmed).
    Printed(String),
    /// Why it failed.
    Failed(String),
}

/// What was seen of the traffic switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficSeen {
    /// VIP holders come from `HostSeen::holds_vip`.
    Vip,
    /// Each authoritative server's answer (addresses) or why it gave none.
    Dns {
        /// Per server, in the order of `servers`.
        answers: Vec<(SocketAddr, Result<Vec<IpAddr>, String>)>,
        /// The TSIG key, proved against the zone's primary.
        key: KeySeen,
    },
    /// The query hook's answer (a host name or address) or its failure.
    Command(Result<String, crate::core::holder::HookFailed>),
    /// A balancer's `show stat`, read, or why it could not be.
    Balancer {
        /// The pair's backend.
        backend: String,
        /// The weight the pair file gives the server holding traffic.
        weight: u32,
        /// Every server's statistics.
        stats: Result<Vec<crate::core::balancer::ServerStat>, String>,
    },
}

/// What became of proving the TSIG key against the zone's primary (a
/// signed query, which changes nothing), each with the sentence to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySeen {
    /// The server verified the signature and signed its answer with the key.
    Proven(String),
    /// The server refused the signature (BADKEY, BADSIG, BADTIME): its
    /// update would be refused the same way.
    Refused(String),
    /// The server answered, but that proves nothing or shows that a switch
    /// would fail (not the zone's primary, an answer that does not verify).
    Unproven(String),
    /// The server could not be asked (no answer in time, no route).
    Unasked(String),
}

impl KeySeen {
    /// Proven.
    pub fn ok(&self) -> bool {
        matches!(self, KeySeen::Proven(_))
    }

    /// The sentence to show.
    pub fn detail(&self) -> &str {
        match self {
            KeySeen::Proven(d)
            | KeySeen::Refused(d)
            | KeySeen::Unproven(d)
            | KeySeen::Unasked(d) => d,
        }
    }
}

/// Everything observed of one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSeen {
    /// The two hosts.
    pub hosts: [HostSeen; 2],
    /// The switch.
    pub traffic: TrafficSeen,
    /// What the state file says, if anything.
    pub recorded: Option<Roles>,
    /// The pair's last run, from its journal and its lock.
    pub last_run: LastRun,
}

/// The pair's last run, as its journal and its lock tell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LastRun {
    /// It finished (or there is none, or the journal was not read).
    #[default]
    Settled,
    /// It has not finished and a baton process holds the pair's lock.
    InProgress {
        /// Its run id.
        run: String,
        /// The holder's process id.
        pid: u32,
        /// Who started it.
        operator: String,
        /// It splits requests between the hosts (a ramp, an A/B
        /// experiment): both taking requests is expected.
        splits: bool,
    },
    /// A run holds the pair for the operator's decision: an A/B
    /// experiment's split, or a hold of the old primary on the old version.
    Held {
        /// The pair (for the command to run).
        pair: String,
        /// Its run id.
        run: String,
        /// The updated host.
        to: String,
        /// The old primary.
        from: String,
        /// The change it runs.
        change: String,
        /// What holds it.
        by: HeldBy,
    },
    /// It never finished and no process holds the lock: the controller was
    /// killed or lost power. Traffic may move when it is settled.
    Interrupted {
        /// The pair (for the command to run).
        pair: String,
        /// Its run id.
        run: String,
        /// What kind of run.
        kind: Kind,
        /// The step it died in (`None`: between steps).
        open: Option<Step>,
        /// The last step that ended, if any.
        last: Option<Step>,
    },
}

/// What holds a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldBy {
    /// An A/B experiment: this share of new requests to the updated host.
    Experiment {
        /// Percent.
        percent: u8,
    },
    /// A hold: traffic on the updated host, the old primary on the old
    /// version until `until` (RFC 3339), `expired` once that has passed.
    Hold {
        /// When the hold ends.
        until: String,
        /// It has ended: finish or revert it.
        expired: bool,
    },
}

pub use crate::core::holder::{Holder, Unknown};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing, nothing wrong (a hold that has not ended).
    Note,
    /// Serving, but without a healthy standby or with a source unasked.
    Degraded,
    /// Someone must look: drift, split brain, no holder, primary unhealthy.
    Operator,
}

/// One thing wrong with a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of drift or trouble.
    pub kind: Drift,
    /// How bad.
    pub severity: Severity,
    /// What, in a sentence.
    pub message: String,
}

/// The kinds of findings (status JSON: `findings[].kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    /// Who holds traffic is certain but for a doubt (a host or server not
    /// asked, an address of neither host).
    Doubt,
    /// The authoritative servers give different answers.
    Disagree,
    /// Both hosts hold traffic.
    SplitBrain,
    /// No host holds traffic.
    NoHolder,
    /// Who holds traffic cannot be told.
    Unclear,
    /// A run is in progress.
    InProgress,
    /// The last run was interrupted and is not settled.
    Interrupted,
    /// Traffic is on the host the record does not name (changed outside baton).
    NotAsRecorded,
    /// SSH cannot reach a host.
    Unreachable,
    /// A host cannot be asked whether it holds the VIP.
    VipUnasked,
    /// A host fails a check.
    CheckFails,
    /// The version command failed.
    Version,
    /// A host of a pair whose VIP is IPv6 has no python3: the address
    /// would move to it unannounced.
    NoAnnouncer,
    /// A host of a pair with `handover = "overlap"` cannot take part in
    /// it: a switch with it uses the classic order.
    NoOverlap,
    /// The state directory's journal or state file cannot be read or
    /// written.
    Records,
    /// A host is marked failed since a failover.
    Failed,
    /// The TSIG key is refused or not proved.
    Key,
    /// A pair with role hooks: both hosts take writes.
    TwoWritable,
    /// A pair with role hooks: the host holding traffic does not take
    /// writes.
    PrimaryReadOnly,
    /// A pair with role hooks: the standby does not replicate (stopped,
    /// or not a standby).
    NotReplicating,
    /// A pair with role hooks: a host's `position` hook could not tell.
    RoleUnknown,
    /// A balancer: the server holding traffic has another weight than the
    /// pair file gives it (changed by hand).
    BalancerWeight,
    /// A balancer: a server is in maintenance.
    BalancerMaint,
    /// An A/B experiment holds the pair (a share of requests on the
    /// updated standby until the operator ends it).
    Experiment,
    /// A hold: the old primary kept on the old version after the switch,
    /// until the operator finishes or reverts it (degraded once the hold
    /// has ended).
    Held,
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// All well.
    Ok,
    /// Serving, but not redundant or not fully observed.
    Degraded,
    /// Needs an operator.
    Operator,
}

/// The assessment of one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// Who really holds traffic.
    pub holder: Holder,
    /// Roles to record because none were recorded and reality is clear.
    pub record: Option<Roles>,
    /// What is wrong.
    pub findings: Vec<Finding>,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Why moving traffic would fail before it could move (a DNS key the
    /// zone's primary refuses or that could not be proved); every run that
    /// switches, a failover included, refuses to start on these.
    pub switch_blocked: Vec<String>,
    /// Exactly one host holds traffic, but not the one the record names
    /// (changed outside baton): no run may start until an operator looks.
    pub not_as_recorded: bool,
}

/// Assesses an observation.
pub fn assess(seen: &PairSeen) -> Assessment {
    let mut findings = Vec::new();
    let mut switch_blocked = Vec::new();
    // A ramp going on, or an A/B experiment, splits requests on purpose.
    let split_on_purpose = matches!(
        seen.last_run,
        LastRun::InProgress { splits: true, .. }
            | LastRun::Held {
                by: HeldBy::Experiment { .. },
                ..
            }
    );
    let mut add = |kind, severity, message: String| {
        findings.push(Finding {
            kind,
            severity,
            message,
        });
    };
    let [a, b] = &seen.hosts;

    let says = match &seen.traffic {
        TrafficSeen::Vip => Says::Vip,
        TrafficSeen::Dns { answers, key } => {
            switch_blocked.extend(dns_key(key, &mut add));
            Says::Dns(answers)
        }
        TrafficSeen::Command(answer) => Says::Hook(answer),
        TrafficSeen::Balancer {
            backend,
            weight,
            stats,
        } => {
            // The split's weights are not the pair file's.
            let weight = (!split_on_purpose).then_some(*weight);
            switch_blocked.extend(balancer(backend, weight, stats, &mut add));
            Says::Balancer { backend, stats }
        }
    };
    let said = |h: &HostSeen| HostSays {
        name: h.name.clone(),
        address: h.address,
        holds_vip: h.holds_vip,
    };
    let classified = classify(&[said(a), said(b)], &says);
    for doubt in &classified.doubts {
        let severity = match doubt {
            Doubt::Unconfirmed { .. } | Doubt::Silent { .. } => Severity::Degraded,
            Doubt::Foreign(_) => Severity::Operator,
        };
        add(Drift::Doubt, severity, doubt.to_string());
    }
    if !classified.disagreement.is_empty() {
        let shown: Vec<String> = classified
            .disagreement
            .iter()
            .map(|(s, v)| format!("{s} says {}", list(v)))
            .collect();
        add(
            Drift::Disagree,
            Severity::Operator,
            format!("the authoritative servers disagree: {}", shown.join("; ")),
        );
    }
    let holder = classified.holder;
    match &holder {
        Holder::Both if split_on_purpose => {}
        Holder::Both => add(
            Drift::SplitBrain,
            Severity::Operator,
            "split brain: both hosts hold traffic".to_string(),
        ),
        Holder::Neither => add(
            Drift::NoHolder,
            Severity::Operator,
            "no host holds traffic".to_string(),
        ),
        Holder::Unknown(why) => add(
            Drift::Unclear,
            Severity::Operator,
            format!("cannot tell who holds traffic: {why}"),
        ),
        Holder::Host(_) => {}
    }

    match &seen.last_run {
        LastRun::Settled => {}
        LastRun::Held {
            pair,
            run,
            to,
            change,
            by: HeldBy::Experiment { percent },
            ..
        } => add(
            Drift::Experiment,
            Severity::Degraded,
            format!(
                "an A/B experiment (run {run}) sends {percent}% of new requests to {to}, which runs change {change}; end it with `baton ab {pair} --end --keep new|old`"
            ),
        ),
        LastRun::Held {
            pair,
            run,
            to,
            from,
            change,
            by: HeldBy::Hold { until, expired },
        } => add(
            Drift::Held,
            if *expired {
                Severity::Degraded
            } else {
                Severity::Note
            },
            format!(
                "held (run {run}): traffic on {to} with change {change}, {from} kept on the old version {} {until}; `baton finish {pair}` updates it, `baton revert {pair}` goes back to it",
                if *expired { "since the hold ENDED at" } else { "until" }
            ),
        ),
        LastRun::InProgress {
            run, pid, operator, ..
        } => add(
            Drift::InProgress,
            Severity::Degraded,
            format!(
                "run {run} is in progress (pid {pid}, {operator}): what is seen may change under it"
            ),
        ),
        LastRun::Interrupted {
            pair,
            run,
            kind,
            open,
            last,
        } => {
            let at = match (open, last) {
                (Some(s), _) => format!("inside {}", s.name()),
                (None, Some(s)) => format!("after {}", s.name()),
                (None, None) => "before its first step".to_string(),
            };
            add(
                Drift::Interrupted,
                Severity::Operator,
                format!(
                    "{} run {run} was interrupted {at} and is not settled: traffic may still move; run `baton recover {pair}`",
                    kind.name()
                ),
            );
        }
    }

    let mut record = None;
    if let Holder::Host(h) = &holder {
        match &seen.recorded {
            Some(r) if &r.primary != h => add(
                Drift::NotAsRecorded,
                Severity::Operator,
                format!(
                    "traffic is on {h}, but the record says {} is primary (changed outside baton?)",
                    r.primary
                ),
            ),
            Some(_) => {}
            None => {
                let other = if &a.name == h { &b.name } else { &a.name };
                record = Some(Roles {
                    primary: h.clone(),
                    standby: other.clone(),
                });
            }
        }
    }

    // Health: the host serving traffic matters most.
    let primary_name = match (&holder, &seen.recorded) {
        (Holder::Host(h), _) => Some(h.clone()),
        (_, Some(r)) => Some(r.primary.clone()),
        _ => None,
    };
    for h in &seen.hosts {
        let (role, severity, as_role) = match primary_name.as_deref() {
            Some(p) if p == h.name => ("primary", Severity::Operator, Some(CheckRole::Primary)),
            Some(_) => ("standby", Severity::Degraded, Some(CheckRole::Standby)),
            // Without a known primary, any failing host may be the one serving.
            None => ("host", Severity::Operator, None),
        };
        if let Err(e) = &h.ssh {
            add(
                Drift::Unreachable,
                severity,
                format!("{role} {} is unreachable: {e}", h.name),
            );
        }
        if let Some(e) = &h.vip_error {
            add(
                Drift::VipUnasked,
                Severity::Operator,
                format!("cannot tell whether {} holds the virtual IP: {e}", h.name),
            );
        }
        for c in h.checks.iter().filter(|c| !c.ok && c.counts_as(as_role)) {
            add(
                Drift::CheckFails,
                severity,
                format!("{role} {} fails check {}: {}", h.name, c.name, c.detail),
            );
        }
        if h.announces == Some(false) {
            add(
                Drift::NoAnnouncer,
                Severity::Degraded,
                format!(
                    "{} has no python3: an IPv6 virtual IP moved to it is not announced (no unsolicited neighbour advertisement), so neighbours keep sending to the old holder until their cache entries expire; install python3 there",
                    h.name
                ),
            );
        }
        if let Some(crate::core::overlap::Seen {
            able: Err(why),
            chosen,
        }) = &h.overlaps
        {
            add(
                Drift::NoOverlap,
                if *chosen {
                    Severity::Degraded
                } else {
                    Severity::Note
                },
                format!(
                    "{} cannot take part in the overlap handover ({why}): a switch to or from it uses the classic order (remove, then add), in whose gap a new connection's SYN waits for the client's retransmit",
                    h.name
                ),
            );
        }
        if let Some(Version::Failed(e)) = &h.version {
            if h.ssh.is_ok() {
                add(
                    Drift::Version,
                    Severity::Degraded,
                    format!("cannot read the version on {}: {e}", h.name),
                );
            }
        }
    }

    for (kind, severity, message) in role_findings(seen, primary_name.as_deref()) {
        add(kind, severity, message);
    }

    let verdict = match findings.iter().map(|f| f.severity).max() {
        None | Some(Severity::Note) => Verdict::Ok,
        Some(Severity::Degraded) => Verdict::Degraded,
        Some(Severity::Operator) => Verdict::Operator,
    };
    let not_as_recorded = findings.iter().any(|f| f.kind == Drift::NotAsRecorded);
    Assessment {
        holder,
        record,
        findings,
        verdict,
        switch_blocked,
        not_as_recorded,
    }
}

/// The findings of a pair with role hooks: at most one host takes writes,
/// and it is the one holding traffic (`primary`); the other replicates.
fn role_findings(seen: &PairSeen, primary: Option<&str>) -> Vec<(Drift, Severity, String)> {
    let mut out = Vec::new();
    if seen.hosts.iter().all(|h| h.role.is_none()) {
        return out;
    }
    for h in &seen.hosts {
        if let Some(Err(e)) = &h.role {
            out.push((
                Drift::RoleUnknown,
                Severity::Degraded,
                format!("cannot tell the role of {}: {e}", h.name),
            ));
        }
    }
    let writable: Vec<&str> = seen
        .hosts
        .iter()
        .filter(|h| h.role_state() == Some(RoleState::Primary))
        .map(|h| h.name.as_str())
        .collect();
    if writable.len() == 2 {
        out.push((
            Drift::TwoWritable,
            Severity::Operator,
            format!(
                "two writable primaries: both {} and {} take writes (split brain of the data)",
                writable[0], writable[1]
            ),
        ));
        return out;
    }
    let Some(p) = primary else {
        return out;
    };
    for h in &seen.hosts {
        let Some(state) = h.role_state() else {
            continue;
        };
        if h.name == p && state != RoleState::Primary {
            out.push((
                Drift::PrimaryReadOnly,
                Severity::Operator,
                format!(
                    "{} holds traffic but does not take writes (it is {})",
                    h.name,
                    state.name()
                ),
            ));
        }
        if h.name != p && state != RoleState::Standby {
            out.push((
                Drift::NotReplicating,
                if state == RoleState::Primary {
                    Severity::Operator
                } else {
                    Severity::Degraded
                },
                format!(
                    "standby {} does not replicate (it is {})",
                    h.name,
                    state.name()
                ),
            ));
        }
    }
    out
}

/// The host holding traffic and its position, when it says it takes
/// writes: what is recorded as the last position seen from the primary,
/// which a failover compares the standby with.
pub fn primary_position<'a>(
    seen: &'a PairSeen,
    holder: &Holder,
) -> Option<(&'a str, crate::core::position::Position)> {
    let Holder::Host(p) = holder else {
        return None;
    };
    let h = seen.hosts.iter().find(|h| &h.name == p)?;
    match &h.role {
        Some(Ok(r)) if r.state == RoleState::Primary => Some((h.name.as_str(), r.position)),
        _ => None,
    }
}

/// How far a pair's standby is behind its primary, when both positions
/// are known: bytes (or the position's unit), and seconds when the hook
/// gives them.
pub fn replication_lag(
    seen: &PairSeen,
    primary: &str,
) -> Option<(u64, Option<std::time::Duration>)> {
    let report = |want: bool| {
        seen.hosts
            .iter()
            .find(|h| (h.name == primary) == want)
            .and_then(|h| h.role.as_ref())
            .and_then(|r| r.as_ref().ok())
    };
    let (p, s) = (report(true)?, report(false)?);
    if p.state != RoleState::Primary || s.state != RoleState::Standby {
        return None;
    }
    let bytes = s.position.lag_behind(p.position).ok()?;
    Some((bytes, s.delay))
}

/// The findings of a balancer's servers: a server in maintenance (a
/// switch to it would take it out of an operator's maintenance, so none
/// starts), the server holding traffic at another weight than the pair
/// file's (changed by hand; `None` while a run splits requests on
/// purpose); returns why a switch would not start.
fn balancer(
    backend: &str,
    weight: Option<u32>,
    stats: &Result<Vec<crate::core::balancer::ServerStat>, String>,
    add: &mut impl FnMut(Drift, Severity, String),
) -> Vec<String> {
    let mut blocked = Vec::new();
    let Ok(stats) = stats else {
        return blocked;
    };
    for s in stats.iter().filter(|s| s.backend == backend) {
        if s.status.starts_with("MAINT") {
            let message = format!(
                "server {backend}/{} is in maintenance on the balancer ({}): no switch moves traffic to it until it is made ready (`set server {backend}/{} state ready`, weight 0)",
                s.server, s.status, s.server
            );
            add(Drift::BalancerMaint, Severity::Degraded, message.clone());
            blocked.push(message);
        } else if let Some(weight) = weight.filter(|w| s.serving() && s.weight != *w) {
            add(
                Drift::BalancerWeight,
                Severity::Degraded,
                format!(
                    "server {backend}/{} takes new requests with weight {}, the pair file says {weight} (changed by hand?)",
                    s.server, s.weight
                ),
            );
        }
    }
    blocked
}

/// The finding for the TSIG key, if it is not proven; returns why a
/// switch would fail.
fn dns_key(key: &KeySeen, add: &mut impl FnMut(Drift, Severity, String)) -> Option<String> {
    let (severity, message) = match key {
        KeySeen::Proven(_) => return None,
        KeySeen::Refused(why) => (
            Severity::Operator,
            format!("a switch by DNS would fail: {why}"),
        ),
        KeySeen::Unproven(why) => (
            Severity::Operator,
            format!("a switch by DNS would fail, the TSIG key could not be proved: {why}"),
        ),
        KeySeen::Unasked(why) => (
            Severity::Degraded,
            format!("the TSIG key could not be proved against the zone's primary: {why}"),
        ),
    };
    add(Drift::Key, severity, message.clone());
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, addr: &str, vip: Option<bool>) -> HostSeen {
        HostSeen {
            name: name.into(),
            address: Some(addr.parse().unwrap()),
            ssh: Ok(()),
            holds_vip: vip,
            vip_error: None,
            announces: None,
            overlaps: None,
            version: Some(Version::Printed("1".into())),
            checks: vec![CheckOutcome {
                name: "page".into(),
                ok: true,
                detail: "200".into(),
                via_ssh: false,
                role: CheckRole::Any,
            }],
            role: None,
        }
    }

    fn roles(p: &str, s: &str) -> Option<Roles> {
        Some(Roles {
            primary: p.into(),
            standby: s.into(),
        })
    }

    fn vip(a: Option<bool>, b: Option<bool>, recorded: Option<Roles>) -> PairSeen {
        PairSeen {
            hosts: [host("blue", "10.0.0.1", a), host("green", "10.0.0.2", b)],
            traffic: TrafficSeen::Vip,
            recorded,
            last_run: LastRun::Settled,
        }
    }

    fn said(state: RoleState, lsn: u64) -> Option<Result<Report, String>> {
        Some(Ok(Report {
            state,
            position: crate::core::position::Position::Lsn(lsn),
            delay: None,
        }))
    }

    fn with_roles(
        a: Option<Result<Report, String>>,
        b: Option<Result<Report, String>>,
    ) -> PairSeen {
        let mut s = vip(Some(true), Some(false), roles("blue", "green"));
        s.hosts[0].role = a;
        s.hosts[1].role = b;
        s
    }

    fn kinds(a: &Assessment) -> Vec<Drift> {
        a.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn roles_are_judged_against_who_holds_traffic() {
        let ok = assess(&with_roles(
            said(RoleState::Primary, 0x400),
            said(RoleState::Standby, 0x300),
        ));
        assert_eq!(ok.verdict, Verdict::Ok, "{:?}", ok.findings);
        let seen = with_roles(
            said(RoleState::Primary, 0x400),
            said(RoleState::Standby, 0x300),
        );
        assert_eq!(replication_lag(&seen, "blue"), Some((0x100, None)));
        assert_eq!(
            primary_position(&seen, &Holder::Host("blue".into())).map(|(h, _)| h),
            Some("blue")
        );
        assert_eq!(primary_position(&seen, &Holder::Host("green".into())), None);

        let two = assess(&with_roles(
            said(RoleState::Primary, 1),
            said(RoleState::Primary, 1),
        ));
        assert_eq!(kinds(&two), [Drift::TwoWritable]);
        assert_eq!(two.verdict, Verdict::Operator);

        let read_only = assess(&with_roles(
            said(RoleState::Stopped, 1),
            said(RoleState::Standby, 1),
        ));
        assert_eq!(kinds(&read_only), [Drift::PrimaryReadOnly]);
        assert_eq!(read_only.verdict, Verdict::Operator);

        let lone = assess(&with_roles(
            said(RoleState::Primary, 1),
            said(RoleState::Stopped, 1),
        ));
        assert_eq!(kinds(&lone), [Drift::NotReplicating]);
        assert_eq!(lone.verdict, Verdict::Degraded);

        let unknown = assess(&with_roles(
            said(RoleState::Primary, 1),
            Some(Err("exit 1".into())),
        ));
        assert_eq!(kinds(&unknown), [Drift::RoleUnknown]);
    }

    #[test]
    fn a_check_of_the_primary_is_not_held_against_the_standby() {
        let mut s = vip(Some(true), Some(false), roles("blue", "green"));
        for (h, role) in [(0, CheckRole::Standby), (1, CheckRole::Primary)] {
            s.hosts[h].checks.push(CheckOutcome {
                name: "writable".into(),
                ok: false,
                detail: "f".into(),
                via_ssh: true,
                role,
            });
        }
        assert_eq!(assess(&s).verdict, Verdict::Ok, "{:?}", assess(&s).findings);
        // The other way round, each fails where it must pass.
        s.hosts[0].checks[1].role = CheckRole::Primary;
        s.hosts[1].checks[1].role = CheckRole::Standby;
        assert_eq!(kinds(&assess(&s)), [Drift::CheckFails, Drift::CheckFails]);
        // healthy() counts only the checks of any host.
        assert!(s.hosts[0].healthy());
    }

    #[test]
    fn healthy_vip_pair_is_ok() {
        let a = assess(&vip(Some(true), Some(false), roles("blue", "green")));
        assert_eq!(a.holder, Holder::Host("blue".into()));
        assert_eq!(a.verdict, Verdict::Ok, "{:?}", a.findings);
        assert_eq!(a.record, None);
    }

    /// What preflight says of a switchover from blue to green.
    fn switchover_problems(s: &PairSeen, a: &Assessment) -> Vec<String> {
        crate::core::preflight::problems(
            crate::core::cycle::Kind::Switchover,
            "web",
            s,
            a,
            crate::core::preflight::Roles {
                from: "blue",
                to: "green",
                failed: None,
                forced: false,
            },
        )
    }

    #[test]
    fn a_host_that_cannot_announce_an_ipv6_vip_degrades_the_pair() {
        let mut s = vip(Some(true), Some(false), roles("blue", "green"));
        s.hosts[0].announces = Some(true);
        s.hosts[1].announces = Some(false);
        let a = assess(&s);
        assert_eq!(a.holder, Holder::Host("blue".into()));
        assert_eq!(kinds(&a), [Drift::NoAnnouncer]);
        assert_eq!(a.verdict, Verdict::Degraded);
        assert!(a.findings[0].message.starts_with("green has no python3"));
        // A run may still start: it moves the address unannounced, and says so.
        assert!(a.switch_blocked.is_empty(), "{:?}", a.switch_blocked);
        let problems = switchover_problems(&s, &a);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_host_that_cannot_do_a_chosen_overlap_degrades_the_pair_a_default_one_notes_it_and_neither_blocks(
    ) {
        let mut s = vip(Some(true), Some(false), roles("blue", "green"));
        let seen = |able, chosen| Some(crate::core::overlap::Seen { able, chosen });
        s.hosts[0].overlaps = seen(Ok(()), true);
        s.hosts[1].overlaps = seen(Err("nft is not installed".into()), true);
        let a = assess(&s);
        assert_eq!(kinds(&a), [Drift::NoOverlap]);
        assert_eq!(a.verdict, Verdict::Degraded);
        // The default overlap, not chosen: noted, the pair is fine.
        s.hosts[1].overlaps = seen(Err("nft is not installed".into()), false);
        let noted = assess(&s);
        assert_eq!(kinds(&noted), [Drift::NoOverlap]);
        assert_eq!(noted.findings[0].severity, Severity::Note);
        assert_eq!(noted.verdict, Verdict::Ok);
        s.hosts[1].overlaps = seen(Err("nft is not installed".into()), true);
        assert!(
            a.findings[0].message.starts_with(
                "green cannot take part in the overlap handover (nft is not installed)"
            ),
            "{}",
            a.findings[0].message
        );
        // The switch falls back to the classic order: nothing stops a run.
        let problems = switchover_problems(&s, &a);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn first_sight_records_reality() {
        let a = assess(&vip(Some(false), Some(true), None));
        assert_eq!(a.record, roles("green", "blue"));
        assert_eq!(a.verdict, Verdict::Ok);
    }

    #[test]
    fn vip_on_both_is_split_brain() {
        let a = assess(&vip(Some(true), Some(true), roles("blue", "green")));
        assert_eq!(a.holder, Holder::Both);
        assert_eq!(a.verdict, Verdict::Operator);
        assert!(a.findings[0].message.contains("split brain"));
        assert_eq!(a.record, None);
    }

    #[test]
    fn both_serving_during_an_experiment_or_a_ramp_is_no_split_brain() {
        let mut seen = vip(Some(true), Some(true), roles("blue", "green"));
        seen.last_run = LastRun::Held {
            pair: "web".into(),
            run: "r1".into(),
            to: "green".into(),
            from: "blue".into(),
            change: "v2".into(),
            by: HeldBy::Experiment { percent: 10 },
        };
        let a = assess(&seen);
        assert_eq!(a.holder, Holder::Both);
        assert_eq!(a.verdict, Verdict::Degraded, "{:?}", a.findings);
        assert_eq!(a.findings.len(), 1, "{:?}", a.findings);
        assert_eq!(a.findings[0].kind, Drift::Experiment);
        assert!(a.findings[0]
            .message
            .contains("sends 10% of new requests to green, which runs change v2; end it with `baton ab web --end"));
        seen.last_run = LastRun::InProgress {
            run: "r2".into(),
            pid: 7,
            operator: "alice".into(),
            splits: true,
        };
        let a = assess(&seen);
        assert!(a.findings.iter().all(|f| f.kind != Drift::SplitBrain));
        // A run that does not split: both holding is split brain.
        seen.last_run = LastRun::InProgress {
            run: "r2".into(),
            pid: 7,
            operator: "alice".into(),
            splits: false,
        };
        let a = assess(&seen);
        assert_eq!(a.verdict, Verdict::Operator);
        assert!(a.findings.iter().any(|f| f.kind == Drift::SplitBrain));
    }

    /// blue and green behind a balancer, at these weights (both up).
    fn balanced(blue: u32, green: u32) -> PairSeen {
        let server = |name: &str, weight| crate::core::balancer::ServerStat {
            backend: "web".into(),
            server: name.into(),
            status: "UP".into(),
            weight,
            sessions: 0,
            requests: 0,
            errors: 0,
            response_ms: None,
            response_max_ms: None,
        };
        let mut seen = vip(None, None, roles("blue", "green"));
        seen.traffic = TrafficSeen::Balancer {
            backend: "web".into(),
            weight: 100,
            stats: Ok(vec![server("blue", blue), server("green", green)]),
        };
        seen
    }

    #[test]
    fn a_balancers_weights_changed_by_hand_are_drift_but_an_experiments_are_not() {
        assert_eq!(assess(&balanced(100, 0)).verdict, Verdict::Ok);
        let a = assess(&balanced(50, 0));
        assert_eq!(kinds(&a), [Drift::BalancerWeight]);
        assert!(a.findings[0]
            .message
            .contains("weight 50, the pair file says 100"));
        let a = assess(&balanced(80, 20));
        assert_eq!(
            kinds(&a),
            [
                Drift::BalancerWeight,
                Drift::BalancerWeight,
                Drift::SplitBrain
            ]
        );
        let mut seen = balanced(80, 20);
        seen.last_run = LastRun::Held {
            pair: "web".into(),
            run: "r1".into(),
            to: "green".into(),
            from: "blue".into(),
            change: "v2".into(),
            by: HeldBy::Experiment { percent: 20 },
        };
        let a = assess(&seen);
        assert_eq!(kinds(&a), [Drift::Experiment]);
        assert_eq!(a.verdict, Verdict::Degraded);
    }

    #[test]
    fn vip_on_neither_needs_operator() {
        let a = assess(&vip(Some(false), Some(false), None));
        assert_eq!(a.holder, Holder::Neither);
        assert_eq!(a.verdict, Verdict::Operator);
        assert_eq!(
            a.record, None,
            "nothing is recorded from an unclear reality"
        );
    }

    #[test]
    fn traffic_not_where_recorded() {
        let a = assess(&vip(Some(false), Some(true), roles("blue", "green")));
        assert_eq!(a.verdict, Verdict::Operator);
        assert!(
            a.findings
                .iter()
                .any(|f| f.message.contains("record says blue")),
            "{:?}",
            a.findings
        );
        assert!(a.not_as_recorded);
        assert!(!assess(&vip(Some(true), Some(false), roles("blue", "green"))).not_as_recorded);
        // Split brain is not "another host than recorded": it is worse.
        assert!(!assess(&vip(Some(true), Some(true), roles("blue", "green"))).not_as_recorded);
    }

    #[test]
    fn unreachable_standby_is_degraded_unreachable_primary_is_not() {
        let mut seen = vip(Some(true), None, roles("blue", "green"));
        seen.hosts[1].ssh = Err("timed out".into());
        let a = assess(&seen);
        assert_eq!(a.holder, Holder::Host("blue".into()));
        assert_eq!(a.verdict, Verdict::Degraded, "{:?}", a.findings);

        let mut seen = vip(None, Some(false), roles("blue", "green"));
        seen.hosts[0].ssh = Err("timed out".into());
        let a = assess(&seen);
        assert_eq!(a.verdict, Verdict::Operator);
    }

    #[test]
    fn failing_primary_check_needs_operator() {
        let mut seen = vip(Some(true), Some(false), roles("blue", "green"));
        seen.hosts[0].checks[0].ok = false;
        assert_eq!(assess(&seen).verdict, Verdict::Operator);
        let mut seen = vip(Some(true), Some(false), roles("blue", "green"));
        seen.hosts[1].checks[0].ok = false;
        assert_eq!(assess(&seen).verdict, Verdict::Degraded);
    }

    fn dns(answers: Vec<Result<Vec<&str>, &str>>) -> PairSeen {
        PairSeen {
            hosts: [
                host("amber", "10.0.0.21", None),
                host("violet", "10.0.0.22", None),
            ],
            traffic: TrafficSeen::Dns {
                answers: answers
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| {
                        (
                            SocketAddr::new(format!("10.0.0.{}", 53 + i).parse().unwrap(), 53),
                            r.map(|v| v.iter().map(|a| a.parse().unwrap()).collect())
                                .map_err(|e| e.to_string()),
                        )
                    })
                    .collect(),
                key: KeySeen::Proven("10.0.0.53:53 verified the key".into()),
            },
            recorded: roles("amber", "violet"),
            last_run: LastRun::Settled,
        }
    }

    #[test]
    fn dns_agreeing_servers() {
        let a = assess(&dns(vec![Ok(vec!["10.0.0.21"]), Ok(vec!["10.0.0.21"])]));
        assert_eq!(a.holder, Holder::Host("amber".into()));
        assert_eq!(a.verdict, Verdict::Ok);
    }

    #[test]
    fn dns_disagreeing_servers_need_operator() {
        let a = assess(&dns(vec![Ok(vec!["10.0.0.21"]), Ok(vec!["10.0.0.22"])]));
        assert!(matches!(a.holder, Holder::Unknown(_)));
        assert_eq!(a.verdict, Verdict::Operator);
        assert!(a.findings.iter().any(|f| f.message.contains("disagree")));
    }

    #[test]
    fn dns_foreign_address_and_both() {
        let a = assess(&dns(vec![Ok(vec!["10.9.9.9"])]));
        assert_eq!(a.holder, Holder::Neither);
        assert!(a
            .findings
            .iter()
            .any(|f| f.message.contains("neither host")));
        let a = assess(&dns(vec![Ok(vec!["10.0.0.21", "10.0.0.22"])]));
        assert_eq!(a.holder, Holder::Both);
    }

    #[test]
    fn dns_server_down_is_degraded_if_another_answers() {
        let a = assess(&dns(vec![Ok(vec!["10.0.0.21"]), Err("timed out")]));
        assert_eq!(a.holder, Holder::Host("amber".into()));
        assert_eq!(a.verdict, Verdict::Degraded);
        let a = assess(&dns(vec![Err("timed out")]));
        assert_eq!(a.verdict, Verdict::Operator);
    }

    #[test]
    fn an_interrupted_run_needs_an_operator_until_recovered_and_one_in_progress_is_degraded() {
        let mut seen = vip(Some(true), Some(false), roles("blue", "green"));
        seen.last_run = LastRun::Interrupted {
            pair: "web".into(),
            run: "r1".into(),
            kind: Kind::Apply,
            open: Some(Step::Switch),
            last: Some(Step::VerifyStandby),
        };
        let a = assess(&seen);
        assert_eq!(a.verdict, Verdict::Operator);
        assert!(
            a.findings[0]
                .message
                .contains("apply run r1 was interrupted inside switch")
                && a.findings[0].message.contains("baton recover web"),
            "{:?}",
            a.findings
        );
        seen.last_run = LastRun::InProgress {
            run: "r2".into(),
            pid: 42,
            operator: "alice".into(),
            splits: false,
        };
        let a = assess(&seen);
        assert_eq!(a.verdict, Verdict::Degraded, "{:?}", a.findings);
    }

    #[test]
    fn a_host_that_cannot_say_whether_it_holds_the_vip_names_the_cause() {
        let mut seen = vip(None, Some(false), roles("blue", "green"));
        seen.hosts[0].vip_error =
            Some("`ip addr show dev eth9` failed: Device \"eth9\" does not exist.".into());
        let a = assess(&seen);
        assert_eq!(a.verdict, Verdict::Operator);
        assert!(
            a.findings.iter().any(|f| f.message.contains("blue")
                && f.message.contains("Device \"eth9\" does not exist")),
            "{:?}",
            a.findings
        );
    }

    #[test]
    fn serving_means_every_direct_check_passes() {
        let mut h = host("blue", "10.0.0.1", None);
        h.ssh = Err("connection refused".into());
        assert!(h.serving() && !h.healthy());
        h.checks[0].ok = false;
        assert!(!h.serving());
        // Only checks over SSH: nothing says it serves.
        h.checks[0] = CheckOutcome {
            role: CheckRole::Any,
            name: "unit".into(),
            ok: true,
            detail: String::new(),
            via_ssh: true,
        };
        assert!(!h.serving());
    }

    /// The DNS pair as `dns` sees it, with the key proof replaced.
    fn dns_with_key(key: KeySeen) -> PairSeen {
        let mut seen = dns(vec![Ok(vec!["10.0.0.21"]), Ok(vec!["10.0.0.21"])]);
        if let TrafficSeen::Dns { key: k, .. } = &mut seen.traffic {
            *k = key;
        }
        seen
    }

    #[test]
    fn a_proven_key_is_no_finding() {
        let a = assess(&dns_with_key(KeySeen::Proven("verified".into())));
        assert_eq!(a.verdict, Verdict::Ok, "{:?}", a.findings);
        assert!(a.switch_blocked.is_empty());
    }

    #[test]
    fn a_refused_key_needs_an_operator_and_blocks_every_switching_run() {
        use crate::core::cycle::Kind;
        use crate::core::preflight::{problems, Roles as RunRoles};
        let why = "10.0.0.53:53 refused the TSIG signature: BADSIG";
        let mut seen = dns_with_key(KeySeen::Refused(why.into()));
        let a = assess(&seen);
        assert_eq!(a.holder, Holder::Host("amber".into()));
        assert_eq!(a.verdict, Verdict::Operator);
        assert_eq!(a.findings.len(), 1, "{:?}", a.findings);
        assert_eq!(a.findings[0].severity, Severity::Operator);
        assert!(
            a.findings[0].message.contains("a switch by DNS would fail")
                && a.findings[0].message.contains(why),
            "{:?}",
            a.findings
        );
        assert_eq!(a.switch_blocked, vec![a.findings[0].message.clone()]);
        let roles = RunRoles {
            from: "amber",
            to: "violet",
            failed: None,
            forced: false,
        };
        for kind in [Kind::Apply, Kind::Switchover] {
            let p = problems(kind, "api", &seen, &a, roles);
            assert!(p.iter().any(|p| p.contains(why)), "{kind:?}: {p:?}");
        }
        // A failover: the primary is dead, the standby healthy; the switch
        // after the fence would fail, so it must not start.
        seen.hosts[0].ssh = Err("timed out".into());
        seen.hosts[0].checks[0].ok = false;
        let a = assess(&seen);
        let p = problems(Kind::Failover, "api", &seen, &a, roles);
        assert!(p.iter().any(|p| p.contains(why)), "{p:?}");
        // With the key proven, the same failover may start.
        let mut proven = dns_with_key(KeySeen::Proven("verified".into()));
        proven.hosts[0].ssh = Err("timed out".into());
        proven.hosts[0].checks[0].ok = false;
        let a = assess(&proven);
        assert!(problems(Kind::Failover, "api", &proven, &a, roles).is_empty());
    }

    #[test]
    fn a_key_that_cannot_be_proved_needs_an_operator_or_is_degraded_when_unasked() {
        let a = assess(&dns_with_key(KeySeen::Unproven(
            "10.0.0.53:53 is not authoritative for the zone".into(),
        )));
        assert_eq!(a.verdict, Verdict::Operator);
        assert_eq!(a.switch_blocked.len(), 1);
        let a = assess(&dns_with_key(KeySeen::Unasked(
            "10.0.0.53:53 did not answer".into(),
        )));
        assert_eq!(a.verdict, Verdict::Degraded, "{:?}", a.findings);
        assert!(a.findings[0].message.contains("did not answer"));
        assert_eq!(
            a.switch_blocked.len(),
            1,
            "a failover must not start either"
        );
    }

    #[test]
    fn one_host_holding_the_vip_and_the_other_unasked_is_a_holder_with_a_doubt() {
        let a = assess(&vip(Some(true), None, roles("blue", "green")));
        assert_eq!(a.holder, Holder::Host("blue".into()));
        assert_eq!(a.verdict, Verdict::Degraded, "{:?}", a.findings);
        assert!(a.findings[0]
            .message
            .contains("cannot confirm that green does not also hold"));
        let a = assess(&vip(None, Some(true), roles("green", "blue")));
        assert_eq!(a.holder, Holder::Host("green".into()));
        assert!(a.findings[0].message.contains("that blue does not"));
        // Not holding it and the other unknown: nobody can tell.
        for (x, y) in [(None, None), (Some(false), None), (None, Some(false))] {
            let a = assess(&vip(x, y, roles("blue", "green")));
            assert!(matches!(a.holder, Holder::Unknown(_)), "{x:?} {y:?}");
            assert_eq!(a.verdict, Verdict::Operator);
            assert_eq!(a.record, None, "nothing recorded from an unknown");
        }
    }

    fn hook(answer: Result<&str, &str>) -> PairSeen {
        let mut seen = vip(None, None, None);
        seen.traffic = TrafficSeen::Command(
            answer
                .map(String::from)
                .map_err(|e| crate::core::holder::HookFailed(e.to_string())),
        );
        seen
    }

    #[test]
    fn a_query_hook_may_answer_a_name_or_an_address_nothing_else() {
        let a = assess(&hook(Ok("green\n")));
        assert_eq!(a.holder, Holder::Host("green".into()));
        assert_eq!(a.record, roles("green", "blue"));
        let a = assess(&hook(Ok(" 10.0.0.1 ")));
        assert_eq!(a.holder, Holder::Host("blue".into()));
        let a = assess(&hook(Ok("10.0.0.9")));
        assert_eq!(
            serde_json::to_value(&a.holder).unwrap(),
            serde_json::json!({"kind": "unknown", "detail": "the query hook answered `10.0.0.9`, which is neither host"})
        );
        let a = assess(&hook(Err("exit 1: lb down")));
        assert!(
            a.findings[0]
                .message
                .contains("cannot tell who holds traffic: the query hook failed: exit 1: lb down"),
            "{:?}",
            a.findings
        );
        assert_eq!(a.verdict, Verdict::Operator);
    }

    #[test]
    fn a_version_that_cannot_be_read_is_degraded_only_on_a_reachable_host() {
        let mut seen = vip(Some(true), Some(false), roles("blue", "green"));
        seen.hosts[1].version = Some(Version::Failed("exit 127: nginx: not found".into()));
        let a = assess(&seen);
        assert_eq!(a.verdict, Verdict::Degraded);
        assert_eq!(
            a.findings[0].message,
            "cannot read the version on green: exit 127: nginx: not found"
        );
        // Unreachable: the version's failure is not a second finding.
        seen.hosts[1].ssh = Err("timed out".into());
        let a = assess(&seen);
        assert_eq!(
            a.findings,
            vec![Finding {
                kind: Drift::Unreachable,
                severity: Severity::Degraded,
                message: "standby green is unreachable: timed out".into()
            }]
        );
    }

    #[test]
    fn without_a_known_primary_any_failing_host_needs_an_operator() {
        // Who holds traffic is unknown and nothing is recorded.
        let mut seen = vip(None, None, None);
        seen.hosts[1].checks[0].ok = false;
        seen.hosts[1].checks[0].detail = "refused".into();
        let a = assess(&seen);
        let f = a
            .findings
            .iter()
            .find(|f| f.message.contains("fails check"))
            .unwrap();
        assert_eq!(f.severity, Severity::Operator);
        assert_eq!(f.message, "host green fails check page: refused");
        // With a record, the same host is the standby: degraded.
        let mut seen = vip(None, None, roles("blue", "green"));
        seen.hosts[1].checks[0].ok = false;
        seen.hosts[1].checks[0].detail = "refused".into();
        let a = assess(&seen);
        let f = a
            .findings
            .iter()
            .find(|f| f.message.contains("fails check"))
            .unwrap();
        assert_eq!(f.severity, Severity::Degraded);
        assert!(f.message.starts_with("standby green"));
    }

    #[test]
    fn an_interrupted_run_says_where_it_stopped() {
        let mut seen = vip(Some(true), Some(false), roles("blue", "green"));
        for (open, last, at) in [
            (None, Some(Step::Switch), "interrupted after switch"),
            (None, None, "interrupted before its first step"),
        ] {
            seen.last_run = LastRun::Interrupted {
                pair: "web".into(),
                run: "r1".into(),
                kind: Kind::Failover,
                open,
                last,
            };
            let a = assess(&seen);
            assert!(
                a.findings[0]
                    .message
                    .starts_with(&format!("failover run r1 was {at}")),
                "{:?}",
                a.findings
            );
        }
    }

    #[test]
    fn no_dns_answer_at_all_is_unknown_and_empty_answers_are_neither() {
        let a = assess(&dns(vec![]));
        assert_eq!(
            serde_json::to_value(&a.holder).unwrap(),
            serde_json::json!({"kind": "unknown", "detail": "no authoritative server answered"})
        );
        let a = assess(&dns(vec![Ok(vec![]), Ok(vec![])]));
        assert_eq!(a.holder, Holder::Neither);
        assert!(a
            .findings
            .iter()
            .any(|f| f.message == "no host holds traffic"));
        // An empty answer and a real one disagree.
        let a = assess(&dns(vec![Ok(vec![]), Ok(vec!["10.0.0.21"])]));
        assert!(
            a.findings
                .iter()
                .any(|f| f.message.contains("says nothing")),
            "{:?}",
            a.findings
        );
    }
}
