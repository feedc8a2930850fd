//! Taking a host out of traffic without moving traffic: the `fence` step
//! of a failover, and of a hand-over whose old primary did not follow
//! (the pair's fence command for that host, its VIP removed over SSH, or,
//! when SSH cannot reach it, proof from the other host that no host
//! answers for the VIP any more: ARP probes for IPv4, neighbour
//! solicitations for IPv6; behind a balancer, its server in
//! maintenance) and the rejoin's `release` step (a repaired host gives up
//! a VIP it came back with, or its server leaves maintenance at weight 0;
//! never the fence command, which is for dead hosts).

use std::net::IpAddr;

use crate::config::{Host, Traffic, Vip};
use crate::core::op::{AddrAction, Hook, Op, Remote};
use crate::core::quote;
use crate::exec::{failure, output, Exec, Failed, OpError, World};
use crate::io::ssh::Output;
use crate::traffic::vip;

/// The fence command with `{host}` (the host's name in the pair file) and
/// `{address}` (its own address) filled in, both shell-quoted.
pub fn fill(command: &str, host: &Host) -> String {
    command
        .replace("{host}", &quote::quote(&host.name))
        .replace("{address}", &quote::quote(&host.address.to_string()))
}

/// What duplicate address detection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dad {
    /// Probes went out and nobody answered.
    Free,
    /// These link-layer addresses answered for it.
    Answered(Vec<String>),
    /// The probe did not run (no arping, no permission, no such interface).
    Unknown(String),
    /// The host to probe from cannot be reached over SSH.
    Unreachable,
}

/// Reads iputils `arping -D` output (and the IPv6 probe's, which uses its
/// words: `core::announce`): `Unicast reply from ADDR [MAC]` per answer,
/// `Received N response(s)` at the end.
pub fn parse_dad(stdout: &str, stderr: &str) -> Dad {
    let macs: Vec<String> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("Unicast reply from"))
        .filter_map(|l| {
            let open = l.find('[')?;
            let close = l[open..].find(']')? + open;
            Some(l[open + 1..close].to_string())
        })
        .collect();
    if !macs.is_empty() {
        return Dad::Answered(macs);
    }
    let received = stdout.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Received ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
    });
    match received {
        Some(0) => Dad::Free,
        Some(n) => Dad::Answered(vec![format!("{n} unnamed responder(s)")]),
        None => Dad::Unknown(
            match stderr.trim() {
                "" => "the probe printed no result".to_string(),
                e => e.to_string(),
            }
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        ),
    }
}

/// Fences the old primary `from`, so that it holds no traffic: a
/// failover's before the standby `to` takes it (`Err` stops the failover
/// before the switch: nothing moved), or, in a hand-over with role hooks,
/// one that did not follow the new primary `to`. `from_reachable`: SSH
/// reached it before the run.
pub async fn fence<W: World>(
    x: &mut Exec<'_, W>,
    from: &Host,
    from_reachable: bool,
    to: &Host,
) -> Result<String, Failed> {
    let pair = x.pair;
    let mut done = Vec::new();
    if let Some(cmd) = &pair.fence {
        let op = Op::Hook {
            purpose: Hook::Fence {
                host: from.name.clone(),
            },
            command: fill(cmd, from),
        };
        let out = output(&op, x.perform(op.clone()).await);
        if !out.as_ref().is_ok_and(Output::success) {
            return Err(Failed(failure("the fence command", &out)));
        }
        done.push(format!("fence command ran for {}", from.name));
    }
    if let Traffic::Haproxy(b) = &pair.traffic {
        done.push(crate::traffic::haproxy::fence(x, b, from).await?);
    }
    if let Traffic::Vip(v) = &pair.traffic {
        done.push(if from_reachable {
            match remove_vip(x, v, &from.name).await {
                Ok(d) => d,
                // The fence command may have cut the host off (powered it
                // down): then no host may answer for the address but `to`.
                Err(e) if pair.fence.is_some() => {
                    format!("{}; {}", e.0, prove_gone(x, v, from, to).await?)
                }
                Err(e) => return Err(e),
            }
        } else {
            prove_gone(x, v, from, to).await?
        });
    }
    if done.is_empty() {
        done.push(format!(
            "nothing to fence: the {} switch moves traffic away from {}",
            pair.traffic.method(),
            from.name
        ));
    }
    Ok(done.join("; "))
}

/// Removes the VIP from a host that SSH reaches, if it holds it.
async fn remove_vip<W: World>(x: &mut Exec<'_, W>, v: &Vip, host: &str) -> Result<String, Failed> {
    match vip::holds(x, host, v).await {
        Ok(true) => {
            let cidr = v.to_string();
            let del = Remote::Addr {
                action: AddrAction::Del,
                cidr: cidr.clone(),
                interface: v.interface.clone(),
                batch: false,
            };
            x.remote_ok(host, del, &format!("removing {cidr} from {host}"))
                .await?;
            match vip::holds(x, host, v).await {
                Ok(false) => Ok(format!("removed {cidr} from {host}")),
                other => Err(Failed(format!(
                    "after removing {cidr}, {host} still holds it or cannot say: {other:?}"
                ))),
            }
        }
        Ok(false) => Ok(format!("{host} does not hold {v}")),
        Err(e) => Err(Failed(format!("cannot tell whether {host} holds {v}: {e}"))),
    }
}

/// When the old primary cannot be asked: the standby probes the VIP's
/// link for any host still answering for it.
async fn prove_gone<W: World>(
    x: &mut Exec<'_, W>,
    v: &Vip,
    from: &Host,
    to: &Host,
) -> Result<String, Failed> {
    let found = probe(x, v, &to.name).await;
    let how = match v.address {
        IpAddr::V4(_) => "duplicate address detection",
        IpAddr::V6(_) => "neighbour solicitation",
    };
    match found {
        Dad::Free => Ok(format!(
            "{} cannot be reached over SSH; no host answers for {} ({how} from {})",
            from.name, v.address, to.name
        )),
        Dad::Answered(who) => Err(Failed(format!(
            "{} cannot be reached over SSH and {} is still answered on the link by {}: {} may still hold it, so {} does not take it (that would be split brain). Cut {} off (power, network, or a `fence` command in the pair file that does it), then run the failover again",
            from.name,
            v.address,
            who.join(", "),
            from.name,
            to.name,
            from.name
        ))),
        Dad::Unreachable => Err(Failed(format!(
            "neither {} nor {} can be reached over SSH: nothing can prove that {} is free",
            from.name, to.name, v.address
        ))),
        Dad::Unknown(why) => Ok(format!(
            "{} cannot be reached over SSH and whether it still holds {} could not be probed ({why}): relying on the operator's word that it is down",
            from.name, v.address
        )),
    }
}

/// Runs the probe on `host`: as the login user first (Debian's arping has
/// the raw-socket capability; the IPv6 probe's raw socket needs root, and
/// fails at once without), then through sudo when that is configured.
async fn probe<W: World>(x: &mut Exec<'_, W>, v: &Vip, host: &str) -> Dad {
    let attempt = |privileged| Remote::Probe {
        interface: v.interface.clone(),
        address: v.address,
        privileged,
    };
    let read = |out: Result<crate::io::ssh::Output, OpError>| match out {
        Ok(o) => parse_dad(&o.stdout_text(), &o.stderr_text()),
        Err(OpError::Unreachable { .. }) => Dad::Unreachable,
        Err(e) => Dad::Unknown(e.to_string()),
    };
    let first = read(x.remote(host, attempt(false)).await);
    match first {
        Dad::Unknown(_) if x.pair.ssh.sudo => read(x.remote(host, attempt(true)).await),
        found => found,
    }
}

/// The rejoin's release: the repaired host `to` gives up a VIP it came
/// back with, and the primary `from` must hold traffic alone afterwards.
pub async fn release<W: World>(
    x: &mut Exec<'_, W>,
    to: &Host,
    from: &Host,
) -> Result<String, Failed> {
    match &x.pair.traffic {
        Traffic::Vip(v) => remove_vip(x, v, &to.name).await,
        Traffic::Haproxy(b) => crate::traffic::haproxy::release(x, b, to, from).await,
        other => Ok(format!(
            "traffic is on {} ({} switch): {} has nothing to give up",
            from.name,
            other.method(),
            to.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arping_duplicate_address_detection() {
        let answered = "ARPING 198.18.0.100 from 0.0.0.0 eth0\nUnicast reply from 198.18.0.100 [72:E5:7D:77:0A:9E]  0.711ms\nSent 1 probes (1 broadcast(s))\nReceived 1 response(s)\n";
        assert_eq!(
            parse_dad(answered, ""),
            Dad::Answered(vec!["72:E5:7D:77:0A:9E".into()])
        );
        let free = "ARPING 198.18.0.177 from 0.0.0.0 eth0\nSent 2 probes (2 broadcast(s))\nReceived 0 response(s)\n";
        assert_eq!(parse_dad(free, ""), Dad::Free);
        assert_eq!(
            parse_dad("", "arping: socket: Operation not permitted\n"),
            Dad::Unknown("arping: socket: Operation not permitted".into())
        );
        assert!(matches!(parse_dad("", ""), Dad::Unknown(_)));
        assert!(matches!(
            parse_dad("Sent 2 probes\nReceived 2 response(s)\n", ""),
            Dad::Answered(_)
        ));
    }

    #[test]
    fn reads_the_ipv6_probe_in_arpings_words() {
        let answered = "NDP probe for fd00::100 on eth0 to ff02::1:ff00:100\nUnicast reply from fd00::100 [4A:E7:8E:E9:5F:90]\nSent 2 probes (2 multicast(s))\nReceived 1 response(s)\n";
        assert_eq!(
            parse_dad(answered, ""),
            Dad::Answered(vec!["4A:E7:8E:E9:5F:90".into()])
        );
        let free = "NDP probe for fd00::177 on eth0 to ff02::1:ff00:177\nSent 2 probes (2 multicast(s))\nReceived 0 response(s)\n";
        assert_eq!(parse_dad(free, ""), Dad::Free);
        assert_eq!(
            parse_dad("", "ndp: [Errno 1] Operation not permitted\n"),
            Dad::Unknown("ndp: [Errno 1] Operation not permitted".into())
        );
    }

    #[test]
    fn the_fence_command_gets_the_hosts_name_and_address_quoted() {
        let host = Host {
            name: "db 1".into(),
            address: "192.0.2.11".parse().unwrap(),
            ssh_port: 22,
        };
        assert_eq!(
            fill("/usr/local/bin/off {host} {address}", &host),
            "/usr/local/bin/off 'db 1' 192.0.2.11"
        );
    }
}
