//! Shared helpers for the lab tests: bring the lab up once, serialize the
//! tests that share it (a file lock, so it holds across test processes),
//! reset it to its initial state, run baton inside the controller's
//! namespace, and write configurations that differ from the lab's own.

#![allow(dead_code)]

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub const LAB: &str = "/var/lib/baton-lab";
pub const CTL: &str = "baton-ctl";
/// The size of the lab's fleet the tests expect (`scripts/lab up --pairs 10`:
/// the fleet rollback test uses ten pairs, the other fleet tests the first six).
pub const FLEET_PAIRS: &str = "10";

static UP: Once = Once::new();

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Holds the lab exclusively for one test; released on drop. The lab is
/// not reset on release: every user resets it after taking the lock (the
/// next test here, `scripts/bench`, `scripts/demo`), which halves the
/// resets a suite run pays for (each about 1 s).
pub struct Lab {
    _lock: File,
    since: Instant,
}

impl Drop for Lab {
    /// Notes how long the test held the lab (`scripts/test` lists the
    /// slowest at the end); best effort.
    fn drop(&mut self) {
        use std::io::Write;
        let test = std::thread::current().name().unwrap_or("?").to_string();
        let binary = std::env::args()
            .next()
            .and_then(|a| {
                Path::new(&a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        let binary = binary.rsplit_once('-').map_or(binary.as_str(), |(b, _)| b);
        if let Ok(mut f) = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(Path::new(LAB).join("test-times.tsv"))
        {
            let _ = writeln!(
                f,
                "{:.1}\t{binary}::{test}",
                self.since.elapsed().as_secs_f64()
            );
        }
    }
}

/// Brings the lab up (once per process), takes it exclusively and resets it.
pub fn lab() -> Lab {
    UP.call_once(|| {
        let status = Command::new(repo().join("scripts/lab"))
            .arg("status")
            .output()
            .expect("run scripts/lab status");
        // The fleet tests expect the six-pair fleet (scripts/test brings
        // the lab up that way; a benchmark may have left another size).
        let pairs = fs::read_to_string(Path::new(LAB).join("fleet-pairs")).unwrap_or_default();
        if !status.status.success() || pairs.trim() != FLEET_PAIRS {
            let up = Command::new(repo().join("scripts/lab"))
                .args(["up", "--pairs", FLEET_PAIRS])
                .status()
                .expect("run scripts/lab up");
            assert!(up.success(), "scripts/lab up --pairs {FLEET_PAIRS} failed");
        }
    });
    let lock = File::create("/run/baton-lab-tests.lock").expect("create the lab test lock");
    lock.lock().expect("flock the lab test lock");
    // (from here: the time this test holds the lab, its reset included)
    let since = Instant::now();
    reset();
    let _ = fs::remove_dir_all(Path::new(LAB).join("state"));
    Lab { _lock: lock, since }
}

/// `scripts/lab reset`, which must work (the caller holds the lab's lock).
pub fn reset() {
    let reset = Command::new(repo().join("scripts/lab"))
        .arg("reset")
        .output()
        .expect("run scripts/lab reset");
    assert!(
        reset.status.success(),
        "scripts/lab reset failed: {}",
        String::from_utf8_lossy(&reset.stderr)
    );
}

/// Runs a command inside a lab namespace.
pub fn netns(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec")
}

/// Runs a command inside a lab namespace and insists that it worked.
pub fn netns_ok(ns: &str, args: &[&str]) -> String {
    let out = netns(ns, args);
    assert!(
        out.status.success(),
        "{ns}: {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends an update (nsupdate's commands, without `server` and `send`),
/// signed with the lab's key, to the lab's primary DNS server.
pub fn nsupdate(commands: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", CTL, "nsupdate", "-k"])
        .arg(format!("{LAB}/keys/update.key"))
        .stdin(Stdio::piped())
        .spawn()
        .expect("run nsupdate");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("nsupdate's stdin")
        .write_all(format!("server 198.18.0.53\n{commands}\nsend\n").as_bytes())
        .expect("write to nsupdate");
    assert!(
        child.wait().expect("wait for nsupdate").success(),
        "nsupdate failed"
    );
}

/// Waits (5 s at most) until the lab's secondary DNS server serves the
/// primary's version of the zone (it follows by NOTIFY, about 1 s behind).
pub fn secondary_follows() {
    let serial = |server: &str| {
        netns_ok(
            CTL,
            &["dig", "+short", "+norec", server, "baton.test.", "SOA"],
        )
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
    };
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (primary, secondary) = (serial("@198.18.0.53"), serial("@198.18.0.54"));
        if !primary.is_empty() && primary == secondary {
            return;
        }
        assert!(
            Instant::now() < until,
            "the secondary does not follow: serial {primary} on the primary, {secondary} on it"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Knot's control command on the lab's secondary (`zone-freeze` stops it
/// taking transfers; `scripts/lab reset` thaws it).
fn secondary_knotc(args: &[&str]) {
    let out = Command::new("knotc")
        .args(["-s", &format!("{LAB}/dns2/knot.sock")])
        .args(args)
        .output()
        .expect("run knotc");
    assert!(out.status.success(), "knotc {args:?}: {out:?}");
}

/// What a baton run did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The command that runs baton in the controller's namespace.
pub fn baton_command(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        CTL,
        env!("CARGO_BIN_EXE_baton"),
        "--config",
    ])
    .arg(config)
    .args(args)
    // Every mutating command needs a reason; the tests give one this way
    // unless they pass --reason (which wins) or remove it.
    .env("BATON_REASON", "lab test");
    c
}

/// Runs baton in the controller's namespace with a configuration file.
pub fn baton(config: &Path, args: &[&str]) -> Run {
    baton_env(config, args, &[])
}

/// Same, with extra environment variables.
pub fn baton_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = std::time::Instant::now();
    let out = baton_command(config, args)
        .envs(env.iter().copied())
        .output()
        .expect("run baton");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// The lab's own configuration file, as `scripts/lab up` wrote it.
pub fn lab_config() -> PathBuf {
    Path::new(LAB).join("config/baton.toml")
}

/// A copy of the lab configuration in a temporary directory, with every
/// relative path made absolute, after `edit` changed the texts:
/// `edit(file_name, text) -> text` for baton.toml, web.toml and api.toml.
pub fn custom_config(edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    custom_config_of(&["web.toml", "api.toml"], edit)
}

/// As `custom_config`, with these pair files of the lab.
pub fn custom_config_of(
    files: &[&str],
    edit: impl Fn(&str, String) -> String,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("pairs")).unwrap();
    let absolute = |t: String| {
        t.replace("\"../../keys/", &format!("\"{LAB}/keys/"))
            .replace("\"../ssh/", &format!("\"{LAB}/ssh/"))
            .replace("\"../state\"", "\"state\"")
            .replace(
                "from = \"files/",
                &format!("from = \"{LAB}/config/pairs/files/"),
            )
    };
    let global = fs::read_to_string(lab_config()).unwrap();
    fs::write(
        dir.path().join("baton.toml"),
        edit("baton.toml", absolute(global)),
    )
    .unwrap();
    for pair in files {
        let text = fs::read_to_string(Path::new(LAB).join("config/pairs").join(pair)).unwrap();
        fs::write(
            dir.path().join("pairs").join(pair),
            edit(pair, absolute(text)),
        )
        .unwrap();
    }
    dir
}

/// A check for web.toml that fails only on green once green holds the VIP:
/// the standby and the primary pass, the service check after a switch
/// fails, which sends a run down its undo path.
pub const GREEN_MUST_NOT_SERVE: &str = "\n[[checks]]\nname = \"green-must-not-serve\"\nkind = \"command\"\ncommand = \"! { /usr/sbin/ip -o addr show dev eth0 | grep -q 'inet 198.18.0.100/' && grep -q host=green /srv/baton-lab/index.html; }\"\n";

/// A custom configuration in which only the pair file `file` is edited.
pub fn with_pair(file: &'static str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let mut files = vec!["web.toml", "api.toml"];
    // Another pair of the lab's (lb.toml) comes along when it is the one
    // edited.
    if !files.contains(&file) && Path::new(LAB).join("config/pairs").join(file).exists() {
        files.push(file);
    }
    custom_config_of(
        &files,
        move |name, t| if name == file { edit(t) } else { t },
    )
}

/// Points a custom configuration at another known_hosts file; returns the
/// configuration file.
pub fn use_known_hosts(dir: &Path, known_hosts: &Path) -> PathBuf {
    let cfg = dir.join("baton.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    let value = format!("{:?}", known_hosts.display().to_string());
    fs::write(&cfg, set_key(&text, "known_hosts", &value)).unwrap();
    cfg
}

/// Replaces one `key = value` line of a TOML text (the first match).
pub fn set_key(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if !done && line.trim_start().starts_with(&format!("{key} =")) {
            out.push(format!("{key} = {value}"));
            done = true;
        } else {
            out.push(line.to_string());
        }
    }
    assert!(done, "no `{key} =` line in:\n{text}");
    out.join("\n") + "\n"
}

/// The SHA256 fingerprint of a lab host's key, as ssh-keygen prints it.
pub fn host_fingerprint(host: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args([
            "-lf",
            &format!("{LAB}/hosts/{host}/ssh_host_ed25519_key.pub"),
        ])
        .output()
        .expect("ssh-keygen -l");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

/// A lab host's public key line body (`ssh-ed25519 AAAA...`).
pub fn host_key(host: &str) -> String {
    let text = fs::read_to_string(format!("{LAB}/hosts/{host}/ssh_host_ed25519_key.pub")).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs an async body on a thread inside the controller's namespace.
pub fn in_ctl<T: Send>(body: impl AsyncFnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open("/run/netns/baton-ctl").expect("the lab's controller namespace");
            // SAFETY: setns on a namespace fd we own; it affects this thread
            // and the threads it starts (the runtime's blocking pool).
            #[allow(unsafe_code, reason = "setns(2): std cannot enter a network namespace")]
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns failed");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(body())
        })
        .join()
        .expect("the namespace thread panicked")
    })
}

/// Every record of a pair's journal under a state directory.
pub fn journal(dir: &Path, pair: &str) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(dir.join(format!("{pair}.journal"))).unwrap_or_default();
    // Only whole lines: a run still writing may have appended half of one.
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The last `end` record of `step` in a pair's journal under `state`.
pub fn step_end(state: &Path, pair: &str, step: &str) -> serde_json::Value {
    journal(state, pair)
        .into_iter()
        .rev()
        .find(|r| r["event"] == "end" && r["step"] == step)
        .unwrap_or_else(|| panic!("no end of {step} in {pair}'s journal"))
}

/// A request from the client namespace with a short connect timeout:
/// curl's exit code and what it printed.
pub fn client_get(url: &str) -> (i32, String) {
    let out = netns(
        "baton-client",
        &[
            "curl",
            "-s",
            "--connect-timeout",
            "0.5",
            "--max-time",
            "2",
            url,
        ],
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A pair file's text with `keys` (lines of TOML) added to its
/// `[traffic]` table.
pub fn add_traffic_keys(text: &str, keys: &str) -> String {
    assert!(text.contains("[traffic]\n"), "no [traffic] table: {text}");
    text.replacen("[traffic]\n", &format!("[traffic]\n{keys}"), 1)
}

/// Runs `body` while the lab's secondary DNS server takes no zone transfer
/// (it keeps serving what it has), then lets it follow again.
pub fn with_secondary_frozen<T>(body: impl FnOnce() -> T) -> T {
    secondary_knotc(&["zone-freeze", "baton.test."]);
    let out = body();
    secondary_knotc(&["zone-thaw", "baton.test."]);
    out
}

/// Starts baton in the background in the controller's namespace.
pub fn spawn(config: &Path, args: &[&str]) -> Child {
    baton_command(config, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the journal shows `step` begun.
pub fn wait_for_begin(state: &Path, pair: &str, step: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if journal(state, pair)
            .iter()
            .any(|r| r["event"] == "begin" && r["step"] == step)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{step} never began");
}

pub fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Sends a signal to a child baton.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling a child we started.
    #[allow(unsafe_code, reason = "kill(2): std's Child can only send SIGKILL")]
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0);
}

/// An sshd of the test's own in blue's namespace, with host keys of three
/// types (the lab's sshd has only an ed25519 key); ended by its pid on drop.
pub struct MultiKeySshd {
    child: Child,
    dir: tempfile::TempDir,
}

impl MultiKeySshd {
    pub const PORT: u16 = 2299;

    pub fn start() -> MultiKeySshd {
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            "ListenAddress 198.18.0.11\nPort {}\nAddressFamily inet\n",
            Self::PORT
        );
        for kind in ["ed25519", "ecdsa", "rsa"] {
            let key = dir.path().join(format!("ssh_host_{kind}_key"));
            let mut keygen = Command::new("ssh-keygen");
            keygen.args(["-q", "-t", kind, "-N", "", "-f"]).arg(&key);
            if kind == "rsa" {
                keygen.args(["-b", "2048"]);
            }
            assert!(keygen.status().unwrap().success(), "ssh-keygen -t {kind}");
            config += &format!("HostKey {}\n", key.display());
        }
        config += &format!(
            "PidFile none\nAuthorizedKeysFile {LAB}/ssh/authorized_keys\nAllowUsers batonlab\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n\
             PubkeyAuthentication yes\nUseDNS no\nPrintMotd no\nLogLevel VERBOSE\nMaxStartups 100\n"
        );
        let cfg = dir.path().join("sshd_config");
        fs::write(&cfg, config).unwrap();
        let log = dir.path().join("sshd.log");
        let child = Command::new("ip")
            .args(["netns", "exec", "baton-blue", "/usr/sbin/sshd", "-D", "-f"])
            .arg(&cfg)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let sshd = MultiKeySshd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains(&format!(
                "Server listening on 198.18.0.11 port {}",
                Self::PORT
            )) {
                return sshd;
            }
            assert!(
                Instant::now() < deadline,
                "the test's sshd did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The file of its public key of one type.
    pub fn public_key_file(&self, kind: &str) -> PathBuf {
        self.dir.path().join(format!("ssh_host_{kind}_key.pub"))
    }

    /// Its public key of one type: `TYPE BASE64`.
    pub fn key(&self, kind: &str) -> String {
        public_key_line(&self.public_key_file(kind))
    }

    /// The SHA256 fingerprint of its key of one type.
    pub fn fingerprint(&self, kind: &str) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.public_key_file(kind))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_string()
    }
}

impl Drop for MultiKeySshd {
    fn drop(&mut self) {
        // The child is `ip netns exec`, which execs sshd: the same pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OpenSSH's own client, strict, with only `known_hosts`, logging in to
/// blue (198.18.0.11) on `port` to run `true`: what it did.
pub fn openssh_strict(known_hosts: &Path, port: u16) -> Output {
    netns(
        CTL,
        &[
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!("UserKnownHostsFile={}", known_hosts.display()),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=3",
            "-i",
            &format!("{LAB}/ssh/id_ed25519"),
            "-p",
            &port.to_string(),
            "batonlab@198.18.0.11",
            "true",
        ],
    )
}

/// A public key file's key: `TYPE BASE64`, without the comment.
pub fn public_key_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fresh public key of one type that no host has: `TYPE BASE64`.
pub fn stranger_key(kind: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    public_key_line(&key.with_extension("pub"))
}

/// Adds to a custom configuration the pair `hooks`: web's hosts switched
/// by the command method, with hooks that keep the holder in a file (whose
/// name has a space, to prove the quoting). The file starts as `blue`;
/// returns its path.
pub fn command_pair(dir: &Path) -> PathBuf {
    let holder = dir.join("holder file");
    fs::write(&holder, "blue\n").unwrap();
    let h = holder.display().to_string();
    let web = fs::read_to_string(dir.join("pairs/web.toml")).unwrap();
    let hooks = web.replace(
        "[traffic]\nmethod = \"vip\"\naddress = \"198.18.0.100/24\"\ninterface = \"eth0\"\n",
        &format!("[traffic]\nmethod = \"command\"\nswitch = \"test $(cat '{h}') = {{from}} && echo {{to}} > '{h}'\"\nquery = \"cat '{h}'\"\n"),
    );
    assert_ne!(hooks, web, "the traffic table was replaced");
    fs::write(dir.join("pairs/hooks.toml"), hooks).unwrap();
    holder
}

/// The benchmark client aimed at `target` (ADDRESS:PORT), built beside
/// baton (`cargo test` builds the examples): one new connection per
/// request, one line per request.
pub fn probe_at(target: &str, rate: u32, seconds: f64) -> Child {
    let baton = PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let probe = baton
        .parent()
        .map(|d| d.join("examples/probe"))
        .expect("the build directory");
    assert!(probe.exists(), "{} is not built", probe.display());
    Command::new("ip")
        .args(["netns", "exec", "baton-client"])
        .arg(probe)
        .args([target, &rate.to_string(), &seconds.to_string(), "3000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the probe")
}

/// One request the probe made: when it was sent (Unix seconds), and the
/// host that answered or why it failed.
pub struct Answer {
    pub sent: f64,
    pub host: Result<String, String>,
}

pub fn answers(child: Child) -> Vec<Answer> {
    let out = child.wait_with_output().expect("the probe ends");
    let mut all: Vec<Answer> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.splitn(4, ' ').collect();
            let sent = w.first()?.parse::<f64>().ok()? / 1e6;
            Some(Answer {
                sent,
                host: match *w.get(2)? {
                    "FAIL" => Err(w.get(3).unwrap_or(&"").to_string()),
                    h => Ok(h.to_string()),
                },
            })
        })
        .collect();
    all.sort_by(|a, b| a.sent.total_cmp(&b.sent));
    all
}

pub fn failures(all: &[Answer]) -> Vec<String> {
    all.iter().filter_map(|a| a.host.clone().err()).collect()
}

/// Ends one of a lab host's daemons (`sshd`, `nginx`) by its pid file;
/// `scripts/lab reset` (when the test's lab guard drops) starts it again.
#[allow(unsafe_code, reason = "kill(2) by pid: std signals only its children")]
pub fn stop(host: &str, daemon: &str) {
    let pid_file = Path::new(LAB).join(format!("hosts/{host}/{daemon}.pid"));
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on a pid the lab started for this host.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    for _ in 0..50 {
        // SAFETY: signal 0 only asks whether the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{daemon} on {host} did not end");
}

/// The failover runs among a journal's records: (start record, finished?).
pub fn failover_runs(records: &[serde_json::Value]) -> Vec<(serde_json::Value, bool)> {
    records
        .iter()
        .filter(|r| r["event"] == "start" && r["kind"] == "failover")
        .map(|s| {
            let done = records
                .iter()
                .any(|r| r["event"] == "finish" && r["run"] == s["run"]);
            (s.clone(), done)
        })
        .collect()
}

/// The commands of the last `end` record of `step` in the journal of the
/// state directory `state`: host, status, command, stdout.
pub fn step_commands(state: &Path, pair: &str, step: &str) -> Vec<(String, i64, String, String)> {
    step_end(state, pair, step)["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["host"].as_str().unwrap().to_string(),
                c["status"].as_i64().unwrap_or(-1),
                c["command"].as_str().unwrap().to_string(),
                c["stdout"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
