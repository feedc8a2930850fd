//! Pure preflight rules: from the kind of run, the assessment of a fresh
//! observation and the recorded state, the problems that forbid starting.
//! Empty means go.

use crate::core::assess::{Assessment, Holder, PairSeen};
use crate::core::cycle::Kind;

/// The host names a run works with.
#[derive(Debug, Clone, Copy)]
pub struct Roles<'a> {
    /// The current primary (failover: the dead one).
    pub from: &'a str,
    /// The standby that takes over (rejoin: the host rejoining).
    pub to: &'a str,
    /// The host marked failed by an earlier failover, if any.
    pub failed: Option<&'a str>,
}

/// Problems that forbid starting `kind`.
pub fn problems(
    kind: Kind,
    pair: &str,
    seen: &PairSeen,
    a: &Assessment,
    r: Roles<'_>,
) -> Vec<String> {
    let host = |name: &str| seen.hosts.iter().find(|h| h.name == name);
    let healthy = |name: &str| host(name).is_some_and(|h| h.healthy());
    let mut out = Vec::new();
    match (kind, r.failed) {
        (Kind::Rejoin, None) => out.push(format!(
            "no host of {pair} is marked failed: nothing to rejoin"
        )),
        (Kind::Rejoin, Some(_)) => {}
        (_, Some(f)) => out.push(format!(
            "{f} is marked failed since a failover; run `baton rejoin {pair}` once it is repaired"
        )),
        (_, None) => {}
    }
    match kind {
        Kind::Apply | Kind::Switchover => {
            out.extend(a.findings.iter().map(|f| f.message.clone()));
            if out.is_empty() && seen.hosts.iter().any(|h| h.ssh.is_err()) {
                out.push("a host could not be reached".to_string());
            }
        }
        Kind::Failover => {
            match host(r.to) {
                Some(h) if h.ssh.is_err() => out.push(format!(
                    "the standby {} is unreachable: it cannot take over",
                    r.to
                )),
                Some(h) if !h.healthy() => {
                    let failing: Vec<String> = h
                        .checks
                        .iter()
                        .filter(|c| !c.ok)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect();
                    out.push(format!(
                        "the standby {} fails its checks ({}): it cannot take over",
                        r.to,
                        failing.join("; ")
                    ))
                }
                _ => {}
            }
            // The switch comes after the fence: a DNS key the zone's
            // primary refuses would leave the pair with no one serving.
            out.extend(a.switch_blocked.iter().cloned());
            if healthy(r.from) && a.holder == Holder::Host(r.from.to_string()) {
                out.push(format!(
                    "the primary {} is reachable, healthy and holds traffic: this is not a failover; use `baton switchover {pair}`",
                    r.from
                ));
            }
        }
        Kind::Rejoin => {
            if host(r.to).is_some_and(|h| h.ssh.is_err()) {
                out.push(format!("{} is still unreachable", r.to));
            }
            match &a.holder {
                Holder::Host(h) if h == r.from => {}
                // The failed host came back still holding the VIP: the
                // rejoin's fence step takes it away.
                Holder::Both => {}
                other => out.push(format!(
                    "traffic must be on {} to rejoin {} (now: {other:?})",
                    r.from, r.to
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::assess::{assess, CheckOutcome, HostSeen, Roles as Recorded, TrafficSeen};

    fn seen(
        blue_ok: bool,
        blue_vip: Option<bool>,
        green_ok: bool,
        green_vip: Option<bool>,
    ) -> PairSeen {
        let host = |name: &str, ok: bool, vip| HostSeen {
            name: name.into(),
            address: None,
            ssh: if ok {
                Ok(())
            } else {
                Err("unreachable".into())
            },
            holds_vip: vip,
            version: None,
            checks: vec![CheckOutcome {
                name: "page".into(),
                ok,
                detail: String::new(),
            }],
        };
        PairSeen {
            hosts: [
                host("blue", blue_ok, blue_vip),
                host("green", green_ok, green_vip),
            ],
            traffic: TrafficSeen::Vip,
            recorded: Some(Recorded {
                primary: "blue".into(),
                standby: "green".into(),
            }),
        }
    }

    fn check(kind: Kind, s: &PairSeen, from: &str, to: &str, failed: Option<&str>) -> Vec<String> {
        problems(kind, "web", s, &assess(s), Roles { from, to, failed })
    }

    #[test]
    fn apply_needs_everything_well() {
        assert!(check(
            Kind::Apply,
            &seen(true, Some(true), true, Some(false)),
            "blue",
            "green",
            None
        )
        .is_empty());
        assert!(!check(
            Kind::Apply,
            &seen(true, Some(true), false, None),
            "blue",
            "green",
            None
        )
        .is_empty());
        let p = check(
            Kind::Switchover,
            &seen(true, Some(true), true, Some(false)),
            "blue",
            "green",
            Some("green"),
        );
        assert!(p[0].contains("baton rejoin web"), "{p:?}");
    }

    #[test]
    fn failover_needs_a_healthy_standby_and_a_dead_primary() {
        assert!(check(
            Kind::Failover,
            &seen(false, None, true, Some(false)),
            "blue",
            "green",
            None
        )
        .is_empty());
        let p = check(
            Kind::Failover,
            &seen(true, Some(true), true, Some(false)),
            "blue",
            "green",
            None,
        );
        assert!(p[0].contains("use `baton switchover web`"), "{p:?}");
        let p = check(
            Kind::Failover,
            &seen(false, None, false, None),
            "blue",
            "green",
            None,
        );
        assert!(p[0].contains("standby green is unreachable"), "{p:?}");
    }

    #[test]
    fn rejoin_needs_a_failed_host_back_and_traffic_on_the_other() {
        // After a failover green is primary, blue failed.
        let mut s = seen(true, Some(false), true, Some(true));
        s.recorded = Some(Recorded {
            primary: "green".into(),
            standby: "blue".into(),
        });
        assert!(check(Kind::Rejoin, &s, "green", "blue", Some("blue")).is_empty());
        // Blue came back still holding the VIP: allowed, the fence clears it.
        let mut both = seen(true, Some(true), true, Some(true));
        both.recorded = s.recorded.clone();
        assert!(check(Kind::Rejoin, &both, "green", "blue", Some("blue")).is_empty());
        assert!(check(Kind::Rejoin, &s, "green", "blue", None)[0].contains("nothing to rejoin"));
        let mut down = seen(false, None, true, Some(true));
        down.recorded = s.recorded.clone();
        assert!(check(Kind::Rejoin, &down, "green", "blue", Some("blue"))
            .iter()
            .any(|p| p.contains("still unreachable")));
    }
}
