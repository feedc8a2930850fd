//! baton.toml's own settings: the state directory, the environments in
//! order, the soak time, and (through [`maintenance`](super::maintenance)
//! and [`ssh`](super::ssh)) the defaults every pair inherits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::diag::{printable, Key, Source};
use crate::config::raw::GlobalFile;
use crate::config::{Maintenance, Settings, StoreKind, Watch};

use super::maintenance::maintenance_part;
use super::notify::notify_part;
use super::paths::{resolve, shown};
use super::ssh::durations_ok;
use super::store::store;
use super::values::valid_name;
use super::Sink;

use Key::{Index as I, Name as N};

/// baton.toml's settings, `None` when any is refused.
pub(super) fn settings(
    g: &GlobalFile,
    src: &Source<'_>,
    base: &Path,
    sink: &mut Sink<'_>,
) -> Option<Settings> {
    let mut ok = true;
    let state_dir = match g.state_dir.as_deref() {
        Some("") => {
            sink.push(src.at(
                &[N("state_dir")],
                "state_dir is empty",
                "name a directory, like \"/var/lib/baton\"",
            ));
            ok = false;
            PathBuf::new()
        }
        Some(s) if s.contains('\0') => {
            sink.push(src.at(
                &[N("state_dir")],
                format!("state_dir `{}` contains a NUL character", printable(s)),
                "name a directory, like \"/var/lib/baton\"",
            ));
            ok = false;
            PathBuf::new()
        }
        Some(s) => resolve(base, s),
        None => resolve(base, "state"),
    };
    // It is created on first use; something else in its place is refused now.
    if ok && std::fs::symlink_metadata(&state_dir).is_ok() && !state_dir.is_dir() {
        sink.push(src.at(
            &[N("state_dir")],
            format!("state_dir {} exists and is not a directory", shown(&state_dir)),
            "point `state_dir` at a directory (baton creates it, mode 0700, if it does not exist), or move the file away",
        ));
        ok = false;
    }
    let environments = g
        .environments
        .clone()
        .unwrap_or_else(|| vec!["dev".into(), "test".into(), "prod".into()]);
    if environments.is_empty() {
        sink.push(src.at(
            &[N("environments")],
            "environments is empty",
            "list the environments in order, like [\"dev\", \"test\", \"prod\"]",
        ));
        ok = false;
    }
    for (i, e) in environments.iter().enumerate() {
        if !valid_name(e) {
            sink.push(src.at(
                &[N("environments"), I(i)],
                format!("`{e}` is not a valid environment name"),
                "use letters, digits, `-` and `_`",
            ));
            ok = false;
        } else if environments[..i].contains(e) {
            sink.push(src.at(
                &[N("environments"), I(i)],
                format!("environment `{e}` is listed twice"),
                "list each environment once, in order",
            ));
            ok = false;
        }
    }
    // The global [ssh] table is checked as part of each pair (the pair may
    // override it), but its durations are checked here once.
    if let Some(ssh) = &g.ssh {
        ok &= durations_ok(ssh, src, sink);
    }
    if let Some(soak) = g.soak {
        if soak > Duration::from_secs(90 * 86400) {
            sink.push(src.at(
                &[N("soak")],
                format!("soak {} is out of range", humantime::format_duration(soak)),
                "use at most \"90days\" (\"1h\" or \"1day\" is usual)",
            ));
            ok = false;
        }
    }
    let mut holds = std::collections::BTreeMap::new();
    for (env, text) in g.holds.iter().flatten() {
        let at = [N("holds"), N(env.as_str())];
        if !environments.contains(env) {
            sink.push(src.at(
                &at,
                format!("[holds] names environment `{env}`, which is not in `environments`"),
                format!("use one of: {}", environments.join(", ")),
            ));
            ok = false;
            continue;
        }
        match humantime::parse_duration(text) {
            Ok(d) if d <= crate::config::MAX_HOLD => {
                if !d.is_zero() {
                    holds.insert(env.clone(), d);
                }
            }
            _ => {
                sink.push(src.at(
                    &at,
                    format!("the hold of `{env}`, `{text}`, is not a duration up to 30 days"),
                    "write it like \"24h\" or \"2days\" (\"0s\": no hold)",
                ));
                ok = false;
            }
        }
    }
    let store = store(g.store.as_ref(), src, base, sink);
    ok &= store.is_some();
    let store = store.unwrap_or_default();
    let watch = watch(g, &store, src, sink);
    ok &= watch.is_some();
    let start = sink.problems.len();
    let part = maintenance_part(g.maintenance.as_ref(), src, sink);
    ok &= sink.problems.len() == start;
    let start = sink.problems.len();
    let notify = notify_part(g.notify.as_ref(), src, sink).over(&crate::config::Notify::none());
    ok &= sink.problems.len() == start;
    ok.then(|| Settings {
        state_dir,
        environments,
        soak: g.soak.filter(|s| !s.is_zero()),
        maintenance: part.over(&Maintenance::any_time()),
        holds,
        finish_expired_holds: g.finish_expired_holds.unwrap_or(true),
        watch: watch.unwrap_or_default(),
        notify,
        store,
    })
}

/// `[watch]`, each key within its range (defaults for those not given).
fn watch(
    g: &GlobalFile,
    store: &StoreKind,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
) -> Option<Watch> {
    let d = Watch::default();
    let Some(w) = &g.watch else {
        return Some(d);
    };
    let start = sink.problems.len();
    let within =
        |key: &str, v: Duration, lo: Duration, hi: Duration, fix: &str, sink: &mut Sink<'_>| {
            if v < lo || v > hi {
                sink.push(src.at(
                    &[N("watch"), N(key)],
                    format!("{key} {} is out of range", humantime::format_duration(v)),
                    fix,
                ));
            }
        };
    if let Some(i) = w.interval {
        within(
            "interval",
            i,
            Duration::from_secs(1),
            Duration::from_secs(3600),
            "use between \"1s\" and \"1h\" (\"10s\" is usual)",
            sink,
        );
    }
    if let Some(c) = w.cooldown {
        within(
            "cooldown",
            c,
            Duration::ZERO,
            Duration::from_secs(7 * 86400),
            "use at most \"7days\" (\"10m\" is usual; \"0s\": none)",
            sink,
        );
    }
    if let Some(t) = w.failure_threshold {
        if !(1..=100).contains(&t) {
            sink.push(src.at(
                &[N("watch"), N("failure_threshold")],
                format!("failure_threshold {t} is out of range"),
                "use 1 to 100 (3 is usual: one bad observation is not enough)",
            ));
        }
    }
    if let Some(q) = w.quorum {
        // One controller is one watcher: with local files a quorum above
        // one could never be met, and a primary that does not answer would
        // never be failed over. Several watchers agree through etcd.
        if q > 1 && *store == StoreKind::Local {
            sink.push(src.at(
                &[N("watch"), N("quorum")],
                format!("quorum {q} needs {q} watchers sharing one store; with the local store there is one"),
                "use 1 (the failover's fence still has to succeed), or keep the state in etcd (`[store] kind = \"etcd\"`) and run that many watchers",
            ));
        } else if !(1..=9).contains(&q) {
            sink.push(src.at(
                &[N("watch"), N("quorum")],
                format!("quorum {q} is out of range"),
                "use 1 to 9 (1 with one controller; a majority of the watchers with several)",
            ));
        }
    }
    (sink.problems.len() == start).then(|| Watch {
        interval: w.interval.unwrap_or(d.interval),
        failure_threshold: w.failure_threshold.unwrap_or(d.failure_threshold),
        cooldown: w.cooldown.unwrap_or(d.cooldown),
        quorum: w.quorum.unwrap_or(d.quorum),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, messages};
    use super::*;

    fn global(text: &str) -> (Option<Settings>, Vec<String>) {
        let (s, d) = check(text, |g: &GlobalFile, src, sink| {
            settings(g, src, Path::new("/nonexistent-baton-base"), sink)
        });
        (s, messages(&d))
    }

    #[test]
    fn defaults_are_three_environments_and_no_soak() {
        let (s, m) = global("soak = \"0s\"\n");
        assert!(m.is_empty(), "{m:?}");
        let s = s.expect("valid");
        assert_eq!(s.environments, ["dev", "test", "prod"]);
        assert_eq!(s.soak, None, "a zero soak is no soak");
        assert_eq!(s.state_dir, PathBuf::from("/nonexistent-baton-base/state"));
    }

    #[test]
    fn holds_are_per_known_environment_and_at_most_thirty_days() {
        let (s, m) = global("[holds]\nprod = \"24h\"\ntest = \"0s\"\n");
        assert!(m.is_empty(), "{m:?}");
        let s = s.expect("valid");
        assert_eq!(
            s.holds.into_iter().collect::<Vec<_>>(),
            [("prod".to_string(), Duration::from_secs(86400))],
            "a zero hold is no hold"
        );
        assert!(s.finish_expired_holds, "on by default");
        let (s, m) = global("finish_expired_holds = false\n[holds]\nstaging = \"1h\"\nprod = \"31days\"\ndev = \"soon\"\n");
        assert!(s.is_none());
        assert_eq!(
            m,
            [
                "5:7: the hold of `dev`, `soon`, is not a duration up to 30 days",
                "4:8: the hold of `prod`, `31days`, is not a duration up to 30 days",
                "3:11: [holds] names environment `staging`, which is not in `environments`"
            ]
        );
    }

    #[test]
    fn watch_settings_have_defaults_and_ranges() {
        let (s, m) = global("");
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(s.expect("valid").watch, Watch::default());
        let (s, m) = global(
            "[watch]\ninterval = \"2s\"\nfailure_threshold = 2\ncooldown = \"0s\"\nquorum = 1\n",
        );
        assert!(m.is_empty(), "{m:?}");
        let w = s.expect("valid").watch;
        assert_eq!(
            (w.interval, w.failure_threshold, w.cooldown, w.quorum),
            (Duration::from_secs(2), 2, Duration::ZERO, 1)
        );
        let (s, m) = global("[watch]\nquorum = 2\n");
        assert!(s.is_none());
        assert_eq!(
            m,
            ["2:10: quorum 2 needs 2 watchers sharing one store; with the local store there is one"]
        );
        let (s, m) =
            global("[watch]\ninterval = \"500ms\"\nfailure_threshold = 0\nquorum = 10\nlag = 1\n");
        assert!(s.is_none());
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(
            m.iter()
                .any(|l| l.contains("interval 500ms is out of range")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|l| l.contains("failure_threshold 0 is out of range")),
            "{m:?}"
        );
        assert!(
            m.iter().any(|l| l.contains("quorum 10 needs 10 watchers")),
            "{m:?}"
        );
    }

    #[test]
    fn a_soak_over_ninety_days_is_refused() {
        let (s, m) = global("soak = \"91days\"\n");
        assert!(s.is_none());
        // humantime shows 91 days in its own months (30.44 days).
        assert_eq!(m, ["1:8: soak 2months 30days 2h 52m 48s is out of range"]);
        let (s, m) = global("soak = \"90days\"\n");
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(
            s.and_then(|s| s.soak),
            Some(Duration::from_secs(90 * 86400))
        );
    }

    #[test]
    fn an_empty_state_dir_and_a_bad_environment_name_are_refused() {
        let (s, m) = global("state_dir = \"\"\nenvironments = [\"dev\", \"-x\"]\n");
        assert!(s.is_none());
        assert_eq!(
            m,
            [
                "1:13: state_dir is empty",
                "2:24: `-x` is not a valid environment name"
            ]
        );
    }
}
