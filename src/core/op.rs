//! The operations a run performs, as data: run this command on that host,
//! upload this file, run this hook on the controller, ask or update this
//! DNS server, wait, run this check. Every step of a run is written as a
//! sequence of these (in `exec::steps` and `traffic`); the executor hands
//! each one to a world (`exec::World`): the real one (SSH, DNS, clocks),
//! or a simulation of what was observed, which is how `baton plan` prints
//! the very operations a run would perform. The journal records each
//! operation in the same rendered form (`Rendered`), so a plan and a run's
//! log can be compared line for line.
//!
//! Pure: building and rendering an operation touches nothing.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Pair;
use crate::core::{quote, restore};

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A command on a host.
    Remote {
        /// The host's name in the pair.
        host: String,
        /// What runs there.
        command: Remote,
    },
    /// A file uploaded atomically to a host.
    Upload {
        /// The host's name in the pair.
        host: String,
        /// The local file.
        from: PathBuf,
        /// The absolute path on the host.
        to: String,
        /// Its mode.
        mode: u32,
        /// The SHA-256 its content must have (lower-case hex): what the
        /// change's hash was taken over. A file that differs when it is
        /// read to be sent is not sent.
        sha256: String,
    },
    /// A hook on the controller (`sh -c`), its values filled and quoted.
    Hook {
        /// What the hook is for.
        purpose: Hook,
        /// The command line.
        command: String,
    },
    /// One non-recursive question to one authoritative server.
    Query {
        /// The server.
        server: SocketAddr,
        /// The record's name.
        name: String,
        /// `A` or `AAAA`.
        rtype: Rtype,
    },
    /// One TSIG-signed compare-and-swap UPDATE.
    Update(Update),
    /// Ask every server until all serve `address` (with `ttl`, when given),
    /// at most `within`.
    Propagate {
        /// The zone's servers.
        servers: Vec<SocketAddr>,
        /// The record's name.
        name: String,
        /// `A` or `AAAA`.
        rtype: Rtype,
        /// The address all must serve.
        address: IpAddr,
        /// The TTL all must serve, when it matters.
        ttl: Option<u32>,
        /// How long they may take.
        within: Duration,
    },
    /// A pause.
    Wait {
        /// How long (at most: a wait counted from an earlier moment is
        /// shorter by the time already passed).
        duration: Duration,
        /// Why.
        reason: WaitFor,
    },
    /// One health check (by its index in the pair's checks) with its
    /// policy, against `address`, where the answer must come from `host`.
    Check {
        /// The host that must answer.
        host: String,
        /// Where the check is sent (the host's own address or the service
        /// address).
        address: IpAddr,
        /// The check's index in the pair's `checks`.
        index: usize,
    },
    /// The observation period through the service address: every check
    /// keeps passing, answered by `host`, for `period`.
    Observe {
        /// The host that must answer.
        host: String,
        /// The service address.
        address: IpAddr,
        /// How long.
        period: Duration,
    },
    /// Run the `position` hook on `host` (a standby) until it reports a
    /// position at most `max_lag` behind `target`, at most `within`.
    CatchUp {
        /// The standby.
        host: String,
        /// The `position` hook, filled for the host.
        line: String,
        /// Each run's time limit.
        timeout: Duration,
        /// The position to reach (the old primary's final one, or the last
        /// one seen from it in a failover). Not printed: the plan cannot
        /// know it; the record's output says it.
        target: crate::core::position::Position,
        /// How far behind it may stay.
        max_lag: u64,
        /// How long it may take.
        within: Duration,
    },
    /// Start a privileged program on a host before a moment that must be
    /// short, so that the command sent to it later does not wait for sudo.
    Arm {
        /// The host's name in the pair.
        host: String,
    },
    /// Runtime API commands sent to the balancer's admin socket as one
    /// line (`traffic.host`, over its SSH session).
    Balancer {
        /// The commands, in order.
        commands: Vec<crate::core::balancer::Command>,
    },
    /// Ask the balancer every 200 ms until `server` of the pair's backend
    /// has no current sessions, at most `within`.
    Drain {
        /// The server (the host's name).
        server: String,
        /// How long it may take.
        within: Duration,
    },
}

/// A command run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A change's step or rollback step, as the login user, through the shell.
    Shell(String),
    /// Keep the file an upload replaces as `PATH.baton-prev`, or remove a
    /// stale copy when there is none (`core::restore`).
    KeepPrevious {
        /// The upload's destination.
        path: String,
        /// The change's content hash (the owner of what is kept).
        change: String,
        /// The uploaded content's SHA-256, lower-case hex.
        sha256: String,
    },
    /// Put back what an upload replaced, while the file still holds what
    /// the change uploaded (`core::restore`).
    RestorePrevious {
        /// The upload's destination.
        path: String,
        /// The change's content hash (only its own mark is acted on).
        change: String,
        /// The uploaded content's SHA-256, lower-case hex.
        sha256: String,
    },
    /// Which addresses the interface has (`ip -o addr show dev IF`).
    AddrShow {
        /// The interface.
        interface: String,
    },
    /// Remove or add an address (privileged), as a line to the host's
    /// armed `ip -batch -` when `batch`, else as its own command.
    Addr {
        /// Add or remove.
        action: AddrAction,
        /// `ADDRESS/PREFIX`.
        cidr: String,
        /// The interface.
        interface: String,
        /// Through the armed `ip -o -batch -`.
        batch: bool,
    },
    /// One nftables transaction (privileged, on stdin): start or end the
    /// quiesce hold on new connections to the address.
    Nft {
        /// What the transaction does.
        purpose: NftPurpose,
        /// The script.
        script: String,
    },
    /// Gratuitous ARP for the address, in the background, its report to a
    /// file of the login user's (`announce_file`).
    Announce {
        /// The interface.
        interface: String,
        /// The address.
        address: IpAddr,
        /// How many packets.
        count: u32,
        /// Whether to retry through sudo.
        sudo: bool,
    },
    /// A role hook (`[roles]`), as the login user through the shell,
    /// within its own time limit.
    Role {
        /// Which hook.
        action: RoleAction,
        /// The command line, placeholders filled and quoted.
        line: String,
        /// Its time limit.
        timeout: Duration,
    },
    /// Read the background announcement's report.
    Report {
        /// The address it announced.
        address: IpAddr,
    },
    /// End every TCP connection whose local address is `address`
    /// (privileged `ss -K`; each peer gets a reset while the host still
    /// holds the address): the old holder's connections at the end of an
    /// overlap handover, which would otherwise linger without a route for
    /// their answers and come back to life when the host takes the address
    /// again.
    EndConnections {
        /// The address.
        address: IpAddr,
    },
    /// Duplicate address detection for the address from this host.
    Probe {
        /// The interface.
        interface: String,
        /// The address.
        address: IpAddr,
        /// Through sudo (after the unprivileged attempt could not run).
        privileged: bool,
    },
}

/// The role hooks of a pair (`[roles]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAction {
    /// The primary stops taking writes.
    Demote,
    /// Print the host's role state and position.
    Position,
    /// The standby becomes writable.
    Promote,
    /// The host follows its peer.
    Follow,
    /// A demoted primary takes writes again.
    Resume,
}

impl RoleAction {
    /// Its name as configured.
    pub fn name(self) -> &'static str {
        match self {
            RoleAction::Demote => "demote",
            RoleAction::Position => "position",
            RoleAction::Promote => "promote",
            RoleAction::Follow => "follow",
            RoleAction::Resume => "resume",
        }
    }

    /// The hook of a pair's roles.
    pub fn hook(self, roles: &crate::config::Roles) -> &crate::config::RoleHook {
        match self {
            RoleAction::Demote => &roles.demote,
            RoleAction::Position => &roles.position,
            RoleAction::Promote => &roles.promote,
            RoleAction::Follow => &roles.follow,
            RoleAction::Resume => &roles.resume,
        }
    }

    /// The command running this hook of `roles` on `host`, its
    /// placeholders filled (shell-quoted) for the host and its `peer`.
    pub fn command(
        self,
        roles: &crate::config::Roles,
        host: &crate::config::Host,
        peer: &crate::config::Host,
    ) -> Remote {
        let hook = self.hook(roles);
        Remote::Role {
            action: self,
            line: fill_role(&hook.command, host, peer),
            timeout: hook.timeout,
        }
    }
}

/// A role hook's placeholders filled for the host it runs on and its peer,
/// each value shell-quoted.
pub fn fill_role(template: &str, host: &crate::config::Host, peer: &crate::config::Host) -> String {
    // `{peer_address}` before `{peer}`, `{address}`: no placeholder is a
    // prefix of another's braces, but the order keeps that obvious.
    template
        .replace("{peer_address}", &quote::quote(&peer.address.to_string()))
        .replace("{peer}", &quote::quote(&peer.name))
        .replace("{address}", &quote::quote(&host.address.to_string()))
        .replace("{host}", &quote::quote(&host.name))
}

/// `ip addr add`, `ip addr del`, and the lifetimes of the overlap
/// handover (`traffic::handover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrAction {
    /// `ip addr add`.
    Add,
    /// `ip addr del`.
    Del,
    /// `ip addr replace ... valid_lft forever preferred_lft forever`: the
    /// address held for good, whether it was there (with a lifetime left
    /// by an earlier overlap) or not.
    Replace,
    /// The address given a lifetime of this many seconds, after which the
    /// kernel removes it by itself (`addr change ... valid_lft N
    /// preferred_lft N` through `ip -o -batch -`, for IPv6 `nodad
    /// noprefixroute`): the address stays in
    /// place meanwhile, not a packet to it is lost. (Removing and adding it
    /// again would be a compare, but it drops what arrives in between: the
    /// benchmark lost SYNs there.) Never through the armed program: it is
    /// no moment that must be short.
    Lapse(u64),
    /// The address kept for good again (`ip addr change ... valid_lft
    /// forever preferred_lft forever`, through `ip -o -batch -`): the undo
    /// of `Lapse` when the new host could not take the address.
    Keep,
}

/// What an nft transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftPurpose {
    /// Start holding new connections off.
    Hold,
    /// End any hold.
    Release,
    /// Start handing packets of connections this host does not own back
    /// to the old holder (`traffic::handover`).
    HandBack,
    /// End the hand-back.
    EndHandBack,
}

/// What a controller hook is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// The command method's switch hook, moving traffic to `to`.
    Switch {
        /// The host traffic moves to.
        to: String,
    },
    /// The command method's query hook.
    Query,
    /// The pair's fence command for `host`.
    Fence {
        /// The host fenced.
        host: String,
    },
}

/// A DNS record type baton switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rtype {
    /// IPv4.
    A,
    /// IPv6.
    #[allow(clippy::upper_case_acronyms)]
    AAAA,
}

impl Rtype {
    /// The record type for an address.
    pub fn of(address: &IpAddr) -> Rtype {
        match address {
            IpAddr::V4(_) => Rtype::A,
            IpAddr::V6(_) => Rtype::AAAA,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Rtype::A => "A",
            Rtype::AAAA => "AAAA",
        }
    }
}

/// One compare-and-swap UPDATE: only if `name` holds exactly `expected`,
/// it becomes `new` with `ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The server (the zone's primary).
    pub server: SocketAddr,
    /// The zone.
    pub zone: String,
    /// The record.
    pub name: String,
    /// `A` or `AAAA`.
    pub rtype: Rtype,
    /// What it must hold now.
    pub expected: Vec<IpAddr>,
    /// What it becomes.
    pub new: IpAddr,
    /// The new TTL.
    pub ttl: u32,
    /// The TSIG key's name and algorithm (never its secret).
    pub key: String,
}

/// Why a run waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// The quiesce time after the hold began: open connections finish.
    Quiesce,
    /// The old TTL after lowering it: no cache keeps the old answer longer
    /// than the lowered TTL.
    LoweredTtl,
    /// The record's TTL after the switch: caches forget the old primary.
    Drain,
    /// A ramp's step: requests spread by the step's weights before the
    /// two hosts are compared.
    RampStep,
    /// An A/B experiment's interval: requests spread by the split's
    /// weights before the two hosts are sampled and compared.
    Sample,
    /// The overlap handover: both hosts hold the address, the new one
    /// takes the new connections and hands the old one's back to it, so
    /// that those finish.
    Overlap,
    /// The lifetime an overlap handover gave the old holder's address,
    /// after that host failed to remove it: the kernel removes it then.
    Lifetime,
}

/// Where an operation runs, as printed: a host's name, or `controller`.
pub const CONTROLLER: &str = "controller";

pub use crate::core::announce::{announce_file, probe_argv, ARPING_EXIT};

/// How a program is invoked on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// A shell line as the login user.
    User(String),
    /// A program with root privileges (`sudo -n` when configured), with
    /// input on its stdin when given.
    Privileged {
        /// The program and its arguments.
        argv: Vec<String>,
        /// Its standard input.
        input: Option<String>,
    },
    /// One line to the host's armed `ip -o -batch -`.
    Batch(String),
}

/// The armed program (`Op::Arm`): `ip -o -batch -`, proven running by
/// asking it for the loopback link.
pub const BATCH_ARGV: [&str; 4] = ["ip", "-o", "-batch", "-"];

/// What the armed `ip` is asked first, to prove it runs.
pub const BATCH_PROBE: &str = "link show dev lo\n";

impl Remote {
    /// Its own time limit, when it has one (else the pair's
    /// `command_timeout`).
    pub fn timeout(&self) -> Option<Duration> {
        match self {
            Remote::Role { timeout, .. } => Some(*timeout),
            _ => None,
        }
    }

    /// How it runs.
    pub fn invocation(&self) -> Invocation {
        let path = "PATH=\"$PATH:/usr/sbin:/sbin\"";
        match self {
            Remote::Shell(line) => Invocation::User(line.clone()),
            Remote::KeepPrevious {
                path,
                change,
                sha256,
            } => Invocation::User(restore::keep_line(&restore::Upload {
                path,
                change,
                sha256,
            })),
            Remote::RestorePrevious {
                path,
                change,
                sha256,
            } => Invocation::User(restore::restore_line(&restore::Upload {
                path,
                change,
                sha256,
            })),
            Remote::AddrShow { interface } => Invocation::User(format!(
                "{path} ip -o addr show dev {}",
                quote::quote(interface)
            )),
            Remote::Addr {
                action,
                cidr,
                interface,
                batch,
            } => {
                let ipv6 = cidr.contains(':');
                // (IPv6: a lifetime on an address that owns its prefix's
                // route would give that route the lifetime too, which some
                // kernels even set in the past, cutting the host off its
                // prefix at once; `noprefixroute` leaves the route to the
                // host's own address of the prefix, `overlap::target`.)
                let nodad = if ipv6 { " nodad noprefixroute" } else { "" };
                let through_batch = |input: String| Invocation::Privileged {
                    argv: BATCH_ARGV.iter().map(|s| s.to_string()).collect(),
                    input: Some(input),
                };
                match action {
                    AddrAction::Lapse(secs) => {
                        return through_batch(format!(
                            "addr change {cidr} dev {interface} valid_lft {secs} preferred_lft {secs}{nodad}\n"
                        ))
                    }
                    AddrAction::Keep => {
                        return through_batch(format!(
                            "addr change {cidr} dev {interface} valid_lft forever preferred_lft forever{nodad}\n"
                        ))
                    }
                    // The overlap's add without an armed program: one
                    // `ip -o -batch -` too (the rule the overlap's lifetime
                    // needs anyway), not a sudoers rule of its own.
                    AddrAction::Replace if !*batch => {
                        let nodad = if ipv6 { " nodad" } else { "" };
                        return through_batch(format!(
                            "addr replace {cidr} dev {interface} valid_lft forever preferred_lft forever{nodad}\n"
                        ));
                    }
                    _ => {}
                }
                let verb = match action {
                    AddrAction::Add => "add",
                    AddrAction::Del => "del",
                    AddrAction::Replace | AddrAction::Lapse(_) | AddrAction::Keep => "replace",
                };
                // An IPv6 address is added without duplicate address
                // detection: it is usable at once instead of `tentative`
                // for about two seconds (the old holder has just given it
                // up; a failover proves that first). A validated IPv6 CIDR
                // always holds a colon, an IPv4 one never.
                let nodad = *action != AddrAction::Del && ipv6;
                let mut words = vec!["addr", verb, cidr.as_str(), "dev", interface.as_str()];
                if *action == AddrAction::Replace {
                    words.extend(["valid_lft", "forever", "preferred_lft", "forever"]);
                }
                if nodad {
                    words.push("nodad");
                }
                if *batch {
                    // Validated addresses and interface names hold no
                    // whitespace: the line splits exactly into these words.
                    Invocation::Batch(words.join(" "))
                } else {
                    Invocation::Privileged {
                        argv: std::iter::once("ip")
                            .chain(words)
                            .map(|s| s.to_string())
                            .collect(),
                        input: None,
                    }
                }
            }
            Remote::Nft { script, .. } => Invocation::Privileged {
                argv: vec!["nft".into(), "-f".into(), "-".into()],
                input: Some(script.clone()),
            },
            Remote::Announce {
                interface,
                address,
                count,
                sudo,
            } => Invocation::User(crate::core::announce::announce_line(
                interface, address, *count, *sudo,
            )),
            Remote::Report { address } => {
                Invocation::User(format!("cat -- \"{}\"", announce_file(address)))
            }
            Remote::Role { line, .. } => Invocation::User(line.clone()),
            Remote::EndConnections { address } => Invocation::Privileged {
                argv: ["ss", "-K", "-t", "-n", "src"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(std::iter::once(match address {
                        IpAddr::V4(a) => a.to_string(),
                        IpAddr::V6(a) => format!("[{a}]"),
                    }))
                    .collect(),
                input: None,
            },
            Remote::Probe {
                interface,
                address,
                privileged,
            } => {
                let argv: Vec<String> = probe_argv(interface, address);
                if *privileged {
                    Invocation::Privileged { argv, input: None }
                } else {
                    Invocation::User(format!("{path} {}", quote::join(&argv)))
                }
            }
        }
    }
}

/// An operation as the plan prints it and the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The host's name, or `controller`.
    pub host: String,
    /// The kind of operation.
    pub op: OpKind,
    /// The command line, the UPDATE, the check or the wait, in full.
    pub command: String,
}

/// The kinds of operations, as printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A command on a host (or, in journals older than operations, any
    /// command).
    #[default]
    Run,
    /// An upload.
    Upload,
    /// A hook on the controller.
    Hook,
    /// A DNS question.
    Query,
    /// A DNS UPDATE.
    Update,
    /// Waiting for every DNS server to serve an answer.
    Propagate,
    /// A pause.
    Wait,
    /// A health check.
    Check,
    /// The observation period.
    Observe,
    /// A program started ahead of its input.
    Arm,
    /// Waiting for a standby to reach a replication position.
    CatchUp,
    /// Runtime API commands to a balancer.
    Balancer,
    /// Waiting for a balancer's server to finish its sessions.
    Drain,
}

/// A wait at least this long is announced as it begins (`Op::long_wait`).
pub const LONG_WAIT: Duration = Duration::from_secs(1);

impl Op {
    /// How long the operation may wait, when it is one of the long waits
    /// an operator should see coming (a TTL, the observation period,
    /// propagation, a standby catching up, a balancer's drain) and at
    /// least `LONG_WAIT`: progress says what it waits for and until when.
    pub fn long_wait(&self) -> Option<Duration> {
        let d = match self {
            // The quiesce hold and the overlap are inside the switch:
            // nothing, not even a line of progress, is written there.
            Op::Wait {
                reason: WaitFor::Quiesce | WaitFor::Overlap | WaitFor::Lifetime,
                ..
            } => return None,
            Op::Wait { duration, .. } => *duration,
            Op::Observe { period, .. } => *period,
            Op::Propagate { within, .. }
            | Op::CatchUp { within, .. }
            | Op::Drain { within, .. } => *within,
            _ => return None,
        };
        (d >= LONG_WAIT).then_some(d)
    }

    /// The operation as printed and journaled. `pair` gives the sudo
    /// setting and the checks.
    pub fn render(&self, pair: &Pair) -> Rendered {
        let sudo = |line: String| {
            if pair.ssh.sudo {
                format!("sudo -n {line}")
            } else {
                line
            }
        };
        let (host, op, command) = match self {
            Op::Remote { host, command } => {
                let line = match command.invocation() {
                    Invocation::User(line) => line,
                    Invocation::Privileged { argv, input } => {
                        let line = sudo(quote::join(&argv));
                        match input {
                            None => line,
                            Some(i) => format!("{line} <<< {}", quote::quote(i.trim_end())),
                        }
                    }
                    Invocation::Batch(line) => format!(
                        "{} <<< {}",
                        sudo(quote::join(&BATCH_ARGV)),
                        quote::quote(&line)
                    ),
                };
                (host.clone(), OpKind::Run, line)
            }
            Op::Upload {
                host,
                from,
                to,
                mode,
                ..
            } => (
                host.clone(),
                OpKind::Upload,
                format!("upload {} to {to} (mode {mode:04o})", from.display()),
            ),
            Op::Hook { command, .. } => (CONTROLLER.to_string(), OpKind::Hook, command.clone()),
            Op::Query {
                server,
                name,
                rtype,
            } => (
                CONTROLLER.to_string(),
                OpKind::Query,
                format!("ask {server} for {name} {} (no recursion)", rtype.name()),
            ),
            Op::Update(u) => (CONTROLLER.to_string(), OpKind::Update, u.to_string()),
            Op::Propagate {
                servers,
                name,
                rtype,
                address,
                ttl,
                within,
            } => (
                CONTROLLER.to_string(),
                OpKind::Propagate,
                format!(
                    "ask {} for {name} {} every 100ms until all answer {address}{} (at most {})",
                    servers
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    rtype.name(),
                    ttl.map(|t| format!(" with TTL {t}s")).unwrap_or_default(),
                    humantime::format_duration(*within)
                ),
            ),
            Op::Wait { duration, reason } => (
                CONTROLLER.to_string(),
                OpKind::Wait,
                format!(
                    "wait {} {}",
                    humantime::format_duration(*duration),
                    match reason {
                        WaitFor::Quiesce => "from the start of the hold: open connections finish",
                        WaitFor::LoweredTtl =>
                            "(the old TTL): no cache keeps the old answer longer than the lowered TTL",
                        WaitFor::Drain => "(the record's TTL): caches forget the old primary",
                        WaitFor::RampStep =>
                            "(a ramp step): requests spread by the new weights, then the hosts are compared",
                        WaitFor::Sample =>
                            "(an A/B interval): requests spread by the split's weights, then the hosts are sampled and compared",
                        WaitFor::Overlap =>
                            "(the overlap): the new holder takes new connections, the old one finishes its own",
                        WaitFor::Lifetime =>
                            "(the old holder's address lifetime): its kernel removes the address",
                    }
                ),
            ),
            Op::Check {
                host,
                address,
                index,
            } => (
                CONTROLLER.to_string(),
                OpKind::Check,
                match pair.checks.get(*index) {
                    Some(c) => crate::core::template::describe(c, host, *address),
                    None => format!("check #{index} (not configured)"),
                },
            ),
            Op::Observe {
                host,
                address,
                period,
            } => (
                CONTROLLER.to_string(),
                OpKind::Observe,
                format!(
                    "repeat every check through {address} for {}: every answer must come from {host}",
                    humantime::format_duration(*period)
                ),
            ),
            Op::Arm { host } => (
                host.clone(),
                OpKind::Arm,
                format!(
                    "start {} and ask it `{}`",
                    sudo(quote::join(&BATCH_ARGV)),
                    BATCH_PROBE.trim_end()
                ),
            ),
            Op::Balancer { commands } => match &pair.traffic {
                crate::config::Traffic::Haproxy(b) => (
                    b.host.name.clone(),
                    OpKind::Balancer,
                    crate::core::balancer::shell(commands, &b.socket),
                ),
                _ => (
                    CONTROLLER.to_string(),
                    OpKind::Balancer,
                    format!("{commands:?} (the pair has no balancer)"),
                ),
            },
            Op::Drain { server, within } => match &pair.traffic {
                crate::config::Traffic::Haproxy(b) => (
                    b.host.name.clone(),
                    OpKind::Drain,
                    format!(
                        "run `{}` every 200ms until server {}/{server} has no current sessions (at most {})",
                        crate::core::balancer::Command::ShowStat.shell(&b.socket),
                        b.backend,
                        humantime::format_duration(*within)
                    ),
                ),
                _ => (
                    CONTROLLER.to_string(),
                    OpKind::Drain,
                    format!("drain {server} (the pair has no balancer)"),
                ),
            },
            Op::CatchUp {
                host,
                line,
                max_lag,
                within,
                ..
            } => (
                host.clone(),
                OpKind::CatchUp,
                format!(
                    "run `{line}` every 100ms until its position is at most {max_lag} behind the target (at most {})",
                    humantime::format_duration(*within)
                ),
            ),
        };
        Rendered { host, op, command }
    }
}

impl std::fmt::Display for Update {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |a: &[IpAddr]| {
            a.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(
            f,
            "UPDATE to {} for zone {}, signed with TSIG key {}: prerequisite {} {} is exactly {}; delete {} {} {}; add {} {} {} {}",
            self.server,
            self.zone,
            self.key,
            self.name,
            self.rtype.name(),
            list(&self.expected),
            self.name,
            self.rtype.name(),
            list(&self.expected),
            self.name,
            self.ttl,
            self.rtype.name(),
            self.new
        )
    }
}

/// How an address change on eth0 is invoked (for the tests).
#[cfg(test)]
pub(crate) fn addr_on_eth0(action: AddrAction, cidr: &str, batch: bool) -> Invocation {
    Remote::Addr {
        action,
        cidr: cidr.into(),
        interface: "eth0".into(),
        batch,
    }
    .invocation()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batched_address_change_is_one_line_to_the_running_ip() {
        let del = Remote::Addr {
            action: AddrAction::Del,
            cidr: "198.18.0.100/24".into(),
            interface: "eth0".into(),
            batch: true,
        };
        assert_eq!(
            del.invocation(),
            Invocation::Batch("addr del 198.18.0.100/24 dev eth0".into())
        );
        let add = Remote::Addr {
            action: AddrAction::Add,
            cidr: "198.18.0.100/24".into(),
            interface: "eth0".into(),
            batch: false,
        };
        assert_eq!(
            add.invocation(),
            Invocation::Privileged {
                argv: vec![
                    "ip".into(),
                    "addr".into(),
                    "add".into(),
                    "198.18.0.100/24".into(),
                    "dev".into(),
                    "eth0".into()
                ],
                input: None
            }
        );
    }

    #[test]
    fn the_overlaps_address_changes_go_through_one_ip_batch_and_ipv6_leaves_the_prefix_route_alone()
    {
        let change = addr_on_eth0;
        let batch = |line: &str| Invocation::Privileged {
            argv: BATCH_ARGV.iter().map(|s| s.to_string()).collect(),
            input: Some(format!("{line}\n")),
        };
        assert_eq!(
            change(AddrAction::Replace, "198.18.0.100/24", false),
            batch("addr replace 198.18.0.100/24 dev eth0 valid_lft forever preferred_lft forever")
        );
        assert_eq!(
            change(AddrAction::Replace, "fd00::160/64", true),
            Invocation::Batch(
                "addr replace fd00::160/64 dev eth0 valid_lft forever preferred_lft forever nodad"
                    .into()
            )
        );
        assert_eq!(
            change(AddrAction::Lapse(3), "fd00::160/64", true),
            batch(
                "addr change fd00::160/64 dev eth0 valid_lft 3 preferred_lft 3 nodad noprefixroute"
            )
        );
        assert_eq!(
            change(AddrAction::Lapse(3), "198.18.0.100/24", false),
            batch("addr change 198.18.0.100/24 dev eth0 valid_lft 3 preferred_lft 3")
        );
        assert_eq!(
            change(AddrAction::Keep, "fd00::160/64", false),
            batch("addr change fd00::160/64 dev eth0 valid_lft forever preferred_lft forever nodad noprefixroute")
        );
    }

    #[test]
    fn long_waits_are_the_waits_of_a_second_or_more() {
        let wait = |secs| Op::Wait {
            duration: Duration::from_secs(secs),
            reason: WaitFor::Drain,
        };
        assert_eq!(wait(300).long_wait(), Some(Duration::from_secs(300)));
        assert_eq!(wait(1).long_wait(), Some(LONG_WAIT));
        assert_eq!(wait(0).long_wait(), None);
        let quiesce = Op::Wait {
            duration: Duration::from_secs(2),
            reason: WaitFor::Quiesce,
        };
        assert_eq!(quiesce.long_wait(), None);
        let observe = Op::Observe {
            host: "green".into(),
            address: "192.0.2.1".parse().unwrap(),
            period: Duration::from_secs(5),
        };
        assert_eq!(observe.long_wait(), Some(Duration::from_secs(5)));
        let drain = Op::Drain {
            server: "green".into(),
            within: Duration::from_millis(500),
        };
        assert_eq!(drain.long_wait(), None);
        let remote = Op::Remote {
            host: "blue".into(),
            command: Remote::Shell("sleep 60".into()),
        };
        assert_eq!(remote.long_wait(), None);
    }

    #[test]
    fn values_in_shell_lines_are_quoted() {
        let keep = Remote::KeepPrevious {
            path: "/etc/it's.conf".into(),
            change: "c0ffee".into(),
            sha256: "ab".into(),
        };
        let Invocation::User(line) = keep.invocation() else {
            panic!("not a user command")
        };
        assert!(
            line.starts_with("f='/etc/it'\\''s.conf'; d=/etc; p='/etc/it'\\''s.conf.baton-prev'; "),
            "{line}"
        );
        assert!(line.contains("cp -p -- \"$f\" \"$p\""), "{line}");
        let show = Remote::AddrShow {
            interface: "eth0;x".into(),
        };
        let Invocation::User(line) = show.invocation() else {
            panic!("not a user command")
        };
        assert!(line.ends_with("ip -o addr show dev 'eth0;x'"), "{line}");
    }

    #[test]
    fn the_announcement_names_its_report_before_it_runs() {
        let a: IpAddr = "198.18.0.100".parse().unwrap();
        let announce = Remote::Announce {
            interface: "eth0".into(),
            address: a,
            count: 3,
            sudo: true,
        };
        let Invocation::User(line) = announce.invocation() else {
            panic!("not a user command")
        };
        assert!(line.contains("d=/tmp/baton-$(id -u); "));
        assert!(line.contains("f=\"$d/arping-198.18.0.100.log\""));
        let before = line.split("nohup").next().unwrap_or_default();
        assert_eq!(
            before.matches("$(").count(),
            1,
            "one process before arping: {line}"
        );
        assert!(line.contains("[ -O \"$d\" ] && [ ! -L \"$d\" ]"));
        assert!(line.contains("arping -U -c 3 -I eth0 198.18.0.100 || sudo -n arping"));
        assert_eq!(
            Remote::Report { address: a }.invocation(),
            Invocation::User("cat -- \"/tmp/baton-$(id -u)/arping-198.18.0.100.log\"".into())
        );
    }

    #[test]
    fn an_update_is_printed_in_full() {
        let u = Update {
            server: "198.18.0.53:53".parse().unwrap(),
            zone: "lab.test.".into(),
            name: "www.lab.test.".into(),
            rtype: Rtype::A,
            expected: vec!["198.18.0.11".parse().unwrap()],
            new: "198.18.0.12".parse().unwrap(),
            ttl: 60,
            key: "update. (hmac-sha256)".into(),
        };
        assert_eq!(
            u.to_string(),
            "UPDATE to 198.18.0.53:53 for zone lab.test., signed with TSIG key update. (hmac-sha256): \
             prerequisite www.lab.test. A is exactly 198.18.0.11; delete www.lab.test. A 198.18.0.11; \
             add www.lab.test. 60 A 198.18.0.12"
        );
        assert_eq!(Rtype::of(&"2001:db8::1".parse().unwrap()), Rtype::AAAA);
    }
}
