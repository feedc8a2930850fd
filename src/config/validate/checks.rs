//! The `[[checks]]` of a pair: which keys apply to which kind (`http`,
//! `https`, `tcp`, `dns`, `command`), each kind's own rules (a URL of its
//! scheme, a CA file that is PEM, a port, a DNS query, record type and
//! server, a command), the placeholders they may hold, and the rules every
//! check shares (successes, failures allowed, interval, timeout, a name of
//! its own).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::diag::{printable, Key, Source};
use crate::config::raw::CheckFile;
use crate::config::{Check, CheckKind, CheckRole, Host, Pair, Warning, WarningKind};

use super::paths::resolve;
use super::values::{dns_name, parse_server, placeholders_ok};
use super::Sink;

use Key::{Index as I, Name as N};

/// The checks that validated; each check with a problem is left out.
/// `hosts`, when valid, fill a DNS check's `server` to check it.
pub(super) fn checks(
    raw: &[CheckFile],
    src: &Source<'_>,
    base: &Path,
    hosts: Option<&[Host; 2]>,
    sink: &mut Sink<'_>,
) -> Vec<Check> {
    if raw.is_empty() {
        sink.missing(src, &[N("checks")], src.at(
            &[],
            "the pair has no health checks",
            "add at least one [[checks]] table: traffic only moves to a host that passed its checks",
        ));
    }
    let mut out: Vec<Check> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let at = |k: &'static str| [N("checks"), I(i), N(k)];
        let whole = [N("checks"), I(i)];
        let start = sink.problems.len();
        let kind_name = c.kind.as_deref().unwrap_or("");
        let present: [(&str, bool); 11] = [
            ("url", c.url.is_some()),
            ("ca_file", c.ca_file.is_some()),
            ("expect_status", c.expect_status.is_some()),
            ("expect_body", c.expect_body.is_some()),
            ("port", c.port.is_some()),
            ("query", c.query.is_some()),
            ("record_type", c.record_type.is_some()),
            ("server", c.server.is_some()),
            ("expect", c.expect.is_some()),
            ("command", c.command.is_some()),
            ("expect_output", c.expect_output.is_some()),
        ];
        let allowed: &[&str] = match kind_name {
            "http" => &["url", "expect_status", "expect_body"],
            "https" => &["url", "expect_status", "expect_body", "ca_file"],
            "tcp" => &["port"],
            "dns" => &["query", "record_type", "server", "expect"],
            "command" => &["command", "expect_output"],
            "" => {
                sink.missing(
                    src,
                    &at("kind"),
                    src.at(
                        &whole,
                        "a check has no `kind`",
                        "add `kind = \"http\"`, \"https\", \"tcp\", \"dns\" or \"command\"",
                    ),
                );
                continue;
            }
            other => {
                sink.push(src.at(
                    &at("kind"),
                    format!("unknown check kind `{other}`"),
                    "use \"http\", \"https\", \"tcp\", \"dns\" or \"command\"",
                ));
                continue;
            }
        };
        for (key, is) in present {
            if is && !allowed.contains(&key) {
                sink.push(src.at(
                    &[N("checks"), I(i), N(key)],
                    format!("`{key}` does not apply to a `{kind_name}` check"),
                    format!(
                        "remove it; a `{kind_name}` check takes: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let need = |sink: &mut Sink<'_>, key: &str, example: &str| {
            sink.missing(
                src,
                &[N("checks"), I(i), N(key)],
                src.at(
                    &whole,
                    format!("this `{kind_name}` check needs `{key}`"),
                    format!("add `{key} = {example}` to the check"),
                ),
            );
        };
        let text = |sink: &mut Sink<'_>, key: &'static str, v: Option<&String>| {
            if let Some(v) = v {
                if let Err(bad) = placeholders_ok(v) {
                    sink.push(src.at(
                        &at(key),
                        format!("unknown placeholder `{bad}` in `{key}`"),
                        "only {address} (the host's address) and {host} (its name) are filled in",
                    ));
                }
            }
        };
        let kind = match kind_name {
            "http" | "https" => {
                text(sink, "url", c.url.as_ref());
                text(sink, "expect_body", c.expect_body.as_ref());
                let scheme = format!("{kind_name}://");
                match c.url.as_deref() {
                    None => need(sink, "url", &format!("\"{scheme}{{address}}/health\"")),
                    Some(u) if !u.starts_with(&scheme) => sink.push(src.at(
                        &at("url"),
                        format!("the url of a `{kind_name}` check must start with {scheme}"),
                        format!("write it like \"{scheme}{{address}}/health\", or change `kind`"),
                    )),
                    Some(_) => {}
                }
                let status = c.expect_status.unwrap_or(200);
                if !(100..=599).contains(&status) {
                    sink.push(src.at(
                        &at("expect_status"),
                        format!("{status} is not an HTTP status"),
                        "use a status between 100 and 599, like 200",
                    ));
                }
                // On an `http` check, `ca_file` was refused above as not applying.
                let ca_file = c.ca_file.as_deref().filter(|_| kind_name == "https").map(|f| {
                    let p = resolve(base, f);
                    let pem = crate::io::readfile::text(&p, crate::io::readfile::KEY).unwrap_or_default();
                    if !pem.contains("-----BEGIN CERTIFICATE-----") {
                        sink.push(src.at(
                            &at("ca_file"),
                            format!("{} is not a readable PEM certificate file", p.display()),
                            "point `ca_file` at the CA certificate (PEM) that signed the service's certificate",
                        ));
                    }
                    p
                });
                CheckKind::Http {
                    url: c.url.clone().unwrap_or_default(),
                    expect_status: status,
                    expect_body: c.expect_body.clone(),
                    ca_file,
                }
            }
            "tcp" => match c.port {
                None => {
                    need(sink, "port", "5432");
                    CheckKind::Tcp { port: 0 }
                }
                Some(0) => {
                    sink.push(src.at(
                        &at("port"),
                        "port 0 is not a port",
                        "use the service's port, 1-65535",
                    ));
                    CheckKind::Tcp { port: 0 }
                }
                Some(port) => CheckKind::Tcp { port },
            },
            "dns" => {
                text(sink, "server", c.server.as_ref());
                text(sink, "expect", c.expect.as_ref());
                let query = match c.query.as_deref() {
                    None => {
                        need(sink, "query", "\"www.example.com.\"");
                        String::new()
                    }
                    Some(q) => dns_name(q, src, &at("query"), sink).unwrap_or_default(),
                };
                let record_type = c
                    .record_type
                    .clone()
                    .unwrap_or_else(|| "A".to_string())
                    .to_ascii_uppercase();
                if !["A", "AAAA", "CNAME", "TXT", "MX", "NS", "SOA", "PTR", "SRV"]
                    .contains(&record_type.as_str())
                {
                    sink.push(src.at(
                        &at("record_type"),
                        format!("record type `{record_type}` is not supported"),
                        "use A, AAAA, CNAME, TXT, MX, NS, SOA, PTR or SRV",
                    ));
                }
                if let Some(template) = c.server.as_deref().filter(|t| placeholders_ok(t).is_ok()) {
                    if let Some(filled) = bad_server(template, hosts) {
                        sink.push(src.at(
                            &at("server"),
                            format!(
                                "`{}` is not a DNS server address{}",
                                printable(template),
                                if filled == template { String::new() } else { format!(" (for a host it is `{}`)", printable(&filled)) }
                            ),
                            "write an IP address with an optional port, like \"{address}:53\" (the host itself, the default) or \"192.0.2.53:53\"",
                        ));
                    }
                }
                let server = c
                    .server
                    .clone()
                    .unwrap_or_else(|| "{address}:53".to_string());
                if c.expect.is_none() {
                    need(sink, "expect", "\"192.0.2.10\"");
                }
                CheckKind::Dns {
                    query,
                    record_type,
                    server,
                    expect: c.expect.clone().unwrap_or_default(),
                }
            }
            _ => {
                text(sink, "command", c.command.as_ref());
                text(sink, "expect_output", c.expect_output.as_ref());
                match c.command.as_deref() {
                    None => need(sink, "command", "\"systemctl is-active nginx\""),
                    Some(cmd) if cmd.trim().is_empty() => sink.push(src.at(
                        &at("command"),
                        "the command is empty",
                        "give the command to run on the host",
                    )),
                    Some(_) => {}
                }
                CheckKind::Command {
                    command: c.command.clone().unwrap_or_default(),
                    expect_output: c.expect_output.clone(),
                }
            }
        };
        let successes = c.successes.unwrap_or(1);
        if !(1..=100).contains(&successes) {
            sink.push(src.at(
                &at("successes"),
                format!("successes {successes} is out of range"),
                "use 1 to 100 consecutive successes",
            ));
        }
        let failures_allowed = c.failures_allowed.unwrap_or(0);
        if failures_allowed > 100 {
            sink.push(src.at(
                &at("failures_allowed"),
                format!("failures_allowed {failures_allowed} is out of range"),
                "use 0 to 100",
            ));
        }
        let interval = c.interval.unwrap_or(Duration::from_secs(1));
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(3600) {
            sink.push(src.at(
                &at("interval"),
                format!(
                    "interval {} is out of range",
                    humantime::format_duration(interval)
                ),
                "use between \"10ms\" and \"1h\"",
            ));
        }
        let timeout = c.timeout.unwrap_or(Duration::from_secs(5));
        if timeout < Duration::from_millis(10) || timeout > Duration::from_secs(300) {
            sink.push(src.at(
                &at("timeout"),
                format!(
                    "timeout {} is out of range",
                    humantime::format_duration(timeout)
                ),
                "use between \"10ms\" and \"5m\"",
            ));
        }
        let role = match c.role.as_deref() {
            None | Some("any") => CheckRole::Any,
            Some("primary") => CheckRole::Primary,
            Some("standby") => CheckRole::Standby,
            Some(other) => {
                sink.push(src.at(
                    &at("role"),
                    format!("unknown check role `{}`", printable(other)),
                    "use \"primary\" (runs only where the host is verified as the primary, e.g. a check that it takes writes), \"standby\" (only on the standby, e.g. that it replicates) or \"any\" (the default)",
                ));
                CheckRole::Any
            }
        };
        match c.name.as_deref() {
            Some(n) if n.trim().is_empty() => sink.push(src.at(
                &at("name"),
                "a check's name is empty",
                "name the check, like \"page\", or remove `name` for the default KIND-N",
            )),
            Some(n) if n.contains(char::is_control) => sink.push(src.at(
                &at("name"),
                format!("check name `{}` holds a control character", printable(n)),
                "write the name on one line, without tabs or other control characters, like \"page\"",
            )),
            _ => {}
        }
        let name = c
            .name
            .clone()
            .unwrap_or_else(|| format!("{kind_name}-{}", i + 1));
        if out.iter().any(|o| o.name == name) {
            sink.push(src.at(
                &at("name"),
                format!("two checks are named `{name}`"),
                "give each check its own name",
            ));
        }
        if sink.problems.len() == start {
            out.push(Check {
                name,
                kind,
                role,
                successes,
                failures_allowed,
                interval,
                timeout,
            });
        }
    }
    out
}

/// A DNS check's `server` filled for each host (a sample address when the
/// hosts are unknown) as a check fills it; the first that is not a server
/// address.
/// The warnings for a validated pair's HTTP(S) checks whose URL names an
/// IP address: such a check is sent there for both hosts (only a host name
/// is pinned to each host's address, and `{address}` is each host's own).
pub(super) fn fixed_addresses(src: &Source<'_>, pair: &Pair) -> Vec<Warning> {
    pair.checks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let CheckKind::Http { url, expect_body, .. } = &c.kind else {
                return None;
            };
            let address = literal_ip_host(url)?;
            let caught = expect_body.as_deref().is_some_and(|b| b.contains("{host}"));
            let diagnostic = src.at(
                &[N("checks"), I(i), N("url")],
                format!(
                    "check `{}` is sent to {address} whatever host it verifies: a URL that names an address is not pinned to each host{}",
                    c.name,
                    if caught {
                        " (its expect_body names {host}, so another host's answer fails it)"
                    } else {
                        ", so the standby's verification may pass on another host's answer"
                    }
                ),
                "write the URL with {address} (each host's own address, or the service address when verifying through it), or with the service's host name (baton connects to each host's address and keeps the name for the Host header and TLS)",
            );
            Some(Warning {
                kind: WarningKind::CheckOnFixedAddress {
                    pair: pair.name.clone(),
                    check: c.name.clone(),
                    address,
                },
                pairs: vec![pair.name.clone()],
                diagnostic,
            })
        })
        .collect()
}

/// The IP address a URL names as its host, if it names one.
fn literal_ip_host(url: &str) -> Option<IpAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next()?.parse().ok();
    }
    host_port.split(':').next()?.parse().ok()
}

fn bad_server(template: &str, hosts: Option<&[Host; 2]>) -> Option<String> {
    let sample = [Host {
        name: "host".to_string(),
        address: IpAddr::from([192, 0, 2, 1]),
        ssh_port: 22,
    }];
    let hosts: &[Host] = match hosts {
        Some(h) => h,
        None => &sample,
    };
    hosts.iter().find_map(|h| {
        let filled = crate::core::template::fill_server(template, h);
        parse_server(&filled).is_none().then_some(filled)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_warns_of_an_http_check_sent_to_one_fixed_address() {
        let lab = crate::exec::testkit::Lab::new(&crate::exec::testkit::vip(""), "");
        let file = lab.dir().join("pairs/web.toml");
        let text = std::fs::read_to_string(&file).unwrap()
            + "\n[[checks]]\nname = \"vip\"\nkind = \"http\"\nurl = \"http://198.51.100.100/health\"\n";
        std::fs::write(&file, text).unwrap();
        let loaded = crate::config::load(&lab.dir().join("baton.toml"));
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let w: Vec<_> = loaded
            .warnings
            .iter()
            .filter(|w| w.kind.code() == "check_on_fixed_address")
            .collect();
        assert_eq!(w.len(), 1, "{:?}", loaded.warnings);
        assert_eq!(
            w[0].kind,
            WarningKind::CheckOnFixedAddress {
                pair: "web".into(),
                check: "vip".into(),
                address: "198.51.100.100".parse().unwrap()
            }
        );
        assert!(w[0]
            .diagnostic
            .message
            .contains("may pass on another host's answer"));
        assert!(w[0].diagnostic.line > 0);
    }

    #[test]
    fn a_url_that_names_an_address_is_found_and_one_with_address_or_a_name_is_not() {
        assert_eq!(
            literal_ip_host("http://198.51.100.100/health"),
            Some("198.51.100.100".parse().unwrap())
        );
        assert_eq!(
            literal_ip_host("https://user@[2001:db8::10]:8443/x"),
            Some("2001:db8::10".parse().unwrap())
        );
        assert_eq!(
            literal_ip_host("http://10.0.0.1:8080?q"),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(literal_ip_host("http://{address}/health"), None);
        assert_eq!(literal_ip_host("https://www.example.com/"), None);
        assert_eq!(literal_ip_host("not a url"), None);
    }

    use super::super::testing::{check, messages};
    use super::*;
    use crate::config::raw::PairFile;

    fn validate(text: &str) -> (Vec<Check>, Vec<String>) {
        let (c, d) = check(text, |raw: &PairFile, src, sink| {
            checks(&raw.checks, src, Path::new("/"), None, sink)
        });
        (c, messages(&d))
    }

    #[test]
    fn a_check_is_named_after_its_kind_and_place_with_the_usual_defaults() {
        let (c, m) = validate(
            "[[checks]]\nkind = \"tcp\"\nport = 80\n[[checks]]\nname = \"page\"\nkind = \"http\"\nurl = \"http://{address}/\"\n[[checks]]\nkind = \"tcp\"\nport = 443\n",
        );
        assert!(m.is_empty(), "{m:?}");
        let names: Vec<_> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["tcp-1", "page", "tcp-3"]);
        let first = &c[0];
        assert_eq!((first.successes, first.failures_allowed), (1, 0));
        assert_eq!(
            (first.interval, first.timeout),
            (Duration::from_secs(1), Duration::from_secs(5))
        );
        assert!(matches!(
            &c[1].kind,
            CheckKind::Http {
                expect_status: 200,
                ca_file: None,
                ..
            }
        ));
    }

    #[test]
    fn a_check_runs_where_its_role_says_and_an_unknown_role_is_refused() {
        let (c, m) = validate(
            "[[checks]]\nkind = \"tcp\"\nport = 80\n[[checks]]\nkind = \"tcp\"\nport = 81\nrole = \"primary\"\n[[checks]]\nkind = \"tcp\"\nport = 82\nrole = \"standby\"\n[[checks]]\nkind = \"tcp\"\nport = 83\nrole = \"master\"\n",
        );
        let roles: Vec<_> = c.iter().map(|c| c.role).collect();
        assert_eq!(
            roles,
            [CheckRole::Any, CheckRole::Primary, CheckRole::Standby]
        );
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("unknown check role `master`"), "{m:?}");
        assert!(CheckRole::Any.runs_as(CheckRole::Primary));
        assert!(CheckRole::Primary.runs_as(CheckRole::Primary));
        assert!(!CheckRole::Primary.runs_as(CheckRole::Standby));
        assert!(!CheckRole::Standby.runs_as(CheckRole::Primary));
    }

    #[test]
    fn a_check_with_a_problem_is_left_out_and_the_others_kept() {
        let (c, m) = validate(
            "[[checks]]\nkind = \"tcp\"\nport = 0\n[[checks]]\nkind = \"tcp\"\nport = 22\n",
        );
        assert_eq!(m, ["3:8: port 0 is not a port"]);
        let names: Vec<_> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["tcp-2"]);
    }

    #[test]
    fn a_record_type_is_any_case_of_a_supported_one() {
        let dns = |rtype: &str| {
            validate(&format!(
                "[[checks]]\nkind = \"dns\"\nquery = \"www.example.com.\"\nrecord_type = \"{rtype}\"\nexpect = \"192.0.2.10\"\n"
            ))
        };
        let (c, m) = dns("aaaa");
        assert!(m.is_empty(), "{m:?}");
        assert!(matches!(
            &c[0].kind,
            CheckKind::Dns { record_type, server, .. } if record_type == "AAAA" && server == "{address}:53"
        ));
        let (c, m) = dns("axfr");
        assert!(c.is_empty());
        assert_eq!(m, ["4:15: record type `AXFR` is not supported"]);
    }

    #[test]
    fn a_dns_check_needs_what_it_expects() {
        let (c, d) = check(
            "[[checks]]\nkind = \"dns\"\nquery = \"www.example.com.\"\n",
            |raw: &PairFile, src, sink| checks(&raw.checks, src, Path::new("/"), None, sink),
        );
        assert!(c.is_empty());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].message, "this `dns` check needs `expect`");
        assert_eq!(d[0].fix, "add `expect = \"192.0.2.10\"` to the check");
    }

    #[test]
    fn the_shared_counts_and_durations_are_bounded() {
        let (c, m) = validate(
            "[[checks]]\nkind = \"tcp\"\nport = 1\nsuccesses = 101\nfailures_allowed = 101\ninterval = \"9ms\"\ntimeout = \"301s\"\n",
        );
        assert!(c.is_empty());
        assert_eq!(
            m,
            [
                "4:13: successes 101 is out of range",
                "5:20: failures_allowed 101 is out of range",
                "6:12: interval 9ms is out of range",
                "7:11: timeout 5m 1s is out of range"
            ]
        );
        let (c, m) = validate(
            "[[checks]]\nkind = \"tcp\"\nport = 1\nsuccesses = 100\nfailures_allowed = 100\ninterval = \"1h\"\ntimeout = \"5m\"\n",
        );
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_command_check_with_a_blank_command_is_refused() {
        let (c, m) = validate("[[checks]]\nkind = \"command\"\ncommand = \"  \"\n");
        assert!(c.is_empty());
        assert_eq!(m, ["3:11: the command is empty"]);
    }

    #[test]
    fn a_dns_server_template_is_filled_for_each_host_before_it_is_judged() {
        let hosts = [
            Host {
                name: "blue".to_string(),
                address: IpAddr::from([192, 0, 2, 1]),
                ssh_port: 22,
            },
            Host {
                name: "green".to_string(),
                address: "2001:db8::2".parse().unwrap(),
                ssh_port: 22,
            },
        ];
        assert_eq!(bad_server("{address}:53", Some(&hosts)), None);
        assert_eq!(bad_server("{address}", None), None);
        assert_eq!(
            bad_server("{host}:53", Some(&hosts)),
            Some("blue:53".to_string())
        );
        // Brackets fit only an IPv6 address: the first host is IPv4.
        assert_eq!(
            bad_server("[{address}]:53", Some(&hosts)),
            Some("[192.0.2.1]:53".to_string())
        );
        assert_eq!(
            bad_server("{address}:0", None),
            Some("192.0.2.1:0".to_string())
        );
    }
}
