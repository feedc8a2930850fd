//! Notifications against the lab: a webhook receiver (Python 3's
//! http.server, started by each test in the client's namespace,
//! 198.18.0.200, recording every POST) and a command notifier (a shell
//! line appending its stdin to a file). An apply on `web` tells its start
//! and its end with the right fields; a change that fails on the standby
//! tells `rolled_back` with the step that failed; a notifier that hangs
//! delays the run by at most its timeout and is journaled as timed out; a
//! receiver answering 500 is journaled and the run still exits 0. The
//! webhook's token never reaches the journal, the output or `baton log`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The receiver's port in the client's namespace.
const PORT: u16 = 18917;

/// The path part of every webhook URL: a token, as Slack's has one.
const TOKEN: &str = "T0LAB/B0LAB/s3cr3t-t0ken";

const RECEIVER: &str = r#"
import http.server, json, sys, time
port, out, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "type": self.headers.get("content-type"),
                                "body": body.decode()}) + "\n")
        if self.path.startswith("/hang/"):
            time.sleep(60)
        status = 500 if self.path.startswith("/fail/") else 200
        answer = b"ok" if status == 200 else b"no_service"
        self.send_response(status)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("198.18.0.200", port), Receiver)
open(ready, "w").close()
server.serve_forever()
"#;

/// A webhook receiver in the client's namespace; stopped on drop.
struct Receiver {
    child: Child,
    posts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("receiver.py");
        fs::write(&script, RECEIVER).unwrap();
        let posts = dir.path().join("posts");
        let ready = dir.path().join("ready");
        let child = Command::new("ip")
            .args(["netns", "exec", "baton-client", "python3"])
            .arg(&script)
            .arg(PORT.to_string())
            .arg(&posts)
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the receiver");
        let until = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            assert!(Instant::now() < until, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Receiver {
            child,
            posts,
            _dir: dir,
        }
    }

    /// `http://198.18.0.200:PORT/MODE/TOKEN`: `ok` answers 200, `fail`
    /// 500, `hang` never in time.
    fn url(mode: &str) -> String {
        format!("http://198.18.0.200:{PORT}/{mode}/{TOKEN}")
    }

    /// Every POST so far: its path, content type and body as JSON.
    fn posts(&self) -> Vec<(String, String, serde_json::Value)> {
        fs::read_to_string(&self.posts)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let body = serde_json::from_str(v["body"].as_str().unwrap())
                    .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {l}"));
                (
                    v["path"].as_str().unwrap().to_string(),
                    v["type"].as_str().unwrap_or_default().to_string(),
                    body,
                )
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lab's configuration with `notify` (a `[notify]` table) appended to
/// web.toml and `extra` (more tables) too.
fn with_notify(notify: String, extra: &'static str) -> tempfile::TempDir {
    with_pair("web.toml", move |t| format!("{t}{extra}\n{notify}"))
}

fn notify_records(state: &Path) -> Vec<serde_json::Value> {
    journal(state, "web")
        .into_iter()
        .filter(|r| r["event"] == "notify")
        .collect()
}

fn last_run_id(state: &Path) -> String {
    journal(state, "web")
        .into_iter()
        .rev()
        .find(|r| r["event"] == "start")
        .map(|r| r["run"].as_str().unwrap().to_string())
        .expect("a run in the journal")
}

fn assert_no_token(what: &str, text: &str) {
    assert!(
        !text.contains("s3cr3t"),
        "{what} shows the webhook's token: {text}"
    );
}

#[test]
fn an_apply_tells_the_webhook_and_the_command_its_start_and_its_end() {
    let _lab = lab();
    let receiver = Receiver::start();
    let out = tempfile::tempdir().unwrap();
    let got = out.path().join("events");
    let dir = with_notify(
        format!(
            "[notify]\nwebhook = \"{}\"\ncommand = \"cat >> {}\"\non = [\"start\", \"ok\", \"rolled_back\"]\n",
            Receiver::url("ok"),
            got.display()
        ),
        "",
    );
    let config = dir.path().join("baton.toml");
    let run = baton(
        &config,
        &["apply", "web", "--change", "v2", "--reason", "notify test"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_no_token("the output", &format!("{}{}", run.stdout, run.stderr));
    let state = dir.path().join("state");
    let run_id = last_run_id(&state);
    let start = journal(&state, "web")
        .into_iter()
        .find(|r| r["event"] == "start")
        .unwrap();

    let posts = receiver.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    for (path, kind, _) in &posts {
        assert_eq!(path, &format!("/ok/{TOKEN}"));
        assert_eq!(kind, "application/json");
    }
    let (first, end) = (&posts[0].2, &posts[1].2);
    assert_eq!(first["event"], "start");
    assert_eq!(first["outcome"], serde_json::Value::Null);
    assert_eq!(end["event"], "ok");
    assert_eq!(end["outcome"], "ok");
    for e in [first, end] {
        assert_eq!(e["schema"], 1);
        assert_eq!(e["pair"], "web");
        assert_eq!(e["run"], run_id.as_str());
        assert_eq!(e["kind"], "apply");
        assert_eq!(e["operator"], start["operator"]);
        assert_eq!(e["reason"], "notify test");
        assert_eq!(e["change"]["name"], "v2");
        assert_eq!(e["change"]["label"], "service version 2");
        assert_eq!(e["change"]["hash"], start["hash"]);
        assert_eq!(e["primary_before"], "blue");
        assert_eq!(e["started"], start["at"]);
        let hosts: Vec<(String, String)> = e["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["name"].as_str().unwrap().to_string(),
                    h["address"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(
            hosts.contains(&("blue".into(), "198.18.0.11".into()))
                && hosts.contains(&("green".into(), "198.18.0.12".into())),
            "{hosts:?}"
        );
    }
    assert_eq!(end["primary_after"], "green");
    assert_eq!(end["step"], serde_json::Value::Null);
    assert_eq!(
        end["message"],
        "done: traffic is on green, blue is the standby"
    );
    let text = end["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "baton: web apply v2 (hash {}) ok: done: traffic is on green, blue is the standby",
            start["hash"].as_str().unwrap()
        )
    );

    // The command got the same two events, one JSON object per line.
    let lines: Vec<serde_json::Value> = fs::read_to_string(&got)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut events: Vec<&str> = lines.iter().map(|e| e["event"].as_str().unwrap()).collect();
    events.sort_unstable();
    assert_eq!(events, ["ok", "start"]);
    assert!(lines.iter().all(|e| e["run"] == run_id.as_str()));

    // Each delivery is journaled after the run's end, the URL shown
    // without its path.
    let records = notify_records(&state);
    assert_eq!(records.len(), 4, "{records:?}");
    for r in &records {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["run"], run_id.as_str());
    }
    let targets: Vec<&str> = records
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&"command")
            && targets.contains(&format!("webhook http://198.18.0.200:{PORT}/…").as_str()),
        "{targets:?}"
    );
    let text = fs::read_to_string(state.join("web.journal")).unwrap();
    assert_no_token("the journal", &text);
    let log = baton(&config, &["log", "web", "--run", &run_id]);
    assert_eq!(log.code, 0, "{}", log.stderr);
    assert!(
        log.stdout.contains(&format!(
            "notify ok via webhook http://198.18.0.200:{PORT}/…: sent"
        )) && log.stdout.contains("notify start via command: sent"),
        "{}",
        log.stdout
    );
    assert_no_token("baton log", &log.stdout);
    // every notification went out: the run's line in the trail says nothing of them
    let trail = baton(&config, &["log", "web"]);
    let line = trail.stdout.lines().find(|l| l.contains(&run_id));
    assert!(
        line.is_some_and(|l| l.ends_with("  OK")),
        "{line:?} in:\n{}",
        trail.stdout
    );
}

#[test]
fn a_change_failing_on_the_standby_tells_rolled_back_with_the_failed_step() {
    let _lab = lab();
    let receiver = Receiver::start();
    // The change breaks the page: the standby then names the wrong host.
    let dir = with_notify(
        format!("[notify]\nwebhook = \"{}\"\n", Receiver::url("ok")),
        "\n[changes.broken]\nlabel = \"a broken page\"\nsteps = [\"sed -i 's/host=/hast=/' /srv/baton-lab/index.html\"]\nrollback = [\"sed -i 's/hast=/host=/' /srv/baton-lab/index.html\"]\n",
    );
    let run = baton(
        &dir.path().join("baton.toml"),
        &["apply", "web", "--change", "broken"],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // The default `on`: every end, not the start.
    let posts = receiver.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let e = &posts[0].2;
    assert_eq!(e["event"], "rolled_back");
    assert_eq!(e["outcome"], "rolled_back");
    assert_eq!(e["step"], "verify_standby");
    assert_eq!(e["failed_steps"], serde_json::json!(["verify_standby"]));
    assert_eq!(e["change"]["name"], "broken");
    assert_eq!(e["change"]["label"], "a broken page");
    assert_eq!(e["primary_before"], "blue");
    assert_eq!(e["primary_after"], "blue");
    assert!(
        e["text"]
            .as_str()
            .unwrap()
            .contains(" rolled_back: failed at verify_standby and undone: traffic stayed on blue"),
        "{e}"
    );
}

#[test]
fn a_hanging_notifier_delays_the_run_by_at_most_its_timeout_and_is_journaled() {
    let _lab = lab();
    let receiver = Receiver::start();
    // The same switchover without a notifier, for the run's own time.
    let plain = with_notify(String::new(), "");
    let baseline = baton(&plain.path().join("baton.toml"), &["switchover", "web"]);
    assert_eq!(baseline.code, 0, "{}\n{}", baseline.stdout, baseline.stderr);
    // Back to blue through a configuration whose notifiers both hang.
    let dir = with_notify(
        format!(
            "[notify]\nwebhook = \"{}\"\ncommand = \"sleep 60.417\"\non = [\"start\", \"ok\"]\ntimeout = \"2s\"\n",
            Receiver::url("hang")
        ),
        "",
    );
    // The new configuration's state starts where the first left traffic.
    fs::create_dir_all(dir.path().join("state")).unwrap();
    fs::copy(
        plain.path().join("state/web.state.json"),
        dir.path().join("state/web.state.json"),
    )
    .unwrap();
    let run = baton(&dir.path().join("baton.toml"), &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let extra = run.elapsed.saturating_sub(baseline.elapsed);
    assert!(
        extra < Duration::from_millis(3500),
        "the run took {:?}, {:?} without notifiers: more than the 2s timeout late",
        run.elapsed,
        baseline.elapsed
    );
    assert_eq!(receiver.posts().len(), 2, "start and end were both sent");
    let records = notify_records(&dir.path().join("state"));
    assert_eq!(records.len(), 4, "{records:?}");
    for r in &records {
        assert_eq!(r["ok"], false, "{r}");
        assert!(
            r["detail"]
                .as_str()
                .unwrap()
                .starts_with("timed out after 2s"),
            "{r}"
        );
    }
    // The command was killed with its process group: no sleep is left.
    let left = Command::new("pgrep")
        .args(["-f", "sleep 60.417"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the notify command outlived its timeout: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn a_receiver_answering_500_is_journaled_and_the_run_still_exits_0() {
    let _lab = lab();
    let receiver = Receiver::start();
    let dir = with_notify(
        format!("[notify]\nwebhook = \"{}\"\n", Receiver::url("fail")),
        "",
    );
    let config = dir.path().join("baton.toml");
    let run = baton(&config, &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(receiver.posts().len(), 1);
    let state = dir.path().join("state");
    let records = notify_records(&state);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["ok"], false);
    assert_eq!(records[0]["about"], "ok");
    assert_eq!(records[0]["detail"], "HTTP 500: no_service");
    let log = baton(&config, &["log", "web", "--run", &last_run_id(&state)]);
    assert!(
        log.stdout.contains(&format!(
            "notify ok via webhook http://198.18.0.200:{PORT}/…: FAILED"
        )) && log.stdout.contains("HTTP 500: no_service"),
        "{}",
        log.stdout
    );
    assert_no_token("baton log", &log.stdout);
    assert_no_token("the output", &format!("{}{}", run.stdout, run.stderr));
    // The audit trail's line for the run says that its notification failed.
    let id = last_run_id(&state);
    let trail = baton(&config, &["log", "web"]);
    let line = trail
        .stdout
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no line for {id} in:\n{}", trail.stdout));
    assert!(
        line.ends_with(&format!(
            "OK  NOTIFY FAILED (1 of 1: `baton log --run {id}`)"
        )),
        "{line}"
    );
    let json = baton(&config, &["log", "web", "--json"]);
    let last: serde_json::Value =
        serde_json::from_str(json.stdout.lines().last().unwrap_or_default()).expect("log --json");
    assert_eq!(
        (last["notified"].as_u64(), last["notify_failed"].as_u64()),
        (Some(0), Some(1))
    );
    // The run's record is the run's own: it ended ok.
    assert!(journal(&state, "web")
        .iter()
        .any(|r| r["event"] == "finish" && r["outcome"] == "ok"));
}
