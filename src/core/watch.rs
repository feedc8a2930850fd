//! `baton watch`'s rules: what one observation of a pair says of its
//! primary and its standby, how consecutive failures are counted, and when
//! they make an automatic failover, or which guard holds it back (a pause,
//! the cooldown after the last one, a standby that is not healthy or cannot
//! be reached, a run still open, a primary that cannot be reached at all
//! and too few watchers agreeing). Pure: the watcher passes the time and
//! the agreeing watchers in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::CheckRole;
use crate::core::assess::{HostSeen, LastRun, PairSeen};

/// How a watcher watches (`[watch]` in baton.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failed observations of the primary that make a failover.
    pub failure_threshold: u32,
    /// At most one automatic failover per pair in this many seconds.
    pub cooldown_secs: u64,
    /// Watchers that must see the primary unreachable before a failover
    /// for that reason alone.
    pub quorum: usize,
}

/// What one observation said of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Reachable, and every check for its role passed.
    Healthy,
    /// It answers (SSH, or one of its checks), but a check for its role
    /// failed.
    Failing,
    /// Nothing answered: no SSH, no check. The host may be down, or the
    /// controller's own network may be.
    Unreachable,
}

/// A host's health seen as `role`.
pub fn health(host: &HostSeen, role: CheckRole) -> Health {
    let counted = host.checks.iter().filter(|c| c.counts_as(Some(role)));
    let all_ok = host.ssh.is_ok() && counted.clone().all(|c| c.ok);
    if all_ok {
        Health::Healthy
    } else if host.ssh.is_ok() || host.checks.iter().any(|c| c.ok) {
        Health::Failing
    } else {
        Health::Unreachable
    }
}

/// What one observation of a pair gives the watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The recorded primary and its health (`None`: no roles recorded).
    pub primary: Option<(String, Health)>,
    /// The recorded standby and its health.
    pub standby: Option<(String, Health)>,
    /// A run of the pair is open (in progress, interrupted, held): the
    /// watcher never acts beside one.
    pub run_open: bool,
    /// The host marked failed by an earlier failover (no standby to fail
    /// over to until it rejoins).
    pub failed: Option<String>,
}

impl Seen {
    /// Reads an observation: the roles recorded, each host's health for
    /// its role, whether a run is open.
    pub fn of(seen: &PairSeen, failed: Option<&str>) -> Seen {
        let by_name = |name: &str| seen.hosts.iter().find(|h| h.name == name);
        let roles = seen.recorded.as_ref();
        let primary = roles.and_then(|r| {
            by_name(&r.primary).map(|h| (r.primary.clone(), health(h, CheckRole::Primary)))
        });
        let standby = roles.and_then(|r| {
            by_name(&r.standby).map(|h| (r.standby.clone(), health(h, CheckRole::Standby)))
        });
        Seen {
            primary,
            standby,
            run_open: !matches!(seen.last_run, LastRun::Settled),
            failed: failed.map(str::to_string),
        }
    }
}

/// A pair's watch, carried from one observation to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PairWatch {
    /// The primary the failures were counted for (a new primary starts
    /// the count over).
    pub primary: Option<String>,
    /// Consecutive observations in which the primary was not healthy.
    pub failures: u32,
    /// When the last automatic failover began (seconds since the epoch).
    pub last_failover: Option<u64>,
    /// Paused by an operator (`baton pause`): observed, never acted on.
    pub paused: bool,
}

/// Why a failover that the failures call for is not made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "guard", rename_all = "snake_case")]
pub enum Withheld {
    /// An operator paused the pair.
    Paused,
    /// The last automatic failover was too recent.
    Cooldown {
        /// When the cooldown ends (seconds since the epoch).
        until: u64,
    },
    /// A run of the pair is open: `baton recover` settles it first.
    RunOpen,
    /// No roles are recorded: there is no primary to judge.
    NoRoles,
    /// The other host is marked failed: nothing to fail over to.
    NoStandby {
        /// The failed host.
        failed: String,
    },
    /// The standby failed its checks.
    StandbyUnhealthy,
    /// The standby cannot be reached: the controller may be the one cut
    /// off.
    StandbyUnreachable,
    /// Nothing answers from the primary, and fewer watchers than the
    /// quorum see it so (it may be this watcher's network that failed).
    NeedsQuorum {
        /// Watchers that see the primary unreachable (this one included).
        agree: usize,
        /// How many must.
        quorum: usize,
    },
}

/// What the watcher makes of one observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The primary passed: the count starts over.
    Healthy,
    /// The primary failed, fewer times in a row than the threshold.
    Failing {
        /// Failures in a row.
        count: u32,
        /// The threshold.
        of: u32,
    },
    /// Fail over now.
    Failover {
        /// The primary that failed.
        from: String,
        /// The standby that takes over.
        to: String,
        /// Failures in a row.
        count: u32,
    },
    /// A failover is called for, and a guard holds it back.
    Withheld {
        /// Failures in a row.
        count: u32,
        /// The guard.
        why: Withheld,
    },
}

/// Judges one observation at `now` (seconds since the epoch). `agree`:
/// how many watchers (this one included) see the primary unreachable.
/// Counts the failure; failures are counted per primary, and not while the
/// pair is paused or a run of it is open (both start the count over, so a
/// resume or a run's end never fails over on one observation). The
/// watcher calls [`started`] once a failover has begun.
pub fn judge(w: &mut PairWatch, seen: &Seen, policy: &Policy, now: u64, agree: usize) -> Verdict {
    let Some((primary, p_health)) = &seen.primary else {
        w.failures = 0;
        return Verdict::Withheld {
            count: 0,
            why: Withheld::NoRoles,
        };
    };
    if w.primary.as_deref() != Some(primary.as_str()) {
        w.primary = Some(primary.clone());
        w.failures = 0;
    }
    if *p_health == Health::Healthy {
        w.failures = 0;
        return Verdict::Healthy;
    }
    let not_counted = |w: &mut PairWatch, why| {
        w.failures = 0;
        Verdict::Withheld { count: 0, why }
    };
    if w.paused {
        return not_counted(w, Withheld::Paused);
    }
    if seen.run_open {
        return not_counted(w, Withheld::RunOpen);
    }
    w.failures = w.failures.saturating_add(1);
    let count = w.failures;
    if count < policy.failure_threshold {
        return Verdict::Failing {
            count,
            of: policy.failure_threshold,
        };
    }
    let withheld = |why| Verdict::Withheld { count, why };
    if let Some(last) = w.last_failover {
        let until = last.saturating_add(policy.cooldown_secs);
        if now < until {
            return withheld(Withheld::Cooldown { until });
        }
    }
    let standby = match (&seen.failed, &seen.standby) {
        (Some(f), _) => return withheld(Withheld::NoStandby { failed: f.clone() }),
        (None, None) => return withheld(Withheld::NoRoles),
        (None, Some((_, Health::Unreachable))) => return withheld(Withheld::StandbyUnreachable),
        (None, Some((_, Health::Failing))) => return withheld(Withheld::StandbyUnhealthy),
        (None, Some((name, Health::Healthy))) => name.clone(),
    };
    if *p_health == Health::Unreachable && agree < policy.quorum {
        return withheld(Withheld::NeedsQuorum {
            agree,
            quorum: policy.quorum,
        });
    }
    Verdict::Failover {
        from: primary.clone(),
        to: standby,
        count,
    }
}

/// A failover began at `now` (its run got past preflight): the cooldown
/// starts, the count starts over.
pub fn started(w: &mut PairWatch, now: u64) {
    w.last_failover = Some(now);
    w.failures = 0;
}

/// One watcher's last look at every pair it watches, as it publishes it
/// in the store for the others (the quorum) and for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The watcher (`host:pid`).
    pub watcher: String,
    /// When it looked (seconds since the epoch).
    pub at: u64,
    /// Its interval, in seconds.
    pub interval_secs: u64,
    /// Whether it leads.
    pub leading: bool,
    /// Each pair's recorded primary as it saw it.
    pub pairs: BTreeMap<String, PrimarySeen>,
}

/// A pair's primary in a watcher's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimarySeen {
    /// The recorded primary.
    pub host: String,
    /// Its health.
    pub health: Health,
    /// Failed observations in a row.
    pub failures: u32,
}

/// A view older than this many of its own intervals is not counted.
pub const FRESH_INTERVALS: u64 = 3;

/// How many watchers see `pair`'s primary `host` unreachable at `now`:
/// this watcher's own look (`me`, `own`) and every other watcher's view
/// that is fresh (at most `FRESH_INTERVALS` of its interval old, and not
/// from the future by more than one) and names the same primary.
pub fn agreeing(me: &str, own: Health, views: &[View], pair: &str, host: &str, now: u64) -> usize {
    let mine = usize::from(own == Health::Unreachable);
    let others = views
        .iter()
        .filter(|v| v.watcher != me)
        .filter(|v| {
            let fresh_for = v.interval_secs.max(1) * FRESH_INTERVALS;
            v.at + fresh_for >= now && v.at <= now + v.interval_secs.max(1)
        })
        .filter_map(|v| v.pairs.get(pair))
        .filter(|p| p.host == host && p.health == Health::Unreachable)
        .count();
    mine + others
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(watcher: &str, at: u64, host: &str, health: Health) -> View {
        View {
            watcher: watcher.into(),
            at,
            interval_secs: 10,
            leading: false,
            pairs: [(
                "web".to_string(),
                PrimarySeen {
                    host: host.into(),
                    health,
                    failures: 1,
                },
            )]
            .into(),
        }
    }

    #[test]
    fn watchers_agree_on_an_unreachable_primary_only_when_fresh_and_the_same() {
        let u = Health::Unreachable;
        let views = [
            view("a", 1000, "blue", u),
            view("b", 995, "blue", u),
            view("c", 1000, "blue", Health::Failing),
            view("d", 960, "blue", u),
            view("e", 1000, "green", u),
            view("f", 1050, "blue", u),
        ];
        // a's own view is replaced by its look now; b agrees; c sees it
        // answer; d is 40 s old (more than 3 intervals); e names another
        // primary; f is from the future.
        assert_eq!(agreeing("a", u, &views, "web", "blue", 1000), 2);
        assert_eq!(
            agreeing("a", Health::Failing, &views, "web", "blue", 1000),
            1
        );
        assert_eq!(
            agreeing("a", u, &views, "api", "blue", 1000),
            1,
            "no view of api"
        );
        assert_eq!(agreeing("a", u, &[], "web", "blue", 1000), 1, "alone");
    }

    const POLICY: Policy = Policy {
        failure_threshold: 3,
        cooldown_secs: 600,
        quorum: 2,
    };

    fn seen(primary: Health, standby: Health) -> Seen {
        Seen {
            primary: Some(("blue".into(), primary)),
            standby: Some(("green".into(), standby)),
            run_open: false,
            failed: None,
        }
    }

    /// Judges `n` observations one second apart from `start`; the last verdict.
    fn judge_n(w: &mut PairWatch, s: &Seen, n: u32, start: u64, agree: usize) -> Verdict {
        let mut v = Verdict::Healthy;
        for i in 0..n {
            v = judge(w, s, &POLICY, start + u64::from(i), agree);
        }
        v
    }

    #[test]
    fn failures_in_a_row_up_to_the_threshold_make_one_failover() {
        let mut w = PairWatch::default();
        let failing = seen(Health::Failing, Health::Healthy);
        assert_eq!(
            judge(&mut w, &failing, &POLICY, 100, 1),
            Verdict::Failing { count: 1, of: 3 }
        );
        assert_eq!(
            judge(&mut w, &failing, &POLICY, 101, 1),
            Verdict::Failing { count: 2, of: 3 }
        );
        assert_eq!(
            judge(&mut w, &failing, &POLICY, 102, 1),
            Verdict::Failover {
                from: "blue".into(),
                to: "green".into(),
                count: 3
            }
        );
        // Not started (say the run did not get past its preflight): the
        // next observation calls for it again, no cooldown.
        assert_eq!(w.last_failover, None);
        assert!(matches!(
            judge(&mut w, &failing, &POLICY, 103, 1),
            Verdict::Failover { count: 4, .. }
        ));
        started(&mut w, 103);
        assert_eq!((w.last_failover, w.failures), (Some(103), 0));
    }

    #[test]
    fn failures_are_counted_for_one_primary() {
        let mut w = PairWatch::default();
        judge_n(&mut w, &seen(Health::Failing, Health::Healthy), 2, 0, 1);
        // An operator switched over: green is the primary now.
        let swapped = Seen {
            primary: Some(("green".into(), Health::Failing)),
            standby: Some(("blue".into(), Health::Healthy)),
            run_open: false,
            failed: None,
        };
        assert_eq!(
            judge(&mut w, &swapped, &POLICY, 2, 1),
            Verdict::Failing { count: 1, of: 3 }
        );
    }

    #[test]
    fn a_healthy_observation_starts_the_count_over() {
        let mut w = PairWatch::default();
        judge_n(&mut w, &seen(Health::Failing, Health::Healthy), 2, 0, 1);
        assert_eq!(
            judge(
                &mut w,
                &seen(Health::Healthy, Health::Healthy),
                &POLICY,
                2,
                1
            ),
            Verdict::Healthy
        );
        assert_eq!(
            judge(
                &mut w,
                &seen(Health::Failing, Health::Healthy),
                &POLICY,
                3,
                1
            ),
            Verdict::Failing { count: 1, of: 3 }
        );
    }

    #[test]
    fn a_flapping_primary_fails_over_at_most_once_per_cooldown() {
        let mut w = PairWatch::default();
        let (down, up) = (
            seen(Health::Failing, Health::Healthy),
            seen(Health::Healthy, Health::Healthy),
        );
        let mut failovers = Vec::new();
        // Down three observations, up one, for twenty minutes, one a second.
        for t in 0..1200u64 {
            let s = if t % 4 == 3 { &up } else { &down };
            if let Verdict::Failover { .. } = judge(&mut w, s, &POLICY, t, 1) {
                started(&mut w, t);
                failovers.push(t);
            }
        }
        assert_eq!(failovers, [2, 602]);
        // Inside the cooldown the verdict names it.
        let mut w = PairWatch {
            primary: Some("blue".into()),
            last_failover: Some(1000),
            failures: 2,
            paused: false,
        };
        assert_eq!(
            judge(&mut w, &down, &POLICY, 1100, 1),
            Verdict::Withheld {
                count: 3,
                why: Withheld::Cooldown { until: 1600 }
            }
        );
    }

    #[test]
    fn never_to_a_standby_that_fails_or_cannot_be_reached() {
        let mut w = PairWatch::default();
        let v = judge_n(&mut w, &seen(Health::Failing, Health::Failing), 3, 0, 1);
        assert_eq!(
            v,
            Verdict::Withheld {
                count: 3,
                why: Withheld::StandbyUnhealthy
            }
        );
        let mut w = PairWatch::default();
        let v = judge_n(
            &mut w,
            &seen(Health::Unreachable, Health::Unreachable),
            5,
            0,
            3,
        );
        assert_eq!(
            v,
            Verdict::Withheld {
                count: 5,
                why: Withheld::StandbyUnreachable
            }
        );
        assert_eq!(w.last_failover, None);
    }

    #[test]
    fn an_unreachable_primary_needs_the_quorum_a_failing_one_does_not() {
        let unreachable = seen(Health::Unreachable, Health::Healthy);
        let mut w = PairWatch::default();
        assert_eq!(
            judge_n(&mut w, &unreachable, 3, 0, 1),
            Verdict::Withheld {
                count: 3,
                why: Withheld::NeedsQuorum {
                    agree: 1,
                    quorum: 2
                }
            }
        );
        let mut w = PairWatch::default();
        assert!(matches!(
            judge_n(&mut w, &unreachable, 3, 0, 2),
            Verdict::Failover { count: 3, .. }
        ));
        // A primary that answers but fails is judged by this watcher alone.
        let mut w = PairWatch::default();
        assert!(matches!(
            judge_n(&mut w, &seen(Health::Failing, Health::Healthy), 3, 0, 1),
            Verdict::Failover { .. }
        ));
    }

    #[test]
    fn a_pause_an_open_run_or_a_failed_standby_hold_it_back() {
        let failing = seen(Health::Failing, Health::Healthy);
        let mut w = PairWatch {
            paused: true,
            ..PairWatch::default()
        };
        assert_eq!(
            judge_n(&mut w, &failing, 3, 0, 1),
            Verdict::Withheld {
                count: 0,
                why: Withheld::Paused
            }
        );
        // Resumed: the count starts over, one failure is not enough.
        w.paused = false;
        assert_eq!(
            judge(&mut w, &failing, &POLICY, 4, 1),
            Verdict::Failing { count: 1, of: 3 }
        );
        let mut w = PairWatch::default();
        let open = Seen {
            run_open: true,
            ..failing.clone()
        };
        assert_eq!(
            judge_n(&mut w, &open, 3, 0, 1),
            Verdict::Withheld {
                count: 0,
                why: Withheld::RunOpen
            }
        );
        let mut w = PairWatch::default();
        let marked = Seen {
            failed: Some("green".into()),
            ..failing
        };
        assert_eq!(
            judge_n(&mut w, &marked, 3, 0, 1),
            Verdict::Withheld {
                count: 3,
                why: Withheld::NoStandby {
                    failed: "green".into()
                }
            }
        );
        let mut w = PairWatch::default();
        let none = Seen {
            primary: None,
            standby: None,
            run_open: false,
            failed: None,
        };
        assert_eq!(
            judge(&mut w, &none, &POLICY, 0, 1),
            Verdict::Withheld {
                count: 0,
                why: Withheld::NoRoles
            }
        );
    }

    fn host(ssh: bool, checks: &[(bool, bool)]) -> HostSeen {
        HostSeen {
            name: "blue".into(),
            address: None,
            ssh: if ssh { Ok(()) } else { Err("refused".into()) },
            holds_vip: None,
            vip_error: None,
            version: None,
            checks: checks
                .iter()
                .enumerate()
                .map(|(i, (ok, via_ssh))| crate::core::assess::CheckOutcome {
                    name: format!("c{i}"),
                    ok: *ok,
                    detail: String::new(),
                    via_ssh: *via_ssh,
                    role: CheckRole::Any,
                })
                .collect(),
            role: None,
            announces: None,
            overlaps: None,
        }
    }

    #[test]
    fn health_tells_a_failing_host_from_one_that_does_not_answer() {
        assert_eq!(
            health(&host(true, &[(true, false)]), CheckRole::Primary),
            Health::Healthy
        );
        assert_eq!(
            health(&host(true, &[(false, false)]), CheckRole::Primary),
            Health::Failing
        );
        // SSH refused but its page answers: failing, not unreachable.
        assert_eq!(
            health(&host(false, &[(true, false)]), CheckRole::Primary),
            Health::Failing
        );
        assert_eq!(
            health(
                &host(false, &[(false, false), (false, true)]),
                CheckRole::Primary
            ),
            Health::Unreachable
        );
    }
}
