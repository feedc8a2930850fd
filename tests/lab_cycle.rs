//! The cycle against the lab's real servers: apply on the VIP pair and the
//! DNS pair, switchover, a failing standby, a failing check after the
//! switch, an old primary that fails its update, a host cut off mid-cycle,
//! a wrong TSIG key, a DNS server that is down, two runs at once, and the
//! controller killed mid-cycle then recovered.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const WEB_VIP: &str = "198.18.0.100";

fn page(host: &str) -> String {
    fs::read_to_string(Path::new(LAB).join(format!("hosts/{host}/srv/index.html"))).unwrap()
}

fn holds_vip(ns: &str) -> bool {
    netns_ok(ns, &["ip", "-o", "addr", "show", "dev", "eth0"]).contains(&format!("inet {WEB_VIP}/"))
}

/// What the primary and the secondary both serve for app.baton.test. (the
/// secondary follows by NOTIFY and transfer, about a second behind).
fn dns_answer() -> String {
    let at = |server: &str| {
        netns_ok(
            CTL,
            &["dig", "+short", "+norec", server, "app.baton.test.", "A"],
        )
        .trim()
        .to_string()
    };
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (primary, secondary) = (at("@198.18.0.53"), at("@198.18.0.54"));
        if primary == secondary {
            return primary;
        }
        assert!(
            Instant::now() < until,
            "the secondary does not follow: {primary} on the primary, {secondary} on the secondary"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn state(dir: &Path, pair: &str) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join(format!("{pair}.state.json"))).unwrap())
        .unwrap()
}

/// The steps that ended in the journal, with their result.
fn ended(dir: &Path, pair: &str) -> Vec<(String, bool)> {
    journal(dir, pair)
        .iter()
        .filter(|r| r["event"] == "end")
        .map(|r| {
            (
                r["step"].as_str().unwrap().to_string(),
                r["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn steps_ok(names: &[&str]) -> Vec<(String, bool)> {
    names.iter().map(|n| (n.to_string(), true)).collect()
}

const FORWARD: [&str; 8] = [
    "preflight",
    "apply_standby",
    "verify_standby",
    "switch",
    "verify_service",
    "drain",
    "apply_old_primary",
    "verify_old_primary",
];

/// A custom lab configuration whose pair file `pair` also gets `extra` appended.
fn with_extra(pair: &'static str, extra: &'static str) -> tempfile::TempDir {
    with_pair(pair, move |t| t + extra)
}

fn lab_state() -> PathBuf {
    Path::new(LAB).join("state")
}

#[test]
fn apply_on_the_vip_pair_updates_both_hosts_and_swaps_roles() {
    let _lab = lab();
    let run = baton(
        &lab_config(),
        &["apply", "web", "--change", "v2", "--reason", "lab test"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("OK: done: traffic is on green, blue is the standby"),
        "{}",
        run.stdout
    );
    assert_eq!(page("blue"), "host=blue version=2\n");
    assert_eq!(page("green"), "host=green version=2\n");
    assert!(holds_vip("baton-green") && !holds_vip("baton-blue"));
    // A client sees green through the VIP.
    let seen = netns_ok(
        "baton-client",
        &[
            "curl",
            "-s",
            "--max-time",
            "2",
            &format!("http://{WEB_VIP}/"),
        ],
    );
    assert_eq!(seen, "host=green version=2\n");
    assert_eq!(state(&lab_state(), "web")["primary"], "green");
    assert_eq!(ended(&lab_state(), "web"), steps_ok(&FORWARD));
    // The journal names who, why, what.
    let start = &journal(&lab_state(), "web")[0];
    assert_eq!(start["reason"], "lab test");
    assert_eq!(start["change"], "v2");
    assert_eq!(start["hash"].as_str().unwrap().len(), 16);
    assert!(!start["operator"].as_str().unwrap().is_empty());
    // The uploaded file landed on both hosts with its mode.
    for host in ["blue", "green"] {
        let notes = Path::new(LAB).join(format!("hosts/{host}/srv/release-notes.txt"));
        assert_eq!(
            fs::read_to_string(&notes).unwrap(),
            "Version 2 of the lab service.\n"
        );
    }
    // status agrees, and log shows the run.
    let status = baton(&lab_config(), &["status", "--json", "web"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let log = baton(&lab_config(), &["log", "web"]);
    assert!(
        log.stdout.contains("blue->green")
            && log.stdout.contains("\"lab test\"")
            && log.stdout.contains("OK"),
        "{}",
        log.stdout
    );
}

#[test]
fn apply_on_the_dns_pair_moves_the_record_with_compare_and_swap() {
    let _lab = lab();
    let run = baton(&lab_config(), &["apply", "api", "--change", "v2"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(dns_answer(), "198.18.0.22");
    assert_eq!(page("amber"), "host=amber version=2\n");
    assert_eq!(page("violet"), "host=violet version=2\n");
    assert_eq!(state(&lab_state(), "api")["primary"], "violet");
    let e = ended(&lab_state(), "api");
    assert_eq!(e, steps_ok(&FORWARD));
    // The switch waited until the secondary, too, served the new address.
    let switch = step_end(&lab_state(), "api", "switch");
    assert!(
        switch["detail"]
            .as_str()
            .unwrap()
            .contains("now points at violet (198.18.0.22) on all 2 server(s)"),
        "{switch}"
    );
    // The drain waited out the record's TTL (5 s in the lab).
    let drain = step_end(&lab_state(), "api", "drain");
    assert!(drain["duration_ms"].as_u64().unwrap() >= 5000, "{drain}");
    // The TSIG secret never reaches the journal.
    let key = fs::read_to_string(Path::new(LAB).join("keys/update.key")).unwrap();
    let secret = key.split('"').nth(3).unwrap();
    let text = fs::read_to_string(lab_state().join("api.journal")).unwrap();
    assert!(!text.contains(secret));
}

#[test]
fn switchover_swaps_roles_without_a_change_and_back() {
    let _lab = lab();
    let run = baton(
        &lab_config(),
        &["switchover", "web", "--reason", "patch blue"],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(holds_vip("baton-green") && !holds_vip("baton-blue"));
    assert_eq!(
        page("green"),
        "host=green version=1\n",
        "no change was applied"
    );
    let run = baton(&lab_config(), &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
    assert_eq!(state(&lab_state(), "web")["primary"], "blue");
}

#[test]
fn a_standby_failing_its_checks_is_rolled_back_and_traffic_never_moves() {
    let _lab = lab();
    // The change breaks the page: the standby then names the wrong host.
    let dir = with_extra(
        "web.toml",
        "\n[changes.broken]\nsteps = [\"sed -i 's/host=/hast=/' /srv/baton-lab/index.html\"]\nrollback = [\"sed -i 's/hast=/host=/' /srv/baton-lab/index.html\"]\n",
    );
    let run = baton(
        &dir.path().join("baton.toml"),
        &["apply", "web", "--change", "broken"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("ROLLED_BACK: failed at verify_standby and undone: traffic stayed on blue"),
        "{}",
        run.stdout
    );
    assert_eq!(
        page("green"),
        "host=green version=1\n",
        "the standby was rolled back"
    );
    assert_eq!(
        page("blue"),
        "host=blue version=1\n",
        "the primary was never touched"
    );
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
    let e = ended(&dir.path().join("state"), "web");
    assert_eq!(
        e,
        vec![
            ("preflight".into(), true),
            ("apply_standby".into(), true),
            ("verify_standby".into(), false),
            ("rollback_standby".into(), true),
        ]
    );
}

#[test]
fn a_failing_step_on_the_standby_is_rolled_back() {
    let _lab = lab();
    let dir = with_extra("web.toml", "\n[changes.fails]\nsteps = [\"echo 2 > /srv/baton-lab/VERSION\", \"echo 'no space left' >&2; exit 3\"]\nrollback = [\"echo 1 > /srv/baton-lab/VERSION\"]\n");
    let run = baton(
        &dir.path().join("baton.toml"),
        &["apply", "web", "--change", "fails"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("exited 3: no space left"),
        "{}",
        run.stdout
    );
    assert_eq!(
        fs::read_to_string(Path::new(LAB).join("hosts/green/srv/VERSION")).unwrap(),
        "1\n"
    );
    // The journal keeps what the failing command printed.
    let text = fs::read_to_string(dir.path().join("state/web.journal")).unwrap();
    assert!(text.contains("no space left"), "{text}");
}

#[test]
fn a_check_failing_after_the_switch_switches_traffic_back() {
    let _lab = lab();
    // This check fails only on green once green holds the VIP: the standby
    // passes, the primary passes, the service check after the switch fails.
    let dir = with_extra("web.toml", GREEN_MUST_NOT_SERVE);
    let run = baton(
        &dir.path().join("baton.toml"),
        &["apply", "web", "--change", "v2"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("traffic moved to green and was switched back to blue"),
        "the outcome must not say traffic stayed: {}",
        run.stdout
    );
    assert!(
        holds_vip("baton-blue") && !holds_vip("baton-green"),
        "traffic is back on blue"
    );
    assert_eq!(
        page("green"),
        "host=green version=1\n",
        "the standby was rolled back"
    );
    let e = ended(&dir.path().join("state"), "web");
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "switch",
            "verify_service",
            "switch_back",
            "rollback_standby"
        ]
    );
    assert!(!e[4].1 && e[5].1 && e[6].1, "{e:?}");
    assert_eq!(state(&dir.path().join("state"), "web")["primary"], "blue");
}

#[test]
fn an_old_primary_failing_its_update_is_incomplete() {
    let _lab = lab();
    // The step fails only where the page names blue: on the old primary.
    let dir = with_extra(
        "web.toml",
        "\n[changes.picky]\nsteps = [\"! grep -q host=blue /srv/baton-lab/index.html\"]\n",
    );
    let run = baton(
        &dir.path().join("baton.toml"),
        &["apply", "web", "--change", "picky"],
    );
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stdout.contains("INCOMPLETE"), "{}", run.stdout);
    assert!(
        holds_vip("baton-green"),
        "traffic stays on the verified new primary"
    );
    assert_eq!(state(&dir.path().join("state"), "web")["primary"], "green");
}

#[test]
fn a_second_run_on_the_same_pair_is_refused_at_once() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| set_key(&t, "observe_period", "\"4s\""));
    let cfg = dir.path().join("baton.toml");
    let first = spawn(&cfg, &["switchover", "web"]);
    wait_for_begin(&dir.path().join("state"), "web", "verify_service");
    let second = baton(&cfg, &["apply", "web", "--change", "v2"]);
    assert_eq!(second.code, 5, "{}", second.stdout);
    assert!(
        second.stdout.contains("pair `web` is busy") && second.stdout.contains("switchover web"),
        "{}",
        second.stdout
    );
    assert!(
        second.elapsed < Duration::from_secs(2),
        "refused at once, not after {:?}",
        second.elapsed
    );
    let (code, out) = finish(first);
    assert_eq!(code, 0, "{out}");
    // The other pair is not blocked.
    assert_eq!(baton(&cfg, &["status", "api"]).code, 0);
}

#[test]
fn a_host_cut_off_mid_cycle_leaves_the_run_incomplete_not_broken() {
    let _lab = lab();
    // (a command to the cut-off host ends at command_timeout: 5 s, not the lab's 30 s)
    let dir = custom_config_of(&["web.toml", "api.toml"], |name, t| match name {
        "baton.toml" => set_key(&t, "command_timeout", "\"5s\""),
        "web.toml" => set_key(&t, "observe_period", "\"3s\""),
        _ => t,
    });
    let cfg = dir.path().join("baton.toml");
    let child = spawn(&cfg, &["apply", "web", "--change", "v2"]);
    wait_for_begin(&dir.path().join("state"), "web", "verify_service");
    // The old primary's network goes away while traffic is being verified on green.
    netns_ok("baton-blue", &["ip", "link", "set", "eth0", "down"]);
    let (code, out) = finish(child);
    netns_ok("baton-blue", &["ip", "link", "set", "eth0", "up"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("INCOMPLETE"), "{out}");
    assert!(holds_vip("baton-green"));
    assert_eq!(state(&dir.path().join("state"), "web")["primary"], "green");
}

#[test]
fn a_change_edited_during_its_run_is_not_spread_to_the_old_primary() {
    let _lab = lab();
    // the change's upload from a file of this test's own, edited mid-run
    let dir = with_pair("web.toml", |t| {
        set_key(&t, "observe_period", "\"3s\"").replace(
            &format!("from = \"{LAB}/config/pairs/files/release-notes.txt\""),
            "from = \"notes.txt\"",
        )
    });
    let notes = dir.path().join("pairs/notes.txt");
    fs::write(&notes, "Version 2 of the lab service.\n").unwrap();
    let cfg = dir.path().join("baton.toml");
    let child = spawn(&cfg, &["apply", "web", "--change", "v2"]);
    wait_for_begin(&dir.path().join("state"), "web", "verify_service");
    fs::write(&notes, "Version 3, edited while the run went on.\n").unwrap();
    let (code, out) = finish(child);
    // traffic moved to green, which was updated and verified; blue keeps
    // version 1 and gets nothing of the edited change
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("INCOMPLETE")
            && out.contains("change v2 was edited during the run")
            && out.contains("nothing of it was done on blue"),
        "{out}"
    );
    assert!(holds_vip("baton-green"));
    assert_eq!(page("blue"), "host=blue version=1\n");
    let on = |host: &str| Path::new(LAB).join(format!("hosts/{host}/srv/release-notes.txt"));
    assert!(!on("blue").exists(), "blue got the upload");
    assert_eq!(
        fs::read_to_string(on("green")).unwrap(),
        "Version 2 of the lab service.\n"
    );
}

#[test]
fn a_wrong_tsig_key_is_refused_and_traffic_stays() {
    let _lab = lab();
    let dir = with_pair("api.toml", |t| {
        t.replace("keys/update.key", "keys/wrong.key")
    });
    let run = baton(&dir.path().join("baton.toml"), &["switchover", "api"]);
    // Refused in preflight, before anything changed: the key is proved
    // against the zone's primary first.
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(
        run.stdout.contains("did not start, nothing was changed")
            && run.stdout.contains("refused the TSIG signature")
            && run.stdout.contains("BADSIG"),
        "{}",
        run.stdout
    );
    assert_eq!(dns_answer(), "198.18.0.21");
    assert_eq!(
        ended(&dir.path().join("state"), "api"),
        [("preflight".to_string(), false)]
    );
}

#[test]
fn a_dns_server_that_is_down_stops_the_run_before_anything_changes() {
    let _lab = lab();
    let dir = with_pair("api.toml", |t| {
        set_key(&t, "servers", "[\"198.18.0.59:53\"]")
    });
    let run = baton(
        &dir.path().join("baton.toml"),
        &["apply", "api", "--change", "v2"],
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("did not start, nothing was changed"),
        "{}",
        run.stdout
    );
    assert_eq!(page("violet"), "host=violet version=1\n");
    assert_eq!(dns_answer(), "198.18.0.21");
}

#[test]
fn a_secondary_that_does_not_follow_fails_the_switch_and_the_record_is_switched_back() {
    let _lab = lab();
    let dir = with_pair("api.toml", |t| {
        add_traffic_keys(&t, "propagation_timeout = \"2s\"\n")
    });
    // The secondary stops taking transfers: it keeps serving amber.
    let run = with_secondary_frozen(|| {
        baton(
            &dir.path().join("baton.toml"),
            &["apply", "api", "--change", "v2"],
        )
    });
    assert_eq!(run.code, 1, "failed and rolled back: {}", run.stdout);
    let switch = step_end(&dir.path().join("state"), "api", "switch");
    assert_eq!(switch["ok"], false);
    assert!(
        switch["detail"]
            .as_str()
            .unwrap()
            .contains("not every server serves it: 198.18.0.54:53: 198.18.0.21"),
        "{switch}"
    );
    assert!(
        switch["duration_ms"].as_u64().unwrap() >= 2000,
        "it waited propagation_timeout: {switch}"
    );
    let names: Vec<String> = ended(&dir.path().join("state"), "api")
        .into_iter()
        .map(|(n, ok)| format!("{n} {ok}"))
        .collect();
    assert_eq!(
        names,
        [
            "preflight true",
            "apply_standby true",
            "verify_standby true",
            "switch false",
            "switch_back true",
            "rollback_standby true"
        ]
    );
    // The primary was switched back, so both servers agree on amber again.
    assert_eq!(dns_answer(), "198.18.0.21");
    assert_eq!(page("violet"), "host=violet version=1\n");
    assert_eq!(state(&dir.path().join("state"), "api")["primary"], "amber");
}

#[test]
fn a_record_changed_by_someone_else_is_not_overwritten() {
    let _lab = lab();
    let dir = with_extra("api.toml", "\n[changes.slow]\nsteps = [\"sleep 3\"]\n");
    let cfg = dir.path().join("baton.toml");
    let child = spawn(&cfg, &["apply", "api", "--change", "slow"]);
    wait_for_begin(&dir.path().join("state"), "api", "apply_standby");
    // Between preflight and the switch, someone points the name elsewhere.
    nsupdate("update delete app.baton.test. A\nupdate add app.baton.test. 5 A 198.18.0.99");
    let (code, out) = finish(child);
    assert_eq!(code, 4, "someone else's change needs an operator: {out}");
    assert!(out.contains("not switching"), "{out}");
    assert_eq!(
        dns_answer(),
        "198.18.0.99",
        "the other change was not overwritten"
    );
}

#[test]
fn a_controller_killed_mid_cycle_is_undone_by_the_next_run() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| set_key(&t, "observe_period", "\"5s\""));
    let cfg = dir.path().join("baton.toml");
    let state_dir = dir.path().join("state");
    let mut child = spawn(&cfg, &["apply", "web", "--change", "v2"]);
    wait_for_begin(&state_dir, "web", "verify_service");
    // kill -9: no cleanup of any kind.
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    assert!(holds_vip("baton-green"), "the switch had happened");
    let log = baton(&cfg, &["log", "web"]);
    assert!(
        log.stdout.contains("INTERRUPTED in verify_service"),
        "{}",
        log.stdout
    );
    // Any command first settles the interrupted run; recover does only that.
    let run = baton(&cfg, &["recover", "web"]);
    assert_eq!(run.code, 1, "undone: {}", run.stdout);
    assert!(
        holds_vip("baton-blue") && !holds_vip("baton-green"),
        "traffic is back on the verified old primary"
    );
    assert_eq!(page("green"), "host=green version=1\n");
    assert_eq!(state(&state_dir, "web")["primary"], "blue");
    let e = ended(&state_dir, "web");
    assert_eq!(e[4], ("verify_service".to_string(), false), "{e:?}");
    assert_eq!(
        &e[5..],
        &[
            ("switch_back".to_string(), true),
            ("rollback_standby".to_string(), true)
        ]
    );
    // The pair is usable again.
    let again = baton(&cfg, &["apply", "web", "--change", "v2"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn an_unknown_change_is_a_usage_error_that_changes_nothing() {
    let _lab = lab();
    let run = baton(&lab_config(), &["apply", "web", "--change", "nope"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("have no change `nope`"),
        "{}",
        run.stderr
    );
    assert!(!lab_state().join("web.journal").exists());
}

#[test]
fn failover_with_the_primary_cut_off_then_rejoin() {
    let _lab = lab();
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 0);
    // A healthy primary is not failed over.
    let refused = baton(&lab_config(), &["failover", "web"]);
    assert_eq!(refused.code, 5, "{}", refused.stdout);
    assert!(
        refused.stdout.contains("use `baton switchover web`"),
        "{}",
        refused.stdout
    );
    assert!(holds_vip("baton-blue"));

    // blue's namespace is cut off: its network is gone, the VIP with it.
    netns_ok("baton-blue", &["ip", "link", "set", "eth0", "down"]);
    let run = baton(&lab_config(), &["failover", "web", "--reason", "blue died"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("blue is marked failed"),
        "{}",
        run.stdout
    );
    assert!(holds_vip("baton-green"));
    let seen = netns_ok(
        "baton-client",
        &[
            "curl",
            "-s",
            "--max-time",
            "3",
            &format!("http://{WEB_VIP}/"),
        ],
    );
    assert_eq!(seen, "host=green version=1\n");
    let s = state(&lab_state(), "web");
    assert_eq!(
        (s["primary"].as_str(), s["failed"].as_str()),
        (Some("green"), Some("blue"))
    );
    // Until rejoin, the pair is degraded and nothing else runs on it.
    let status = baton(&lab_config(), &["status", "--json", "web"]);
    assert_eq!(status.code, 3, "{}", status.stdout);
    assert_eq!(status.json()["pairs"][0]["hosts"][0]["role"], "failed");
    let apply = baton(&lab_config(), &["apply", "web", "--change", "v2"]);
    assert_eq!(apply.code, 5);
    assert!(
        apply.stdout.contains("run `baton rejoin web`"),
        "{}",
        apply.stdout
    );

    // blue comes back, still holding the VIP: split brain until rejoin fences it.
    netns_ok("baton-blue", &["ip", "link", "set", "eth0", "up"]);
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 4);
    let rejoin = baton(&lab_config(), &["rejoin", "web"]);
    assert_eq!(rejoin.code, 0, "{}", rejoin.stdout);
    assert!(
        rejoin.stdout.contains("removed 198.18.0.100/24 from blue"),
        "{}",
        rejoin.stdout
    );
    assert!(holds_vip("baton-green") && !holds_vip("baton-blue"));
    let s = state(&lab_state(), "web");
    assert_eq!(
        (s["primary"].as_str(), s["standby"].as_str()),
        (Some("green"), Some("blue"))
    );
    assert!(s.get("failed").is_none(), "{s}");
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 0);
    // And it can take traffic back.
    assert_eq!(baton(&lab_config(), &["switchover", "web"]).code, 0);
    assert!(holds_vip("baton-blue"));
}

#[test]
fn failover_on_the_dns_pair_uses_the_fence_command() {
    let _lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("fenced");
    let mark_s = mark.display().to_string();
    let cfg_dir = with_pair("api.toml", move |t| {
        t.replace(
            "environment = \"dev\"",
            &format!("environment = \"dev\"\nfence = \"echo {{host}} {{address}} > {mark_s}\""),
        )
    });
    let cfg = cfg_dir.path().join("baton.toml");
    assert_eq!(baton(&cfg, &["status", "api"]).code, 0);
    netns_ok("baton-amber", &["ip", "link", "set", "eth0", "down"]);
    let run = baton(&cfg, &["failover", "api"]);
    netns_ok("baton-amber", &["ip", "link", "set", "eth0", "up"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        fs::read_to_string(&mark).unwrap(),
        "amber 198.18.0.21\n",
        "the fence command was told which host"
    );
    assert_eq!(dns_answer(), "198.18.0.22");
    assert_eq!(
        state(&cfg_dir.path().join("state"), "api")["failed"],
        "amber"
    );
    let rejoin = baton(&cfg, &["rejoin", "api"]);
    assert_eq!(rejoin.code, 0, "{}", rejoin.stdout);
    assert_eq!(baton(&cfg, &["status", "api"]).code, 0);
}

#[test]
fn plan_shows_the_exact_commands_and_changes_nothing() {
    let _lab = lab();
    let run = baton(&lab_config(), &["plan", "web", "api", "--change", "v2"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "plan for web: Apply from blue to green, change v2 (hash ",
        // (the overlap, the default: a lifetime on blue, then green takes it)
        "$ blue: sudo -n ip -o -batch - <<< 'addr change 198.18.0.100/24 dev eth0 valid_lft 3 preferred_lft 3'",
        "$ green: sudo -n ip -o -batch - <<< 'addr replace 198.18.0.100/24 dev eth0 valid_lft forever preferred_lft forever'",
        "$ green: sed -i 's/version=[0-9]*/version=2/' /srv/baton-lab/index.html",
        "GET http://198.18.0.100/ expecting 200 and a body containing \"host=green \"",
        // The UPDATE in full, with the TTL the zone's primary serves.
        "prerequisite app.baton.test. A is exactly 198.18.0.21; delete app.baton.test. A 198.18.0.21; add app.baton.test. 5 A 198.18.0.22",
        "the record's TTL on the zone's primary: 5s",
        "switch or verify_service fails: switch_back to blue, then rollback_standby on green",
    ] {
        assert!(run.stdout.contains(expected), "missing {expected:?} in:\n{}", run.stdout);
    }
    assert!(holds_vip("baton-blue"));
    assert_eq!(dns_answer(), "198.18.0.21");
    assert_eq!(page("green"), "host=green version=1\n");
    assert!(
        !lab_state().join("web.journal").exists(),
        "plan journals nothing"
    );
    // --json: one object per operation, in the order they run.
    let json = baton(&lab_config(), &["plan", "--json", "web"]);
    let ops: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<&str> = ops.iter().map(|o| o["step"].as_str().unwrap()).collect();
    assert_eq!(steps.first(), Some(&"verify_standby"), "{steps:?}");
    assert!(steps.contains(&"switch") && steps.contains(&"verify_service"));
    assert!(ops
        .iter()
        .all(|o| o["pair"] == "web" && o["host"].is_string() && o["command"].is_string()));
}

#[test]
fn an_unreadable_journal_is_reported_not_guessed() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let state = dir.path().join("state");
    fs::create_dir_all(&state).unwrap();
    fs::write(
        state.join("web.journal"),
        "{\"event\":\"start\"}\nnot json\n{}\n",
    )
    .unwrap();
    let log = baton(&dir.path().join("baton.toml"), &["log", "web"]);
    assert_eq!(log.code, 10, "{}", log.stderr);
    assert!(
        log.stderr.contains("line 1 is corrupt") || log.stderr.contains("is corrupt"),
        "{}",
        log.stderr
    );
    // A run refuses to act on a journal it cannot read, and changes nothing.
    let run = baton(&dir.path().join("baton.toml"), &["switchover", "web"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(holds_vip("baton-blue"));
}

#[test]
fn the_command_switch_runs_the_hooks_with_quoted_hosts() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let holder = command_pair(dir.path());
    let cfg = dir.path().join("baton.toml");
    let run = baton(&cfg, &["switchover", "hooks"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fs::read_to_string(&holder).unwrap(), "green\n");
    assert!(
        run.stdout.contains("the hook moved traffic to green"),
        "{}",
        run.stdout
    );
    // A hook that fails: the switch fails, traffic is confirmed back where it was.
    let broken = fs::read_to_string(dir.path().join("pairs/hooks.toml"))
        .unwrap()
        .replace("&& echo", "&& false && echo");
    fs::write(dir.path().join("pairs/hooks.toml"), broken).unwrap();
    let run = baton(&cfg, &["switchover", "hooks"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("the switch hook exited 1"),
        "{}",
        run.stdout
    );
    assert_eq!(fs::read_to_string(&holder).unwrap(), "green\n");
}

#[test]
fn the_ttl_is_lowered_one_ttl_ahead_so_the_drain_is_short() {
    let _lab = lab();
    let dir = with_pair("api.toml", |t| {
        add_traffic_keys(&t, "switch_ttl = \"1s\"\n")
    });
    let cfg = dir.path().join("baton.toml");
    let run = baton(&cfg, &["switchover", "api"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("TTL lowered from 5s to 1s 5s ahead"),
        "{}",
        run.stdout
    );
    let took = |step: &str| {
        step_end(&dir.path().join("state"), "api", step)["duration_ms"]
            .as_u64()
            .unwrap()
    };
    assert!(
        took("switch") >= 5000,
        "the switch waited the old TTL: {}",
        took("switch")
    );
    assert!(
        (1000..4000).contains(&took("drain")),
        "the drain waited the lowered TTL: {}",
        took("drain")
    );
    // The new record has the normal TTL again.
    let answer = netns_ok(
        CTL,
        &[
            "dig",
            "+norec",
            "+noall",
            "+answer",
            "@198.18.0.53",
            "app.baton.test.",
            "A",
        ],
    );
    assert!(answer.contains("\t5\tIN\tA\t198.18.0.22"), "{answer}");
}

#[test]
fn the_environment_gate_holds_a_change_until_earlier_environments_completed_it() {
    let _lab = lab();
    // web is dev, api is test; both pairs' change v2 has the same content, so the same hash.
    let dir = with_pair("api.toml", |t| {
        t.replace("environment = \"dev\"", "environment = \"test\"")
    });
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let refused = baton(&cfg, &["apply", "api", "--change", "v2"]);
    assert_eq!(refused.code, 5, "{}", refused.stdout);
    assert!(
        refused.stdout.contains("environment gate closed: change")
            && refused
                .stdout
                .contains("has not completed on web (dev) yet"),
        "{}",
        refused.stdout
    );
    assert_eq!(dns_answer(), "198.18.0.21", "nothing changed");
    let plan = baton(&cfg, &["plan", "api", "--change", "v2"]);
    assert!(
        plan.stdout.contains("environment gate: CLOSED"),
        "{}",
        plan.stdout
    );
    // Skipping needs a reason.
    let out = baton_command(&cfg, &["apply", "api", "--change", "v2", "--skip-gate"])
        .env_remove("BATON_REASON")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    assert_eq!(baton(&cfg, &["apply", "web", "--change", "v2"]).code, 0);
    let plan = baton(&cfg, &["plan", "api", "--change", "v2"]);
    assert!(
        plan.stdout.contains("environment gate: open: change"),
        "{}",
        plan.stdout
    );
    let run = baton(&cfg, &["apply", "api", "--change", "v2"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("gate open: change"), "{}", run.stdout);
    // An edited change is a new change: it must pass dev again.
    let edited = fs::read_to_string(dir.path().join("pairs/api.toml"))
        .unwrap()
        .replace(
            "label = \"service version 1\"",
            "label = \"service version one\"",
        );
    fs::write(dir.path().join("pairs/api.toml"), edited).unwrap();
    let run = baton(&cfg, &["apply", "api", "--change", "v1"]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    // The override is recorded with who and why.
    let run = baton(
        &cfg,
        &[
            "apply",
            "api",
            "--change",
            "v1",
            "--skip-gate",
            "--reason",
            "hotfix, approved by ops",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let start = journal(&state, "api")
        .into_iter()
        .rev()
        .find(|r| r["event"] == "start")
        .unwrap();
    assert!(
        start["gate"].as_str().unwrap().contains("gate SKIPPED by")
            && start["gate"]
                .as_str()
                .unwrap()
                .contains("hotfix, approved by ops"),
        "{start}"
    );
}

#[test]
fn the_soak_time_keeps_the_gate_closed() {
    let _lab = lab();
    let dir = custom_config(|name, t| match name {
        "api.toml" => t.replace("environment = \"dev\"", "environment = \"test\""),
        "baton.toml" => t.replace("environments = [", "soak = \"1h\"\nenvironments = ["),
        _ => t,
    });
    let cfg = dir.path().join("baton.toml");
    assert_eq!(baton(&cfg, &["apply", "web", "--change", "v2"]).code, 0);
    let run = baton(&cfg, &["apply", "api", "--change", "v2"]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(run.stdout.contains("the soak time is 1h"), "{}", run.stdout);
}

#[test]
fn a_fleet_apply_runs_canaries_first_and_stops_when_the_failure_budget_is_spent() {
    let _lab = lab();
    let bad = "\n[changes.bad]\nsteps = [\"echo broken >&2; exit 1\"]\n";
    let dir = custom_config(move |name, t| match name {
        "api.toml" => {
            t.replace(
                "environment = \"dev\"",
                "environment = \"dev\"\ncanary = true",
            ) + bad
        }
        "web.toml" => t + bad,
        _ => t,
    });
    let cfg = dir.path().join("baton.toml");
    // The canary (api) fails: with no failure budget, web never starts.
    let run = baton(&cfg, &["apply", "--all", "--change", "bad"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let summary: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("PAIR"))
        .collect();
    assert!(
        summary[1].starts_with("api") && summary[1].contains("ROLLED_BACK"),
        "{summary:?}"
    );
    assert!(
        summary[2].starts_with("web") && summary[2].contains("SKIPPED"),
        "{summary:?}"
    );
    assert!(
        !dir.path().join("state/web.journal").exists(),
        "web never started"
    );
    // With a budget of one failure, both run.
    let run = baton(
        &cfg,
        &["apply", "--all", "--change", "bad", "--max-failures", "1"],
    );
    assert_eq!(run.code, 1);
    assert!(dir.path().join("state/web.journal").exists());
    // A good change over the environment: canary first, then the rest; summary with where traffic is.
    let run = baton(
        &cfg,
        &[
            "apply", "--env", "dev", "--change", "v2", "--batch", "1,50%", "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let last: serde_json::Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    let rows = last["summary"].as_array().unwrap();
    assert_eq!(
        (rows[0]["pair"].as_str(), rows[0]["traffic"].as_str()),
        (Some("api"), Some("violet"))
    );
    assert_eq!(
        (rows[1]["pair"].as_str(), rows[1]["traffic"].as_str()),
        (Some("web"), Some("green"))
    );
    // Selection errors change nothing.
    assert_eq!(
        baton(&cfg, &["apply", "--env", "prod", "--change", "v2"]).code,
        2
    );
    assert_eq!(
        baton(&cfg, &["apply", "--all", "--change", "v2", "--batch", "0"]).code,
        2
    );
    assert_eq!(baton(&cfg, &["apply", "--change", "v2"]).code, 2);
}

#[test]
fn a_stop_signal_before_the_switch_rolls_back_and_the_journal_says_why() {
    let _lab = lab();
    let dir = with_extra(
        "web.toml",
        "\n[changes.slow]\nsteps = [\"echo 2 > /srv/baton-lab/VERSION\", \"sleep 2\"]\nrollback = [\"echo 1 > /srv/baton-lab/VERSION\"]\n",
    );
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let child = spawn(&cfg, &["apply", "web", "--change", "slow"]);
    wait_for_begin(&state, "web", "apply_standby");
    signal(&child, libc::SIGTERM);
    let (code, out) = finish(child);
    assert_eq!(code, 1, "{out}");
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
    assert_eq!(
        fs::read_to_string(Path::new(LAB).join("hosts/green/srv/VERSION")).unwrap(),
        "1\n"
    );
    let text = fs::read_to_string(state.join("web.journal")).unwrap();
    assert!(
        text.contains("not run: SIGTERM asked baton to stop"),
        "{text}"
    );
    assert_eq!(
        ended(&state, "web").last().unwrap(),
        &("rollback_standby".to_string(), true)
    );
}

#[test]
fn a_second_signal_aborts_the_step_and_recover_undoes_the_run() {
    let _lab = lab();
    let dir = with_extra("web.toml", "\n[changes.stuck]\nsteps = [\"echo 2 > /srv/baton-lab/VERSION\", \"sleep 20\"]\nrollback = [\"echo 1 > /srv/baton-lab/VERSION\"]\n");
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let started = Instant::now();
    let child = spawn(&cfg, &["apply", "web", "--change", "stuck"]);
    wait_for_begin(&state, "web", "apply_standby");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, libc::SIGINT);
    let (code, out) = finish(child);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the step was not aborted: {:?}",
        started.elapsed()
    );
    assert_eq!(code, 4, "{out}");
    let text = fs::read_to_string(state.join("web.journal")).unwrap();
    assert!(text.contains("aborted by a second SIGINT"), "{text}");
    assert!(
        !text.contains("\"event\":\"finish\""),
        "the run is left for recover"
    );
    let run = baton(&cfg, &["recover", "web"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        fs::read_to_string(Path::new(LAB).join("hosts/green/srv/VERSION")).unwrap(),
        "1\n"
    );
    assert!(holds_vip("baton-blue"));
}

#[test]
fn a_stop_signal_after_the_switch_lets_the_run_finish() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| set_key(&t, "observe_period", "\"3s\""));
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let child = spawn(&cfg, &["apply", "web", "--change", "v2"]);
    wait_for_begin(&state, "web", "verify_service");
    signal(&child, libc::SIGTERM);
    let (code, out) = finish(child);
    assert_eq!(code, 0, "traffic had moved: the run finishes: {out}");
    assert!(holds_vip("baton-green"));
    assert_eq!(page("blue"), "host=blue version=2\n");
}

#[test]
fn log_filters_by_outcome_and_time_and_shows_one_run_in_full() {
    let _lab = lab();
    let dir = with_extra(
        "web.toml",
        "\n[changes.bad]\nsteps = [\"echo 'disk full' >&2; exit 1\"]\n",
    );
    let cfg = dir.path().join("baton.toml");
    assert_eq!(
        baton(
            &cfg,
            &[
                "apply",
                "web",
                "--change",
                "bad",
                "--reason",
                "try the bad one"
            ]
        )
        .code,
        1
    );
    assert_eq!(
        baton(&cfg, &["switchover", "web", "--reason", "move"]).code,
        0
    );
    let all = baton(&cfg, &["log", "--since", "1h"]);
    assert_eq!(all.stdout.lines().count(), 2, "{}", all.stdout);
    let failed = baton(&cfg, &["log", "--outcome", "rolled_back"]);
    let lines: Vec<&str> = failed.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", failed.stdout);
    assert!(
        lines[0].contains("\"try the bad one\"") && lines[0].contains("ROLLED_BACK"),
        "{}",
        lines[0]
    );
    assert_eq!(
        baton(&cfg, &["log", "--since", "2099-01-01T00:00:00Z"]).stdout,
        ""
    );
    assert_eq!(baton(&cfg, &["log", "--outcome", "sideways"]).code, 2);
    // One run in full: every step, every command and what it printed.
    let id = lines[0].split_whitespace().nth(2).unwrap();
    let full = baton(&cfg, &["log", "--run", id]);
    assert!(
        full.stdout.contains("$ echo 'disk full' >&2; exit 1")
            && full.stdout.contains("! disk full"),
        "{}",
        full.stdout
    );
}

#[test]
fn the_metrics_file_has_each_pairs_last_outcome_duration_and_holder() {
    use std::os::unix::fs::PermissionsExt;
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let cfg = dir.path().join("baton.toml");
    let metrics = dir.path().join("baton.prom");
    let m = metrics.display().to_string();
    assert_eq!(
        baton(
            &cfg,
            &["apply", "web", "--change", "v2", "--metrics-file", &m]
        )
        .code,
        0
    );
    let text = fs::read_to_string(&metrics).unwrap();
    for line in [
        "baton_last_run_outcome{pair=\"web\",outcome=\"ok\"} 1",
        "baton_last_run_outcome{pair=\"web\",outcome=\"rolled_back\"} 0",
        "baton_traffic_holder{pair=\"web\",host=\"green\"} 1",
        "baton_traffic_holder{pair=\"web\",host=\"blue\"} 0",
        "# TYPE baton_last_run_duration_seconds gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let duration: f64 = text
        .lines()
        .find(|l| l.starts_with("baton_last_run_duration_seconds{pair=\"web\"}"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        duration >= 2.0,
        "the apply watches the service for 2s: {duration}"
    );
    assert_eq!(
        fs::metadata(&metrics).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // status refreshes it too; api has no run yet, only its holder once recorded.
    assert_eq!(baton(&cfg, &["status", "--metrics-file", &m]).code, 0);
    let text = fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("baton_traffic_holder{pair=\"api\",host=\"amber\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("baton_last_run_outcome{pair=\"api\""),
        "{text}"
    );
}

#[test]
fn on_a_terminal_a_live_block_shows_the_pair_in_flight_and_without_one_plain_lines() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let cfg = dir.path().join("baton.toml");
    // A pseudo-terminal from util-linux `script`, inside the controller's namespace.
    let command = format!(
        "{} --config {} apply web --change v2 --reason live-view-test",
        env!("CARGO_BIN_EXE_baton"),
        cfg.display()
    );
    let out = netns(CTL, &["script", "-qfec", &command, "/dev/null"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("\x1b[J"),
        "the block is erased and redrawn: {text:?}"
    );
    assert!(
        text.contains("── 0/1 done (0 not ok), 1 running"),
        "the block counts the pairs: {text:?}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("  web ") && l.contains("verify_service")),
        "the block shows the pair's step: {text:?}"
    );
    assert!(text.contains("web  OK:"), "{text:?}");
    // Not a terminal: the same run prints plain lines only.
    let run = baton(&cfg, &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b'), "{:?}", run.stdout);
    assert!(run.stdout.contains("web  OK:"), "{}", run.stdout);
}

/// What a terminal shows after `text`: printable characters, CR, LF,
/// cursor up (`ESC [ n A`) and erase below (`ESC [ J`); other escape
/// sequences are skipped.
fn screen(text: &str) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                let mut seq = String::new();
                if chars.peek() == Some(&'[') {
                    chars.next();
                    while let Some(&d) = chars.peek() {
                        chars.next();
                        if d.is_ascii_alphabetic() {
                            seq.push(d);
                            break;
                        }
                        seq.push(d);
                    }
                }
                if let Some(n) = seq.strip_suffix('A') {
                    row = row.saturating_sub(n.parse().unwrap_or(1));
                } else if seq == "J" {
                    rows[row].truncate(col);
                    rows.truncate(row + 1);
                }
            }
            '\r' => col = 0,
            '\n' => {
                row += 1;
                if rows.len() <= row {
                    rows.push(Vec::new());
                }
            }
            c => {
                let line = &mut rows[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    rows.into_iter().map(|r| r.into_iter().collect()).collect()
}

#[test]
fn log_lines_on_a_terminal_go_above_the_live_block_and_leave_no_stale_line() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    // -vv logs every remote command while the block is drawn.
    let command = format!(
        "{} -vv --config {} apply web --change v2 --reason live-view-test",
        env!("CARGO_BIN_EXE_baton"),
        dir.path().join("baton.toml").display()
    );
    let out = netns(CTL, &["script", "-qfec", &command, "/dev/null"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let shown = screen(&text);
    let logs = shown.iter().filter(|l| l.contains("DEBUG")).count();
    assert!(logs > 10, "the log lines are on the screen: {shown:#?}");
    // Every block was erased: no header is left between the lines.
    assert!(
        !shown.iter().any(|l| l.starts_with("── ")),
        "a stale line of the live block: {shown:#?}"
    );
    assert!(
        shown.iter().any(|l| l.starts_with("web  OK:")),
        "{shown:#?}"
    );
}

#[test]
fn a_run_without_a_reason_is_refused_and_changes_nothing() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    for args in [
        &["apply", "web", "--change", "v2"][..],
        &["switchover", "web"],
        &["failover", "web"],
        &["switchover", "web", "--reason", "  "],
    ] {
        let out = baton_command(&cfg, args)
            .env_remove("BATON_REASON")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--reason TEXT (or BATON_REASON"),
            "{stderr}"
        );
    }
    assert!(!state.join("web.journal").exists(), "nothing was journaled");
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
    // A timer's reason comes from the environment and is recorded.
    let run = baton_env(
        &cfg,
        &["switchover", "web"],
        &[("BATON_REASON", "weekly timer")],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let start = journal(&state, "web")
        .into_iter()
        .find(|r| r["event"] == "start")
        .unwrap();
    assert_eq!(start["reason"], "weekly timer");
    assert!(!start["operator"].as_str().unwrap().is_empty());
}

#[test]
fn the_vip_moves_through_a_running_ip_batch_or_with_batch_off_through_sudo_per_command() {
    let _lab = lab();
    let switch_commands = |state: &Path| -> Vec<String> {
        step_end(state, "web", "switch")["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["host"].as_str().unwrap(),
                    c["status"],
                    c["command"].as_str().unwrap()
                )
            })
            .collect()
    };
    // The classic order (remove, then add), whose two commands these are.
    let classic = |name: &str, t: String| {
        if name == "web.toml" {
            add_traffic_keys(&t, "handover = \"classic\"\n")
        } else {
            t
        }
    };
    // Default: ip is already running on both hosts; the remove and the add
    // are one line each, and nothing else is tried.
    let dir = custom_config(classic);
    let state = dir.path().join("state");
    let run = baton(&dir.path().join("baton.toml"), &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    // (the switch also asks both hosts, arms ip, announces and confirms)
    let moves = |cmds: Vec<String>| -> Vec<String> {
        cmds.into_iter()
            .filter(|c| c.contains("addr del") || c.contains("addr add"))
            .collect()
    };
    let cmds = switch_commands(&state);
    assert_eq!(
        moves(cmds.clone()),
        [
            "blue 0 sudo -n ip -o -batch - <<< 'addr del 198.18.0.100/24 dev eth0'".to_string(),
            "green 0 sudo -n ip -o -batch - <<< 'addr add 198.18.0.100/24 dev eth0'".to_string(),
        ],
        "{cmds:#?}"
    );
    assert!(holds_vip("baton-green") && !holds_vip("baton-blue"));
    // batch = false: one sudo per command, as before.
    let dir = with_pair("web.toml", |t| {
        t.replace(
            "interface = \"eth0\"",
            "interface = \"eth0\"\nbatch = false\nhandover = \"classic\"",
        )
    });
    let state = dir.path().join("state");
    let run = baton(&dir.path().join("baton.toml"), &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let cmds = switch_commands(&state);
    assert_eq!(
        moves(cmds.clone()),
        [
            "green 0 sudo -n ip addr del 198.18.0.100/24 dev eth0".to_string(),
            "blue 0 sudo -n ip addr add 198.18.0.100/24 dev eth0".to_string(),
        ],
        "{cmds:#?}"
    );
    assert!(!cmds.iter().any(|c| c.contains("-batch")), "{cmds:#?}");
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
}

/// Runs `body` with the lab's sudoers lacking one rule (`rule`, as it is
/// written there, with the separator that follows it), then puts it back
/// (the lab's reset would too).
fn without_sudo_rule<T>(rule: &str, body: impl FnOnce() -> T) -> T {
    use std::os::unix::fs::PermissionsExt;
    let path = Path::new("/etc/sudoers.d/baton-lab");
    let tmp = Path::new("/etc/sudoers.d/baton-lab.test"); // a name with a dot: ignored by sudo
    let install = |text: &str| {
        fs::write(tmp, text).unwrap();
        fs::set_permissions(tmp, fs::Permissions::from_mode(0o440)).unwrap();
        fs::rename(tmp, path).unwrap();
    };
    let text = fs::read_to_string(path).unwrap();
    let without = text.replace(rule, "");
    assert_ne!(text, without, "{rule:?} is in the lab's sudoers");
    install(&without);
    let out = body();
    install(&text);
    out
}

#[test]
fn when_sudo_refuses_ip_batch_the_vip_moves_with_one_sudo_per_command() {
    let _lab = lab();
    let ip = netns_ok(CTL, &["sh", "-c", "command -v ip"]);
    let dir = custom_config(|_, t| t);
    let run = without_sudo_rule(&format!("{} -o -batch -, ", ip.trim()), || {
        baton(&dir.path().join("baton.toml"), &["switchover", "web"])
    });
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(holds_vip("baton-green") && !holds_vip("baton-blue"));
    let switch = step_end(&dir.path().join("state"), "web", "switch");
    // The overlap (the default) needs `ip -o -batch -` for blue's lifetime:
    // sudo refused it, nothing ran, and the classic order moved the VIP.
    let detail = switch["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(
            "(handover classic, not overlap: blue cannot give 198.18.0.100/24 a lifetime:"
        ),
        "{detail}"
    );
    let cmds: Vec<(String, i64, String, String)> = switch["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            let c = c["command"].as_str().unwrap();
            c.contains("addr del") || c.contains("addr add")
        })
        .map(|c| {
            (
                c["host"].as_str().unwrap().to_string(),
                c["status"].as_i64().unwrap_or(-1),
                c["command"].as_str().unwrap().to_string(),
                c["stderr"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Each batch line is refused by sudo, then the command runs on its own:
    // the operation (as planned) succeeds, and its record says so.
    let expect = [
        (
            "blue",
            0,
            "sudo -n ip -o -batch - <<< 'addr del 198.18.0.100/24 dev eth0'",
        ),
        (
            "green",
            0,
            "sudo -n ip -o -batch - <<< 'addr add 198.18.0.100/24 dev eth0'",
        ),
    ];
    assert_eq!(cmds.len(), 2, "{cmds:#?}");
    for (i, (host, status, command)) in expect.iter().enumerate() {
        assert_eq!(
            (cmds[i].0.as_str(), cmds[i].1, cmds[i].2.as_str()),
            (*host, *status, *command),
            "{cmds:#?}"
        );
        assert!(
            cmds[i]
                .3
                .starts_with("sudo refused `ip -o -batch -` (sudo:")
                && cmds[i].3.contains("the command ran on its own"),
            "{cmds:#?}"
        );
    }
}

/// The commands a step's last `end` record lists: (host, status, command).
#[test]
fn a_gratuitous_arp_that_fails_is_named_in_the_journal() {
    let _lab = lab();
    // An interface that cannot ARP on both hosts, holding the VIP on blue:
    // the address moves, arping refuses at once, and the step after the
    // switch reads its report.
    let hosts = ["baton-blue", "baton-green"];
    for ns in hosts {
        netns_ok(
            ns,
            &[
                "ip", "link", "add", "bt9a", "type", "veth", "peer", "name", "bt9b",
            ],
        );
        netns_ok(ns, &["ip", "link", "set", "bt9a", "arp", "off", "up"]);
        netns_ok(ns, &["ip", "link", "set", "bt9b", "up"]);
    }
    netns_ok(
        "baton-blue",
        &["ip", "addr", "del", "198.18.0.100/24", "dev", "eth0"],
    );
    netns_ok(
        "baton-blue",
        &["ip", "addr", "add", "198.18.0.100/24", "dev", "bt9a"],
    );
    let dir = with_pair("web.toml", |t| {
        t.replace("interface = \"eth0\"", "interface = \"bt9a\"")
    });
    let run = baton(&dir.path().join("baton.toml"), &["switchover", "web"]);
    for ns in hosts {
        netns_ok(ns, &["ip", "link", "del", "bt9a"]);
    }
    // Linux answers ARP for the address on eth0 anyway, so the switch
    // works; what matters is that the failed announcement is on record.
    assert_eq!(run.code, 0, "{}", run.stdout);
    let end = step_end(&dir.path().join("state"), "web", "verify_service");
    assert!(
        end["detail"]
            .as_str()
            .unwrap()
            .contains("gratuitous ARP FAILED (exit 2"),
        "{end}"
    );
    let read = end["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["command"]
                .as_str()
                .unwrap()
                .starts_with("cat -- \"/tmp/baton-$(id -u)/arping-198.18.0.100.log\"")
        })
        .unwrap_or_else(|| panic!("the announcement's report was not read: {end}"));
    assert_eq!(read["host"], "green");
    assert!(
        read["stdout"].as_str().unwrap().contains("arping exit 2"),
        "{read}"
    );
}

#[test]
fn quiesce_holds_new_connections_off_the_old_host_until_the_address_leaves_it() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| add_traffic_keys(&t, "quiesce = \"3s\"\n"));
    let state = dir.path().join("state");
    let plan = baton(&dir.path().join("baton.toml"), &["plan", "web"]);
    let lines: Vec<&str> = plan.stdout.lines().map(str::trim).collect();
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(text))
            .unwrap_or_else(|| panic!("{text:?} is not in the plan:\n{}", plan.stdout))
    };
    // In the order they run: green gets ready, then blue holds, waits, lets go.
    let order = [
        at("$ green: sudo -n nft -f - <<< 'add table inet baton"),
        at("arm green: start sudo -n ip -o -batch -"),
        at("$ blue: sudo -n nft -f - <<< 'add table inet baton"),
        at("add element inet baton quiesce4 { 198.18.0.100 timeout 5000ms }'"),
        at("arm blue: start sudo -n ip -o -batch -"),
        at("wait controller: wait 3s from the start of the hold"),
        at("$ blue: sudo -n ip -o -batch - <<< 'addr del 198.18.0.100/24 dev eth0'"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", plan.stdout);
    let child = spawn(&dir.path().join("baton.toml"), &["switchover", "web"]);
    wait_for_begin(&state, "web", "switch");
    std::thread::sleep(Duration::from_millis(1000));
    // Inside the quiesce time: blue still holds the address, but a new
    // connection to it gets no answer (its SYN is dropped; a real client
    // would retry a second later), while blue's own address still works.
    assert!(holds_vip("baton-blue"), "blue still holds the VIP");
    let (code, body) = client_get("http://198.18.0.100/");
    assert_eq!(code, 28, "a connect timeout, not an answer: {body:?}");
    let (code, body) = client_get("http://198.18.0.11/");
    assert_eq!((code, body.as_str()), (0, "host=blue version=1\n"));
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    // Once the address moved, green answers at once: no hold on green.
    assert!(holds_vip("baton-green") && !holds_vip("baton-blue"));
    let (code, body) = client_get("http://198.18.0.100/");
    assert_eq!((code, body.as_str()), (0, "host=green version=1\n"));
    let detail = step_end(&state, "web", "switch")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("after holding new connections off blue for 3s"),
        "{detail}"
    );
    let cmds = step_commands(&state, "web", "switch");
    let nft: Vec<&(String, i64, String, String)> = cmds
        .iter()
        .filter(|c| c.2.starts_with("sudo -n nft -f - <<< "))
        .collect();
    assert_eq!(nft.len(), 2, "{cmds:#?}");
    assert!(
        nft.iter().any(|c| c.0 == "blue"
            && c.1 == 0
            && c.2
                .contains("add element inet baton quiesce4 { 198.18.0.100 timeout 5000ms }")),
        "{cmds:#?}"
    );
    assert!(
        nft.iter().any(|c| c.0 == "green"
            && c.1 == 0
            && c.2
                .contains("delete element inet baton quiesce4 { 198.18.0.100 }")),
        "{cmds:#?}"
    );
}

#[test]
fn a_switch_back_ends_the_hold_on_the_host_taking_the_address_back() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| {
        add_traffic_keys(&t, "quiesce = \"50ms\"\n") + GREEN_MUST_NOT_SERVE
    });
    let state = dir.path().join("state");
    let run = baton(
        &dir.path().join("baton.toml"),
        &["apply", "web", "--change", "v2"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
    // blue held new connections off before giving the address up; taking
    // it back, it ended that hold first, so it answers at once.
    let back = step_commands(&state, "web", "switch_back");
    assert!(
        back.iter().any(|c| c.0 == "blue"
            && c.1 == 0
            && c.2
                .contains("delete element inet baton quiesce4 { 198.18.0.100 }")),
        "{back:#?}"
    );
    let (code, body) = client_get("http://198.18.0.100/");
    assert_eq!((code, body.as_str()), (0, "host=blue version=1\n"));
    let held = netns_ok(
        "baton-blue",
        &["nft", "list", "set", "inet", "baton", "quiesce4"],
    );
    assert!(!held.contains("198.18.0.100"), "{held}");
}

#[test]
fn when_the_hold_cannot_start_the_switch_fails_before_the_address_moves() {
    let _lab = lab();
    let nft = netns_ok(CTL, &["sh", "-c", "command -v nft"]);
    let dir = with_pair("web.toml", |t| add_traffic_keys(&t, "quiesce = \"50ms\"\n"));
    let run = without_sudo_rule(&format!(", {} -f -", nft.trim()), || {
        baton(&dir.path().join("baton.toml"), &["switchover", "web"])
    });
    assert_eq!(run.code, 1, "failed, traffic unchanged: {}", run.stdout);
    assert!(holds_vip("baton-blue") && !holds_vip("baton-green"));
    let switch = step_end(&dir.path().join("state"), "web", "switch");
    let detail = switch["detail"].as_str().unwrap();
    // (the new host's nft, which runs first, is refused)
    assert!(
        detail.contains("ending any hold on new connections to 198.18.0.100 on green")
            && detail.contains("allow `nft -f -`")
            && detail.contains("traffic stays on blue"),
        "{detail}"
    );
    // Nothing was removed or added.
    let cmds = step_commands(&dir.path().join("state"), "web", "switch");
    assert!(
        !cmds
            .iter()
            .any(|c| c.2.contains("addr del") || c.2.contains("addr add")),
        "{cmds:#?}"
    );
}

#[test]
fn a_host_taking_the_address_ends_a_hold_left_on_it() {
    let _lab = lab();
    // A hold on new connections to the VIP, as an earlier switch the other
    // way would have left it, but for a minute: while it lasts, the host
    // drops every SYN to the VIP.
    let plant = |ns: &str| {
        let script = baton::traffic::quiesce::hold_script(
            &WEB_VIP.parse().unwrap(),
            Duration::from_secs(58),
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    let dir = with_pair("web.toml", |t| add_traffic_keys(&t, "quiesce = \"20ms\"\n"));
    let cfg = dir.path().join("baton.toml");
    // A switchover to green, which holds new connections off itself.
    plant("baton-green");
    let run = baton(&cfg, &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let (code, body) = client_get(&format!("http://{WEB_VIP}/"));
    assert_eq!((code, body.as_str()), (0, "host=green version=1\n"));
    // A failover to blue, which does too: green is cut off.
    plant("baton-blue");
    netns_ok("baton-green", &["ip", "link", "set", "eth0", "down"]);
    let run = baton(&cfg, &["failover", "web", "--reason", "green died"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (code, body) = client_get(&format!("http://{WEB_VIP}/"));
    assert_eq!((code, body.as_str()), (0, "host=blue version=1\n"));
}

#[test]
fn a_secondary_listed_first_is_refused_in_preflight_and_the_message_says_why() {
    let _lab = lab();
    let dir = with_pair("api.toml", |t| {
        set_key(&t, "servers", "[\"198.18.0.54:53\", \"198.18.0.53:53\"]")
    });
    let run = baton(&dir.path().join("baton.toml"), &["switchover", "api"]);
    // The key is proved against the first server, the secondary, which has
    // no such key (BADKEY): refused before anything changed.
    assert_eq!(run.code, 5, "did not start: {}", run.stdout);
    assert!(run.stdout.contains("BADKEY"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("198.18.0.54:53, the first of `servers`, is the zone's primary"),
        "{}",
        run.stdout
    );
    assert_eq!(dns_answer(), "198.18.0.21");
}

#[test]
fn the_old_ttl_is_counted_from_when_every_server_gives_the_lowered_one() {
    let _lab = lab();
    let dir = with_pair("api.toml", |t| {
        add_traffic_keys(&t, "switch_ttl = \"1s\"\npropagation_timeout = \"2s\"\n")
    });
    // The secondary takes no transfer: it never gives the lowered TTL, so
    // the wait for the old TTL never starts and the switch fails first.
    let run =
        with_secondary_frozen(|| baton(&dir.path().join("baton.toml"), &["switchover", "api"]));
    assert_eq!(run.code, 1, "failed, traffic unchanged: {}", run.stdout);
    let switch = step_end(&dir.path().join("state"), "api", "switch");
    assert!(
        switch["detail"].as_str().unwrap().contains(
            "the lowered TTL was accepted, but not every server serves it: 198.18.0.54:53: 198.18.0.21 (TTL 5s)"
        ),
        "{switch}"
    );
    assert!(
        switch["duration_ms"].as_u64().unwrap() < 5000,
        "the old TTL (5 s) was not waited: {switch}"
    );
    // The lowered TTL does not stay: the next run would take it for the
    // record's normal one.
    assert!(
        switch["detail"]
            .as_str()
            .unwrap()
            .contains("the TTL was put back to 5s"),
        "{switch}"
    );
    assert_eq!(dns_answer(), "198.18.0.21");
    let answer = netns_ok(
        CTL,
        &[
            "dig",
            "+norec",
            "+noall",
            "+answer",
            "@198.18.0.53",
            "app.baton.test.",
            "A",
        ],
    );
    assert!(answer.contains("\t5\tIN\tA\t198.18.0.21"), "{answer}");
}

#[test]
fn a_wrong_tsig_key_stops_apply_and_failover_in_preflight() {
    let _lab = lab();
    let wrong = fs::read_to_string(Path::new(LAB).join("keys/wrong.key")).unwrap();
    let secret = wrong.split('"').nth(3).unwrap().to_string();
    let marks = tempfile::tempdir().unwrap();
    let mark = marks.path().join("fenced");
    let mark_s = mark.display().to_string();
    let dir = with_pair("api.toml", move |t| {
        t.replace("keys/update.key", "keys/wrong.key").replace(
            "environment = \"dev\"",
            &format!("environment = \"dev\"\nfence = \"echo {{host}} > {mark_s}\""),
        )
    });
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    let run = baton(&cfg, &["apply", "api", "--change", "v2"]);
    assert_eq!(run.code, 5, "did not start: {}", run.stdout);
    assert!(
        run.stdout.contains("did not start, nothing was changed") && run.stdout.contains("BADSIG"),
        "{}",
        run.stdout
    );
    assert_eq!(
        page("violet"),
        "host=violet version=1\n",
        "the standby is untouched"
    );
    assert_eq!(ended(&state, "api"), [("preflight".to_string(), false)]);
    assert!(
        !journal(&state, "api")
            .iter()
            .any(|r| r["step"] == "apply_standby"),
        "no apply_standby in the journal"
    );
    // A failover (the primary cut off): its switch would come after the
    // fence, so the refused key stops it before the fence.
    netns_ok("baton-amber", &["ip", "link", "set", "eth0", "down"]);
    let run = baton(&cfg, &["failover", "api"]);
    netns_ok("baton-amber", &["ip", "link", "set", "eth0", "up"]);
    assert_eq!(run.code, 5, "did not start: {}", run.stdout);
    assert!(run.stdout.contains("BADSIG"), "{}", run.stdout);
    assert!(!mark.exists(), "the fence command ran");
    assert!(
        !journal(&state, "api").iter().any(|r| r["step"] == "fence"),
        "no fence in the journal"
    );
    assert_eq!(dns_answer(), "198.18.0.21");
    assert_eq!(state_failed(&state), serde_json::Value::Null);
    let journal_text = fs::read_to_string(state.join("api.journal")).unwrap();
    assert!(
        !journal_text.contains(&secret),
        "the secret is in the journal"
    );
}

/// The host a pair's state marks failed (null when none, or no state).
fn state_failed(dir: &Path) -> serde_json::Value {
    fs::read_to_string(dir.join("api.state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map_or(serde_json::Value::Null, |v| v["failed"].clone())
}
