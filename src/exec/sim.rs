//! A simulated world in memory: two hosts (reachable or not, serving or
//! not, healthy or not, the addresses on their interface, a quiesce hold),
//! the zone on each authoritative server, the command method's holder, and
//! faults to inject. `baton plan` seeds it with the recorded roles (traffic
//! on the primary, all well, the TTL the zone's primary serves) and runs
//! the very step code a run runs, so the plan is the list of operations the
//! run would perform when nothing fails; the unit tests seed it with faults
//! and drive whole runs through it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

use super::{out, OpError, Value, World};
use crate::config::{CheckKind, Pair, Traffic};
use crate::core::announce::{ARPING_EXIT, NA_EXIT};
use crate::core::assess::{CheckOutcome, HostSeen, KeySeen, LastRun, PairSeen, TrafficSeen};
use crate::core::balancer::{self, ServerStat};
use crate::core::op::{AddrAction, Hook, NftPurpose, Op, Remote, RoleAction, WaitFor};
use crate::core::position::{Position, Report, RoleState};
use crate::io::dns::{Answer, DnsQueryError, DnsUpdateError};

/// One simulated host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHost {
    /// Its name in the pair.
    pub name: String,
    /// Its own address.
    pub address: IpAddr,
    /// SSH reaches it.
    pub ssh: bool,
    /// It is on the network and its service answers (a fenced host is not).
    pub up: bool,
    /// Its service passes its checks.
    pub healthy: bool,
    /// The extra addresses on its interface (a VIP).
    pub addrs: BTreeSet<IpAddr>,
    /// A quiesce hold is in force.
    pub held: bool,
    /// The overlap handover's hand-back to the old holder is in force.
    pub handback: bool,
    /// Addresses given a lifetime (the overlap's old holder): they leave
    /// by themselves when it ends (`Sim::lapse`).
    pub lapsing: BTreeSet<IpAddr>,
    /// Files uploaded to it.
    pub files: BTreeSet<String>,
    /// Its role, when the pair has role hooks: a writable primary, a
    /// standby, or stopped.
    pub role: RoleState,
    /// Its replication position (what it wrote, or replayed).
    pub position: u64,
    /// As a standby, how far it stays behind its primary.
    pub behind: u64,
}

/// What a fault does to the operations it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The operation fails (a command exits 1, a check fails, a DNS server
    /// does not answer or refuses the update).
    Fail,
    /// The operation succeeds, then the host's service stops passing its
    /// checks (a change that breaks it).
    Breaks,
    /// The host is unreachable over SSH from this operation on.
    Vanishes,
    /// The operation succeeds, then someone else points the record at
    /// this address on every server (a concurrent change).
    Repoints(IpAddr),
    /// A command exits 0 but has no effect (a hook that returns early).
    Ignored,
    /// A command exits with this status, says so on stderr and has no
    /// effect (a program it needs is missing, say).
    Exits(i32),
    /// sudo refuses a privileged command (no sudoers rule for it): it does
    /// not run.
    SudoRefuses,
    /// The operation succeeds, then someone writes these bytes to this
    /// file on the controller (an operator editing a change's upload while
    /// a run applies it).
    Edits(std::path::PathBuf, Vec<u8>),
}

/// A fault: the operations whose rendered command contains `matching`
/// (on `host`, when given) have `effect`, `times` times (0: always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The host (`None`: any, the controller included).
    pub host: Option<String>,
    /// A piece of the rendered command.
    pub matching: String,
    /// What happens.
    pub effect: Effect,
    /// How many times it may still strike (0: always).
    pub times: u32,
}

/// The simulated state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The pair's two hosts.
    pub hosts: Vec<SimHost>,
    /// The record on each authoritative server: addresses and TTL.
    pub records: BTreeMap<SocketAddr, (Vec<IpAddr>, u32)>,
    /// Servers that never receive updates (a broken zone transfer).
    pub lagging: BTreeSet<SocketAddr>,
    /// Where the command method's query hook says traffic is.
    pub hook_holder: Option<String>,
    /// A balancer's servers (method `haproxy`), by name: weight and state.
    pub servers: BTreeMap<String, (u32, balancer::State)>,
    /// The balancer's frontend address (method `haproxy`).
    pub frontend: Option<IpAddr>,
    /// Requests each server answered, and how many of them with a 5xx:
    /// every wait of a ramp step sends 1000 requests, spread by weight.
    pub served: BTreeMap<String, (u64, u64)>,
    /// The percentage of requests a host answers with a 5xx (a change that
    /// passes its checks but harms users).
    pub error_percent: BTreeMap<String, u64>,
    /// Faults to inject.
    pub faults: Vec<Fault>,
}

/// The simulated world.
#[derive(Debug)]
pub struct Sim {
    state: Mutex<State>,
}

impl Sim {
    /// The pair as it is when all is well: both hosts reachable and
    /// healthy, traffic on the first host (the VIP on it, the record
    /// pointing at it with `ttl`, the hook naming it).
    pub fn healthy(pair: &Pair, ttl: u32) -> Sim {
        let first = &pair.hosts[0];
        let hosts = pair
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| SimHost {
                name: h.name.clone(),
                address: h.address,
                ssh: true,
                up: true,
                healthy: true,
                addrs: BTreeSet::new(),
                held: false,
                handback: false,
                lapsing: BTreeSet::new(),
                files: BTreeSet::new(),
                role: if i == 0 {
                    RoleState::Primary
                } else {
                    RoleState::Standby
                },
                position: SIM_POSITION,
                behind: 0,
            })
            .collect();
        let mut state = State {
            hosts,
            records: BTreeMap::new(),
            lagging: BTreeSet::new(),
            hook_holder: None,
            servers: BTreeMap::new(),
            frontend: None,
            served: BTreeMap::new(),
            error_percent: BTreeMap::new(),
            faults: Vec::new(),
        };
        match &pair.traffic {
            Traffic::Vip(v) => {
                state.hosts[0].addrs.insert(v.address);
            }
            Traffic::Dns(d) => {
                for s in &d.servers {
                    state.records.insert(*s, (vec![first.address], ttl));
                }
            }
            Traffic::Command(_) => state.hook_holder = Some(first.name.clone()),
            Traffic::Haproxy(b) => {
                state.frontend = Some(b.frontend.ip());
                for (i, h) in pair.hosts.iter().enumerate() {
                    let weight = if i == 0 { b.weight } else { 0 };
                    state
                        .servers
                        .insert(h.name.clone(), (weight, balancer::State::Ready));
                }
            }
        }
        Sim {
            state: Mutex::new(state),
        }
    }

    /// The pair when all is well, traffic on `on` (the other host then
    /// holds nothing).
    pub fn healthy_on(pair: &Pair, on: &str, ttl: u32) -> Sim {
        let sim = Sim::healthy(pair, ttl);
        {
            let mut s = sim.lock();
            let address = s.hosts.iter().find(|h| h.name == on).map(|h| h.address);
            for h in s.hosts.iter_mut() {
                let vip: Vec<IpAddr> = h.addrs.iter().copied().collect();
                h.addrs.clear();
                if h.name == on {
                    h.addrs.extend(vip);
                }
            }
            if let Traffic::Vip(v) = &pair.traffic {
                if let Some(h) = s.hosts.iter_mut().find(|h| h.name == on) {
                    h.addrs.insert(v.address);
                }
            }
            if let Some(a) = address {
                for r in s.records.values_mut() {
                    r.0 = vec![a];
                }
            }
            if s.hook_holder.is_some() {
                s.hook_holder = Some(on.to_string());
            }
            if let Traffic::Haproxy(b) = &pair.traffic {
                for (name, (weight, _)) in s.servers.iter_mut() {
                    *weight = if name == on { b.weight } else { 0 };
                }
            }
            for h in s.hosts.iter_mut() {
                h.role = if h.name == on {
                    RoleState::Primary
                } else {
                    RoleState::Standby
                };
            }
        }
        sim
    }

    /// The state, to change or inspect.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Adds a fault.
    pub fn fault(&self, host: Option<&str>, matching: &str, effect: Effect, times: u32) {
        self.lock().faults.push(Fault {
            host: host.map(str::to_string),
            matching: matching.to_string(),
            effect,
            times,
        });
    }

    /// Time passes: every timer on the hosts runs out, as after a
    /// controller that died mid-switch. An address given a lifetime
    /// leaves its host, the quiesce holds and the hand-backs lapse.
    pub fn lapse(&self) {
        for h in &mut self.lock().hosts {
            let gone = std::mem::take(&mut h.lapsing);
            h.addrs.retain(|a| !gone.contains(a));
            h.held = false;
            h.handback = false;
        }
    }

    /// Which hosts hold `address`.
    pub fn holders(&self, address: IpAddr) -> Vec<String> {
        self.lock()
            .hosts
            .iter()
            .filter(|h| h.addrs.contains(&address))
            .map(|h| h.name.clone())
            .collect()
    }
}

/// Where a simulated pair's replication starts.
pub const SIM_POSITION: u64 = 0x300_0000;

/// What a shutdown adds to a PostgreSQL position: its checkpoint record.
const SHUTDOWN_RECORD: u64 = 0x78;

impl State {
    /// The hosts that take writes.
    pub fn writable(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.up && h.role == RoleState::Primary)
            .map(|h| h.name.clone())
            .collect()
    }

    /// What a host's `position` hook prints: a standby replays what its
    /// primary (the other host) wrote, but for `behind`.
    fn report(&self, name: &str) -> Option<Report> {
        let h = self.hosts.iter().find(|h| h.name == name)?;
        let source = self.hosts.iter().find(|o| o.name != name)?;
        let position = match h.role {
            RoleState::Standby => source.position.saturating_sub(h.behind).max(h.position),
            _ => h.position,
        };
        Some(Report {
            state: h.role,
            position: Position::Lsn(position),
            delay: None,
        })
    }

    fn role(&mut self, name: &str, action: RoleAction) -> Result<Value, OpError> {
        let ok = |stdout: &str| Ok(Value::Output(out(0, stdout, "")));
        let failed = |stderr: &str| Ok(Value::Output(out(1, "", stderr)));
        let report = self.report(name);
        let peer_position = self
            .hosts
            .iter()
            .find(|o| o.name != name)
            .map_or(0, |o| o.position);
        let host = self.host(name)?;
        match (action, host.role) {
            (RoleAction::Position, _) => match report {
                Some(r) => ok(&format!("{} {}\n", r.state.name(), r.position)),
                None => failed("no such host"),
            },
            (RoleAction::Demote, RoleState::Primary) => {
                host.role = RoleState::Stopped;
                host.position += SHUTDOWN_RECORD;
                ok("")
            }
            (RoleAction::Demote, _) => ok(""),
            (RoleAction::Promote, RoleState::Standby) => {
                host.position = report.map_or(host.position, |r| match r.position {
                    Position::Lsn(p) | Position::Number(p) => p,
                });
                host.role = RoleState::Primary;
                ok("")
            }
            (RoleAction::Promote, RoleState::Primary) => ok(""),
            (RoleAction::Promote, RoleState::Stopped) => failed("the server is not running"),
            (RoleAction::Follow, _) => {
                host.role = RoleState::Standby;
                host.position = peer_position;
                ok("")
            }
            (RoleAction::Resume, RoleState::Stopped) => {
                host.role = RoleState::Primary;
                ok("")
            }
            (RoleAction::Resume, RoleState::Primary) => ok(""),
            (RoleAction::Resume, RoleState::Standby) => {
                failed("the host is a standby: resume only undoes demote")
            }
        }
    }

    fn host(&mut self, name: &str) -> Result<&mut SimHost, OpError> {
        match self.hosts.iter_mut().find(|h| h.name == name) {
            Some(h) if h.ssh => Ok(h),
            _ => Err(OpError::Unreachable {
                host: name.to_string(),
            }),
        }
    }

    /// The effect of the first fault matching the operation, if any.
    fn strike(&mut self, host: Option<&str>, command: &str) -> Option<Effect> {
        let i = self.faults.iter().position(|f| {
            (f.host.is_none() || f.host.as_deref() == host) && command.contains(&f.matching)
        })?;
        let effect = self.faults[i].effect.clone();
        match self.faults[i].times {
            0 => {}
            1 => {
                self.faults.remove(i);
            }
            _ => self.faults[i].times -= 1,
        }
        Some(effect)
    }

    /// The balancer's `show stat` for `backend`: a server is `MAINT` in
    /// maintenance, `DOWN` when its host fails HAProxy's health check,
    /// `DRAIN` when draining or at weight 0 (as HAProxy shows it), else
    /// `UP`.
    pub fn stats(&self, backend: &str) -> Vec<ServerStat> {
        self.servers
            .iter()
            .map(|(name, (weight, state))| {
                let host = self.hosts.iter().find(|h| &h.name == name);
                let status = match state {
                    balancer::State::Maint => "MAINT",
                    _ if !host.is_some_and(|h| h.up && h.healthy) => "DOWN",
                    balancer::State::Drain => "DRAIN",
                    balancer::State::Ready if *weight == 0 => "DRAIN",
                    balancer::State::Ready => "UP",
                };
                let (requests, errors) = self.served.get(name).copied().unwrap_or_default();
                ServerStat {
                    backend: backend.to_string(),
                    server: name.clone(),
                    status: status.to_string(),
                    weight: *weight,
                    sessions: 0,
                    requests,
                    errors,
                    response_ms: Some(2),
                    response_max_ms: (requests > 0).then_some(9),
                }
            })
            .collect()
    }

    /// Runtime API commands to the balancer of `backend`, each applied in
    /// turn; HAProxy's answer.
    fn balancer(&mut self, backend: &str, commands: &[balancer::Command]) -> String {
        let mut said = String::new();
        for c in commands {
            let (server, change) = match c {
                balancer::Command::ShowStat => {
                    said.push_str(&balancer::render_stat(&self.stats(backend)));
                    continue;
                }
                // The simulation keeps no highest values to clear.
                balancer::Command::ClearCounters => continue,
                balancer::Command::Weight { server, weight, .. } => (server, (Some(*weight), None)),
                balancer::Command::State { server, state, .. } => (server, (None, Some(*state))),
            };
            match self.servers.get_mut(server) {
                Some(s) => {
                    s.0 = change.0.unwrap_or(s.0);
                    s.1 = change.1.unwrap_or(s.1);
                }
                None => said.push_str("No such server.\n"),
            }
            said.push('\n');
        }
        said
    }

    /// The host that answers on `address`: the one whose own address it
    /// is, the one up host holding it, or the one host whose server takes
    /// new requests behind the balancer's frontend.
    fn answering(&self, address: IpAddr) -> Option<&SimHost> {
        if let Some(h) = self.hosts.iter().find(|h| h.address == address) {
            return Some(h);
        }
        if self.frontend == Some(address) {
            let stats = self.stats("");
            let serving: Vec<&SimHost> = stats
                .iter()
                .filter(|s| s.serving())
                .filter_map(|s| self.hosts.iter().find(|h| h.name == s.server))
                .collect();
            return match serving.as_slice() {
                [one] => Some(*one),
                _ => None,
            };
        }
        let holders: Vec<&SimHost> = self
            .hosts
            .iter()
            .filter(|h| h.up && h.addrs.contains(&address))
            .collect();
        match holders.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    fn check(&self, host: &str, address: IpAddr) -> Result<(), String> {
        match self.answering(address) {
            None => Err(format!("nothing answers on {address}")),
            Some(h) if !h.up => Err(format!("{} does not answer", h.name)),
            Some(h) if h.name != host => Err(format!("{} answered, not {host}", h.name)),
            Some(h) if !h.healthy => Err(format!("{} answered wrongly", h.name)),
            Some(_) => Ok(()),
        }
    }

    fn remote(&mut self, name: &str, command: &Remote) -> Result<Value, OpError> {
        let peers: Vec<(String, bool, BTreeSet<IpAddr>)> = self
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.up, h.addrs.clone()))
            .collect();
        let host = self.host(name)?;
        let ok = |stdout: &str| Ok(Value::Output(out(0, stdout, "")));
        let failed = |stderr: &str| Ok(Value::Output(out(2, "", stderr)));
        match command {
            Remote::Shell(_) | Remote::KeepPrevious { .. } | Remote::RestorePrevious { .. } => {
                ok("")
            }
            Remote::AddrShow { interface } => {
                // As `ip -o addr show` prints them: an IPv6 address added
                // `nodad` says so.
                let line = |a: &IpAddr, flags: &str| match a {
                    IpAddr::V4(_) => format!(
                        "2: {interface}    inet {a}/24 scope global {flags}{interface}\\       valid_lft forever preferred_lft forever\n"
                    ),
                    IpAddr::V6(_) => format!(
                        "2: {interface}    inet6 {a}/64 scope global {flags}\\       valid_lft forever preferred_lft forever\n"
                    ),
                };
                let mut text = line(&host.address, "");
                for a in &host.addrs {
                    text.push_str(&line(a, if a.is_ipv6() { "nodad " } else { "secondary " }));
                }
                ok(&text)
            }
            Remote::Addr { action, cidr, .. } => {
                let address: IpAddr = match cidr.split('/').next().and_then(|a| a.parse().ok()) {
                    Some(a) => a,
                    None => return failed("Error: any valid prefix is expected"),
                };
                match action {
                    AddrAction::Add if !host.addrs.insert(address) => {
                        failed("RTNETLINK answers: File exists")
                    }
                    AddrAction::Del if !host.addrs.contains(&address) => {
                        failed("RTNETLINK answers: Cannot assign requested address")
                    }
                    AddrAction::Del => {
                        host.addrs.remove(&address);
                        host.lapsing.remove(&address);
                        ok("")
                    }
                    // (`ip addr change` adds an IPv4 address it does not
                    // find, as the kernel does)
                    AddrAction::Lapse(_) => {
                        host.addrs.insert(address);
                        host.lapsing.insert(address);
                        ok("")
                    }
                    AddrAction::Replace | AddrAction::Keep => {
                        host.addrs.insert(address);
                        host.lapsing.remove(&address);
                        ok("")
                    }
                    AddrAction::Add => ok(""),
                }
            }
            Remote::Nft { purpose, .. } => {
                match purpose {
                    NftPurpose::Hold => host.held = true,
                    NftPurpose::Release => host.held = false,
                    NftPurpose::HandBack => host.handback = true,
                    NftPurpose::EndHandBack => host.handback = false,
                }
                ok("")
            }
            Remote::Announce { .. } | Remote::EndConnections { .. } => ok(""),
            Remote::Role { action, .. } => {
                let (name, action) = (name.to_string(), *action);
                self.role(&name, action)
            }
            Remote::Report { address: IpAddr::V4(_) } => ok(&format!(
                "baton 1\nSent 3 probes (3 broadcast(s))\nReceived 0 response(s)\n{ARPING_EXIT}0\n"
            )),
            Remote::Report { address } => ok(&format!(
                "baton 1\nsent neighbour advertisement 1 of 1: {address} is at 02:00:00:00:00:01 on eth0\n{NA_EXIT}0\n"
            )),
            Remote::Probe { address, .. } => {
                let answered: Vec<String> = peers
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, up, addrs))| n != name && *up && addrs.contains(address))
                    .map(|(i, _)| {
                        format!("Unicast reply from {address} [02:00:00:00:00:{i:02X}]  0.5ms\n")
                    })
                    .collect();
                ok(&format!(
                    "ARPING {address} from 0.0.0.0\n{}Received {} response(s)\n",
                    answered.concat(),
                    answered.len()
                ))
            }
        }
    }

    fn perform(&mut self, pair: &Pair, op: &Op) -> Result<Value, OpError> {
        let rendered = op.render(pair);
        let host = match op {
            Op::Remote { host, .. }
            | Op::Upload { host, .. }
            | Op::Arm { host }
            | Op::CatchUp { host, .. } => Some(host.as_str()),
            _ => None,
        };
        if let Some(h) = host {
            self.host(h)?;
        }
        let effect = self.strike(host, &rendered.command);
        match effect {
            Some(Effect::Vanishes) => {
                if let Some(h) = self
                    .hosts
                    .iter_mut()
                    .find(|x| Some(x.name.as_str()) == host)
                {
                    h.ssh = false;
                }
                return Err(OpError::Unreachable {
                    host: host.unwrap_or_default().to_string(),
                });
            }
            Some(Effect::Fail) => return fail(op, &rendered.command),
            Some(Effect::Ignored) if matches!(op, Op::Remote { .. }) => {
                return Ok(Value::Output(out(0, "", "")))
            }
            Some(Effect::Exits(code)) if matches!(op, Op::Remote { .. }) => {
                return Ok(Value::Output(out(
                    code,
                    "",
                    &format!("simulated exit {code} of `{}`", rendered.command),
                )))
            }
            Some(Effect::SudoRefuses) => {
                return Err(OpError::Ssh(Box::new(
                    crate::io::ssh::SshError::SudoPassword {
                        host: host.unwrap_or_default().to_string(),
                        command: rendered.command.clone(),
                    },
                )))
            }
            _ => {}
        }
        let value = match op {
            Op::Remote { host, command } => self.remote(host, command)?,
            Op::Upload { host, to, .. } => {
                self.host(host)?.files.insert(to.clone());
                Value::Output(out(0, "", ""))
            }
            Op::Arm { .. } => Value::Done,
            Op::Balancer { commands } => {
                let Traffic::Haproxy(b) = &pair.traffic else {
                    return Err(OpError::Unsupported(rendered.command.clone()));
                };
                Value::Output(out(0, &self.balancer(&b.backend, commands), ""))
            }
            Op::Drain { server, .. } => Value::Passed(format!("{server} has no current sessions")),
            Op::Hook { purpose, .. } => match purpose {
                Hook::Switch { to } => {
                    self.hook_holder = Some(to.clone());
                    Value::Output(out(0, "", ""))
                }
                Hook::Query => match &self.hook_holder {
                    Some(h) => Value::Output(out(0, &format!("{h}\n"), "")),
                    None => Value::Output(out(1, "", "no holder")),
                },
                Hook::Fence { host } => {
                    if let Some(h) = self.hosts.iter_mut().find(|x| &x.name == host) {
                        h.up = false;
                        h.ssh = false;
                    }
                    Value::Output(out(0, "", ""))
                }
            },
            Op::Query { server, .. } => match self.records.get(server) {
                Some((addrs, ttl)) => Value::Answer(Answer {
                    values: addrs.iter().map(|a| a.to_string()).collect(),
                    ttl: Some(*ttl),
                }),
                None => {
                    return Err(OpError::from(DnsQueryError::Timeout {
                        server: *server,
                        after: std::time::Duration::from_secs(5),
                    }))
                }
            },
            Op::Update(u) => {
                let current = self.records.get(&u.server).map(|(a, _)| a.clone());
                // An empty prerequisite is none at all.
                if !u.expected.is_empty() && current.as_ref() != Some(&u.expected) {
                    return Err(OpError::from(DnsUpdateError::Changed {
                        server: u.server,
                        name: u.name.clone(),
                        expected: crate::core::holder::list(&u.expected),
                    }));
                }
                let lagging = self.lagging.clone();
                for (server, record) in self.records.iter_mut() {
                    if *server == u.server || !lagging.contains(server) {
                        *record = (vec![u.new], u.ttl);
                    }
                }
                Value::Done
            }
            Op::Propagate {
                servers,
                address,
                ttl,
                ..
            } => {
                let lagging: Vec<String> = servers
                    .iter()
                    .filter(|s| {
                        !matches!(self.records.get(s), Some((a, t))
                            if *a == vec![*address] && ttl.is_none_or(|x| x == *t))
                    })
                    .map(|s| s.to_string())
                    .collect();
                if !lagging.is_empty() {
                    return Err(OpError::Lagging {
                        lagging: lagging.join("; "),
                    });
                }
                Value::Propagated(0)
            }
            // The lifetime of an overlap's old address ends: the kernel
            // removes it.
            Op::Wait {
                reason: WaitFor::Lifetime,
                ..
            } => {
                for h in &mut self.hosts {
                    let gone = std::mem::take(&mut h.lapsing);
                    h.addrs.retain(|a| !gone.contains(a));
                }
                Value::Done
            }
            Op::Wait {
                reason: WaitFor::RampStep | WaitFor::Sample,
                ..
            } => {
                let stats = self.stats("");
                let serving: Vec<&ServerStat> = stats.iter().filter(|s| s.serving()).collect();
                let total: u64 = serving.iter().map(|s| u64::from(s.weight)).sum();
                for s in serving {
                    let requests = 1000 * u64::from(s.weight) / total.max(1);
                    let errors =
                        requests * self.error_percent.get(&s.server).copied().unwrap_or(0) / 100;
                    let c = self.served.entry(s.server.clone()).or_default();
                    c.0 += requests;
                    c.1 += errors;
                }
                Value::Done
            }
            Op::Wait { .. } => Value::Done,
            Op::CatchUp {
                host,
                target,
                max_lag,
                ..
            } => {
                self.host(host)?;
                let report = self
                    .report(host)
                    .ok_or_else(|| OpError::Unreachable { host: host.clone() })?;
                let lag = report.position.lag_behind(*target).unwrap_or(u64::MAX);
                if report.state != RoleState::Standby || lag > *max_lag {
                    return Err(OpError::Behind {
                        host: host.clone(),
                        detail: format!("{report}, {lag} behind {target} (simulated)"),
                    });
                }
                Value::Passed(format!("{host} {report}, {lag} behind {target}"))
            }
            Op::Check {
                host,
                address,
                index,
            } => {
                let name = pair.checks.get(*index).map_or("?", |c| c.name.as_str());
                self.check(host, *address).map_err(|why| {
                    OpError::Check(format!("check {name} failed on {host}: {why}"))
                })?;
                Value::Passed(format!("{host} answered on {address}"))
            }
            Op::Observe {
                host,
                address,
                period,
            } => {
                self.check(host, *address).map_err(|why| {
                    OpError::Check(format!(
                        "during the observation period, a check failed through {address}: {why}"
                    ))
                })?;
                Value::Passed(format!(
                    "{host} answered through {address} for {}",
                    humantime::format_duration(*period)
                ))
            }
        };
        if let Some(Effect::Repoints(a)) = effect {
            for r in self.records.values_mut() {
                r.0 = vec![a];
            }
        }
        if let Some(Effect::Edits(path, bytes)) = &effect {
            std::fs::write(path, bytes).map_err(|e| OpError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        if effect == Some(Effect::Breaks) {
            if let Some(h) = self
                .hosts
                .iter_mut()
                .find(|x| Some(x.name.as_str()) == host)
            {
                h.healthy = false;
            }
        }
        Ok(value)
    }

    /// Performs an operation (for worlds built on this one in tests).
    #[cfg(test)]
    pub fn perform_for_test(&mut self, pair: &Pair, op: &Op) -> Result<Value, OpError> {
        self.perform(pair, op)
    }

    /// The pair as `observe` would see it.
    fn seen(&self, pair: &Pair) -> PairSeen {
        let host = |h: &SimHost| HostSeen {
            name: h.name.clone(),
            address: Some(h.address),
            ssh: if h.ssh {
                Ok(())
            } else {
                Err(format!("{} is unreachable (simulated)", h.name))
            },
            holds_vip: match (&pair.traffic, h.ssh) {
                (Traffic::Vip(v), true) => Some(h.addrs.contains(&v.address)),
                _ => None,
            },
            vip_error: None,
            announces: None,
            overlaps: None,
            version: None,
            checks: pair
                .checks
                .iter()
                .map(|c| {
                    let via_ssh = matches!(c.kind, CheckKind::Command { .. });
                    let ok = h.up && h.healthy && (h.ssh || !via_ssh);
                    CheckOutcome {
                        name: c.name.clone(),
                        ok,
                        detail: if ok {
                            "ok (simulated)".into()
                        } else {
                            "failed (simulated)".into()
                        },
                        via_ssh,
                        role: c.role,
                    }
                })
                .collect(),
            role: pair
                .roles
                .as_ref()
                .filter(|_| h.ssh)
                .and_then(|_| self.report(&h.name))
                .map(Ok),
        };
        let traffic = match &pair.traffic {
            Traffic::Vip(_) => TrafficSeen::Vip,
            Traffic::Dns(d) => TrafficSeen::Dns {
                answers: d
                    .servers
                    .iter()
                    .map(|s| {
                        (
                            *s,
                            self.records
                                .get(s)
                                .map(|(a, _)| a.clone())
                                .ok_or_else(|| "no answer (simulated)".to_string()),
                        )
                    })
                    .collect(),
                key: KeySeen::Proven("simulated".into()),
            },
            Traffic::Haproxy(b) => TrafficSeen::Balancer {
                backend: b.backend.clone(),
                weight: b.weight,
                stats: Ok(self.stats(&b.backend)),
            },
            Traffic::Command(_) => {
                TrafficSeen::Command(self.hook_holder.clone().ok_or_else(|| {
                    crate::core::holder::HookFailed("no holder (simulated)".to_string())
                }))
            }
        };
        PairSeen {
            hosts: [host(&self.hosts[0]), host(&self.hosts[1])],
            traffic,
            recorded: None,
            last_run: LastRun::Settled,
        }
    }
}

/// The failure a fault makes of an operation: a command exits 1, a DNS
/// server does not answer or does not apply the update, a check fails.
fn fail(op: &Op, command: &str) -> Result<Value, OpError> {
    let failed = || {
        Ok(Value::Output(out(
            1,
            "",
            &format!("simulated failure of `{command}`"),
        )))
    };
    match op {
        Op::Remote { .. } | Op::Upload { .. } | Op::Hook { .. } => failed(),
        Op::Query { server, .. } => Err(OpError::from(DnsQueryError::Timeout {
            server: *server,
            after: std::time::Duration::from_secs(5),
        })),
        Op::Update(u) => Err(OpError::from(DnsUpdateError::Failed {
            server: u.server,
            reason: "simulated fault".into(),
        })),
        Op::Check { host, index, .. } => Err(OpError::Check(format!(
            "check #{index} failed on {host}: simulated fault"
        ))),
        Op::Observe { address, .. } => Err(OpError::Check(format!(
            "during the observation period, a check failed through {address}: simulated fault"
        ))),
        Op::Propagate { .. } => Err(OpError::Lagging {
            lagging: "simulated fault".into(),
        }),
        Op::CatchUp { host, .. } => Err(OpError::Behind {
            host: host.clone(),
            detail: "simulated fault".into(),
        }),
        Op::Balancer { .. } => failed(),
        Op::Drain { server, .. } => Err(OpError::Busy {
            server: server.clone(),
            detail: "simulated fault".into(),
        }),
        Op::Wait { .. } | Op::Arm { .. } => Err(OpError::Unsupported(command.to_string())),
    }
}

impl World for Sim {
    async fn perform(&self, pair: &Pair, op: &Op) -> Result<Value, OpError> {
        self.lock().perform(pair, op)
    }

    async fn observe(&self, pair: &Pair) -> PairSeen {
        self.lock().seen(pair)
    }

    fn crash_point(&self, _: &str) {}
}

/// Runs a future of the simulated world to its end at once: the
/// simulation never waits, so it is ready at the first poll (`None` if it
/// was not, which would be a bug).
pub fn now<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
