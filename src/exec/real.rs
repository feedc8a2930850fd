//! The real world: operations performed over the SSH sessions a run
//! opened, against the authoritative DNS servers, with the clock, and as
//! local hooks. Only moves bytes: what to do, and what an answer means,
//! is decided by the steps that perform the operations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{OpError, Value, World};
use crate::config::{Haproxy, Host, Pair, Traffic};
use crate::core::assess::PairSeen;
use crate::core::balancer::{self, ServerStat};
use crate::core::op::{
    Invocation, NftPurpose, Op, Remote, Rtype, WaitFor, BATCH_ARGV, BATCH_PROBE,
};
use crate::core::position::{Report, RoleState};
use crate::io::dns;
use crate::io::hooks::HookError;
use crate::io::ssh::{Armed, Output, SshError, SshHost};

/// The real world of one run.
pub struct RealWorld<'a> {
    /// Sessions to the hosts, in the pair's host order.
    sessions: [Option<&'a SshHost>; 2],
    /// The session to the pair's balancer (method `haproxy`).
    balancer: Option<&'a SshHost>,
    /// Programs armed on hosts (`Op::Arm`), by host name; each serves the
    /// next operation on its host, and any other operation there ends it.
    armed: Mutex<HashMap<String, Armed>>,
    /// When the last quiesce hold began (for `WaitFor::Quiesce`).
    held_since: Mutex<Option<Instant>>,
}

impl<'a> RealWorld<'a> {
    /// The world reached through these sessions (and the balancer's).
    pub fn new(sessions: [Option<&'a SshHost>; 2], balancer: Option<&'a SshHost>) -> Self {
        RealWorld {
            sessions,
            balancer,
            armed: Mutex::new(HashMap::new()),
            held_since: Mutex::new(None),
        }
    }

    /// The balancer's session and settings.
    fn balancer<'p>(&self, pair: &'p Pair) -> Result<(&'a SshHost, &'p Haproxy), OpError> {
        let Traffic::Haproxy(b) = &pair.traffic else {
            return Err(OpError::Unsupported(
                "a balancer operation on a pair without one".to_string(),
            ));
        };
        let ssh = self.balancer.ok_or_else(|| OpError::Unreachable {
            host: b.host.name.clone(),
        })?;
        Ok((ssh, b))
    }

    /// `show stat` of the balancer, read.
    async fn stats(&self, pair: &Pair) -> Result<Vec<ServerStat>, OpError> {
        let (ssh, b) = self.balancer(pair)?;
        crate::io::observe::show_stat(ssh, pair, b)
            .await
            .map_err(OpError::Check)
    }

    fn session(&self, pair: &Pair, host: &str) -> Result<&'a SshHost, OpError> {
        pair.hosts
            .iter()
            .position(|h| h.name == host)
            .and_then(|i| self.sessions[i])
            .ok_or_else(|| OpError::Unreachable {
                host: host.to_string(),
            })
    }

    /// Ends the program armed on `host`, if any (it gets end of file): an
    /// armed program serves only the operation right after it on its host,
    /// and holds the session until then.
    fn disarm(&self, host: &str) {
        if let Ok(mut armed) = self.armed.lock() {
            armed.remove(host);
        }
    }

    async fn remote(&self, pair: &Pair, host: &str, command: &Remote) -> Result<Output, OpError> {
        let ssh = self.session(pair, host)?;
        let invocation = command.invocation();
        if !matches!(invocation, Invocation::Batch(_)) {
            self.disarm(host);
        }
        let out = match invocation {
            Invocation::User(line) => match command.timeout() {
                Some(t) => ssh.run_with_timeout(&line, t).await,
                None => ssh.run(&line).await,
            },
            Invocation::Privileged { argv, input } => {
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                match input {
                    None => ssh.run_privileged(&argv).await,
                    Some(i) => ssh.run_privileged_input(&argv, i.into_bytes()).await,
                }
            }
            Invocation::Batch(line) => {
                let armed = self.armed.lock().ok().and_then(|mut a| a.remove(host));
                let fired = match armed {
                    Some(armed) => Some(armed.fire((line + "\n").into_bytes()).await),
                    None => None,
                };
                let refused = match fired {
                    // Only when sudo itself refused `ip -batch` is it certain
                    // that the line did nothing, and the command may run on
                    // its own. (sudo's words are all there is to tell by.)
                    Some(out) if !refused_by_sudo(&out) => return Ok(out?),
                    Some(Ok(out)) => format!(
                        "sudo refused `ip -o -batch -` ({}); the command ran on its own:\n",
                        out.stderr_text().trim()
                    ),
                    _ => String::new(),
                };
                let alone = match command {
                    Remote::Addr {
                        action,
                        cidr,
                        interface,
                        ..
                    } => Remote::Addr {
                        action: *action,
                        cidr: cidr.clone(),
                        interface: interface.clone(),
                        batch: false,
                    },
                    other => other.clone(),
                };
                match alone.invocation() {
                    Invocation::Privileged { argv, .. } => {
                        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                        ssh.run_privileged(&argv).await.map(|mut o| {
                            let mut said = refused.into_bytes();
                            said.extend_from_slice(&o.stderr);
                            o.stderr = said;
                            o
                        })
                    }
                    _ => return Err(OpError::Unsupported(format!("{command:?}"))),
                }
            }
        };
        let out = out?;
        if let Remote::Nft {
            purpose: NftPurpose::Hold,
            ..
        } = command
        {
            if out.success() {
                if let Ok(mut since) = self.held_since.lock() {
                    *since = Some(Instant::now());
                }
            }
        }
        Ok(out)
    }
}

fn refused_by_sudo(out: &Result<Output, SshError>) -> bool {
    out.as_ref()
        .is_ok_and(|o| !o.success() && o.stderr_text().trim_start().starts_with("sudo:"))
}

fn dns_timeout(pair: &Pair) -> Duration {
    pair.ssh.connect_timeout.min(Duration::from_secs(5))
}

fn rtype(r: Rtype) -> hickory_proto::rr::RecordType {
    match r {
        Rtype::A => hickory_proto::rr::RecordType::A,
        Rtype::AAAA => hickory_proto::rr::RecordType::AAAA,
    }
}

impl World for RealWorld<'_> {
    async fn perform(&self, pair: &Pair, op: &Op) -> Result<Value, OpError> {
        match op {
            Op::Remote { host, command } => {
                self.remote(pair, host, command).await.map(Value::Output)
            }
            Op::Upload {
                host,
                from,
                to,
                mode,
                sha256,
            } => {
                let ssh = self.session(pair, host)?;
                self.disarm(host);
                let content = crate::io::readfile::bytes(from, crate::io::readfile::UPLOAD)
                    .map_err(|e| OpError::Read {
                        path: from.display().to_string(),
                        reason: e.to_string(),
                    })?;
                // What is sent is what the change's hash was taken over.
                let now = crate::exec::change::sha256_hex(&content);
                if now != *sha256 {
                    return Err(OpError::Read {
                        path: from.display().to_string(),
                        reason: format!("it changed while the run was uploading it (SHA-256 {sha256} a moment before, {now} now); nothing was sent"),
                    });
                }
                Ok(Value::Output(ssh.upload(content, to, *mode).await?))
            }
            Op::Hook { command, .. } => {
                let secrets = crate::io::hooks::secrets(pair);
                let timeout = pair.ssh.command_timeout;
                match crate::io::hooks::run(command, &secrets, timeout).await {
                    Err(HookError::Timeout) => Err(OpError::from(SshError::Timeout {
                        host: "controller".into(),
                        what: format!("running `{command}`"),
                        after: timeout,
                    })),
                    Err(HookError::Spawn(e)) => Err(OpError::from(SshError::Channel {
                        host: "controller".into(),
                        reason: format!("cannot run `{command}`: {e}"),
                    })),
                    Ok(o) => Ok(Value::Output(o)),
                }
            }
            Op::Query {
                server,
                name,
                rtype: r,
            } => Ok(Value::Answer(
                dns::query(*server, name, rtype(*r), dns_timeout(pair)).await?,
            )),
            Op::Update(u) => {
                let Traffic::Dns(d) = &pair.traffic else {
                    return Err(OpError::Unsupported(format!("{op:?}")));
                };
                let replace = dns::Replace {
                    zone: &u.zone,
                    name: &u.name,
                    expected: &u.expected,
                    new: u.new,
                    ttl: u.ttl,
                };
                dns::replace(u.server, replace, &d.tsig_key, dns_timeout(pair)).await?;
                Ok(Value::Done)
            }
            Op::Propagate {
                servers,
                name,
                rtype: r,
                address,
                ttl,
                within,
            } => {
                let started = Instant::now();
                let deadline = started + *within;
                loop {
                    let answers = futures_util::future::join_all(
                        servers
                            .iter()
                            .map(|s| dns::query(*s, name, rtype(*r), dns_timeout(pair))),
                    )
                    .await;
                    let lagging = lagging(servers, &answers, *address, *ttl);
                    if lagging.is_empty() {
                        return Ok(Value::Propagated(started.elapsed().as_millis()));
                    }
                    if Instant::now() >= deadline {
                        return Err(OpError::Lagging {
                            lagging: lagging.join("; "),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Op::Wait { duration, reason } => {
                let wait = match reason {
                    // Counted from the moment the hold began.
                    WaitFor::Quiesce => {
                        let since = self.held_since.lock().ok().and_then(|s| *s);
                        since.map_or(*duration, |s| duration.saturating_sub(s.elapsed()))
                    }
                    WaitFor::LoweredTtl
                    | WaitFor::Drain
                    | WaitFor::RampStep
                    | WaitFor::Sample
                    | WaitFor::Overlap
                    | WaitFor::Lifetime => *duration,
                };
                tokio::time::sleep(wait).await;
                Ok(Value::Done)
            }
            Op::Check {
                host,
                address,
                index,
            } => {
                let check = pair
                    .checks
                    .get(*index)
                    .ok_or_else(|| OpError::Unsupported(format!("{op:?}")))?;
                let target = target(pair, host, *address);
                crate::io::verify::check(check, &target, self.session(pair, host).ok())
                    .await
                    .map(Value::Passed)
                    .map_err(|e| OpError::Check(e.0))
            }
            Op::Observe {
                host,
                address,
                period,
            } => {
                let target = target(pair, host, *address);
                // The observation period watches the new primary through
                // the service address: the checks that run on a primary.
                let checks: Vec<crate::config::Check> = pair
                    .checks
                    .iter()
                    .filter(|c| c.role.runs_as(crate::config::CheckRole::Primary))
                    .cloned()
                    .collect();
                crate::io::verify::period(&checks, &target, self.session(pair, host).ok(), *period)
                    .await
                    .map(Value::Passed)
                    .map_err(|e| OpError::Check(e.0))
            }
            Op::CatchUp {
                host,
                line,
                timeout,
                target,
                max_lag,
                within,
            } => {
                let ssh = self.session(pair, host)?;
                self.disarm(host);
                let started = Instant::now();
                loop {
                    let out = ssh.run_with_timeout(line, *timeout).await?;
                    let said = if out.success() {
                        match Report::parse(&out.stdout_text()) {
                            Ok(r) => match r.position.lag_behind(*target) {
                                Ok(lag) if r.state == RoleState::Standby && lag <= *max_lag => {
                                    return Ok(Value::Passed(format!(
                                        "{host} {r}, {lag} behind {target} after {} ms",
                                        started.elapsed().as_millis()
                                    )))
                                }
                                Ok(lag) => format!("{r}, {lag} behind {target}"),
                                Err(e) => e.to_string(),
                            },
                            Err(e) => e.to_string(),
                        }
                    } else {
                        crate::exec::failure("the position hook", &Ok(out))
                    };
                    if started.elapsed() >= *within {
                        return Err(OpError::Behind {
                            host: host.clone(),
                            detail: format!(
                                "after {}: {said}",
                                humantime::format_duration(Duration::from_millis(
                                    started.elapsed().as_millis() as u64
                                ))
                            ),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Op::Balancer { commands } => {
                let (ssh, b) = self.balancer(pair)?;
                let line = balancer::shell(commands, &b.socket);
                Ok(Value::Output(
                    ssh.run_with_timeout(&line, pair.ssh.command_timeout)
                        .await?,
                ))
            }
            Op::Drain { server, within } => {
                let (_, b) = self.balancer(pair)?;
                let started = Instant::now();
                loop {
                    let said = match self.stats(pair).await {
                        Ok(stats) => match balancer::find(&stats, &b.backend, server) {
                            Ok(s) if s.sessions == 0 => {
                                return Ok(Value::Passed(format!(
                                    "server {}/{server} has no current sessions after {} ms",
                                    b.backend,
                                    started.elapsed().as_millis()
                                )))
                            }
                            Ok(s) => format!("{} current sessions", s.sessions),
                            Err(e) => e.to_string(),
                        },
                        Err(e) => e.to_string(),
                    };
                    if started.elapsed() >= *within {
                        return Err(OpError::Busy {
                            server: format!("{}/{server}", b.backend),
                            detail: format!(
                                "after {}: {said}",
                                humantime::format_duration(*within)
                            ),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Op::Arm { host } => {
                let ssh = self.session(pair, host)?;
                self.disarm(host);
                let armed = ssh
                    .arm_privileged(&BATCH_ARGV, BATCH_PROBE.as_bytes())
                    .await?;
                if let Ok(mut a) = self.armed.lock() {
                    a.insert(host.clone(), armed);
                }
                Ok(Value::Done)
            }
        }
    }

    async fn observe(&self, pair: &Pair) -> PairSeen {
        crate::io::observe::observe_with(pair, self.sessions, self.balancer).await
    }
}

/// The host as checks see it: its name (which must answer) at `address`.
fn target(pair: &Pair, host: &str, address: std::net::IpAddr) -> Host {
    Host {
        name: host.to_string(),
        address,
        ssh_port: pair.host(host).map_or(22, |h| h.ssh_port),
    }
}

/// The servers that do not serve exactly `address` (with `ttl`, when
/// given), with what they serve.
fn lagging(
    servers: &[std::net::SocketAddr],
    answers: &[Result<dns::Answer, dns::DnsQueryError>],
    address: std::net::IpAddr,
    ttl: Option<u32>,
) -> Vec<String> {
    servers
        .iter()
        .zip(answers)
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
        .collect()
}
