//! The `[traffic]` table: how a pair's traffic moves. Which keys apply to
//! which method, and each method's own rules: `vip` (a service address in
//! CIDR form that is no host's own, an interface, ARP count, quiesce),
//! `dns` (a name inside its zone, the authoritative servers, a TSIG key,
//! TTLs in whole seconds), `command` (a switch and a query command) and
//! `haproxy` (a balancer of its own, its admin socket, the backend whose
//! servers are the pair's hosts, the frontend, weight, drain timeout and
//! ramp limits: see [`super::haproxy`]).

use std::path::Path;
use std::time::Duration;

use crate::config::diag::{Key, Source};
use crate::config::model::{Handover, DEFAULT_OVERLAP};
use crate::config::raw::TrafficFile;
use crate::config::{tsig, CommandSwitch, Dns, Host, Traffic, Vip};

use super::haproxy::haproxy;
use super::paths::resolve;
use super::values::{
    dns_name, in_zone, parse_cidr, parse_server, placeholders_in, unfilled, valid_interface,
    SWITCH_PLACEHOLDERS,
};
use super::Sink;

use Key::{Index as I, Name as N};

/// How long a DNS switch waits for every server to serve the new answer
/// when `propagation_timeout` is not set.
const DEFAULT_PROPAGATION: Duration = Duration::from_secs(30);

/// The pair's traffic method; `None` when the table is missing or has any
/// problem. `hosts`, when valid, are the addresses a VIP may not be (nor a
/// balancer); `ssh_port` is the SSH port of the pair's SSH settings, a
/// balancer's when it gives none.
pub(super) fn traffic(
    raw: Option<&TrafficFile>,
    src: &Source<'_>,
    base: &Path,
    hosts: Option<&[Host; 2]>,
    ssh_port: u16,
    sink: &mut Sink<'_>,
) -> Option<Traffic> {
    let Some(t) = raw else {
        sink.missing(src, &[N("traffic")], src.at(
            &[],
            "the pair has no [traffic] table",
            "add [traffic] with `method = \"vip\"`, \"dns\", \"command\" or \"haproxy\" and that method's keys",
        ));
        return None;
    };
    let at = |k: &'static str| [N("traffic"), N(k)];
    let method = t.method.as_deref().unwrap_or("");
    let present: [(&str, bool); 26] = [
        ("quiesce", t.quiesce.is_some()),
        ("handover", t.handover.is_some()),
        ("overlap", t.overlap.is_some()),
        ("switch_ttl", t.switch_ttl.is_some()),
        ("propagation_timeout", t.propagation_timeout.is_some()),
        ("ttl", t.ttl.is_some()),
        ("address", t.address.is_some()),
        ("interface", t.interface.is_some()),
        ("arp_count", t.arp_count.is_some()),
        ("batch", t.batch.is_some()),
        ("name", t.name.is_some()),
        ("zone", t.zone.is_some()),
        ("servers", t.servers.is_some()),
        ("tsig_key", t.tsig_key.is_some()),
        ("switch", t.switch.is_some()),
        ("query", t.query.is_some()),
        ("host", t.host.is_some()),
        ("ssh_port", t.ssh_port.is_some()),
        ("socket", t.socket.is_some()),
        ("backend", t.backend.is_some()),
        ("frontend", t.frontend.is_some()),
        ("weight", t.weight.is_some()),
        ("drain_timeout", t.drain_timeout.is_some()),
        ("max_error_increase", t.max_error_increase.is_some()),
        ("max_latency_factor", t.max_latency_factor.is_some()),
        ("min_requests", t.min_requests.is_some()),
    ];
    let allowed: &[&str] = match method {
        "vip" => &[
            "address",
            "interface",
            "arp_count",
            "batch",
            "quiesce",
            "handover",
            "overlap",
        ],
        "dns" => &[
            "name",
            "zone",
            "servers",
            "tsig_key",
            "switch_ttl",
            "ttl",
            "propagation_timeout",
        ],
        "command" => &["switch", "query"],
        "haproxy" => &[
            "host",
            "address",
            "ssh_port",
            "socket",
            "backend",
            "frontend",
            "weight",
            "drain_timeout",
            "max_error_increase",
            "max_latency_factor",
            "min_requests",
        ],
        "" => {
            sink.missing(
                src,
                &[N("traffic"), N("method")],
                src.at(
                    &[N("traffic")],
                    "[traffic] has no `method`",
                    "add `method = \"vip\"`, \"dns\", \"command\" or \"haproxy\"",
                ),
            );
            return None;
        }
        other => {
            sink.push(src.at(
                &at("method"),
                format!("unknown traffic method `{other}`"),
                "use \"vip\" (a virtual IP), \"dns\" (RFC 2136 update), \"command\" (your own hook) or \"haproxy\" (an HAProxy balancer's runtime API)",
            ));
            return None;
        }
    };
    let mut ok = true;
    for (key, is) in present {
        if is && !allowed.contains(&key) {
            sink.push(src.at(
                &[N("traffic"), N(key)],
                format!("`{key}` does not apply to traffic method `{method}`"),
                format!("remove it; method `{method}` takes: {}", allowed.join(", ")),
            ));
            ok = false;
        }
    }
    let missing = |sink: &mut Sink<'_>, key: &str, example: &str| {
        sink.missing(
            src,
            &[N("traffic"), N(key)],
            src.at(
                &[N("traffic")],
                format!("traffic method `{method}` needs `{key}`"),
                format!("add `{key} = {example}` under [traffic]"),
            ),
        );
    };
    let result = match method {
        "vip" => {
            let address = match t.address.as_deref() {
                None => {
                    missing(sink, "address", "\"192.0.2.100/24\"");
                    None
                }
                Some(a) => match parse_cidr(a) {
                    Ok(v) => Some(v),
                    Err(why) => {
                        sink.push(src.at(
                            &at("address"),
                            format!("`{a}` is not a virtual IP in CIDR form: {why}"),
                            "write the address with its prefix length, like \"192.0.2.100/24\"",
                        ));
                        None
                    }
                },
            };
            if let (Some((addr, _)), Some(hosts)) = (address, hosts) {
                if let Some(h) = hosts.iter().find(|h| h.address == addr) {
                    sink.push(src.at(
                        &at("address"),
                        format!("the virtual IP {addr} is host `{}`'s own address", h.name),
                        "use a separate service address that moves between the hosts",
                    ));
                    ok = false;
                }
            }
            let interface = match t.interface.as_deref() {
                None => {
                    missing(sink, "interface", "\"eth0\"");
                    None
                }
                Some(i) if !valid_interface(i) => {
                    sink.push(src.at(
                        &at("interface"),
                        format!("`{i}` is not a network interface name"),
                        "write the interface the address lives on, like \"eth0\" (at most 15 letters, digits, `-`, `_`, `.`)",
                    ));
                    None
                }
                Some(i) => Some(i.to_string()),
            };
            let arp_count = t.arp_count.unwrap_or(3);
            if !(1..=50).contains(&arp_count) {
                sink.push(src.at(
                    &at("arp_count"),
                    format!("arp_count {arp_count} is out of range"),
                    "use 1 to 50 (3 is usual)",
                ));
                ok = false;
            }
            if let Some(q) = t.quiesce {
                if q < Duration::from_millis(1) || q > Duration::from_secs(5) {
                    sink.push(src.at(
                        &at("quiesce"),
                        format!("quiesce {} is out of range", humantime::format_duration(q)),
                        "use \"1ms\" to \"5s\": about as long as your slowest ordinary request (\"50ms\", say); new connections wait a second or more while it lasts",
                    ));
                    ok = false;
                }
            }
            // The overlap is the default; `quiesce` (which holds new
            // connections back, a classic-order tool) implies the classic
            // order unless the overlap is asked for, which it contradicts.
            let chosen = t.handover.is_some() || t.overlap.is_some();
            let handover = match (t.handover.as_deref(), t.overlap) {
                (Some("classic"), None) => Some(Handover::Classic),
                (None, None) if t.quiesce.is_some() => Some(Handover::Classic),
                (Some("classic"), Some(_)) => {
                    sink.push(src.at(
                        &at("overlap"),
                        "`overlap` applies only to `handover = \"overlap\"`, and this pair has `handover = \"classic\"`",
                        "remove `overlap`, or `handover = \"classic\"` (the overlap is the default)",
                    ));
                    None
                }
                (Some("overlap") | None, o) => {
                    let o = o.unwrap_or(DEFAULT_OVERLAP);
                    if o < Duration::from_millis(100) || o > Duration::from_secs(60) {
                        sink.push(src.at(
                            &at("overlap"),
                            format!("overlap {} is out of range", humantime::format_duration(o)),
                            "use \"100ms\" to \"60s\": about as long as your slowest ordinary request (\"1s\", say)",
                        ));
                        None
                    } else if t.quiesce.is_some() {
                        sink.push(src.at(
                            &at("quiesce"),
                            "`quiesce` applies only to `handover = \"classic\"`: in an overlap the old host drops no new connection",
                            "remove `quiesce` (and `overlap`), or set `handover = \"classic\"`",
                        ));
                        None
                    } else {
                        Some(Handover::Overlap(o))
                    }
                }
                (Some(other), _) => {
                    sink.push(src.at(
                        &at("handover"),
                        format!("unknown handover `{other}`"),
                        "use \"overlap\" (the default: the new host takes the address before the old one lets go) or \"classic\" (remove, then add)",
                    ));
                    None
                }
            };
            match (address, interface, handover) {
                (Some((address, prefix)), Some(interface), Some(handover)) if ok => {
                    Some(Traffic::Vip(Vip {
                        address,
                        prefix,
                        interface,
                        arp_count,
                        batch: t.batch.unwrap_or(true),
                        quiesce: t.quiesce,
                        handover,
                        handover_chosen: chosen,
                    }))
                }
                _ => None,
            }
        }
        "dns" => {
            let name = match t.name.as_deref() {
                None => {
                    missing(sink, "name", "\"www.example.com.\"");
                    None
                }
                Some(n) => dns_name(n, src, &at("name"), sink),
            };
            let zone = match t.zone.as_deref() {
                None => {
                    missing(sink, "zone", "\"example.com.\"");
                    None
                }
                Some(z) => dns_name(z, src, &at("zone"), sink),
            };
            if let (Some(n), Some(z)) = (&name, &zone) {
                if !in_zone(n, z) {
                    sink.push(src.at(
                        &at("name"),
                        format!("`{n}` is not inside zone `{z}`"),
                        "set `zone` to the zone that contains the name (the name must end with the zone)",
                    ));
                    ok = false;
                }
            }
            let mut servers = Vec::new();
            match &t.servers {
                None => missing(sink, "servers", "[\"192.0.2.53:53\"]"),
                Some(list) if list.is_empty() => {
                    sink.push(src.at(
                        &at("servers"),
                        "servers is empty",
                        "list every authoritative server of the zone, like [\"192.0.2.53:53\"]",
                    ));
                    ok = false;
                }
                Some(list) => {
                    for (i, s) in list.iter().enumerate() {
                        match parse_server(s) {
                            Some(a) if servers.contains(&a) => {
                                sink.push(src.at(
                                    &[N("traffic"), N("servers"), I(i)],
                                    format!("server {a} is listed twice"),
                                    "list each server once",
                                ));
                                ok = false;
                            }
                            Some(a) => servers.push(a),
                            None => {
                                sink.push(src.at(
                                    &[N("traffic"), N("servers"), I(i)],
                                    format!("`{s}` is not a server address"),
                                    "write an IP address with an optional port, like \"192.0.2.53\" or \"192.0.2.53:53\" ([2001:db8::53]:53 for IPv6)",
                                ));
                                ok = false;
                            }
                        }
                    }
                }
            }
            let key = match t.tsig_key.as_deref() {
                None => {
                    missing(sink, "tsig_key", "\"/etc/baton/update.key\"");
                    None
                }
                Some(k) => match tsig::load(&resolve(base, k)) {
                    Ok(key) => Some(key),
                    Err(e) => {
                        sink.push(src.at(&at("tsig_key"), e.to_string(), e.fix()));
                        None
                    }
                },
            };
            let mut secs = |key: &'static str, v: Option<Duration>, max: u64| -> Option<u32> {
                let d = v?;
                if d < Duration::from_secs(1)
                    || d > Duration::from_secs(max)
                    || d.subsec_nanos() != 0
                {
                    sink.push(src.at(
                        &at(key),
                        format!("{key} {} is out of range", humantime::format_duration(d)),
                        format!(
                            "use whole seconds between \"1s\" and \"{}\"",
                            humantime::format_duration(Duration::from_secs(max))
                        ),
                    ));
                    ok = false;
                }
                Some(d.as_secs() as u32)
            };
            let switch_ttl = secs("switch_ttl", t.switch_ttl, 3600);
            let normal_ttl = secs("ttl", t.ttl, 7 * 86400);
            let propagation_timeout = secs("propagation_timeout", t.propagation_timeout, 3600)
                .map_or(DEFAULT_PROPAGATION, |s| Duration::from_secs(u64::from(s)));
            match (name, zone, key) {
                (Some(name), Some(zone), Some(tsig_key)) if ok => Some(Traffic::Dns(Dns {
                    name,
                    zone,
                    servers,
                    tsig_key,
                    switch_ttl,
                    ttl: normal_ttl,
                    propagation_timeout,
                })),
                _ => None,
            }
        }
        "haproxy" => haproxy(t, src, hosts, ssh_port, sink, &missing)
            .filter(|_| ok)
            .map(Traffic::Haproxy),
        _ => {
            let switch = nonempty(t.switch.as_deref(), "switch", src, sink, &missing);
            let query = nonempty(t.query.as_deref(), "query", src, sink, &missing);
            match (switch, query) {
                (Some(switch), Some(query)) if ok => {
                    Some(Traffic::Command(CommandSwitch { switch, query }))
                }
                _ => None,
            }
        }
    };
    result
}

/// A command method's command: present, and not blank.
fn nonempty(
    v: Option<&str>,
    key: &'static str,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
    missing: &dyn Fn(&mut Sink<'_>, &str, &str),
) -> Option<String> {
    match v {
        None => {
            // `switch` gets the hosts filled in; `query` runs as written.
            let example = if key == "switch" {
                "\"/usr/local/bin/COMMAND {from} {to}\""
            } else {
                "\"/usr/local/bin/COMMAND\""
            };
            missing(sink, key, example);
            None
        }
        Some(s) if s.trim().is_empty() => {
            sink.push(src.at(
                &[N("traffic"), N(key)],
                format!("`{key}` is empty"),
                "give the command to run",
            ));
            None
        }
        // `switch` gets the hosts filled in; `query` runs as written.
        Some(s) if key == "switch" => match placeholders_in(s, &SWITCH_PLACEHOLDERS) {
            Ok(()) => Some(s.to_string()),
            Err(bad) => {
                sink.push(src.at(
                    &[N("traffic"), N(key)],
                    format!("unknown placeholder `{bad}` in `switch`"),
                    "only {from} and {to} (the hosts' names in this file) and {from_address} and {to_address} (their addresses) are filled in, shell-quoted",
                ));
                None
            }
        },
        Some(s) => match unfilled(s) {
            None => Some(s.to_string()),
            Some(p) => {
                sink.push(src.at(
                    &[N("traffic"), N(key)],
                    format!("`{key}` holds `{p}`, which baton does not fill in here: `{key}` runs as written"),
                    "remove the placeholder: the query prints the name of the host that holds traffic, whichever it is",
                ));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::testing::{check, messages};
    use super::*;
    use crate::config::raw::PairFile;

    const KEY: &str = "key \"baton-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\";\n};\n";

    /// `[traffic]` from `text`, relative paths from `base`.
    fn validate(base: &Path, text: &str) -> (Option<Traffic>, Vec<String>) {
        let (t, d) = check(text, |raw: &PairFile, src, sink| {
            traffic(raw.traffic.as_ref(), src, base, None, 22, sink)
        });
        (t, messages(&d))
    }

    /// A directory holding a valid TSIG key file `update.key`.
    fn with_key() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = dir.path().join("update.key");
        std::fs::write(&key, KEY).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        dir
    }

    const DNS: &str = "[traffic]\nmethod = \"dns\"\nname = \"www.example.com.\"\nzone = \"example.com.\"\ntsig_key = \"update.key\"\n";

    #[test]
    fn arp_count_is_one_to_fifty_and_batch_defaults_to_on() {
        let vip = |extra: &str| {
            validate(
                Path::new("/"),
                &format!("[traffic]\nmethod = \"vip\"\naddress = \"192.0.2.100/24\"\ninterface = \"eth0\"\n{extra}"),
            )
        };
        for bad in [0, 51] {
            let (t, m) = vip(&format!("arp_count = {bad}\n"));
            assert!(t.is_none());
            assert_eq!(m, [format!("5:13: arp_count {bad} is out of range")]);
        }
        let (t, m) = vip("arp_count = 50\n");
        assert!(m.is_empty(), "{m:?}");
        let Some(Traffic::Vip(v)) = t else {
            panic!("a VIP: {t:?}")
        };
        assert_eq!(
            (v.arp_count, v.batch, v.quiesce, v.prefix),
            (50, true, None, 24)
        );
    }

    #[test]
    fn handover_is_the_overlap_unless_classic_is_chosen_or_quiesce_set() {
        let vip = |extra: &str| {
            validate(
                Path::new("/"),
                &format!("[traffic]\nmethod = \"vip\"\naddress = \"192.0.2.100/24\"\ninterface = \"eth0\"\n{extra}"),
            )
        };
        let handover = |extra: &str| match vip(extra) {
            (Some(Traffic::Vip(v)), m) if m.is_empty() => (v.handover, v.handover_chosen),
            other => panic!("{extra}: {other:?}"),
        };
        assert_eq!(handover(""), (Handover::Overlap(DEFAULT_OVERLAP), false));
        assert_eq!(
            handover("handover = \"classic\"\n"),
            (Handover::Classic, true)
        );
        assert_eq!(handover("quiesce = \"50ms\"\n"), (Handover::Classic, false));
        assert_eq!(
            handover("handover = \"overlap\"\n"),
            (Handover::Overlap(DEFAULT_OVERLAP), true)
        );
        assert_eq!(
            handover("handover = \"overlap\"\noverlap = \"250ms\"\n"),
            (Handover::Overlap(Duration::from_millis(250)), true)
        );
        assert_eq!(
            handover("overlap = \"2s\"\n"),
            (Handover::Overlap(Duration::from_secs(2)), true)
        );
        for (extra, said) in [
            ("handover = \"both\"\n", "5:12: unknown handover `both`"),
            (
                "handover = \"classic\"\noverlap = \"1s\"\n",
                "6:11: `overlap` applies only to `handover = \"overlap\"`, and this pair has `handover = \"classic\"`",
            ),
            (
                "overlap = \"1s\"\nquiesce = \"50ms\"\n",
                "6:11: `quiesce` applies only to `handover = \"classic\"`: in an overlap the old host drops no new connection",
            ),
            ("handover = \"overlap\"\noverlap = \"50ms\"\n", "6:11: overlap 50ms is out of range"),
            ("handover = \"overlap\"\noverlap = \"61s\"\n", "6:11: overlap 1m 1s is out of range"),
            (
                "handover = \"overlap\"\nquiesce = \"50ms\"\n",
                "6:11: `quiesce` applies only to `handover = \"classic\"`: in an overlap the old host drops no new connection",
            ),
        ] {
            let (t, m) = vip(extra);
            assert!(t.is_none(), "{extra}");
            assert_eq!(m, [said.to_string()], "{extra}");
        }
    }

    #[test]
    fn a_dns_server_is_listed_once_with_port_53_by_default() {
        let dir = with_key();
        let (t, m) = validate(
            dir.path(),
            &format!("{DNS}servers = [\"192.0.2.53\", \"[2001:db8::53]:5353\"]\n"),
        );
        assert!(m.is_empty(), "{m:?}");
        let Some(Traffic::Dns(d)) = t else {
            panic!("DNS: {t:?}")
        };
        let servers: Vec<String> = d.servers.iter().map(|s| s.to_string()).collect();
        assert_eq!(servers, ["192.0.2.53:53", "[2001:db8::53]:5353"]);
        assert_eq!(d.propagation_timeout, Duration::from_secs(30));
        assert_eq!((d.switch_ttl, d.ttl), (None, None));
        // The same server twice, once with its default port written out.
        let (t, m) = validate(
            dir.path(),
            &format!("{DNS}servers = [\"192.0.2.53\", \"192.0.2.53:53\"]\n"),
        );
        assert!(t.is_none());
        assert_eq!(m, ["6:26: server 192.0.2.53:53 is listed twice"]);
    }

    #[test]
    fn ttls_are_whole_seconds_within_their_bounds() {
        let dir = with_key();
        let servers = "servers = [\"192.0.2.53\"]\n";
        let (t, m) = validate(
            dir.path(),
            &format!("{DNS}{servers}switch_ttl = \"1500ms\"\nttl = \"8days\"\n"),
        );
        assert!(t.is_none());
        assert_eq!(
            m,
            [
                "7:14: switch_ttl 1s 500ms is out of range",
                "8:7: ttl 8days is out of range"
            ]
        );
        let (t, m) = validate(
            dir.path(),
            &format!("{DNS}{servers}switch_ttl = \"1h\"\nttl = \"7days\"\npropagation_timeout = \"2m\"\n"),
        );
        assert!(m.is_empty(), "{m:?}");
        let Some(Traffic::Dns(d)) = t else {
            panic!("DNS: {t:?}")
        };
        assert_eq!((d.switch_ttl, d.ttl), (Some(3600), Some(7 * 86400)));
        assert_eq!(d.propagation_timeout, Duration::from_secs(120));
    }

    #[test]
    fn a_command_method_needs_both_commands_not_blank() {
        let (t, d) = check(
            "[traffic]\nmethod = \"command\"\nswitch = \" \"\n",
            |raw: &PairFile, src, sink| {
                traffic(raw.traffic.as_ref(), src, Path::new("/"), None, 22, sink)
            },
        );
        assert!(t.is_none());
        let m: Vec<_> = d
            .iter()
            .map(|d| (d.line, d.message.as_str(), d.fix.as_str()))
            .collect();
        assert_eq!(
            m,
            [
                (3, "`switch` is empty", "give the command to run"),
                (
                    1,
                    "traffic method `command` needs `query`",
                    "add `query = \"/usr/local/bin/COMMAND\"` under [traffic]"
                ),
            ]
        );
    }

    #[test]
    fn a_command_method_refuses_placeholders_it_does_not_fill() {
        let run = |text: &str| {
            check(text, |raw: &PairFile, src, sink| {
                traffic(raw.traffic.as_ref(), src, Path::new("/"), None, 22, sink)
            })
        };
        let (t, d) = run("[traffic]\nmethod = \"command\"\nswitch = \"lb {from} {to_address}\"\nquery = \"awk '{print}' /run/lb\"\n");
        assert!(t.is_some(), "{d:?}");
        let (t, d) = run("[traffic]\nmethod = \"command\"\nswitch = \"lb {form} {to}\"\nquery = \"lb-who {host}\"\n");
        assert!(t.is_none());
        let m: Vec<_> = d.iter().map(|d| (d.line, d.message.as_str())).collect();
        assert_eq!(
            m,
            [
                (3, "unknown placeholder `{form}` in `switch`"),
                (
                    4,
                    "`query` holds `{host}`, which baton does not fill in here: `query` runs as written"
                ),
            ]
        );
    }
}
