//! How each host is reached over SSH, when that is more than its address:
//! jump hosts (`jump = "user@bastion:port"`, a chain of two at most, on a
//! host, under a pair's `[ssh]` or baton.toml's) and, opt-in, an OpenSSH
//! client configuration (`[ssh] config = "~/.ssh/config"`) whose `Host`
//! blocks, looked up by the host's name as `ssh NAME` would, give
//! `HostName`, `User`, `Port`, `IdentityFile` and `ProxyJump`. baton's own
//! settings win over the OpenSSH file, key by key; the file fills only what
//! baton's leave unset. The result is each host's `Route`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ssh2_config::{ParseRule, SshConfig};

use crate::config::diag::{Key, Source};
use crate::config::{Host, Jump, Route};

use super::paths::{resolve, shown};
use super::Sink;

use Key::Name as N;

/// At most this many jump hosts in a chain.
pub(super) const MAX_HOPS: usize = 2;

/// Why a `jump` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JumpError {
    #[error("it names no jump host")]
    Empty,
    #[error("it names {0} jump hosts; at most {MAX_HOPS} are allowed")]
    TooMany(usize),
    #[error("`{0}` is not a valid login name")]
    User(String),
    #[error("`{0}` is not a host name or an IP address")]
    Host(String),
    #[error("`{0}` is not a port (1-65535)")]
    Port(String),
    #[error("`{0}`: an IPv6 address goes in brackets, like [2001:db8::1]:22")]
    Bracket(String),
}

/// Reads a `jump` value: `[user@]host[:port]`, comma-separated (OpenSSH's
/// `-J` form; an IPv6 address in brackets), or `none`.
pub(crate) fn parse_jump(text: &str) -> Result<Vec<Jump>, JumpError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    if text.is_empty() {
        return Err(JumpError::Empty);
    }
    let hops: Vec<&str> = text.split(',').map(str::trim).collect();
    if hops.len() > MAX_HOPS {
        return Err(JumpError::TooMany(hops.len()));
    }
    hops.into_iter().map(parse_hop).collect()
}

fn parse_hop(hop: &str) -> Result<Jump, JumpError> {
    if hop.is_empty() {
        return Err(JumpError::Empty);
    }
    let (user, rest) = match hop.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, hop),
    };
    if let Some(u) = user {
        if u.is_empty() || u.contains(|c: char| c.is_whitespace() || c.is_control() || c == '@') {
            return Err(JumpError::User(u.to_string()));
        }
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| JumpError::Host(rest.to_string()))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| JumpError::Host(rest.to_string()))?,
                ),
            ),
        }
    } else if rest.matches(':').count() > 1 {
        return Err(JumpError::Bracket(rest.to_string()));
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if !valid_host(host) {
        return Err(JumpError::Host(host.to_string()));
    }
    let port = match port {
        None => 22,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => n,
            _ => return Err(JumpError::Port(p.to_string())),
        },
    };
    Ok(Jump {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
    })
}

/// Whether a hop names its port (`host:22`, `[v6]:22`).
fn has_port(hop: &str) -> bool {
    let rest = hop.rsplit_once('@').map_or(hop, |(_, r)| r);
    match rest.strip_prefix('[') {
        Some(inner) => inner.split_once("]:").is_some(),
        None => rest.contains(':'),
    }
}

/// An IP address, or a DNS name of letters, digits, `-` and `.`.
fn valid_host(h: &str) -> bool {
    h.parse::<IpAddr>().is_ok()
        || (!h.is_empty()
            && h.len() <= 253
            && !h.starts_with(['-', '.'])
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
}

/// Which SSH keys baton's own files set for a pair (they win over the
/// OpenSSH configuration).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Given {
    pub user: bool,
    pub port: bool,
    pub identity: bool,
    pub jump: bool,
}

/// An OpenSSH client configuration, read and parsed, with its path.
pub(super) struct OpenSsh {
    pub path: PathBuf,
    pub config: SshConfig,
}

/// Reads `[ssh] config` (resolved against `base`); a problem is reported
/// at the key.
pub(super) fn read_openssh(
    value: &str,
    base: &Path,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
) -> Option<OpenSsh> {
    let path = resolve(base, value);
    let at = [N("ssh"), N("config")];
    let fix = "point `config` at a readable OpenSSH client configuration (like \"~/.ssh/config\"), or remove it";
    let text = match crate::io::readfile::text(&path, crate::io::readfile::CONFIG) {
        Ok(t) => t,
        Err(e) => {
            sink.push(src.at(
                &at,
                format!(
                    "cannot read the OpenSSH configuration {}: {e}",
                    shown(&path)
                ),
                fix,
            ));
            return None;
        }
    };
    let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
    match SshConfig::default().parse(&mut text.as_bytes(), rules) {
        Ok(config) => Some(OpenSsh { path, config }),
        Err(e) => {
            sink.push(src.at(
                &at,
                format!(
                    "the OpenSSH configuration {} cannot be read: {e}",
                    shown(&path)
                ),
                "fix that file (`ssh -G HOST` shows how OpenSSH reads it), or remove `config`",
            ));
            None
        }
    }
}

/// Each host's route: its own `jump` first, then what the OpenSSH
/// configuration says for its name where baton's files leave a key unset.
/// Each host comes with its own `jump` and whether it sets its own
/// `ssh_port`; without a login user in baton's files, every host must get
/// `User` from the OpenSSH file.
pub(super) fn routes(
    hosts: &[(Host, Option<&str>, bool)],
    openssh: Option<&OpenSsh>,
    given: Given,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
) -> BTreeMap<String, Route> {
    let mut out = BTreeMap::new();
    for (host, own_jump, own_port) in hosts {
        let mut route = Route::default();
        if let Some(text) = own_jump {
            match parse_jump(text) {
                Ok(j) => {
                    route.jump = Some(j);
                    route.from.push(format!("[hosts.{}] jump", host.name));
                }
                Err(e) => sink.push(src.at(
                    &[N("hosts"), N(&host.name), N("jump")],
                    format!("jump `{text}`: {e}"),
                    "write `jump = \"user@bastion:22\"` (two jump hosts: \"user@a:22,user@b:22\"; \"none\": connect directly)",
                )),
            }
        }
        if let Some(o) = openssh {
            let p = o.config.query(&host.name);
            let mut used = false;
            // baton connects to the host's own address, where its checks and
            // its traffic go: a HostName elsewhere (a block meant for a
            // host of the same name in another pair, say) would run the
            // pair's commands on another machine.
            if let Some(h) = p.host_name.filter(|h| h != &host.name) {
                if h.parse::<IpAddr>().ok() != Some(host.address) {
                    sink.push(src.at(
                        &[N("hosts"), N(&host.name), N("address")],
                        format!(
                            "`HostName {h}` for Host {} in {} is not the host's address {}",
                            host.name,
                            shown(&o.path),
                            host.address
                        ),
                        "baton connects to the host's own address (its checks and traffic go there too): make the two agree, or rename the Host block",
                    ));
                }
            }
            if !given.user {
                if let Some(u) = p.user {
                    route.user = Some(u);
                    used = true;
                }
            }
            if !given.port && !own_port {
                if let Some(port) = p.port {
                    route.port = Some(port);
                    used = true;
                }
            }
            if !given.identity {
                if let Some(i) = p.identity_file.and_then(|v| v.into_iter().next()) {
                    route.identity = Some(i);
                    used = true;
                }
            }
            if route.jump.is_none() && !given.jump {
                if let Some(hops) = p.proxy_jump {
                    match proxy_jump(&hops, &o.config) {
                        Ok(j) => {
                            route.jump = Some(j);
                            used = true;
                        }
                        Err(e) => sink.push(src.at(
                            &[N("ssh"), N("config")],
                            format!(
                                "ProxyJump for Host {} in {}: {e}",
                                host.name,
                                shown(&o.path)
                            ),
                            "fix the ProxyJump line there, or set `jump` for this host in the pair file",
                        )),
                    }
                }
            }
            if used {
                route
                    .from
                    .push(format!("{} Host {}", shown(&o.path), host.name));
            }
        }
        if !given.user && route.user.is_none() {
            sink.push(src.at(
                &[N("hosts"), N(&host.name)],
                format!("no SSH user is set for host `{}`", host.name),
                format!(
                    "set `user = \"deploy\"` under [ssh], or `User` in a `Host {}` block of the OpenSSH configuration",
                    host.name
                ),
            ));
        }
        if route != Route::default() {
            out.insert(host.name.clone(), route);
        }
    }
    out
}

/// A `ProxyJump` line's hops, each looked up in the same file as OpenSSH
/// does (its `HostName`, `User`, `Port`).
fn proxy_jump(hops: &[String], config: &SshConfig) -> Result<Vec<Jump>, JumpError> {
    let mut jumps = parse_jump(&hops.join(","))?;
    let written: Vec<bool> = hops
        .join(",")
        .split(',')
        .map(|h| has_port(h.trim()))
        .collect();
    for (j, port_written) in jumps.iter_mut().zip(written) {
        let p = config.query(&j.host);
        if let Some(h) = p.host_name.filter(|h| valid_host(h)) {
            j.host = h;
        }
        if j.user.is_none() {
            j.user = p.user;
        }
        if let Some(port) = p.port.filter(|_| !port_written) {
            j.port = port;
        }
    }
    Ok(jumps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(user: Option<&str>, host: &str, port: u16) -> Jump {
        Jump {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn jump_values_are_read_as_openssh_writes_them() {
        assert_eq!(
            parse_jump("ops@bastion.example:2222").unwrap(),
            [hop(Some("ops"), "bastion.example", 2222)]
        );
        assert_eq!(
            parse_jump("198.18.0.60, a@[2001:db8::1]:22").unwrap(),
            [
                hop(None, "198.18.0.60", 22),
                hop(Some("a"), "2001:db8::1", 22)
            ]
        );
        assert_eq!(
            parse_jump("[2001:db8::1]").unwrap(),
            [hop(None, "2001:db8::1", 22)]
        );
        assert_eq!(parse_jump("none").unwrap(), []);
        assert_eq!(
            hop(Some("a"), "2001:db8::1", 22).to_string(),
            "a@[2001:db8::1]:22"
        );
    }

    #[test]
    fn bad_jump_values_say_what_is_wrong() {
        assert_eq!(parse_jump(""), Err(JumpError::Empty));
        assert_eq!(parse_jump("a,b,c"), Err(JumpError::TooMany(3)));
        assert_eq!(parse_jump("a,"), Err(JumpError::Empty));
        assert_eq!(parse_jump("@b"), Err(JumpError::User(String::new())));
        assert_eq!(parse_jump("b:0"), Err(JumpError::Port("0".into())));
        assert_eq!(parse_jump("b:ssh"), Err(JumpError::Port("ssh".into())));
        assert_eq!(parse_jump("b c"), Err(JumpError::Host("b c".into())));
        assert_eq!(parse_jump("[::1"), Err(JumpError::Host("[::1".into())));
        assert_eq!(parse_jump("b:+22"), Err(JumpError::Port("+22".into())));
        assert_eq!(
            parse_jump("a@2001:db8::1"),
            Err(JumpError::Bracket("2001:db8::1".into()))
        );
        assert_eq!(
            parse_jump("x;rm -rf /"),
            Err(JumpError::Host("x;rm -rf /".into()))
        );
    }

    fn openssh(text: &str) -> OpenSsh {
        let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        OpenSsh {
            path: "/home/op/.ssh/config".into(),
            config: SshConfig::default()
                .parse(&mut text.as_bytes(), rules)
                .unwrap(),
        }
    }

    fn host(name: &str) -> Host {
        Host {
            name: name.into(),
            address: "192.0.2.10".parse().unwrap(),
            ssh_port: 22,
        }
    }

    fn run(
        hosts: &[(Host, Option<&str>, bool)],
        o: Option<&OpenSsh>,
        given: Given,
    ) -> (BTreeMap<String, Route>, Vec<String>) {
        let path = Path::new("/etc/baton/pairs/db.toml");
        let src = Source::new(path, "");
        let mut problems = Vec::new();
        let mut sink = Sink {
            pairs: vec![],
            problems: &mut problems,
        };
        let r = routes(hosts, o, given, &src, &mut sink);
        let m = problems
            .iter()
            .map(|p| p.diagnostic.message.clone())
            .collect();
        (r, m)
    }

    #[test]
    fn the_openssh_file_fills_what_batons_files_leave_unset() {
        let o = openssh(
            "Host db1\n  HostName 192.0.2.10\n  User ops\n  Port 2200\n  IdentityFile /k/db\n  ProxyJump gate,other:22\n\nHost gate\n  HostName 192.0.2.60\n  User jumper\n  Port 2222\n\nHost other\n  Port 2022\n\nHost *\n  User nobody\n  ServerAliveInterval 30\n",
        );
        let given = Given {
            user: false,
            ..Given::default()
        };
        let (r, m) = run(
            &[(host("db1"), None, false), (host("db2"), None, false)],
            Some(&o),
            given,
        );
        assert!(m.is_empty(), "{m:?}");
        let db1 = &r["db1"];
        assert_eq!(db1.user.as_deref(), Some("ops"));
        assert_eq!(db1.port, Some(2200));
        assert_eq!(db1.identity, Some(PathBuf::from("/k/db")));
        // A port written in ProxyJump wins over the hop's own Port.
        assert_eq!(
            db1.jump,
            Some(vec![
                hop(Some("jumper"), "192.0.2.60", 2222),
                hop(Some("nobody"), "other", 22)
            ])
        );
        assert_eq!(db1.from, ["/home/op/.ssh/config Host db1"]);
        // `Host *` gives db2 its user alone.
        assert_eq!(r["db2"].user.as_deref(), Some("nobody"));
        assert_eq!(r["db2"].jump, None);
    }

    #[test]
    fn batons_own_settings_win_and_a_hosts_jump_comes_first() {
        let o = openssh("Host db1\n  User ops\n  Port 2200\n  ProxyJump gate\n");
        let given = Given {
            user: true,
            port: true,
            identity: false,
            jump: false,
        };
        let (r, m) = run(
            &[(host("db1"), Some("a@198.18.0.60"), false)],
            Some(&o),
            given,
        );
        assert!(m.is_empty(), "{m:?}");
        let db1 = &r["db1"];
        assert_eq!((db1.user.as_deref(), db1.port), (None, None));
        assert_eq!(db1.jump, Some(vec![hop(Some("a"), "198.18.0.60", 22)]));
        assert_eq!(db1.from, ["[hosts.db1] jump"]);
    }

    #[test]
    fn a_host_name_elsewhere_than_the_hosts_address_is_refused() {
        let o = openssh("Host blue\n  HostName 10.0.0.5\n");
        let given = Given {
            user: true,
            ..Given::default()
        };
        let (_, m) = run(&[(host("blue"), None, false)], Some(&o), given);
        assert_eq!(
            m,
            ["`HostName 10.0.0.5` for Host blue in /home/op/.ssh/config is not the host's address 192.0.2.10"]
        );
    }

    #[test]
    fn a_host_without_a_user_anywhere_and_a_bad_jump_are_refused() {
        let o = openssh("Host other\n  User ops\n");
        let (_, m) = run(
            &[(host("db1"), Some("a,b,c"), false)],
            Some(&o),
            Given::default(),
        );
        assert_eq!(
            m,
            [
                "jump `a,b,c`: it names 3 jump hosts; at most 2 are allowed",
                "no SSH user is set for host `db1`"
            ]
        );
    }
}
