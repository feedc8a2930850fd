//! A pair's two hosts: their names, their addresses (IPv4 or IPv6, never
//! an IPv4 address written as IPv6, never the same for both) and their SSH
//! ports.

use std::net::IpAddr;

use crate::config::diag::{Key, Source};
use crate::config::raw::PairFile;
use crate::config::Host;

use super::values::valid_name;
use super::Sink;

use Key::Name as N;

/// The pair's two hosts; `None` when there are not exactly two valid ones.
/// `default_port` is the SSH port of the pair's SSH settings.
pub(super) fn hosts(
    raw: &PairFile,
    src: &Source<'_>,
    default_port: u16,
    sink: &mut Sink<'_>,
) -> Option<[Host; 2]> {
    // Fewer hosts than two may be hosts that were refused.
    let lost = src.refused().lost_entries(&[N("hosts")]);
    if raw.hosts.len() != 2 {
        if raw.hosts.len() > 2 || !lost {
            sink.push(src.at(
                &[N("hosts")],
                format!(
                    "a pair has exactly two hosts; this one has {}",
                    raw.hosts.len()
                ),
                "define two tables, like [hosts.blue] and [hosts.green], each with an `address`",
            ));
        }
        return None;
    }
    let mut out = Vec::new();
    for (name, h) in &raw.hosts {
        let at = [N("hosts"), N(name), N("address")];
        if !valid_name(name) {
            sink.push(src.at(
                &[N("hosts"), N(name)],
                format!("`{name}` is not a valid host name"),
                "use letters, digits, `-` and `_`, like `blue` or `db1`",
            ));
        }
        match h.address.as_deref() {
            None => sink.missing(src, &[N("hosts"), N(name), N("address")], src.at(
                &[N("hosts"), N(name)],
                format!("host `{name}` has no address"),
                format!("add `address = \"192.0.2.10\"` under [hosts.{name}]"),
            )),
            Some(a) => match a.parse::<IpAddr>() {
                // The same machine as its IPv4 form, which comparisons
                // between addresses (a pair's two hosts, a VIP, another
                // pair's host) would not see.
                Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => sink.push(src.at(
                    &at,
                    format!("`{a}` is an IPv4 address written as IPv6"),
                    format!(
                        "write the IPv4 address itself: \"{}\"",
                        v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default()
                    ),
                )),
                Ok(address) => out.push(Host {
                    name: name.clone(),
                    address,
                    ssh_port: h.ssh_port.unwrap_or(default_port),
                }),
                Err(_) => sink.push(src.at(
                    &at,
                    format!("`{a}` is not an IP address"),
                    "write the host's own IPv4 or IPv6 address, like \"192.0.2.10\" (no port, no prefix length)",
                )),
            },
        }
        if h.ssh_port == Some(0) {
            sink.push(src.at(
                &[N("hosts"), N(name), N("ssh_port")],
                "ssh_port 0 is not a port",
                "use 1-65535 (22 is SSH's)",
            ));
        }
    }
    let [a, b]: [Host; 2] = out.try_into().ok()?;
    if a.address == b.address {
        sink.push(src.at(
            &[N("hosts"), N(&b.name), N("address")],
            format!(
                "hosts `{}` and `{}` have the same address {}",
                a.name, b.name, a.address
            ),
            "each host of a pair is a separate machine with its own address",
        ));
        return None;
    }
    Some([a, b])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, messages};
    use super::*;

    fn validate(text: &str) -> (Option<[Host; 2]>, Vec<String>) {
        let (h, d) = check(text, |raw: &PairFile, src, sink| {
            hosts(raw, src, 2222, sink)
        });
        (h, messages(&d))
    }

    #[test]
    fn a_hosts_ssh_port_defaults_to_the_pairs_and_may_be_its_own() {
        let (h, m) = validate(
            "[hosts.blue]\naddress = \"192.0.2.1\"\n[hosts.green]\naddress = \"2001:db8::2\"\nssh_port = 22\n",
        );
        assert!(m.is_empty(), "{m:?}");
        let [blue, green] = h.expect("two hosts");
        assert_eq!((blue.name.as_str(), blue.ssh_port), ("blue", 2222));
        assert_eq!((green.name.as_str(), green.ssh_port), ("green", 22));
        assert_eq!(green.address, "2001:db8::2".parse::<IpAddr>().expect("v6"));
    }

    #[test]
    fn ssh_port_zero_and_an_invalid_host_name_are_refused() {
        let (h, m) = validate(
            "[hosts.blue]\naddress = \"192.0.2.1\"\nssh_port = 0\n[hosts.\"-green\"]\naddress = \"192.0.2.2\"\n",
        );
        // Each is reported; the pair (not this part) refuses them.
        assert!(h.is_some());
        assert_eq!(
            m,
            [
                "4:1: `-green` is not a valid host name",
                "3:12: ssh_port 0 is not a port"
            ]
        );
    }

    #[test]
    fn an_address_with_a_prefix_or_a_port_is_not_a_hosts_address() {
        for bad in ["192.0.2.1/24", "192.0.2.1:22", "blue.example"] {
            let (h, m) = validate(&format!(
                "[hosts.blue]\naddress = \"{bad}\"\n[hosts.green]\naddress = \"192.0.2.2\"\n"
            ));
            assert!(h.is_none());
            assert_eq!(m, [format!("2:11: `{bad}` is not an IP address")]);
        }
    }
}
