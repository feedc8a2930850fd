//! Filling a check's or a hook's placeholders (`{address}`, `{host}`) for
//! one host, and a check described in words with its policy, as `plan`
//! prints it and the journal records it. Pure.

use std::net::SocketAddr;

use crate::config::{Check, CheckKind, Host};

/// Fills `{address}` and `{host}` for a host. IPv6 addresses are bracketed
/// inside URLs.
pub fn fill(template: &str, host: &Host, in_url: bool) -> String {
    let address = match host.address {
        std::net::IpAddr::V6(a) if in_url => format!("[{a}]"),
        a => a.to_string(),
    };
    template
        .replace("{address}", &address)
        .replace("{host}", &host.name)
}

/// Fills a DNS check's `server` (`ADDRESS[:PORT]`) for a host: an IPv6
/// address directly followed by a port is bracketed (`[2001:db8::12]:53`),
/// since `2001:db8::12:53` would read as another address on the default
/// port; one the template already brackets is left as written.
pub fn fill_server(template: &str, host: &Host) -> String {
    let plain = host.address.to_string();
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find("{address}") {
        let before = &rest[..at];
        let after = &rest[at + "{address}".len()..];
        out.push_str(before);
        let bracket = host.address.is_ipv6() && after.starts_with(':') && !out.ends_with('[');
        if bracket {
            out.push_str(&format!("[{plain}]"));
        } else {
            out.push_str(&plain);
        }
        rest = after;
    }
    out.push_str(rest);
    out.replace("{host}", &host.name)
}

/// What a check does against `address`, where `host` must answer, with
/// its policy: for `baton plan` and the journal.
pub fn describe(check: &Check, host: &str, address: std::net::IpAddr) -> String {
    let target = Host {
        name: host.to_string(),
        address,
        ssh_port: 0,
    };
    let what = match &check.kind {
        CheckKind::Http {
            url,
            expect_status,
            expect_body,
            ..
        } => format!(
            "GET {} expecting {expect_status}{}",
            fill(url, &target, true),
            expect_body
                .as_ref()
                .map(|b| format!(" and a body containing {:?}", fill(b, &target, false)))
                .unwrap_or_default()
        ),
        CheckKind::Tcp { port } => format!("TCP connect to {}", SocketAddr::new(address, *port)),
        CheckKind::Dns {
            query,
            record_type,
            server,
            expect,
        } => format!(
            "ask {} for {query} {record_type}, expecting {}",
            fill_server(server, &target),
            fill(expect, &target, false)
        ),
        CheckKind::Command {
            command,
            expect_output,
        } => format!(
            "on {host}: $ {}{}",
            fill(command, &target, false),
            expect_output
                .as_ref()
                .map(|e| format!(" (output must contain {:?})", fill(e, &target, false)))
                .unwrap_or_default()
        ),
    };
    format!(
        "check {}: {what}; {} success(es) needed, {} failure(s) allowed, every {}",
        check.name,
        check.successes,
        check.failures_allowed,
        humantime::format_duration(check.interval)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_servers_ipv6_address_is_bracketed_before_a_port() {
        let v6 = Host {
            name: "violet6".into(),
            address: "fd00:198:18::22".parse().unwrap(),
            ssh_port: 22,
        };
        let v4 = Host {
            name: "violet".into(),
            address: "198.18.0.22".parse().unwrap(),
            ssh_port: 22,
        };
        assert_eq!(fill_server("{address}:5353", &v6), "[fd00:198:18::22]:5353");
        assert_eq!(fill_server("{address}", &v6), "fd00:198:18::22");
        assert_eq!(fill_server("[{address}]:53", &v6), "[fd00:198:18::22]:53");
        assert_eq!(fill_server("{address}:5353", &v4), "198.18.0.22:5353");
        assert_eq!(fill_server("{host}.lab:53", &v4), "violet.lab:53");
    }
}
