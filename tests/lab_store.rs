//! The etcd store against the lab's three-member etcd 3.4 cluster
//! (198.18.0.71-.73:2379): locks, leadership, journal appends and fencing
//! between real processes, and what a member's or the quorum's loss does.
//!
//! Each contender is a process of its own (this test binary run again in
//! the controller's namespace with `ip netns exec baton-ctl`, running only
//! `store_probe_child`, which `BATON_STORE_PROBE` tells what to do), since
//! one process shares one lease. Every test works under a prefix of its
//! own (`/baton/test-PID-NAME/`, deleted at the end), never under the lab's
//! `/baton/lab/`, and holds the lab's test lock (`/run/baton-lab-tests.lock`)
//! while it runs. Members stopped by a test are started again, with the
//! command line they ran with, and waited for.
//!
//! Needs the `etcd` feature and the lab up (`scripts/lab up --pairs 10`).

#![cfg(feature = "etcd")]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use baton::config::EtcdStore;
use baton::core::cycle::Outcome;
use baton::store::journal::{JournalError, Record};
use baton::store::lock::{LockError, LockOwner};
use baton::store::{Leadership, Store, StoreError};

const LAB: &str = "/var/lib/baton-lab";
const ENDPOINTS: [&str; 3] = [
    "http://198.18.0.71:2379",
    "http://198.18.0.72:2379",
    "http://198.18.0.73:2379",
];
/// The lease's TTL and the request timeout the probes use.
const TTL: Duration = Duration::from_secs(4);
const TIMEOUT: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- the child

fn settings(prefix: &str) -> EtcdStore {
    EtcdStore {
        endpoints: ENDPOINTS.iter().map(|e| e.to_string()).collect(),
        prefix: prefix.to_string(),
        ttl: TTL,
        timeout: TIMEOUT,
        ca: None,
        cert: None,
        key: None,
        user: None,
        password_file: None,
    }
}

fn owner(command: &str) -> LockOwner {
    LockOwner {
        pid: std::process::id(),
        operator: "lab".into(),
        command: command.into(),
        since: "2026-01-01T00:00:00Z".into(),
        host: Some(baton::store::lock::this_host()),
    }
}

fn record(writer: &str, i: usize) -> Record {
    Record::Finish {
        run: writer.into(),
        outcome: Outcome::Ok,
        message: format!("{writer} {i}"),
        at: "t".into(),
    }
}

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "PROBE {}", line.as_ref());
    let _ = out.flush();
}

/// What an append's error was, in one word.
fn kind(e: &JournalError) -> String {
    match e {
        JournalError::Store { source, .. } => match source {
            StoreError::Unavailable { .. } => "UNAVAILABLE".into(),
            StoreError::Fenced { .. } => "FENCED".into(),
            StoreError::Contended { .. } => "CONTENDED".into(),
            other => format!("OTHER {other}"),
        },
        other => format!("OTHER {other}"),
    }
}

/// The probe: what `BATON_STORE_PROBE` says, in this process.
#[test]
fn store_probe_child() {
    let Ok(what) = std::env::var("BATON_STORE_PROBE") else {
        return; // run as a test of its own: nothing to do
    };
    let prefix = std::env::var("BATON_STORE_PREFIX").expect("BATON_STORE_PREFIX");
    let store: Store = baton::store::etcd::shared(&settings(&prefix)).expect("store");
    let words: Vec<&str> = what.split_whitespace().collect();
    let secs = |s: &str| Duration::from_secs(s.parse().expect("seconds"));
    match words.as_slice() {
        ["lock", pair, hold] => match store.lock(pair, &owner("lock")) {
            Ok(lock) => {
                say("LOCKED");
                let end = Instant::now() + secs(hold);
                while Instant::now() < end {
                    if !lock.held() {
                        say("LOST");
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Err(LockError::Held { holder, .. }) => say(format!("HELD {}", holder.pid)),
            Err(e) => say(format!("ERR {e}")),
        },
        ["lockwait", pair, limit] => {
            let end = Instant::now() + secs(limit);
            while Instant::now() < end {
                match store.lock(pair, &owner("lockwait")) {
                    Ok(_lock) => {
                        say("LOCKED");
                        return;
                    }
                    Err(LockError::Held { .. } | LockError::HeldUnknown { .. }) => {}
                    Err(e) => say(format!("ERR {e}")),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            say("GAVE-UP");
        }
        ["append", pair, writer, n] => {
            let n: usize = n.parse().expect("count");
            for i in 0..n {
                if let Err(e) = store.append(pair, &record(writer, i)) {
                    say(format!("ERR {i} {}", kind(&e)));
                    return;
                }
            }
            say("DONE");
        }
        ["fence", pair] => {
            let lock = store.lock(pair, &owner("fence")).expect("lock");
            store
                .append(pair, &record("fence", 0))
                .expect("first append");
            say("READY");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            say(format!("HELD-NOW {}", lock.held()));
            match store.append(pair, &record("fence", 1)) {
                Ok(()) => say("APPENDED"),
                Err(e) => say(kind(&e)),
            }
            // A state document of the pair is fenced the same way.
            match store.save(&format!("{pair}.state.json"), b"{}\n") {
                Ok(()) => say("SAVED"),
                Err(baton::store::state::StateError::Store {
                    source: StoreError::Fenced { .. },
                    ..
                }) => say("FENCED"),
                Err(e) => say(format!("OTHER {e}")),
            }
        }
        ["lead", me, limit] => {
            let end = Instant::now() + secs(limit);
            let mut last = String::new();
            while Instant::now() < end {
                let now = match store.lead(me) {
                    Ok(Leadership::Leading { until }) => {
                        assert!(until > Instant::now() - Duration::from_millis(1));
                        "LEADING".to_string()
                    }
                    Ok(Leadership::Following { leader }) => format!("FOLLOWING {leader}"),
                    Err(e) => format!("ERR {e}"),
                };
                if now != last {
                    say(&now);
                    last = now;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            store.resign(me);
        }
        ["appends", pair] => {
            // One append per line read, in one long-lived process.
            let stdin = std::io::stdin();
            for (i, line) in stdin.lock().lines().enumerate() {
                if line.is_err() {
                    break;
                }
                let t = Instant::now();
                let r = store.append(pair, &record("appends", i));
                let ms = t.elapsed().as_millis();
                match r {
                    Ok(()) => say(format!("OK {ms}")),
                    Err(e) => say(format!("{} {ms}", kind(&e))),
                }
            }
        }
        ["dump", pair] => {
            let mut n = 0;
            store
                .each(pair, &mut |r| {
                    if let Record::Finish { message, .. } = r {
                        say(format!("REC {message}"));
                    }
                    n += 1;
                })
                .expect("each");
            say(format!("COUNT {n}"));
        }
        other => panic!("unknown probe {other:?}"),
    }
}

// ---------------------------------------------------------------- the parent

/// The lab's test lock, held while a test runs.
fn lab_lock() -> File {
    assert!(
        Path::new("/run/netns/baton-ctl").exists() && Path::new(LAB).join("hosts/etcd1").exists(),
        "the lab is down: scripts/lab up --pairs 10"
    );
    let lock = File::create("/run/baton-lab-tests.lock").expect("create the lab test lock");
    lock.lock().expect("flock the lab test lock");
    // the test before may have stopped an etcd member or cut a namespace off
    // (tests reset the lab when they start, not when they end)
    common::reset();
    lock
}

/// A prefix for one test, and its deletion at the end.
struct Prefix(String);

impl Prefix {
    fn new(test: &str) -> Prefix {
        Prefix(format!("/baton/test-{}-{test}/", std::process::id()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = etcdctl(&["del", "--prefix", &self.0]);
    }
}

fn etcdctl(args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", "baton-ctl", "etcdctl"])
        .arg(format!("--endpoints={}", ENDPOINTS.join(",")))
        .args(["--dial-timeout=1s", "--command-timeout=3s"])
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("etcdctl")
}

/// A probe process, killed (by its pid) when dropped.
struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Probe {
    fn start(prefix: &Prefix, what: &str) -> Probe {
        let exe = std::env::current_exe().expect("this test binary");
        let mut child = Command::new("ip")
            .args(["netns", "exec", "baton-ctl"])
            .arg(exe)
            .args([
                "store_probe_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("BATON_STORE_PROBE", what)
            .env("BATON_STORE_PREFIX", &prefix.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a probe");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness may have begun the line (`test ... `).
                if let Some(at) = line.find("PROBE ") {
                    if tx.send(line[at + 6..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        Probe {
            child,
            stdin,
            lines,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The probe's next line, within `limit`.
    fn next(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    fn expect(&self, limit: Duration) -> String {
        self.next(limit)
            .unwrap_or_else(|| panic!("probe {} said nothing within {limit:?}", self.pid()))
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the probe");
        stdin.flush().expect("flush");
    }

    fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.pid()).expect("pid");
        // SAFETY: kill(2) on the pid of a child this test started and has
        // not waited for (so the pid is not reused).
        #[allow(unsafe_code, reason = "kill(2) with SIGSTOP/SIGCONT/SIGKILL")]
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill {sig} {pid}");
    }

    /// Waits for it to end by itself; true if it did in time.
    fn wait(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Every record message of a journal, in order (read by a probe).
fn dump(prefix: &Prefix, pair: &str) -> Vec<String> {
    let mut p = Probe::start(prefix, &format!("dump {pair}"));
    let mut out = Vec::new();
    loop {
        let line = p.expect(Duration::from_secs(20));
        if let Some(m) = line.strip_prefix("REC ") {
            out.push(m.to_string());
        } else if let Some(n) = line.strip_prefix("COUNT ") {
            assert_eq!(n.parse::<usize>().expect("count"), out.len());
            break;
        } else {
            panic!("dump: {line}");
        }
    }
    assert!(p.wait(Duration::from_secs(10)));
    out
}

// ---------------------------------------------------------------- members

/// A member stopped by a test: started again, as it ran, when dropped.
struct Stopped {
    member: String,
    cmdline: Vec<String>,
}

fn member_pid(member: &str) -> i32 {
    std::fs::read_to_string(Path::new(LAB).join(format!("hosts/{member}/etcd.pid")))
        .expect("the member's pid file")
        .trim()
        .parse()
        .expect("a pid")
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

/// Stops `member` (TERM, then KILL after 15 s), remembering its command line.
fn stop_member(member: &str) -> Stopped {
    let pid = member_pid(member);
    let cmdline: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .expect("the member's command line")
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(cmdline.first().map(String::as_str), Some("/usr/bin/etcd"));
    // SAFETY: kill(2) on the pid the lab recorded for this member.
    #[allow(unsafe_code, reason = "kill(2) on the member's pid")]
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill TERM {member} {pid}");
    let end = Instant::now() + Duration::from_secs(15);
    while alive(pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        // SAFETY: as above.
        #[allow(unsafe_code, reason = "kill(2) on the member's pid")]
        unsafe {
            libc::kill(pid, libc::SIGKILL)
        };
        std::thread::sleep(Duration::from_millis(500));
    }
    Stopped {
        member: member.to_string(),
        cmdline,
    }
}

impl Drop for Stopped {
    /// As scripts/lab.d/etcd.sh's etcd_start does, then waits for health.
    fn drop(&mut self) {
        let dir = Path::new(LAB).join("hosts").join(&self.member);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("etcd.log"))
            .expect("the member's log");
        let pidfile = dir.join("etcd.pid");
        let _ = std::fs::remove_file(&pidfile);
        let started = Command::new("ip")
            .args(["netns", "exec", &format!("baton-{}", self.member)])
            .args(["setsid", "/bin/sh", "-c", "echo $$ >\"$0\" && exec \"$@\""])
            .arg(&pidfile)
            .args([
                "setpriv",
                "--reuid=etcd",
                "--regid=etcd",
                "--init-groups",
                "--",
                "env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C",
            ])
            .args(&self.cmdline)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn();
        if let Err(e) = started {
            eprintln!("cannot start {} again: {e}", self.member);
            return;
        }
        let addr = match self.member.as_str() {
            "etcd1" => ENDPOINTS[0],
            "etcd2" => ENDPOINTS[1],
            _ => ENDPOINTS[2],
        };
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            let out = Command::new("ip")
                .args(["netns", "exec", "baton-ctl", "etcdctl"])
                .arg(format!("--endpoints={addr}"))
                .args([
                    "--dial-timeout=1s",
                    "--command-timeout=2s",
                    "endpoint",
                    "health",
                ])
                .env("ETCDCTL_API", "3")
                .output();
            if out.is_ok_and(|o| o.status.success()) {
                eprintln!("{} is back and healthy", self.member);
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("{} did not become healthy within 30 s", self.member);
    }
}

/// Waits until every member answers healthy (up to 30 s).
fn cluster_healthy() {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if etcdctl(&["endpoint", "health"]).status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the etcd cluster is not healthy");
}

// ---------------------------------------------------------------- the tests

#[test]
fn two_processes_race_for_a_lock_one_gets_it_the_other_is_told_who() {
    let _lab = lab_lock();
    let prefix = Prefix::new("race");
    let a = Probe::start(&prefix, "lock web 6");
    let b = Probe::start(&prefix, "lock web 6");
    let (ra, rb) = (
        a.expect(Duration::from_secs(10)),
        b.expect(Duration::from_secs(10)),
    );
    eprintln!("a ({}): {ra}; b ({}): {rb}", a.pid(), b.pid());
    match (ra.as_str(), rb.as_str()) {
        ("LOCKED", held) => assert_eq!(held, format!("HELD {}", a.pid())),
        (held, "LOCKED") => assert_eq!(held, format!("HELD {}", b.pid())),
        other => panic!("not exactly one holder: {other:?}"),
    }
}

#[test]
fn a_holder_killed_loses_the_lock_to_another_process_within_ttl_and_timeout() {
    let _lab = lab_lock();
    let prefix = Prefix::new("takeover");
    let holder = Probe::start(&prefix, "lock web 60");
    assert_eq!(holder.expect(Duration::from_secs(10)), "LOCKED");
    let waiter = Probe::start(&prefix, "lockwait web 30");
    // The waiter is refused while the holder lives.
    assert_eq!(
        waiter.next(Duration::from_secs(2)),
        None,
        "took a held lock"
    );
    holder.signal(libc::SIGKILL);
    let killed = Instant::now();
    assert_eq!(waiter.expect(Duration::from_secs(30)), "LOCKED");
    let took = killed.elapsed();
    eprintln!(
        "lock taken over {took:?} after kill -9 of the holder (ttl {TTL:?}, timeout {TIMEOUT:?})"
    );
    assert!(took <= TTL + TIMEOUT, "took {took:?}");
}

#[test]
fn two_writers_append_200_records_each_none_lost_each_in_order() {
    let _lab = lab_lock();
    let prefix = Prefix::new("append");
    let a = Probe::start(&prefix, "append web a 200");
    let b = Probe::start(&prefix, "append web b 200");
    let t = Instant::now();
    assert_eq!(a.expect(Duration::from_secs(120)), "DONE");
    assert_eq!(b.expect(Duration::from_secs(120)), "DONE");
    eprintln!("400 concurrent appends in {:?}", t.elapsed());
    let all = dump(&prefix, "web");
    assert_eq!(all.len(), 400, "records lost or doubled");
    for w in ["a", "b"] {
        let mine: Vec<&String> = all
            .iter()
            .filter(|m| m.starts_with(&format!("{w} ")))
            .collect();
        let want: Vec<String> = (0..200).map(|i| format!("{w} {i}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>(), "writer {w}'s order");
    }
    let interleaved = all.windows(2).filter(|p| p[0][..1] != p[1][..1]).count();
    eprintln!("the writers alternated {interleaved} times");
}

#[test]
fn a_process_whose_lease_lapsed_is_fenced_and_writes_nothing() {
    let _lab = lab_lock();
    let prefix = Prefix::new("fence");
    let mut stale = Probe::start(&prefix, "fence web");
    assert_eq!(stale.expect(Duration::from_secs(10)), "READY");
    stale.signal(libc::SIGSTOP);
    // Another controller takes the lock once the lease is gone.
    let other = Probe::start(&prefix, "lockwait web 30");
    assert_eq!(other.expect(Duration::from_secs(30)), "LOCKED");
    std::thread::sleep(Duration::from_secs(1));
    stale.signal(libc::SIGCONT);
    stale.send("go");
    assert_eq!(stale.expect(Duration::from_secs(10)), "HELD-NOW false");
    assert_eq!(stale.expect(Duration::from_secs(10)), "FENCED");
    assert_eq!(stale.expect(Duration::from_secs(10)), "FENCED", "the state");
    assert_eq!(dump(&prefix, "web"), ["fence 0"], "the fenced append wrote");
    let doc = etcdctl(&["get", &format!("{}doc/web.state.json", prefix.0)]);
    assert!(doc.stdout.is_empty(), "the fenced state was written");
}

#[test]
fn one_watcher_leads_the_other_follows_and_takes_over_when_it_dies() {
    let _lab = lab_lock();
    let prefix = Prefix::new("lead");
    let a = Probe::start(&prefix, "lead ctl-a 60");
    assert_eq!(a.expect(Duration::from_secs(10)), "LEADING");
    let b = Probe::start(&prefix, "lead ctl-b 60");
    assert_eq!(b.expect(Duration::from_secs(10)), "FOLLOWING ctl-a");
    assert_eq!(a.next(Duration::from_secs(2)), None, "a stopped leading");
    a.signal(libc::SIGKILL);
    let killed = Instant::now();
    assert_eq!(b.expect(Duration::from_secs(30)), "LEADING");
    let took = killed.elapsed();
    eprintln!("leadership taken over {took:?} after kill -9 of the leader (ttl {TTL:?}, timeout {TIMEOUT:?})");
    assert!(took <= TTL + TIMEOUT, "took {took:?}");
}

#[test]
fn appends_go_on_with_one_member_down_and_fail_fast_without_a_quorum() {
    let _lab = lab_lock();
    cluster_healthy();
    let prefix = Prefix::new("quorum");
    let mut p = Probe::start(&prefix, "appends web");
    p.send("1");
    assert!(p.expect(Duration::from_secs(10)).starts_with("OK "));
    {
        let _one = stop_member("etcd1");
        for _ in 0..5 {
            p.send("1");
            let r = p.expect(Duration::from_secs(10));
            eprintln!("one member down: {r}");
            assert!(r.starts_with("OK "), "{r}");
        }
        {
            let _two = stop_member("etcd2");
            for _ in 0..2 {
                p.send("1");
                let t = Instant::now();
                let r = p.expect(Duration::from_secs(10));
                let took = t.elapsed();
                eprintln!("two members down: {r} (answered in {took:?})");
                assert!(r.starts_with("UNAVAILABLE "), "{r}");
                assert!(took <= TIMEOUT + Duration::from_millis(500), "{took:?}");
            }
        } // etcd2 started again
    } // etcd1 started again
    cluster_healthy();
    let t = Instant::now();
    let mut ok = false;
    while t.elapsed() < Duration::from_secs(20) && !ok {
        p.send("1");
        ok = p.expect(Duration::from_secs(10)).starts_with("OK ");
    }
    assert!(ok, "appends did not come back with the quorum");
    eprintln!(
        "appends back {:?} after the cluster was healthy",
        t.elapsed()
    );
}

#[test]
fn an_append_under_a_lock_that_changed_hands_is_fenced_by_the_cluster() {
    // The lease is still valid here: the compare on the lock key's
    // create_revision, in the cluster, is what refuses the write.
    let _lab = lab_lock();
    let prefix = Prefix::new("fence-cas");
    let mut stale = Probe::start(&prefix, "fence web");
    assert_eq!(stale.expect(Duration::from_secs(10)), "READY");
    let del = etcdctl(&["del", &format!("{}lock/web", prefix.0)]);
    assert!(del.status.success(), "etcdctl del");
    let other = Probe::start(&prefix, "lockwait web 10");
    assert_eq!(other.expect(Duration::from_secs(10)), "LOCKED");
    stale.send("go");
    assert_eq!(stale.expect(Duration::from_secs(10)), "HELD-NOW true");
    assert_eq!(stale.expect(Duration::from_secs(10)), "FENCED");
    assert_eq!(stale.expect(Duration::from_secs(10)), "FENCED", "the state");
    assert_eq!(dump(&prefix, "web"), ["fence 0"], "the fenced append wrote");
    let doc = etcdctl(&["get", &format!("{}doc/web.state.json", prefix.0)]);
    assert!(doc.stdout.is_empty(), "the fenced state was written");
}

// ------------------------------------------- a private etcd: TLS and users

/// A single-member etcd of this test's own on 127.0.0.1 (the lab's cluster
/// runs without TLS and without users, and is shared): with TLS (a CA made
/// here, client certificates required) and a user `root` whose password is
/// `rootpw`. Killed (by its pid) when dropped.
struct PrivateEtcd {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivateEtcd {
    fn start() -> PrivateEtcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=baton-test-ca",
            ],
        );
        std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
        for who in ["server", "client"] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{who}.key"),
                    "-out",
                    &format!("{who}.csr"),
                    "-subj",
                    &format!("/CN={who}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{who}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "1",
                    "-extfile",
                    "san.ext",
                    "-out",
                    &format!("{who}.pem"),
                ],
            );
        }
        let (client, peer) = (free_port(), free_port());
        let url = format!("https://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = File::create(d.join("etcd.log")).expect("log");
        let child = Command::new("/usr/bin/etcd")
            .args(["--name", "p", "--data-dir"])
            .arg(d.join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("p={peer_url}")])
            .args(["--cert-file", "server.pem", "--key-file", "server.key"])
            .args(["--trusted-ca-file", "ca.pem", "--client-cert-auth"])
            .args([
                "--enable-v2=false",
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
            ])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let me = PrivateEtcd { child, dir, url };
        let end = Instant::now() + Duration::from_secs(20);
        while !me.ctl(&["endpoint", "health"]) {
            assert!(Instant::now() < end, "the private etcd did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(me.ctl(&["user", "add", "root", "--new-user-password=rootpw"]));
        assert!(me.ctl(&["auth", "enable"]));
        me
    }

    /// etcdctl as root, over TLS with the client certificate.
    fn ctl(&self, args: &[&str]) -> bool {
        let d = self.dir.path();
        Command::new("etcdctl")
            .arg(format!("--endpoints={}", self.url))
            .arg(format!("--cacert={}", d.join("ca.pem").display()))
            .arg(format!("--cert={}", d.join("client.pem").display()))
            .arg(format!("--key={}", d.join("client.key").display()))
            .args([
                "--user=root:rootpw",
                "--dial-timeout=1s",
                "--command-timeout=3s",
            ])
            .args(args)
            .env("ETCDCTL_API", "3")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn settings(&self, prefix: &str, password: &str) -> EtcdStore {
        let d = self.dir.path();
        let pw = d.join(format!("pw-{}", prefix.replace('/', "_")));
        std::fs::write(&pw, format!("{password}\n")).expect("password file");
        EtcdStore {
            ca: Some(d.join("ca.pem")),
            cert: Some(d.join("client.pem")),
            key: Some(d.join("client.key")),
            user: Some("root".into()),
            password_file: Some(pw),
            endpoints: vec![self.url.clone()],
            ..settings(prefix)
        }
    }
}

impl Drop for PrivateEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn over_tls_with_a_user_the_right_password_works_and_a_wrong_one_is_refused() {
    let etcd = PrivateEtcd::start();
    let good = baton::store::etcd::shared(&etcd.settings("/good/", "rootpw")).expect("store");
    let lock = good
        .lock("web", &owner("tls"))
        .expect("lock over TLS as root");
    assert!(lock.held());
    good.append("web", &record("tls", 0)).expect("append");
    let mut n = 0;
    good.each("web", &mut |_| n += 1).expect("each");
    assert_eq!(n, 1);
    assert_eq!(
        good.held_by("web").map(|o| o.command),
        Some("tls".to_string())
    );
    drop(lock);
    assert_eq!(good.held_by("web"), None, "released on drop");

    // The last run, read backwards over more than one page (256 keys), is
    // the last of every run.
    assert_eq!(good.last_run("api").expect("last run"), None, "no journal");
    for (run, n) in [("r1", 3), ("r2", 300)] {
        let start: Record = serde_json::from_value(serde_json::json!({
            "event": "start", "run": run, "pair": "api", "kind": "apply",
            "from": "blue", "to": "green", "change": null, "label": null,
            "hash": null, "operator": "lab", "reason": null, "at": "t",
        }))
        .expect("a start record");
        good.append("api", &start).expect("append start");
        for i in 0..n {
            good.append("api", &record(run, i)).expect("append");
        }
    }
    let runs = good.runs("api").expect("runs");
    assert_eq!(runs.len(), 2);
    let last = good.last_run("api").expect("last run").expect("a run");
    assert_eq!(last.start.run(), "r2");
    assert_eq!(Some(&last), runs.last());

    let bad =
        baton::store::etcd::shared(&etcd.settings("/bad/", "n0t-the-password")).expect("store");
    let t = Instant::now();
    let e = bad.lead("ctl-bad").expect_err("a wrong password");
    eprintln!("wrong password: {e} (in {:?})", t.elapsed());
    assert!(matches!(e, StoreError::Refused { .. }), "{e:?}");
    assert!(
        !format!("{e} {e:?}").contains("n0t-the-password"),
        "the password shows: {e}"
    );
    assert!(!format!("{e} {e:?}").contains("rootpw"));
    match bad.append("web", &record("bad", 0)) {
        Err(JournalError::Store {
            source: StoreError::Refused { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}
