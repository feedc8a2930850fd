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
    /// When the run finished.
    pub at: SystemTime,
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
            match completed
                .iter()
                .filter(|c| c.pair == m.pair && c.hash == hash)
                .map(|c| c.at)
                .max()
            {
                Some(at) => latest = Some(latest.map_or(at, |l| l.max(at))),
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
        }
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
}
