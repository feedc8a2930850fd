//! Observation: asks the real world about a pair (SSH to both hosts, the
//! VIP on each interface, every authoritative DNS server directly, the
//! health checks, the version command) and packs the answers into a
//! `core::assess::PairSeen`. Everything runs concurrently, each part bounded
//! by its timeout, so one dead host cannot hang the report.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::join_all;

use crate::checks;
use crate::config::{Pair, Traffic};
use crate::core::assess::{CheckOutcome, HostSeen, PairSeen, TrafficSeen};
use crate::dns;
use crate::quote;
use crate::ssh::{SshError, SshHost, Target};

/// A pair's observation with the open sessions, for callers that go on to
/// act on the hosts.
pub struct Observed {
    /// What was seen.
    pub seen: PairSeen,
    /// Sessions to the hosts, in the pair's host order (`None`: unreachable).
    pub sessions: [Option<SshHost>; 2],
}

/// Observes a pair.
pub async fn observe(pair: &Pair) -> Observed {
    let connects = pair
        .hosts
        .iter()
        .map(|h| SshHost::connect(Target::new(h, &pair.ssh)));
    let sessions: Vec<Result<SshHost, SshError>> = join_all(connects).await;

    let hosts = join_all(
        pair.hosts
            .iter()
            .zip(&sessions)
            .map(|(host, ssh)| async move {
                let ssh = ssh.as_ref().ok();
                let vip = async {
                    match (&pair.traffic, ssh) {
                        (Traffic::Vip(v), Some(s)) => {
                            holds_address(s, &v.interface, v.address).await.ok()
                        }
                        _ => None,
                    }
                };
                let version = async {
                    match (&pair.version_command, ssh) {
                        (Some(cmd), Some(s)) => Some(match s.run(cmd).await {
                            Ok(o) if o.success() => Ok(o.stdout_text().trim().to_string()),
                            Ok(o) => Err(format!(
                                "exit {}: {}",
                                o.status.map_or("signal".into(), |c| c.to_string()),
                                o.stderr_text().trim()
                            )),
                            Err(e) => Err(e.to_string()),
                        }),
                        _ => None,
                    }
                };
                let probes = join_all(pair.checks.iter().map(|c| checks::probe(c, host, ssh)));
                let (holds_vip, version, probes) = tokio::join!(vip, version, probes);
                HostSeen {
                    name: host.name.clone(),
                    address: Some(host.address),
                    ssh: Ok(()),
                    holds_vip,
                    version,
                    checks: probes
                        .into_iter()
                        .map(|p| CheckOutcome {
                            name: p.check,
                            ok: p.ok,
                            detail: p.detail,
                        })
                        .collect(),
                }
            }),
    )
    .await;

    let traffic = match &pair.traffic {
        Traffic::Vip(_) => TrafficSeen::Vip,
        Traffic::Dns(d) => {
            let rtype = dns::record_type_for(&pair.hosts[0].address);
            let timeout = pair.ssh.connect_timeout.min(Duration::from_secs(5));
            let answers = join_all(d.servers.iter().map(|s| async move {
                let r = dns::query(*s, &d.name, rtype, timeout).await;
                (*s, r.map(|a| a.addresses()).map_err(|e| e.to_string()))
            }))
            .await;
            TrafficSeen::Dns(answers)
        }
        Traffic::Command(c) => {
            TrafficSeen::Command(run_local(&c.query, pair.ssh.command_timeout).await)
        }
    };

    let mut hosts: Vec<HostSeen> = hosts;
    for (h, s) in hosts.iter_mut().zip(&sessions) {
        if let Err(e) = s {
            h.ssh = Err(e.to_string());
        }
    }
    let mut it = sessions.into_iter().map(Result::ok);
    let sessions = [it.next().flatten(), it.next().flatten()];
    let mut hs = hosts.into_iter();
    let (Some(a), Some(b)) = (hs.next(), hs.next()) else {
        unreachable!("a pair has exactly two hosts")
    };
    Observed {
        seen: PairSeen {
            hosts: [a, b],
            traffic,
            recorded: None,
        },
        sessions,
    }
}

/// Whether `address` is configured on `interface` of the host.
pub async fn holds_address(
    ssh: &SshHost,
    interface: &str,
    address: IpAddr,
) -> Result<bool, String> {
    let cmd = format!(
        "PATH=\"$PATH:/usr/sbin:/sbin\" ip -o addr show dev {}",
        quote::quote(interface)
    );
    let out = ssh.run(&cmd).await.map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "`ip addr show dev {interface}` failed: {}",
            out.stderr_text().trim()
        ));
    }
    Ok(addresses_in(&out.stdout_text()).contains(&address))
}

/// Addresses in `ip -o addr show` output.
pub fn addresses_in(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "inet" || w == "inet6" {
                if let Some(a) = words
                    .next()
                    .and_then(|cidr| cidr.split('/').next())
                    .and_then(|a| a.parse().ok())
                {
                    out.push(a);
                }
            }
        }
    }
    out
}

async fn run_local(command: &str, timeout: Duration) -> Result<String, String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Err(_) => Err(format!(
            "`{command}` did not finish within {}",
            humantime::format_duration(timeout)
        )),
        Ok(Err(e)) => Err(format!("cannot run `{command}`: {e}")),
        Ok(Ok(o)) if !o.status.success() => Err(format!(
            "`{command}` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(Ok(o)) => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_o_addr_show() {
        let text = "2: eth0    inet 198.18.0.11/24 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet 198.18.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n";
        let a = addresses_in(text);
        assert!(a.contains(&"198.18.0.100".parse().unwrap()));
        assert!(a.contains(&"fe80::1".parse().unwrap()));
        assert!(!a.contains(&"198.18.0.1".parse().unwrap()));
    }
}
