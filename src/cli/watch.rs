//! `baton watch [PAIR...]`: the long-running watcher. Every `interval` it
//! observes every selected pair at once (as `status` does), judges each by
//! `core::watch` (consecutive failures, the threshold, the guards), writes
//! each pair's last observation to the state directory (`PAIR.watch.json`,
//! which `status` and the metrics show), and runs `failover` for a pair
//! whose verdict says so, recorded like any run. It never runs `apply` or
//! `switchover`. `baton pause PAIR` / `resume PAIR` stop and restart its
//! acting on a pair (recorded in `PAIR.pause.json` and the watch log).
//! SIGINT or SIGTERM ends it between two observations (a failover in
//! flight goes to its end first, as every run does on a first signal).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::cli::apply::exit_of;
use crate::cli::exit::Exit;
use crate::cli::progress::{Mode, Printer};
use crate::config::{Config, Pair};
use crate::core::assess::Roles;
use crate::core::cycle::Kind;
use crate::core::watch::{judge, PairWatch, Seen, Verdict};
use crate::exec::run::{self, Request};
use crate::io::observe;
use crate::store::state::{now_rfc3339, Pause, StateStore};

/// What `PAIR.watch.json` holds: the watcher's last observation of the pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The watcher (`host:pid`).
    pub watcher: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Seconds between observations.
    pub interval_secs: u64,
    /// Failed observations of the primary in a row.
    pub failures: u32,
    /// The threshold.
    pub threshold: u32,
    /// When the last automatic failover began (seconds since the epoch).
    pub last_failover: Option<u64>,
    /// What the watcher made of it, in words.
    pub verdict: String,
}

/// The file of a pair's last observation.
pub fn observed_file(pair: &str) -> String {
    format!("{pair}.watch.json")
}

/// Options of `baton watch`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// One observation of every pair, then exit.
    pub once: bool,
    /// One JSON object per observation.
    pub json: bool,
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn watcher_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "controller".into());
    format!("{host}:{}", std::process::id())
}

/// Watches until a stop signal (or once). `template`: the request each
/// automatic failover starts from (operator, members of the gate).
pub async fn watch(config: &Config, template: &Request, opts: Options) -> Exit {
    let store = StateStore::new(&config.settings.state_dir);
    let policy = config.settings.watch.policy();
    let interval = config.settings.watch.interval;
    let me = watcher_id();
    let mut watches: BTreeMap<String, PairWatch> = BTreeMap::new();
    for pair in config.pairs.values() {
        // A restarted watcher keeps the cooldown of the last failover.
        let last = store
            .load_json::<Observed>(&observed_file(&pair.name))
            .ok()
            .flatten()
            .and_then(|o| o.last_failover);
        watches.insert(
            pair.name.clone(),
            PairWatch {
                last_failover: last,
                ..PairWatch::default()
            },
        );
    }
    let mut worst = Exit::Ok;
    say(
        opts.json,
        &serde_json::json!({"event": "watch", "watcher": me, "pairs": config.pairs.keys().collect::<Vec<_>>(), "interval_secs": interval.as_secs(), "failure_threshold": policy.failure_threshold, "cooldown_secs": policy.cooldown_secs, "quorum": policy.quorum}),
        &format!(
            "watching {} pair(s) every {} (failover after {} failed observations in a row, at most one per {} per pair)",
            config.pairs.len(),
            humantime::format_duration(interval),
            policy.failure_threshold,
            humantime::format_duration(config.settings.watch.cooldown)
        ),
    );
    loop {
        let started = std::time::Instant::now();
        let dir = &config.settings.state_dir;
        let seen = join_all(config.pairs.values().map(|p| look(p, &store, dir))).await;
        let now = epoch_secs();
        let mut pending: Vec<Pending<'_>> = Vec::new();
        for (pair, looked) in config.pairs.values().zip(seen) {
            let w = watches.entry(pair.name.clone()).or_default();
            let (verdict, detail) = match looked {
                Err(why) => (None, format!("not judged: {why}")),
                Ok((s, paused)) => {
                    w.paused = paused;
                    // One watcher: it is the only one that can agree.
                    let v = judge(w, &s, &policy, now, 1);
                    let d = describe(&v);
                    (Some(v), d)
                }
            };
            let record = Observed {
                watcher: me.clone(),
                at: now_rfc3339(),
                interval_secs: interval.as_secs(),
                failures: w.failures,
                threshold: policy.failure_threshold,
                last_failover: w.last_failover,
                verdict: detail.clone(),
            };
            if let Err(e) = store.save_json(&observed_file(&pair.name), &record) {
                eprintln!("baton: watch: {}: {e}", pair.name);
            }
            say(
                opts.json,
                &serde_json::json!({"event": "observed", "pair": pair.name, "at": record.at, "failures": w.failures, "verdict": verdict}),
                &format!("{}  {}", pair.name, detail),
            );
            if let Some(Verdict::Failover { from, to, count }) = verdict {
                pending.push(Pending {
                    pair,
                    from,
                    to,
                    count,
                    record,
                });
            }
        }
        // The failovers of this round run side by side (each pair has its
        // own lock), so one pair's long failover (a TTL's drain) holds no
        // other back; none starts once a stop was asked for.
        if crate::exec::signals::count() == 0 && !pending.is_empty() {
            let ran = join_all(
                pending
                    .iter()
                    .map(|p| fail_over(config, template, &me, p, (&store, dir), opts.json)),
            )
            .await;
            for (p, finished) in pending.iter().zip(ran) {
                let Some(finished) = finished else {
                    continue;
                };
                worst = worst.worst(exit_of(&finished));
                // The cooldown starts with a failover that began, not with
                // one refused before its steps (a lock held, a stop).
                if finished.outcome == crate::core::cycle::Outcome::NotStarted {
                    continue;
                }
                let w = watches.entry(p.pair.name.clone()).or_default();
                crate::core::watch::started(w, now);
                let record = Observed {
                    last_failover: w.last_failover,
                    failures: w.failures,
                    ..p.record.clone()
                };
                if let Err(e) = store.save_json(&observed_file(&p.pair.name), &record) {
                    eprintln!("baton: watch: {}: {e}", p.pair.name);
                }
            }
        }
        if opts.once || crate::exec::signals::count() > 0 {
            break;
        }
        let left = interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            _ = crate::exec::signals::first() => {}
        }
        if crate::exec::signals::count() > 0 {
            break;
        }
    }
    say(
        opts.json,
        &serde_json::json!({"event": "stopped", "watcher": me}),
        "stopped watching",
    );
    worst
}

/// A failover this round's verdicts call for.
struct Pending<'a> {
    pair: &'a Pair,
    from: String,
    to: String,
    count: u32,
    /// The pair's observation as written this round.
    record: Observed,
}

/// Runs one pending failover, after looking at the pair once more (it was
/// observed a moment ago: act only if nothing changed); `None` when it was
/// skipped.
async fn fail_over(
    config: &Config,
    template: &Request,
    me: &str,
    p: &Pending<'_>,
    (store, dir): (&StateStore, &std::path::Path),
    json: bool,
) -> Option<run::Finished> {
    let (pair, from, to) = (p.pair, &p.from, &p.to);
    if let Some(changed) = changed_since(pair, store, dir, from).await {
        say(
            json,
            &serde_json::json!({"event": "skipped", "pair": pair.name, "why": changed}),
            &format!("{}  no failover: {changed}", pair.name),
        );
        return None;
    }
    let reason = format!(
        "automatic failover by baton watch ({me}): {from} failed {} observations in a row, {to} passed",
        p.count
    );
    let req = Request {
        kind: Some(Kind::Failover),
        reason: Some(reason),
        ..template.clone()
    };
    let printer = Printer::new(Mode::detect(json), 1);
    let finished = run::run(config, pair, &req, &printer).await;
    drop(printer);
    say(
        json,
        &serde_json::json!({"event": "failover", "pair": pair.name, "from": from, "to": to, "outcome": finished.outcome.name(), "message": finished.message}),
        &format!(
            "{}  failover {from} -> {to}: {}",
            pair.name, finished.message
        ),
    );
    Some(finished)
}

/// Why a failover decided on an earlier look must not go ahead now, if
/// anything changed: the pair paused, a run opened, another primary, or
/// the primary healthy again.
async fn changed_since(
    pair: &Pair,
    store: &StateStore,
    dir: &std::path::Path,
    from: &str,
) -> Option<String> {
    use crate::core::watch::Health;
    match look(pair, store, dir).await {
        Err(why) => Some(format!("cannot look again: {why}")),
        Ok((_, true)) => Some("paused since".to_string()),
        Ok((s, false)) if s.run_open => Some("a run opened since".to_string()),
        Ok((s, false)) => match s.primary {
            Some((p, _)) if p != from => Some(format!("{p} is the primary now")),
            Some((_, Health::Healthy)) => Some(format!("{from} passes its checks again")),
            Some(_) => None,
            None => Some("no roles recorded any more".to_string()),
        },
    }
}

/// One pair looked at: what the rules need, and whether it is paused.
async fn look(
    pair: &Pair,
    store: &StateStore,
    dir: &std::path::Path,
) -> Result<(Seen, bool), String> {
    let observed = observe::observe(pair).await;
    let mut seen = observed.seen;
    seen.last_run = crate::store::history::last_run(dir, &pair.name).map_err(|e| e.to_string())?;
    let state = store.load(&pair.name).map_err(|e| e.to_string())?;
    let failed = state.as_ref().and_then(|s| s.failed.clone());
    seen.recorded = state.map(|s| Roles {
        primary: s.primary,
        standby: s.standby,
    });
    let paused = store
        .load_pause(&pair.name)
        .map_err(|e| e.to_string())?
        .is_some();
    Ok((Seen::of(&seen, failed.as_deref()), paused))
}

/// A verdict in words.
fn describe(v: &Verdict) -> String {
    use crate::core::watch::Withheld as W;
    match v {
        Verdict::Healthy => "primary healthy".to_string(),
        Verdict::Failing { count, of } => format!("primary failing ({count} of {of})"),
        Verdict::Failover { from, to, count } => {
            format!("failing over: {from} failed {count} in a row, {to} is healthy")
        }
        Verdict::Withheld { count, why } => {
            let why = match why {
                W::Paused => "paused (`baton resume` lets the watcher act again)".to_string(),
                W::Cooldown { until } => format!(
                    "in the cooldown after the last failover, until {}",
                    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(*until))
                ),
                W::RunOpen => "a run is open (`baton recover` settles it)".to_string(),
                W::NoRoles => "no roles recorded (`baton status` records them)".to_string(),
                W::NoStandby { failed } => {
                    format!("{failed} is marked failed: no standby (`baton rejoin`)")
                }
                W::StandbyUnhealthy => "the standby fails its checks".to_string(),
                W::StandbyUnreachable => {
                    "the standby cannot be reached (this controller may be cut off)".to_string()
                }
                W::NeedsQuorum { agree, quorum } => format!(
                    "the primary does not answer at all, and {agree} of the {quorum} watchers needed see it so"
                ),
            };
            format!("primary failing ({count} in a row), no failover: {why}")
        }
    }
}

fn say(json: bool, object: &serde_json::Value, text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(out, "{object}")
    } else {
        writeln!(out, "{} watch  {text}", now_rfc3339())
    };
    let _ = out.flush();
}

/// Appends one line to the watch log (`watch.log` in the state directory,
/// 0600, synced): pauses and resumes, who and why.
fn log_line(dir: &std::path::Path, line: &serde_json::Value) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("watch.log"))?;
    writeln!(f, "{line}")?;
    f.sync_all()
}

/// `baton pause PAIR` (`on`) / `baton resume PAIR`: recorded in the
/// pair's pause file and in the watch log, and said.
pub fn pause(config: &Config, pair: &str, on: bool, reason: &str) -> Exit {
    let store = StateStore::new(&config.settings.state_dir);
    let line = serde_json::json!({"event": if on { "pause" } else { "resume" }, "pair": pair, "by": run::operator(), "reason": reason, "at": now_rfc3339()});
    if let Err(e) = log_line(&config.settings.state_dir, &line) {
        eprintln!("baton: cannot write the watch log: {e}. Nothing was done.");
        return Exit::Operator;
    }
    let result = if on {
        store
            .save_pause(
                pair,
                &Pause {
                    by: run::operator(),
                    reason: reason.to_string(),
                    at: now_rfc3339(),
                },
            )
            .map(|()| format!("{pair}: paused: baton watch observes it and does not fail it over until `baton resume {pair}`"))
    } else {
        store.clear_pause(pair).map(|was| {
            if was {
                format!("{pair}: resumed: baton watch may fail it over again")
            } else {
                format!("{pair}: was not paused; nothing to do")
            }
        })
    };
    match result {
        Ok(said) => {
            println!("{said}");
            Exit::Ok
        }
        Err(e) => {
            eprintln!("baton: {e}");
            Exit::Operator
        }
    }
}
