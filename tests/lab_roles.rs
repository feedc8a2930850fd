//! Issue 14 against real PostgreSQL 15 streaming replication (the lab's
//! pair `pg`: pga primary, pgb hot standby, VIP 198.18.0.130): while a
//! writer in the client namespace inserts sequenced rows through the VIP as
//! fast as it can and a watcher asks both hosts every 10 ms whether they
//! take writes, baton hands the role over (`switchover`, `apply` with a
//! change that restarts the server, `recover` after the controller died
//! inside the hand-over): every acknowledged insert is on the new primary
//! afterwards, and at no moment did both hosts take writes. A failover after
//! `kill -9` of the primary's postmaster reports what was lost, and a rejoin
//! makes the crashed host follow the new primary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const VIP: &str = "198.18.0.130";
const PGA: &str = "198.18.0.31";
const PGB: &str = "198.18.0.32";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn state() -> PathBuf {
    Path::new(LAB).join("state")
}

fn dsn(host: &str) -> String {
    format!("host={host} user=app dbname=app connect_timeout=2")
}

/// `scripts/pgwriter ARGS` in the client namespace.
fn pgwriter(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", "baton-client", "/usr/bin/python3"])
        .arg(repo().join("scripts/pgwriter"))
        .args(args);
    c
}

/// A writer and a watcher of both hosts' roles, running until `stop`.
struct Load {
    table: String,
    acked: PathBuf,
    writer: Child,
    watcher: Child,
    _dir: tempfile::TempDir,
}

/// What the writer and the watcher saw, and where the writer's
/// acknowledgements are (kept until this is dropped).
struct Seen {
    writer: serde_json::Value,
    roles: serde_json::Value,
    table: String,
    acked: PathBuf,
    _dir: tempfile::TempDir,
}

impl Load {
    fn start(name: &str) -> Load {
        let dir = tempfile::tempdir().expect("tempdir");
        let table = format!("w_{name}_{}", std::process::id());
        let acked = dir.path().join("acked");
        let writer = pgwriter(&["run", "--dsn", &dsn(VIP), "--table", &table, "--out"])
            .arg(&acked)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the writer");
        let watcher = pgwriter(&["roles", "--hosts", &format!("{PGA},{PGB}"), "--out"])
            .arg(dir.path().join("roles"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the watcher");
        // Writing before anything changes.
        std::thread::sleep(Duration::from_secs(2));
        Load {
            table,
            acked,
            writer,
            watcher,
            _dir: dir,
        }
    }

    /// Stops both; their summaries.
    fn stop(self) -> Seen {
        std::thread::sleep(Duration::from_secs(2));
        let summary = |child: Child| {
            // SAFETY: signalling a child we started (`ip netns exec` execs
            // python, so the pid is the writer's own).
            #[allow(unsafe_code, reason = "kill(2): std's Child can only send SIGKILL")]
            let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            assert_eq!(rc, 0);
            let out = child.wait_with_output().expect("the writer ends");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text
                .lines()
                .rev()
                .find(|l| l.starts_with('{'))
                .unwrap_or("");
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
                panic!(
                    "no summary ({e}): {text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        };
        let writer = summary(self.writer);
        let roles = summary(self.watcher);
        Seen {
            writer,
            roles,
            table: self.table,
            acked: self.acked,
            _dir: self._dir,
        }
    }
}

/// Every acknowledged insert is on `host` (`pgwriter check`).
fn check_nothing_lost(host: &str, table: &str, acked: &Path) -> serde_json::Value {
    let out = pgwriter(&["check", "--dsn", &dsn(host), "--table", table, "--acked"])
        .arg(acked)
        .output()
        .expect("pgwriter check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "pgwriter check printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `select pg_is_in_recovery()` on a host: `Some(false)` = writable.
fn in_recovery(host: &str) -> Option<bool> {
    let out = netns(
        "baton-client",
        &[
            "psql",
            "-X",
            "-At",
            &format!("host={host} user=postgres dbname=postgres connect_timeout=3"),
            "-c",
            "select pg_is_in_recovery()",
        ],
    );
    match String::from_utf8_lossy(&out.stdout).trim() {
        "t" => Some(true),
        "f" => Some(false),
        _ => None,
    }
}

/// `kill -9` of a host's postmaster, by the pid in its postmaster.pid.
fn kill_postmaster(host: &str) {
    let pid_file = Path::new(LAB).join(format!("hosts/{host}/pgdata/postmaster.pid"));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("the postmaster.pid")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("a pid");
    // SAFETY: the lab's own postmaster, by the pid it wrote.
    #[allow(unsafe_code, reason = "kill(2) of the lab's postmaster")]
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0);
}

/// The status of pair pg, as JSON; asserts its exit code.
fn status(cfg: &Path, code: i32) -> serde_json::Value {
    let run = baton(cfg, &["status", "pg", "--json"]);
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    run.json()["pairs"][0].clone()
}

fn assert_the_load(seen: &Seen, lost: &serde_json::Value, what: &str) {
    assert!(
        seen.writer["acked"].as_u64().unwrap_or(0) > 200,
        "{what}: the writer barely wrote: {}",
        seen.writer
    );
    assert_eq!(
        lost["lost_count"], 0,
        "{what}: acknowledged writes lost: {lost}"
    );
    assert_eq!(
        seen.roles["both_writable_moments"], 0,
        "{what}: both hosts took writes at once: {}",
        seen.roles
    );
    eprintln!(
        "{what}: {} acknowledged, none lost; longest gap between two acknowledged writes {} s",
        seen.writer["acked"], seen.writer["longest_gap"]
    );
}

#[test]
fn a_switchover_hands_the_role_over_and_back_losing_no_acknowledged_write() {
    let _lab = lab();
    let cfg = lab_config();
    let before = status(&cfg, 0);
    assert_eq!(before["holder"]["detail"], "pga");
    for (to, from) in [("pgb", "pga"), ("pga", "pgb")] {
        let load = Load::start("switchover");
        let run = baton(&cfg, &["switchover", "pg"]);
        let seen = load.stop();
        assert_eq!(run.code, 0, "to {to}: {}\n{}", run.stdout, run.stderr);
        let to_addr = if to == "pga" { PGA } else { PGB };
        let from_addr = if from == "pga" { PGA } else { PGB };
        assert_the_load(
            &seen,
            &check_nothing_lost(to_addr, &seen.table, &seen.acked),
            to,
        );
        assert_eq!(in_recovery(to_addr), Some(false), "{to} must take writes");
        assert_eq!(
            in_recovery(from_addr),
            Some(true),
            "{from} must be a standby"
        );
        let after = status(&cfg, 0);
        assert_eq!(after["holder"]["detail"], to);
        assert_eq!(after["lag"]["standby"], from, "{after}");
        let states: Vec<&str> = after["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["replication"]["state"].as_str().unwrap_or("?"))
            .collect();
        assert!(
            states.contains(&"primary") && states.contains(&"standby"),
            "{states:?}"
        );
    }
}

#[test]
fn an_apply_with_a_change_that_restarts_the_server_loses_no_acknowledged_write() {
    let _lab = lab();
    let cfg = lab_config();
    let version = |s: &serde_json::Value, host: &str| {
        s["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == host)
            .map(|h| h["version"].clone())
            .unwrap()
    };
    let before = status(&cfg, 0);
    let load = Load::start("apply");
    let run = baton(&cfg, &["apply", "pg", "--change", "conn200"]);
    let seen = load.stop();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_the_load(
        &seen,
        &check_nothing_lost(PGB, &seen.table, &seen.acked),
        "apply",
    );
    let after = status(&cfg, 0);
    assert_eq!(after["holder"]["detail"], "pgb");
    assert_ne!(version(&after, "pga"), version(&before, "pga"), "{after}");
    assert_eq!(version(&after, "pga"), version(&after, "pgb"), "{after}");
    // The journal: the change on pgb before the hand-over, on pga after it
    // follows.
    let steps: Vec<String> = journal(&state(), "pg")
        .iter()
        .filter(|r| r["event"] == "end")
        .map(|r| r["step"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "demote",
            "catch_up",
            "promote",
            "switch",
            "verify_service",
            "drain",
            "follow",
            "apply_old_primary",
            "verify_old_primary"
        ]
    );
}

/// The controller killed inside the hand-over (just before `promote`, the
/// switch, `follow`), then `baton recover`: exactly one host takes writes,
/// it holds the VIP, and nothing acknowledged is lost.
#[cfg(feature = "failpoints")]
#[test]
fn recover_after_the_controller_died_inside_the_hand_over_settles_on_one_writable_primary() {
    use std::os::unix::process::ExitStatusExt;
    let _lab = lab();
    let cfg = lab_config();
    // Before promote the hand-over is undone (exit 1); from promote on it
    // is finished (exit 0).
    for (point, new_primary, code) in [
        ("begin-catch_up", "pga", 1),
        ("begin-promote", "pgb", 0),
        ("begin-switch", "pgb", 0),
        ("begin-follow", "pgb", 0),
    ] {
        let _ = Command::new(repo().join("scripts/lab"))
            .arg("reset")
            .output();
        let _ = std::fs::remove_dir_all(state());
        let load = Load::start("recover");
        let out = baton_command(&cfg, &["switchover", "pg"])
            .env("FAILPOINTS", format!("{point}=return"))
            .output()
            .expect("baton");
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{point}: {out:?}");
        let run = baton(&cfg, &["recover", "pg"]);
        let seen = load.stop();
        assert_eq!(run.code, code, "{point}: {}\n{}", run.stdout, run.stderr);
        let (new_addr, old_addr) = if new_primary == "pga" {
            (PGA, PGB)
        } else {
            (PGB, PGA)
        };
        assert_the_load(
            &seen,
            &check_nothing_lost(new_addr, &seen.table, &seen.acked),
            point,
        );
        assert_eq!(in_recovery(new_addr), Some(false), "{point}");
        assert_eq!(in_recovery(old_addr), Some(true), "{point}");
        let after = status(&cfg, 0);
        assert_eq!(after["holder"]["detail"], new_primary, "{point}");
    }
}

/// `kill -9` of the primary's postmaster, then `baton failover`: the
/// standby (within `max_lag_on_failover` of the last position `status`
/// saw) is promoted and takes the VIP; the writes acknowledged by the dead
/// primary that never reached it are reported. `baton rejoin` then makes
/// the crashed host follow the new primary (rewinding it if it must).
#[test]
fn a_failover_after_kill_9_reports_what_was_lost_and_a_rejoin_follows_the_new_primary() {
    let _lab = lab();
    let cfg = lab_config();
    let load = Load::start("failover");
    // What baton saw last of the primary.
    status(&cfg, 0);
    kill_postmaster("pga");
    std::thread::sleep(Duration::from_secs(1));
    let run = baton(&cfg, &["failover", "pg"]);
    let seen = load.stop();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let caught = step_end(&state(), "pg", "catch_up");
    assert_eq!(caught["ok"], true, "{caught}");
    assert!(
        caught["detail"]
            .as_str()
            .unwrap_or("")
            .contains("last position seen from pga"),
        "{caught}"
    );
    let lost = check_nothing_lost(PGB, &seen.table, &seen.acked);
    eprintln!(
        "failover after kill -9: {} acknowledged, {} lost ({}); catch_up: {}",
        seen.writer["acked"], lost["lost_count"], lost, caught["detail"]
    );
    assert_eq!(seen.roles["both_writable_moments"], 0, "{}", seen.roles);
    assert_eq!(in_recovery(PGB), Some(false));
    let after = status(&cfg, 3);
    assert_eq!(after["holder"]["detail"], "pgb");

    let run = baton(&cfg, &["rejoin", "pg"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(in_recovery(PGA), Some(true));
    let after = status(&cfg, 0);
    assert_eq!(after["lag"]["standby"], "pga", "{after}");
}

/// With no position of the dead primary ever seen, a failover promotes
/// nothing (exit 4, the standby still a standby) until the operator
/// accepts the loss, which the journal and `log` keep.
#[test]
fn a_failover_without_a_position_seen_needs_the_loss_accepted() {
    let _lab = lab();
    let cfg = lab_config();
    kill_postmaster("pga");
    std::thread::sleep(Duration::from_secs(1));
    let refused = baton(&cfg, &["failover", "pg"]);
    assert_eq!(refused.code, 4, "{}\n{}", refused.stdout, refused.stderr);
    let caught = step_end(&state(), "pg", "catch_up");
    assert_eq!(caught["ok"], false, "{caught}");
    assert!(
        caught["detail"]
            .as_str()
            .unwrap_or("")
            .contains("never saw a replication position of pga"),
        "{caught}"
    );
    assert_eq!(in_recovery(PGB), Some(true), "nothing was promoted");

    let accepted = baton(
        &cfg,
        &[
            "failover",
            "pg",
            "--accept-data-loss",
            "--reason",
            "pga is gone",
        ],
    );
    assert_eq!(accepted.code, 0, "{}\n{}", accepted.stdout, accepted.stderr);
    assert_eq!(in_recovery(PGB), Some(false));
    let log = baton(&cfg, &["log", "pg"]);
    assert!(
        log.stdout.contains("failover --accept-data-loss"),
        "{}",
        log.stdout
    );
    let start = journal(&state(), "pg")
        .into_iter()
        .rev()
        .find(|r| r["event"] == "start")
        .expect("a start record");
    assert!(
        start["data_loss"]
            .as_str()
            .unwrap_or("")
            .contains("pga is gone"),
        "{start}"
    );
}
