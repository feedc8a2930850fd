//! The environment gate, pure: a change (identified by its content hash)
//! may reach a pair of an environment only after it completed on every pair
//! of every earlier environment, and, with a soak time, only once the last
//! of those completions is at least that old.

use std::time::{Duration, SystemTime};

/// One finished run from some pair's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The pair.
    pub pair: String,
    /// The change's content hash.
    pub hash: String,
    /// When the run finished (for a held run: when it was read).
    pub at: SystemTime,
    /// The run is held (a hold, an A/B experiment), not finished: it does
    /// not count until it is finished.
    pub held: bool,
}

/// A pair and its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The pair.
    pub pair: String,
    /// Its environment.
    pub environment: String,
}

/// The gate's decision, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The change may run.
    Open(String),
    /// It may not, and why.
    Closed(String),
}

/// Decides whether `hash` may run on a pair of `environment`.
pub fn decide(
    order: &[String],
    environment: &str,
    hash: &str,
    members: &[Member],
    completed: &[Completion],
    now: SystemTime,
    soak: Option<Duration>,
) -> Decision {
    let Some(position) = order.iter().position(|e| e == environment) else {
        return Decision::Closed(format!(
            "environment `{environment}` is not in the configured order"
        ));
    };
    let earlier = &order[..position];
    let mut missing = Vec::new();
    let mut latest: Option<SystemTime> = None;
    let mut counted = 0;
    for env in earlier {
        for m in members.iter().filter(|m| &m.environment == env) {
            counted += 1;
            let mine = completed
                .iter()
                .filter(|c| c.pair == m.pair && c.hash == hash);
            match mine.clone().filter(|c| !c.held).map(|c| c.at).max() {
                Some(at) => latest = Some(latest.map_or(at, |l| l.max(at))),
                None if mine.clone().any(|c| c.held) => missing.push(format!(
                    "{} ({env}: held, not finished; `baton finish {}`)",
                    m.pair, m.pair
                )),
                None => missing.push(format!("{} ({env})", m.pair)),
            }
        }
    }
    if !missing.is_empty() {
        return Decision::Closed(format!(
            "change {hash} has not completed on {} yet",
            missing.join(", ")
        ));
    }
    if let (Some(soak), Some(last)) = (soak, latest) {
        let age = now.duration_since(last).unwrap_or_default();
        if age < soak {
            return Decision::Closed(format!(
                "change {hash} completed on the earlier environments {} ago; the soak time is {}",
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(soak)
            ));
        }
    }
    if earlier.is_empty() || counted == 0 {
        Decision::Open(format!(
            "`{environment}` is the first environment with pairs: no earlier environment to pass"
        ))
    } else {
        Decision::Open(format!(
            "change {hash} completed on all {counted} pair(s) of {}",
            earlier.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Vec<String> {
        vec!["dev".into(), "test".into(), "prod".into()]
    }

    fn members() -> Vec<Member> {
        [("d1", "dev"), ("d2", "dev"), ("t1", "test"), ("p1", "prod")]
            .iter()
            .map(|(p, e)| Member {
                pair: p.to_string(),
                environment: e.to_string(),
            })
            .collect()
    }

    fn done(pair: &str, hash: &str, secs: u64) -> Completion {
        Completion {
            pair: pair.into(),
            hash: hash.into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            held: false,
        }
    }

    #[test]
    fn a_held_pair_has_not_passed_and_the_refusal_says_so() {
        let held = Completion {
            held: true,
            ..done("d2", "h", 10)
        };
        let d = decide(
            &order(),
            "test",
            "h",
            &members(),
            &[done("d1", "h", 10), held],
            at(100),
            None,
        );
        assert_eq!(
            d,
            Decision::Closed(
                "change h has not completed on d2 (dev: held, not finished; `baton finish d2`) yet"
                    .into()
            )
        );
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_first_environment_is_always_open() {
        assert!(matches!(
            decide(&order(), "dev", "h", &members(), &[], at(0), None),
            Decision::Open(_)
        ));
    }

    #[test]
    fn every_pair_of_every_earlier_environment_must_have_completed_the_same_hash() {
        let d = decide(
            &order(),
            "test",
            "h",
            &members(),
            &[done("d1", "h", 1)],
            at(10),
            None,
        );
        assert_eq!(
            d,
            Decision::Closed("change h has not completed on d2 (dev) yet".into())
        );
        let all_dev = [done("d1", "h", 1), done("d2", "h", 2)];
        assert!(matches!(
            decide(&order(), "test", "h", &members(), &all_dev, at(10), None),
            Decision::Open(_)
        ));
        // prod also needs test.
        let d = decide(&order(), "prod", "h", &members(), &all_dev, at(10), None);
        assert!(
            matches!(d, Decision::Closed(ref why) if why.contains("t1 (test)")),
            "{d:?}"
        );
        // An edited change has a new hash and starts over.
        let d = decide(&order(), "test", "h2", &members(), &all_dev, at(10), None);
        assert!(
            matches!(d, Decision::Closed(ref why) if why.contains("d1 (dev), d2 (dev)")),
            "{d:?}"
        );
    }

    #[test]
    fn the_soak_time_counts_from_the_last_completion() {
        let all_dev = [done("d1", "h", 100), done("d2", "h", 200)];
        let soak = Some(Duration::from_secs(3600));
        let d = decide(
            &order(),
            "test",
            "h",
            &members(),
            &all_dev,
            at(200 + 60),
            soak,
        );
        assert!(
            matches!(d, Decision::Closed(ref why) if why.contains("1m ago; the soak time is 1h")),
            "{d:?}"
        );
        assert!(matches!(
            decide(
                &order(),
                "test",
                "h",
                &members(),
                &all_dev,
                at(200 + 3600),
                soak
            ),
            Decision::Open(_)
        ));
    }

    #[test]
    fn an_unknown_environment_is_closed() {
        assert!(matches!(
            decide(&order(), "staging", "h", &members(), &[], at(0), None),
            Decision::Closed(_)
        ));
    }

    #[test]
    fn earlier_environments_without_pairs_have_nothing_to_pass() {
        let only_prod = vec![Member {
            pair: "p1".into(),
            environment: "prod".into(),
        }];
        let d = decide(&order(), "prod", "h", &only_prod, &[], at(0), None);
        assert!(
            matches!(d, Decision::Open(ref why) if why.contains("first environment with pairs")),
            "{d:?}"
        );
        // The soak time has nothing to count from either.
        let d = decide(
            &order(),
            "prod",
            "h",
            &only_prod,
            &[],
            at(0),
            Some(Duration::from_secs(3600)),
        );
        assert!(matches!(d, Decision::Open(_)), "{d:?}");
    }

    #[test]
    fn completions_of_pairs_outside_the_earlier_environments_do_not_count() {
        // The same hash done on t1 (test) and p1 (prod) does not open test:
        // dev's pairs have not done it.
        let d = decide(
            &order(),
            "test",
            "h",
            &members(),
            &[done("t1", "h", 1), done("p1", "h", 2)],
            at(10),
            None,
        );
        assert!(
            matches!(d, Decision::Closed(ref why) if why.contains("d1 (dev), d2 (dev)")),
            "{d:?}"
        );
        let d = decide(
            &order(),
            "prod",
            "h",
            &members(),
            &[done("d1", "h", 1), done("d2", "h", 2), done("t1", "h", 3)],
            at(10),
            None,
        );
        assert_eq!(
            d,
            Decision::Open("change h completed on all 3 pair(s) of dev, test".into())
        );
    }

    #[test]
    fn the_soak_counts_from_each_pairs_latest_completion_and_a_future_one_is_not_old() {
        let soak = Some(Duration::from_secs(100));
        // d1 did it twice: the later time counts.
        let all = [
            done("d1", "h", 10),
            done("d1", "h", 500),
            done("d2", "h", 20),
        ];
        let d = decide(&order(), "test", "h", &members(), &all, at(550), soak);
        assert!(
            matches!(d, Decision::Closed(ref why) if why.contains("50s ago")),
            "{d:?}"
        );
        assert!(matches!(
            decide(&order(), "test", "h", &members(), &all, at(600), soak),
            Decision::Open(_)
        ));
        // A completion stamped after now (a clock stepped back) has not soaked.
        let d = decide(&order(), "test", "h", &members(), &all, at(400), soak);
        assert!(
            matches!(d, Decision::Closed(ref why) if why.contains("0s ago")),
            "{d:?}"
        );
    }
}
