//! The pair behind the lab's HAProxy 2.6 (`lb`: teal and coral, the
//! balancer on host lb, frontend 198.18.0.40:80): a switchover through the
//! runtime API under an independent client (no failed request, no reset
//! connection, answers from the new host after), status naming the
//! holder from `show stat`, a ramp whose steps' shares follow their
//! weights, and `v2-bad` (checks green, one request in five a 500) aborted
//! at its first step with traffic back on the old host.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

const FRONTEND: &str = "198.18.0.40:80";

/// The benchmark client, built beside baton (`cargo test` builds the
/// examples): one new connection per request, one line per request.
fn probe(rate: u32, seconds: f64) -> Child {
    let baton = PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let probe = baton
        .parent()
        .map(|d| d.join("examples/probe"))
        .expect("the build directory");
    assert!(probe.exists(), "{} is not built", probe.display());
    Command::new("ip")
        .args(["netns", "exec", "baton-client"])
        .arg(probe)
        .args([FRONTEND, &rate.to_string(), &seconds.to_string(), "3000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the probe")
}

/// One request the probe made: when it was sent (Unix seconds), and the
/// host that answered or why it failed.
struct Answer {
    sent: f64,
    host: Result<String, String>,
}

fn answers(child: Child) -> Vec<Answer> {
    let out = child.wait_with_output().expect("the probe ends");
    let mut all: Vec<Answer> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.splitn(4, ' ').collect();
            let sent = w.first()?.parse::<f64>().ok()? / 1e6;
            Some(Answer {
                sent,
                host: match *w.get(2)? {
                    "FAIL" => Err(w.get(3).unwrap_or(&"").to_string()),
                    h => Ok(h.to_string()),
                },
            })
        })
        .collect();
    all.sort_by(|a, b| a.sent.total_cmp(&b.sent));
    all
}

fn failures(all: &[Answer]) -> Vec<String> {
    all.iter().filter_map(|a| a.host.clone().err()).collect()
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
