//! Fleet operation on the lab's fleet of six VIP pairs across dev, test and
//! prod (the first six of `scripts/lab up --pairs 10`, configuration in
//! /var/lib/baton-lab/fleet): the order of execution and concurrency, the
//! environment gate and its override, maintenance windows, the failure
//! budget, a stop signal, a manual run overlapping a fleet run, and the
//! metrics file.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

const FLEET: &str = "/var/lib/baton-lab/fleet";

/// The first six of the fleet's pair names, sorted.
fn fleet_pairs() -> Vec<String> {
    let mut names = fleet_names(6);
    names.truncate(6);
    names
}

/// The fleet's pair names, sorted; at least `at_least` of them.
fn fleet_names(at_least: usize) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(Path::new(FLEET).join("pairs"))
        .expect("the lab has a fleet: scripts/lab up --pairs 10")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "toml").then_some(stem)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= at_least,
        "these fleet tests need {at_least} pairs: scripts/lab up --pairs 10 (found {names:?})"
    );
    names
}

/// A copy of the fleet configuration (its first six pairs) in a temporary
/// directory with its own state, relative paths made absolute, after
/// `edit(file_name, text)` changed the texts.
fn fleet_config(edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(FLEET);
    let absolute = |t: String| {
        t.replace("\"../", &format!("\"{LAB}/"))
            .replace("from = \"files/", &format!("from = \"{FLEET}/pairs/files/"))
    };
    let global = fs::read_to_string(src.join("baton.toml")).unwrap();
    fs::write(
        dir.path().join("baton.toml"),
        edit("baton.toml", absolute(global)),
    )
    .unwrap();
    fs::create_dir(dir.path().join("pairs")).unwrap();
    for name in fleet_pairs() {
        let file = format!("{name}.toml");
        let text = fs::read_to_string(src.join("pairs").join(&file)).unwrap();
        fs::write(
            dir.path().join("pairs").join(&file),
            edit(&file, absolute(text)),
        )
        .unwrap();
    }
    dir
}

/// Sets a pair file's environment and canary flag.
fn place(text: String, env: &str, canary: bool) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("canary =") && !l.starts_with("environment ="))
        .collect();
    format!(
        "environment = \"{env}\"\ncanary = {canary}\n{}\n",
        kept.join("\n")
    )
}

/// Where each pair's traffic is, asked of reality by `baton status`.
fn holders(cfg: &Path) -> Vec<(String, String)> {
    let run = baton(cfg, &["status", "--json"]);
    run.json()["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pair"].as_str().unwrap().to_string(),
                p["holder"]["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The JSON progress events and the closing summary of a `--json` run.
fn events(stdout: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut events = Vec::new();
    let mut summary = Vec::new();
    for line in stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        match v.get("summary") {
            Some(rows) => summary = rows.as_array().unwrap().clone(),
            None => {
                let at = v["at"].as_str().unwrap_or_default();
                assert!(
                    humantime::parse_rfc3339(at).is_ok(),
                    "every event says when: {v}"
                );
                events.push(v);
            }
        }
    }
    (events, summary)
}

/// Index of the first and the last event of a pair in the stream.
fn span(events: &[serde_json::Value], pair: &str) -> (usize, usize) {
    let idx: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["pair"] == pair)
        .map(|(i, _)| i)
        .collect();
    assert!(!idx.is_empty(), "{pair} has no events");
    (idx[0], *idx.last().unwrap())
}

fn outcome_of<'a>(summary: &'a [serde_json::Value], pair: &str) -> &'a str {
    summary
        .iter()
        .find(|r| r["pair"] == pair)
        .and_then(|r| r["outcome"].as_str())
        .unwrap_or_else(|| panic!("{pair} not in {summary:?}"))
}

/// The lab's initial primary of a fleet pair is its `a` host.
fn initial(pairs: &[String]) -> Vec<(String, String)> {
    let cfg = Path::new(FLEET);
    pairs
        .iter()
        .map(|p| {
            let text = fs::read_to_string(cfg.join("pairs").join(format!("{p}.toml"))).unwrap();
            let first = text
                .lines()
                .find_map(|l| l.strip_prefix("[hosts.").and_then(|r| r.strip_suffix(']')))
                .unwrap()
                .to_string();
            (p.clone(), first)
        })
        .collect()
}

#[test]
fn environments_run_in_order_canaries_alone_first_and_batches_at_once() {
    let _lab = lab();
    let p = fleet_pairs();
    // dev: p0 (canary), p1; test: p2 (canary); prod: p3 (canary), p4, p5.
    let layout = [
        ("dev", true),
        ("dev", false),
        ("test", true),
        ("prod", true),
        ("prod", false),
        ("prod", false),
    ];
    let names = p.clone();
    let dir =
        fleet_config(
            move |file, t| match names.iter().position(|n| format!("{n}.toml") == file) {
                Some(i) => place(t, layout[i].0, layout[i].1),
                None => t,
            },
        );
    let cfg = dir.path().join("baton.toml");
    let before = holders(&cfg);
    assert_eq!(before, initial(&p), "the lab starts on the a hosts");
    let run = baton(
        &cfg,
        &[
            "apply",
            "--all",
            "--change",
            "v2",
            "--batch",
            "2",
            "--concurrency",
            "2",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (ev, summary) = events(&run.stdout);
    let s: Vec<(usize, usize)> = p.iter().map(|n| span(&ev, n)).collect();
    // Each stage ends before the next begins: dev canary, dev, test canary,
    // prod canary, then the two other prod pairs together.
    for (a, b) in [(0, 1), (1, 2), (2, 3), (3, 4), (3, 5)] {
        assert!(
            s[a].1 < s[b].0,
            "{} must end before {} begins: {s:?}",
            p[a],
            p[b]
        );
    }
    assert!(
        s[4].0 < s[5].1 && s[5].0 < s[4].1,
        "{} and {} ran at once (one batch of two): {s:?}",
        p[4],
        p[5]
    );
    let order: Vec<&str> = summary
        .iter()
        .map(|r| r["pair"].as_str().unwrap())
        .collect();
    assert_eq!(order, p.iter().map(String::as_str).collect::<Vec<_>>());
    for r in &summary {
        assert_eq!(r["outcome"], "ok", "{r}");
        assert!(r["duration_ms"].as_u64().unwrap() > 0, "{r}");
    }
    // Every pair's traffic moved to its other host, and the summary says so.
    for ((pair, was), (_, now)) in before.iter().zip(holders(&cfg)) {
        assert_ne!(*was, now, "{pair}");
        let row = summary.iter().find(|r| r["pair"] == **pair).unwrap();
        assert_eq!(row["traffic"], now, "{pair}");
    }
}

#[test]
fn the_gate_refuses_prod_until_dev_and_test_completed_and_an_override_is_recorded() {
    let _lab = lab();
    let p = fleet_pairs();
    // Two pairs in each environment, the first a canary (the lab's own
    // layout depends on the fleet's size).
    let names = p.clone();
    let dir =
        fleet_config(
            move |file, t| match names.iter().position(|n| format!("{n}.toml") == file) {
                Some(i) => place(t, ["dev", "test", "prod"][i / 2], i % 2 == 0),
                None => t,
            },
        );
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let before = holders(&cfg);
    let run = baton(&cfg, &["apply", "--env", "prod", "--change", "v2"]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    let prod: Vec<&String> = p
        .iter()
        .filter(|n| {
            fs::read_to_string(dir.path().join(format!("pairs/{n}.toml")))
                .unwrap()
                .contains("environment = \"prod\"")
        })
        .collect();
    assert!(prod.len() >= 2, "{prod:?}");
    // The prod canary is refused by the gate; a refusal spends the failure
    // budget (0), so the other prod pairs do not even start.
    let canary = prod[0];
    assert!(
        run.stdout.contains(&format!("{canary}  NOT_STARTED"))
            && journal(&state, canary).iter().any(|r| r["event"] == "end"
                && r["step"] == "preflight"
                && r["detail"]
                    .as_str()
                    .unwrap()
                    .contains("environment gate closed")),
        "{canary}: {}",
        run.stdout
    );
    for n in &prod[1..] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(n.as_str()) && l.contains("SKIPPED")),
            "{n}: {}",
            run.stdout
        );
        assert!(!state.join(format!("{n}.journal")).exists());
    }
    assert_eq!(holders(&cfg), before, "nothing moved");
    let run = baton(
        &cfg,
        &[
            "apply",
            "--env",
            "prod",
            "--change",
            "v2",
            "--skip-gate",
            "--reason",
            "CVE fix, approved by the on-call lead",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    for n in &prod {
        let start = journal(&state, n)
            .into_iter()
            .rev()
            .find(|r| r["event"] == "start")
            .unwrap();
        let gate = start["gate"].as_str().unwrap();
        assert!(
            gate.contains("gate SKIPPED by") && gate.contains("CVE fix"),
            "{start}"
        );
        assert_eq!(start["reason"], "CVE fix, approved by the on-call lead");
        assert!(!start["operator"].as_str().unwrap().is_empty());
    }
}

/// `DAY HH:MM-HH:MM` in UTC from `from` to `to` minutes around now.
fn window(from: i64, to: i64) -> String {
    let now = Timestamp::now();
    let at = |m: i64| {
        now.checked_add(m.minutes())
            .unwrap()
            .to_zoned(TimeZone::UTC)
    };
    format!(
        "{} {}-{}",
        at(from).strftime("%a"),
        at(from).strftime("%H:%M"),
        at(to).strftime("%H:%M")
    )
}

fn with_window(windows: &str, estimate: &str) -> impl Fn(&str, String) -> String {
    let extra = format!(
        "\n[maintenance]\ntime_zone = \"UTC\"\nwindows = [{windows}]\nestimate = \"{estimate}\"\n"
    );
    move |file, t| {
        if file == "baton.toml" {
            t + &extra
        } else {
            t
        }
    }
}

#[test]
fn maintenance_windows_hold_runs_back_outside_or_too_close_to_the_end() {
    let _lab = lab();
    let p = fleet_pairs();
    // Outside: the window ended an hour ago.
    let closed = format!("{:?}", window(-180, -60));
    let dir = fleet_config(with_window(&closed, "1m"));
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let before = holders(&cfg);
    let run = baton(&cfg, &["apply", "--all", "--change", "v2", "--json"]);
    let (_, summary) = events(&run.stdout);
    // dev is held back by the window alone; the test canary also by the
    // gate (dev never completed), which outweighs the window and spends
    // the failure budget, so the rest are skipped.
    assert_eq!(outcome_of(&summary, &p[0]), "outside_window");
    assert_eq!(outcome_of(&summary, &p[1]), "outside_window");
    assert_eq!(outcome_of(&summary, &p[2]), "not_started");
    for n in &p[3..] {
        assert_eq!(outcome_of(&summary, n), "skipped", "{n}");
    }
    assert_eq!(run.code, 5, "{}", run.stdout);
    // Alone, a window refusal is exit 6.
    let run = baton(&cfg, &["apply", &p[0], "--change", "v2"]);
    assert_eq!(run.code, 6, "{}", run.stdout);
    let detail = journal(&state, &p[0])
        .into_iter()
        .find(|r| r["event"] == "end" && r["step"] == "preflight")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("outside the maintenance window")
            && detail.contains("the next window opens")
            && detail.contains("--ignore-window"),
        "{detail}"
    );
    assert_eq!(holders(&cfg), before, "nothing moved");
    let plan = baton(&cfg, &["plan", &p[0], "--change", "v2"]);
    assert!(
        plan.stdout.contains("maintenance window: CLOSED"),
        "{}",
        plan.stdout
    );
    // The override runs it and records who and why.
    let run = baton(
        &cfg,
        &[
            "apply",
            &p[0],
            "--change",
            "v2",
            "--ignore-window",
            "--reason",
            "vendor hotfix",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let start = journal(&state, &p[0])
        .into_iter()
        .rev()
        .find(|r| r["event"] == "start")
        .unwrap();
    assert!(
        start["window"]
            .as_str()
            .unwrap()
            .contains("window IGNORED by")
            && start["window"].as_str().unwrap().contains("vendor hotfix"),
        "{start}"
    );

    // Inside, but the window ends in about two minutes and a run is
    // estimated at ten: nothing starts.
    let short = format!("{:?}", window(-60, 2));
    let dir = fleet_config(with_window(&short, "10m"));
    let cfg = dir.path().join("baton.toml");
    let run = baton(&cfg, &["switchover", &p[1]]);
    assert_eq!(run.code, 6, "{}", run.stdout);
    assert!(
        run.stdout.contains("expected to take 10m")
            && run.stdout.contains("[maintenance] estimate"),
        "{}",
        run.stdout
    );
    // A pair with its own `windows = []` may run at any time.
    let name = format!("{}.toml", p[1]);
    let dir = fleet_config(move |file, t| {
        let t = with_window(&short, "10m")(file, t);
        if file == name {
            t + "\n[maintenance]\nwindows = []\n"
        } else {
            t
        }
    });
    let cfg = dir.path().join("baton.toml");
    assert_eq!(baton(&cfg, &["switchover", &p[1]]).code, 0);

    // Inside with time to spare: the run starts, and its duration is what
    // the next decision expects.
    let open = format!("{:?}", window(-60, 60));
    let dir = fleet_config(with_window(&open, "1m"));
    let cfg = dir.path().join("baton.toml");
    let run = baton(&cfg, &["switchover", &p[2]]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let plan = baton(&cfg, &["plan", &p[2]]);
    assert!(
        plan.stdout.contains("maintenance window: open")
            && plan
                .stdout
                .contains("the longest of its last 1 switchover run that ended ok"),
        "{}",
        plan.stdout
    );
}

#[test]
fn the_failure_budget_stops_new_pairs_and_the_metrics_file_shows_every_pair() {
    let _lab = lab();
    let p = fleet_pairs();
    // All in dev, no canaries; pairs 1 and 2 fail their change.
    let bad = [p[1].clone(), p[2].clone()];
    let dir = fleet_config(move |file, t| {
        if file == "baton.toml" {
            return t;
        }
        let failing = bad.iter().any(|b| format!("{b}.toml") == file);
        let step = if failing {
            "echo broken >&2; exit 1"
        } else {
            "true"
        };
        place(t, "dev", false) + &format!("\n[changes.mixed]\nsteps = [\"{step}\"]\n")
    });
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let metrics = dir.path().join("baton.prom");
    let m = metrics.display().to_string();
    let run = baton(
        &cfg,
        &[
            "apply",
            "--all",
            "--change",
            "mixed",
            "--concurrency",
            "1",
            "--max-failures",
            "1",
            "--metrics-file",
            &m,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let table: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("PAIR"))
        .skip(1)
        .collect();
    let expect = [
        "OK",
        "ROLLED_BACK",
        "ROLLED_BACK",
        "SKIPPED",
        "SKIPPED",
        "SKIPPED",
    ];
    for (i, want) in expect.iter().enumerate() {
        assert!(
            table[i].starts_with(&p[i]) && table[i].contains(want),
            "row {i} should be {} {want}: {table:?}",
            p[i]
        );
    }
    assert!(table[3].contains("the failure budget (1) was spent"));
    for n in &p[3..] {
        assert!(
            !state.join(format!("{n}.journal")).exists(),
            "{n} never started"
        );
    }
    let text = fs::read_to_string(&metrics).unwrap();
    let line = |l: String| {
        assert!(text.lines().any(|x| x == l), "missing {l:?} in:\n{text}");
    };
    line(format!(
        "baton_last_run_outcome{{pair=\"{}\",outcome=\"ok\"}} 1",
        p[0]
    ));
    line(format!(
        "baton_last_run_outcome{{pair=\"{}\",outcome=\"rolled_back\"}} 1",
        p[1]
    ));
    line(format!(
        "baton_last_run_outcome{{pair=\"{}\",outcome=\"rolled_back\"}} 1",
        p[2]
    ));
    let holders = initial(&p);
    // p0 moved to its b host; the rolled-back pairs stayed on a.
    let (_, a0) = &holders[0];
    line(format!(
        "baton_traffic_holder{{pair=\"{}\",host=\"{a0}\"}} 0",
        p[0]
    ));
    for (pair, a) in &holders[1..3] {
        line(format!(
            "baton_traffic_holder{{pair=\"{pair}\",host=\"{a}\"}} 1"
        ));
    }
    for n in &p[3..] {
        assert!(
            !text.contains(&format!("baton_last_run_outcome{{pair=\"{n}\"")),
            "{n} has no run: {text}"
        );
    }
}

#[test]
fn a_stop_signal_lets_the_pair_in_flight_settle_and_starts_no_other() {
    let _lab = lab();
    let p = fleet_pairs();
    let dir = fleet_config(|file, t| {
        if file == "baton.toml" {
            t
        } else {
            place(t, "dev", false)
                + "\n[changes.slow]\nsteps = [\"echo 2 > /srv/baton-lab/VERSION\", \"sleep 2\"]\nrollback = [\"echo 1 > /srv/baton-lab/VERSION\"]\n"
        }
    });
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let child = spawn(
        &cfg,
        &["apply", "--all", "--change", "slow", "--concurrency", "1"],
    );
    wait_for_begin(&state, &p[1], "apply_standby");
    signal(&child, libc::SIGTERM);
    let (code, out) = finish(child);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&p[0]) && l.contains(" OK ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&p[1]) && l.contains("ROLLED_BACK")),
        "{out}"
    );
    for n in &p[2..] {
        assert!(
            out.lines().any(|l| l.starts_with(n.as_str())
                && l.contains("SKIPPED")
                && l.contains("a stop signal asked baton to stop")),
            "{n}: {out}"
        );
        assert!(!state.join(format!("{n}.journal")).exists());
    }
    let text = fs::read_to_string(state.join(format!("{}.journal", p[1]))).unwrap();
    assert!(
        text.contains("not run: SIGTERM asked baton to stop"),
        "{text}"
    );
}

#[test]
fn a_manual_run_on_a_pair_the_fleet_run_holds_is_refused_and_works_after() {
    let _lab = lab();
    let p = fleet_pairs();
    let dir = fleet_config(|file, t| {
        if file == "baton.toml" {
            t
        } else {
            place(t, "dev", false) + "\n[changes.slow]\nsteps = [\"sleep 2\"]\n"
        }
    });
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let child = spawn(
        &cfg,
        &[
            "apply",
            &p[0],
            &p[1],
            "--change",
            "slow",
            "--concurrency",
            "1",
        ],
    );
    wait_for_begin(&state, &p[0], "apply_standby");
    let manual = baton(&cfg, &["switchover", &p[0], "--reason", "by hand"]);
    assert_eq!(manual.code, 5, "{}", manual.stdout);
    let said = format!("{}{}", manual.stdout, manual.stderr);
    assert!(
        said.contains(&format!("(pid {}) has been running", child.id())),
        "the refusal names the holder: {said}"
    );
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    // The refused run left no trace in the pair's journal beyond its own refusal.
    let runs: Vec<serde_json::Value> = journal(&state, &p[0])
        .into_iter()
        .filter(|r| r["event"] == "start")
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(baton(&cfg, &["switchover", &p[0]]).code, 0);
}

/// The versions both hosts of each pair run, by `status`.
fn versions(cfg: &Path) -> Vec<(String, Vec<String>)> {
    let run = baton(cfg, &["status", "--json"]);
    run.json()["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pair"].as_str().unwrap().to_string(),
                p["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["version"].as_str().unwrap_or("?").to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn a_finished_change_is_rolled_back_across_the_fleet_in_reverse_order_and_withdrawn() {
    let _lab = lab();
    let p = fleet_names(10);
    let n = p.len();
    // A third in each environment, the first of each a canary.
    let third = n.div_ceil(3);
    let layout: Vec<(&str, bool)> = (0..n)
        .map(|i| (["dev", "test", "prod"][i / third], i % third == 0))
        .collect();
    let names = p.clone();
    let placed = layout.clone();
    let dir = tempfile::tempdir().unwrap();
    {
        // The whole fleet, placed.
        let src = Path::new(FLEET);
        let absolute = |t: String| {
            t.replace("\"../", &format!("\"{LAB}/"))
                .replace("from = \"files/", &format!("from = \"{FLEET}/pairs/files/"))
        };
        fs::write(
            dir.path().join("baton.toml"),
            absolute(fs::read_to_string(src.join("baton.toml")).unwrap()),
        )
        .unwrap();
        fs::create_dir(dir.path().join("pairs")).unwrap();
        for (i, name) in names.iter().enumerate() {
            let file = format!("{name}.toml");
            let text = fs::read_to_string(src.join("pairs").join(&file)).unwrap();
            fs::write(
                dir.path().join("pairs").join(&file),
                place(absolute(text), placed[i].0, placed[i].1),
            )
            .unwrap();
        }
    }
    let cfg = dir.path().join("baton.toml");
    // v2 on every pair but the last one of prod.
    let (skip, rest) = p.split_last().unwrap();
    let mut args = vec!["apply", "--change", "v2", "--batch", "3"];
    args.extend(rest.iter().map(String::as_str));
    let run = baton(&cfg, &args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for (pair, v) in versions(&cfg) {
        let want = if &pair == skip { "1" } else { "2" };
        assert_eq!(v, [want, want], "{pair}");
    }

    let run = baton(
        &cfg,
        &[
            "rollback", "--all", "--change", "v2", "--batch", "2", "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("{skip}: skipped: the change never finished here")),
        "{}",
        run.stderr
    );
    let (ev, summary) = events(&run.stdout);
    let order: Vec<&str> = summary
        .iter()
        .map(|r| r["pair"].as_str().unwrap())
        .collect();
    // The reverse of apply's order: prod, test, dev; in each the canary last.
    let mut expected: Vec<&str> = Vec::new();
    for env in ["prod", "test", "dev"] {
        let mut these: Vec<usize> = (0..n - 1).filter(|i| layout[*i].0 == env).collect();
        these.sort_by_key(|i| (layout[*i].1, std::cmp::Reverse(p[*i].clone())));
        expected.extend(these.iter().map(|i| p[*i].as_str()));
    }
    assert_eq!(order, expected, "{summary:?}");
    for r in &summary {
        assert_eq!(r["outcome"], "ok", "{r}");
    }
    // Each environment ends before the next begins.
    let spans: Vec<(usize, usize)> = expected.iter().map(|n| span(&ev, n)).collect();
    for w in 0..expected.len() - 1 {
        let (a, b) = (w, w + 1);
        let envs = |i: usize| layout[p.iter().position(|x| x == expected[i]).unwrap()].0;
        if envs(a) != envs(b) {
            assert!(
                spans[a].1 < spans[b].0,
                "{} before {}",
                expected[a],
                expected[b]
            );
        }
    }
    for (pair, v) in versions(&cfg) {
        assert_eq!(v, ["1", "1"], "{pair}: both hosts on the old version");
    }
    let log = baton(&cfg, &["log", &p[0]]);
    assert!(log.stdout.contains(" rollback "), "{}", log.stdout);
    // Withdrawn: prod needs dev and test again.
    let again = baton(&cfg, &["apply", "--env", "prod", "--change", "v2"]);
    assert_eq!(again.code, 5, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("has not completed on"),
        "{}",
        again.stdout
    );
    // Nothing left to roll back.
    let none = baton(&cfg, &["rollback", "--all", "--change", "v2"]);
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert!(
        none.stderr.contains("already rolled back"),
        "{}",
        none.stderr
    );
}
