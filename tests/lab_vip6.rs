//! IPv6 against the lab's real servers: the dual-stack VIP pair `web6`
//! (hosts blue6 and green6 reached over IPv4, the VIP fd00:198:18::160/64)
//! under an IPv6 poller in the client's namespace (apply, switchover,
//! status, a failover whose fence is a neighbour solicitation), and the
//! DNS pair `api6` of IPv6 hosts, whose record is AAAA.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const VIP6: &str = "fd00:198:18::160";
const TARGET6: &str = "[fd00:198:18::160]:80";

fn page(host: &str) -> String {
    fs::read_to_string(Path::new(LAB).join(format!("hosts/{host}/srv/index.html"))).unwrap()
}

fn holds_vip6(host: &str) -> bool {
    netns_ok(
        &format!("baton-{host}"),
        &["ip", "-o", "-6", "addr", "show", "dev", "eth0"],
    )
    .contains(&format!("inet6 {VIP6}/64 "))
}

fn lab_state() -> PathBuf {
    Path::new(LAB).join("state")
}

/// The lab's configuration with `quiesce = "20ms"` on web6 (its own state
/// directory): a connection open on the old holder when the address leaves
/// it is lost without the hold (BENCHMARKS.md, VIP gap), so a poller that
/// must see no failed request needs it, as it does for IPv4.
fn web6_quiesced() -> tempfile::TempDir {
    with_pair("web6.toml", |t| {
        add_traffic_keys(&t, "quiesce = \"20ms\"\n")
    })
}

/// The link-layer address of a host's eth0.
fn mac(host: &str) -> String {
    netns_ok(
        &format!("baton-{host}"),
        &["cat", "/sys/class/net/eth0/address"],
    )
    .trim()
    .to_string()
}

/// Whom the client's neighbour cache sends the VIP to (its link-layer
/// address), if it has an entry.
fn client_neighbour() -> Option<String> {
    let out = netns_ok("baton-client", &["ip", "-6", "neigh", "show", VIP6]);
    let w: Vec<&str> = out.split_whitespace().collect();
    w.iter()
        .position(|x| *x == "lladdr")
        .and_then(|i| w.get(i + 1))
        .map(|s| s.to_string())
}

#[test]
fn apply_on_web6_under_an_ipv6_poller_fails_no_request() {
    let _lab = lab();
    let dir = web6_quiesced();
    let (cfg, state) = (dir.path().join("baton.toml"), dir.path().join("state"));
    assert!(holds_vip6("blue6") && !holds_vip6("green6"));
    let client = probe_at(TARGET6, 200, 8.0);
    std::thread::sleep(Duration::from_millis(1500));
    let run = baton(
        &cfg,
        &[
            "apply",
            "web6",
            "--change",
            "v2",
            "--reason",
            "ipv6 lab test",
        ],
    );
    let all = answers(client);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("OK: done: traffic is on green6, blue6 is the standby"),
        "{}",
        run.stdout
    );
    // Every request of the poller was answered, first by blue6, last by green6.
    assert!(all.len() > 1000, "{} requests", all.len());
    assert_eq!(failures(&all), Vec::<String>::new());
    assert_eq!(all[0].host.as_deref(), Ok("blue6"));
    assert_eq!(all.last().unwrap().host.as_deref(), Ok("green6"));
    assert_eq!(page("blue6"), "host=blue6 version=2\n");
    assert_eq!(page("green6"), "host=green6 version=2\n");
    assert!(holds_vip6("green6") && !holds_vip6("blue6"));
    // The address went on green6 nodad and was announced by the Python
    // sender through sudo; the client follows green6's link-layer address.
    let switch = step_commands(&state, "web6", "switch");
    assert!(
        switch.iter().any(|(h, s, c, _)| h == "green6"
            && *s == 0
            && c.contains(&format!("addr add {VIP6}/64 dev eth0 nodad"))),
        "{switch:#?}"
    );
    assert!(
        switch
            .iter()
            .any(|(h, s, c, _)| h == "green6" && *s == 0 && c.contains("sudo -n python3 -c")),
        "{switch:#?}"
    );
    // Its report, read after the next step: three advertisements sent.
    let report = step_commands(&state, "web6", "verify_service");
    let (_, status, _, out) = report
        .iter()
        .find(|(h, _, c, _)| h == "green6" && c.starts_with("cat -- "))
        .unwrap_or_else(|| panic!("no report read: {report:#?}"));
    assert_eq!(*status, 0);
    assert!(out.contains("sent neighbour advertisement 1 of 3"), "{out}");
    assert_eq!(client_neighbour(), Some(mac("green6")));
}

#[test]
fn switchover_of_web6_moves_the_vip_and_status_names_the_holder() {
    let _lab = lab();
    let dir = web6_quiesced();
    let cfg = dir.path().join("baton.toml");
    let status = baton(&cfg, &["status", "--json", "web6"]);
    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    assert_eq!(status.json()["pairs"][0]["holder"]["detail"], "blue6");
    let client = probe_at(TARGET6, 200, 6.0);
    std::thread::sleep(Duration::from_millis(1000));
    let run = baton(&cfg, &["switchover", "web6", "--reason", "ipv6"]);
    let all = answers(client);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(failures(&all), Vec::<String>::new());
    assert!(holds_vip6("green6") && !holds_vip6("blue6"));
    // The hold was in nftables' IPv6 set, on blue6, before the address left it.
    let switch = step_commands(&dir.path().join("state"), "web6", "switch");
    let hold = format!("add element inet baton quiesce6 {{ {VIP6} timeout 2020ms }}");
    let at = |host: &str, piece: &str| {
        switch
            .iter()
            .position(|(h, s, c, _)| h == host && *s == 0 && c.contains(piece))
            .unwrap_or_else(|| panic!("no `{piece}` on {host}: {switch:#?}"))
    };
    assert!(at("blue6", &hold) < at("blue6", "addr del"));
    let status = baton(&cfg, &["status", "--json", "web6"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert_eq!(status.json()["pairs"][0]["holder"]["detail"], "green6");
    // A client reaching the VIP sees green6.
    let seen = netns_ok(
        "baton-client",
        &[
            "curl",
            "-s",
            "--max-time",
            "2",
            &format!("http://[{VIP6}]/"),
        ],
    );
    assert_eq!(seen, "host=green6 version=1\n");
    // Back again.
    let back = baton(&cfg, &["switchover", "web6"]);
    assert_eq!(back.code, 0, "{}", back.stdout);
    assert!(holds_vip6("blue6") && !holds_vip6("green6"));
}

#[test]
fn status_reports_a_vip_whose_duplicate_address_detection_failed() {
    let _lab = lab();
    // Someone adds the VIP on green6 by hand, with duplicate address
    // detection: blue6 answers for it, so it ends `dadfailed`.
    netns_ok(
        "baton-green6",
        &["ip", "addr", "add", &format!("{VIP6}/64"), "dev", "eth0"],
    );
    std::thread::sleep(Duration::from_millis(3000));
    let flags = netns_ok(
        "baton-green6",
        &["ip", "-o", "-6", "addr", "show", "dev", "eth0"],
    );
    assert!(flags.contains("dadfailed"), "{flags}");
    let status = baton(&lab_config(), &["status", "--json", "web6"]);
    assert_ne!(status.code, 0, "{}", status.stdout);
    assert!(status.stdout.contains("dadfailed"), "{}", status.stdout);
    // A run refuses to act on it.
    let run = baton(&lab_config(), &["switchover", "web6"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(holds_vip6("blue6"));
}

/// python3 hidden from a host (/dev/null bound over it in the mount
/// namespace its sshd shares with its logins) until dropped.
struct NoPython(String);

impl NoPython {
    fn on(host: &str) -> NoPython {
        let pid = fs::read_to_string(Path::new(LAB).join(format!("hosts/{host}/sshd.pid")))
            .unwrap()
            .trim()
            .to_string();
        let real = fs::canonicalize("/usr/bin/python3").unwrap();
        let out = std::process::Command::new("nsenter")
            .args([
                "--target",
                &pid,
                "--mount",
                "--",
                "mount",
                "--bind",
                "/dev/null",
            ])
            .arg(&real)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        NoPython(pid)
    }
}

impl Drop for NoPython {
    fn drop(&mut self) {
        let real = fs::canonicalize("/usr/bin/python3").unwrap();
        let _ = std::process::Command::new("nsenter")
            .args(["--target", &self.0, "--mount", "--", "umount"])
            .arg(&real)
            .status();
    }
}

#[test]
fn without_python3_the_vip_moves_unannounced_and_status_and_the_journal_say_so() {
    let _lab = lab();
    let _hidden = NoPython::on("green6");
    let status = baton(&lab_config(), &["status", "--json", "web6"]);
    let pair = &status.json()["pairs"][0];
    assert_eq!(status.code, 3, "{}", status.stdout);
    assert_eq!(pair["holder"]["detail"], "blue6");
    let kinds: Vec<&str> = pair["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["no_announcer"], "{pair}");
    let run = baton(
        &lab_config(),
        &["switchover", "web6", "--reason", "no python3"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(holds_vip6("green6") && !holds_vip6("blue6"));
    let switch = step_end(&lab_state(), "web6", "switch");
    assert!(
        switch["detail"]
            .as_str()
            .unwrap()
            .contains("NOT announced: green6 has no python3"),
        "{switch}"
    );
}

#[test]
fn failover_of_web6_proves_the_vip_gone_by_neighbour_solicitation() {
    let _lab = lab();
    // blue6's sshd is down but it still holds and answers for the VIP: the
    // forced failover's fence finds it on the link and nothing moves.
    stop("blue6", "sshd");
    let run = baton(
        &lab_config(),
        &["failover", "web6", "--force", "--reason", "blue6 sshd"],
    );
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("is still answered on the link by"),
        "{}",
        run.stdout
    );
    assert!(holds_vip6("blue6") && !holds_vip6("green6"));
    drop(_lab);

    // blue6 is cut off: nobody answers, green6 takes the address.
    let _lab = lab();
    netns_ok("baton-blue6", &["ip", "link", "set", "eth0", "down"]);
    let run = baton(
        &lab_config(),
        &["failover", "web6", "--reason", "blue6 died"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let fence = step_end(&lab_state(), "web6", "fence");
    assert!(
        fence["detail"].as_str().unwrap().contains(&format!(
            "no host answers for {VIP6} (neighbour solicitation from green6)"
        )),
        "{fence}"
    );
    assert!(holds_vip6("green6"));
    let seen = netns_ok(
        "baton-client",
        &[
            "curl",
            "-s",
            "--max-time",
            "3",
            &format!("http://[{VIP6}]/"),
        ],
    );
    assert_eq!(seen, "host=green6 version=1\n");
    netns_ok("baton-blue6", &["ip", "link", "set", "eth0", "up"]);
    let rejoin = baton(&lab_config(), &["rejoin", "web6"]);
    assert_eq!(rejoin.code, 0, "{}", rejoin.stdout);
    assert!(holds_vip6("green6") && !holds_vip6("blue6"));
}

/// What both authoritative servers serve for app6.baton.test. AAAA.
fn aaaa() -> (String, String) {
    let at = |server: &str| {
        netns_ok(
            CTL,
            &[
                "dig",
                "+short",
                "+norec",
                server,
                "app6.baton.test.",
                "AAAA",
            ],
        )
        .trim()
        .to_string()
    };
    secondary_follows();
    (at("@198.18.0.53"), at("@198.18.0.54"))
}

#[test]
fn apply_on_api6_switches_the_aaaa_record() {
    let _lab = lab();
    assert_eq!(
        aaaa(),
        ("fd00:198:18::25".to_string(), "fd00:198:18::25".to_string())
    );
    let status = baton(&lab_config(), &["status", "--json", "api6"]);
    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    assert_eq!(status.json()["pairs"][0]["holder"]["detail"], "amber6");
    let run = baton(&lab_config(), &["apply", "api6", "--change", "v2"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        aaaa(),
        ("fd00:198:18::26".to_string(), "fd00:198:18::26".to_string())
    );
    assert_eq!(page("amber6"), "host=amber6 version=2\n");
    assert_eq!(page("violet6"), "host=violet6 version=2\n");
    let update = step_commands(&lab_state(), "api6", "switch")
        .into_iter()
        .find(|(_, _, c, _)| c.starts_with("UPDATE"))
        .expect("an UPDATE");
    assert!(
        update.2.contains(
            "prerequisite app6.baton.test. AAAA is exactly fd00:198:18::25; delete app6.baton.test. AAAA fd00:198:18::25; add app6.baton.test. 5 AAAA fd00:198:18::26"
        ),
        "{}",
        update.2
    );
    // The record is served: a client resolving it reaches violet6 over IPv6.
    let seen = netns_ok(
        "baton-client",
        &["curl", "-s", "--max-time", "2", "http://[fd00:198:18::26]/"],
    );
    assert_eq!(seen, "host=violet6 version=2\n");
}
