//! Observation: asks the real world about a pair (SSH to both hosts, the
//! VIP on each interface, every authoritative DNS server directly, the
//! TSIG key proved against the zone's primary, the health checks, the
//! version command) and packs the answers into a
//! `core::assess::PairSeen`. Everything runs concurrently, each part bounded
//! by its timeout, so one dead host cannot hang the report.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::join_all;

use crate::config::{CheckKind, Dns, Haproxy, Host, Pair, Traffic};
use crate::core::assess::{
    CheckOutcome, HostSeen, KeySeen, LastRun, PairSeen, TrafficSeen, Version,
};
use crate::core::holder::HookFailed;
use crate::core::op::{fill_role, RoleAction};
use crate::core::position::Report;
use crate::core::quote;
use crate::io::checks;
use crate::io::dns;
use crate::io::hooks::HookError;
use crate::io::ssh::{SshError, SshHost, Target};
use crate::store::journal::redact;

/// A pair's observation with the open sessions, for callers that go on to
/// act on the hosts.
pub struct Observed {
    /// What was seen.
    pub seen: PairSeen,
    /// Sessions to the hosts, in the pair's host order (`None`: unreachable).
    pub sessions: [Option<SshHost>; 2],
    /// The session to the pair's balancer (method `haproxy`; `None`:
    /// another method, or unreachable).
    pub balancer: Option<SshHost>,
}

/// Observes a pair: both hosts and the traffic switch, all at once.
pub async fn observe(pair: &Pair) -> Observed {
    let [a, b] = &pair.hosts;
    // The traffic switch is asked beside the hosts; a balancer over a
    // session of its own, kept for the run.
    let traffic = async {
        match &pair.traffic {
            Traffic::Haproxy(h) => {
                let connected = SshHost::connect(Target::new(&h.host, &pair.ssh)).await;
                let seen =
                    observe_balancer(pair, h, connected.as_ref().map_err(SshError::to_string))
                        .await;
                (seen, connected.ok())
            }
            _ => (observe_traffic(pair).await, None),
        }
    };
    let ((seen_a, ssh_a), (seen_b, ssh_b), (traffic, balancer)) =
        tokio::join!(observe_host(pair, a), observe_host(pair, b), traffic);
    Observed {
        seen: PairSeen {
            hosts: [seen_a, seen_b],
            traffic,
            recorded: None,
            last_run: LastRun::Settled,
        },
        sessions: [ssh_a, ssh_b],
        balancer,
    }
}

/// Observes a pair again over sessions opened before (a host without one
/// is seen as unreachable, as it was then; so is a balancer).
pub async fn observe_with(
    pair: &Pair,
    sessions: [Option<&SshHost>; 2],
    balancer: Option<&SshHost>,
) -> PairSeen {
    let [a, b] = &pair.hosts;
    let unreachable = |h: &Host| {
        format!(
            "{} could not be reached over SSH earlier in this run",
            h.name
        )
    };
    let ssh_a = sessions[0].ok_or_else(|| unreachable(a));
    let ssh_b = sessions[1].ok_or_else(|| unreachable(b));
    let traffic = async {
        match &pair.traffic {
            Traffic::Haproxy(h) => {
                let connected = balancer.ok_or_else(|| {
                    format!(
                        "the balancer {} could not be reached over SSH earlier in this run",
                        h.host.name
                    )
                });
                observe_balancer(pair, h, connected).await
            }
            _ => observe_traffic(pair).await,
        }
    };
    let (seen_a, seen_b, traffic) = tokio::join!(
        observe_connected(pair, a, ssh_a),
        observe_connected(pair, b, ssh_b),
        traffic
    );
    PairSeen {
        hosts: [seen_a, seen_b],
        traffic,
        recorded: None,
        last_run: LastRun::Settled,
    }
}

/// Connects to one host and asks it everything status needs.
async fn observe_host(pair: &Pair, host: &Host) -> (HostSeen, Option<SshHost>) {
    let connected = SshHost::connect(Target::new(host, &pair.ssh)).await;
    let seen = observe_connected(pair, host, connected.as_ref().map_err(SshError::to_string)).await;
    (seen, connected.ok())
}

/// Asks one host, over its session (or why there is none), everything
/// status needs.
async fn observe_connected(
    pair: &Pair,
    host: &Host,
    connected: Result<&SshHost, String>,
) -> HostSeen {
    let ssh = connected.as_ref().ok().copied();
    let vip = async {
        match (&pair.traffic, ssh) {
            (Traffic::Vip(v), Some(s)) => match holds_address(s, &v.interface, v.address).await {
                Ok(held) => (Some(held), None),
                Err(e) => (None, Some(e)),
            },
            _ => (None, None),
        }
    };
    // An IPv6 VIP is announced by python3 on the host taking it.
    let announces = async {
        match (&pair.traffic, ssh) {
            (Traffic::Vip(v), Some(s)) if v.address.is_ipv6() => {
                match s.run(crate::core::announce::HAS_ANNOUNCER).await {
                    Ok(o) => o.status.map(|c| c == 0),
                    Err(_) => None,
                }
            }
            _ => None,
        }
    };
    // The overlap handover needs nft (through sudo) and an own address of
    // the VIP's family (asked of a host reached by the other one).
    let overlaps = async {
        let Traffic::Vip(v) = &pair.traffic else {
            return None;
        };
        if !matches!(v.handover, crate::config::Handover::Overlap(_)) {
            return None;
        }
        let probe = crate::core::overlap::probe(pair.ssh.sudo, &v.interface);
        let able = match ssh?.run(&probe).await {
            Ok(o) => crate::core::overlap::verdict(
                o.status,
                &o.stdout_text(),
                host.address,
                v.address,
                v.prefix,
            ),
            Err(_) => return None,
        };
        Some(crate::core::overlap::Seen {
            able,
            chosen: v.handover_chosen,
        })
    };
    let version = async {
        match (&pair.version_command, ssh) {
            (Some(cmd), Some(s)) => Some(match s.run(cmd).await {
                Ok(o) if o.success() => Version::Printed(o.stdout_text().trim().to_string()),
                Ok(o) => Version::Failed(format!(
                    "exit {}: {}",
                    o.status.map_or("signal".into(), |c| c.to_string()),
                    o.stderr_text().trim()
                )),
                Err(e) => Version::Failed(e.to_string()),
            }),
            _ => None,
        }
    };
    let role = async {
        let (Some(roles), Some(s)) = (&pair.roles, ssh) else {
            return None;
        };
        let peer = pair.other(&host.name)?;
        let hook = RoleAction::Position.hook(roles);
        let line = fill_role(&hook.command, host, peer);
        Some(match s.run_with_timeout(&line, hook.timeout).await {
            Ok(o) if o.success() => Report::parse(&o.stdout_text()).map_err(|e| e.to_string()),
            Ok(o) => Err(format!(
                "the position hook exited {}: {}",
                o.status.map_or("by a signal".into(), |c| c.to_string()),
                o.stderr_text().trim().lines().last().unwrap_or_default()
            )),
            Err(e) => Err(e.to_string()),
        })
    };
    let probes = join_all(pair.checks.iter().map(|c| checks::probe(c, host, ssh)));
    let ((holds_vip, vip_error), version, probes, role, announces, overlaps) =
        tokio::join!(vip, version, probes, role, announces, overlaps);
    HostSeen {
        name: host.name.clone(),
        address: Some(host.address),
        ssh: connected.map(|_| ()),
        holds_vip,
        vip_error,
        announces,
        overlaps,
        version,
        checks: probes
            .into_iter()
            .zip(&pair.checks)
            .map(|(p, c)| CheckOutcome {
                name: p.check,
                ok: p.ok,
                detail: p.detail,
                via_ssh: matches!(c.kind, CheckKind::Command { .. }),
                role: c.role,
            })
            .collect(),
        role,
    }
}

/// Asks the traffic switch who holds traffic (VIP holders come from the hosts).
async fn observe_traffic(pair: &Pair) -> TrafficSeen {
    match &pair.traffic {
        Traffic::Vip(_) => TrafficSeen::Vip,
        Traffic::Dns(d) => {
            let rtype = dns::record_type_for(&pair.hosts[0].address);
            let timeout = pair.ssh.connect_timeout.min(Duration::from_secs(5));
            let answers = join_all(d.servers.iter().map(|s| async move {
                let r = dns::query(*s, &d.name, rtype, timeout).await;
                (*s, r.map(|a| a.addresses()).map_err(|e| e.to_string()))
            }));
            let (answers, key) = tokio::join!(answers, prove_key(d, timeout));
            TrafficSeen::Dns { answers, key }
        }
        // Asked over the balancer's session (`observe_balancer`), which
        // both callers open or keep; never here.
        Traffic::Haproxy(h) => TrafficSeen::Balancer {
            backend: h.backend.clone(),
            weight: h.weight,
            stats: Err("the balancer was not asked".to_string()),
        },
        Traffic::Command(c) => {
            let secrets = crate::io::hooks::secrets(pair);
            let answer = run_local(&c.query, pair.ssh.command_timeout, &secrets).await;
            // Whatever the hook printed is shown by status: never a secret.
            TrafficSeen::Command(
                answer
                    .map(|a| redact(&a, &secrets))
                    .map_err(|e| HookFailed(redact(&e.0, &secrets))),
            )
        }
    }
}

/// Asks the balancer, over its session (or why there is none), for every
/// server's statistics.
async fn observe_balancer(
    pair: &Pair,
    h: &Haproxy,
    connected: Result<&SshHost, String>,
) -> TrafficSeen {
    let stats = match connected {
        Err(e) => Err(e),
        Ok(ssh) => show_stat(ssh, pair, h).await,
    };
    TrafficSeen::Balancer {
        backend: h.backend.clone(),
        weight: h.weight,
        stats,
    }
}

/// The balancer's `show stat` over its session, read, or why not.
pub async fn show_stat(
    ssh: &SshHost,
    pair: &Pair,
    h: &Haproxy,
) -> Result<Vec<crate::core::balancer::ServerStat>, String> {
    let line = crate::core::balancer::Command::ShowStat.shell(&h.socket);
    match ssh.run_with_timeout(&line, pair.ssh.command_timeout).await {
        Ok(o) if o.success() => {
            crate::core::balancer::parse_stat(&o.stdout_text()).map_err(|e| e.to_string())
        }
        Ok(o) => Err(format!(
            "`show stat` through {} exited {}: {} (is socat installed there, and may {} write the socket?)",
            h.socket,
            o.status.map_or("by a signal".into(), |c| c.to_string()),
            o.stderr_text().trim().lines().last().unwrap_or_default(),
            pair.ssh.user
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Proves the TSIG key against the zone's primary, the first of `servers`
/// (the server the switch's update goes to), with a signed query that
/// changes nothing.
async fn prove_key(d: &Dns, timeout: Duration) -> KeySeen {
    let Some(primary) = d.servers.first().copied() else {
        return KeySeen::Unproven("no server is configured to prove the key against".to_string());
    };
    match dns::prove_key(primary, &d.zone, &d.tsig_key, timeout).await {
        Ok(()) => KeySeen::Proven(format!(
            "{primary} (the zone's primary) verified key `{}` ({}) and signed its answer with it",
            d.tsig_key.name,
            d.tsig_key.algorithm.name()
        )),
        Err(e @ dns::KeyProofError::Refused { .. }) => KeySeen::Refused(e.to_string()),
        Err(e @ (dns::KeyProofError::Timeout { .. } | dns::KeyProofError::Failed { .. })) => {
            KeySeen::Unasked(e.to_string())
        }
        Err(
            e @ (dns::KeyProofError::Unsigned { .. }
            | dns::KeyProofError::Unverified { .. }
            | dns::KeyProofError::Answered { .. }
            | dns::KeyProofError::NotAuthoritative { .. }
            | dns::KeyProofError::NotApex { .. }
            | dns::KeyProofError::BadZone { .. }),
        ) => KeySeen::Unproven(e.to_string()),
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
            "`ip addr show dev {interface}` failed: {} (check `interface` in the pair's [traffic]: it must name the interface on both hosts)",
            out.stderr_text().trim()
        ));
    }
    match crate::core::ifaddr::held(&out.stdout_text(), &address) {
        crate::core::ifaddr::Held::No => Ok(false),
        crate::core::ifaddr::Held::Yes | crate::core::ifaddr::Held::Tentative => Ok(true),
        crate::core::ifaddr::Held::DadFailed => Err(format!(
            "{address} is on {interface} marked `dadfailed` (another host answered for it when it was added without `nodad`): it is not used, yet it is there; remove it (`ip addr del`)"
        )),
    }
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

async fn run_local(
    command: &str,
    timeout: Duration,
    secrets: &[String],
) -> Result<String, HookFailed> {
    match crate::io::hooks::run(command, secrets, timeout).await {
        Err(HookError::Timeout) => Err(HookFailed(format!(
            "`{command}` did not finish within {}",
            humantime::format_duration(timeout)
        ))),
        Err(HookError::Spawn(e)) => Err(HookFailed(format!("cannot run `{command}`: {e}"))),
        Ok(o) if !o.success() => Err(HookFailed(format!(
            "`{command}` failed: {}",
            o.stderr_text().trim()
        ))),
        Ok(o) => Ok(o.stdout_text().trim().to_string()),
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

    #[test]
    fn only_the_words_after_inet_are_addresses() {
        assert!(addresses_in("").is_empty());
        // Broadcast, peer-less and link lines carry no `inet` word.
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    3: wg0    inet 10.9.0.1 peer 10.9.0.2/32 scope global wg0\n\
                    2: eth0    inet 192.0.2.5/24 brd 192.0.2.255 scope global eth0\n\
                    2: eth0    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff\n\
                    2: eth0    inet6 2001:db8::5/64 scope global\n";
        let want: Vec<IpAddr> = ["127.0.0.1", "10.9.0.1", "192.0.2.5", "2001:db8::5"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(addresses_in(text), want);
    }

    #[test]
    fn a_word_after_inet_that_is_no_address_is_skipped() {
        assert!(addresses_in("2: eth0 inet").is_empty());
        assert!(addresses_in("2: eth0 inet garbage/24 inet6").is_empty());
        assert!(addresses_in("2: eth0 inet 300.1.1.1/24").is_empty());
        // `inet` must be a word of its own.
        assert!(addresses_in("2: eth0 xinet 192.0.2.9/24").is_empty());
        assert_eq!(
            addresses_in("2: eth0 inet inet 192.0.2.9/24"),
            Vec::<IpAddr>::new(),
            "the address after the first `inet` is `inet`, not an address"
        );
    }

    #[tokio::test]
    async fn a_local_hook_gives_its_trimmed_output_or_why_it_failed() {
        let t = Duration::from_secs(5);
        assert_eq!(
            run_local("echo '  blue  '", t, &[]).await,
            Ok("blue".into())
        );
        let e = run_local("echo oops >&2; exit 3", t, &[])
            .await
            .unwrap_err();
        assert_eq!(e.0, "`echo oops >&2; exit 3` failed: oops");
        let started = std::time::Instant::now();
        let e = run_local("sleep 5", Duration::from_millis(100), &[])
            .await
            .unwrap_err();
        assert!(e.0.contains("did not finish within 100ms"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
