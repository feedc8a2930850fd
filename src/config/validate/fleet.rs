//! Conflicts between pairs, found as each pair that validated is admitted:
//! one virtual IP or one DNS name switched by two pairs, one HAProxy
//! frontend (address and port) or one backend of one balancer (by its
//! address) used by two pairs (each a problem of both), one host address in
//! two pairs (a [`Warning`]: one machine, which a failover's fence would
//! take from both), and two pair files whose names differ only in case. A
//! balancer may be another pair's host: that is no conflict.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::diag::{printable, Key, Source};
use crate::config::{Diagnostic, Host, Pair, Problem, Traffic, Warning, WarningKind};

use Key::Name as N;

/// What the pairs admitted so far hold, each with the pair and its file.
#[derive(Default)]
pub(super) struct Fleet {
    /// (pair, virtual IP, file).
    vips: Vec<(String, IpAddr, PathBuf)>,
    /// (pair, DNS name in lower case, file).
    dns_names: Vec<(String, String, PathBuf)>,
    /// (pair, HAProxy frontend, file).
    frontends: Vec<(String, SocketAddr, PathBuf)>,
    /// (pair, balancer's address, backend, file).
    backends: Vec<(String, IpAddr, String, PathBuf)>,
    /// (address, pair, host, file) of every host.
    host_addresses: Vec<(IpAddr, String, String, PathBuf)>,
}

impl Fleet {
    /// Admits a pair that validated: a virtual IP, DNS name, HAProxy
    /// frontend or backend (on the same balancer) that an earlier pair has
    /// is a problem of both pairs, a host address that an earlier pair's
    /// host has a warning.
    pub(super) fn admit(
        &mut self,
        src: &Source<'_>,
        name: &str,
        path: &Path,
        pair: &Pair,
        problems: &mut Vec<Problem>,
        warnings: &mut Vec<Warning>,
    ) {
        match &pair.traffic {
            Traffic::Vip(v) => {
                if let Some((other, _, other_file)) =
                    self.vips.iter().find(|(_, a, _)| *a == v.address)
                {
                    let d = src.at(
                        &[N("traffic"), N("address")],
                        format!(
                            "the virtual IP {} is also used by pair `{other}` ({})",
                            v.address,
                            other_file.display()
                        ),
                        "give each pair its own service address",
                    );
                    problems.push(Problem {
                        pairs: vec![name.to_string(), other.clone()],
                        diagnostic: d,
                    });
                }
                self.vips
                    .push((name.to_string(), v.address, path.to_path_buf()));
            }
            Traffic::Haproxy(h) => {
                if let Some((other, _, other_file)) =
                    self.frontends.iter().find(|(_, f, _)| *f == h.frontend)
                {
                    let d = src.at(
                        &[N("traffic"), N("frontend")],
                        format!(
                            "the frontend {} is also used by pair `{other}` ({})",
                            h.frontend,
                            other_file.display()
                        ),
                        "give each pair its own service address: its own frontend address or port",
                    );
                    problems.push(Problem {
                        pairs: vec![name.to_string(), other.clone()],
                        diagnostic: d,
                    });
                }
                if let Some((other, _, _, other_file)) = self
                    .backends
                    .iter()
                    .find(|(_, a, b, _)| *a == h.host.address && *b == h.backend)
                {
                    let d = src.at(
                        &[N("traffic"), N("backend")],
                        format!(
                            "backend `{}` of the balancer at {} is also pair `{other}`'s ({})",
                            h.backend,
                            h.host.address,
                            other_file.display()
                        ),
                        "give each pair a backend of its own: a backend's servers are one pair's hosts",
                    );
                    problems.push(Problem {
                        pairs: vec![name.to_string(), other.clone()],
                        diagnostic: d,
                    });
                }
                self.frontends
                    .push((name.to_string(), h.frontend, path.to_path_buf()));
                self.backends.push((
                    name.to_string(),
                    h.host.address,
                    h.backend.clone(),
                    path.to_path_buf(),
                ));
            }
            Traffic::Dns(d) => {
                let key = d.name.to_ascii_lowercase();
                if let Some((other, _, other_file)) =
                    self.dns_names.iter().find(|(_, n, _)| *n == key)
                {
                    let diag = src.at(
                        &[N("traffic"), N("name")],
                        format!(
                            "the DNS name {} is also switched by pair `{other}` ({})",
                            d.name,
                            other_file.display()
                        ),
                        "give each pair its own DNS name",
                    );
                    problems.push(Problem {
                        pairs: vec![name.to_string(), other.clone()],
                        diagnostic: diag,
                    });
                }
                self.dns_names
                    .push((name.to_string(), key, path.to_path_buf()));
            }
            Traffic::Command(_) => {}
        }
        for h in &pair.hosts {
            if let Some(w) = shared_host(src, name, h, &self.host_addresses) {
                warnings.push(w);
            }
        }
        for h in &pair.hosts {
            self.host_addresses.push((
                h.address,
                name.to_string(),
                h.name.clone(),
                path.to_path_buf(),
            ));
        }
    }
}

/// Two pair files whose names differ only in case are the same pair to a
/// human: a problem of both, about the later file as a whole.
pub(super) fn names_differing_in_case(file: &Path, names: &[String], problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for name in names {
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), name.clone()) {
            problems.push(Problem {
                pairs: vec![name.clone(), first.clone()],
                diagnostic: Diagnostic {
                    file: file
                        .parent()
                        .unwrap_or(Path::new("."))
                        .join("pairs")
                        .join(format!("{name}.toml")),
                    line: 0,
                    column: 0,
                    message: printable(&format!(
                        "pair names `{first}` and `{name}` differ only in case"
                    )),
                    fix: "rename one of the files: each pair needs a distinct name".to_string(),
                },
            });
        }
    }
}

/// The warning for a host whose address a host of an earlier pair has.
fn shared_host(
    src: &Source<'_>,
    pair: &str,
    host: &Host,
    earlier: &[(IpAddr, String, String, PathBuf)],
) -> Option<Warning> {
    let (_, other, other_host, other_file) = earlier.iter().find(|(a, ..)| *a == host.address)?;
    let diagnostic = src.at(
        &[N("hosts"), N(&host.name), N("address")],
        format!(
            "host `{}` of pair `{pair}` and host `{other_host}` of pair `{other}` ({}) have the same address {}: one machine in both pairs, so fencing it in a failover of one pair (a power-off `fence`) also takes it away from the other",
            host.name,
            other_file.display(),
            host.address
        ),
        "if one machine serving both pairs is intended, keep it, and make each pair's `fence` cut off only that pair's service rather than power off the machine; otherwise correct the address",
    );
    Some(Warning {
        kind: WarningKind::SharedHostAddress {
            address: host.address,
            this: (pair.to_string(), host.name.clone()),
            other: (other.clone(), other_host.clone()),
        },
        pairs: vec![pair.to_string(), other.clone()],
        diagnostic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_only_in_case_are_a_problem_of_both() {
        let names: Vec<String> = ["Web", "db", "web", "DB2"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let mut problems = Vec::new();
        names_differing_in_case(Path::new("/etc/baton/baton.toml"), &names, &mut problems);
        assert_eq!(problems.len(), 1);
        let p = &problems[0];
        assert_eq!(p.pairs, ["web", "Web"]);
        assert_eq!(p.diagnostic.file, Path::new("/etc/baton/pairs/web.toml"));
        assert_eq!((p.diagnostic.line, p.diagnostic.column), (0, 0));
        assert_eq!(
            p.diagnostic.message,
            "pair names `Web` and `web` differ only in case"
        );
    }

    #[test]
    fn a_host_address_of_an_earlier_pair_is_a_warning_at_this_hosts_address() {
        let text = "[hosts.blue]\naddress = \"192.0.2.1\"\n";
        let src = Source::new(Path::new("pairs/b.toml"), text);
        let host = Host {
            name: "blue".to_string(),
            address: IpAddr::from([192, 0, 2, 1]),
            ssh_port: 22,
        };
        let earlier = [(
            IpAddr::from([192, 0, 2, 9]),
            "a".to_string(),
            "green".to_string(),
            PathBuf::from("pairs/a.toml"),
        )];
        assert!(shared_host(&src, "b", &host, &earlier).is_none());
        let earlier = [(
            host.address,
            "a".to_string(),
            "green".to_string(),
            PathBuf::from("pairs/a.toml"),
        )];
        let w = shared_host(&src, "b", &host, &earlier).expect("a warning");
        assert_eq!(w.pairs, ["b", "a"]);
        assert_eq!(
            w.kind,
            WarningKind::SharedHostAddress {
                address: host.address,
                this: ("b".to_string(), "blue".to_string()),
                other: ("a".to_string(), "green".to_string()),
            }
        );
        assert_eq!((w.diagnostic.line, w.diagnostic.column), (2, 11));
        assert!(w
            .diagnostic
            .message
            .starts_with("host `blue` of pair `b` and host `green` of pair `a` (pairs/a.toml) have the same address 192.0.2.1"));
    }
}
