//! Pure fleet planning: the order in which pairs run (environments in their
//! order, canaries first within each), batch sizes from a spec like
//! `1,2,25%`, and the failure budget.

use std::fmt;

/// One pair as the fleet planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The pair.
    pub pair: String,
    /// Index of its environment in the configured order.
    pub environment: usize,
    /// Canary pairs go first in their environment.
    pub canary: bool,
}

/// One size of a batch spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// This many pairs.
    Count(usize),
    /// This percentage of all pairs (rounded up, at least one).
    Percent(u8),
}

/// A batch spec: the sizes of the first batches; the last size repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec(pub Vec<Size>);

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|s| match s {
                Size::Count(n) => n.to_string(),
                Size::Percent(p) => format!("{p}%"),
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

/// Why a batch spec was refused, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// Parses `1,2,25%`.
pub fn parse_spec(text: &str) -> Result<Spec, SpecError> {
    let mut sizes = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let size = if let Some(p) = part.strip_suffix('%') {
            match p.parse::<u8>() {
                Ok(n) if (1..=100).contains(&n) => Size::Percent(n),
                _ => {
                    return Err(SpecError(format!(
                        "`{part}` is not a percentage between 1% and 100%"
                    )))
                }
            }
        } else {
            match part.parse::<usize>() {
                Ok(n) if n > 0 => Size::Count(n),
                _ => {
                    return Err(SpecError(format!(
                        "`{part}` is not a batch size (a positive number or a percentage like 25%)"
                    )))
                }
            }
        };
        sizes.push(size);
    }
    if sizes.is_empty() {
        return Err(SpecError("the batch spec is empty".to_string()));
    }
    Ok(Spec(sizes))
}

/// The pairs in running order: environments in order, canaries first in
/// each, then by name.
pub fn order(mut pairs: Vec<Candidate>) -> Vec<Candidate> {
    pairs.sort_by(|a, b| {
        (a.environment, !a.canary, &a.pair).cmp(&(b.environment, !b.canary, &b.pair))
    });
    pairs
}

/// The pairs in the reverse of the running order (a fleet rollback): the
/// last environment first, and in each the canaries last.
pub fn reverse_order(pairs: Vec<Candidate>) -> Vec<Candidate> {
    let mut ordered = order(pairs);
    ordered.reverse();
    ordered
}

/// Splits ordered pairs into batches by the spec. A batch never spans two
/// environments (the gate needs an environment finished before the next),
/// and canaries run one at a time before the rest of their environment.
pub fn batches(ordered: &[Candidate], spec: &Spec) -> Vec<Vec<String>> {
    let total = ordered.len();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut sizes = spec.0.iter();
    let mut last = spec.0.last().copied().unwrap_or(Size::Count(1));
    let mut i = 0;
    while i < ordered.len() {
        let env = ordered[i].environment;
        if ordered[i].canary {
            out.push(vec![ordered[i].pair.clone()]);
            i += 1;
            continue;
        }
        let size = match sizes.next() {
            Some(s) => {
                last = *s;
                *s
            }
            None => last,
        };
        let n = match size {
            Size::Count(n) => n,
            Size::Percent(p) => (total * p as usize).div_ceil(100).max(1),
        };
        let mut batch = Vec::new();
        while i < ordered.len()
            && batch.len() < n
            && ordered[i].environment == env
            && !ordered[i].canary
        {
            batch.push(ordered[i].pair.clone());
            i += 1;
        }
        out.push(batch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pair: &str, environment: usize, canary: bool) -> Candidate {
        Candidate {
            pair: pair.into(),
            environment,
            canary,
        }
    }

    #[test]
    fn a_rollback_runs_the_last_environment_first_and_its_canaries_last() {
        let pairs = vec![
            c("d1", 0, true),
            c("d2", 0, false),
            c("p1", 2, true),
            c("p2", 2, false),
            c("p3", 2, false),
            c("t1", 1, false),
        ];
        let names = |o: Vec<Candidate>| o.into_iter().map(|c| c.pair).collect::<Vec<_>>();
        assert_eq!(
            names(reverse_order(pairs.clone())),
            ["p3", "p2", "p1", "t1", "d2", "d1"]
        );
        let spec = parse_spec("2").unwrap();
        assert_eq!(
            batches(&reverse_order(pairs), &spec),
            [
                vec!["p3".to_string(), "p2".to_string()],
                vec!["p1".to_string()],
                vec!["t1".to_string()],
                vec!["d2".to_string()],
                vec!["d1".to_string()]
            ]
        );
    }

    #[test]
    fn specs_parse_and_refuse_nonsense() {
        assert_eq!(
            parse_spec("1,2,25%").unwrap(),
            Spec(vec![Size::Count(1), Size::Count(2), Size::Percent(25)])
        );
        assert_eq!(parse_spec("1,2,25%").unwrap().to_string(), "1,2,25%");
        assert!(parse_spec("0").is_err());
        assert!(parse_spec("101%").is_err());
        assert!(parse_spec("two").is_err());
        assert!(parse_spec("").is_err());
    }

    #[test]
    fn environments_in_order_canaries_first() {
        let o = order(vec![
            c("p1", 2, false),
            c("d2", 0, false),
            c("d1", 0, true),
            c("t1", 1, false),
            c("p0", 2, true),
        ]);
        let names: Vec<&str> = o.iter().map(|c| c.pair.as_str()).collect();
        assert_eq!(names, ["d1", "d2", "t1", "p0", "p1"]);
    }

    #[test]
    fn batches_follow_the_spec_and_never_span_environments() {
        let pairs: Vec<Candidate> = (0..10).map(|i| c(&format!("p{i}"), 0, false)).collect();
        let b = batches(&order(pairs), &parse_spec("1,2,25%").unwrap());
        let sizes: Vec<usize> = b.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 2, 3, 3, 1]);
        let mixed = order(vec![
            c("d1", 0, false),
            c("d2", 0, false),
            c("t1", 1, false),
            c("t2", 1, false),
            c("t3", 1, true),
        ]);
        let b = batches(&mixed, &parse_spec("5").unwrap());
        assert_eq!(
            b,
            vec![
                vec!["d1".to_string(), "d2".into()],
                vec!["t3".into()],
                vec!["t1".into(), "t2".into()]
            ]
        );
    }

    #[test]
    fn specs_tolerate_spaces_and_refuse_empty_parts_and_zero_percent() {
        assert_eq!(
            parse_spec(" 2 , 50% ").unwrap(),
            Spec(vec![Size::Count(2), Size::Percent(50)])
        );
        assert_eq!(parse_spec("100%").unwrap(), Spec(vec![Size::Percent(100)]));
        for bad in ["1,,2", "0%", "-1", "%", "1.5", "25 %x", ","] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        let e = parse_spec("1,x").unwrap_err();
        assert!(e.0.contains("`x`"), "{e}");
    }

    #[test]
    fn percentages_round_up_over_the_whole_fleet_and_the_last_size_repeats() {
        let pairs: Vec<Candidate> = (0..5).map(|i| c(&format!("p{i}"), 0, false)).collect();
        // 50% of 5 is 2.5: 3 pairs.
        let b = batches(&order(pairs.clone()), &parse_spec("50%").unwrap());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [3, 2]);
        // 1% of 5 is at least one pair, repeated.
        let b = batches(&order(pairs.clone()), &parse_spec("1%").unwrap());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [1; 5]);
        let b = batches(&order(pairs), &parse_spec("2").unwrap());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    }

    #[test]
    fn canaries_run_alone_and_do_not_use_up_the_spec() {
        let o = order(vec![
            c("a", 0, true),
            c("b", 0, true),
            c("c", 0, false),
            c("d", 0, false),
            c("e", 0, false),
        ]);
        // The first size (1) goes to the first batch after the canaries.
        let b = batches(&o, &parse_spec("1,2").unwrap());
        assert_eq!(
            b,
            vec![
                vec!["a".to_string()],
                vec!["b".into()],
                vec!["c".into()],
                vec!["d".into(), "e".into()]
            ]
        );
        assert!(batches(&[], &parse_spec("3").unwrap()).is_empty());
    }
}
