//! A ramp (`apply --ramp 1,10,50,100 --step 2m`): the shares of new
//! requests the updated host gets, one step after the other, and how long
//! each step lasts before the two hosts are compared. Read from the
//! command line, kept in the run's start record. The last share is always
//! 100: the switch that follows the ramp's steps.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A ramp's steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ramp {
    /// The percentages of new requests sent to the updated host, strictly
    /// growing, each below 100 (the switch is the 100).
    pub percents: Vec<u8>,
    /// How long each step lasts before the comparison.
    #[serde(with = "humantime_serde")]
    pub step: Duration,
}

/// The shortest and longest step.
pub const STEP_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));

/// Why a ramp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RampError {
    /// A share is not a whole number from 1 to 100.
    #[error("`{0}` in --ramp is not a percentage from 1 to 100: write whole numbers, like --ramp 1,10,50,100")]
    Percent(String),
    /// The shares do not grow.
    #[error("--ramp must grow step by step ({0} does not follow {1}): like --ramp 1,10,50,100")]
    NotGrowing(u8, u8),
    /// Nothing but the switch.
    #[error("--ramp has no step below 100: a ramp sends part of the requests first, like --ramp 10,50,100 (a plain apply switches all at once)")]
    Empty,
    /// The step is out of range.
    #[error("--step {0} is out of range: use 1s to 24h (2m is usual)")]
    Step(String),
}

impl Ramp {
    /// Reads `--ramp` (comma-separated percentages; a final 100 may be
    /// left out) and `--step`.
    pub fn parse(percents: &str, step: Duration) -> Result<Ramp, RampError> {
        let mut out: Vec<u8> = Vec::new();
        let mut last: Option<u8> = None;
        for word in percents.split(',').map(str::trim) {
            let p: u8 = word
                .strip_suffix('%')
                .unwrap_or(word)
                .parse()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| RampError::Percent(word.chars().take(20).collect()))?;
            if let Some(l) = last {
                if p <= l || l == 100 {
                    return Err(RampError::NotGrowing(p, l));
                }
            }
            last = Some(p);
            if p < 100 {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(RampError::Empty);
        }
        if step < STEP_RANGE.0 || step > STEP_RANGE.1 {
            return Err(RampError::Step(
                humantime::format_duration(step).to_string(),
            ));
        }
        Ok(Ramp {
            percents: out,
            step,
        })
    }
}

impl fmt::Display for Ramp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shares: Vec<String> = self.percents.iter().map(|p| format!("{p}%")).collect();
        write!(
            f,
            "{}, then 100% ({} per step)",
            shares.join(", "),
            humantime::format_duration(self.step)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_MIN: Duration = Duration::from_secs(120);

    #[test]
    fn a_ramp_is_growing_shares_ending_in_the_switch() {
        let r = Ramp::parse("1,10,50,100", TWO_MIN).unwrap();
        assert_eq!(r.percents, [1, 10, 50]);
        assert_eq!(r.to_string(), "1%, 10%, 50%, then 100% (2m per step)");
        // The final 100 may be left out, and percent signs written.
        assert_eq!(Ramp::parse("10%, 50%", TWO_MIN).unwrap().percents, [10, 50]);
    }

    #[test]
    fn a_bad_ramp_is_refused_saying_how_to_write_it() {
        for (text, want) in [
            ("0,50", RampError::Percent("0".into())),
            ("10,abc", RampError::Percent("abc".into())),
            ("10,150", RampError::Percent("150".into())),
            ("50,10,100", RampError::NotGrowing(10, 50)),
            ("10,10", RampError::NotGrowing(10, 10)),
            ("100,50", RampError::NotGrowing(50, 100)),
            ("100", RampError::Empty),
            ("", RampError::Percent(String::new())),
        ] {
            assert_eq!(Ramp::parse(text, TWO_MIN), Err(want), "{text}");
        }
        assert!(matches!(
            Ramp::parse("10", Duration::from_millis(500)),
            Err(RampError::Step(_))
        ));
        assert!(Ramp::parse("10", Duration::from_secs(25 * 3600)).is_err());
        assert!(RampError::Empty.to_string().contains("--ramp 10,50,100"));
    }

    #[test]
    fn a_ramp_survives_the_journal() {
        let r = Ramp::parse("1,10,50", TWO_MIN).unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Ramp>(&text).unwrap(), r);
    }
}
