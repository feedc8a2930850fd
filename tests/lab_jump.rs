//! Pair `far` behind the jump host `bastion` (198.18.0.60): its hosts fara
//! and farb (198.18.200.11, .12) have no route from the controller, so
//! every command reaches them through the bastion's verified SSH session.
//! Proves: the isolation itself; `check` showing each host's route;
//! status, plan, apply, switchover, failover, rejoin and log on far; a
//! chain of two jump hosts; an OpenSSH client configuration giving the
//! jump host (`[ssh] config`); and a bastion whose host key is unknown
//! refused before anything reaches the hosts.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const FARA: &str = "198.18.200.11";
const FARB: &str = "198.18.200.12";
const BASTION: &str = "198.18.0.60";

/// The version a far host serves, asked from the bastion (the only lab
/// host with a route to both subnets).
fn version_on(address: &str) -> String {
    let page = netns_ok(
        "baton-bastion",
        &[
            "curl",
            "-fsS",
            "--max-time",
            "2",
            &format!("http://{address}/"),
        ],
    );
    page.split_whitespace()
        .find_map(|w| w.strip_prefix("version="))
        .unwrap_or("?")
        .to_string()
}

/// Who answers on far's VIP, asked from the bastion.
fn vip_holder() -> String {
    let page = netns_ok(
        "baton-bastion",
        &["curl", "-fsS", "--max-time", "2", "http://198.18.200.100/"],
    );
    page.split_whitespace()
        .find_map(|w| w.strip_prefix("host="))
        .unwrap_or("?")
        .to_string()
}

#[test]
fn far_is_listed_and_unreachable_from_the_controller_but_through_the_bastion() {
    let _lab = lab();
    let list = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab"))
        .arg("list")
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let far: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("far "))
        .expect("far in scripts/lab list")
        .split_whitespace()
        .collect();
    assert_eq!(
        far,
        [
            "far",
            "dev",
            "false",
            "vip",
            "fara",
            FARA,
            "farb",
            FARB,
            "198.18.200.100/24"
        ]
    );
    // No route from the controller: the connection fails at once.
    let direct = netns(CTL, &["bash", "-c", &format!(": </dev/tcp/{FARA}/22")]);
    assert!(!direct.status.success());
    let why = String::from_utf8_lossy(&direct.stderr);
    assert!(why.contains("unreachable"), "{why}");
    // check says how each host is reached.
    let check = baton(&lab_config(), &["check", "far"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains(&format!(
            "far: fara (batonlab@{FARA} via batonlab@{BASTION}:22) (from [ssh] jump)"
        )),
        "{}",
        check.stdout
    );
    let json = baton(&lab_config(), &["check", "far", "--json"]);
    let ssh = &json.json()["ssh"]["far"]["farb"];
    assert_eq!(ssh["host"], FARB);
    assert_eq!(ssh["jump"][0], format!("batonlab@{BASTION}:22"));
}

#[test]
fn every_command_works_on_the_pair_behind_the_bastion() {
    let _lab = lab();
    let cfg = lab_config();
    let status = baton(&cfg, &["status", "far", "--json"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    let pair = &status.json()["pairs"][0];
    assert_eq!(pair["holder"]["detail"], "fara", "{pair}");

    let plan = baton(&cfg, &["plan", "far", "--change", "v2"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("apply_standby"), "{}", plan.stdout);

    let apply = baton(&cfg, &["apply", "far", "--change", "v2"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(
        (version_on(FARA), version_on(FARB)),
        ("2".into(), "2".into())
    );
    assert_eq!(vip_holder(), "farb");

    let switch = baton(&cfg, &["switchover", "far"]);
    assert_eq!(switch.code, 0, "{}{}", switch.stdout, switch.stderr);
    assert_eq!(vip_holder(), "fara");

    // fara's web server stops: a failover fences it (the VIP removed over
    // SSH, through the bastion) and moves traffic to farb.
    stop("fara", "nginx");
    let failover = baton(&cfg, &["failover", "far"]);
    assert_eq!(failover.code, 0, "{}{}", failover.stdout, failover.stderr);
    assert_eq!(vip_holder(), "farb");
    let up = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab"))
        .arg("up")
        .output()
        .unwrap();
    assert!(up.status.success(), "the lab restarts fara's nginx");
    let rejoin = baton(&cfg, &["rejoin", "far"]);
    assert_eq!(rejoin.code, 0, "{}{}", rejoin.stdout, rejoin.stderr);
    let status = baton(&cfg, &["status", "far"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);

    let log = baton(&cfg, &["log", "far"]);
    assert_eq!(log.stdout.lines().count(), 4, "{}", log.stdout);
}

/// A custom configuration of pair far alone, after `edit` changed its file.
fn far_only(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    custom_config_of(
        &["far.toml"],
        move |name, t| {
            if name == "far.toml" {
                edit(t)
            } else {
                t
            }
        },
    )
}

#[test]
fn a_chain_of_two_jump_hosts_and_an_openssh_configuration_reach_far() {
    let _lab = lab();
    // Two hops: the bastion, then the bastion again on its second port
    // (known_hosts needs that [address]:port entry, as OpenSSH would).
    let dir = far_only(|t| {
        t.replace(
            &format!("jump = \"batonlab@{BASTION}:22\""),
            &format!("jump = \"batonlab@{BASTION}:22,batonlab@{BASTION}:2222\""),
        )
    });
    let known = dir.path().join("known_hosts");
    let mut lines = fs::read_to_string(Path::new(LAB).join("ssh/known_hosts")).unwrap();
    lines.push_str(&format!("[{BASTION}]:2222 {}\n", host_key("bastion")));
    fs::write(&known, lines).unwrap();
    let cfg = use_known_hosts(dir.path(), &known);
    let status = baton(&cfg, &["status", "far"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    let check = baton(&cfg, &["check", "far"]);
    assert!(
        check.stdout.contains(&format!(
            "via batonlab@{BASTION}:22, batonlab@{BASTION}:2222)"
        )),
        "{}",
        check.stdout
    );

    // The jump host from an OpenSSH client configuration instead.
    let dir = far_only(|t| t.replace(&format!("jump = \"batonlab@{BASTION}:22\"\n"), ""));
    let ssh_config = dir.path().join("ssh_config");
    fs::write(
        &ssh_config,
        format!(
            "Host fara farb\n    ProxyJump gate\n    ServerAliveInterval 30\n\nHost gate\n    HostName {BASTION}\n    User batonlab\n"
        ),
    )
    .unwrap();
    let cfg = dir.path().join("baton.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(
        &cfg,
        text.replace(
            "[ssh]\n",
            &format!("[ssh]\nconfig = {:?}\n", ssh_config.display().to_string()),
        ),
    )
    .unwrap();
    let check = baton(&cfg, &["check", "far"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains(&format!(
            "far: fara (batonlab@{FARA} via batonlab@{BASTION}:22) (from {} Host fara)",
            ssh_config.display()
        )),
        "{}",
        check.stdout
    );
    let apply = baton(&cfg, &["apply", "far", "--change", "v2"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(vip_holder(), "farb");
}

#[test]
fn a_jump_host_with_an_unknown_key_is_refused_and_nothing_reaches_the_hosts() {
    let _lab = lab();
    let dir = far_only(|t| t);
    let known = dir.path().join("known_hosts");
    let lines: String = fs::read_to_string(Path::new(LAB).join("ssh/known_hosts"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(&format!("{BASTION} ")))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&known, lines).unwrap();
    let cfg = use_known_hosts(dir.path(), &known);
    let apply = baton(&cfg, &["apply", "far", "--change", "v2"]);
    assert_eq!(apply.code, 4, "{}{}", apply.stdout, apply.stderr);
    let said = format!("{}{}", apply.stdout, apply.stderr);
    assert!(
        said.contains(&format!("jump host {BASTION}")) && said.contains("host key refused"),
        "{said}"
    );
    assert_eq!(
        (version_on(FARA), version_on(FARB)),
        ("1".into(), "1".into())
    );
    assert_eq!(vip_holder(), "fara");
}

/// A jump host that does not answer stops the run before anything reaches
/// the hosts, naming the jump host.
#[test]
fn an_unreachable_jump_host_is_named_and_nothing_changes() {
    let _lab = lab();
    let dir = far_only(|t| {
        t.replace(
            &format!("jump = \"batonlab@{BASTION}:22\""),
            &format!("jump = \"batonlab@{BASTION}:2299\""),
        )
    });
    let cfg = dir.path().join("baton.toml");
    let apply = baton(&cfg, &["apply", "far", "--change", "v2"]);
    assert_eq!(apply.code, 4, "{}{}", apply.stdout, apply.stderr);
    let said = format!("{}{}", apply.stdout, apply.stderr);
    assert!(
        said.contains(&format!("jump host {BASTION}")) && said.contains("cannot connect"),
        "{said}"
    );
    assert_eq!(
        (version_on(FARA), version_on(FARB)),
        ("1".into(), "1".into())
    );
    assert_eq!(vip_holder(), "fara");
}
