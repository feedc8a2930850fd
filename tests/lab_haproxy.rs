//! The pair behind the lab's HAProxy 2.6 (`lb`: teal and coral, the
//! balancer on host lb, frontend 198.18.0.40:80): a switchover through the
//! runtime API under an independent client (no failed request, no reset
//! connection, answers from the new host after), status naming the
//! holder from `show stat`, a ramp whose steps' shares follow their
//! weights, and `v2-bad` (checks green, one request in five a 500) aborted
//! at its first step with traffic back on the old host.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

const FRONTEND: &str = "198.18.0.40:80";

/// The probe aimed at the frontend.
fn probe(rate: u32, seconds: f64) -> Child {
    probe_at(FRONTEND, rate, seconds)
}

/// `show stat` of backend lb as JSON, per server (scripts/lbstat).
fn lbstat() -> serde_json::Value {
    let out = netns_ok("baton-lb", &[&format!("{LAB}/bin/lbstat")]);
    serde_json::from_str(&out).expect("lbstat prints JSON")
}

fn serving(stat: &serde_json::Value, server: &str) -> bool {
    let s = &stat["servers"][server];
    s["weight"].as_u64().unwrap_or(0) > 0 && s["status"].as_str().unwrap_or("").starts_with("UP")
}

/// When the journal's record of `event` (`begin`/`end`) of `step` was
/// written, in Unix seconds.
fn at(state: &Path, event: &str, step: &str) -> f64 {
    let r = journal(state, "lb")
        .into_iter()
        .find(|r| r["event"] == event && r["step"] == step)
        .unwrap_or_else(|| panic!("no {event} of {step}"));
    let ts: jiff::Timestamp = r["at"].as_str().unwrap().parse().unwrap();
    ts.as_millisecond() as f64 / 1000.0
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn state_dir() -> PathBuf {
    Path::new(LAB).join("state")
}

#[test]
fn a_switchover_through_haproxy_drains_and_no_request_fails() {
    let _lab = lab();
    let cfg = lab_config();
    let status = baton(&cfg, &["status", "lb", "--json"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    let pair = &status.json()["pairs"][0];
    assert_eq!(pair["method"], "haproxy");
    assert_eq!(pair["holder"]["detail"], "teal");
    assert_eq!(pair["balancer"]["backend"], "lb");

    let client = probe(100, 8.0);
    std::thread::sleep(Duration::from_millis(1500));
    let run = baton(&cfg, &["switchover", "lb"]);
    let all = answers(client);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(all.len() > 600, "the probe made {} requests", all.len());
    assert_eq!(failures(&all), Vec::<String>::new(), "failed requests");
    // teal before, coral after: the last second is all coral.
    assert_eq!(all[0].host.as_deref(), Ok("teal"));
    let last = all.last().unwrap().sent;
    assert!(all
        .iter()
        .filter(|a| a.sent > last - 1.0)
        .all(|a| a.host.as_deref() == Ok("coral")));

    let stat = lbstat();
    assert!(serving(&stat, "coral") && !serving(&stat, "teal"), "{stat}");
    assert_eq!(stat["servers"]["teal"]["weight"], 0, "{stat}");
    let status = baton(&cfg, &["status", "lb", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert_eq!(status.json()["pairs"][0]["holder"]["detail"], "coral");
    // The switch was one runtime API line on the balancer.
    let switch = step_end(&state_dir(), "lb", "switch");
    let commands = switch["commands"].as_array().unwrap();
    assert!(commands.iter().any(|c| c["host"] == "lb"
        && c["command"]
            .as_str()
            .unwrap()
            .contains("set server lb/coral weight 100; set server lb/coral state ready; set server lb/teal state drain")));
}

#[test]
fn a_ramp_sends_each_steps_share_to_the_updated_host_and_no_request_fails() {
    let _lab = lab();
    let cfg = lab_config();
    let step = 6.0;
    let client = probe(100, 3.0 * step + 16.0);
    std::thread::sleep(Duration::from_millis(1000));
    let run = baton(
        &cfg,
        &[
            "apply",
            "lb",
            "--change",
            "v2",
            "--ramp",
            "10,50,100",
            "--step",
            "6s",
        ],
    );
    let all = answers(client);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(failures(&all), Vec::<String>::new(), "failed requests");
    let begun = at(&state_dir(), "begin", "ramp");
    // Each step's middle (its first and last second left out: the weights
    // and `show stat` take a moment).
    for (i, percent) in [10.0, 50.0].iter().enumerate() {
        let from = begun + i as f64 * step + 1.0;
        let to = begun + (i + 1) as f64 * step - 1.0;
        let window: Vec<&Answer> = all
            .iter()
            .filter(|a| a.sent >= from && a.sent < to)
            .collect();
        assert!(
            window.len() > 200,
            "step {}: {} answers",
            i + 1,
            window.len()
        );
        let coral = window
            .iter()
            .filter(|a| a.host.as_deref() == Ok("coral"))
            .count();
        let share = coral as f64 * 100.0 / window.len() as f64;
        println!(
            "step {}: {percent}% asked, {share:.1}% answered by coral ({coral} of {})",
            i + 1,
            window.len()
        );
        assert!(
            (share - percent).abs() <= 5.0,
            "step {}: coral answered {share:.1}% of {} requests, asked {percent}%",
            i + 1,
            window.len()
        );
    }
    let detail = step_end(&state_dir(), "lb", "ramp")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("step 1/2 (10% to coral)") && detail.contains("step 2/2 (50% to coral)"),
        "{detail}"
    );
    let stat = lbstat();
    assert!(serving(&stat, "coral") && !serving(&stat, "teal"), "{stat}");
    let page = client_get("http://198.18.0.40/index.html").1;
    assert!(page.contains("version=2"), "{page}");
}

#[test]
fn v2_bad_passes_its_checks_but_is_aborted_at_its_first_step() {
    let _lab = lab();
    let cfg = lab_config();
    let client = probe(100, 22.0);
    std::thread::sleep(Duration::from_millis(1000));
    let started = now();
    let run = baton(
        &cfg,
        &[
            "apply",
            "lb",
            "--change",
            "v2-bad",
            "--ramp",
            "10,50,100",
            "--step",
            "8s",
        ],
    );
    let ended = now();
    let all = answers(client);
    assert_eq!(run.code, 1, "rolled back: {}{}", run.stdout, run.stderr);
    let ramp = step_end(&state_dir(), "lb", "ramp");
    assert_eq!(ramp["ok"], false);
    let detail = ramp["detail"].as_str().unwrap();
    assert!(
        detail.contains("step 1/2 (10% to coral)")
            && detail.contains("ABORTED")
            && !detail.contains("step 2/2"),
        "{detail}"
    );
    // Every new request goes to teal again; coral's change is rolled back.
    let stat = lbstat();
    assert!(serving(&stat, "teal") && !serving(&stat, "coral"), "{stat}");
    assert!(
        !Path::new(LAB).join("hosts/coral/srv/fault-500").exists(),
        "v2-bad's rollback removed the fault file on coral"
    );
    let harmed: Vec<&String> = all
        .iter()
        .filter_map(|a| a.host.as_ref().err())
        .filter(|e| e.contains("500"))
        .collect();
    let other = failures(&all).len() - harmed.len();
    println!(
        "v2-bad: {} requests in {:.1} s, {} answered 500 (harmed), {other} failed otherwise",
        all.iter()
            .filter(|a| a.sent >= started && a.sent <= ended)
            .count(),
        ended - started,
        harmed.len()
    );
    assert_eq!(other, 0, "only the fault's 500s: {:?}", failures(&all));
    assert!(!harmed.is_empty(), "the fault harmed requests at 10 %");
    // After the run, nothing more is harmed.
    let after = all.iter().filter(|a| a.sent > ended + 0.5);
    assert!(after.clone().count() > 100);
    assert!(after.into_iter().all(|a| a.host.as_deref() == Ok("teal")));
}

/// The records of the pair's journal of one kind (`sample`, ...).
fn records(event: &str) -> Vec<serde_json::Value> {
    journal(&state_dir(), "lb")
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

#[test]
fn an_ab_experiment_holds_its_split_reports_it_and_ends_keeping_the_new_version() {
    let _lab = lab();
    let cfg = lab_config();
    let client = probe(100, 40.0);
    std::thread::sleep(Duration::from_millis(1000));
    let run = baton(
        &cfg,
        &[
            "ab",
            "lb",
            "--change",
            "v2",
            "--weight",
            "20",
            "--for",
            "6s",
            "--interval",
            "2s",
        ],
    );
    assert_eq!(run.code, 0, "held: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("HELD"), "{}", run.stdout);
    let held_at = now();
    // Held: both servers take requests, by the split's weights.
    let stat = lbstat();
    assert!(serving(&stat, "coral") && serving(&stat, "teal"), "{stat}");
    assert_eq!(stat["servers"]["coral"]["weight"], 20, "{stat}");
    // status calls it an experiment (degraded), not split brain.
    let status = baton(&cfg, &["status", "lb", "--json"]);
    assert_eq!(status.code, 3, "{}{}", status.stdout, status.stderr);
    let kinds: Vec<String> = status.json()["pairs"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["experiment"], "{}", status.stdout);
    // Another run waits for its end.
    let refused = baton(&cfg, &["switchover", "lb"]);
    assert_eq!(refused.code, 5, "{}{}", refused.stdout, refused.stderr);
    // The report: three samples, coral's share of them near its weight.
    let svg = tempfile::NamedTempFile::new().unwrap();
    let report = baton(
        &cfg,
        &[
            "ab",
            "lb",
            "--report",
            "--json",
            "--svg",
            svg.path().to_str().unwrap(),
        ],
    );
    assert_eq!(report.code, 0, "{}{}", report.stdout, report.stderr);
    let r = report.json();
    assert_eq!(r["state"], "held: waiting for `baton ab --end`", "{r}");
    let samples = r["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3, "{r}");
    let (old, new) = (
        r["totals"]["old"]["requests"].as_f64().unwrap(),
        r["totals"]["new"]["requests"].as_f64().unwrap(),
    );
    let share = new * 100.0 / (old + new);
    println!(
        "A/B: coral had {share:.1}% of {} requests (weight 20)",
        old + new
    );
    assert!((share - 20.0).abs() <= 5.0, "{share:.1}% {r}");
    assert!(samples.iter().all(|s| s["verdict"] != "worse"), "{r}");
    assert!(
        samples[0]["new"]["response_max_ms"].is_u64(),
        "rtime_max read: {r}"
    );
    let plot = std::fs::read_to_string(svg.path()).unwrap();
    assert_eq!(plot.matches("<polyline").count(), 6, "{plot}");
    let table = baton(&cfg, &["ab", "lb", "--report"]);
    assert!(
        table.stdout.contains("20% of new requests to coral"),
        "{}",
        table.stdout
    );

    std::thread::sleep(Duration::from_secs(3));
    let end = baton(&cfg, &["ab", "lb", "--end", "--keep", "new"]);
    let ended_at = now();
    assert_eq!(end.code, 0, "{}{}", end.stdout, end.stderr);
    let all = answers(client);
    assert_eq!(failures(&all), Vec::<String>::new(), "failed requests");
    // While held, the split held.
    let held: Vec<&Answer> = all
        .iter()
        .filter(|a| a.sent > held_at + 0.5 && a.sent < held_at + 3.0)
        .collect();
    let coral = held
        .iter()
        .filter(|a| a.host.as_deref() == Ok("coral"))
        .count();
    assert!(held.len() > 150, "{}", held.len());
    let held_share = coral as f64 * 100.0 / held.len() as f64;
    assert!((held_share - 20.0).abs() <= 5.0, "{held_share:.1}%");
    // After the end, coral alone, with v2.
    let after: Vec<&Answer> = all.iter().filter(|a| a.sent > ended_at + 0.5).collect();
    assert!(after.len() > 100);
    assert!(after.iter().all(|a| a.host.as_deref() == Ok("coral")));
    let stat = lbstat();
    assert!(serving(&stat, "coral") && !serving(&stat, "teal"), "{stat}");
    let page = client_get("http://198.18.0.40/index.html").1;
    assert!(page.contains("version=2"), "{page}");
    let status = baton(&cfg, &["status", "lb"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
}

#[test]
fn an_ab_experiment_of_v2_bad_is_aborted_at_its_first_interval() {
    let _lab = lab();
    let cfg = lab_config();
    let client = probe(100, 14.0);
    std::thread::sleep(Duration::from_millis(1000));
    let run = baton(
        &cfg,
        &[
            "ab",
            "lb",
            "--change",
            "v2-bad",
            "--weight",
            "20",
            "--for",
            "30s",
            "--interval",
            "3s",
        ],
    );
    let ended = now();
    let all = answers(client);
    assert_eq!(run.code, 1, "rolled back: {}{}", run.stdout, run.stderr);
    let samples = records("sample");
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(samples[0]["sample"]["verdict"], "worse");
    let stat = lbstat();
    assert!(serving(&stat, "teal") && !serving(&stat, "coral"), "{stat}");
    assert!(!Path::new(LAB).join("hosts/coral/srv/fault-500").exists());
    let after = all.iter().filter(|a| a.sent > ended + 0.5);
    assert!(after.clone().count() > 100);
    assert!(after.into_iter().all(|a| a.host.as_deref() == Ok("teal")));
    let report = baton(&cfg, &["ab", "lb", "--report", "--json"]);
    assert_eq!(
        report.json()["state"],
        "ended before a decision (rolled_back)"
    );
}

#[test]
fn ending_an_experiment_still_watched_stops_its_watcher_and_keeps_the_old_version() {
    let _lab = lab();
    let cfg = lab_config();
    let watcher = spawn(
        &cfg,
        &[
            "ab",
            "lb",
            "--change",
            "v2",
            "--weight",
            "30",
            "--for",
            "2m",
            "--interval",
            "1s",
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while records("sample").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no sample was taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = baton(&cfg, &["ab", "lb", "--end", "--keep", "old"]);
    assert_eq!(end.code, 0, "{}{}", end.stdout, end.stderr);
    assert!(end.stderr.contains("to stop watching"), "{}", end.stderr);
    let (code, out) = finish(watcher);
    assert_eq!(code, 0, "the watcher left it held: {out}");
    let detail = step_end(&state_dir(), "lb", "experiment")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("stopped watching"), "{detail}");
    let stat = lbstat();
    assert!(serving(&stat, "teal") && !serving(&stat, "coral"), "{stat}");
    // coral's change was rolled back.
    let (_, page) = client_get("http://198.18.0.42/index.html");
    assert!(
        page.contains("coral") && page.contains("version=1"),
        "{page}"
    );
    let decide = step_end(&state_dir(), "lb", "decide");
    assert_eq!(decide["ok"], false);
    let status = baton(&cfg, &["status", "lb"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
}

/// A balancer baton cannot ask (SSH refused, or a socket that is not
/// there) is named with its cause by `status`, and no run starts: nothing
/// on the balancer changes.
#[test]
fn a_balancer_that_cannot_be_asked_stops_every_run_before_anything_changes() {
    let _lab = lab();
    for (key, value, cause) in [
        ("ssh_port", "2999", "198.18.0.40]:2999): Connection refused"),
        (
            "socket",
            "\"/var/lib/baton-lab/hosts/lb/nothing.sock\"",
            "nothing.sock",
        ),
    ] {
        let dir = with_pair("lb.toml", |t| set_key(&t, key, value));
        let cfg = dir.path().join("baton.toml");
        let before = lbstat();
        let status = baton(&cfg, &["status", "lb", "--json"]);
        assert_eq!(status.code, 4, "{key}: {}{}", status.stdout, status.stderr);
        let pair = &status.json()["pairs"][0];
        let said = pair.to_string();
        assert!(said.contains(cause), "{key}: the cause is named: {said}");
        for args in [
            &["switchover", "lb"][..],
            &["apply", "lb", "--change", "v2"][..],
            &[
                "ab",
                "lb",
                "--change",
                "v2",
                "--weight",
                "10",
                "--for",
                "2s",
                "--interval",
                "1s",
            ][..],
        ] {
            let run = baton(&cfg, args);
            // Who holds traffic cannot be told: for an operator (exit 4).
            assert_eq!(run.code, 4, "{key} {args:?}: {}{}", run.stdout, run.stderr);
            assert!(
                run.stdout.contains("nothing was changed")
                    || run.stderr.contains("Nothing was done"),
                "{key} {args:?}: {}{}",
                run.stdout,
                run.stderr
            );
        }
        let after = lbstat();
        for server in ["teal", "coral"] {
            assert_eq!(
                before["servers"][server]["weight"], after["servers"][server]["weight"],
                "{key}: {after}"
            );
        }
        let (_, page) = client_get("http://198.18.0.42/index.html");
        assert!(page.contains("version=1"), "{key}: coral untouched: {page}");
    }
}
