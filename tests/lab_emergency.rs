//! The emergency paths, as an operator at 03:00 meets them: `failover`,
//! `rejoin` and `recover` on the VIP pair `web` with the old primary's
//! host down, its sshd down, its service down, the VIP on both hosts, the
//! VIP on neither. One test per row of the README's table ("Emergencies");
//! each asserts the exit code, what the hosts hold afterwards, and that a
//! fence is never run on a host that is being rejoined.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const VIP: &str = "198.18.0.100";
const VIP_CIDR: &str = "198.18.0.100/24";

fn holds_vip(host: &str) -> bool {
    netns_ok(
        &format!("baton-{host}"),
        &["ip", "-o", "addr", "show", "dev", "eth0"],
    )
    .contains(&format!("inet {VIP}/"))
}

/// (blue holds the VIP, green holds it)
fn vip_on() -> (bool, bool) {
    (holds_vip("blue"), holds_vip("green"))
}

fn add_vip(host: &str) {
    netns_ok(
        &format!("baton-{host}"),
        &["ip", "addr", "add", VIP_CIDR, "dev", "eth0"],
    );
}

fn del_vip(host: &str) {
    netns_ok(
        &format!("baton-{host}"),
        &["ip", "addr", "del", VIP_CIDR, "dev", "eth0"],
    );
}

/// The host's link goes down: the machine is gone for everyone.
fn host_down(host: &str) {
    netns_ok(
        &format!("baton-{host}"),
        &["ip", "link", "set", "eth0", "down"],
    );
}

fn host_up(host: &str) {
    netns_ok(
        &format!("baton-{host}"),
        &["ip", "link", "set", "eth0", "up"],
    );
}

/// Every call of the lab's fence hook since the last reset.
fn fence_calls() -> Vec<String> {
    fs::read_to_string(Path::new(LAB).join("fence.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string())
        .collect()
}

/// The lab's web pair with the lab's fence hook (a power switch).
fn with_fence() -> (tempfile::TempDir, PathBuf) {
    let dir = with_pair("web.toml", |t| {
        t.replace(
            "environment = \"dev\"",
            &format!("environment = \"dev\"\nfence = \"{LAB}/bin/fence {{host}}\""),
        )
    });
    let cfg = dir.path().join("baton.toml");
    (dir, cfg)
}

/// The run ended with `code` and said `text`.
fn expect(run: &Run, code: i32, text: &str) {
    assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(text), "{}", run.stdout);
}

/// The lab's fence hook was never called (a rejoining host is repaired,
/// not dead).
fn never_fenced() {
    assert!(
        fence_calls().is_empty(),
        "the fence ran on the rejoining host: {:?}",
        fence_calls()
    );
}

fn failover(cfg: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["failover", "web", "--reason", "03:00 page"];
    args.extend_from_slice(extra);
    baton(cfg, &args)
}

/// After a failover to green, blue is marked failed: the rejoin rows
/// start here.
fn failed_over_to_green(cfg: &Path) {
    host_down("blue");
    let run = failover(cfg, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        vip_on(),
        (true, true),
        "blue kept its address while its link was down"
    );
    fs::remove_file(Path::new(LAB).join("fence.log")).ok();
}

fn state_of(cfg: &Path) -> serde_json::Value {
    let file = cfg.parent().unwrap().join("state/web.state.json");
    serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap()
}

/// The web pair's recorded state under the lab's own configuration
/// (`state_dir = "../state"`), if any.
fn lab_state_of() -> Option<serde_json::Value> {
    let text = fs::read_to_string(Path::new(LAB).join("state/web.state.json")).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

// ---- failover ----

#[test]
fn failover_with_the_primary_host_down_moves_the_vip_and_marks_it_failed() {
    let _lab = lab();
    let cfg = lab_config();
    host_down("blue");
    let run = failover(&cfg, &[]);
    expect(&run, 0, "no host answers for 198.18.0.100");
    host_up("blue");
    // blue kept the address on its downed link; the rejoin takes it away.
    assert!(holds_vip("green"));
    let rejoin = baton(&cfg, &["rejoin", "web", "--reason", "blue repaired"]);
    assert_eq!(rejoin.code, 0, "{}", rejoin.stdout);
    assert_eq!(vip_on(), (false, true));
}

#[test]
fn failover_with_only_the_primarys_sshd_down_is_refused_unless_forced() {
    let _lab = lab();
    stop("blue", "sshd");
    let refused = failover(&lab_config(), &[]);
    assert_eq!(refused.code, 5, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stdout.contains("its service still answers") && refused.stdout.contains("--force"),
        "{}",
        refused.stdout
    );
    assert_eq!(vip_on(), (true, false), "nothing changed");

    // Forced without a fence command: blue still answers for the VIP on
    // the link, so green does not take it and the run says why.
    let forced = failover(&lab_config(), &["--force"]);
    expect(&forced, 4, "is still answered on the link");
    assert_eq!(vip_on(), (true, false), "exactly one host holds the VIP");
    let log = baton(&lab_config(), &["log", "web"]);
    assert!(log.stdout.contains("failover --force"), "{}", log.stdout);
}

#[test]
fn a_forced_failover_with_a_fence_command_powers_the_primary_off_then_moves_the_vip() {
    let _lab = lab();
    let (_dir, cfg) = with_fence();
    stop("blue", "sshd");
    let run = failover(&cfg, &["--force"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fence_calls(), vec!["blue".to_string()]);
    assert!(holds_vip("green"));
    assert_eq!(
        client_get(&format!("http://{VIP}/")).1,
        "host=green version=1\n"
    );
    assert_eq!(state_of(&cfg)["failed"], "blue");
}

#[test]
fn failover_with_the_primarys_service_down_takes_the_vip_off_it() {
    let _lab = lab();
    stop("blue", "nginx");
    let run = failover(&lab_config(), &[]);
    expect(&run, 0, "removed 198.18.0.100/24 from blue");
    assert_eq!(vip_on(), (false, true));
}

#[test]
fn failover_with_the_vip_on_both_and_a_healthy_primary_is_refused_and_changes_nothing() {
    let _lab = lab();
    add_vip("green");
    for extra in [&[][..], &["--force"][..]] {
        let run = failover(&lab_config(), extra);
        expect(&run, 4, "split brain");
        assert_eq!(vip_on(), (true, true), "nothing changed");
    }
    assert!(lab_state_of().is_none_or(|s| s.get("failed").is_none()));
}

#[test]
fn failover_with_the_vip_on_neither_and_a_healthy_primary_is_refused_unless_forced() {
    let _lab = lab();
    del_vip("blue");
    let run = failover(&lab_config(), &[]);
    expect(&run, 4, "`baton recover web` puts the address back on blue");
    assert_eq!(vip_on(), (false, false), "nothing changed");
    // The other way out the refusal names: forced, the VIP goes to green
    // and blue is marked failed.
    let forced = failover(&lab_config(), &["--force"]);
    expect(&forced, 0, "blue does not hold 198.18.0.100/24");
    assert_eq!(vip_on(), (false, true));
    assert_eq!(lab_state_of().unwrap()["failed"], "blue");
}

// ---- rejoin (after a failover to green; blue is marked failed) ----

#[test]
fn rejoin_of_a_host_still_down_is_refused() {
    let _lab = lab();
    let (_dir, cfg) = with_fence();
    failed_over_to_green(&cfg);
    let run = baton(&cfg, &["rejoin", "web", "--reason", "try"]);
    expect(&run, 5, "still unreachable");
    never_fenced();
    assert_eq!(state_of(&cfg)["failed"], "blue");
}

#[test]
fn rejoin_with_the_hosts_sshd_down_is_refused() {
    let _lab = lab();
    let (_dir, cfg) = with_fence();
    failed_over_to_green(&cfg);
    host_up("blue");
    stop("blue", "sshd");
    let run = baton(&cfg, &["rejoin", "web", "--reason", "try"]);
    expect(&run, 5, "still unreachable over SSH");
    never_fenced();
    // blue came back holding the VIP: still split brain, nothing touched.
    assert_eq!(vip_on(), (true, true));
}

#[test]
fn rejoin_with_the_hosts_service_down_releases_it_and_keeps_it_failed() {
    let _lab = lab();
    let (_dir, cfg) = with_fence();
    failed_over_to_green(&cfg);
    host_up("blue");
    stop("blue", "nginx");
    let run = baton(&cfg, &["rejoin", "web", "--reason", "try"]);
    expect(&run, 1, "blue stays marked failed");
    never_fenced();
    assert_eq!(vip_on(), (false, true), "the VIP it came back with is gone");
    assert_eq!(state_of(&cfg)["failed"], "blue");
}

#[test]
fn rejoin_of_a_host_back_with_the_vip_removes_it_and_never_runs_the_fence() {
    let _lab = lab();
    let (_dir, cfg) = with_fence();
    failed_over_to_green(&cfg);
    host_up("blue");
    assert_eq!(
        baton(&cfg, &["status", "web"]).code,
        4,
        "split brain until rejoin"
    );
    let run = baton(&cfg, &["rejoin", "web", "--reason", "blue repaired"]);
    expect(&run, 0, "removed 198.18.0.100/24 from blue");
    never_fenced();
    assert_eq!(vip_on(), (false, true));
    assert!(state_of(&cfg).get("failed").is_none());
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0);
    // The repaired host really is a standby: it can take traffic back.
    assert_eq!(
        baton(&cfg, &["switchover", "web", "--reason", "back"]).code,
        0
    );
    assert_eq!(vip_on(), (true, false));
}

#[test]
fn rejoin_with_the_vip_on_neither_host_is_refused() {
    let _lab = lab();
    let (_dir, cfg) = with_fence();
    failed_over_to_green(&cfg);
    host_up("blue");
    del_vip("blue");
    del_vip("green");
    let run = baton(&cfg, &["rejoin", "web", "--reason", "try"]);
    expect(&run, 4, "it is on neither host");
    never_fenced();
    assert_eq!(vip_on(), (false, false));
}

// ---- status and recover after the controller was killed ----

#[test]
fn status_after_a_kill_mid_run_names_the_interrupted_run_until_recovered() {
    let _lab = lab();
    let cfg = lab_config();
    let state = Path::new(LAB).join("state");
    let mut child = spawn(&cfg, &["switchover", "web", "--reason", "killed"]);
    wait_for_begin(&state, "web", "verify_standby");
    child.kill().expect("SIGKILL the child");
    let _ = finish(child);
    let status = baton(&cfg, &["status", "web"]);
    assert_eq!(status.code, 4, "{}", status.stdout);
    assert!(
        status.stdout.contains("was interrupted") && status.stdout.contains("baton recover web"),
        "{}",
        status.stdout
    );
    let metrics = tempfile::NamedTempFile::new().unwrap();
    let m = metrics.path().display().to_string();
    baton(&cfg, &["--metrics-file", &m, "status", "web"]);
    assert!(fs::read_to_string(&m)
        .unwrap()
        .contains("baton_run_interrupted{pair=\"web\"} 1"),);
    let recover = baton(&cfg, &["recover", "web"]);
    assert_eq!(recover.code, 1, "{}", recover.stdout);
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0);
    baton(&cfg, &["--metrics-file", &m, "status", "web"]);
    assert!(fs::read_to_string(&m)
        .unwrap()
        .contains("baton_run_interrupted{pair=\"web\"} 0"));
}

#[test]
fn status_during_a_run_says_it_is_in_progress_not_interrupted() {
    let _lab = lab();
    let cfg = lab_config();
    let state = Path::new(LAB).join("state");
    let child = spawn(&cfg, &["switchover", "web", "--reason", "watched"]);
    wait_for_begin(&state, "web", "verify_service");
    let status = baton(&cfg, &["status", "web"]);
    let (code, out) = finish(child);
    assert_eq!(code, 0, "{out}");
    assert!(
        status.stdout.contains("is in progress"),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("interrupted"), "{}", status.stdout);
}

#[test]
fn a_wrong_interface_is_named_in_status_and_in_the_refused_runs_journal() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| {
        t.replace("interface = \"eth0\"", "interface = \"eth9\"")
    });
    let cfg = dir.path().join("baton.toml");
    let status = baton(&cfg, &["status", "web"]);
    expect(&status, 4, "Device \"eth9\" does not exist");
    let run = baton(&cfg, &["switchover", "web", "--reason", "try"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    let end = step_end(&dir.path().join("state"), "web", "preflight");
    assert!(
        end["detail"]
            .as_str()
            .unwrap()
            .contains("Device \"eth9\" does not exist"),
        "{end}"
    );
}

// ---- recover (the controller was killed inside a switchover) ----

/// A switchover killed like kill -9 at a fault point (needs the
/// `failpoints` feature; without it the run simply completes).
#[cfg(feature = "failpoints")]
fn killed_at(point: &str) {
    killed_with(&lab_config(), point);
}

/// As `killed_at`, with the configuration `cfg`.
#[cfg(feature = "failpoints")]
fn killed_with(cfg: &Path, point: &str) {
    use std::os::unix::process::ExitStatusExt;
    let out = baton_command(cfg, &["switchover", "web", "--reason", "killed"])
        .env("FAILPOINTS", format!("{point}=return"))
        .output()
        .unwrap();
    assert!(
        out.status.signal().is_some(),
        "{point}: the run was not killed"
    );
}

/// The lab's configuration with web in the classic order (remove, then
/// add), whose fault point lies between the two.
#[cfg(feature = "failpoints")]
fn classic() -> tempfile::TempDir {
    custom_config(|name, t| {
        if name == "web.toml" {
            add_traffic_keys(&t, "handover = \"classic\"\n")
        } else {
            t
        }
    })
}

#[cfg(feature = "failpoints")]
#[test]
fn recover_with_the_vip_on_neither_puts_it_back_on_the_old_primary() {
    let _lab = lab();
    let dir = classic();
    let cfg = dir.path().join("baton.toml");
    killed_with(&cfg, "vip-between-del-and-add");
    assert_eq!(vip_on(), (false, false));
    let run = baton(&cfg, &["recover", "web"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(vip_on(), (true, false));
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0);
}

#[cfg(feature = "failpoints")]
#[test]
fn recover_with_the_vip_on_both_hosts_changes_nothing_and_needs_an_operator() {
    let _lab = lab();
    let dir = classic();
    let cfg = dir.path().join("baton.toml");
    killed_with(&cfg, "vip-between-del-and-add");
    add_vip("blue");
    add_vip("green");
    let run = baton(&cfg, &["recover", "web"]);
    expect(&run, 4, "traffic is unclear");
    assert_eq!(vip_on(), (true, true), "nothing changed");
}

#[cfg(feature = "failpoints")]
#[test]
fn recover_with_the_new_primarys_service_down_switches_back() {
    let _lab = lab();
    killed_at("begin-verify_service");
    assert_eq!(vip_on(), (false, true));
    stop("green", "nginx");
    let run = baton(&lab_config(), &["recover", "web"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(vip_on(), (true, false));
    assert_eq!(
        client_get(&format!("http://{VIP}/")).1,
        "host=blue version=1\n"
    );
}

#[cfg(feature = "failpoints")]
#[test]
fn recover_with_the_new_primarys_sshd_down_needs_an_operator_and_a_plain_failover_is_refused() {
    let _lab = lab();
    killed_at("begin-verify_service");
    stop("green", "sshd");
    let run = baton(&lab_config(), &["recover", "web"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert_eq!(vip_on(), (false, true), "green keeps serving");
    // green still serves: a plain failover is refused, as in the table.
    let refused = baton(
        &lab_config(),
        &["failover", "web", "--reason", "green sshd"],
    );
    expect(&refused, 5, "still answers");
}

#[cfg(feature = "failpoints")]
#[test]
fn recover_with_the_new_primarys_host_down_needs_an_operator_then_a_failover() {
    let _lab = lab();
    killed_at("begin-verify_service");
    host_down("green");
    let run = baton(&lab_config(), &["recover", "web"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    let failover = baton(
        &lab_config(),
        &["failover", "web", "--reason", "green died"],
    );
    assert_eq!(failover.code, 0, "{}\n{}", failover.stdout, failover.stderr);
    assert!(holds_vip("blue"));
    assert_eq!(
        client_get(&format!("http://{VIP}/")).1,
        "host=blue version=1\n"
    );
}

#[test]
fn recover_with_the_vip_on_neither_and_nothing_interrupted_puts_it_back_on_the_recorded_primary() {
    let _lab = lab();
    let cfg = lab_config();
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0, "roles recorded");
    del_vip("blue");
    assert_eq!(baton(&cfg, &["status", "web"]).code, 4);
    let run = baton(&cfg, &["recover", "web"]);
    expect(&run, 0, "done: traffic is back on blue");
    assert_eq!(vip_on(), (true, false));
    assert_eq!(
        client_get(&format!("http://{VIP}/")).1,
        "host=blue version=1\n"
    );
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0);
    let log = baton(&cfg, &["log", "web"]);
    assert!(log.stdout.contains("restore"), "{}", log.stdout);
    // Nothing more to do now.
    expect(&baton(&cfg, &["recover", "web"]), 0, "nothing to recover");
}

#[test]
fn recover_does_not_restore_the_vip_to_a_primary_that_fails_its_checks() {
    let _lab = lab();
    let cfg = lab_config();
    assert_eq!(baton(&cfg, &["status", "web"]).code, 0, "roles recorded");
    del_vip("blue");
    stop("blue", "nginx");
    let run = baton(&cfg, &["recover", "web"]);
    expect(&run, 4, "`baton failover web` gives it to green");
    assert_eq!(vip_on(), (false, false), "nothing changed");
    // And that failover works: blue fails its checks, green takes over.
    let over = failover(&cfg, &[]);
    expect(&over, 0, "blue is marked failed");
    assert_eq!(vip_on(), (false, true));
}

// ---- hooks never see a secret ----

#[test]
fn the_fence_hook_gets_no_passphrase_in_its_environment_and_the_journal_shows_none() {
    let _lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("fence-env");
    let env_s = env_file.display().to_string();
    let cfg_dir = with_pair("api.toml", move |t| {
        t.replace(
            "environment = \"dev\"",
            &format!(
                "environment = \"dev\"\nfence = \"env > {env_s}; echo hunter2 is not here; echo $BATON_SSH_PASSPHRASE\""
            ),
        ) + "\n[ssh]\npassphrase_env = \"BATON_SSH_PASSPHRASE\"\n"
    });
    let cfg = cfg_dir.path().join("baton.toml");
    netns_ok("baton-amber", &["ip", "link", "set", "eth0", "down"]);
    let run = baton_env(
        &cfg,
        &["failover", "api"],
        &[("BATON_SSH_PASSPHRASE", "hunter2")],
    );
    netns_ok("baton-amber", &["ip", "link", "set", "eth0", "up"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let env = fs::read_to_string(&env_file).unwrap();
    assert!(
        env.contains("PATH="),
        "the hook ran with an environment: {env}"
    );
    assert!(
        !env.contains("hunter2"),
        "the passphrase reached the hook: {env}"
    );
    // What the hook printed is journaled, with the secret (even a short
    // one) redacted wherever it appears.
    let journal = fs::read_to_string(cfg_dir.path().join("state/api.journal")).unwrap();
    assert!(journal.contains("<redacted> is not here"), "{journal}");
    assert!(!journal.contains("hunter2"));
    let log = baton_env(
        &cfg,
        &["log", "api", "--run", &run_id(&journal)],
        &[("BATON_SSH_PASSPHRASE", "hunter2")],
    );
    assert!(!log.stdout.contains("hunter2"), "{}", log.stdout);
}

fn run_id(journal: &str) -> String {
    let first: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    first["run"].as_str().unwrap().to_string()
}
