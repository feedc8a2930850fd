//! The configuration mutation test (issue 12, item 9): at least 10,000
//! seeded mutants of real configurations per run, each loaded in-process
//! with `baton::config::load`, none of which may panic, hang, take more than
//! its bound, lose its place, or leave a pair unusable without saying why.
//!
//! **Sources.** Three configurations, each written to its own temporary
//! directory with every file it refers to (SSH identity, known_hosts, TSIG
//! key, upload sources), so that a mutant gets past those checks: the
//! repository's example (`baton.toml`, `pairs/web.toml`, `pairs/postgres.toml`,
//! `known_hosts.example`); the bad-configuration corpus's good files
//! (`GOOD_GLOBAL`, `GOOD_PAIR` and its DNS pair, with `tests/fixtures/`
//! beside them as `tests/config_corpus.rs` sets them up); the shape of
//! what `scripts/lab up` writes (`pair_toml`, `write_baton_config`: a VIP
//! pair and a DNS pair with a TSIG key two directories up, a change with an
//! upload), embedded here so that the lab need not exist; and two HAProxy
//! pairs on one balancer (the corpus's, every key set, and the shape of the
//! lab's `lb_pair_toml`) beside a VIP pair whose host is that balancer.
//! Each unmutated source must be accepted as it is
//! (`the_sources_are_accepted_unmutated`).
//!
//! **Mutants.** Mutant N of seed S is a pure function of (S, N): one to five
//! mutations of baton.toml, a pair file or (rarely) the TSIG key file, drawn
//! by a xorshift generator seeded from S and N: bit flips and byte
//! replacements (invalid UTF-8 included), deleted byte ranges, truncation,
//! deleted, duplicated, swapped and moved lines, tokens inserted anywhere
//! (`"`, `[`, `[[`, `]`, `=`, `{`, `}`, `,`, newlines, NUL and other control
//! characters, U+202E, a BOM, very long strings, huge, negative and float
//! numbers, `1e999`, `"99999999h"`, `"0s"`, `"-1s"`, `"::"`, `"0.0.0.0/0"`,
//! `"256.1.1.1"`, placeholders `{host}`, `{address}`, `{nope}`), a value
//! replaced by one of another type or form, a key renamed (to another key
//! of the schema, a dotted key, or a misspelling), table headers duplicated,
//! renamed or turned into arrays of tables, whole snippets inserted (a third
//! host, another traffic method, checks of every kind, changes with
//! uploads, maintenance windows), nesting thousands deep, CRLF line ends;
//! and now and then a pair file renamed (a name that differs from another's
//! only in case, an invalid name, one with a newline or U+202E in it).
//!
//! **What each mutant must satisfy.**
//! - `config::load` returns (a panic is caught and reported with the seed
//!   and the mutant's index; every mutant runs on a thread named after its
//!   index, so that even a stack overflow, which cannot be caught, names
//!   it) and uses at most 2 s of its thread's CPU time for the load and the
//!   plans (CPU time, not wall time, so that a busy CI machine does not
//!   fail it); a mutant still running after 10 s of wall time is a hang: a
//!   watchdog prints how to reproduce it and ends the test process.
//! - Every problem and warning has a non-empty message and fix, with no
//!   control or bidirectional-override character in either, and as `check`
//!   prints it (`FILE:LINE:COLUMN: MESSAGE`, then the fix) it is two lines
//!   of printable characters, the file's name included (shown as the
//!   operator will read it); and it has **a place**: the file
//!   is one of the configuration's files; in a file that baton could read
//!   (a regular file within the 1 MiB bound) and that is not empty, the line
//!   and the column are at least 1 and lie inside the text (at most one past
//!   the end of a line). Line 0, "the file as a whole", is a place only for
//!   a file that is empty or too large to read, and for a pair file whose
//!   name differs from another's only in case (a problem of its name, not of
//!   its text; no other arises here: every file exists and is regular).
//! - One mistake, one message: no message is given twice at one place
//!   (with two fixes, say).
//! - Nothing is refused without a word: a pair file that did not validate
//!   has a problem naming its pair (or a global one); settings that did not
//!   validate have a global problem; a configuration without problems is
//!   accepted by `select`, one with problems is not; loading creates no
//!   state directory.
//! - Every pair that validated (the pairs of an accepted mutant and those
//!   usable when named) keeps the model's promises (two hosts that are two
//!   machines, a VIP that is no host's address, DNS servers, checks with
//!   distinct names, changes that do something) and survives the dry run:
//!   `cli::plan::build` (the pure part of `baton plan`, no network) for a
//!   switchover, a failover and a rejoin, and an apply of each of its
//!   changes, from each host to the other, serialized as `baton plan
//!   --json` would (not yet for a pair of method `haproxy`, which the
//!   executor does not drive yet); `change::hash` of every change returns
//!   a hash.
//! - At the end, the process's peak resident memory (VmHWM) is under
//!   500 MiB (configuration files are read within 1 MiB each; a mutant
//!   holds a few of them).
//!
//! `the_oracle_refuses_a_problem_without_a_place_or_a_fix` shows that these
//! judgements refuse what they must; the last tests keep what the mutants
//! found as examples.
//!
//! **Knobs.** `BATON_MUTATION_SEED=N` (decimal or 0x-hex; the default is
//! fixed, so that every CI run checks the same mutants and a failure is
//! always reproducible), `BATON_MUTANTS=N` (default 10,000),
//! `BATON_MUTANT=I` (run only mutant I and print its files: how to look at
//! a reported failure). The count, the accepted/refused split, the time,
//! the slowest mutant and the peak memory are printed at the end
//! (`--nocapture` shows them).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton::cli::plan;
use baton::config::{self, Diagnostic, Loaded};
use baton::core::cycle::Kind;

/// The seed when `BATON_MUTATION_SEED` does not give one.
const DEFAULT_SEED: u64 = 0x6261_746f_6e12_0009;
/// Mutants per run when `BATON_MUTANTS` does not say.
const DEFAULT_MUTANTS: usize = 10_000;
/// CPU time one mutant (load and plans) may take.
const CPU_BOUND: Duration = Duration::from_secs(2);
/// Wall time after which a mutant is taken to hang.
const HANG_BOUND: Duration = Duration::from_secs(10);
/// Peak resident memory allowed at the end, in KiB.
const RSS_BOUND_KIB: u64 = 500 * 1024;
/// Stack of the thread each mutant runs on (tokio's workers have as much).
const STACK: usize = 2 << 20;
/// The bound `readfile::CONFIG` puts on a configuration file.
const CONFIG_BOUND: usize = 1 << 20;

// ---------------------------------------------------------------------------
// The sources

const GOOD_GLOBAL: &str = "state_dir = \"state\"\nenvironments = [\"dev\", \"test\", \"prod\"]\n\n[ssh]\nuser = \"deploy\"\nidentity = \"id_test\"\nknown_hosts = \"known_hosts\"\n";

const GOOD_PAIR: &str = "environment = \"dev\"\n\n[hosts.blue]\naddress = \"198.51.100.11\"\n\n[hosts.green]\naddress = \"198.51.100.12\"\n\n[traffic]\nmethod = \"vip\"\naddress = \"198.51.100.100/24\"\ninterface = \"eth0\"\n\n[[checks]]\nkind = \"http\"\nurl = \"http://{address}/\"\n";

/// The corpus test's DNS pair (`the_same_vip_or_dns_name_in_two_pairs_is_refused`).
const GOOD_DNS_PAIR: &str = "environment = \"dev\"\n[hosts.a]\naddress = \"198.51.100.31\"\n[hosts.b]\naddress = \"198.51.100.32\"\n\n[traffic]\nmethod = \"dns\"\nname = \"www.example.test.\"\nzone = \"example.test.\"\nservers = [\"198.51.100.53\"]\ntsig_key = \"update.key\"\n\n[[checks]]\nkind = \"tcp\"\nport = 80\n";

/// A pair behind an HAProxy balancer, every key of method `haproxy` set
/// (the corpus test's `GOOD_HAPROXY_PAIR` with the optional keys).
const GOOD_HAPROXY_PAIR: &str = "environment = \"dev\"\n\n[hosts.teal]\naddress = \"198.51.100.41\"\n\n[hosts.coral]\naddress = \"198.51.100.42\"\n\n[traffic]\nmethod = \"haproxy\"\nhost = \"lb\"\naddress = \"198.51.100.40\"\nssh_port = 22\nsocket = \"/run/haproxy/admin.sock\"\nbackend = \"shop\"\nfrontend = \"198.51.100.40:80\"\nweight = 100\ndrain_timeout = \"30s\"\nmax_error_increase = 1.0\nmax_latency_factor = 2\nmin_requests = 20\n\n[[checks]]\nkind = \"http\"\nurl = \"http://{address}/\"\n";

/// What `write_baton_config` in scripts/lab writes as config/baton.toml.
const LAB_GLOBAL: &str = "# Written by scripts/lab up: settings for all lab pairs.
state_dir = \"../state\"
environments = [\"dev\", \"test\", \"prod\"]

[ssh]
user = \"batonlab\"
port = 22
identity = \"../ssh/id_ed25519\"
known_hosts = \"../ssh/known_hosts\"
connect_timeout = \"3s\"
command_timeout = \"30s\"
sudo = true
";

/// The changes `pair_toml` in scripts/lab gives every pair.
const LAB_CHANGES: &str = "
[changes.v2]
label = \"service version 2\"
upload = [{ from = \"files/release-notes.txt\", to = \"/srv/baton-lab/release-notes.txt\", mode = \"0644\" }]
steps = [\"sed -i 's/version=[0-9]*/version=2/' /srv/baton-lab/index.html\", \"echo 2 > /srv/baton-lab/VERSION\"]
rollback = [\"sed -i 's/version=[0-9]*/version=1/' /srv/baton-lab/index.html\", \"echo 1 > /srv/baton-lab/VERSION\", \"rm -f /srv/baton-lab/release-notes.txt\"]

[changes.v1]
label = \"service version 1\"
steps = [\"sed -i 's/version=[0-9]*/version=1/' /srv/baton-lab/index.html\", \"echo 1 > /srv/baton-lab/VERSION\"]
";

/// The lab's check, as `pair_toml` writes it.
const LAB_CHECK: &str = "
[[checks]]
name = \"page\"
kind = \"http\"
url = \"http://{address}/\"
expect_status = 200
expect_body = \"host={host} \"
timeout = \"2s\"
";

fn lab_pair(desc: &str, hosts: [(&str, &str); 2], traffic: &str) -> String {
    format!(
        "# Written by scripts/lab up: {desc}.\nenvironment = \"dev\"\nversion_command = \"cat /srv/baton-lab/VERSION\"\nobserve_period = \"2s\"\n\n[hosts.{}]\naddress = \"{}\"\n\n[hosts.{}]\naddress = \"{}\"\n\n[traffic]\n{traffic}{LAB_CHECK}{LAB_CHANGES}",
        hosts[0].0, hosts[0].1, hosts[1].0, hosts[1].1
    )
}

/// One configuration to mutate: its files (relative to its directory) and
/// the files they refer to.
struct Scenario {
    name: &'static str,
    /// baton.toml, relative.
    global: &'static str,
    /// The files mutants are made of: baton.toml and the pair files.
    config: Vec<(String, Vec<u8>)>,
    /// A TSIG key file, mutated now and then.
    key: Option<(String, Vec<u8>)>,
    /// Everything else the configuration refers to, with its mode.
    support: Vec<(String, Vec<u8>, u32)>,
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn repo_file(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file a snippet's change uploads, beside every pair file.
const UPLOAD: &[u8] = b"uploaded by a mutant's change\n";

fn scenarios() -> Vec<Scenario> {
    let fixtures = [
        "empty",
        "garbage.key",
        "id_test",
        "known_hosts",
        "md5.key",
        "update.key",
        "world.key",
    ];
    let mut corpus_support = Vec::new();
    for dir in ["", "pairs/"] {
        for f in fixtures {
            let mode = if f == "world.key" { 0o644 } else { 0o600 };
            corpus_support.push((format!("{dir}{f}"), fixture(f), mode));
        }
        corpus_support.push((format!("{dir}upload.txt"), UPLOAD.to_vec(), 0o644));
    }
    let key = fixture("update.key");
    let mut haproxy_support = corpus_support.clone();
    haproxy_support.push((
        "pairs/files/release-notes.txt".to_string(),
        b"Version 2 of the lab service.\n".to_vec(),
        0o644,
    ));
    vec![
        Scenario {
            name: "example",
            global: "baton.toml",
            config: vec![
                ("baton.toml".to_string(), repo_file("baton.toml")),
                ("pairs/postgres.toml".to_string(), repo_file("pairs/postgres.toml")),
                ("pairs/web.toml".to_string(), repo_file("pairs/web.toml")),
            ],
            key: None,
            support: vec![
                ("known_hosts.example".to_string(), repo_file("known_hosts.example"), 0o644),
                ("pairs/upload.txt".to_string(), UPLOAD.to_vec(), 0o644),
                ("pairs/update.key".to_string(), key.clone(), 0o600),
            ],
        },
        Scenario {
            name: "corpus",
            global: "baton.toml",
            config: vec![
                ("baton.toml".to_string(), GOOD_GLOBAL.as_bytes().to_vec()),
                ("pairs/api.toml".to_string(), GOOD_DNS_PAIR.as_bytes().to_vec()),
                ("pairs/web.toml".to_string(), GOOD_PAIR.as_bytes().to_vec()),
            ],
            key: None,
            support: corpus_support,
        },
        Scenario {
            name: "lab",
            global: "config/baton.toml",
            config: vec![
                ("config/baton.toml".to_string(), LAB_GLOBAL.as_bytes().to_vec()),
                (
                    "config/pairs/api.toml".to_string(),
                    lab_pair(
                        "the DNS pair",
                        [("amber", "198.18.0.21"), ("violet", "198.18.0.22")],
                        "method = \"dns\"\nname = \"app.baton.test.\"\nzone = \"baton.test.\"\nservers = [\"198.18.0.53:53\", \"198.18.0.54:53\"]\ntsig_key = \"../../keys/update.key\"\n",
                    )
                    .into_bytes(),
                ),
                (
                    "config/pairs/web.toml".to_string(),
                    lab_pair(
                        "the VIP pair",
                        [("blue", "198.18.0.11"), ("green", "198.18.0.12")],
                        "method = \"vip\"\naddress = \"198.18.0.100/24\"\ninterface = \"eth0\"\n",
                    )
                    .into_bytes(),
                ),
            ],
            key: Some(("keys/update.key".to_string(), key)),
            support: vec![
                ("ssh/id_ed25519".to_string(), fixture("id_test"), 0o600),
                ("ssh/known_hosts".to_string(), fixture("known_hosts"), 0o644),
                (
                    "config/pairs/files/release-notes.txt".to_string(),
                    b"Version 2 of the lab service.\n".to_vec(),
                    0o644,
                ),
                ("config/pairs/upload.txt".to_string(), UPLOAD.to_vec(), 0o644),
                ("config/pairs/update.key".to_string(), fixture("update.key"), 0o600),
            ],
        },
        Scenario {
            name: "haproxy",
            global: "baton.toml",
            config: vec![
                ("baton.toml".to_string(), GOOD_GLOBAL.as_bytes().to_vec()),
                // The shape of `lb_pair_toml` in scripts/lab.d/lb.sh, on the
                // same balancer as `shop` (another backend and frontend),
                // whose address is a host of `web`'s (no conflict).
                (
                    "pairs/lb.toml".to_string(),
                    lab_pair(
                        "the HAProxy pair",
                        [("amber", "198.51.100.51"), ("violet", "198.51.100.52")],
                        "method = \"haproxy\"\nhost = \"lb\"\naddress = \"198.51.100.40\"\nssh_port = 22\nsocket = \"/var/lib/baton-lab/hosts/lb/haproxy.sock\"\nbackend = \"lb\"\nfrontend = \"198.51.100.40:8080\"\ndrain_timeout = \"10s\"\n",
                    )
                    .into_bytes(),
                ),
                ("pairs/shop.toml".to_string(), GOOD_HAPROXY_PAIR.as_bytes().to_vec()),
                (
                    "pairs/web.toml".to_string(),
                    GOOD_PAIR.replace("198.51.100.11", "198.51.100.40").into_bytes(),
                ),
            ],
            key: None,
            support: haproxy_support,
        },
    ]
}

/// A scenario written out: a temporary directory with its support files.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(s: &Scenario) -> Site {
        let dir = tempfile::tempdir().expect("temporary directory");
        let files = s
            .support
            .iter()
            .map(|(p, b, m)| (p, b, *m))
            .chain(s.key.iter().map(|(p, b)| (p, b, 0o600)));
        for (rel, bytes, mode) in files {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            fs::write(&path, bytes).expect("write a support file");
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        for (rel, _) in &s.config {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        }
        Site { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

// ---------------------------------------------------------------------------
// The generator

/// xorshift64*: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    /// The generator of mutant `index` of `seed` (splitmix64 of both, so
    /// that neighbouring indices are unrelated).
    fn for_mutant(seed: u64, index: usize) -> Rng {
        let mut z = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(z | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// Tokens inserted anywhere.
const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\\",
    "\n",
    "\r",
    "\r\n",
    "\u{0}",
    "\u{7}",
    "\u{8}",
    "\u{1b}",
    "\u{7f}",
    "\u{202e}",
    "\u{feff}",
    "\u{2028}",
    "é",
    " ",
    "\t",
    "\"\"\"",
    "'''",
    "=\"",
    "\"x\"",
    "1",
    "-",
    "+",
    "0x",
    "1e999",
    "-1",
    "99999999999999999999",
    "{host}",
    "{address}",
    "{nope}",
    "${x}",
    "\\u0000",
    "\\n",
    "\\u202e",
    "\\",
    "\\x",
];

/// Values (TOML syntax) that replace a value.
const VALUES: &[&str] = &[
    "\"\"",
    "\" \"",
    "0",
    "-1",
    "1",
    "2",
    "50",
    "51",
    "100",
    "101",
    "599",
    "600",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1.5",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "1e999",
    "1e-999",
    "0x1f",
    "0o777",
    "0b1",
    "1_000",
    "true",
    "false",
    "[]",
    "[1, 2]",
    "[\"a\", 1]",
    "[[]]",
    "{}",
    "{ a = 1 }",
    "{ method = \"vip\" }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "1979-05-27",
    "\"0s\"",
    "\"-1s\"",
    "\"1ns\"",
    "\"1ms\"",
    "\"10ms\"",
    "\"99999999h\"",
    "\"18446744073709551615s\"",
    "\"1e999s\"",
    "\"5m\"",
    "\"1h\"",
    "\"25h\"",
    "\"90days\"",
    "\"91days\"",
    "\"1y\"",
    "\"5s\"",
    "\"5.5s\"",
    "\"1s 500ms\"",
    "\"::\"",
    "\"::1\"",
    "\"0.0.0.0/0\"",
    "\"0.0.0.0\"",
    "\"256.1.1.1\"",
    "\"198.51.100.13\"",
    "\"198.51.100.11\"",
    "\"192.0.2.100/24\"",
    "\"198.18.0.100/33\"",
    "\"::/0\"",
    "\"2001:db8::1/64\"",
    "\"2001:db8::1\"",
    "\"::ffff:198.51.100.11\"",
    "\"::ffff:198.18.0.12\"",
    "\"::ffff:192.0.2.100/120\"",
    "\"::ffff:198.51.100.100/120\"",
    "\"fe80::1%eth0\"",
    "\"224.0.0.1/24\"",
    "\"198.51.100.53:0\"",
    "\"198.51.100.53:53\"",
    "\"[::1]:53\"",
    "\"[2001:db8::53]:53\"",
    "[\"198.51.100.53\", \"198.51.100.53:53\"]",
    "[\"{address}\"]",
    "\"{host}\"",
    "\"{address}\"",
    "\"{nope}\"",
    "\"${HOME}\"",
    "\"{}\"",
    "\"http://{address}:99999/\"",
    "\"https://{host}/\"",
    "\"http://[{address}]/\"",
    "\"vip\"",
    "\"dns\"",
    "\"command\"",
    "\"haproxy\"",
    "\"198.51.100.40:80\"",
    "\"198.51.100.40\"",
    "\"/run/haproxy/admin.sock\"",
    "\"web/1\"",
    "\"be.web:1\"",
    "256",
    "257",
    "0.5",
    "\"http\"",
    "\"https\"",
    "\"tcp\"",
    "\"prod\"",
    "\"dev\"",
    "\"nope\"",
    "\"Sun 02:00-04:00\"",
    "[\"daily 00:00-24:00\"]",
    "[\"Fri-Mon 23:00-01:00\"]",
    "[\"Sun 25:00-26:00\"]",
    "[\"Mon-Mon 00:00-00:00\"]",
    "[\"* 24:00-24:00\"]",
    "[]",
    "\"Europe/Berlin\"",
    "\"UTC\"",
    "\"Mars/Olympus_Mons\"",
    "\"../../../../etc/passwd\"",
    "\"/dev/zero\"",
    "\"/dev/null\"",
    "\"/\"",
    "\".\"",
    "\"~/x\"",
    "\"~\"",
    "\"update.key\"",
    "\"md5.key\"",
    "\"world.key\"",
    "\"garbage.key\"",
    "\"empty\"",
    "\"id_test\"",
    "\"known_hosts\"",
    "\"upload.txt\"",
    "\"pairs\"",
    "\"0644\"",
    "\"644\"",
    "\"7777\"",
    "\"17777\"",
    "\"0999\"",
    "\"-644\"",
    "\"+644\"",
    "\"\\u0000\"",
    "\"\\n\"",
    "\"a\\tb\"",
    "\"\\u202e\"",
    "\"\\u001b[31m\"",
    "\"\\u0085\"",
    "'literal'",
    "'''multi\nline'''",
    "\"\"\"\nmulti\n\"\"\"",
    "\"www.example.test.\"",
    "\"example.test.\"",
    "\"a..b.\"",
    "\"-a.b.\"",
    "\"*.example.test.\"",
    "\"A\"",
    "\"AAAA\"",
    "\"ANY\"",
    "\"a b\"",
    "\"a@b\"",
    "\"0BAD\"",
    "[\"true\"]",
    "[\"\"]",
    "[\" \"]",
];

/// Contents put inside a string's quotes.
const STRINGS: &[&str] = &[
    "",
    " ",
    "{host}",
    "{address}",
    "{nope}",
    "{",
    "}",
    "{{host}}",
    "${host}",
    "{host",
    "\\u0000",
    "\\n",
    "\\r\\n",
    "\\t",
    "\\u202e",
    "\\u001b",
    "\\u0007",
    "\\\\",
    "\\\"",
    "\\uD800",
    "\\U0010FFFF",
    "\\U00110000",
    "é",
    "\u{202e}",
    "\u{feff}",
    "\u{200b}",
    "0s",
    "-1s",
    "99999999h",
    "1e999",
    "::",
    "0.0.0.0/0",
    "256.1.1.1",
    "198.51.100.12",
    "198.51.100.11",
    "/",
    ".",
    "..",
    "~",
    "~/",
    "\\x41",
];

/// Keys of the schema (and near misses), for renames.
const KEYS: &[&str] = &[
    "state_dir",
    "environments",
    "soak",
    "ssh",
    "maintenance",
    "user",
    "port",
    "identity",
    "passphrase_env",
    "known_hosts",
    "accept_new_host_keys",
    "connect_timeout",
    "command_timeout",
    "sudo",
    "time_zone",
    "windows",
    "estimate",
    "environment",
    "canary",
    "version_command",
    "fence",
    "observe_period",
    "hosts",
    "traffic",
    "checks",
    "changes",
    "address",
    "ssh_port",
    "method",
    "interface",
    "arp_count",
    "batch",
    "quiesce",
    "name",
    "zone",
    "servers",
    "tsig_key",
    "switch_ttl",
    "ttl",
    "propagation_timeout",
    "switch",
    "query",
    "host",
    "socket",
    "backend",
    "frontend",
    "weight",
    "drain_timeout",
    "max_error_increase",
    "max_latency_factor",
    "min_requests",
    "kind",
    "url",
    "expect_status",
    "expect_body",
    "ca_file",
    "record_type",
    "server",
    "expect",
    "command",
    "expect_output",
    "successes",
    "failures_allowed",
    "interval",
    "timeout",
    "label",
    "upload",
    "steps",
    "rollback",
    "from",
    "to",
    "mode",
    "traffic.method",
    "hosts.blue.address",
    "hosts.third.address",
    "ssh.user",
    "checks.kind",
    "\"quoted key\"",
    "'literal key'",
    "\"\"",
    "a b",
    "Address",
    "adress",
    "méthod",
    "x.y.z.w",
];

/// Table headers, for renames and insertions.
const HEADERS: &[&str] = &[
    "[ssh]",
    "[maintenance]",
    "[traffic]",
    "[hosts]",
    "[hosts.blue]",
    "[hosts.green]",
    "[hosts.third]",
    "[hosts.\"b l u e\"]",
    "[hosts.\"\"]",
    "[[hosts]]",
    "[[checks]]",
    "[checks]",
    "[changes]",
    "[changes.x]",
    "[[changes.x.upload]]",
    "[changes.\"a.b\"]",
    "[traffic.method]",
    "[ssh.user]",
    "[a.b.c.d.e.f]",
    "[]",
    "[[]]",
    "[ traffic ]",
    "[[traffic]]",
    "[checks.0]",
];

/// Whole lines inserted between lines.
const SNIPPETS: &[&str] = &[
    "[hosts.third]\naddress = \"198.51.100.13\"\n",
    "[hosts.blue]\naddress = \"::\"\n",
    "[hosts.blue]\nssh_port = 0\n",
    "[[checks]]\nkind = \"tcp\"\nport = 80\n",
    "[[checks]]\nkind = \"tcp\"\nport = 80\nsuccesses = 100\nfailures_allowed = 100\ninterval = \"1h\"\ntimeout = \"5m\"\n",
    "[[checks]]\nname = \"page\"\nkind = \"http\"\nurl = \"http://{address}/\"\n",
    "[[checks]]\nkind = \"dns\"\nquery = \"www.example.test.\"\nserver = \"{address}:53\"\nexpect = \"{address}\"\n",
    "[[checks]]\nkind = \"dns\"\nquery = \"www.example.test.\"\nrecord_type = \"txt\"\nserver = \"{host}\"\nexpect = \"x\"\n",
    "[[checks]]\nkind = \"https\"\nurl = \"https://{host}/\"\nca_file = \"known_hosts\"\n",
    "[[checks]]\nkind = \"command\"\ncommand = \"true\"\nexpect_output = \"{host}\"\n",
    "[[checks]]\n",
    "fence = \"/usr/local/bin/fence {host} {address}\"\n",
    "fence = \"/usr/local/bin/fence {nope}\"\n",
    "canary = true\n",
    "observe_period = \"0s\"\n",
    "version_command = \"cat /VERSION\"\n",
    "[changes.up]\nupload = [{ from = \"upload.txt\", to = \"/etc/x\", mode = \"0600\" }]\n",
    "[changes.up2]\nsteps = [\"true\"]\n[[changes.up2.upload]]\nfrom = \"upload.txt\"\nto = \"/etc/y\"\n",
    "[changes.bare]\nlabel = \"bare\"\n",
    "[changes.\"no good\"]\nsteps = [\"\"]\nrollback = [\" \"]\n",
    "[maintenance]\ntime_zone = \"UTC\"\nwindows = [\"daily 00:00-24:00\"]\nestimate = \"1s\"\n",
    "[maintenance]\nwindows = []\n",
    "[maintenance]\ntime_zone = \"Europe/Berlin\"\nwindows = [\"Sat 23:00-01:00\", \"Sun 00:00-00:30\"]\n",
    "[ssh]\nuser = \"other\"\nport = 2222\nidentity = \"id_test\"\n",
    "[ssh]\naccept_new_host_keys = true\nknown_hosts = \"nonexistent\"\n",
    "[ssh]\npassphrase_env = \"BATON_PASS\"\n",
    "[traffic]\nmethod = \"dns\"\nname = \"www.example.test.\"\nzone = \"example.test.\"\nservers = [\"198.51.100.53\", \"[2001:db8::53]:53\"]\ntsig_key = \"update.key\"\nswitch_ttl = \"5s\"\nttl = \"60s\"\npropagation_timeout = \"1h\"\n",
    "[traffic]\nmethod = \"command\"\nswitch = \"sw {from} {to} {from_address} {to_address}\"\nquery = \"q\"\n",
    "[traffic]\nmethod = \"vip\"\naddress = \"2001:db8::100/64\"\ninterface = \"eth0.100\"\nquiesce = \"5s\"\nbatch = false\narp_count = 50\n",
    "[traffic]\nmethod = \"vip\"\naddress = \"198.51.100.100/24\"\ninterface = \"eth0\"\nquiesce = \"1ms\"\n",
    "[traffic]\nmethod = \"haproxy\"\nhost = \"lb\"\naddress = \"198.51.100.40\"\nsocket = \"/run/haproxy/admin.sock\"\nbackend = \"web\"\nfrontend = \"198.51.100.40:80\"\n",
    "[traffic]\nmethod = \"haproxy\"\nhost = \"lb2\"\naddress = \"2001:db8::40\"\nssh_port = 2222\nsocket = \"/run/haproxy/admin.sock\"\nbackend = \"be.web:1\"\nfrontend = \"[2001:db8::80]:443\"\nweight = 256\ndrain_timeout = \"0s\"\nmax_error_increase = 0.0\nmax_latency_factor = 1\nmin_requests = 1000000\n",
    "soak = \"1h\"\n",
    "soak = \"0s\"\n",
    "environments = [\"a\"]\n",
    "environment = \"prod\"\n",
    "state_dir = \"state\"\n",
    "state_dir = \"pairs/web.toml\"\n",
    "x = 1\n",
    "= 1\n",
    "# a comment\n",
    "\n\n\n",
];

/// Other names for a pair file (`.toml` is added; the empty one stands for
/// a name of 200 characters): names that differ from another pair's only in
/// case, invalid names, invisible and control characters.
const PAIR_NAMES: &[&str] = &[
    "WEB",
    "Db",
    "API",
    "we b",
    "-web",
    "_web",
    "web.toml",
    "é",
    "\u{202e}lmth",
    "a\nb",
    "a\tb",
    "",
    "0",
    "web-2_b",
    "..",
    ".hidden",
];

/// One mutation; returns what it did, for the report.
fn mutate(rng: &mut Rng, text: &mut Vec<u8>) -> String {
    let op = rng.below(20);
    match op {
        0 => {
            if text.is_empty() {
                return "flip: empty".to_string();
            }
            let at = rng.below(text.len());
            let bit = rng.below(8);
            text[at] ^= 1 << bit;
            format!("flip bit {bit} of byte {at}")
        }
        1 => {
            const BYTES: &[u8] = b"\"[]={},.#\\'\n\r\t \x00\x7f\xff\xc3\x80\xe2";
            if text.is_empty() {
                return "set: empty".to_string();
            }
            let at = rng.below(text.len());
            let b = BYTES[rng.below(BYTES.len())];
            text[at] = b;
            format!("set byte {at} to {b:#04x}")
        }
        2 => {
            if text.is_empty() {
                return "delete: empty".to_string();
            }
            let at = rng.below(text.len());
            let len = (1 + rng.below(16)).min(text.len() - at);
            text.drain(at..at + len);
            format!("delete bytes {at}..{}", at + len)
        }
        3 | 4 => {
            let at = rng.below(text.len() + 1);
            let token = rng.pick(TOKENS);
            text.splice(at..at, token.bytes());
            format!("insert {token:?} at byte {at}")
        }
        5 => {
            let mut lines = lines(text);
            if lines.is_empty() {
                return "delete line: empty".to_string();
            }
            let i = rng.below(lines.len());
            lines.remove(i);
            *text = lines.concat();
            format!("delete line {}", i + 1)
        }
        6 => {
            let mut lines = lines(text);
            if lines.is_empty() {
                return "duplicate line: empty".to_string();
            }
            let i = rng.below(lines.len());
            let to = rng.below(lines.len() + 1);
            let line = with_newline(&lines[i]);
            lines.insert(to, line);
            *text = lines.concat();
            format!("copy line {} before line {}", i + 1, to + 1)
        }
        7 => {
            let mut lines = lines(text);
            if lines.len() < 2 {
                return "swap lines: too few".to_string();
            }
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            let last = lines.len() - 1;
            lines[last] = with_newline(&lines[last]);
            lines.swap(a, b);
            *text = lines.concat();
            format!("swap lines {} and {}", a + 1, b + 1)
        }
        8 | 9 => replace_value(rng, text),
        10 | 11 => replace_string(rng, text),
        12 => rename_key(rng, text),
        13 => {
            let mut lines = lines(text);
            let at = rng.below(lines.len() + 1);
            let snippet = rng.pick(SNIPPETS);
            if at > 0 {
                lines[at - 1] = with_newline(&lines[at - 1]);
            }
            lines.insert(at, snippet.as_bytes().to_vec());
            *text = lines.concat();
            format!("insert {snippet:?} before line {}", at + 1)
        }
        14 => header(rng, text),
        15 => {
            let at = rng.below(text.len() + 1);
            text.truncate(at);
            format!("truncate at byte {at}")
        }
        16 => {
            let depth = *rng.pick(&[&10usize, &100, &1000, &10_000, &100_000]);
            let (open, close, key) = match rng.below(3) {
                0 => ("[", "]", "deep = "),
                1 => ("{ a = ", " }", "deep = "),
                _ => ("[{ a = ", " }]", "deep = "),
            };
            let mut s = String::from(key);
            s.push_str(&open.repeat(depth));
            s.push('1');
            s.push_str(&close.repeat(depth));
            s.push('\n');
            let mut lines = lines(text);
            let at = rng.below(lines.len() + 1);
            if at > 0 {
                lines[at - 1] = with_newline(&lines[at - 1]);
            }
            lines.insert(at, s.into_bytes());
            *text = lines.concat();
            format!(
                "insert a value nested {depth} deep ({open}) before line {}",
                at + 1
            )
        }
        17 => {
            let len = *rng.pick(&[&300usize, &5000, &70_000, &400_000]);
            let c = rng.pick(&["a", "é", "{", "\\u0000", " "]);
            let long = c.repeat(len);
            let at = rng.below(text.len() + 1);
            let quoted = rng.chance(2);
            let s = if quoted { format!("\"{long}\"") } else { long };
            text.splice(at..at, s.bytes());
            format!("insert {len} times {c:?} (quoted: {quoted}) at byte {at}")
        }
        18 => {
            if rng.chance(2) {
                let crlf: Vec<u8> = text
                    .iter()
                    .flat_map(|&b| {
                        if b == b'\n' {
                            vec![b'\r', b'\n']
                        } else {
                            vec![b]
                        }
                    })
                    .collect();
                *text = crlf;
                "CRLF line ends".to_string()
            } else {
                text.splice(0..0, "\u{feff}".bytes());
                "a byte order mark".to_string()
            }
        }
        _ => {
            // Move a line elsewhere (out of its table, into another).
            let mut lines = lines(text);
            if lines.len() < 2 {
                return "move line: too few".to_string();
            }
            let i = rng.below(lines.len());
            let line = with_newline(&lines.remove(i));
            let to = rng.below(lines.len() + 1);
            if to > 0 {
                lines[to - 1] = with_newline(&lines[to - 1]);
            }
            lines.insert(to, line);
            *text = lines.concat();
            format!("move line {} before line {}", i + 1, to + 1)
        }
    }
}

/// The lines of a text, each with its newline (the last may lack it).
fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn with_newline(line: &[u8]) -> Vec<u8> {
    let mut l = line.to_vec();
    if !l.ends_with(b"\n") {
        l.push(b'\n');
    }
    l
}

/// The indices of lines like `key = value`.
fn assignments(lines: &[Vec<u8>]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let t = String::from_utf8_lossy(l);
            let t = t.trim_start();
            !t.starts_with('#') && !t.starts_with('[') && t.contains('=')
        })
        .map(|(i, _)| i)
        .collect()
}

fn replace_value(rng: &mut Rng, text: &mut Vec<u8>) -> String {
    let mut lines = lines(text);
    let candidates = assignments(&lines);
    if candidates.is_empty() {
        return "replace value: no assignment".to_string();
    }
    let i = candidates[rng.below(candidates.len())];
    let line = &lines[i];
    let eq = line.iter().position(|&b| b == b'=').unwrap_or(0);
    let value = rng.pick(VALUES);
    let mut new = line[..=eq].to_vec();
    new.push(b' ');
    new.extend_from_slice(value.as_bytes());
    new.push(b'\n');
    lines[i] = new;
    *text = lines.concat();
    format!("line {}: value replaced by {value}", i + 1)
}

fn replace_string(rng: &mut Rng, text: &mut Vec<u8>) -> String {
    // Every `"…"` on one line (no escapes inside), by byte range.
    let mut strings = Vec::new();
    let mut open = None;
    for (i, &b) in text.iter().enumerate() {
        match (b, open) {
            (b'"', None) => open = Some(i),
            (b'"', Some(s)) => {
                strings.push((s + 1, i));
                open = None;
            }
            (b'\n', _) => open = None,
            _ => {}
        }
    }
    if strings.is_empty() {
        return "replace string: none".to_string();
    }
    let (start, end) = strings[rng.below(strings.len())];
    let content = rng.pick(STRINGS);
    let keep = rng.chance(3);
    let new: Vec<u8> = if keep {
        // Insert into the string instead of replacing it.
        let at = start + rng.below(end - start + 1);
        let mut v = text[start..at].to_vec();
        v.extend_from_slice(content.as_bytes());
        v.extend_from_slice(&text[at..end]);
        v
    } else {
        content.as_bytes().to_vec()
    };
    text.splice(start..end, new);
    format!(
        "string at byte {start}: {} {content:?}",
        if keep { "inserted" } else { "replaced by" }
    )
}

fn rename_key(rng: &mut Rng, text: &mut Vec<u8>) -> String {
    let mut lines = lines(text);
    let candidates = assignments(&lines);
    if candidates.is_empty() {
        return "rename key: no assignment".to_string();
    }
    let i = candidates[rng.below(candidates.len())];
    let line = lines[i].clone();
    let eq = line.iter().position(|&b| b == b'=').unwrap_or(0);
    let old = String::from_utf8_lossy(&line[..eq]).trim().to_string();
    let key = match rng.below(4) {
        0 if old.len() > 1 => {
            let cut = rng.below(old.len());
            let mut k = old.clone().into_bytes();
            k.remove(cut);
            String::from_utf8_lossy(&k).into_owned()
        }
        1 => old.to_uppercase(),
        _ => rng.pick(KEYS).to_string(),
    };
    let mut new = key.clone().into_bytes();
    new.push(b' ');
    new.extend_from_slice(&line[eq..]);
    lines[i] = new;
    *text = lines.concat();
    format!("line {}: key `{old}` renamed `{key}`", i + 1)
}

fn header(rng: &mut Rng, text: &mut Vec<u8>) -> String {
    let mut lines = lines(text);
    let headers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(b"["))
        .map(|(i, _)| i)
        .collect();
    if headers.is_empty() {
        let h = rng.pick(HEADERS);
        lines.push(format!("{h}\n").into_bytes());
        *text = lines.concat();
        return format!("append header {h}");
    }
    let i = headers[rng.below(headers.len())];
    let line = with_newline(&lines[i]);
    let what = match rng.below(4) {
        0 => {
            let to = rng.below(lines.len() + 1);
            lines.insert(to, line);
            format!("copy header line {} before line {}", i + 1, to + 1)
        }
        1 => {
            let t = String::from_utf8_lossy(&line).trim().to_string();
            let new = if t.starts_with("[[") {
                t.trim_start_matches('[').trim_end_matches(']').to_string()
            } else {
                format!("[{t}]")
            };
            lines[i] = format!("{new}\n").into_bytes();
            format!("header line {}: {t} to {new}", i + 1)
        }
        _ => {
            let h = rng.pick(HEADERS);
            lines[i] = format!("{h}\n").into_bytes();
            format!("header line {} renamed {h}", i + 1)
        }
    };
    *text = lines.concat();
    what
}

/// Mutant `index` of `seed`: each file's text, and what was done.
struct Mutant {
    scenario: usize,
    files: Vec<(String, Vec<u8>)>,
    key: Option<Vec<u8>>,
    what: Vec<String>,
}

fn make_mutant(scenarios: &[Scenario], seed: u64, index: usize) -> Mutant {
    let mut rng = Rng::for_mutant(seed, index);
    let scenario = rng.below(scenarios.len());
    let s = &scenarios[scenario];
    let mut files = s.config.clone();
    let mut key = None;
    let count = match rng.below(20) {
        0..=11 => 1,
        12..=16 => 2,
        _ => 3 + rng.below(3),
    };
    let mut what = Vec::new();
    // Now and then a pair file gets another name (the first file is baton.toml).
    if rng.chance(25) {
        let f = 1 + rng.below(files.len() - 1);
        let name = rng.pick(PAIR_NAMES);
        let name = if name.is_empty() {
            "n".repeat(200)
        } else {
            name.to_string()
        };
        let rel = &mut files[f].0;
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        what.push(format!("{rel}: renamed {name:?}.toml"));
        *rel = format!("{dir}/{name}.toml");
    }
    for _ in 0..count {
        if let (Some((rel, original)), true) = (&s.key, rng.chance(25)) {
            let text = key.get_or_insert_with(|| original.clone());
            what.push(format!("{rel}: {}", mutate(&mut rng, text)));
            continue;
        }
        let f = rng.below(files.len());
        let (rel, text) = &mut files[f];
        what.push(format!("{rel}: {}", mutate(&mut rng, text)));
    }
    Mutant {
        scenario,
        files,
        key,
        what,
    }
}

// ---------------------------------------------------------------------------
// The oracle

/// Characters a message must not hold: controls, and those that reorder
/// or hide what a terminal shows.
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' | '\u{feff}')
}

/// What is wrong with one diagnostic of a mutant whose files are `files`
/// (absolute path, bytes written), if anything.
fn judge(d: &Diagnostic, files: &[(PathBuf, Vec<u8>)], pairs_dir: &Path) -> Option<String> {
    if d.message.trim().is_empty() {
        return Some("a problem without a message".to_string());
    }
    if d.fix.trim().is_empty() {
        return Some("a problem without a fix".to_string());
    }
    if let Some(c) = d.message.chars().find(|&c| unprintable(c)) {
        return Some(format!("the message holds the unprintable character {c:?}"));
    }
    if let Some(c) = d.fix.chars().find(|&c| unprintable(c)) {
        return Some(format!("the fix holds the unprintable character {c:?}"));
    }
    // As `check` prints it: FILE:LINE:COLUMN: MESSAGE, then the fix.
    let shown = d.to_string();
    if let Some(c) = shown.lines().flat_map(str::chars).find(|&c| unprintable(c)) {
        return Some(format!(
            "as printed, it holds the unprintable character {c:?}"
        ));
    }
    if shown.lines().count() != 2 {
        return Some("as printed, it is not one line and its fix".to_string());
    }
    if d.file == pairs_dir {
        return None;
    }
    let Some((_, bytes)) = files.iter().find(|(p, _)| *p == d.file) else {
        return Some(format!(
            "the problem names {}, which is not a file of the configuration",
            d.file.display()
        ));
    };
    // A pair file named like another but for case: a problem of its name.
    let lower = |p: &Path| config::pair_name(p).to_ascii_lowercase();
    let name_clash = files
        .iter()
        .any(|(p, _)| *p != d.file && p.parent() == Some(pairs_dir) && lower(p) == lower(&d.file));
    let whole_file = bytes.is_empty() || bytes.len() > CONFIG_BOUND || name_clash;
    if d.line == 0 && d.column == 0 && whole_file {
        return None;
    }
    if d.line == 0 || d.column == 0 {
        return Some(format!(
            "no place in the file: line {}, column {}",
            d.line, d.column
        ));
    }
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let Some(line) = lines.get(d.line - 1) else {
        return Some(format!(
            "line {} is past the end of the file ({} lines)",
            d.line,
            lines.len()
        ));
    };
    // Columns count characters: at most one per byte, one past the end.
    if d.column > line.len() + 1 {
        return Some(format!(
            "column {} is past the end of line {} ({} bytes)",
            d.column,
            d.line,
            line.len()
        ));
    }
    None
}

/// Everything wrong with one loaded mutant (see the module's doc).
fn judge_loaded(
    loaded: &Loaded,
    files: &[(PathBuf, Vec<u8>)],
    pairs_dir: &Path,
    names: &[String],
) -> Vec<String> {
    let mut wrong = Vec::new();
    for p in &loaded.problems {
        if let Some(why) = judge(&p.diagnostic, files, pairs_dir) {
            wrong.push(format!("{why}: {}", p.diagnostic));
        }
    }
    for w in &loaded.warnings {
        if let Some(why) = judge(&w.diagnostic, files, pairs_dir) {
            wrong.push(format!("warning: {why}: {}", w.diagnostic));
        }
    }
    // One mistake, one message: never the same message twice at one place.
    for (i, p) in loaded.problems.iter().enumerate() {
        let d = &p.diagnostic;
        let twice = loaded.problems[..i].iter().any(|q| {
            let e = &q.diagnostic;
            (&e.file, e.line, e.column, &e.message) == (&d.file, d.line, d.column, &d.message)
        });
        if twice {
            wrong.push(format!("reported twice at one place: {d}"));
        }
    }
    if loaded.names != names {
        wrong.push(format!(
            "the pairs found are {:?}, the files {names:?}",
            loaded.names
        ));
    }
    let global = loaded.problems.iter().any(|p| p.pairs.is_empty());
    if loaded.settings.is_none() && !global {
        wrong.push("baton.toml was refused without a problem in it".to_string());
    }
    for name in &loaded.names {
        let named = loaded.problems.iter().any(|p| p.pairs.contains(name));
        if !loaded.pairs.contains_key(name) && !named && !global {
            wrong.push(format!(
                "pair `{name}` was refused without a problem naming it"
            ));
        }
    }
    wrong
}

// ---------------------------------------------------------------------------
// Running mutants

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    #[allow(unsafe_code, reason = "std has no per-thread CPU clock")]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How one mutant went, and the CPU time it took.
enum Outcome {
    Accepted(Duration),
    Refused(Duration),
}

/// Loads a mutant written at `site` and checks everything; `Err` lists what
/// is wrong.
fn run_mutant(s: &Scenario, site: &Site, m: &Mutant) -> Result<Outcome, Vec<String>> {
    let mut written = Vec::new();
    let mut renamed = Vec::new();
    for ((original, _), (rel, _)) in s.config.iter().zip(&m.files) {
        if original != rel {
            // The file under its own name is gone while the mutant loads.
            let _ = fs::remove_file(site.path(original));
            renamed.push(site.path(rel));
        }
    }
    for (rel, bytes) in &m.files {
        let path = site.path(rel);
        fs::write(&path, bytes).map_err(|e| vec![format!("writing {}: {e}", path.display())])?;
        written.push((path, bytes.clone()));
    }
    if let Some((rel, original)) = &s.key {
        let bytes = m.key.as_ref().unwrap_or(original);
        fs::write(site.path(rel), bytes).map_err(|e| vec![format!("writing the key: {e}")])?;
    }
    let global = site.path(s.global);
    let pairs_dir = global.parent().expect("a directory").join("pairs");
    let mut pair_files: Vec<PathBuf> = m
        .files
        .iter()
        .filter(|(rel, _)| rel.contains("pairs/"))
        .map(|(rel, _)| site.path(rel))
        .collect();
    pair_files.sort();
    let names: Vec<String> = pair_files.iter().map(|p| config::pair_name(p)).collect();
    let cpu = thread_cpu();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let loaded = config::load(&global);
        let mut wrong = judge_loaded(&loaded, &written, &pairs_dir, &names);
        // Every pair that validated, usable when named, survives the plan.
        for pair in loaded.pairs.values() {
            wrong.extend(plan_pair(pair));
        }
        let clean = loaded.problems.is_empty();
        let accepted = match loaded.select(&[]) {
            Ok((config, warnings)) => {
                if !clean {
                    wrong.push("a configuration with problems was accepted".to_string());
                }
                if !warnings.is_empty() {
                    wrong.push("an accepted configuration has problems as warnings".to_string());
                }
                if config.pairs.len() != names.len() {
                    wrong.push(format!(
                        "accepted with {} of {} pairs",
                        config.pairs.len(),
                        names.len()
                    ));
                }
                true
            }
            Err(d) => {
                if clean {
                    wrong.push(format!("a configuration without problems was refused: {d}"));
                }
                if d.0.is_empty() {
                    wrong.push("refused without a problem".to_string());
                }
                false
            }
        };
        (wrong, accepted)
    }));
    let used = thread_cpu().saturating_sub(cpu);
    let (mut wrong, accepted) = match result {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            (vec![format!("PANIC: {what}")], false)
        }
    };
    if used > CPU_BOUND {
        wrong.push(format!("took {used:?} of CPU time (bound {CPU_BOUND:?})"));
    }
    for path in renamed {
        let _ = fs::remove_file(path);
    }
    let state = global.parent().expect("a directory").join("state");
    if state.exists() {
        wrong.push("loading created the state directory".to_string());
        let _ = fs::remove_dir_all(&state);
    }
    if wrong.is_empty() {
        Ok(if accepted {
            Outcome::Accepted(used)
        } else {
            Outcome::Refused(used)
        })
    } else {
        Err(wrong)
    }
}

/// What the model promises of a pair that validated, and `plan` and `run`
/// rely on.
fn pair_invariants(pair: &config::Pair) -> Vec<String> {
    let mut wrong = Vec::new();
    let [a, b] = &pair.hosts;
    let mut bad = |what: String| wrong.push(format!("pair `{}`: {what}", pair.name));
    if a.name == b.name || a.address.to_canonical() == b.address.to_canonical() {
        bad(format!("hosts {a:?} and {b:?} are not two machines"));
    }
    if pair.checks.is_empty() {
        bad("no checks".to_string());
    }
    for (i, c) in pair.checks.iter().enumerate() {
        if pair.checks[..i].iter().any(|o| o.name == c.name) {
            bad(format!("two checks named {:?}", c.name));
        }
    }
    match &pair.traffic {
        config::Traffic::Vip(v) => {
            if pair
                .hosts
                .iter()
                .any(|h| h.address.to_canonical() == v.address.to_canonical())
            {
                bad(format!("the VIP {v} is a host's address"));
            }
            let max = if v.address.is_ipv4() { 32 } else { 128 };
            if v.prefix == 0 || v.prefix > max || v.interface.is_empty() {
                bad(format!("the VIP {v} on {:?}", v.interface));
            }
        }
        config::Traffic::Dns(d) => {
            if d.servers.is_empty() || !d.name.ends_with('.') || !d.zone.ends_with('.') {
                bad(format!(
                    "DNS {} in {} with servers {:?}",
                    d.name, d.zone, d.servers
                ));
            }
        }
        config::Traffic::Command(c) => {
            if c.switch.trim().is_empty() || c.query.trim().is_empty() {
                bad(format!("command hooks {c:?}"));
            }
        }
        config::Traffic::Haproxy(h) => {
            if h.weight == 0
                || h.weight > 256
                || h.backend.is_empty()
                || !h.socket.starts_with('/')
                || h.frontend.port() == 0
                || h.host.ssh_port == 0
            {
                bad(format!("balancer {h:?}"));
            }
            if pair.hosts.iter().any(|x| x.name == h.host.name) {
                bad(format!("the balancer {} is named as a host", h.host.name));
            }
            if pair.hosts.iter().any(|x| x.address == h.host.address) {
                bad(format!(
                    "the balancer {} is a host of the pair",
                    h.host.address
                ));
            }
        }
    }
    for c in pair.changes.values() {
        if c.steps.is_empty() && c.upload.is_empty() {
            bad(format!("change `{}` does nothing", c.name));
        }
    }
    wrong
}

/// The dry run of every kind of run on a pair, from each host to the other,
/// and every change's hash.
fn plan_pair(pair: &config::Pair) -> Vec<String> {
    let mut wrong = pair_invariants(pair);
    for change in pair.changes.values() {
        if let Err(e) = baton::exec::change::hash(change) {
            wrong.push(format!(
                "pair `{}`: change `{}` was accepted but has no hash: {e}",
                pair.name, change.name
            ));
        }
    }
    for (from, to) in [
        (&pair.hosts[0], &pair.hosts[1]),
        (&pair.hosts[1], &pair.hosts[0]),
    ] {
        let mut runs: Vec<(Kind, Option<&config::Change>)> = vec![
            (Kind::Switchover, None),
            (Kind::Failover, None),
            (Kind::Rejoin, None),
        ];
        runs.extend(pair.changes.values().map(|c| (Kind::Apply, Some(c))));
        for (kind, change) in runs {
            let p = plan::build(pair, kind, from, to, change, None);
            match serde_json::to_string(&p) {
                Ok(json) if json.contains("\"steps\"") => {}
                other => wrong.push(format!(
                    "pair `{}`: the plan of a {kind:?} does not serialize: {other:?}",
                    pair.name
                )),
            }
        }
    }
    wrong
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// A mutant's files, shown for a report (long texts cut).
fn show(m: &Mutant, s: &Scenario) -> String {
    let mut out = format!("scenario {}; mutations:\n", s.name);
    for w in &m.what {
        out.push_str(&format!("  - {w}\n"));
    }
    for (rel, bytes) in &m.files {
        let original = s.config.iter().find(|(r, _)| r == rel).map(|(_, b)| b);
        if original == Some(bytes) {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        let cut: String = text.chars().take(4000).collect();
        out.push_str(&format!("--- {rel} ({} bytes):\n{cut:?}\n", bytes.len()));
    }
    if let Some(k) = &m.key {
        out.push_str(&format!("--- key: {:?}\n", String::from_utf8_lossy(k)));
    }
    out
}

/// The process's peak resident memory, in KiB.
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_sources_are_accepted_unmutated() {
    for s in scenarios() {
        let site = Site::new(&s);
        let m = Mutant {
            scenario: 0,
            files: s.config.clone(),
            key: None,
            what: vec![],
        };
        match run_mutant(&s, &site, &m) {
            Ok(Outcome::Accepted(_)) => {}
            Ok(Outcome::Refused(_)) => {
                let loaded = config::load(&site.path(s.global));
                panic!("{}: refused: {:#?}", s.name, loaded.problems);
            }
            Err(wrong) => panic!("{}: {wrong:#?}", s.name),
        }
    }
}

#[test]
fn the_oracle_refuses_a_problem_without_a_place_or_a_fix() {
    let file = PathBuf::from("/x/pairs/web.toml");
    let files = vec![(file.clone(), b"a = 1\nbb = 2\n".to_vec())];
    let pairs = Path::new("/x/pairs");
    let d = |line, column, message: &str, fix: &str| Diagnostic {
        file: file.clone(),
        line,
        column,
        message: message.to_string(),
        fix: fix.to_string(),
    };
    assert_eq!(judge(&d(2, 3, "m", "f"), &files, pairs), None);
    assert_eq!(
        judge(&d(3, 1, "m", "f"), &files, pairs),
        None,
        "after the last newline"
    );
    for bad in [
        d(0, 0, "m", "f"),
        d(1, 0, "m", "f"),
        d(4, 1, "m", "f"),
        d(1, 7, "m", "f"),
        d(1, 1, " ", "f"),
        d(1, 1, "m", ""),
        d(1, 1, "a\nb", "f"),
        d(1, 1, "m", "x\u{202e}y"),
    ] {
        assert!(judge(&bad, &files, pairs).is_some(), "{bad:?}");
    }
    let elsewhere = Diagnostic {
        file: PathBuf::from("/etc/passwd"),
        ..d(1, 1, "m", "f")
    };
    assert!(judge(&elsewhere, &files, pairs).is_some());
    let empty = vec![(file.clone(), Vec::new())];
    assert_eq!(
        judge(&d(0, 0, "m", "f"), &empty, pairs),
        None,
        "the file as a whole"
    );
}

// ---------------------------------------------------------------------------
// What the mutants found, kept as examples (the refusals are also in
// tests/config-corpus/; these are the findings the corpus's format cannot
// hold: bytes that are not UTF-8, and what a refusal leaves in `Loaded`).

/// The corpus scenario written out, with `web` replaced by `web`'s bytes.
fn corpus_site(web: &[u8]) -> (Site, PathBuf) {
    let scenarios = scenarios();
    let s = &scenarios[1];
    let site = Site::new(s);
    for (rel, bytes) in &s.config {
        fs::write(site.path(rel), bytes).expect("write");
    }
    fs::write(site.path("pairs/web.toml"), web).expect("write");
    let global = site.path("baton.toml");
    (site, global)
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte_and_still_named() {
    let web = GOOD_PAIR.replace("\"eth0\"", "\"eth\u{e9}0\"");
    let mut bytes = web.into_bytes();
    // é as Latin-1: one byte 0xe9 where UTF-8 has two.
    let at = bytes.windows(2).position(|w| w == [0xc3, 0xa9]).expect("é");
    bytes.splice(at..at + 2, [0xe9]);
    let (site, global) = corpus_site(&bytes);
    let loaded = config::load(&global);
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let d = &loaded.problems[0].diagnostic;
    assert_eq!((d.line, d.column), (12, 17), "{d}");
    assert!(
        d.message.contains("not UTF-8") && d.message.contains("0xe9"),
        "{d}"
    );
    assert_eq!(loaded.names, ["api", "web"]);
    // Named, it gives its problem, not "there is no pair named `web`".
    let err = loaded.select(&["web".to_string()]).expect_err("refused");
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.0[0].message.contains("not UTF-8"), "{err}");
    // The other pair is usable when named.
    assert!(config::load(&global).select(&["api".to_string()]).is_ok());

    // baton.toml not UTF-8: placed too, and the pairs are still read.
    let mut global_bytes = GOOD_GLOBAL.as_bytes().to_vec();
    global_bytes.insert(GOOD_GLOBAL.find("deploy").expect("user"), 0xff);
    fs::write(&global, &global_bytes).expect("write");
    fs::write(
        site.path("pairs/web.toml"),
        GOOD_PAIR.replace("eth0", "eth 0"),
    )
    .expect("write");
    let loaded = config::load(&global);
    let shown: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| p.diagnostic.to_string())
        .collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].contains("baton.toml:5:9: the file is not UTF-8"),
        "{shown:#?}"
    );
    assert!(shown[1].contains("web.toml:12:13: `eth 0`"), "{shown:#?}");
    assert!(loaded.problems[0].pairs.is_empty(), "it blocks every pair");
}

#[test]
fn a_pair_file_with_a_refused_key_is_not_a_pair() {
    // `servers` refused (a string, not a list): the pair would be a DNS
    // pair without servers, and `plan` indexed servers[0].
    let web = GOOD_DNS_PAIR
        .replace("www.", "web.")
        .replace("198.51.100.3", "198.51.100.4")
        .replace("[\"198.51.100.53\"]", "\"198.51.100.53\"");
    let (_site, global) = corpus_site(web.as_bytes());
    let loaded = config::load(&global);
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    assert!(loaded.problems[0]
        .diagnostic
        .message
        .contains("invalid type"));
    assert_eq!(loaded.problems[0].pairs, ["web"]);
    assert!(
        !loaded.pairs.contains_key("web"),
        "{:#?}",
        loaded.pairs.keys()
    );
    assert!(loaded.pairs.contains_key("api"));
}

#[test]
fn mutants_are_refused_with_a_place_and_a_fix_or_survive_plan() {
    let seed = env_number("BATON_MUTATION_SEED").unwrap_or(DEFAULT_SEED);
    let only = env_number("BATON_MUTANT").map(|i| i as usize);
    let count = env_number("BATON_MUTANTS").map_or(DEFAULT_MUTANTS, |n| n as usize);
    let scenarios = scenarios();
    let indices: Vec<usize> = match only {
        Some(i) => vec![i],
        None => (0..count).collect(),
    };
    if let Some(i) = only {
        let m = make_mutant(&scenarios, seed, i);
        eprintln!(
            "mutant {i} of seed {seed:#x}: {}",
            show(&m, &scenarios[m.scenario])
        );
    }
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
        .min(indices.len());
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, Vec<String>)>> = Mutex::new(Vec::new());
    let slowest = Mutex::new((Duration::ZERO, 0usize));
    let running: Vec<Mutex<Option<(usize, Instant)>>> =
        (0..workers).map(|_| Mutex::new(None)).collect();
    let done = AtomicBool::new(false);
    let reproduce = |i: usize| {
        format!("BATON_MUTATION_SEED={seed:#x} BATON_MUTANT={i} cargo test --test config_mutation -- --nocapture mutants_are")
    };
    std::thread::scope(|scope| {
        // The watchdog: a mutant still running after HANG_BOUND hangs.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                for slot in &running {
                    let current = *slot.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((i, since)) = current {
                        if since.elapsed() > HANG_BOUND {
                            let m = make_mutant(&scenarios, seed, i);
                            eprintln!(
                                "mutant {i} of seed {seed:#x} is still loading after {HANG_BOUND:?}: a hang\n{}\nreproduce: {}",
                                show(&m, &scenarios[m.scenario]),
                                reproduce(i)
                            );
                            std::process::exit(1);
                        }
                    }
                }
            }
        });
        let mut handles = Vec::new();
        for slot in &running {
            let (scenarios, indices, next, accepted, refused, failures, slowest) = (
                &scenarios, &indices, &next, &accepted, &refused, &failures, &slowest,
            );
            handles.push(scope.spawn(move || {
                let sites: Vec<Site> = scenarios.iter().map(Site::new).collect();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = indices.get(k) else { break };
                    let m = make_mutant(scenarios, seed, i);
                    let s = &scenarios[m.scenario];
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((i, Instant::now()));
                    // Its own thread, named after it: a stack overflow names it.
                    let outcome = std::thread::scope(|inner| {
                        std::thread::Builder::new()
                            .name(format!("mutant {i} of seed {seed:#x}"))
                            .stack_size(STACK)
                            .spawn_scoped(inner, || run_mutant(s, &sites[m.scenario], &m))
                            .expect("spawn a mutant's thread")
                            .join()
                            .unwrap_or_else(|_| Err(vec!["PANIC outside the load".to_string()]))
                    });
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    let used = match outcome {
                        Ok(Outcome::Accepted(used) | Outcome::Refused(used)) => used,
                        Err(_) => Duration::ZERO,
                    };
                    let mut worst = slowest.lock().unwrap_or_else(|e| e.into_inner());
                    if used > worst.0 {
                        *worst = (used, i);
                    }
                    drop(worst);
                    match outcome {
                        Ok(Outcome::Accepted(_)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Outcome::Refused(_)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(wrong) => failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, wrong)),
                    }
                }
            }));
        }
        let joined: Vec<bool> = handles.into_iter().map(|h| h.join().is_ok()).collect();
        done.store(true, Ordering::Relaxed);
        assert!(joined.iter().all(|ok| *ok), "a worker failed: {joined:?}");
    });
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(i, _)| *i);
    let (accepted, refused) = (accepted.into_inner(), refused.into_inner());
    let (slowest, slowest_index) = slowest.into_inner().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "config mutation: seed {seed:#x}, {} mutants ({accepted} accepted, {refused} refused, {} failed) in {:.1}s on {workers} threads; slowest: mutant {slowest_index}, {:.0}ms of CPU; peak RSS {} MiB",
        indices.len(),
        failures.len(),
        elapsed.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0,
        peak / 1024
    );
    assert_eq!(
        accepted + refused + failures.len(),
        indices.len(),
        "every mutant ran"
    );
    let mut report = String::new();
    for (i, wrong) in failures.iter().take(10) {
        let m = make_mutant(&scenarios, seed, *i);
        report.push_str(&format!(
            "\nmutant {i}: {}\n{}reproduce: {}\n",
            wrong.join("\n  "),
            show(&m, &scenarios[m.scenario]),
            reproduce(*i)
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} mutants failed (the first 10 below){report}",
        failures.len(),
        indices.len()
    );
    assert!(
        peak < RSS_BOUND_KIB,
        "peak resident memory {} MiB is over {} MiB",
        peak / 1024,
        RSS_BOUND_KIB / 1024
    );
}
