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
use crate::core::assess::{LastRun, Roles};
use crate::core::cycle::Kind;
use crate::core::watch::{agreeing, judge, PairWatch, PrimarySeen, Seen, Verdict, View};
use crate::exec::run::{self, Request};
use crate::io::observe;
use crate::store::state::{now_rfc3339, Pause, StateStore};
use crate::store::{self, history, Leadership};

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
    format!("{}:{}", store::lock::this_host(), std::process::id())
}

/// Watches until a stop signal (or once). `template`: the request each
/// automatic failover starts from (operator, members of the gate).
pub async fn watch(config: &Config, template: &Request, opts: Options) -> Exit {
    let backend = match super::open_store(config) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let store = StateStore::of(&backend);
    let policy = config.settings.watch.policy();
    let interval = config.settings.watch.interval;
    let me = watcher_id();
    let mut watches: BTreeMap<String, PairWatch> = BTreeMap::new();
    let mut worst = Exit::Ok;
    let described = backend.describe();
    say(
        opts.json,
        &serde_json::json!({"event": "watch", "watcher": me, "store": described, "pairs": config.pairs.keys().collect::<Vec<_>>(), "interval_secs": interval.as_secs(), "failure_threshold": policy.failure_threshold, "cooldown_secs": policy.cooldown_secs, "quorum": policy.quorum}),
        &format!(
            "watching {} pair(s) every {} as {me} (failover after {} failed observations in a row, at most one per {} per pair; {} store {})",
            config.pairs.len(),
            humantime::format_duration(interval),
            policy.failure_threshold,
            humantime::format_duration(config.settings.watch.cooldown),
            described.kind,
            described.location,
        ),
    );
    let mut role = Role::Unknown;
    // Interrupted runs this watcher tried to settle, and how often.
    let mut tried: BTreeMap<String, u32> = BTreeMap::new();
    loop {
        let started = std::time::Instant::now();
        // Who leads: asked every round; only the leader acts, and only
        // until its lease's end as the store last confirmed it.
        let lead = {
            let (b, id) = (backend.clone(), me.clone());
            tokio::task::spawn_blocking(move || b.lead(&id))
                .await
                .unwrap_or_else(|e| {
                    Err(store::StoreError::Unavailable {
                        store: described.location.clone(),
                        reason: e.to_string(),
                    })
                })
        };
        let now_role = match &lead {
            Ok(Leadership::Leading { .. }) => Role::Leading,
            Ok(Leadership::Following { leader }) => Role::Following(leader.clone()),
            Err(e) => Role::Cut(e.to_string()),
        };
        if now_role != role {
            announce(opts.json, &me, &now_role);
            if now_role == Role::Leading {
                // A new leader tries every interrupted run afresh.
                tried.clear();
            }
            role = now_role;
        }
        if role == Role::Leading {
            // The leader first settles what was left unfinished (a
            // failover cut off by its leader's death), from the journal,
            // as every command does before its own work: never a second
            // switch. A run it cannot settle is tried at most three times.
            let settled = settle(config, &backend, template, (&me, &mut tried), opts.json).await;
            worst = worst.worst(settled);
        }
        let until = match lead {
            Ok(Leadership::Leading { until }) => Some(until),
            _ => None,
        };
        let seen = join_all(config.pairs.values().map(|p| look(p, &store, &backend))).await;
        let views = load_views(&backend).await;
        let now = epoch_secs();
        let mut pending: Vec<Pending<'_>> = Vec::new();
        let mut mine = View {
            watcher: me.clone(),
            at: now,
            interval_secs: interval.as_secs(),
            leading: until.is_some(),
            pairs: BTreeMap::new(),
        };
        for (pair, looked) in config.pairs.values().zip(seen) {
            let w = watches.entry(pair.name.clone()).or_default();
            let (verdict, detail) = match looked {
                Err(why) => (None, format!("not judged: {why}")),
                Ok(l) => {
                    w.paused = l.paused;
                    // Every failover counts for the cooldown, whichever
                    // controller started it (the journal is shared).
                    w.last_failover = w.last_failover.max(l.last_failover);
                    let agree = match &l.seen.primary {
                        Some((host, health)) => {
                            mine.pairs.insert(
                                pair.name.clone(),
                                PrimarySeen {
                                    host: host.clone(),
                                    health: *health,
                                    failures: w.failures,
                                },
                            );
                            agreeing(&me, *health, &views, &pair.name, host, now)
                        }
                        None => 0,
                    };
                    let v = judge(w, &l.seen, &policy, now, agree);
                    if let Some(p) = mine.pairs.get_mut(&pair.name) {
                        p.failures = w.failures;
                    }
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
            // The pair's record is the leader's (a follower's count is its
            // own view, published below).
            if until.is_some() {
                if let Err(e) = store.save_json(&observed_file(&pair.name), &record) {
                    eprintln!("baton: watch: {}: {e}", pair.name);
                }
            }
            say(
                opts.json,
                &serde_json::json!({"event": "observed", "pair": pair.name, "at": record.at, "failures": w.failures, "verdict": verdict, "leading": until.is_some()}),
                &format!("{}  {}", pair.name, detail),
            );
            if let (Some(Verdict::Failover { from, to, count }), Some(_)) = (verdict, until) {
                pending.push(Pending {
                    pair,
                    from,
                    to,
                    count,
                    record,
                });
            }
        }
        publish(&backend, &mine).await;
        // The failovers of this round run side by side (each pair has its
        // own lock), so one pair's long failover (a TTL's drain) holds no
        // other back; none starts once a stop was asked for, or once the
        // leadership may have lapsed.
        let still = until.is_some_and(|u| std::time::Instant::now() < u);
        if crate::exec::signals::count() == 0 && still && !pending.is_empty() {
            let ran = join_all(
                pending
                    .iter()
                    .map(|p| fail_over(config, template, &me, p, (&store, &backend), opts.json)),
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
        } else if !pending.is_empty() && !still {
            say(
                opts.json,
                &serde_json::json!({"event": "not_acting", "watcher": me, "why": "leadership lapsed"}),
                "no failover: this watcher's leadership may have lapsed before it could act",
            );
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
    let b = backend.clone();
    let id = me.clone();
    let _ = tokio::task::spawn_blocking(move || b.resign(&id)).await;
    say(
        opts.json,
        &serde_json::json!({"event": "stopped", "watcher": me}),
        "stopped watching",
    );
    worst
}

/// This watcher's place among the watchers, as the store said last.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// Not asked yet.
    Unknown,
    /// It leads: it may act.
    Leading,
    /// Another leads: it observes and publishes its view.
    Following(String),
    /// The store did not answer: it does not act.
    Cut(String),
}

/// Says a change of role.
fn announce(json: bool, me: &str, role: &Role) {
    match role {
        Role::Unknown => {}
        Role::Leading => say(
            json,
            &serde_json::json!({"event": "leading", "watcher": me}),
            "leading: this watcher acts on the pairs",
        ),
        Role::Following(leader) => say(
            json,
            &serde_json::json!({"event": "following", "watcher": me, "leader": leader}),
            &format!("standing by: {leader} leads"),
        ),
        Role::Cut(why) => say(
            json,
            &serde_json::json!({"event": "not_acting", "watcher": me, "why": why}),
            &format!("not acting: {why}"),
        ),
    }
}

/// The leader's first duty each round: every watched pair whose last run
/// was interrupted (nobody holds its lock) is settled from the journal, as
/// `baton recover` does.
async fn settle(
    config: &Config,
    backend: &store::Store,
    template: &Request,
    (me, tried): (&str, &mut BTreeMap<String, u32>),
    json: bool,
) -> Exit {
    let mut worst = Exit::Ok;
    for pair in config.pairs.values() {
        let b = backend.clone();
        let name = pair.name.clone();
        let last = tokio::task::spawn_blocking(move || history::last_run(&b, &name)).await;
        let Ok(Ok(LastRun::Interrupted { run, kind, .. })) = last else {
            continue;
        };
        let times = tried.entry(run.clone()).or_default();
        if *times >= 3 {
            continue;
        }
        *times += 1;
        say(
            json,
            &serde_json::json!({"event": "settling", "pair": pair.name, "run": run, "kind": kind.name()}),
            &format!(
                "{}  settling the interrupted {} (run {run}) from the journal before watching",
                pair.name,
                kind.name()
            ),
        );
        let req = Request {
            kind: None,
            reason: Some(format!(
                "baton watch ({me}), leading, settles the interrupted run {run}"
            )),
            ..template.clone()
        };
        let finished = run_printed(config, pair, &req, json).await;
        say(
            json,
            &serde_json::json!({"event": "settled", "pair": pair.name, "run": run, "outcome": finished.outcome.name(), "message": finished.message}),
            &format!("{}  settled: {}", pair.name, finished.message),
        );
        worst = worst.worst(exit_of(&finished));
    }
    worst
}

/// A run of `req` on `pair`, its steps printed as `baton watch` prints
/// (text or JSON lines).
async fn run_printed(config: &Config, pair: &Pair, req: &Request, json: bool) -> run::Finished {
    let printer = Printer::new(Mode::detect(json), 1);
    let finished = run::run(config, pair, req, &printer).await;
    drop(printer);
    finished
}

/// Every watcher's last view in the store (unreadable ones left out).
async fn load_views(backend: &store::Store) -> Vec<View> {
    let b = backend.clone();
    match tokio::task::spawn_blocking(move || b.views()).await {
        Ok(Ok(all)) => all
            .into_iter()
            .filter_map(|(_, body)| serde_json::from_slice(&body).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Publishes this watcher's view (a failure is said, not fatal: the
/// others then count this watcher out).
async fn publish(backend: &store::Store, view: &View) {
    let Ok(body) = serde_json::to_vec(view) else {
        return;
    };
    let b = backend.clone();
    let me = view.watcher.clone();
    match tokio::task::spawn_blocking(move || b.publish_view(&me, &body)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("baton: watch: cannot publish this watcher's view: {e}"),
        Err(e) => eprintln!("baton: watch: cannot publish this watcher's view: {e}"),
    }
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
    (store, backend): (&StateStore, &store::Store),
    json: bool,
) -> Option<run::Finished> {
    let (pair, from, to) = (p.pair, &p.from, &p.to);
    if let Some(changed) = changed_since(pair, store, backend, from).await {
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
    let finished = run_printed(config, pair, &req, json).await;
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
    backend: &store::Store,
    from: &str,
) -> Option<String> {
    use crate::core::watch::Health;
    match look(pair, store, backend).await {
        Err(why) => Some(format!("cannot look again: {why}")),
        Ok(l) if l.paused => Some("paused since".to_string()),
        Ok(l) if l.seen.run_open => Some("a run opened since".to_string()),
        Ok(l) => match l.seen.primary {
            Some((p, _)) if p != from => Some(format!("{p} is the primary now")),
            Some((_, Health::Healthy)) => Some(format!("{from} passes its checks again")),
            Some(_) => None,
            None => Some("no roles recorded any more".to_string()),
        },
    }
}

/// One pair looked at.
struct Looked {
    /// What the rules need.
    seen: Seen,
    /// Whether an operator paused it.
    paused: bool,
    /// When its last failover started, by the journal (seconds since the
    /// epoch).
    last_failover: Option<u64>,
}

/// Looks at one pair: the hosts, the journal's last run, the recorded
/// roles and the pause; and, only when the primary is not healthy (the
/// cooldown cannot matter otherwise: a journal in etcd is not read whole
/// every round), when its last failover started.
async fn look(pair: &Pair, store: &StateStore, backend: &store::Store) -> Result<Looked, String> {
    let observed = observe::observe(pair).await;
    let mut seen = observed.seen;
    let (b, name, st) = (backend.clone(), pair.name.clone(), store.clone());
    let recorded = tokio::task::spawn_blocking(move || {
        let last_run = history::last_run(&b, &name).map_err(|e| e.to_string())?;
        let state = st.load(&name).map_err(|e| e.to_string())?;
        let paused = st.load_pause(&name).map_err(|e| e.to_string())?.is_some();
        Ok::<_, String>((last_run, state, paused))
    })
    .await
    .map_err(|e| e.to_string())??;
    let (last_run, state, paused) = recorded;
    seen.last_run = last_run;
    let failed = state.as_ref().and_then(|s| s.failed.clone());
    seen.recorded = state.map(|s| Roles {
        primary: s.primary,
        standby: s.standby,
    });
    let seen = Seen::of(&seen, failed.as_deref());
    let last_failover = match &seen.primary {
        Some((_, health)) if *health != crate::core::watch::Health::Healthy => {
            let (b, name) = (backend.clone(), pair.name.clone());
            tokio::task::spawn_blocking(move || history::last_started(&b, &name, Kind::Failover))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
        }
        _ => None,
    };
    Ok(Looked {
        seen,
        paused,
        last_failover,
    })
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
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut f =
        crate::store::dir::open_private(&dir.join("watch.log"), crate::store::dir::Open::Append)?;
    writeln!(f, "{line}")?;
    f.sync_all()
}

/// `baton pause PAIR` (`on`) / `baton resume PAIR`: recorded in the
/// pair's pause file and in the watch log, and said.
pub fn pause(config: &Config, pair: &str, on: bool, reason: &str) -> Exit {
    let backend = match super::open_store(config) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let store = StateStore::of(&backend);
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
