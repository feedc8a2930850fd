//! Verification with each check's policy: attempts every `interval` until
//! `successes` consecutive passes, failing once more than `failures_allowed`
//! attempts failed. Directly against a host, or through the service address
//! for an observation period, where the answer must come from the expected
//! host (`{host}` in the checks is that host's name).

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::config::{Check, Host};
use crate::io::checks::{self, Probe};
use crate::io::ssh::SshHost;

/// A check that failed with its policy, or during the observation
/// period: what was seen, in a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

/// Runs one check with its policy. `Ok(last detail)` or `Err(why)`.
pub async fn check(
    check: &Check,
    target: &Host,
    ssh: Option<&SshHost>,
) -> Result<String, CheckFailed> {
    let mut streak = 0;
    let mut failures = 0;
    loop {
        let Probe { ok, detail, .. } = checks::probe(check, target, ssh).await;
        if ok {
            streak += 1;
            if streak >= check.successes {
                return Ok(detail);
            }
        } else {
            streak = 0;
            failures += 1;
            if failures > check.failures_allowed {
                return Err(CheckFailed(format!(
                    "check {} failed on {}: {detail}",
                    check.name, target.name
                )));
            }
        }
        tokio::time::sleep(check.interval).await;
    }
}

/// The observation period through the service address, after the checks
/// passed there with their policy: they keep passing on every interval
/// until the period ends. `service` carries the service address and the
/// name of the host that must be answering.
pub async fn period(
    checks: &[Check],
    service: &Host,
    ssh: Option<&SshHost>,
    period: Duration,
) -> Result<String, CheckFailed> {
    let started = Instant::now();
    let interval = checks
        .iter()
        .map(|c| c.interval)
        .min()
        .unwrap_or(Duration::from_secs(1));
    let mut rounds = 0;
    while started.elapsed() < period {
        tokio::time::sleep(interval.min(period.saturating_sub(started.elapsed()))).await;
        let probes = join_all(checks.iter().map(|c| checks::probe(c, service, ssh))).await;
        rounds += 1;
        if let Some(p) = probes.iter().find(|p| !p.ok) {
            return Err(CheckFailed(format!(
                "during the observation period ({} of {}), check {} failed through {}: {}",
                humantime::format_duration(round_ms(started.elapsed())),
                humantime::format_duration(period),
                p.check,
                service.address,
                p.detail
            )));
        }
    }
    Ok(format!(
        "{} answered through {} for {} ({rounds} more rounds)",
        service.name,
        service.address,
        humantime::format_duration(round_ms(started.elapsed()))
    ))
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
