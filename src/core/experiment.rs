//! An A/B experiment (`baton ab PAIR --change NAME --weight 10 --for 1h`):
//! the share of new requests the updated host gets while the change is
//! compared, how long it is watched and how often it is sampled (read from
//! the command line, kept in the run's start record); one sample of the two
//! hosts over an interval (as the journal keeps it), with the verdict of the
//! same rule that guards a ramp; and the totals a report puts side by side.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::balancer::{self, Judgement, Limits, Window};

/// An experiment's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    /// The percentage of new requests sent to the updated host (1 to 99).
    pub percent: u8,
    /// How long baton watches it (after that the split is held, unwatched,
    /// until `baton ab PAIR --end`).
    #[serde(rename = "for", with = "humantime_serde")]
    pub length: Duration,
    /// How often the two hosts are sampled and compared.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

/// The shortest and longest interval.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));

/// The longest an experiment is watched.
pub const MAX_LENGTH: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why an experiment's settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentError {
    /// The share is not 1 to 99.
    #[error("--weight {0} is not a percentage from 1 to 99: it is the share of new requests the updated host gets (10 is usual; 100 would be a switch)")]
    Percent(u32),
    /// The interval is out of range.
    #[error("--interval {0} is out of range: use 1s to 1h (1m is usual)")]
    Interval(String),
    /// The length is out of range, or shorter than one interval.
    #[error("--for {0} is out of range: use at least one --interval ({1}) and at most 30 days")]
    Length(String, String),
}

impl Experiment {
    /// Checks `--weight`, `--for` and `--interval`.
    pub fn new(
        percent: u32,
        length: Duration,
        interval: Duration,
    ) -> Result<Experiment, ExperimentError> {
        let percent = u8::try_from(percent)
            .ok()
            .filter(|p| (1..=99).contains(p))
            .ok_or(ExperimentError::Percent(percent))?;
        let shown = |d: Duration| humantime::format_duration(d).to_string();
        if interval < INTERVAL_RANGE.0 || interval > INTERVAL_RANGE.1 {
            return Err(ExperimentError::Interval(shown(interval)));
        }
        if length < interval || length > MAX_LENGTH {
            return Err(ExperimentError::Length(shown(length), shown(interval)));
        }
        Ok(Experiment {
            percent,
            length,
            interval,
        })
    }

    /// How many samples a watch of the whole length takes.
    pub fn samples(&self) -> u64 {
        let (l, i) = (self.length.as_millis(), self.interval.as_millis().max(1));
        u64::try_from(l.div_ceil(i)).unwrap_or(u64::MAX)
    }

    /// The weights that hold the split: (old host's, updated host's).
    pub fn weights(&self) -> (u32, u32) {
        balancer::ramp_weights(self.percent)
    }
}

/// What a sample's comparison decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The updated host does as well as the limits ask.
    AsGood,
    /// Too few requests reached the updated host to tell.
    TooFew,
    /// It does worse: the experiment is aborted.
    Worse,
}

/// One host's requests over a sample's interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// The host.
    pub host: String,
    /// Its window: requests, 5xx, mean and highest response time.
    #[serde(flatten)]
    pub window: Window,
}

/// One sample: both hosts over one interval, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// 1 for the first interval.
    pub index: u64,
    /// The interval's real length, in milliseconds.
    pub interval_ms: u64,
    /// The host that keeps the old version (the primary).
    pub old: Side,
    /// The updated host.
    pub new: Side,
    /// What the comparison decided.
    pub verdict: Verdict,
    /// Why, when it is not `as_good`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl Sample {
    /// Compares the two hosts over an interval, by the rule that guards a
    /// ramp (`core::balancer::judge`).
    pub fn judged(
        index: u64,
        interval: Duration,
        (old, new): (Side, Side),
        limits: &Limits,
    ) -> Sample {
        let (verdict, why) = match balancer::judge(&old.window, &new.window, limits) {
            Judgement::Continue => (Verdict::AsGood, None),
            Judgement::TooFew { requests } => (
                Verdict::TooFew,
                Some(format!(
                    "{requests} requests to the updated host, fewer than min_requests {}",
                    limits.min_requests
                )),
            ),
            Judgement::Abort(why) => (Verdict::Worse, Some(why)),
        };
        Sample {
            index,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            old,
            new,
            verdict,
            why,
        }
    }

    /// The sample in a sentence (a step's detail, progress).
    pub fn sentence(&self) -> String {
        let verdict = match self.verdict {
            Verdict::AsGood => "as good".to_string(),
            Verdict::TooFew => format!("too few to compare ({})", self.why_text()),
            Verdict::Worse => format!("WORSE: {}", self.why_text()),
        };
        format!(
            "interval {}: {} {}; {} {}: {verdict}",
            self.index, self.new.host, self.new.window, self.old.host, self.old.window
        )
    }

    fn why_text(&self) -> &str {
        self.why.as_deref().unwrap_or("")
    }
}

/// One host's totals over many samples.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// 5xx among them.
    pub errors: u64,
    /// Error rate, percent.
    pub error_percent: f64,
    /// The mean response time, weighted by each interval's requests, ms.
    pub mean_response_ms: Option<f64>,
    /// The highest response time seen, ms.
    pub high_response_ms: Option<u64>,
}

/// Both hosts' totals over `samples`: (old, new).
pub fn totals(samples: &[Sample]) -> (Totals, Totals) {
    let sum = |pick: fn(&Sample) -> &Window| {
        let mut t = Totals::default();
        let (mut weighted, mut counted) = (0.0, 0u64);
        for s in samples {
            let w = pick(s);
            t.requests += w.requests;
            t.errors += w.errors;
            if let Some(r) = w.response_ms {
                weighted += r as f64 * w.requests as f64;
                counted += w.requests;
            }
            t.high_response_ms = t.high_response_ms.max(w.response_max_ms);
        }
        t.error_percent = if t.requests == 0 {
            0.0
        } else {
            t.errors as f64 * 100.0 / t.requests as f64
        };
        t.mean_response_ms = (counted > 0).then(|| weighted / counted as f64);
        t
    };
    (sum(|s| &s.old.window), sum(|s| &s.new.window))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(requests: u64, errors: u64, mean: u64, high: u64) -> Window {
        Window {
            requests,
            errors,
            response_ms: Some(mean),
            response_max_ms: Some(high),
        }
    }

    fn side(host: &str, w: Window) -> Side {
        Side {
            host: host.into(),
            window: w,
        }
    }

    #[test]
    fn settings_are_checked_with_the_fix() {
        let m = Duration::from_secs(60);
        let e = Experiment::new(10, 60 * m, m).unwrap();
        assert_eq!((e.weights(), e.samples()), ((90, 10), 60));
        assert_eq!(
            Experiment::new(10, 90 * Duration::from_secs(1), m)
                .unwrap()
                .samples(),
            2
        );
        for bad in [0, 100, 1000] {
            let err = Experiment::new(bad, m, m).unwrap_err();
            assert_eq!(err, ExperimentError::Percent(bad));
            assert!(err.to_string().contains("1 to 99"), "{err}");
        }
        let err = Experiment::new(10, m, Duration::from_millis(500)).unwrap_err();
        assert!(err.to_string().contains("1s to 1h"), "{err}");
        let err = Experiment::new(10, Duration::from_secs(30), m).unwrap_err();
        assert!(
            err.to_string().contains("at least one --interval (1m)"),
            "{err}"
        );
        assert!(Experiment::new(10, MAX_LENGTH + m, m).is_err());
    }

    #[test]
    fn a_sample_is_judged_by_the_ramps_rule() {
        let limits = Limits::default();
        let s = Sample::judged(
            1,
            Duration::from_secs(60),
            (
                side("teal", window(900, 0, 2, 9)),
                side("coral", window(100, 20, 2, 7)),
            ),
            &limits,
        );
        assert_eq!(s.verdict, Verdict::Worse);
        assert!(s.sentence().contains("WORSE"), "{}", s.sentence());
        assert!(s.sentence().starts_with("interval 1: coral 100 requests"));
        let s = Sample::judged(
            2,
            Duration::from_secs(60),
            (
                side("teal", window(900, 0, 2, 9)),
                side("coral", window(100, 0, 3, 7)),
            ),
            &limits,
        );
        assert_eq!((s.verdict, s.why), (Verdict::AsGood, None));
        let s = Sample::judged(
            3,
            Duration::from_secs(60),
            (
                side("teal", window(90, 0, 2, 9)),
                side("coral", window(10, 0, 2, 7)),
            ),
            &limits,
        );
        assert_eq!(s.verdict, Verdict::TooFew);
    }

    #[test]
    fn totals_weigh_each_intervals_mean_by_its_requests() {
        let limits = Limits::default();
        let mk = |i, old: Window, new: Window| {
            Sample::judged(
                i,
                Duration::from_secs(1),
                (side("a", old), side("b", new)),
                &limits,
            )
        };
        let samples = [
            mk(1, window(300, 3, 10, 50), window(100, 0, 4, 20)),
            mk(2, window(100, 1, 30, 80), window(100, 2, 8, 90)),
        ];
        let (old, new) = totals(&samples);
        assert_eq!((old.requests, old.errors), (400, 4));
        assert!((old.error_percent - 1.0).abs() < 1e-9);
        assert_eq!(old.mean_response_ms, Some(15.0));
        assert_eq!(old.high_response_ms, Some(80));
        assert_eq!((new.requests, new.errors), (200, 2));
        assert_eq!(new.mean_response_ms, Some(6.0));
        assert_eq!(new.high_response_ms, Some(90));
        assert_eq!(totals(&[]).0.mean_response_ms, None);
    }

    #[test]
    fn a_sample_survives_the_journal() {
        let s = Sample::judged(
            4,
            Duration::from_millis(1500),
            (
                side("teal", window(900, 0, 2, 9)),
                side("coral", window(100, 20, 2, 7)),
            ),
            &Limits::default(),
        );
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"response_max_ms\":7"), "{text}");
        assert_eq!(serde_json::from_str::<Sample>(&text).unwrap(), s);
        let e = Experiment::new(10, Duration::from_secs(3600), Duration::from_secs(60)).unwrap();
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, r#"{"percent":10,"for":"1h","interval":"1m"}"#);
        assert_eq!(serde_json::from_str::<Experiment>(&text).unwrap(), e);
    }
}
