//! The known_hosts differential test: every case of the corpus under
//! tests/known-hosts-corpus/ is a known_hosts file judged twice against the
//! same sshd (the test's own, in blue's namespace on port 2299 with
//! ed25519, ecdsa and rsa host keys, or the lab's sshd on blue's port 22),
//! once by OpenSSH's own `ssh` (StrictHostKeyChecking=yes, only that file)
//! and once by baton (`SshHost::connect`, the path of `baton status`: a
//! connection that gets past the host key and authenticates). Each case
//! names the verdict OpenSSH gives (connects, or refuses the key as
//! unknown, changed or revoked); baton must give the same verdict, unless
//! the case says it is a documented difference (`# baton:`), with the
//! reason. Every disagreement is collected and reported together.
//!
//! A case file starts with its header lines:
//!
//! ```text
//! # case: what the case is about
//! # expect: connects | unknown | changed | revoked
//! # baton: VERDICT -- documented stricter: why      (only where baton differs)
//! # target: 22                                       (default: 2299)
//! ```
//!
//! and the rest is the known_hosts text, with placeholders the test fills
//! in (the keys are made fresh for each run): `{NAME}` the name looked up
//! (`[198.18.0.11]:2299`, or `198.18.0.11` on port 22); `{KEY:K}`, `{B64:K}`
//! and `{TYPE:K}` a key line body, its base64 and its type, for K one of
//! the server's `ED25519`, `ECDSA`, `RSA` or a stranger's `S_ED25519`,
//! `S_ECDSA`, `S_RSA`; `{HASH:N:TEXT}` TEXT (or `NAME`) hashed with an
//! N-byte salt; `{xHH}` the byte HH; and the altered keys `{RETYPE:K:NAME}`
//! (the blob's type string replaced), `{ZEROPAD:RSA}` (the modulus with a
//! redundant leading zero), `{BADPOINT:K}` (an ECDSA point moved off its
//! curve), `{TRAIL:K}` (bytes after the blob), `{TRUNC:K}` (the base64 cut
//! short), `{UNPAD:K}` (its padding removed), `{SPLIT:K:xHH}` (the base64 with the byte HH
//! inside), `{RSA768}` (an RSA key of 768
//! bits), `{SK}` (a security-key ed25519 key) and `{LONG}` (a 1023-character
//! host pattern).

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use baton::config;
use baton::io::ssh::{SshError, SshHost, Target};
use common::*;
use hmac::{Hmac, Mac};
use sha1::Sha1;

const ADDRESS: &str = "198.18.0.11";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/known-hosts-corpus")
}

/// The blob of a public key file (`TYPE BASE64 COMMENT`).
fn blob_of(path: &Path) -> Vec<u8> {
    blob(&public_key_line(path))
}

/// The blob of a `TYPE BASE64` key.
fn blob(line: &str) -> Vec<u8> {
    let b64 = line.split_whitespace().nth(1).expect("a public key line");
    STANDARD.decode(b64).unwrap()
}

/// A fresh public key blob of one type that no host has.
fn stranger(kind: &str) -> Vec<u8> {
    blob(&stranger_key(kind))
}

/// SSH wire strings of a blob, in order.
fn fields(blob: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = blob;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty(), "a blob of whole strings");
    out
}

fn wire(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn type_of(blob: &[u8]) -> String {
    String::from_utf8(fields(blob)[0].clone()).unwrap()
}

/// What a case's placeholders are filled with.
struct World {
    keys: HashMap<&'static str, Vec<u8>>,
    name: String,
}

impl World {
    fn key(&self, k: &str) -> &[u8] {
        self.keys
            .get(k)
            .unwrap_or_else(|| panic!("no key {k} for this target"))
    }

    fn hashed(&self, salt_len: usize, text: &str) -> String {
        let text = if text == "NAME" { &self.name } else { text };
        let salt: Vec<u8> = (0..salt_len).map(|i| (i * 7 + 3) as u8).collect();
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(text.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(&salt),
            STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    /// One placeholder's bytes.
    fn fill(&self, token: &str) -> Vec<u8> {
        let parts: Vec<&str> = token.splitn(3, ':').collect();
        let text = match parts[..] {
            ["NAME"] => self.name.clone(),
            ["KEY", k] => format!("{} {}", type_of(self.key(k)), STANDARD.encode(self.key(k))),
            ["B64", k] => STANDARD.encode(self.key(k)),
            ["TYPE", k] => type_of(self.key(k)),
            ["HASH", n, text] => self.hashed(n.parse().unwrap(), text),
            ["RETYPE", k, name] => {
                let f = fields(self.key(k));
                let mut parts: Vec<&[u8]> = vec![name.as_bytes()];
                parts.extend(f[1..].iter().map(|v| v.as_slice()));
                STANDARD.encode(wire(&parts))
            }
            ["ZEROPAD", k] => {
                let f = fields(self.key(k));
                let n: Vec<u8> = [&[0u8][..], &f[2]].concat();
                STANDARD.encode(wire(&[&f[0], &f[1], &n]))
            }
            ["BADPOINT", k] => {
                let mut b = self.key(k).to_vec();
                let last = b.len() - 1;
                b[last] ^= 1;
                STANDARD.encode(b)
            }
            ["TRAIL", k] => STANDARD.encode([self.key(k), &[0, 0, 0, 0]].concat()),
            ["TRUNC", k] => STANDARD.encode(self.key(k))[..40].to_string(),
            ["UNPAD", k] => STANDARD
                .encode(self.key(k))
                .trim_end_matches('=')
                .to_string(),
            ["RSA768"] => {
                let mut n = vec![0u8; 97];
                for (i, b) in n.iter_mut().enumerate().skip(1) {
                    *b = (i as u8).wrapping_mul(37) | 1;
                }
                n[1] = 0xc1;
                STANDARD.encode(wire(&[b"ssh-rsa", &[1, 0, 1], &n]))
            }
            ["SK"] => {
                let pk = &fields(self.key("S_ED25519"))[1];
                STANDARD.encode(wire(&[b"sk-ssh-ed25519@openssh.com", pk, b"ssh:"]))
            }
            ["SPLIT", k, x] => {
                let b64 = STANDARD.encode(self.key(k));
                let mut out = b64.as_bytes()[..20].to_vec();
                out.extend(self.fill(x));
                out.extend_from_slice(&b64.as_bytes()[20..]);
                return out;
            }
            ["LONG"] => "a".repeat(1023),
            [x] if x.len() == 3 && x.starts_with('x') => {
                return vec![u8::from_str_radix(&x[1..], 16).unwrap()]
            }
            _ => panic!("unknown placeholder {{{token}}}"),
        };
        text.into_bytes()
    }

    /// The known_hosts bytes of a template.
    fn render(&self, template: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.extend_from_slice(&rest.as_bytes()[..open]);
            let close = rest[open..].find('}').expect("a closed placeholder") + open;
            out.extend(self.fill(&rest[open + 1..close]));
            rest = &rest[close + 1..];
        }
        out.extend_from_slice(rest.as_bytes());
        out
    }
}

/// One corpus case.
struct Case {
    file: String,
    about: String,
    expect: String,
    /// baton's verdict and the documented reason, where it differs.
    baton: Option<(String, String)>,
    port: u16,
    template: String,
}

fn load_corpus() -> Vec<Case> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("tests/known-hosts-corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kh"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let mut case = Case {
                file: file.clone(),
                about: String::new(),
                expect: String::new(),
                baton: None,
                port: MultiKeySshd::PORT,
                template: String::new(),
            };
            let mut lines = text.split_inclusive('\n').peekable();
            while let Some(line) = lines.peek() {
                let l = line.trim_end();
                if let Some(v) = l.strip_prefix("# case: ") {
                    case.about = v.to_string();
                } else if let Some(v) = l.strip_prefix("# expect: ") {
                    case.expect = v.to_string();
                } else if let Some(v) = l.strip_prefix("# baton: ") {
                    let (verdict, why) = v
                        .split_once(" -- ")
                        .unwrap_or_else(|| panic!("{file}: `# baton: VERDICT -- reason`"));
                    assert!(
                        why.starts_with("documented stricter: "),
                        "{file}: a difference must be documented stricter, with its reason"
                    );
                    case.baton = Some((verdict.to_string(), why.to_string()));
                } else if let Some(v) = l.strip_prefix("# target: ") {
                    case.port = v.parse().unwrap();
                } else {
                    break;
                }
                lines.next();
            }
            case.template = lines.collect();
            assert!(
                ["connects", "unknown", "changed", "revoked"].contains(&case.expect.as_str()),
                "{file}: `# expect:` is one of connects, unknown, changed, revoked"
            );
            assert!(!case.about.is_empty(), "{file}: no `# case:` line");
            case
        })
        .collect()
}

/// OpenSSH's own client, strict, with only this known_hosts file: its
/// verdict (connects, unknown, changed, revoked) and what it printed.
fn openssh_verdict(known_hosts: &Path, port: u16) -> (String, String) {
    let out = openssh_strict(known_hosts, port);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let verdict = if out.status.success() {
        "connects"
    } else if err.contains("REVOKED HOST KEY DETECTED") {
        "revoked"
    } else if err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        "changed"
    } else if err.contains("host key is known for") {
        "unknown"
    } else {
        "other"
    };
    (verdict.to_string(), err)
}

/// baton's verdict on the same file: a connection (host key, then
/// authentication), as `baton status` opens it.
fn baton_verdict(known_hosts: &Path, port: u16) -> (String, String) {
    let (cfg, _) = config::load(&lab_config())
        .select(&[])
        .expect("the lab configuration is valid");
    let pair = cfg
        .pairs
        .values()
        .find(|p| p.host("blue").is_some())
        .unwrap();
    let mut t = Target::new(pair.host("blue").unwrap(), &pair.ssh);
    t.port = port;
    t.known_hosts = known_hosts.to_path_buf();
    t.accept_new_host_keys = false;
    let result = in_ctl(async || SshHost::connect(t).await.map(|_| ()));
    match result {
        Ok(()) => ("connects".into(), String::new()),
        Err(e) => {
            let verdict = match &e {
                SshError::HostKeyUnknown { .. } => "unknown",
                SshError::HostKeyChanged { .. } => "changed",
                SshError::HostKeyRevoked { .. } => "revoked",
                _ => "other",
            };
            (verdict.into(), e.to_string())
        }
    }
}

#[test]
fn every_known_hosts_case_is_judged_as_openssh_judges_it() {
    let cases = load_corpus();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let _lab = lab();
    let sshd = MultiKeySshd::start();
    let mut keys = HashMap::new();
    keys.insert("ED25519", blob_of(&sshd.public_key_file("ed25519")));
    keys.insert("ECDSA", blob_of(&sshd.public_key_file("ecdsa")));
    keys.insert("RSA", blob_of(&sshd.public_key_file("rsa")));
    keys.insert("S_ED25519", stranger("ed25519"));
    keys.insert("S_ECDSA", stranger("ecdsa"));
    keys.insert("S_RSA", stranger("rsa"));
    let multi = World {
        keys: keys.clone(),
        name: format!("[{ADDRESS}]:{}", MultiKeySshd::PORT),
    };
    // The lab's own sshd on blue's port 22: only its ed25519 key.
    let mut lab_keys = keys;
    lab_keys.insert(
        "ED25519",
        blob_of(&Path::new(LAB).join("hosts/blue/ssh_host_ed25519_key.pub")),
    );
    lab_keys.remove("ECDSA");
    lab_keys.remove("RSA");
    let lab22 = World {
        keys: lab_keys,
        name: ADDRESS.to_string(),
    };

    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut table = String::new();
    for case in &cases {
        let world = if case.port == 22 { &lab22 } else { &multi };
        let kh = dir.path().join(&case.file);
        if !case.template.contains("{MISSING}") {
            fs::write(&kh, world.render(&case.template)).unwrap();
        }
        let (openssh, openssh_err) = openssh_verdict(&kh, case.port);
        let (baton, baton_err) = baton_verdict(&kh, case.port);
        let want_baton = case.baton.as_ref().map_or(&case.expect, |(v, _)| v);
        table += &format!(
            "{:<44} openssh {:<9} baton {:<9}{}\n",
            case.file,
            openssh,
            baton,
            case.baton
                .as_ref()
                .map(|(_, why)| format!(" ({why})"))
                .unwrap_or_default()
        );
        if openssh != case.expect {
            failures.push(format!(
                "{}: {}: OpenSSH {openssh}, the case expects {}\n    {}",
                case.file,
                case.about,
                case.expect,
                openssh_err.trim().replace('\n', "\n    ")
            ));
        }
        if &baton != want_baton {
            failures.push(format!(
                "{}: {}: baton {baton}, expected {want_baton} (OpenSSH {openssh})\n    {baton_err}",
                case.file, case.about
            ));
        }
    }
    eprintln!("{table}");
    assert!(
        failures.is_empty(),
        "{} disagreement(s) over {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
