//! Who holds traffic: the one classifier of what the hosts, the
//! authoritative DNS servers or the query hook say. `status` and preflight
//! (through `core::assess`), the switch's compare and confirmation, and
//! recover (through `traffic::holder`) all ask it. It also names its
//! doubts (a host that could not be asked, a server that did not answer,
//! an address that is neither host's): `status` reports them as findings,
//! while a run that is about to act treats any doubt as "unclear"
//! (`Classified::certain`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

/// Who holds traffic in reality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Holder {
    /// Exactly this host.
    Host(String),
    /// Both hosts (split brain).
    Both,
    /// Neither host.
    Neither,
    /// The sources disagree or could not be asked.
    Unknown(Unknown),
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Host(h) => write!(f, "on {h}"),
            Holder::Both => f.write_str("on both hosts"),
            Holder::Neither => f.write_str("on neither host"),
            Holder::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

/// Why it cannot be told who holds traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// Neither host could be asked about the VIP, or one could not and the
    /// other does not hold it.
    VipUnasked,
    /// The authoritative servers give different answers.
    Disagree,
    /// No authoritative server answered.
    NoAnswer,
    /// The query hook failed.
    HookFailed(String),
    /// The query hook named something that is neither host.
    HookNamed(String),
    /// It looked clear, but with a doubt (a run acting on it needs
    /// certainty).
    Doubt(Doubt),
    /// The balancer's statistics could not be read.
    BalancerUnasked(String),
    /// The balancer's backend has no server named after a host.
    NoServer {
        /// The backend.
        backend: String,
        /// The host (and server) name.
        server: String,
    },
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::VipUnasked => f.write_str("neither host could be asked whether it holds the virtual IP, or one could not and the other does not hold it"),
            Unknown::Disagree => f.write_str("the authoritative servers disagree"),
            Unknown::NoAnswer => f.write_str("no authoritative server answered"),
            Unknown::HookFailed(e) => write!(f, "the query hook failed: {e}"),
            Unknown::HookNamed(s) => write!(f, "the query hook answered `{s}`, which is neither host"),
            Unknown::Doubt(d) => d.fmt(f),
            Unknown::BalancerUnasked(e) => write!(f, "the balancer could not be asked: {e}"),
            Unknown::NoServer { backend, server } => write!(
                f,
                "the balancer's backend `{backend}` has no server `{server}` (name its servers after the pair's hosts)"
            ),
        }
    }
}

impl Serialize for Unknown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// What leaves a classification in doubt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doubt {
    /// One host holds the VIP; the other could not be asked.
    Unconfirmed {
        /// The host that could not be asked.
        host: String,
    },
    /// An authoritative server gave no answer.
    Silent {
        /// The server.
        server: SocketAddr,
        /// Why.
        why: String,
    },
    /// The record points at addresses that are neither host's.
    Foreign(Vec<IpAddr>),
}

impl fmt::Display for Doubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doubt::Unconfirmed { host } => write!(
                f,
                "cannot confirm that {host} does not also hold the virtual IP"
            ),
            Doubt::Silent { server, why } => {
                write!(f, "authoritative server {server} gave no answer: {why}")
            }
            Doubt::Foreign(a) => write!(
                f,
                "the record also points at {}, which is neither host",
                list(a)
            ),
        }
    }
}

/// The query hook failed: why, in a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookFailed(pub String);

/// What one host said of the VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSays {
    /// Its name.
    pub name: String,
    /// Its own address.
    pub address: Option<IpAddr>,
    /// Whether it holds the VIP (`None`: it could not be asked).
    pub holds_vip: Option<bool>,
}

/// What the switch's source of truth said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Says<'a> {
    /// A VIP: the hosts themselves.
    Vip,
    /// DNS: each server's addresses, or why it gave none.
    Dns(&'a [(SocketAddr, Result<Vec<IpAddr>, String>)]),
    /// The query hook's answer, or its failure.
    Hook(&'a Result<String, HookFailed>),
    /// A balancer: its servers' statistics (or why they could not be
    /// read), of which the servers of `backend` named after the hosts
    /// count. The holder is the server that takes new requests (weight
    /// above 0 and up).
    Balancer {
        /// The pair's backend.
        backend: &'a str,
        /// `show stat`, read.
        stats: &'a Result<Vec<crate::core::balancer::ServerStat>, String>,
    },
}

/// A classification with its doubts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// Who holds traffic, as far as can be told.
    pub holder: Holder,
    /// What leaves it in doubt.
    pub doubts: Vec<Doubt>,
    /// For DNS servers that disagree: what each said.
    pub disagreement: Vec<(SocketAddr, Vec<IpAddr>)>,
}

impl Classified {
    /// The holder when there is no doubt at all, else unknown: what a run
    /// about to act on it may rely on.
    pub fn certain(&self) -> Holder {
        match self.doubts.first() {
            None => self.holder.clone(),
            Some(d) => Holder::Unknown(Unknown::Doubt(d.clone())),
        }
    }
}

/// Classifies what the hosts and the switch's source said.
pub fn classify(hosts: &[HostSays; 2], says: &Says<'_>) -> Classified {
    let [a, b] = hosts;
    let mut doubts = Vec::new();
    let mut disagreement = Vec::new();
    let holder = match says {
        Says::Vip => match (a.holds_vip, b.holds_vip) {
            (Some(true), Some(true)) => Holder::Both,
            (Some(false), Some(false)) => Holder::Neither,
            (Some(true), Some(false)) => Holder::Host(a.name.clone()),
            (Some(false), Some(true)) => Holder::Host(b.name.clone()),
            (Some(true), None) => {
                doubts.push(Doubt::Unconfirmed {
                    host: b.name.clone(),
                });
                Holder::Host(a.name.clone())
            }
            (None, Some(true)) => {
                doubts.push(Doubt::Unconfirmed {
                    host: a.name.clone(),
                });
                Holder::Host(b.name.clone())
            }
            _ => Holder::Unknown(Unknown::VipUnasked),
        },
        Says::Dns(answers) => {
            let mut distinct: Vec<&Vec<IpAddr>> = Vec::new();
            for (server, answer) in answers.iter() {
                match answer {
                    Err(e) => doubts.push(Doubt::Silent {
                        server: *server,
                        why: e.clone(),
                    }),
                    Ok(addrs) if !distinct.contains(&addrs) => distinct.push(addrs),
                    Ok(_) => {}
                }
            }
            match distinct.as_slice() {
                [] => Holder::Unknown(Unknown::NoAnswer),
                [addrs] => {
                    let on = |h: &HostSays| h.address.is_some_and(|x| addrs.contains(&x));
                    let foreign: Vec<IpAddr> = addrs
                        .iter()
                        .copied()
                        .filter(|x| Some(*x) != a.address && Some(*x) != b.address)
                        .collect();
                    if !foreign.is_empty() {
                        doubts.push(Doubt::Foreign(foreign));
                    }
                    match (on(a), on(b)) {
                        (true, true) => Holder::Both,
                        (false, false) => Holder::Neither,
                        (true, false) => Holder::Host(a.name.clone()),
                        (false, true) => Holder::Host(b.name.clone()),
                    }
                }
                _ => {
                    disagreement = answers
                        .iter()
                        .filter_map(|(s, r)| r.as_ref().ok().map(|v| (*s, v.clone())))
                        .collect();
                    Holder::Unknown(Unknown::Disagree)
                }
            }
        }
        Says::Balancer { backend, stats } => match stats {
            Err(e) => Holder::Unknown(Unknown::BalancerUnasked(e.clone())),
            Ok(stats) => {
                let serving = |h: &HostSays| {
                    crate::core::balancer::find(stats, backend, &h.name).map(|s| s.serving())
                };
                match (serving(a), serving(b)) {
                    (Err(_), _) => Holder::Unknown(Unknown::NoServer {
                        backend: backend.to_string(),
                        server: a.name.clone(),
                    }),
                    (_, Err(_)) => Holder::Unknown(Unknown::NoServer {
                        backend: backend.to_string(),
                        server: b.name.clone(),
                    }),
                    (Ok(true), Ok(true)) => Holder::Both,
                    (Ok(false), Ok(false)) => Holder::Neither,
                    (Ok(true), Ok(false)) => Holder::Host(a.name.clone()),
                    (Ok(false), Ok(true)) => Holder::Host(b.name.clone()),
                }
            }
        },
        Says::Hook(answer) => match answer {
            Err(e) => Holder::Unknown(Unknown::HookFailed(e.0.clone())),
            Ok(s) => {
                let s = s.trim();
                match hosts
                    .iter()
                    .find(|h| h.name == s || h.address.is_some_and(|a| a.to_string() == s))
                {
                    Some(h) => Holder::Host(h.name.clone()),
                    None => Holder::Unknown(Unknown::HookNamed(s.to_string())),
                }
            }
        },
    };
    Classified {
        holder,
        doubts,
        disagreement,
    }
}

/// Addresses as a comma-separated list (`nothing` for none).
pub fn list(a: &[IpAddr]) -> String {
    if a.is_empty() {
        return "nothing".to_string();
    }
    a.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, address: &str, holds: Option<bool>) -> HostSays {
        HostSays {
            name: name.into(),
            address: Some(address.parse().unwrap()),
            holds_vip: holds,
        }
    }

    fn hosts(a: Option<bool>, b: Option<bool>) -> [HostSays; 2] {
        [host("blue", "10.0.0.1", a), host("green", "10.0.0.2", b)]
    }

    #[test]
    fn a_balancer_is_held_by_the_one_server_taking_new_requests() {
        use crate::core::balancer::ServerStat;
        let server = |name: &str, status: &str, weight: u32| ServerStat {
            backend: "web".into(),
            server: name.into(),
            status: status.into(),
            weight,
            sessions: 0,
            requests: 0,
            errors: 0,
            response_ms: None,
            response_max_ms: None,
        };
        let says = |stats: &Result<Vec<ServerStat>, String>| {
            classify(
                &hosts(None, None),
                &Says::Balancer {
                    backend: "web",
                    stats,
                },
            )
            .certain()
        };
        let ok = |a: ServerStat, b: ServerStat| Ok(vec![a, b]);
        assert_eq!(
            says(&ok(server("blue", "UP", 100), server("green", "UP", 0))),
            Holder::Host("blue".into())
        );
        assert_eq!(
            says(&ok(
                server("blue", "DRAIN", 100),
                server("green", "UP", 100)
            )),
            Holder::Host("green".into())
        );
        assert_eq!(
            says(&ok(server("blue", "UP", 10), server("green", "UP 1/2", 90))),
            Holder::Both
        );
        assert_eq!(
            says(&ok(
                server("blue", "MAINT", 100),
                server("green", "DOWN", 100)
            )),
            Holder::Neither
        );
        let other_backend = ServerStat {
            backend: "api".into(),
            ..server("green", "UP", 0)
        };
        assert_eq!(
            says(&ok(server("blue", "UP", 100), other_backend)),
            Holder::Unknown(Unknown::NoServer {
                backend: "web".into(),
                server: "green".into()
            })
        );
        assert!(matches!(
            says(&Err("connection refused".into())),
            Holder::Unknown(Unknown::BalancerUnasked(_))
        ));
    }

    #[test]
    fn a_vip_is_held_by_whoever_has_it() {
        let c = classify(&hosts(Some(true), Some(false)), &Says::Vip);
        assert_eq!(c.certain(), Holder::Host("blue".into()));
        let c = classify(&hosts(Some(false), Some(true)), &Says::Vip);
        assert_eq!(c.certain(), Holder::Host("green".into()));
        assert_eq!(
            classify(&hosts(Some(true), Some(true)), &Says::Vip).certain(),
            Holder::Both
        );
        assert_eq!(
            classify(&hosts(Some(false), Some(false)), &Says::Vip).certain(),
            Holder::Neither
        );
        assert_eq!(
            classify(&hosts(None, Some(false)), &Says::Vip).holder,
            Holder::Unknown(Unknown::VipUnasked)
        );
    }

    #[test]
    fn a_host_that_cannot_be_asked_leaves_the_other_holder_in_doubt() {
        let c = classify(&hosts(Some(true), None), &Says::Vip);
        // status shows blue, with a finding...
        assert_eq!(c.holder, Holder::Host("blue".into()));
        assert_eq!(
            c.doubts,
            vec![Doubt::Unconfirmed {
                host: "green".into()
            }]
        );
        // ...while a run about to act must not rely on it.
        assert!(matches!(c.certain(), Holder::Unknown(Unknown::Doubt(_))));
    }

    #[test]
    fn dns_servers_that_disagree_are_typed_not_worded() {
        let s1: SocketAddr = "10.0.0.53:53".parse().unwrap();
        let s2: SocketAddr = "10.0.0.54:53".parse().unwrap();
        let answers = vec![
            (s1, Ok(vec!["10.0.0.1".parse().unwrap()])),
            (s2, Ok(vec!["10.0.0.2".parse().unwrap()])),
        ];
        let c = classify(&hosts(None, None), &Says::Dns(&answers));
        assert_eq!(c.holder, Holder::Unknown(Unknown::Disagree));
        assert_eq!(c.disagreement.len(), 2);
    }

    #[test]
    fn a_silent_server_or_a_foreign_address_is_a_doubt() {
        let s1: SocketAddr = "10.0.0.53:53".parse().unwrap();
        let s2: SocketAddr = "10.0.0.54:53".parse().unwrap();
        let answers = vec![
            (s1, Ok(vec!["10.0.0.2".parse().unwrap()])),
            (s2, Err("timeout".to_string())),
        ];
        let c = classify(&hosts(None, None), &Says::Dns(&answers));
        assert_eq!(c.holder, Holder::Host("green".into()));
        assert!(matches!(
            c.certain(),
            Holder::Unknown(Unknown::Doubt(Doubt::Silent { .. }))
        ));
        let answers = vec![(
            s1,
            Ok(vec![
                "10.0.0.2".parse().unwrap(),
                "10.9.9.9".parse().unwrap(),
            ]),
        )];
        let c = classify(&hosts(None, None), &Says::Dns(&answers));
        assert_eq!(c.holder, Holder::Host("green".into()));
        assert_eq!(
            c.doubts,
            vec![Doubt::Foreign(vec!["10.9.9.9".parse().unwrap()])]
        );
        let answers = vec![(s1, Ok(vec![]))];
        assert_eq!(
            classify(&hosts(None, None), &Says::Dns(&answers)).certain(),
            Holder::Neither
        );
        let answers: Vec<(SocketAddr, Result<Vec<IpAddr>, String>)> =
            vec![(s1, Err("refused".into()))];
        assert_eq!(
            classify(&hosts(None, None), &Says::Dns(&answers)).holder,
            Holder::Unknown(Unknown::NoAnswer)
        );
    }

    #[test]
    fn the_query_hook_names_a_host_by_name_or_address() {
        let said = Ok("10.0.0.2\n".to_string());
        assert_eq!(
            classify(&hosts(None, None), &Says::Hook(&said)).certain(),
            Holder::Host("green".into())
        );
        let said = Ok("blue".to_string());
        assert_eq!(
            classify(&hosts(None, None), &Says::Hook(&said)).certain(),
            Holder::Host("blue".into())
        );
        let said = Ok("amber".to_string());
        assert_eq!(
            classify(&hosts(None, None), &Says::Hook(&said)).holder,
            Holder::Unknown(Unknown::HookNamed("amber".into()))
        );
        let failed = Err(HookFailed("exit 1".to_string()));
        assert!(matches!(
            classify(&hosts(None, None), &Says::Hook(&failed)).holder,
            Holder::Unknown(Unknown::HookFailed(_))
        ));
    }
}
