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
            fill(server, &target, false),
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
