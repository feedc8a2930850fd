//! Taking a host out of traffic without moving traffic: the failover's
//! `fence` step (the pair's fence command for the dead primary, its VIP
//! removed over SSH, or, when SSH cannot reach it, proof from the standby
//! that no host answers for the VIP any more) and the rejoin's `release`
//! step (a repaired host gives up a VIP it came back with; never the fence
//! command, which is for dead hosts).

use std::net::IpAddr;

use crate::config::{Host, Pair, Traffic, Vip};
use crate::observe::holds_address;
use crate::quote;
use crate::remote::{failure, Recorder};
use crate::ssh::{Output, SshError, SshHost};

/// The fence command with `{host}` (the host's name in the pair file) and
/// `{address}` (its own address) filled in, both shell-quoted.
pub fn fill(command: &str, host: &Host) -> String {
    command
        .replace("{host}", &quote::quote(&host.name))
        .replace("{address}", &quote::quote(&host.address.to_string()))
}

/// The duplicate address detection that proves no host answers for the
/// VIP: two ARP probes from the unspecified address, two seconds at most.
pub fn probe_argv(v: &Vip) -> Vec<String> {
    [
        "arping",
        "-D",
        "-c",
        "2",
        "-w",
        "2",
        "-I",
        &v.interface,
        &v.address.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The probe as one command line, for `plan` and the journal.
pub fn probe_line(v: &Vip) -> String {
    quote::join(&probe_argv(v))
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
}

/// Reads iputils `arping -D` output: `Unicast reply from ADDR [MAC]` per
/// answer, `Received N response(s)` at the end.
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
                "" => "arping printed no result".to_string(),
                e => e.to_string(),
            }
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        ),
    }
}

/// Fences the failover's old primary `from`, so that it holds no traffic
/// before the standby `to` takes it. `Err` stops the failover before the
/// switch: nothing moved.
pub async fn fence(
    pair: &Pair,
    from: &Host,
    from_ssh: Option<&SshHost>,
    to: &Host,
    to_ssh: Option<&SshHost>,
    rec: &mut Recorder,
) -> Result<String, String> {
    let mut done = Vec::new();
    if let Some(cmd) = &pair.fence {
        let out = rec.local(&fill(cmd, from), pair.ssh.command_timeout).await;
        if !out.as_ref().is_ok_and(Output::success) {
            return Err(failure("the fence command", &out));
        }
        done.push(format!("fence command ran for {}", from.name));
    }
    if let Traffic::Vip(v) = &pair.traffic {
        done.push(match from_ssh {
            Some(ssh) => remove_vip(v, from, ssh, rec).await?,
            None => prove_gone(v, from, to, to_ssh, rec).await?,
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
async fn remove_vip(
    v: &Vip,
    host: &Host,
    ssh: &SshHost,
    rec: &mut Recorder,
) -> Result<String, String> {
    match holds_address(ssh, &v.interface, v.address).await {
        Ok(true) => {
            let cidr = v.to_string();
            let out = rec
                .run_privileged(ssh, &["ip", "addr", "del", &cidr, "dev", &v.interface])
                .await;
            if !out.as_ref().is_ok_and(Output::success) {
                return Err(failure(
                    &format!("removing {cidr} from {}", host.name),
                    &out,
                ));
            }
            match holds_address(ssh, &v.interface, v.address).await {
                Ok(false) => Ok(format!("removed {cidr} from {}", host.name)),
                other => Err(format!(
                    "after removing {cidr}, {} still holds it or cannot say: {other:?}",
                    host.name
                )),
            }
        }
        Ok(false) => Ok(format!("{} does not hold {v}", host.name)),
        Err(e) => Err(format!("cannot tell whether {} holds {v}: {e}", host.name)),
    }
}

/// When the old primary cannot be asked: the standby probes the VIP's
/// link for any host still answering for it.
async fn prove_gone(
    v: &Vip,
    from: &Host,
    to: &Host,
    to_ssh: Option<&SshHost>,
    rec: &mut Recorder,
) -> Result<String, String> {
    let Some(ssh) = to_ssh else {
        return Err(format!(
            "neither {} nor {} can be reached over SSH: nothing can prove that {} is free",
            from.name, to.name, v.address
        ));
    };
    let found = match v.address {
        IpAddr::V6(_) => Dad::Unknown("arping cannot probe an IPv6 address".to_string()),
        IpAddr::V4(_) => probe(v, ssh, rec).await,
    };
    match found {
        Dad::Free => Ok(format!(
            "{} cannot be reached over SSH; no host answers for {} (duplicate address detection from {})",
            from.name, v.address, to.name
        )),
        Dad::Answered(who) => Err(format!(
            "{} cannot be reached over SSH and {} is still answered on the link by {}: {} may still hold it, so {} does not take it (that would be split brain). Cut {} off (power, network, or a `fence` command in the pair file that does it), then run the failover again",
            from.name,
            v.address,
            who.join(", "),
            from.name,
            to.name,
            from.name
        )),
        Dad::Unknown(why) => Ok(format!(
            "{} cannot be reached over SSH and whether it still holds {} could not be probed ({why}): relying on the operator's word that it is down",
            from.name, v.address
        )),
    }
}

/// Runs the probe on `ssh`: as the login user first (Debian's arping has
/// the raw-socket capability), then through sudo when that is configured.
async fn probe(v: &Vip, ssh: &SshHost, rec: &mut Recorder) -> Dad {
    let argv = probe_argv(v);
    let line = format!("PATH=\"$PATH:/usr/sbin:/sbin\" {}", quote::join(&argv));
    let read = |out: &Result<Output, SshError>| match out {
        Ok(o) => parse_dad(&o.stdout_text(), &o.stderr_text()),
        Err(e) => Dad::Unknown(e.to_string()),
    };
    let first = read(&rec.run(ssh, &line).await);
    match first {
        Dad::Unknown(_) if ssh.target().sudo => {
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            read(&rec.run_privileged(ssh, &args).await)
        }
        found => found,
    }
}

/// The rejoin's release: the repaired host `to` gives up a VIP it came
/// back with, and the primary `from` must hold traffic alone afterwards.
pub async fn release(
    pair: &Pair,
    to: &Host,
    to_ssh: Option<&SshHost>,
    from: &Host,
    rec: &mut Recorder,
) -> Result<String, String> {
    match &pair.traffic {
        Traffic::Vip(v) => {
            let Some(ssh) = to_ssh else {
                return Err(format!("{} is unreachable over SSH", to.name));
            };
            remove_vip(v, to, ssh, rec).await
        }
        _ => Ok(format!(
            "traffic is on {} ({} switch): {} has nothing to give up",
            from.name,
            pair.traffic.method(),
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
