//! `baton watch` on the VIP pair `web` (blue primary, green standby), with
//! `[watch] interval = "1s"`, `failure_threshold = 3`: blue's web server
//! stopped makes exactly one automatic failover, within the threshold
//! times the interval plus the failover itself, recorded once; a paused
//! pair is observed and never failed over until resumed; a standby that
//! fails too is never failed over to.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

fn watch_config() -> tempfile::TempDir {
    custom_config(|name, t| {
        if name == "baton.toml" {
            t + "\n[watch]\ninterval = \"1s\"\nfailure_threshold = 3\ncooldown = \"10m\"\n"
        } else {
            t
        }
    })
}

/// The failover runs in the pair's journal: (start record, finished?).
fn failovers(state: &Path) -> Vec<(serde_json::Value, bool)> {
    failover_runs(&journal(state, "web"))
}

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {limit:?}");
}

fn end_watch(child: Child) -> (i32, String) {
    signal(&child, libc::SIGTERM);
    finish(child)
}

#[test]
fn a_stopped_web_server_makes_exactly_one_failover() {
    let _lab = lab();
    let dir = watch_config();
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0, "records the roles");
    let once = baton(&cfg, &["watch", "web", "--once"]);
    assert_eq!(once.code, 0, "{}{}", once.stdout, once.stderr);
    assert!(
        once.stdout.contains("web  primary healthy"),
        "{}",
        once.stdout
    );

    let watcher = spawn(&cfg, &["watch", "web"]);
    std::thread::sleep(Duration::from_millis(1500));
    stop("blue", "nginx");
    let took = until("the failover ended", Duration::from_secs(30), || {
        failovers(&state).iter().any(|(_, done)| *done)
    });
    // Three failed observations one second apart, then the failover (its
    // observation period is 2 s).
    assert!(took < Duration::from_secs(12), "took {took:?}");
    eprintln!("stopped web server to failover done: {took:?}");
    // Watching goes on; no second failover.
    std::thread::sleep(Duration::from_secs(4));
    let (code, out) = end_watch(watcher);
    assert_eq!(code, 0, "{out}");
    let runs = failovers(&state);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (start, _) = &runs[0];
    assert_eq!(start["from"], "blue");
    assert_eq!(start["to"], "green");
    assert!(
        start["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("automatic failover by baton watch")),
        "{start}"
    );
    assert!(out.contains("failover blue -> green"), "{out}");
    // After it, green is the primary and healthy.
    let after = out
        .split("failover blue -> green")
        .nth(1)
        .unwrap_or_default();
    assert!(after.contains("web  primary healthy"), "{out}");
    let (_, page) = client_get("http://198.18.0.100/");
    assert!(page.contains("host=green"), "{page}");
    let status = baton(&cfg, &["status", "web", "--json"]);
    let pair = &status.json()["pairs"][0];
    assert_eq!(pair["watch"]["threshold"], 3, "{pair}");
    assert!(pair["watch"]["last_failover"].is_u64(), "{pair}");
}

#[test]
fn a_paused_pair_is_observed_and_not_failed_over_until_resumed() {
    let _lab = lab();
    let dir = watch_config();
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0);
    let paused = baton(&cfg, &["pause", "web", "--reason", "kernel update on blue"]);
    assert_eq!(paused.code, 0, "{}{}", paused.stdout, paused.stderr);
    let watcher = spawn(&cfg, &["watch", "web"]);
    stop("blue", "nginx");
    std::thread::sleep(Duration::from_secs(5));
    assert!(failovers(&state).is_empty(), "paused: no failover");
    let status = baton(&cfg, &["status", "web"]);
    assert!(
        status.stdout.contains("watch paused by")
            && status.stdout.contains("kernel update on blue"),
        "{}",
        status.stdout
    );
    let metrics = tempfile::NamedTempFile::new().unwrap();
    baton(
        &cfg,
        &[
            "status",
            "web",
            "--metrics-file",
            metrics.path().to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(metrics.path()).unwrap();
    assert!(
        text.contains("baton_watch_paused{pair=\"web\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("baton_watch_failures{pair=\"web\"} "),
        "{text}"
    );

    let resumed = baton(&cfg, &["resume", "web", "--reason", "done"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    until(
        "the failover after the resume",
        Duration::from_secs(20),
        || failovers(&state).iter().any(|(_, done)| *done),
    );
    let (code, out) = end_watch(watcher);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no failover: paused"), "{out}");
    let log = std::fs::read_to_string(state.join("watch.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.contains("\"event\":\"pause\"") && log.contains("kernel update on blue"),
        "{log}"
    );
}

#[test]
fn a_standby_that_fails_too_is_never_failed_over_to() {
    let _lab = lab();
    let dir = watch_config();
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0);
    stop("green", "nginx");
    stop("blue", "nginx");
    let watcher = spawn(&cfg, &["watch", "web"]);
    std::thread::sleep(Duration::from_secs(5));
    let (code, out) = end_watch(watcher);
    assert_eq!(code, 0, "{out}");
    assert!(failovers(&state).is_empty(), "{out}");
    assert!(
        out.contains("no failover: the standby fails its checks"),
        "{out}"
    );
}
