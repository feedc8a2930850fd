//! `[traffic]` of method `haproxy`: an HAProxy balancer in front of the
//! pair, driven through its runtime API. The balancer is a machine of its
//! own (`host`, `address`, `ssh_port`: a name and an address that are no
//! host's of the pair, the pair's SSH port by default); `socket` is the
//! absolute path of its admin socket there; `backend` is the HAProxy
//! backend whose servers are named after the pair's hosts; `frontend` is
//! the service address (`IP:PORT`); `weight` the weight of the server that
//! holds traffic (1 to 256); `drain_timeout` how long the drain waits
//! (0s to 1h); and `max_error_increase`, `max_latency_factor` and
//! `min_requests` the limits of a ramp step's comparison
//! ([`crate::core::balancer::Limits`]).
//!
//! The pair's host names need no check of their own here: a valid host
//! name (`values::valid_name`) is always a valid HAProxy server name
//! (`values::valid_haproxy_name`), which a test of this module holds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::diag::{Key, Source};
use crate::config::raw::TrafficFile;
use crate::config::{Haproxy, Host};
use crate::core::balancer::{Limits, MAX_WEIGHT};

use super::values::{valid_haproxy_name, valid_name};
use super::Sink;

use Key::Name as N;

/// The weight of the server that holds traffic when `weight` is not set.
const DEFAULT_WEIGHT: u32 = 100;
/// How long the drain waits when `drain_timeout` is not set.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);
/// The longest `drain_timeout`.
const MAX_DRAIN: Duration = Duration::from_secs(3600);
/// The longest admin socket path, in bytes (Linux's PATH_MAX; a socket's
/// own limit, 107, is `socat`'s to report).
const MAX_SOCKET_PATH: usize = 4096;
/// The longest backend name.
const MAX_BACKEND: usize = 64;
/// The largest `min_requests`.
const MAX_MIN_REQUESTS: u64 = 1_000_000;

/// The balancer's settings; `None` when any of them has a problem (each is
/// reported). `hosts`, when valid, are the pair's hosts, whose names and
/// addresses the balancer may not have; `ssh_port` is the pair's SSH port.
pub(super) fn haproxy(
    t: &TrafficFile,
    src: &Source<'_>,
    hosts: Option<&[Host; 2]>,
    ssh_port: u16,
    sink: &mut Sink<'_>,
    missing: &dyn Fn(&mut Sink<'_>, &str, &str),
) -> Option<Haproxy> {
    let at = |k: &'static str| [N("traffic"), N(k)];
    let pair_hosts: &[Host] = hosts.map_or(&[], |h| h.as_slice());
    let mut ok = true;

    let name = match t.host.as_deref() {
        None => {
            missing(sink, "host", "\"lb\"");
            None
        }
        Some(h) if !valid_name(h) => {
            sink.push(src.at(
                &at("host"),
                format!("`{h}` is not a valid host name"),
                "name the balancer with letters, digits, `-` and `_`, like \"lb\"",
            ));
            None
        }
        Some(h) => {
            if let Some(other) = pair_hosts.iter().find(|x| x.name.eq_ignore_ascii_case(h)) {
                sink.push(src.at(
                    &at("host"),
                    format!(
                        "the balancer `{h}` has the name of host `{}` of the pair",
                        other.name
                    ),
                    "give the balancer a name of its own, like \"lb\": it is a third machine, in front of the pair's two",
                ));
                ok = false;
            }
            Some(h.to_string())
        }
    };

    let address = match t.address.as_deref() {
        None => {
            missing(sink, "address", "\"192.0.2.40\"");
            None
        }
        Some(a) => match a.parse::<IpAddr>() {
            // The same machine as its IPv4 form, which the comparison with
            // the pair's hosts (and the fleet's) would not see.
            Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                sink.push(src.at(
                    &at("address"),
                    format!("`{a}` is an IPv4 address written as IPv6"),
                    format!(
                        "write the IPv4 address itself: \"{}\"",
                        v6.to_ipv4_mapped()
                            .map(|v4| v4.to_string())
                            .unwrap_or_default()
                    ),
                ));
                None
            }
            Ok(addr) => {
                if let Some(h) = pair_hosts.iter().find(|h| h.address == addr) {
                    sink.push(src.at(
                        &at("address"),
                        format!("the balancer's address {addr} is host `{}`'s own address", h.name),
                        "write the balancer's own address: it is a separate machine in front of the pair",
                    ));
                    ok = false;
                }
                Some(addr)
            }
            Err(_) => {
                sink.push(src.at(
                    &at("address"),
                    format!("`{a}` is not an IP address"),
                    "write the balancer's own IPv4 or IPv6 address, like \"192.0.2.40\" (no port, no prefix length: with method `haproxy`, `address` is the balancer's; the service address is `frontend`)",
                ));
                None
            }
        },
    };

    if t.ssh_port == Some(0) {
        sink.push(src.at(
            &at("ssh_port"),
            "ssh_port 0 is not a port",
            "use 1-65535 (22 is SSH's), or remove it to use the pair's SSH port",
        ));
        ok = false;
    }

    let socket = match t.socket.as_deref() {
        None => {
            missing(sink, "socket", "\"/run/haproxy/admin.sock\"");
            None
        }
        Some(s) => match socket_problem(s) {
            Some((message, fix)) => {
                sink.push(src.at(&at("socket"), message, fix));
                None
            }
            None => Some(s.to_string()),
        },
    };

    let backend = match t.backend.as_deref() {
        None => {
            missing(sink, "backend", "\"web\"");
            None
        }
        Some("") => {
            sink.push(src.at(
                &at("backend"),
                "`backend` is empty",
                "give the name after `backend` in haproxy.cfg, like \"web\"",
            ));
            None
        }
        Some(b) if b.len() > MAX_BACKEND || !valid_haproxy_name(b) => {
            sink.push(src.at(
                &at("backend"),
                format!("`{b}` is not a valid HAProxy backend name"),
                format!("write the name after `backend` in haproxy.cfg: 1 to {MAX_BACKEND} letters, digits, `-`, `_`, `.` and `:`"),
            ));
            None
        }
        Some(b) => Some(b.to_string()),
    };

    let frontend = match t.frontend.as_deref() {
        None => {
            missing(sink, "frontend", "\"192.0.2.80:80\"");
            None
        }
        Some(f) => match frontend_problem(f) {
            Err((message, fix)) => {
                sink.push(src.at(&at("frontend"), message, fix));
                None
            }
            Ok(fa) => {
                if let Some(h) = pair_hosts.iter().find(|h| h.address == fa.ip()) {
                    sink.push(src.at(
                        &at("frontend"),
                        format!("the frontend {fa} is on host `{}`'s own address", h.name),
                        "write the address and port the balancer answers on (its own address, or a service address it holds), not a host's of the pair",
                    ));
                    ok = false;
                }
                Some(fa)
            }
        },
    };

    let weight = t.weight.unwrap_or(DEFAULT_WEIGHT);
    if !(1..=MAX_WEIGHT).contains(&weight) {
        sink.push(src.at(
            &at("weight"),
            format!("weight {weight} is out of range"),
            format!("use 1 to {MAX_WEIGHT}: the weight of the server that holds traffic (the other has 0); {DEFAULT_WEIGHT} is usual"),
        ));
        ok = false;
    }

    let drain_timeout = t.drain_timeout.unwrap_or(DEFAULT_DRAIN);
    if drain_timeout > MAX_DRAIN {
        sink.push(src.at(
            &at("drain_timeout"),
            format!(
                "drain_timeout {} is out of range",
                humantime::format_duration(drain_timeout)
            ),
            "use \"0s\" to \"1h\": how long the drain waits for the old server's sessions to end (\"0s\": no waiting)",
        ));
        ok = false;
    }

    let defaults = Limits::default();
    let mut ratio = |key: &'static str, v: Option<f64>, default: f64, min: f64, fix: &str| {
        let v = v.unwrap_or(default);
        if !(v.is_finite() && (min..=100.0).contains(&v)) {
            sink.push(src.at(
                &at(key),
                format!("{key} {v} is out of range"),
                fix.to_string(),
            ));
            ok = false;
        }
        // -0.0 is 0.0, written as such in messages.
        v + 0.0
    };
    let max_error_increase = ratio(
        "max_error_increase",
        t.max_error_increase,
        defaults.max_error_increase,
        0.0,
        "use 0 to 100: the percentage points by which the updated host's error rate may exceed the other's (1.0 is the default)",
    );
    let max_latency_factor = ratio(
        "max_latency_factor",
        t.max_latency_factor,
        defaults.max_latency_factor,
        1.0,
        "use 1 to 100: how many times the other host's mean response time the updated host's may be (2.0 is the default)",
    );
    let min_requests = t.min_requests.unwrap_or(defaults.min_requests);
    if !(1..=MAX_MIN_REQUESTS).contains(&min_requests) {
        sink.push(src.at(
            &at("min_requests"),
            format!("min_requests {min_requests} is out of range"),
            format!("use 1 to {MAX_MIN_REQUESTS}: how many requests the updated host must get in a step before the step judges it ({} is the default)", defaults.min_requests),
        ));
        ok = false;
    }

    let (Some(name), Some(address), Some(socket), Some(backend), Some(frontend)) =
        (name, address, socket, backend, frontend)
    else {
        return None;
    };
    ok.then(|| Haproxy {
        host: Host {
            name,
            address,
            ssh_port: t.ssh_port.unwrap_or(ssh_port),
        },
        socket,
        backend,
        frontend,
        weight,
        drain_timeout,
        limits: Limits {
            max_error_increase,
            max_latency_factor,
            min_requests,
        },
    })
}

/// What is wrong with an admin socket path, as a message and a fix; the
/// first problem only (one mistake, one message).
fn socket_problem(s: &str) -> Option<(String, String)> {
    let example = "like \"/run/haproxy/admin.sock\"";
    if s.is_empty() {
        Some((
            "`socket` is empty".to_string(),
            format!("give the admin socket's absolute path on the balancer's host, {example}"),
        ))
    } else if s.contains(char::is_control) {
        Some((
            format!("the socket path `{s}` holds a control character"),
            format!(
                "write the path on one line, without tabs or other control characters, {example}"
            ),
        ))
    } else if s.len() > MAX_SOCKET_PATH {
        Some((
            format!("the socket path is {} bytes long", s.len()),
            format!("write a path of at most {MAX_SOCKET_PATH} bytes, {example}"),
        ))
    } else if !s.starts_with('/') {
        Some((
            format!("`{s}` is not an absolute path"),
            format!("write the admin socket's absolute path on the balancer's host (`stats socket` in haproxy.cfg), {example}"),
        ))
    } else {
        None
    }
}

/// The frontend's address, or what is wrong with it as a message and a fix.
fn frontend_problem(f: &str) -> Result<SocketAddr, (String, String)> {
    let Ok(fa) = f.parse::<SocketAddr>() else {
        return Err(match f.parse::<IpAddr>() {
            Ok(ip) => (
                format!("the frontend `{f}` has no port"),
                format!(
                    "write it with its port, like \"{}\"",
                    SocketAddr::new(ip, 80)
                ),
            ),
            Err(_) => (
                format!("`{f}` is not an address with a port"),
                "write the IP address and port the frontend binds, like \"192.0.2.80:80\" (\"[2001:db8::80]:80\" for IPv6)".to_string(),
            ),
        });
    };
    let ip = fa.ip();
    if let IpAddr::V6(v6) = ip {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Err((
                format!("`{f}` is an IPv4 address written as IPv6"),
                format!(
                    "write the IPv4 address itself: \"{}\"",
                    SocketAddr::new(IpAddr::V4(v4), fa.port())
                ),
            ));
        }
    }
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err((
            format!("{ip} cannot be a service address"),
            "write the address clients connect to, where the frontend binds, like \"192.0.2.80:80\""
                .to_string(),
        ));
    }
    if fa.port() == 0 {
        return Err((
            format!("the frontend `{f}` has port 0"),
            format!(
                "write the port the frontend binds (1-65535), like \"{}\"",
                SocketAddr::new(ip, 80)
            ),
        ));
    }
    Ok(fa)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::testing::{check, messages};
    use super::super::traffic::traffic;
    use super::*;
    use crate::config::raw::PairFile;
    use crate::config::{Diagnostic, Traffic};

    /// The pair's hosts the tests validate against.
    fn pair_hosts() -> [Host; 2] {
        let host = |name: &str, last: u8| Host {
            name: name.to_string(),
            address: IpAddr::from([198, 51, 100, last]),
            ssh_port: 22,
        };
        [host("blue", 11), host("green", 12)]
    }

    /// `[traffic]` from `text`, against [`pair_hosts`], the pair's SSH
    /// port being 2222.
    fn run(text: &str) -> (Option<Traffic>, Vec<Diagnostic>) {
        let hosts = pair_hosts();
        check(text, |raw: &PairFile, src, sink| {
            traffic(
                raw.traffic.as_ref(),
                src,
                Path::new("/"),
                Some(&hosts),
                2222,
                sink,
            )
        })
    }

    fn validate(text: &str) -> (Option<Haproxy>, Vec<String>) {
        let (t, d) = run(text);
        let h = match t {
            Some(Traffic::Haproxy(h)) => Some(h),
            None => None,
            Some(other) => panic!("not haproxy: {other:?}"),
        };
        (h, messages(&d))
    }

    /// The required keys, lines 1 to 7.
    const MINIMAL: &str = "[traffic]\nmethod = \"haproxy\"\nhost = \"lb\"\naddress = \"198.51.100.40\"\nsocket = \"/run/haproxy/admin.sock\"\nbackend = \"web\"\nfrontend = \"198.51.100.40:80\"\n";

    /// [`MINIMAL`] with the line that starts `key =` replaced, where it
    /// is, by `key = value` (or removed when `value` is empty).
    fn with(key: &str, value: &str) -> String {
        let mut out = String::new();
        for l in MINIMAL.lines() {
            if !l.starts_with(&format!("{key} =")) {
                out.push_str(l);
                out.push('\n');
            } else if !value.is_empty() {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        out
    }

    /// The one diagnostic `text` gives, as `LINE:COLUMN: MESSAGE`, and
    /// its fix.
    fn refused(text: &str) -> (String, String) {
        let (t, d) = run(text);
        assert!(t.is_none(), "{text}: accepted");
        assert_eq!(d.len(), 1, "{text}: {d:#?}");
        (
            format!("{}:{}: {}", d[0].line, d[0].column, d[0].message),
            d[0].fix.clone(),
        )
    }

    #[test]
    fn the_required_keys_alone_give_every_default() {
        let (h, m) = validate(MINIMAL);
        assert!(m.is_empty(), "{m:?}");
        let h = h.expect("a balancer");
        assert_eq!(
            h.host,
            Host {
                name: "lb".to_string(),
                address: IpAddr::from([198, 51, 100, 40]),
                ssh_port: 2222,
            }
        );
        assert_eq!(h.socket, "/run/haproxy/admin.sock");
        assert_eq!(h.backend, "web");
        assert_eq!(
            h.frontend,
            "198.51.100.40:80".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(h.weight, 100);
        assert_eq!(h.drain_timeout, Duration::from_secs(30));
        assert_eq!(
            h.limits,
            Limits {
                max_error_increase: 1.0,
                max_latency_factor: 2.0,
                min_requests: 20
            }
        );
        assert_eq!(h.limits, Limits::default());
    }

    #[test]
    fn every_key_set_is_read_as_written() {
        let text = "[traffic]\nmethod = \"haproxy\"\nhost = \"lb-2\"\naddress = \"2001:db8::40\"\nssh_port = 2200\nsocket = \"/var/lib/haproxy/admin sock\"\nbackend = \"be_web.v2:x\"\nfrontend = \"[2001:db8::80]:8443\"\nweight = 256\ndrain_timeout = \"0s\"\nmax_error_increase = 0.5\nmax_latency_factor = 3\nmin_requests = 1000000\n";
        let (h, m) = validate(text);
        assert!(m.is_empty(), "{m:?}");
        let h = h.expect("a balancer");
        assert_eq!(
            h.host,
            Host {
                name: "lb-2".to_string(),
                address: "2001:db8::40".parse().expect("v6"),
                ssh_port: 2200,
            }
        );
        assert_eq!(h.socket, "/var/lib/haproxy/admin sock");
        assert_eq!(h.backend, "be_web.v2:x");
        assert_eq!(
            h.frontend,
            "[2001:db8::80]:8443".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!((h.weight, h.drain_timeout), (256, Duration::ZERO));
        // An integer is read where a number with a fraction is expected
        // (max_latency_factor = 3).
        assert_eq!(
            h.limits,
            Limits {
                max_error_increase: 0.5,
                max_latency_factor: 3.0,
                min_requests: 1_000_000
            }
        );
        // The other bounds are allowed too.
        let (h, m) = validate(&format!(
            "{MINIMAL}weight = 1\ndrain_timeout = \"1h\"\nmax_error_increase = 100\nmax_latency_factor = 1.0\nmin_requests = 1\n"
        ));
        assert!(m.is_empty(), "{m:?}");
        let h = h.expect("a balancer");
        assert_eq!((h.weight, h.drain_timeout), (1, Duration::from_secs(3600)));
        assert_eq!(
            h.limits,
            Limits {
                max_error_increase: 100.0,
                max_latency_factor: 1.0,
                min_requests: 1
            }
        );
        let (h, m) = validate(&format!("{MINIMAL}max_error_increase = -0.0\n"));
        assert!(m.is_empty(), "{m:?}");
        let e = h.expect("a balancer").limits.max_error_increase;
        assert!(e == 0.0 && e.is_sign_positive(), "{e}");
    }

    #[test]
    fn each_missing_key_is_named_with_an_example() {
        for (key, example) in [
            ("host", "\"lb\""),
            ("address", "\"192.0.2.40\""),
            ("socket", "\"/run/haproxy/admin.sock\""),
            ("backend", "\"web\""),
            ("frontend", "\"192.0.2.80:80\""),
        ] {
            let (m, f) = refused(&with(key, ""));
            assert_eq!(m, format!("1:1: traffic method `haproxy` needs `{key}`"));
            assert_eq!(f, format!("add `{key} = {example}` under [traffic]"));
        }
        // All of them at once: every one is reported.
        let (h, m) = validate("[traffic]\nmethod = \"haproxy\"\n");
        assert!(h.is_none());
        assert_eq!(m.len(), 5, "{m:?}");
    }

    #[test]
    fn each_bad_value_is_refused_at_its_key_with_a_fix() {
        let long = format!("\"/{}\"", "s".repeat(4096));
        let cases: &[(&str, &str, &str)] = &[
            // The balancer: a machine of its own.
            (
                "host",
                "\"blue\"",
                "3:8: the balancer `blue` has the name of host `blue` of the pair",
            ),
            (
                "host",
                "\"Green\"",
                "3:8: the balancer `Green` has the name of host `green` of the pair",
            ),
            ("host", "\"l b\"", "3:8: `l b` is not a valid host name"),
            (
                "host",
                "\"lb.example\"",
                "3:8: `lb.example` is not a valid host name",
            ),
            (
                "address",
                "\"198.51.100.12\"",
                "4:11: the balancer's address 198.51.100.12 is host `green`'s own address",
            ),
            (
                "address",
                "\"198.51.100.40/24\"",
                "4:11: `198.51.100.40/24` is not an IP address",
            ),
            (
                "address",
                "\"lb.example\"",
                "4:11: `lb.example` is not an IP address",
            ),
            (
                "address",
                "\"::ffff:198.51.100.40\"",
                "4:11: `::ffff:198.51.100.40` is an IPv4 address written as IPv6",
            ),
            // The admin socket.
            ("socket", "\"\"", "5:10: `socket` is empty"),
            (
                "socket",
                "\"run/haproxy/admin.sock\"",
                "5:10: `run/haproxy/admin.sock` is not an absolute path",
            ),
            (
                "socket",
                "\"/run/admin.sock\\n\"",
                "5:10: the socket path `/run/admin.sock\\n` holds a control character",
            ),
            (
                "socket",
                "\"/run/a\\u0000b\"",
                "5:10: the socket path `/run/a\\u{0}b` holds a control character",
            ),
            (
                "socket",
                long.as_str(),
                "5:10: the socket path is 4097 bytes long",
            ),
            // The backend.
            ("backend", "\"\"", "6:11: `backend` is empty"),
            (
                "backend",
                "\"web/1\"",
                "6:11: `web/1` is not a valid HAProxy backend name",
            ),
            (
                "backend",
                "\"web 1\"",
                "6:11: `web 1` is not a valid HAProxy backend name",
            ),
            (
                "backend",
                "\"wéb\"",
                "6:11: `wéb` is not a valid HAProxy backend name",
            ),
            // The frontend.
            (
                "frontend",
                "\"198.51.100.40\"",
                "7:12: the frontend `198.51.100.40` has no port",
            ),
            (
                "frontend",
                "\"198.51.100.40/24\"",
                "7:12: `198.51.100.40/24` is not an address with a port",
            ),
            (
                "frontend",
                "\"lb.example:80\"",
                "7:12: `lb.example:80` is not an address with a port",
            ),
            (
                "frontend",
                "\"198.51.100.40:0\"",
                "7:12: the frontend `198.51.100.40:0` has port 0",
            ),
            (
                "frontend",
                "\"198.51.100.40:65536\"",
                "7:12: `198.51.100.40:65536` is not an address with a port",
            ),
            (
                "frontend",
                "\"0.0.0.0:80\"",
                "7:12: 0.0.0.0 cannot be a service address",
            ),
            (
                "frontend",
                "\"127.0.0.1:80\"",
                "7:12: 127.0.0.1 cannot be a service address",
            ),
            (
                "frontend",
                "\"[::ffff:198.51.100.80]:80\"",
                "7:12: `[::ffff:198.51.100.80]:80` is an IPv4 address written as IPv6",
            ),
            (
                "frontend",
                "\"198.51.100.11:80\"",
                "7:12: the frontend 198.51.100.11:80 is on host `blue`'s own address",
            ),
        ];
        for (key, value, want) in cases {
            let (m, f) = refused(&with(key, value));
            assert_eq!(m, *want, "{key}");
            assert!(!f.is_empty(), "{key}");
        }
        // A bare address's fix gives it with a port, of its own family.
        let (_, f) = refused(&with("frontend", "\"198.18.0.40\""));
        assert_eq!(f, "write it with its port, like \"198.18.0.40:80\"");
        let (_, f) = refused(&with("frontend", "\"2001:db8::80\""));
        assert_eq!(f, "write it with its port, like \"[2001:db8::80]:80\"");
        let (_, f) = refused(&with("frontend", "\"[::ffff:198.51.100.80]:8080\""));
        assert_eq!(f, "write the IPv4 address itself: \"198.51.100.80:8080\"");
    }

    #[test]
    fn numbers_out_of_their_range_are_refused() {
        let cases: &[(&str, &str)] = &[
            ("weight = 0", "8:10: weight 0 is out of range"),
            ("weight = 257", "8:10: weight 257 is out of range"),
            ("ssh_port = 0", "8:12: ssh_port 0 is not a port"),
            (
                "drain_timeout = \"61m\"",
                "8:17: drain_timeout 1h 1m is out of range",
            ),
            (
                "max_error_increase = 100.5",
                "8:22: max_error_increase 100.5 is out of range",
            ),
            (
                "max_error_increase = -1",
                "8:22: max_error_increase -1 is out of range",
            ),
            (
                "max_error_increase = nan",
                "8:22: max_error_increase NaN is out of range",
            ),
            (
                "max_latency_factor = 0.5",
                "8:22: max_latency_factor 0.5 is out of range",
            ),
            (
                "max_latency_factor = 101",
                "8:22: max_latency_factor 101 is out of range",
            ),
            (
                "max_latency_factor = inf",
                "8:22: max_latency_factor inf is out of range",
            ),
            ("min_requests = 0", "8:16: min_requests 0 is out of range"),
            (
                "min_requests = 1000001",
                "8:16: min_requests 1000001 is out of range",
            ),
        ];
        for (line, want) in cases {
            let (m, f) = refused(&format!("{MINIMAL}{line}\n"));
            assert_eq!(m, *want, "{line}");
            assert!(!f.is_empty(), "{line}");
        }
        // Every one of them at once, and nothing else.
        let (h, m) = validate(&format!(
            "{MINIMAL}weight = 300\ndrain_timeout = \"2h\"\nmax_error_increase = 101\nmax_latency_factor = 0.5\nmin_requests = 0\n"
        ));
        assert!(h.is_none());
        assert_eq!(m.len(), 5, "{m:?}");
        // A number of the wrong kind is the parse's refusal, with its own
        // fix, and only that (the refused key is left out, and the pair,
        // not this part, refuses a file with a refusal).
        let (_, d) = run(&format!("{MINIMAL}weight = 100.0\n"));
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!((d[0].line, d[0].column), (8, 10));
        assert!(d[0].message.contains("floating point"), "{}", d[0].message);
        assert_eq!(
            d[0].fix,
            "write a whole number, without a decimal point or exponent"
        );
    }

    #[test]
    fn keys_of_other_methods_do_not_apply_and_its_own_do_not_apply_elsewhere() {
        let (m, f) = refused(&format!("{MINIMAL}interface = \"eth0\"\n"));
        assert_eq!(
            m,
            "8:13: `interface` does not apply to traffic method `haproxy`"
        );
        assert_eq!(f, "remove it; method `haproxy` takes: host, address, ssh_port, socket, backend, frontend, weight, drain_timeout, max_error_increase, max_latency_factor, min_requests");
        let (m, _) = refused("[traffic]\nmethod = \"vip\"\naddress = \"198.51.100.100/24\"\ninterface = \"eth0\"\nbackend = \"web\"\n");
        assert_eq!(m, "5:11: `backend` does not apply to traffic method `vip`");
        let (m, _) = refused(
            "[traffic]\nmethod = \"command\"\nswitch = \"s\"\nquery = \"q\"\nweight = 100\n",
        );
        assert_eq!(
            m,
            "5:10: `weight` does not apply to traffic method `command`"
        );
    }

    #[test]
    fn the_unknown_and_missing_method_messages_name_haproxy() {
        let (_, f) = refused("[traffic]\nmethod = \"balancer\"\n");
        assert!(f.contains("\"haproxy\""), "{f}");
        let (_, f) = refused("[traffic]\nhost = \"lb\"\n");
        assert!(f.contains("\"haproxy\""), "{f}");
        let (_, f) = refused("canary = true\n");
        assert!(f.contains("\"haproxy\""), "{f}");
    }

    #[test]
    fn without_valid_hosts_the_balancer_is_still_read() {
        let (t, d) = check(MINIMAL, |raw: &PairFile, src, sink| {
            traffic(raw.traffic.as_ref(), src, Path::new("/"), None, 22, sink)
        });
        assert!(d.is_empty(), "{d:#?}");
        let Some(Traffic::Haproxy(h)) = t else {
            panic!("a balancer: {t:?}")
        };
        assert_eq!(h.host.ssh_port, 22);
    }
}
