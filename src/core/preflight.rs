//! Pure preflight rules: from the kind of run, the assessment of a fresh
//! observation and the recorded state, the problems that forbid starting.
//! Empty means go.

use crate::core::assess::{Assessment, Holder, HostSeen, PairSeen, TrafficSeen, Verdict};
use crate::core::cycle::Kind;
use crate::core::position::RoleState;

/// The host names a run works with.
#[derive(Debug, Clone, Copy)]
pub struct Roles<'a> {
    /// The current primary (failover: the dead one).
    pub from: &'a str,
    /// The standby that takes over (rejoin: the host rejoining).
    pub to: &'a str,
    /// The host marked failed by an earlier failover, if any.
    pub failed: Option<&'a str>,
    /// `failover --force`: the operator declares the primary unfit although
    /// it still answers (its fence must still succeed before the switch).
    pub forced: bool,
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
    let mut out = Vec::new();
    match (kind, r.failed) {
        (Kind::Rejoin, None) => out.push(format!(
            "no host of {pair} is marked failed: nothing to rejoin"
        )),
        (Kind::Rejoin, Some(_)) => {}
        // Taking the address back to the healthy primary is fine while the
        // other host is marked failed (it is how a failover's pair heals).
        (Kind::Restore, Some(f)) if f != r.to => {}
        (_, Some(f)) => out.push(format!(
            "{f} is marked failed since a failover; run `baton rejoin {pair}` once it is repaired"
        )),
        (_, None) => {}
    }
    match kind {
        Kind::Apply | Kind::Switchover => {
            // A host that cannot announce an IPv6 VIP does not stop a run:
            // the address moves unannounced, and the switch says so.
            out.extend(
                a.findings
                    .iter()
                    .filter(|f| {
                        !matches!(
                            f.kind,
                            crate::core::assess::Drift::NoAnnouncer
                                | crate::core::assess::Drift::NoOverlap
                        )
                    })
                    .map(|f| f.message.clone()),
            );
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
                Some(h) if !h.healthy() => out.push(format!(
                    "the standby {} fails its checks ({}): it cannot take over",
                    r.to,
                    h.failing_checks().join("; ")
                )),
                _ => {}
            }
            // A pair with role hooks: only a standby is promoted.
            match host(r.to).and_then(|h| h.role.as_ref()) {
                Some(Ok(report)) if report.state != RoleState::Standby => out.push(format!(
                    "{} is not a standby (it is {}): only a replicating standby is promoted; see `baton status {pair}`",
                    r.to,
                    report.state.name()
                )),
                Some(Err(e)) => out.push(format!(
                    "cannot tell the role of {}: {e}",
                    r.to
                )),
                _ => {}
            }
            // The switch comes after the fence: a DNS key the zone's
            // primary refuses would leave the pair with no one serving.
            out.extend(a.switch_blocked.iter().cloned());
            if let Some(p) = host(r.from) {
                out.extend(primary_still_serves(pair, p, &a.holder, r));
            }
        }
        Kind::Restore => {
            if !matches!(seen.traffic, TrafficSeen::Vip) {
                out.push(format!(
                    "only a virtual IP is restored by baton; a record or a hook that points at no host of {pair} needs a person"
                ));
            }
            if a.holder != Holder::Neither {
                out.push(format!(
                    "traffic is {}: there is nothing to restore",
                    where_is(&a.holder)
                ));
            }
            match host(r.to) {
                Some(h) if h.ssh.is_err() || !h.healthy() => out.push(format!(
                    "the recorded primary {} is not healthy ({}): it cannot take traffic back; `baton failover {pair}` gives it to {} if that is healthy",
                    r.to,
                    h.ssh
                        .as_ref()
                        .err()
                        .cloned()
                        .unwrap_or_else(|| h.failing_checks().join("; ")),
                    r.from
                )),
                Some(_) => {}
                None => out.push(format!("{} was not observed", r.to)),
            }
        }
        Kind::Rejoin => {
            if let Some(Err(e)) = host(r.to).map(|h| &h.ssh) {
                out.push(format!(
                    "{} is still unreachable over SSH ({e}): repair it first",
                    r.to
                ));
            }
            match &a.holder {
                Holder::Host(h) if h == r.from => {}
                // The failed host came back still holding the VIP: the
                // rejoin's release step takes it away (never the fence).
                Holder::Both => {}
                Holder::Neither => out.push(format!(
                    "traffic must be on {} alone to rejoin {}, but it is on neither host: `baton recover {pair}` puts it back on {} first",
                    r.from, r.to, r.from
                )),
                other => out.push(format!(
                    "traffic must be on {} alone to rejoin {}, but it is {}",
                    r.from,
                    r.to,
                    where_is(other)
                )),
            }
        }
    }
    out
}

/// What was seen of a failover's old primary, in words.
pub fn primary_state(seen: &PairSeen, from: &str) -> String {
    let Some(p) = seen.hosts.iter().find(|h| h.name == from) else {
        return format!("{from} was not observed");
    };
    let failing = p.failing_checks();
    match (&p.ssh, failing.is_empty()) {
        (Err(e), _) if !p.serving() => format!(
            "{from} is unreachable over SSH ({e}) and its service does not answer"
        ),
        (Err(e), _) => format!(
            "{from} is unreachable over SSH ({e}); its service still answers, and the failover is forced"
        ),
        (Ok(()), false) => format!("{from} fails its checks ({})", failing.join("; ")),
        (Ok(()), true) => format!(
            "{from} is reachable and passes its checks, and the failover is forced"
        ),
    }
}

/// Where traffic is, in words.
fn where_is(holder: &Holder) -> String {
    match holder {
        Holder::Host(h) => format!("on {h}"),
        Holder::Both => "on both hosts".to_string(),
        Holder::Neither => "on neither host".to_string(),
        Holder::Unknown(why) => format!("unknown ({why})"),
    }
}

/// Why a failover must not declare the primary dead: it passes its checks
/// (reachable or not), unless the operator forced it; and with the VIP on
/// both hosts while it is healthy, even then (only a person can tell which
/// host should keep it).
fn primary_still_serves(pair: &str, p: &HostSeen, holder: &Holder, r: Roles<'_>) -> Option<String> {
    let from = r.from;
    let force = format!(
        "if {from} must be taken out anyway, `baton failover {pair} --force --reason TEXT` fences it (the pair's fence command; the VIP removed, or proven gone) before the switch"
    );
    if p.healthy() && *holder == Holder::Both {
        return Some(format!(
            "split brain: both hosts hold the virtual IP and the primary {from} is reachable and passes its checks: a failover would take it from the healthy host. Remove the address from the host that should not have it (`ip addr del ...` there), then run `baton status {pair}`"
        ));
    }
    if r.forced {
        return None;
    }
    if p.healthy() && *holder == Holder::Neither {
        return Some(format!(
            "no host holds traffic, and the primary {from} is reachable and passes its checks: a failover would take a healthy host out. `baton recover {pair}` puts the address back on {from}; or {force}"
        ));
    }
    if p.healthy() {
        return Some(format!(
            "the primary {from} is reachable and passes its checks: this is not a failover; use `baton switchover {pair}`; {force}"
        ));
    }
    if p.ssh.is_err() && p.serving() {
        return Some(format!(
            "the primary {from} cannot be reached over SSH but its service still answers on its own address (its checks pass): it may still hold traffic, and baton cannot make it let go; repair SSH and use `baton switchover {pair}`, or {force}"
        ));
    }
    None
}

/// The old primary of a run of `kind`: the record, or reality on first
/// sight. A rejoin works on the failed host, which becomes the standby; a
/// restore gives the address back to the recorded primary (`to`).
pub fn old_primary(
    kind: Kind,
    failed: Option<&str>,
    recorded: Option<&crate::core::assess::Roles>,
    holder: &Holder,
    hosts: [&str; 2],
) -> String {
    let other = |h: &str| {
        if h == hosts[0] {
            hosts[1]
        } else {
            hosts[0]
        }
    };
    match (kind, failed, recorded, holder) {
        // A failed host that is not one of the pair's names none: the run
        // is refused for it.
        (Kind::Rejoin, Some(f), _, _) if hosts.contains(&f) => other(f).to_string(),
        (Kind::Rejoin, Some(_), _, _) => String::new(),
        (Kind::Restore, _, Some(r), _) => r.standby.clone(),
        (_, _, Some(r), _) => r.primary.clone(),
        (_, _, None, Holder::Host(h)) => h.clone(),
        _ => hosts[0].to_string(),
    }
}

/// Whether a refusal needs an operator (exit 4) rather than "did not
/// start": the pair is in a state no run of this kind can mend.
pub fn needs_operator(kind: Kind, a: &Assessment) -> bool {
    match kind {
        Kind::Apply | Kind::Switchover => {
            a.verdict == Verdict::Operator && !matches!(a.holder, Holder::Host(_))
                || a.not_as_recorded
        }
        // Split brain, or nobody serving: a person must decide.
        Kind::Failover => matches!(a.holder, Holder::Both | Holder::Neither),
        Kind::Rejoin => matches!(a.holder, Holder::Neither),
        // Nobody serves until it is put back: a person must look.
        Kind::Restore => true,
    }
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
            vip_error: None,
            announces: None,
            overlaps: None,
            version: None,
            checks: vec![CheckOutcome {
                name: "page".into(),
                ok,
                detail: String::new(),
                via_ssh: false,
                role: crate::config::CheckRole::Any,
            }],
            role: None,
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
            last_run: Default::default(),
        }
    }

    fn check(kind: Kind, s: &PairSeen, from: &str, to: &str, failed: Option<&str>) -> Vec<String> {
        problems(
            kind,
            "web",
            s,
            &assess(s),
            Roles {
                from,
                to,
                failed,
                forced: false,
            },
        )
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

    fn failover(s: &PairSeen, forced: bool) -> Vec<String> {
        problems(
            Kind::Failover,
            "web",
            s,
            &assess(s),
            Roles {
                from: "blue",
                to: "green",
                failed: None,
                forced,
            },
        )
    }

    #[test]
    fn failover_never_declares_a_serving_primary_dead_on_its_own() {
        // The VIP on both hosts and a healthy primary: refused, even forced
        // (issue 11, item 2).
        let both = seen(true, Some(true), true, Some(true));
        for forced in [false, true] {
            let p = failover(&both, forced);
            assert!(p.iter().any(|m| m.contains("split brain")), "{p:?}");
        }
        // Only the primary's sshd is dead, its service answers: refused
        // unless forced (item 3).
        let mut sshd_dead = seen(true, None, true, Some(false));
        sshd_dead.hosts[0].ssh = Err("connection refused".into());
        let p = failover(&sshd_dead, false);
        assert!(
            p.iter()
                .any(|m| m.contains("still answers") && m.contains("--force")),
            "{p:?}"
        );
        assert!(failover(&sshd_dead, true).is_empty());
        // A healthy primary holding traffic: a switchover, or forced.
        let healthy = seen(true, Some(true), true, Some(false));
        assert!(failover(&healthy, false)[0].contains("use `baton switchover web`"));
        assert!(failover(&healthy, true).is_empty());
        // A healthy primary and the VIP on neither host: still not dead.
        let neither = seen(true, Some(false), true, Some(false));
        assert!(!failover(&neither, false).is_empty());
        // Reachable but failing its checks: a failover.
        let mut failing = seen(true, Some(true), true, Some(false));
        failing.hosts[0].checks[0].ok = false;
        assert!(failover(&failing, false).is_empty());
        // Down altogether (no SSH, no service): a failover.
        let down = seen(false, None, true, Some(false));
        assert!(failover(&down, false).is_empty());
        // With the VIP on both and the primary failing, the fence takes it
        // off the primary: allowed.
        let mut both_failing = seen(true, Some(true), true, Some(true));
        both_failing.hosts[0].checks[0].ok = false;
        assert!(failover(&both_failing, false).is_empty());
    }

    #[test]
    fn the_failovers_preflight_says_what_was_seen_of_the_primary() {
        let down = seen(false, None, true, Some(false));
        assert!(primary_state(&down, "blue").contains("unreachable over SSH"));
        let mut failing = seen(true, Some(true), true, Some(false));
        failing.hosts[0].checks[0].ok = false;
        failing.hosts[0].checks[0].detail = "status 502".into();
        assert!(primary_state(&failing, "blue").contains("fails its checks (page: status 502)"));
    }

    #[test]
    fn restore_needs_a_vip_on_neither_host_and_a_healthy_recorded_primary() {
        let restore = |s: &PairSeen, failed: Option<&str>| {
            problems(
                Kind::Restore,
                "web",
                s,
                &assess(s),
                Roles {
                    from: "green",
                    to: "blue",
                    failed,
                    forced: false,
                },
            )
        };
        let neither = seen(true, Some(false), true, Some(false));
        assert!(restore(&neither, None).is_empty());
        // After a failover that marked green failed, blue may still take
        // its address back; a failed blue may not.
        assert!(restore(&neither, Some("green")).is_empty());
        assert!(!restore(&neither, Some("blue")).is_empty());
        let held = seen(true, Some(true), true, Some(false));
        assert!(restore(&held, None)[0].contains("nothing to restore"));
        let mut sick = seen(true, Some(false), true, Some(false));
        sick.hosts[0].checks[0].ok = false;
        let p = restore(&sick, None);
        assert!(p.iter().any(|m| m.contains("baton failover web")), "{p:?}");
        let mut dns = neither.clone();
        dns.traffic = TrafficSeen::Command(Ok("nobody".into()));
        assert!(restore(&dns, None)
            .iter()
            .any(|m| m.contains("only a virtual IP")));
    }

    #[test]
    fn rejoin_refuses_traffic_on_neither_or_on_the_rejoining_host() {
        let recorded = Some(Recorded {
            primary: "green".into(),
            standby: "blue".into(),
        });
        let mut neither = seen(true, Some(false), true, Some(false));
        neither.recorded = recorded.clone();
        let p = check(Kind::Rejoin, &neither, "green", "blue", Some("blue"));
        assert!(
            p.iter()
                .any(|m| m.contains("on neither host") && m.contains("baton recover web")),
            "{p:?}"
        );
        let mut on_blue = seen(true, Some(true), true, Some(false));
        on_blue.recorded = recorded;
        let p = check(Kind::Rejoin, &on_blue, "green", "blue", Some("blue"));
        assert!(
            p.iter()
                .any(|m| m.contains("must be on green alone") && m.contains("it is on blue")),
            "{p:?}"
        );
    }

    #[test]
    fn a_failover_to_a_standby_that_fails_its_checks_is_refused_naming_them() {
        let mut s = seen(false, None, true, Some(false));
        s.hosts[1].checks[0].ok = false;
        s.hosts[1].checks[0].detail = "status 500".into();
        let p = check(Kind::Failover, &s, "blue", "green", None);
        assert_eq!(
            p,
            vec!["the standby green fails its checks (page: status 500): it cannot take over"]
        );
        // A failed host stops a failover too.
        let ok = seen(false, None, true, Some(false));
        let p = check(Kind::Failover, &ok, "blue", "green", Some("blue"));
        assert!(p[0].contains("blue is marked failed"), "{p:?}");
    }

    #[test]
    fn restore_names_an_unreachable_or_unobserved_recorded_primary() {
        let restore = |s: &PairSeen, to: &str| {
            problems(
                Kind::Restore,
                "web",
                s,
                &assess(s),
                Roles {
                    from: "green",
                    to,
                    failed: None,
                    forced: false,
                },
            )
        };
        let mut down = seen(true, Some(false), true, Some(false));
        down.hosts[0].ssh = Err("connection timed out".into());
        let p = restore(&down, "blue");
        assert!(
            p.iter()
                .any(|m| m.contains("blue is not healthy (connection timed out)")),
            "{p:?}"
        );
        let neither = seen(true, Some(false), true, Some(false));
        let p = restore(&neither, "amber");
        assert_eq!(p, vec!["amber was not observed"]);
    }

    #[test]
    fn the_primarys_state_in_each_case() {
        let s = seen(true, Some(true), true, Some(false));
        assert_eq!(primary_state(&s, "amber"), "amber was not observed");
        assert!(primary_state(&s, "blue").contains("passes its checks, and the failover is forced"));
        let mut sshd_dead = s.clone();
        sshd_dead.hosts[0].ssh = Err("refused".into());
        let text = primary_state(&sshd_dead, "blue");
        assert!(
            text.contains("unreachable over SSH (refused); its service still answers"),
            "{text}"
        );
    }

    #[test]
    fn a_split_brain_with_a_healthy_primary_is_refused_before_any_other_reason() {
        // Forced or not, whatever else is true.
        let mut both = seen(true, Some(true), true, Some(true));
        both.hosts[1].checks[0].ok = false;
        let p = failover(&both, true);
        assert!(p.iter().any(|m| m.contains("fails its checks")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("split brain")), "{p:?}");
        assert!(!p.iter().any(|m| m.contains("--force")), "{p:?}");
    }
}

#[cfg(test)]
mod roles_tests {
    use super::*;
    use crate::core::assess::Roles;

    #[test]
    fn the_old_primary_is_the_record_else_reality_else_the_first_host() {
        let hosts = ["blue", "green"];
        let rec = Roles {
            primary: "green".into(),
            standby: "blue".into(),
        };
        let on = |h: &str| Holder::Host(h.into());
        assert_eq!(
            old_primary(Kind::Apply, None, Some(&rec), &on("blue"), hosts),
            "green"
        );
        assert_eq!(
            old_primary(Kind::Apply, None, None, &on("green"), hosts),
            "green"
        );
        assert_eq!(
            old_primary(Kind::Apply, None, None, &Holder::Both, hosts),
            "blue"
        );
        // A rejoin moves from the healthy host to the failed one.
        assert_eq!(
            old_primary(Kind::Rejoin, Some("blue"), Some(&rec), &on("green"), hosts),
            "green"
        );
        assert_eq!(
            old_primary(Kind::Rejoin, Some("amber"), Some(&rec), &on("green"), hosts),
            ""
        );
        // A restore gives the address back to the recorded primary.
        assert_eq!(
            old_primary(Kind::Restore, None, Some(&rec), &Holder::Neither, hosts),
            "blue"
        );
    }
}
