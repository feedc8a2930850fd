//! The controller killed at every step, then run again: for each fault
//! point (`src/crash.rs`), an apply on the VIP pair aborts there (like
//! kill -9: no destructors, no last journal line), and `baton recover` must
//! leave exactly one host holding traffic, that host passing its checks,
//! the recorded roles equal to reality, and the run finished in the journal.
//! Needs the `failpoints` feature (`scripts/test` builds with it).

#![cfg(feature = "failpoints")]

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use common::*;

fn holds_vip(ns: &str) -> bool {
    netns_ok(ns, &["ip", "-o", "addr", "show", "dev", "eth0"]).contains("inet 198.18.0.100/")
}

/// Runs baton with a fault point armed; returns the signal that ended it.
fn crash_at(cfg: &Path, point: &str, args: &[&str]) -> Option<i32> {
    let out = baton_command(cfg, args)
        .env("FAILPOINTS", format!("{point}=return"))
        .output()
        .unwrap();
    out.status.signal()
}

/// Recovers and checks the promises; returns who holds traffic.
fn recover_and_check(cfg: &Path, state: &Path, point: &str) -> String {
    let run = baton(cfg, &["recover", "web"]);
    assert!(
        [0, 1, 3].contains(&run.code),
        "{point}: recover exited {}: {}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    let (blue, green) = (holds_vip("baton-blue"), holds_vip("baton-green"));
    assert!(
        blue != green,
        "{point}: exactly one host must hold the VIP (blue {blue}, green {green})"
    );
    let holder = if blue { "blue" } else { "green" };
    let seen = netns_ok(
        "baton-client",
        &["curl", "-s", "--max-time", "3", "http://198.18.0.100/"],
    );
    assert!(
        seen.starts_with(&format!("host={holder} ")),
        "{point}: the VIP answers {seen:?}"
    );
    let recorded: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(state.join("web.state.json")).unwrap()).unwrap();
    assert_eq!(
        recorded["primary"], holder,
        "{point}: the record must follow reality"
    );
    let journal = fs::read_to_string(state.join("web.journal")).unwrap();
    let last = journal.lines().last().unwrap();
    assert!(
        last.contains("\"event\":\"finish\""),
        "{point}: the run is not finished: {last}"
    );
    let status = baton(cfg, &["status", "web"]);
    assert_eq!(status.code, 0, "{point}: {}", status.stdout);
    holder.to_string()
}

#[test]
fn killed_at_every_step_of_an_apply_then_recovered() {
    let points = [
        ("begin-apply_standby", "blue"),
        ("end-apply_standby", "blue"),
        ("begin-verify_standby", "blue"),
        ("end-verify_standby", "blue"),
        ("begin-switch", "blue"),
        ("vip-between-del-and-add", "blue"),
        ("end-switch", "green"),
        ("begin-verify_service", "blue"),
        ("end-verify_service", "blue"),
        ("begin-drain", "green"),
        ("end-drain", "green"),
        ("begin-apply_old_primary", "green"),
        ("end-apply_old_primary", "green"),
        ("begin-verify_old_primary", "green"),
        ("end-verify_old_primary", "green"),
    ];
    for (point, expected) in points {
        // (the point between del and add is the classic order's; the
        // overlap's own is killed in lab_handover, which waits out the old
        // holder's lifetime)
        let keys = if point == "vip-between-del-and-add" {
            "handover = \"classic\"\n"
        } else {
            ""
        };
        let holder = crash_then_recover(point, keys, "");
        assert_eq!(holder, expected, "{point}");
        if expected == "blue" {
            let page =
                fs::read_to_string(Path::new(LAB).join("hosts/green/srv/index.html")).unwrap();
            assert_eq!(
                page, "host=green version=1\n",
                "{point}: the standby was rolled back"
            );
        }
    }
}

#[test]
fn killed_while_undoing_then_recovered() {
    // A check that fails only on green once green holds the VIP sends the
    // run down the undo path; the controller dies at each undo step.
    for point in [
        "begin-switch_back",
        "end-switch_back",
        "begin-rollback_standby",
        "end-rollback_standby",
    ] {
        assert_eq!(
            crash_then_recover(point, "", GREEN_MUST_NOT_SERVE),
            "blue",
            "{point}"
        );
    }
}

/// Aborts an apply of v2 on web at `point` (with `keys` added to web.toml's
/// `[traffic]` and `extra` appended to it), then recovers and checks the
/// promises; returns the holder.
fn crash_then_recover(point: &str, keys: &'static str, extra: &'static str) -> String {
    let _lab = lab();
    let dir = with_pair("web.toml", move |t| {
        add_traffic_keys(&set_key(&t, "observe_period", "\"0s\""), keys) + extra
    });
    let cfg = dir.path().join("baton.toml");
    assert_eq!(
        crash_at(&cfg, point, &["apply", "web", "--change", "v2"]),
        Some(libc::SIGABRT),
        "{point}: the fault point did not fire"
    );
    recover_and_check(&cfg, &dir.path().join("state"), point)
}

#[test]
fn killed_between_the_dns_update_and_the_secondary_following_then_recovered() {
    // The controller dies once the primary DNS server took the update; the
    // secondary follows about a second later (NOTIFY, then a transfer). The
    // recovery, run at once, must wait for the servers to agree instead of
    // calling traffic unclear, then finish the run on violet.
    let _lab = lab();
    let dir = with_pair("api.toml", |t| set_key(&t, "observe_period", "\"0s\""));
    let cfg = dir.path().join("baton.toml");
    assert_eq!(
        crash_at(
            &cfg,
            "dns-after-update",
            &["apply", "api", "--change", "v2"]
        ),
        Some(libc::SIGABRT),
        "the fault point did not fire"
    );
    let answer = |server: &str| {
        netns_ok(
            CTL,
            &["dig", "+short", "+norec", server, "app.baton.test.", "A"],
        )
        .trim()
        .to_string()
    };
    assert_eq!(answer("@198.18.0.53"), "198.18.0.22");
    assert_eq!(
        answer("@198.18.0.54"),
        "198.18.0.21",
        "the secondary has not followed yet (the test needs it to lag)"
    );
    let run = baton(&cfg, &["recover", "api"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(answer("@198.18.0.53"), "198.18.0.22");
    assert_eq!(answer("@198.18.0.54"), "198.18.0.22");
    let state = dir.path().join("state");
    let recorded: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(state.join("api.state.json")).unwrap()).unwrap();
    assert_eq!(recorded["primary"], "violet");
    let switch = step_end(&state, "api", "switch");
    assert_eq!(switch["ok"], true, "{switch}");
    assert!(
        switch["detail"].as_str().unwrap().contains(
            "interrupted (the controller stopped inside it); now app.baton.test. points at violet"
        ),
        "{switch}"
    );
    for host in ["amber", "violet"] {
        let page = fs::read_to_string(Path::new(LAB).join(format!("hosts/{host}/srv/index.html")))
            .unwrap();
        assert_eq!(page, format!("host={host} version=2\n"));
    }
}

#[test]
fn killed_while_the_old_primary_holds_new_connections_off_then_recovered() {
    // The controller dies right after blue started its quiesce hold (5 s,
    // lapsing 2 s later): blue still holds the VIP but drops new
    // connections. The recovery finds traffic on blue, so the switch back
    // is done already, and it must end the hold: blue answers at once.
    let _lab = lab();
    let dir = with_pair("web.toml", |t| {
        add_traffic_keys(
            &set_key(&t, "observe_period", "\"0s\""),
            "quiesce = \"5s\"\n",
        )
    });
    let cfg = dir.path().join("baton.toml");
    assert_eq!(
        crash_at(&cfg, "vip-after-hold", &["apply", "web", "--change", "v2"]),
        Some(libc::SIGABRT),
        "the fault point did not fire"
    );
    let recover = baton(&cfg, &["recover", "web"]);
    assert!([0, 1].contains(&recover.code), "{}", recover.stdout);
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
    assert_eq!(
        client_get("http://198.18.0.100/").1,
        "host=blue version=1\n",
        "blue answers new connections again: {}",
        recover.stdout
    );
    recover_and_check(&cfg, &dir.path().join("state"), "vip-after-hold");
}
