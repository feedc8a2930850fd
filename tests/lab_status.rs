//! `baton status` and `baton check` against the lab's real sshd, nginx and
//! Knot: healthy pairs, host-key refusal, authentication failures, an
//! unreachable host, VIP drift and DNS drift.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;

fn pair<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pair"] == name)
        .unwrap_or_else(|| panic!("no pair {name} in {report}"))
}

fn problems(report: &serde_json::Value, name: &str) -> String {
    pair(report, name)["problems"].to_string()
}

#[test]
fn status_of_both_pairs_is_healthy_and_records_roles_on_first_sight() {
    let _lab = lab();
    let run = baton(&lab_config(), &["status", "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["schema"], 1);
    assert_eq!(r["verdict"], "ok");
    let web = pair(&r, "web");
    assert_eq!(
        web["holder"],
        serde_json::json!({"kind": "host", "detail": "blue"})
    );
    assert_eq!(
        web["recorded"],
        serde_json::json!({"primary": "blue", "standby": "green"})
    );
    assert_eq!(web["recorded_now"], true);
    assert_eq!(web["hosts"][0]["version"], "1");
    assert_eq!(web["hosts"][0]["checks"][0]["ok"], true);
    let api = pair(&r, "api");
    assert_eq!(api["holder"]["detail"], "amber");
    assert_eq!(
        api["dns_servers"][0]["answer"],
        serde_json::json!(["198.18.0.21"])
    );

    // The state file is private, and a second run reads it instead of recording again.
    let mode = fs::metadata(Path::new(LAB).join("state/web.state.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let again = baton(&lab_config(), &["status", "--json"]);
    assert_eq!(again.code, 0);
    assert_eq!(pair(&again.json(), "web")["recorded_now"], false);

    // The human table names both pairs and who holds traffic.
    let table = baton(&lab_config(), &["status"]);
    assert_eq!(table.code, 0);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("web ") && l.contains(" blue ") && l.ends_with("ok")),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("api ") && l.contains(" amber ")),
        "{}",
        table.stdout
    );
}

#[test]
fn status_can_be_limited_to_named_pairs() {
    let _lab = lab();
    let run = baton(&lab_config(), &["status", "--json", "web"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["pairs"].as_array().unwrap().len(), 1);
    let run = baton(&lab_config(), &["status", "nope"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("there is no pair named `nope`"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_host_key_is_refused_showing_its_fingerprint() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let empty = dir.path().join("known_hosts");
    // No keys (`check` refuses a 0-byte file: a failed ssh-keyscan > FILE).
    fs::write(&empty, "# no keys yet\n").unwrap();
    let cfg = use_known_hosts(dir.path(), &empty);
    let run = baton(&cfg, &["status", "--json", "web"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    let p = problems(&run.json(), "web");
    assert!(
        p.contains("host key refused: no key is recorded for 198.18.0.11"),
        "{p}"
    );
    assert!(
        p.contains(&host_fingerprint("blue")),
        "{p} lacks the fingerprint"
    );
    assert!(p.contains("accept_new_host_keys"), "{p}");
    assert_eq!(
        fs::read_to_string(&empty).unwrap(),
        "# no keys yet\n",
        "a refused key is not recorded"
    );
}

#[test]
fn accept_new_records_unknown_keys_but_never_a_changed_one() {
    let _lab = lab();
    let dir = with_pair("baton.toml", |t| {
        t.replace("[ssh]", "[ssh]\naccept_new_host_keys = true")
    });
    let kh = dir.path().join("known_hosts");
    let cfg = use_known_hosts(dir.path(), &kh);
    let run = baton(&cfg, &["status", "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let recorded = fs::read_to_string(&kh).unwrap();
    assert_eq!(recorded.lines().count(), 4, "{recorded}");
    assert!(
        recorded.contains(&format!("198.18.0.11 {}", host_key("blue"))),
        "{recorded}"
    );
    assert_eq!(
        fs::metadata(&kh).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Now blue's recorded key is replaced by another one: accept-new must refuse.
    let changed = recorded.replace(&host_key("blue"), &host_key("green"));
    fs::write(&kh, &changed).unwrap();
    let run = baton(&cfg, &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    assert!(
        problems(&run.json(), "web").contains("HOST KEY CHANGED"),
        "{}",
        run.stdout
    );
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        changed,
        "the changed key was not overwritten"
    );
}

#[test]
fn a_changed_host_key_is_refused() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let kh = dir.path().join("known_hosts");
    let original = fs::read_to_string(Path::new(LAB).join("ssh/known_hosts")).unwrap();
    let changed: String = original
        .lines()
        .map(|l| {
            if l.starts_with("198.18.0.11 ") {
                format!("198.18.0.11 {}", host_key("green"))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let line = changed
        .lines()
        .position(|l| l.starts_with("198.18.0.11 "))
        .unwrap()
        + 1;
    fs::write(&kh, &changed).unwrap();
    let cfg = use_known_hosts(dir.path(), &kh);
    let run = baton(&cfg, &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    let r = run.json();
    let p = problems(&r, "web");
    assert!(p.contains("HOST KEY CHANGED"), "{p}");
    assert!(p.contains(&format!("line {line}")), "{p}");
    assert!(p.contains(&host_fingerprint("blue")), "{p}");
    assert!(p.contains("host blue is unreachable"), "{p}");
    // green's key is still right, so green is reachable.
    assert_eq!(pair(&r, "web")["hosts"][1]["reachable"], true);
}

#[test]
fn hashed_known_hosts_entries_are_understood() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let kh = dir.path().join("known_hosts");
    fs::copy(Path::new(LAB).join("ssh/known_hosts"), &kh).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-H", "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(out.status.success());
    let hashed = fs::read_to_string(&kh).unwrap();
    assert!(hashed.lines().all(|l| l.starts_with("|1|")), "{hashed}");
    let cfg = use_known_hosts(dir.path(), &kh);
    let run = baton(&cfg, &["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn bracketed_port_entries_are_matched_by_port() {
    let _lab = lab();
    // blue's sshd also listens on 2222.
    let dir = with_pair("web.toml", |t| {
        t.replace(
            "address = \"198.18.0.11\"",
            "address = \"198.18.0.11\"\nssh_port = 2222",
        )
    });
    let kh = dir.path().join("known_hosts");
    let original = fs::read_to_string(Path::new(LAB).join("ssh/known_hosts")).unwrap();
    let cfg = use_known_hosts(dir.path(), &kh);

    // The plain entry is for port 22 only: on 2222 the key is unknown.
    fs::write(&kh, &original).unwrap();
    let run = baton(&cfg, &["status", "--json", "web"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(
        problems(&run.json(), "web").contains("no key is recorded for [198.18.0.11]:2222"),
        "{}",
        run.stdout
    );

    // With a [host]:port entry it is known.
    fs::write(
        &kh,
        format!("{original}[198.18.0.11]:2222 {}\n", host_key("blue")),
    )
    .unwrap();
    let run = baton(&cfg, &["status", "--json", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn a_wrong_user_is_refused_with_a_clear_message() {
    let _lab = lab();
    let dir = with_pair("baton.toml", |t| set_key(&t, "user", "\"nosuchuser\""));
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    let p = problems(&run.json(), "web");
    assert!(p.contains("authentication as `nosuchuser`"), "{p}");
    assert!(p.contains("was refused"), "{p}");
}

#[test]
fn a_wrong_key_is_refused_with_a_clear_message() {
    let _lab = lab();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("stranger");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let key_s = key.display().to_string();
    let dir = with_pair("baton.toml", |t| {
        set_key(&t, "identity", &format!("{key_s:?}"))
    });
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    let p = problems(&run.json(), "web");
    assert!(
        p.contains(&format!(
            "authentication as `batonlab` with key {key_s} was refused"
        )),
        "{p}"
    );
}

#[test]
fn a_passphrase_comes_from_the_named_environment_variable() {
    let _lab = lab();
    let dir = with_pair("baton.toml", |t| {
        set_key(&t, "identity", &format!("\"{LAB}/ssh/id_ed25519_pass\""))
            .replace("[ssh]", "[ssh]\npassphrase_env = \"BATON_TEST_PASSPHRASE\"")
    });
    let cfg = dir.path().join("baton.toml");
    let run = baton(&cfg, &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    assert!(
        problems(&run.json(), "web")
            .contains("environment variable BATON_TEST_PASSPHRASE, which is not set"),
        "{}",
        run.stdout
    );
    let passphrase = fs::read_to_string(Path::new(LAB).join("ssh/passphrase")).unwrap();
    let run = baton_env(
        &cfg,
        &["status", "--json", "web"],
        &[("BATON_TEST_PASSPHRASE", passphrase.trim())],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        !run.stdout.contains(passphrase.trim()) && !run.stderr.contains(passphrase.trim()),
        "the passphrase leaked"
    );
    let run = baton_env(
        &cfg,
        &["status", "--json", "web"],
        &[("BATON_TEST_PASSPHRASE", "wrong")],
    );
    assert_eq!(run.code, 4);
    assert!(
        problems(&run.json(), "web").contains("wrong passphrase for the SSH key"),
        "{}",
        run.stdout
    );
}

/// Sets a lab host's link down and back up when dropped.
struct LinkDown(&'static str);

impl LinkDown {
    fn new(ns: &'static str) -> LinkDown {
        netns_ok(ns, &["ip", "link", "set", "eth0", "down"]);
        LinkDown(ns)
    }
}

impl Drop for LinkDown {
    fn drop(&mut self) {
        netns_ok(self.0, &["ip", "link", "set", "eth0", "up"]);
    }
}

#[test]
fn an_unreachable_standby_is_reported_within_its_timeout() {
    let _lab = lab();
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 0);
    let run = {
        let _down = LinkDown::new("baton-green");
        baton(&lab_config(), &["status", "--json", "web"])
    };
    // connect_timeout is 3s in the lab; checks have 2s. Allow for slow CI.
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert_eq!(
        run.code, 3,
        "an unreachable standby is degraded: {}",
        run.stdout
    );
    let r = run.json();
    assert_eq!(pair(&r, "web")["hosts"][1]["reachable"], false);
    assert!(
        problems(&r, "web").contains("standby green is unreachable"),
        "{r}"
    );
    assert_eq!(pair(&r, "web")["holder"]["detail"], "blue");
}

#[test]
fn an_unreachable_primary_needs_an_operator() {
    let _lab = lab();
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 0);
    let run = {
        let _down = LinkDown::new("baton-blue");
        baton(&lab_config(), &["status", "--json", "web"])
    };
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(
        problems(&run.json(), "web").contains("primary blue is unreachable"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_vip_on_both_hosts_is_split_brain() {
    let _lab = lab();
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 0);
    netns_ok(
        "baton-green",
        &["ip", "addr", "add", "198.18.0.100/24", "dev", "eth0"],
    );
    let run = baton(&lab_config(), &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    let r = run.json();
    assert_eq!(pair(&r, "web")["holder"]["kind"], "both");
    assert!(problems(&r, "web").contains("split brain"), "{r}");
    let table = baton(&lab_config(), &["status", "web"]);
    assert!(
        table.stdout.contains("BOTH") && table.stdout.contains("NEEDS OPERATOR"),
        "{}",
        table.stdout
    );
}

#[test]
fn the_vip_on_neither_host_needs_an_operator() {
    let _lab = lab();
    netns_ok(
        "baton-blue",
        &["ip", "addr", "del", "198.18.0.100/24", "dev", "eth0"],
    );
    let run = baton(&lab_config(), &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    let r = run.json();
    assert_eq!(pair(&r, "web")["holder"]["kind"], "neither");
    assert_eq!(
        pair(&r, "web")["recorded"],
        serde_json::Value::Null,
        "an unclear reality is not recorded"
    );
}

#[test]
fn a_vip_moved_behind_batons_back_is_drift() {
    let _lab = lab();
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 0);
    netns_ok(
        "baton-blue",
        &["ip", "addr", "del", "198.18.0.100/24", "dev", "eth0"],
    );
    netns_ok(
        "baton-green",
        &["ip", "addr", "add", "198.18.0.100/24", "dev", "eth0"],
    );
    let run = baton(&lab_config(), &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    assert!(
        problems(&run.json(), "web")
            .contains("traffic is on green, but the record says blue is primary"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_dns_record_changed_behind_batons_back_is_drift() {
    let _lab = lab();
    assert_eq!(baton(&lab_config(), &["status", "api"]).code, 0);
    nsupdate("update delete app.baton.test. A\nupdate add app.baton.test. 5 A 198.18.0.22");
    secondary_follows();
    let run = baton(&lab_config(), &["status", "--json", "api"]);
    assert_eq!(run.code, 4);
    let r = run.json();
    assert_eq!(
        pair(&r, "api")["dns_servers"][0]["answer"],
        serde_json::json!(["198.18.0.22"])
    );
    assert!(
        problems(&r, "api").contains("traffic is on violet, but the record says amber is primary"),
        "{r}"
    );
}

#[test]
fn dns_servers_that_disagree_need_an_operator_and_stop_a_run() {
    let _lab = lab();
    // The secondary stops taking transfers, then the record moves on the
    // primary: the two authoritative servers now give different answers.
    let (run, apply) = with_secondary_frozen(|| {
        nsupdate("update delete app.baton.test. A\nupdate add app.baton.test. 5 A 198.18.0.22");
        (
            baton(&lab_config(), &["status", "--json", "api"]),
            baton(&lab_config(), &["apply", "api", "--change", "v2"]),
        )
    });
    assert_eq!(run.code, 4, "{}", run.stdout);
    let r = run.json();
    let servers = &pair(&r, "api")["dns_servers"];
    assert_eq!(servers[0]["server"], "198.18.0.53:53");
    assert_eq!(servers[0]["answer"], serde_json::json!(["198.18.0.22"]));
    assert_eq!(servers[1]["server"], "198.18.0.54:53");
    assert_eq!(servers[1]["answer"], serde_json::json!(["198.18.0.21"]));
    assert!(problems(&r, "api").contains("disagree"), "{r}");
    assert_eq!(apply.code, 4, "{}", apply.stdout);
    assert!(apply.stdout.contains("disagree"), "{}", apply.stdout);
    assert_eq!(
        fs::read_to_string(format!("{LAB}/hosts/violet/srv/index.html")).unwrap(),
        "host=violet version=1\n",
        "nothing was changed"
    );
}

#[test]
fn a_dns_record_pointing_elsewhere_or_at_both_needs_an_operator() {
    let _lab = lab();
    nsupdate("update add app.baton.test. 5 A 198.18.0.22");
    secondary_follows();
    let run = baton(&lab_config(), &["status", "--json", "api"]);
    assert_eq!(run.code, 4);
    assert_eq!(pair(&run.json(), "api")["holder"]["kind"], "both");
    nsupdate("update delete app.baton.test. A\nupdate add app.baton.test. 5 A 198.18.0.99");
    secondary_follows();
    let run = baton(&lab_config(), &["status", "--json", "api"]);
    assert_eq!(run.code, 4);
    assert!(
        problems(&run.json(), "api").contains("198.18.0.99, which is neither host"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_dns_server_that_is_down_is_reported_not_waited_for() {
    let _lab = lab();
    // 198.18.0.59 is in the lab's range but nothing answers there.
    let dir = with_pair("api.toml", |t| {
        set_key(&t, "servers", "[\"198.18.0.53:53\", \"198.18.0.59:53\"]")
    });
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "api"]);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert_eq!(run.code, 3, "{}", run.stdout);
    let r = run.json();
    assert_eq!(pair(&r, "api")["holder"]["detail"], "amber");
    assert!(
        problems(&r, "api").contains("198.18.0.59:53 gave no answer"),
        "{r}"
    );
}

#[test]
fn a_standby_answering_as_the_wrong_host_fails_its_check() {
    let _lab = lab();
    assert_eq!(baton(&lab_config(), &["status", "web"]).code, 0);
    // green's page now claims to be blue: the check must notice WHICH host answered.
    fs::write(
        Path::new(LAB).join("hosts/green/srv/index.html"),
        "host=blue version=1\n",
    )
    .unwrap();
    let run = baton(&lab_config(), &["status", "--json", "web"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    let p = problems(&run.json(), "web");
    assert!(
        p.contains("standby green fails check page: body lacks"),
        "{p}"
    );
    assert!(!p.contains("primary blue fails"), "{p}");
}

#[test]
fn check_accepts_the_lab_and_refuses_a_broken_file_changing_nothing() {
    let _lab = lab();
    let ok = baton(&lab_config(), &["check"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout
            .contains("configuration is valid (7 pairs: api, api6, far, lb, pg, web, web6)"),
        "{}",
        ok.stdout
    );
    let dir = with_pair("web.toml", |t| t.replace("198.18.0.100/24", "198.18.0.100"));
    let bad = baton(&dir.path().join("baton.toml"), &["check"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stdout.contains("web.toml:"), "{}", bad.stdout);
    assert!(
        bad.stdout.contains("is not a virtual IP in CIDR form"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout
            .contains("fix: write the address with its prefix length"),
        "{}",
        bad.stdout
    );
    let status = baton(&dir.path().join("baton.toml"), &["status"]);
    assert_eq!(status.code, 2);
    assert!(
        !dir.path().join("state").exists(),
        "a refused configuration wrote state"
    );
}

/// An ssh-agent of the test's own, ended (by its pid) on drop.
struct Agent {
    child: std::process::Child,
    sock: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(sock.exists(), "ssh-agent did not start");
        Agent {
            child,
            sock,
            _dir: dir,
        }
    }

    fn add(&self, key: &str) {
        let out = std::process::Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn without_an_identity_the_ssh_agent_authenticates() {
    let _lab = lab();
    let dir = with_pair("baton.toml", |t| {
        t.lines()
            .filter(|l| !l.starts_with("identity"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    let cfg = dir.path().join("baton.toml");
    let agent = Agent::start();
    let sock = agent.sock.display().to_string();
    // An agent without the key: refused, and the message says the agent holds none.
    let run = baton_env(
        &cfg,
        &["status", "--json", "web"],
        &[("SSH_AUTH_SOCK", &sock)],
    );
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(
        problems(&run.json(), "web").contains("holds no keys"),
        "{}",
        run.stdout
    );
    agent.add(&format!("{LAB}/ssh/id_ed25519"));
    let run = baton_env(
        &cfg,
        &["status", "--json", "web"],
        &[("SSH_AUTH_SOCK", &sock)],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn tcp_dns_and_command_checks_run_against_the_real_servers() {
    let _lab = lab();
    let extra = "\n[[checks]]\nname = \"port\"\nkind = \"tcp\"\nport = 80\n\n[[checks]]\nname = \"sshd\"\nkind = \"command\"\ncommand = \"cat /srv/baton-lab/health\"\nexpect_output = \"ok {host}\"\n\n[[checks]]\nname = \"ns\"\nkind = \"dns\"\nquery = \"ns.baton.test.\"\nserver = \"198.18.0.53:53\"\nexpect = \"198.18.0.53\"\n";
    let dir = with_pair("web.toml", move |t| t + extra);
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.json();
    let checks = &pair(&r, "web")["hosts"][1]["checks"];
    let names: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["page", "port", "sshd", "ns"]);
    assert!(
        checks.as_array().unwrap().iter().all(|c| c["ok"] == true),
        "{checks}"
    );

    // Each kind fails when what it checks is not there.
    let bad = "\n[[checks]]\nname = \"closed\"\nkind = \"tcp\"\nport = 81\ntimeout = \"1s\"\n\n[[checks]]\nname = \"wrong-output\"\nkind = \"command\"\ncommand = \"cat /srv/baton-lab/health\"\nexpect_output = \"ok nobody\"\n\n[[checks]]\nname = \"wrong-answer\"\nkind = \"dns\"\nquery = \"ns.baton.test.\"\nserver = \"198.18.0.53:53\"\nexpect = \"198.18.0.1\"\n";
    let dir = with_pair("web.toml", move |t| t + bad);
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "web"]);
    assert_eq!(run.code, 4);
    let p = problems(&run.json(), "web");
    for expected in [
        "fails check closed",
        "fails check wrong-output: output lacks",
        "fails check wrong-answer: answer",
    ] {
        assert!(p.contains(expected), "missing {expected:?}: {p}");
    }
}

#[test]
fn https_checks_keep_the_service_name_and_verify_the_certificate() {
    let _lab = lab();
    let https = |url: &str, ca: bool| {
        format!(
            "\n[[checks]]\nname = \"tls\"\nkind = \"https\"\nurl = \"{url}\"\nexpect_body = \"host={{host}} \"\ntimeout = \"2s\"\n{}",
            if ca { format!("ca_file = \"{LAB}/keys/tls-ca.crt\"\n") } else { String::new() }
        )
    };
    // Pinned to each host's own address, named as the service: each host answers as itself.
    let good = https("https://app.baton.test/", true);
    let dir = with_pair("api.toml", move |t| t + &good);
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "api"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.json();
    for i in 0..2 {
        let tls = &pair(&r, "api")["hosts"][i]["checks"][1];
        assert_eq!(tls["ok"], true, "{tls}");
    }
    // An unknown CA and a name the certificate does not carry both fail.
    let untrusted = https("https://app.baton.test/", false);
    let dir = with_pair("api.toml", move |t| t + &untrusted);
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "api"]);
    assert_eq!(run.code, 4);
    assert!(
        problems(&run.json(), "api")
            .to_lowercase()
            .contains("certificate"),
        "{}",
        run.stdout
    );
    let misnamed = https("https://other.baton.test/", true);
    let dir = with_pair("api.toml", move |t| t + &misnamed);
    let run = baton(&dir.path().join("baton.toml"), &["status", "--json", "api"]);
    assert_eq!(run.code, 4);
    assert!(
        problems(&run.json(), "api").contains("fails check tls"),
        "{}",
        run.stdout
    );
}

#[test]
fn output_without_a_terminal_has_no_colour_and_progress_names_its_run_and_hosts_alike() {
    let _lab = lab();
    // Logs on stderr that is a pipe: plain text, no escape sequences.
    let verbose = baton(&lab_config(), &["-vv", "status", "web"]);
    assert_eq!(verbose.code, 0, "{}", verbose.stdout);
    assert!(!verbose.stderr.is_empty(), "-vv logged nothing");
    assert!(
        !verbose.stderr.contains('\u{1b}'),
        "escape sequences in piped logs: {:?}",
        &verbose.stderr[..verbose.stderr.len().min(300)]
    );
    // Every JSON progress event, the first one included, names the run;
    // the preflight's begin and end name the hosts the same way.
    let run = baton(&lab_config(), &["--json", "switchover", "web"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let id = events.last().unwrap()["run"].as_str().unwrap().to_string();
    assert!(!id.is_empty());
    assert!(
        events.iter().all(|e| e["run"] == id.as_str()),
        "{}",
        run.stdout
    );
    let preflight: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["step"] == "preflight").collect();
    assert_eq!(preflight.len(), 2, "{}", run.stdout);
    assert_eq!(preflight[0]["host"], preflight[1]["host"]);
    assert_eq!(preflight[0]["host"], "blue,green");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    use std::io::Read;
    let _lab = lab();
    for args in [&["plan", "web", "api"][..], &["log"][..], &["status"][..]] {
        let mut child = baton_command(&lab_config(), args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 1];
        let mut stdout = child.stdout.take().unwrap();
        let _ = stdout.read(&mut first);
        drop(stdout); // `| head -c1`
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
}

#[test]
fn no_recorded_text_can_forge_a_line_of_the_log() {
    let _lab = lab();
    let refused = baton(
        &lab_config(),
        &[
            "switchover",
            "web",
            "--reason",
            "fine\n2026-01-01 web FORGED ok",
        ],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("control characters"),
        "{}",
        refused.stderr
    );
    assert!(
        !std::path::Path::new(LAB).join("state/web.journal").exists(),
        "nothing was done"
    );
    // An operator name (from the environment) holding a newline and an
    // escape sequence is recorded as it is, and shown inert.
    let run = baton_env(
        &lab_config(),
        &["switchover", "web", "--reason", "plain"],
        &[(
            "SUDO_USER",
            "eve\n2026-01-01T00:00:00Z  web  FORGED\u{1b}[2J",
        )],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let log = baton(&lab_config(), &["log", "web"]);
    assert_eq!(log.stdout.lines().count(), 1, "{}", log.stdout);
    assert!(log.stdout.contains("eve\\n2026"), "{}", log.stdout);
    assert!(!log.stdout.contains('\u{1b}'), "{}", log.stdout);
    let id = log.stdout.split_whitespace().nth(2).unwrap().to_string();
    let full = baton(&lab_config(), &["log", "web", "--run", &id]);
    assert!(
        full.stdout
            .lines()
            .all(|l| !l.contains("FORGED") || l.contains("eve\\n")),
        "{}",
        full.stdout
    );
    assert!(!full.stdout.contains('\u{1b}'));
}
