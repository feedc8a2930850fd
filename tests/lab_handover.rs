//! The overlap handover of a VIP (`handover = "overlap"`, issue 19)
//! against the lab's real hosts: the new host takes the address before the
//! old one lets go, so that a client opening a connection per request
//! never waits for a SYN's retransmission, and a connection kept open on
//! the old host is served there during the overlap (the new host hands its
//! packets back); afterwards nothing is left (no lifetime on the address,
//! no element in baton's `ip baton` table). The lab's web6 pair (an IPv6
//! VIP on hosts baton reaches over IPv4) overlaps by default, handing
//! packets back to the old host's own IPv6 address; without such an
//! address it falls back to the classic order, and status and its journal
//! say so; with the `failpoints` feature, a
//! controller killed inside the overlap leaves two holders only until the
//! old host's lifetime ends, and `recover` goes on from there.
//!
//! The clients are `examples/probe` of the same build (`cargo test` builds
//! it; with `--test lab_handover` alone, `cargo build --example probe`
//! first, with the same features).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const VIP: &str = "198.18.0.100";

fn overlap(name: &str, text: String) -> String {
    if name == "web.toml" {
        add_traffic_keys(&text, "handover = \"overlap\"\noverlap = \"1s\"\n")
    } else {
        text
    }
}

fn addrs(host: &str) -> String {
    netns_ok(
        &format!("baton-{host}"),
        &["ip", "-o", "addr", "show", "dev", "eth0"],
    )
}

fn holds(host: &str) -> bool {
    addrs(host).contains(&format!("inet {VIP}/"))
}

/// The benchmark client in one of its modes (`--seq`, `--pool N`, or
/// none: a new connection per request at `rate`), on the web pair's VIP.
fn client(mode: &[&str], rate: u32, seconds: f64) -> Child {
    client_at(&format!("{VIP}:80"), mode, rate, seconds)
}

/// The same on `target` (address:port).
fn client_at(target: &str, mode: &[&str], rate: u32, seconds: f64) -> Child {
    let baton = std::path::PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let probe = baton
        .parent()
        .map(|d| d.join("examples/probe"))
        .expect("the build directory");
    assert!(probe.exists(), "{} is not built", probe.display());
    Command::new("ip")
        .args(["netns", "exec", "baton-client"])
        .arg(probe)
        .args(mode)
        .args([target, &rate.to_string(), &seconds.to_string(), "3000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client")
}

/// The client's lines: (send time in µs, latency in ms, host or FAIL,
/// detail).
fn lines(child: Child) -> Vec<(u128, f64, String, String)> {
    let out = child.wait_with_output().expect("the client ends");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.splitn(4, ' ').collect();
            Some((
                w.first()?.parse::<u128>().ok()?,
                w.get(1)?.parse::<f64>().ok()? / 1000.0,
                w.get(2)?.to_string(),
                w.get(3)?.to_string(),
            ))
        })
        .collect()
}

fn handback_elements(host: &str) -> String {
    String::from_utf8_lossy(
        &netns(
            &format!("baton-{host}"),
            &["nft", "list", "map", "ip", "baton", "handback"],
        )
        .stdout,
    )
    .into_owned()
}

#[test]
fn an_overlap_switchover_loses_no_syn_serves_open_connections_and_leaves_nothing() {
    let _lab = lab();
    let dir = custom_config(overlap);
    let cfg = dir.path().join("baton.toml");
    let fresh = client(&[], 200, 6.0);
    let pool = client(&["--pool", "4"], 50, 6.0);
    std::thread::sleep(Duration::from_secs(1));
    let run = baton(&cfg, &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let fresh = lines(fresh);
    let pool = lines(pool);
    // New connections: none failed, none waited for a retransmitted SYN
    // (a second; the bound leaves room for a busy machine).
    assert!(fresh.len() > 900, "{} requests", fresh.len());
    let failed: Vec<_> = fresh.iter().filter(|l| l.2 == "FAIL").collect();
    assert!(failed.is_empty(), "{failed:?}");
    let slowest = fresh.iter().map(|l| l.1).fold(0.0, f64::max);
    assert!(slowest < 500.0, "a request waited {slowest} ms");
    // Both hosts answered on new connections: the switch happened.
    assert!(fresh.iter().any(|l| l.2 == "blue") && fresh.iter().any(|l| l.2 == "green"));
    // Kept-alive connections: every request was answered, at worst by its
    // one retry (a reset when blue let go, retried on a new connection to
    // green); none waited for a timeout.
    let mut by_send: std::collections::BTreeMap<u128, Vec<&str>> = Default::default();
    for l in &pool {
        by_send.entry(l.0).or_default().push(&l.2);
    }
    assert!(by_send.len() > 500, "{} requests", by_send.len());
    let lost: Vec<_> = by_send
        .iter()
        .filter(|(_, hosts)| hosts.iter().all(|h| *h == "FAIL"))
        .collect();
    assert!(lost.is_empty(), "requests without an answer: {lost:?}");
    let timeouts: Vec<_> = pool.iter().filter(|l| l.3.starts_with("timeout")).collect();
    assert!(timeouts.is_empty(), "{timeouts:?}");
    // The journal says which order ran.
    let state = dir.path().join("state");
    let detail = step_end(&state, "web", "switch")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("taken by green in"), "{detail}");
    assert!(detail.contains("(handover overlap)"), "{detail}");
    // Exactly one holder, for good, and no hand-back left.
    assert!(holds("green") && !holds("blue"));
    let green = addrs("green");
    let line = green
        .lines()
        .find(|l| l.contains(&format!("inet {VIP}/")))
        .unwrap();
    assert!(line.contains("valid_lft forever"), "{line}");
    assert!(
        !handback_elements("green").contains(VIP),
        "{}",
        handback_elements("green")
    );
    // And back, in the same order.
    let run = baton(&cfg, &["switchover", "web"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(holds("blue") && !holds("green"));
}

const VIP6: &str = "fd00:198:18::160";

/// The lab's own IPv6 addresses of web6's hosts (baton reaches them over
/// IPv4).
const OWN6: [(&str, &str); 2] = [
    ("blue6", "fd00:198:18::15/64"),
    ("green6", "fd00:198:18::16/64"),
];

#[test]
fn an_ipv6_vip_on_dual_stack_hosts_overlaps_by_default_and_loses_no_syn() {
    let _lab = lab();
    // web6 as the lab writes it: no `handover`, so the overlap (the
    // default); baton reaches the hosts over IPv4 and hands packets back to
    // the old host's own IPv6 address, which it asks the host for.
    let cfg = lab_config();
    let status = baton(&cfg, &["status", "web6", "--json"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    assert!(!status.stdout.contains("no_overlap"), "{}", status.stdout);
    let fresh = client_at(&format!("[{VIP6}]:80"), &[], 200, 5.0);
    std::thread::sleep(Duration::from_secs(1));
    let run = baton(&cfg, &["switchover", "web6"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let fresh = lines(fresh);
    assert!(fresh.len() > 700, "{} requests", fresh.len());
    let failed: Vec<_> = fresh.iter().filter(|l| l.2 == "FAIL").collect();
    assert!(failed.is_empty(), "{failed:?}");
    let slowest = fresh.iter().map(|l| l.1).fold(0.0, f64::max);
    assert!(slowest < 500.0, "a request waited {slowest} ms");
    assert!(fresh.iter().any(|l| l.2 == "blue6") && fresh.iter().any(|l| l.2 == "green6"));
    let detail = step_end(&Path::new(LAB).join("state"), "web6", "switch")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("taken by green6 in"), "{detail}");
    assert!(detail.contains("(handover overlap)"), "{detail}");
    let line = netns_ok("baton-green6", &["ip", "-o", "addr", "show", "dev", "eth0"])
        .lines()
        .find(|l| l.contains(&format!("inet6 {VIP6}/")))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("valid_lft forever"), "{line}");
    assert!(
        !netns_ok("baton-blue6", &["ip", "-o", "addr", "show", "dev", "eth0"])
            .contains(&format!("inet6 {VIP6}/"))
    );
}

/// `status web6 --json` on `cfg`: its exit, and the messages of its
/// `no_overlap` problems.
fn no_overlap(cfg: &Path) -> (i32, Vec<String>) {
    let status = baton(cfg, &["status", "web6", "--json"]);
    let problems = status.json()["pairs"][0]["problems"].clone();
    let found = problems
        .as_array()
        .unwrap_or_else(|| panic!("{}{}", status.stdout, status.stderr))
        .iter()
        .filter(|p| p["kind"] == "no_overlap")
        .map(|p| p["message"].as_str().unwrap_or_default().to_string())
        .collect();
    (status.code, found)
}

/// Gives web6's hosts their own IPv6 addresses back when dropped.
struct Own6Back;

impl Drop for Own6Back {
    fn drop(&mut self) {
        for (host, a) in OWN6 {
            let _ = netns(
                &format!("baton-{host}"),
                &["ip", "addr", "replace", a, "dev", "eth0", "nodad"],
            );
        }
    }
}

#[test]
fn an_overlap_the_hosts_cannot_do_falls_back_to_the_classic_order_and_says_so() {
    let _lab = lab();
    // web6 on hosts without an own IPv6 address: the hand-back has nowhere
    // to send the packets of the old host's connections.
    let _back = Own6Back;
    for (host, a) in OWN6 {
        netns_ok(
            &format!("baton-{host}"),
            &["ip", "addr", "del", a, "dev", "eth0"],
        );
    }
    // By default the overlap is only noted: status stays ok (exit 0).
    let (code, noted) = no_overlap(&lab_config());
    assert_eq!(code, 0);
    assert_eq!(noted.len(), 2, "{noted:?}");
    // Chosen in the pair file, it degrades the pair (exit 3).
    let dir = custom_config_of(&["web6.toml"], |name, text| {
        if name == "web6.toml" {
            add_traffic_keys(&text, "handover = \"overlap\"\n")
        } else {
            text
        }
    });
    let cfg = dir.path().join("baton.toml");
    let (code, found) = no_overlap(&cfg);
    assert_eq!(code, 3);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("blue6 cannot take part in the overlap handover (it has no global IPv6 address in fd00:198:18::160/64's prefix besides the VIP"),
        "{found:?}"
    );
    let run = baton(&cfg, &["switchover", "web6"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let detail = step_end(&dir.path().join("state"), "web6", "switch")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("moved to green6 in"), "{detail}");
    assert!(
        detail.contains("(handover classic, not overlap: blue6: it has no global IPv6 address in fd00:198:18::160/64's prefix besides the VIP"),
        "{detail}"
    );
}

/// Killed inside the overlap (both hosts hold the address): the old
/// host's lifetime ends it there within seconds, the hand-back lapses, and
/// `recover` finishes the run on the new host.
#[cfg(feature = "failpoints")]
#[test]
fn killed_inside_the_overlap_leaves_one_holder_once_the_lifetime_ends() {
    use std::os::unix::process::ExitStatusExt;
    let _lab = lab();
    let dir = custom_config(overlap);
    let cfg = dir.path().join("baton.toml");
    let out = baton_command(&cfg, &["switchover", "web"])
        .env("FAILPOINTS", "vip-overlap-both-hold=return")
        .output()
        .unwrap();
    assert!(out.status.signal().is_some(), "{out:?}");
    assert!(
        holds("blue") && holds("green"),
        "both hold it inside the overlap"
    );
    assert!(addrs("blue").contains("valid_lft 3sec") || addrs("blue").contains("valid_lft 2sec"));
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!holds("blue") && holds("green"), "blue's lifetime ended");
    assert!(!handback_elements("green").contains(VIP));
    let run = baton(&cfg, &["recover", "web"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(holds("green") && !holds("blue"));
    let (code, body) = client_get(&format!("http://{VIP}/"));
    assert_eq!(code, 0);
    assert!(body.starts_with("host=green "), "{body}");
}
