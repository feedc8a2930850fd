//! Several `baton watch` processes on the lab's etcd cluster (cargo feature
//! `etcd`): watchers in `baton-ctl`, `baton-ctl2` and `baton-ctl3` share
//! the state, the journal and the leadership under a prefix of their own;
//! `[watch] interval = "1s"`, `failure_threshold = 3`, `[store] ttl =
//! "3s"`. Proofs of issue 18: one failover for a stopped web server with
//! three watchers; the leader killed (SIGKILL) in the middle of its
//! failover → another takes over within the lease and settles the run from
//! the journal, with no second switch; a watcher cut off from the primary
//! causes no failover on its own view (quorum 2); one etcd member down →
//! watching goes on; every member down → no watcher acts, traffic stays;
//! a primary that fails again right after a failover is not failed over
//! again within the cooldown.

#![cfg(feature = "etcd")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const ENDPOINTS: &str = "http://198.18.0.71:2379,http://198.18.0.72:2379,http://198.18.0.73:2379";

/// A configuration of the lab's pairs web and api with the state in etcd
/// under a prefix of its own (removed on drop).
struct EtcdConfig {
    dir: tempfile::TempDir,
    prefix: String,
}

impl EtcdConfig {
    fn new(name: &str, watch: &str) -> EtcdConfig {
        let prefix = format!("/baton/test-{name}-{}/", std::process::id());
        let store = format!(
            "\n[store]\nkind = \"etcd\"\nendpoints = [\"http://198.18.0.71:2379\", \"http://198.18.0.72:2379\", \"http://198.18.0.73:2379\"]\nprefix = \"{prefix}\"\nttl = \"3s\"\ntimeout = \"1s\"\n[watch]\ninterval = \"1s\"\nfailure_threshold = 3\n{watch}"
        );
        let dir = custom_config(|file, t| if file == "baton.toml" { t + &store } else { t });
        etcdctl(&["del", "--prefix", &prefix]);
        EtcdConfig { dir, prefix }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("baton.toml")
    }

    /// The pair's journal, as baton wrote it into etcd.
    fn journal(&self, pair: &str) -> Vec<serde_json::Value> {
        let out = etcdctl(&[
            "get",
            "--prefix",
            &format!("{}journal/{pair}/", self.prefix),
            "--print-value-only",
        ]);
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The failover runs: (start record, finished?).
    fn failovers(&self) -> Vec<(serde_json::Value, bool)> {
        failover_runs(&self.journal("web"))
    }

    /// The leading watcher's id (`host:pid`), if any.
    fn leader(&self) -> Option<String> {
        let v = etcdctl(&[
            "get",
            &format!("{}leader", self.prefix),
            "--print-value-only",
        ]);
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_string())
    }
}

impl Drop for EtcdConfig {
    fn drop(&mut self) {
        let _ = etcd_command(&["del", "--prefix", &self.prefix]).output();
    }
}

fn etcd_command(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", CTL, "etcdctl"])
        .arg(format!("--endpoints={ENDPOINTS}"))
        .args(["--dial-timeout=1s", "--command-timeout=3s"])
        .args(args)
        .stdin(Stdio::null());
    c
}

/// etcdctl in the controller's namespace; its standard output.
fn etcdctl(args: &[&str]) -> String {
    let out = etcd_command(args).output().expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running watcher: its process and the lines it printed so far.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Watcher {
    fn start(ns: &str, cfg: &Path, pairs: &[&str]) -> Watcher {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_baton"), "--config"])
            .arg(cfg)
            .arg("watch")
            .args(pairs)
            .env("BATON_REASON", "lab test")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start baton watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut streams: Vec<Box<dyn std::io::Read + Send>> = Vec::new();
        if let Some(s) = child.stdout.take() {
            streams.push(Box::new(s));
        }
        if let Some(s) = child.stderr.take() {
            streams.push(Box::new(s));
        }
        for stream in streams {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push((Instant::now(), line));
                }
            });
        }
        Watcher { child, lines }
    }

    fn id(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        format!("{}:{}", host.trim(), self.child.id())
    }

    fn said(&self, what: &str) -> Option<Instant> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| l.contains(what))
            .map(|(t, _)| *t)
    }

    fn text(&self) -> String {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    }

    fn kill(&mut self, sig: i32) {
        // SAFETY: signalling a child this test started.
        #[allow(unsafe_code, reason = "kill(2) with a chosen signal")]
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {limit:?}");
}

/// Who holds the VIP 198.18.0.100, asked of blue and green.
fn vip_on() -> Vec<&'static str> {
    ["blue", "green"]
        .into_iter()
        .filter(|h| {
            netns_ok(
                &format!("baton-{h}"),
                &["ip", "-o", "addr", "show", "dev", "eth0"],
            )
            .contains("inet 198.18.0.100/")
        })
        .collect()
}

/// Starts the lab's etcd members that were stopped, on drop (before the
/// lab's reset).
struct EtcdBack;

impl Drop for EtcdBack {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab"))
            .args(["up", "--pairs", FLEET_PAIRS])
            .output();
    }
}

/// Stops one etcd member (SIGTERM by its pid file) and waits for its end.
fn stop_member(n: u32) {
    stop(&format!("etcd{n}"), "etcd");
}

/// Watchers of web in these namespaces, once one of them leads.
fn watching(c: &EtcdConfig, namespaces: &[&str]) -> Vec<Watcher> {
    let w: Vec<Watcher> = namespaces
        .iter()
        .map(|ns| Watcher::start(ns, &c.path(), &["web"]))
        .collect();
    until("one watcher leads", Duration::from_secs(10), || {
        c.leader().is_some()
    });
    w
}

/// Records the roles (web: blue primary) in the store.
fn record_roles(cfg: &Path) {
    let s = baton(cfg, &["status", "web"]);
    assert_eq!(s.code, 0, "{}{}", s.stdout, s.stderr);
}

#[test]
fn three_watchers_make_one_failover_for_a_stopped_web_server() {
    let _lab = lab();
    let c = EtcdConfig::new("one", "");
    record_roles(&c.path());
    let w = watching(&c, &["baton-ctl", "baton-ctl2", "baton-ctl3"]);
    let leader = c.leader().unwrap();
    assert!(w.iter().any(|x| x.id() == leader), "{leader}");
    std::thread::sleep(Duration::from_millis(1500));
    let stopped = Instant::now();
    stop("blue", "nginx");
    until("the failover ended", Duration::from_secs(30), || {
        c.failovers().iter().any(|(_, done)| *done)
    });
    let took = stopped.elapsed();
    eprintln!("three watchers: stopped web server to failover done: {took:?}");
    assert!(took < Duration::from_secs(12), "took {took:?}");
    std::thread::sleep(Duration::from_secs(4));
    let runs = c.failovers();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(vip_on(), ["green"]);
    // Only the leader acted; the others stood by.
    for x in &w {
        let acted = x.said("failover blue -> green").is_some();
        assert_eq!(acted, x.id() == leader, "{}", x.text());
        if x.id() != leader {
            assert!(x.said("standing by").is_some(), "{}", x.text());
        }
    }
    let status = baton(&c.path(), &["status", "web", "--json"]);
    let doc = status.json();
    assert_eq!(doc["store"]["kind"], "etcd", "{doc}");
    assert_eq!(doc["store"]["leader"], leader.as_str(), "{doc}");
    assert_eq!(
        doc["store"]["watchers"].as_array().map(Vec::len),
        Some(3),
        "{doc}"
    );
}

#[test]
fn the_leader_killed_mid_failover_is_replaced_and_its_run_settled_without_a_second_switch() {
    let _lab = lab();
    let c = EtcdConfig::new("kill", "");
    record_roles(&c.path());
    let mut w = watching(&c, &["baton-ctl", "baton-ctl2", "baton-ctl3"]);
    let leader = c.leader().unwrap();
    let at = w
        .iter()
        .position(|x| x.id() == leader)
        .expect("a child leads");
    // The client has spoken to blue through the VIP (its neighbour cache
    // names blue) before the failover.
    let (_, page) = client_get("http://198.18.0.100/");
    assert!(page.contains("host=blue"), "{page}");
    std::thread::sleep(Duration::from_millis(1500));
    stop("blue", "nginx");
    // The failover's switch began: the VIP is on its way to green.
    until(
        "the failover's switch began",
        Duration::from_secs(30),
        || {
            c.journal("web")
                .iter()
                .any(|r| r["event"] == "begin" && r["step"] == "switch")
        },
    );
    w[at].kill(libc::SIGKILL);
    let killed = Instant::now();
    let mut dead = w.remove(at);
    let _ = dead.child.wait();
    until("another watcher leads", Duration::from_secs(15), || {
        c.leader().is_some_and(|l| l != leader)
    });
    let takeover = killed.elapsed();
    eprintln!("leader killed mid-failover: another leads after {takeover:?}");
    // Within the lease (3 s), plus a round (1 s) and a request's timeout.
    assert!(takeover < Duration::from_secs(6), "{takeover:?}");
    until("the run was settled", Duration::from_secs(30), || {
        c.failovers().iter().all(|(_, done)| *done)
    });
    std::thread::sleep(Duration::from_secs(4));
    let runs = c.failovers();
    assert_eq!(runs.len(), 1, "one failover run, settled: {runs:?}");
    assert_eq!(vip_on(), ["green"], "exactly one holder");
    // And the client reaches green through it: the address was announced
    // again by the run that settled the switch.
    let (_, page) = client_get("http://198.18.0.100/");
    assert!(page.contains("host=green"), "{page}");
    let new = c.leader().unwrap();
    let settler = w.iter().find(|x| x.id() == new).expect("the new leader");
    assert!(
        settler.said("settling the interrupted failover").is_some(),
        "{}",
        settler.text()
    );
    let records = c.journal("web");
    let starts = records.iter().filter(|r| r["event"] == "start").count();
    assert_eq!(starts, 1, "no second run was started");
    // Settled well, wherever the kill landed (the switch, or the
    // verification after it, which runs again).
    let finish = records.iter().find(|r| r["event"] == "finish").unwrap();
    assert_eq!(finish["outcome"], "ok", "{finish}");
}

#[test]
fn a_watcher_cut_off_from_the_primary_causes_no_failover() {
    let _lab = lab();
    let c = EtcdConfig::new("cut", "quorum = 2\n");
    record_roles(&c.path());
    // baton-ctl leads (it starts first), then is cut off from blue and the
    // VIP (not from green, nor from etcd).
    let first = Watcher::start("baton-ctl", &c.path(), &["web"]);
    until("ctl leads", Duration::from_secs(10), || {
        c.leader().is_some()
    });
    assert_eq!(c.leader().unwrap(), first.id());
    let others = [
        Watcher::start("baton-ctl2", &c.path(), &["web"]),
        Watcher::start("baton-ctl3", &c.path(), &["web"]),
    ];
    // Every watcher has looked once (a command in flight when the cut
    // comes would wait for its own timeout, 30 s in the lab).
    until("every watcher looked", Duration::from_secs(20), || {
        first.said("web  primary healthy").is_some()
            && others
                .iter()
                .all(|o| o.said("web  primary healthy").is_some())
    });
    struct Cut;
    impl Drop for Cut {
        fn drop(&mut self) {
            let _ = netns(CTL, &["nft", "delete", "table", "inet", "labcut"]);
        }
    }
    netns_ok(
        CTL,
        &[
            "nft",
            "add table inet labcut; add chain inet labcut out { type filter hook output priority 0; }; add rule inet labcut out ip daddr { 198.18.0.11, 198.18.0.100 } drop",
        ],
    );
    let _cut = Cut;
    let agreed = Instant::now() + Duration::from_secs(45);
    while first.said("watchers needed see it so").is_none() {
        assert!(
            Instant::now() < agreed,
            "the leader never found too few watchers agree: {}",
            first.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));
    assert!(c.failovers().is_empty(), "{}", first.text());
    assert_eq!(vip_on(), ["blue"]);
    assert!(
        first
            .said("the primary does not answer at all, and 1 of the 2 watchers needed see it so")
            .is_some(),
        "{}",
        first.text()
    );
    for o in &others {
        assert!(o.said("web  primary healthy").is_some(), "{}", o.text());
    }
}

#[test]
fn watching_goes_on_with_one_etcd_member_down() {
    let _lab = lab();
    let _back = EtcdBack;
    let c = EtcdConfig::new("member", "");
    record_roles(&c.path());
    let w = watching(&c, &["baton-ctl", "baton-ctl2"]);
    stop_member(1);
    std::thread::sleep(Duration::from_secs(2));
    stop("blue", "nginx");
    until("the failover ended", Duration::from_secs(30), || {
        c.failovers().iter().any(|(_, done)| *done)
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(c.failovers().len(), 1, "{}{}", w[0].text(), w[1].text());
    assert_eq!(vip_on(), ["green"]);
}

#[test]
fn with_every_etcd_member_down_no_watcher_acts_and_traffic_stays() {
    let _lab = lab();
    let _back = EtcdBack;
    let c = EtcdConfig::new("all", "");
    record_roles(&c.path());
    let w = watching(&c, &["baton-ctl", "baton-ctl2"]);
    for n in 1..=3 {
        stop_member(n);
    }
    until("both watchers stop acting", Duration::from_secs(15), || {
        w.iter().all(|x| x.said("not acting").is_some())
    });
    stop("blue", "nginx");
    std::thread::sleep(Duration::from_secs(6));
    for x in &w {
        assert!(x.said("failover blue -> green").is_none(), "{}", x.text());
    }
    assert_eq!(vip_on(), ["blue"], "traffic untouched");
    // status says the store does not answer, and needs an operator.
    let status = baton(&c.path(), &["status", "web"]);
    assert_eq!(status.code, 4, "{}{}", status.stdout, status.stderr);
    assert!(
        status.stdout.contains("store: etcd ") && status.stdout.contains("(ERROR "),
        "{}",
        status.stdout
    );
}

/// Starts a lab host's nginx again (in the mount namespace of its sshd).
fn start_nginx(host: &str) {
    let d = format!("{LAB}/hosts/{host}");
    let sshd = std::fs::read_to_string(format!("{d}/sshd.pid")).unwrap();
    let out = Command::new("nsenter")
        .args([
            "--target",
            sshd.trim(),
            "--mount",
            "--net",
            "--",
            "/usr/sbin/nginx",
            "-p",
        ])
        .arg(format!("{d}/"))
        .args([
            "-e",
            &format!("{d}/nginx-error.log"),
            "-c",
            &format!("{d}/nginx.conf"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_primary_failing_again_after_a_failover_waits_for_the_cooldown() {
    let _lab = lab();
    let c = EtcdConfig::new("flap", "cooldown = \"10m\"\n");
    record_roles(&c.path());
    let mut first = Watcher::start("baton-ctl", &c.path(), &["web"]);
    until("it leads", Duration::from_secs(10), || c.leader().is_some());
    stop("blue", "nginx");
    until("the failover ended", Duration::from_secs(30), || {
        c.failovers().iter().any(|(_, done)| *done)
    });
    // The watcher that failed over ends; blue comes back and rejoins as
    // the standby; then green fails. A new watcher on another controller
    // (nothing in its memory) reads the last failover from the journal.
    first.kill(libc::SIGTERM);
    let _ = first.child.wait();
    start_nginx("blue");
    let rejoin = baton(&c.path(), &["rejoin", "web"]);
    assert_eq!(rejoin.code, 0, "{}{}", rejoin.stdout, rejoin.stderr);
    let second = Watcher::start("baton-ctl2", &c.path(), &["web"]);
    until("it leads", Duration::from_secs(15), || {
        c.leader().is_some_and(|l| l == second.id())
    });
    stop("green", "nginx");
    until(
        "the cooldown holds it back",
        Duration::from_secs(20),
        || {
            second
                .said("in the cooldown after the last failover")
                .is_some()
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(c.failovers().len(), 1, "{}", second.text());
    assert_eq!(vip_on(), ["green"]);
}
