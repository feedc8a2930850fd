//! `[roles]` of a pair: the five role hooks (`demote`, `position`,
//! `promote`, `follow`, `resume`) all given and not blank, with only the
//! placeholders a role hook is filled with; each hook's timeout (its own,
//! else `timeout`, else 60 s) and the catch-up timeout in range; `max_lag`
//! and `max_lag_on_failover`. Also: a check's `role` that names the primary
//! or the standby is fine without `[roles]` (it selects where the check
//! runs), so nothing here depends on the checks.

use std::time::Duration;

use crate::config::diag::{Key, Source};
use crate::config::raw::RolesFile;
use crate::config::{RoleHook, Roles};

use super::values::{placeholders_in, ROLE_PLACEHOLDERS};
use super::Sink;

use Key::Name as N;

/// A role hook's time limit when neither its own nor `timeout` is given.
pub(crate) const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a hand-over waits for the standby by default (repmgr's
/// `shutdown_check_timeout` is 60 s; a caught-up standby takes
/// milliseconds).
pub(crate) const DEFAULT_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Patroni's `maximum_lag_on_failover`: 1 MiB.
pub(crate) const DEFAULT_MAX_LAG_ON_FAILOVER: u64 = 1024 * 1024;

/// What each hook is for, as the fix of a missing one says.
const HOOKS: [(&str, &str); 5] = [
    (
        "demote",
        "the primary stops accepting writes and flushes, e.g. a clean fast shutdown",
    ),
    (
        "position",
        "prints `primary|standby|stopped POSITION [SECONDS]` for the host",
    ),
    (
        "promote",
        "the standby becomes writable; returns once it is",
    ),
    (
        "follow",
        "the host becomes a standby of {peer_address}, rewinding first if it must",
    ),
    (
        "resume",
        "a demoted primary accepts writes again (the undo of demote)",
    ),
];

/// The pair's role hooks; `None` without `[roles]` or with a problem in it.
pub(super) fn roles(
    raw: Option<&RolesFile>,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
) -> Option<Roles> {
    let r = raw?;
    let start = sink.problems.len();
    let timeout_of = |sink: &mut Sink<'_>, key: &'static str, v: Option<Duration>| {
        if let Some(t) = v {
            if t < Duration::from_secs(1) || t > Duration::from_secs(3600) {
                sink.push(src.at(
                    &[N("roles"), N(key)],
                    format!("{key} {} is out of range", humantime::format_duration(t)),
                    "use between \"1s\" and \"1h\"",
                ));
            }
        }
        v
    };
    let default = timeout_of(sink, "timeout", r.timeout).unwrap_or(DEFAULT_HOOK_TIMEOUT);
    let hook = |sink: &mut Sink<'_>,
                key: &'static str,
                command: Option<&String>,
                tkey: &'static str,
                timeout: Option<Duration>| {
        let timeout = timeout_of(sink, tkey, timeout).unwrap_or(default);
        let what = HOOKS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, w)| *w);
        match command {
            None => {
                sink.missing(
                    src,
                    &[N("roles"), N(key)],
                    src.at(
                        &[N("roles")],
                        format!("[roles] has no `{key}` hook"),
                        format!("add `{key} = \"COMMAND\"`: {what} (all five role hooks are needed to hand the role over and to undo it)"),
                    ),
                );
                None
            }
            Some(c) if c.trim().is_empty() => {
                sink.push(src.at(
                    &[N("roles"), N(key)],
                    format!("the `{key}` hook is empty"),
                    format!("give the command that runs on the host: {what}"),
                ));
                None
            }
            Some(c) => {
                if let Err(bad) = placeholders_in(c, &ROLE_PLACEHOLDERS) {
                    sink.push(src.at(
                        &[N("roles"), N(key)],
                        format!("unknown placeholder `{bad}` in the `{key}` hook"),
                        "only {host} and {address} (the host it runs on) and {peer} and {peer_address} (the other host) are filled in, shell-quoted",
                    ));
                }
                Some(RoleHook {
                    command: c.clone(),
                    timeout,
                })
            }
        }
    };
    let demote = hook(
        sink,
        "demote",
        r.demote.as_ref(),
        "demote_timeout",
        r.demote_timeout,
    );
    let position = hook(
        sink,
        "position",
        r.position.as_ref(),
        "position_timeout",
        r.position_timeout,
    );
    let promote = hook(
        sink,
        "promote",
        r.promote.as_ref(),
        "promote_timeout",
        r.promote_timeout,
    );
    let follow = hook(
        sink,
        "follow",
        r.follow.as_ref(),
        "follow_timeout",
        r.follow_timeout,
    );
    let resume = hook(
        sink,
        "resume",
        r.resume.as_ref(),
        "resume_timeout",
        r.resume_timeout,
    );
    let catch_up_timeout = timeout_of(sink, "catch_up_timeout", r.catch_up_timeout)
        .unwrap_or(DEFAULT_CATCH_UP_TIMEOUT);
    let max_lag = r.max_lag.unwrap_or(0);
    let max_lag_on_failover = r.max_lag_on_failover.unwrap_or(DEFAULT_MAX_LAG_ON_FAILOVER);
    if max_lag > max_lag_on_failover {
        sink.push(src.at(
            &[N("roles"), N("max_lag")],
            format!("max_lag {max_lag} is more than max_lag_on_failover {max_lag_on_failover}"),
            "a planned hand-over must not accept more loss than a failover: lower max_lag (0 loses nothing) or raise max_lag_on_failover",
        ));
    }
    if sink.problems.len() > start {
        return None;
    }
    Some(Roles {
        demote: demote?,
        position: position?,
        promote: promote?,
        follow: follow?,
        resume: resume?,
        catch_up_timeout,
        max_lag,
        max_lag_on_failover,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::check;
    use super::*;
    use crate::config::raw::PairFile;

    fn validate(text: &str) -> (Option<Roles>, Vec<String>) {
        let (r, d) = check(text, |raw: &PairFile, src, sink| {
            roles(raw.roles.as_ref(), src, sink)
        });
        (
            r,
            d.iter()
                .map(|d| format!("{} | {}", d.message, d.fix))
                .collect(),
        )
    }

    const ALL: &str = "[roles]\ndemote = \"d\"\nposition = \"p\"\npromote = \"pr {host}\"\nfollow = \"f {peer_address}\"\nresume = \"r\"\n";

    #[test]
    fn five_hooks_with_their_defaults() {
        let (r, d) = validate(ALL);
        assert!(d.is_empty(), "{d:?}");
        let r = r.expect("roles");
        assert_eq!(r.follow.command, "f {peer_address}");
        assert_eq!(r.demote.timeout, DEFAULT_HOOK_TIMEOUT);
        assert_eq!(r.catch_up_timeout, DEFAULT_CATCH_UP_TIMEOUT);
        assert_eq!((r.max_lag, r.max_lag_on_failover), (0, 1024 * 1024));
        // No [roles]: no roles, no problem.
        let (r, d) = validate("environment = \"dev\"\n");
        assert!(r.is_none() && d.is_empty());
    }

    #[test]
    fn each_hook_takes_its_own_timeout_over_the_shared_one() {
        let (r, d) = validate(&format!(
            "{ALL}timeout = \"20s\"\nfollow_timeout = \"5m\"\ncatch_up_timeout = \"10s\"\nmax_lag = 16\nmax_lag_on_failover = 4096\n"
        ));
        assert!(d.is_empty(), "{d:?}");
        let r = r.expect("roles");
        assert_eq!(r.follow.timeout, Duration::from_secs(300));
        assert_eq!(r.promote.timeout, Duration::from_secs(20));
        assert_eq!(r.catch_up_timeout, Duration::from_secs(10));
        assert_eq!((r.max_lag, r.max_lag_on_failover), (16, 4096));
    }

    #[test]
    fn a_missing_blank_or_badly_filled_hook_is_refused_with_what_it_is_for() {
        let (r, d) = validate(
            "[roles]\ndemote = \" \"\nposition = \"p {port}\"\npromote = \"x\"\nfollow = \"f\"\n",
        );
        assert!(r.is_none());
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].starts_with("the `demote` hook is empty"), "{d:?}");
        assert!(d[1].contains("unknown placeholder `{port}`"), "{d:?}");
        assert!(
            d[2].starts_with("[roles] has no `resume` hook") && d[2].contains("undo of demote"),
            "{d:?}"
        );
    }

    #[test]
    fn timeouts_and_lags_out_of_range_are_refused() {
        let (r, d) = validate(&format!(
            "{ALL}promote_timeout = \"0s\"\ncatch_up_timeout = \"2h\"\nmax_lag = 10\nmax_lag_on_failover = 5\n"
        ));
        assert!(r.is_none());
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(
            d[0].starts_with("promote_timeout 0s is out of range"),
            "{d:?}"
        );
        assert!(
            d[1].starts_with("catch_up_timeout 2h is out of range"),
            "{d:?}"
        );
        assert!(
            d[2].starts_with("max_lag 10 is more than max_lag_on_failover 5"),
            "{d:?}"
        );
    }

    #[test]
    fn an_unknown_key_or_a_negative_lag_is_one_message() {
        let (r, d) = validate(&format!("{ALL}demote_timout = \"5s\"\nmax_lag = -1\n"));
        assert_eq!(d.len(), 2, "{d:?}");
        // Both refused by the parse; what was read is valid.
        assert!(r.is_some());
    }
}
