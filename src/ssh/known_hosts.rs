//! OpenSSH known_hosts files: parsing (plain, wildcard, negated, hashed
//! `|1|salt|hash` and `[host]:port` entries, `@revoked` markers), strict
//! verification of a presented host key, SHA256 fingerprints, and recording
//! a new key for the accept-new opt-in.
//!
//! Written here rather than through libssh2's knownhost API because that
//! parser gives up on the first line it does not understand (a certificate
//! authority, a security-key type), which would make a user's real file
//! unusable, and it cannot say which line holds a changed key.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What a known_hosts file says about a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for this host.
    Known,
    /// No key of any type is recorded for this host.
    Unknown,
    /// A different key is recorded for this host (same or other type).
    Changed {
        /// 1-based line of the recorded key.
        line: usize,
        /// Type of the recorded key.
        recorded_type: String,
    },
    /// The key is marked `@revoked`.
    Revoked {
        /// 1-based line of the marker.
        line: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    Patterns(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

/// A parsed known_hosts file. Lines that cannot be parsed are skipped, as
/// OpenSSH does.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// The name OpenSSH looks up for a host: `addr` on port 22, else `[addr]:port`.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:...` fingerprint of a public key blob, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(key)))
}

/// The key type named inside an SSH public key blob (`ssh-ed25519`, ...).
pub fn key_type_of(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

impl KnownHosts {
    /// Parses the text of a known_hosts file.
    pub fn parse(text: &str) -> KnownHosts {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => continue,
                _ => Marker::None,
            };
            if marker != Marker::None {
                match fields.next() {
                    Some(f) => first = f,
                    None => continue,
                }
            }
            let (Some(key_type), Some(key_b64)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(key) = STANDARD.decode(key_b64) else {
                continue;
            };
            let hosts = if let Some(rest) = first.strip_prefix("|1|") {
                let Some((salt, hash)) = rest.split_once('|') else {
                    continue;
                };
                match (STANDARD.decode(salt), STANDARD.decode(hash)) {
                    (Ok(salt), Ok(hash)) => Hosts::Hashed { salt, hash },
                    _ => continue,
                }
            } else {
                Hosts::Patterns(first.split(',').map(str::to_string).collect())
            };
            entries.push(Entry {
                line: i + 1,
                marker,
                hosts,
                key_type: key_type.to_string(),
                key,
            });
        }
        KnownHosts { entries }
    }

    /// Reads a file; a missing file is an empty list.
    pub fn read(path: &Path) -> std::io::Result<KnownHosts> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Self::parse(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(e),
        }
    }

    /// Key types recorded for a host, in file order, without duplicates.
    pub fn key_types(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.marker == Marker::None && matches(&e.hosts, name) && !out.contains(&e.key_type) {
                out.push(e.key_type.clone());
            }
        }
        out
    }

    /// Verifies a presented key blob for a host lookup name.
    pub fn verify(&self, name: &str, key: &[u8]) -> Verdict {
        for e in &self.entries {
            if e.marker == Marker::Revoked && e.key == key {
                return Verdict::Revoked { line: e.line };
            }
        }
        let mut changed = None;
        for e in &self.entries {
            if e.marker != Marker::None || !matches(&e.hosts, name) {
                continue;
            }
            if e.key == key {
                return Verdict::Known;
            }
            if changed.is_none() {
                changed = Some(Verdict::Changed {
                    line: e.line,
                    recorded_type: e.key_type.clone(),
                });
            }
        }
        changed.unwrap_or(Verdict::Unknown)
    }
}

/// Appends a key for a host (accept-new). Creates the file 0600 if needed.
pub fn append(path: &Path, name: &str, key: &[u8]) -> std::io::Result<()> {
    let key_type = key_type_of(key).unwrap_or_else(|| "ssh-unknown".to_string());
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    // One write of the whole line, so concurrent appends never interleave.
    let line = format!("{name} {key_type} {}\n", STANDARD.encode(key));
    f.write_all(line.as_bytes())?;
    f.sync_all()
}

fn matches(hosts: &Hosts, name: &str) -> bool {
    match hosts {
        Hosts::Hashed { salt, hash } => {
            let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                return false;
            };
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        Hosts::Patterns(patterns) => {
            let name = name.to_ascii_lowercase();
            let mut matched = false;
            for p in patterns {
                if let Some(neg) = p.strip_prefix('!') {
                    if glob(&neg.to_ascii_lowercase(), &name) {
                        return false;
                    }
                } else if glob(&p.to_ascii_lowercase(), &name) {
                    matched = true;
                }
            }
            matched
        }
    }
}

/// OpenSSH's pattern match: `*` any run, `?` one character.
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (kind.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn line(hosts: &str, key: &[u8]) -> String {
        format!(
            "{hosts} {} {}\n",
            key_type_of(key).unwrap(),
            STANDARD.encode(key)
        )
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn plain_entry_known_unknown_changed() {
        let k1 = blob("ssh-ed25519", b"one");
        let k2 = blob("ssh-ed25519", b"two");
        let kh = KnownHosts::parse(&line("10.0.0.1,db1", &k1));
        assert_eq!(kh.verify("10.0.0.1", &k1), Verdict::Known);
        assert_eq!(kh.verify("db1", &k1), Verdict::Known);
        assert_eq!(kh.verify("10.0.0.2", &k1), Verdict::Unknown);
        assert_eq!(
            kh.verify("10.0.0.1", &k2),
            Verdict::Changed {
                line: 1,
                recorded_type: "ssh-ed25519".into()
            }
        );
    }

    #[test]
    fn a_key_of_another_type_is_a_change_not_unknown() {
        let k1 = blob("ssh-ed25519", b"one");
        let k2 = blob("ecdsa-sha2-nistp256", b"two");
        let kh = KnownHosts::parse(&line("h", &k1));
        assert!(matches!(kh.verify("h", &k2), Verdict::Changed { .. }));
        assert_eq!(kh.key_types("h"), vec!["ssh-ed25519".to_string()]);
    }

    #[test]
    fn hashed_entries_and_ports() {
        let k = blob("ssh-ed25519", b"k");
        let text = format!(
            "# comment\n{}{}",
            line(&hashed("10.0.0.1", b"0123456789abcdefghij"), &k),
            line(&hashed("[10.0.0.2]:2222", b"jihgfedcba9876543210"), &k)
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.verify("10.0.0.1", &k), Verdict::Known);
        assert_eq!(
            kh.verify(&lookup_name("10.0.0.2", 2222), &k),
            Verdict::Known
        );
        // The same address on port 22 is a different entry.
        assert_eq!(
            kh.verify(&lookup_name("10.0.0.2", 22), &k),
            Verdict::Unknown
        );
    }

    #[test]
    fn wildcards_negation_and_bracketed_ports() {
        let k = blob("ssh-ed25519", b"k");
        let kh = KnownHosts::parse(&line("10.0.0.*,!10.0.0.9,[10.1.0.1]:2200", &k));
        assert_eq!(kh.verify("10.0.0.4", &k), Verdict::Known);
        assert_eq!(kh.verify("10.0.0.9", &k), Verdict::Unknown);
        assert_eq!(kh.verify("[10.1.0.1]:2200", &k), Verdict::Known);
        assert_eq!(kh.verify("10.1.0.1", &k), Verdict::Unknown);
    }

    #[test]
    fn revoked_and_unparseable_lines() {
        let k = blob("ssh-ed25519", b"k");
        let text = format!(
            "garbage\n@cert-authority *.x ssh-ed25519 AAAA\n{}@revoked * {} {}\n",
            line("h", &k),
            "ssh-ed25519",
            STANDARD.encode(&k)
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.verify("h", &k), Verdict::Revoked { line: 4 });
    }

    #[test]
    fn fingerprint_matches_ssh_keygen_format() {
        // ssh-keygen prints SHA256 of the blob, base64 without padding.
        let fp = fingerprint(b"abc");
        assert_eq!(fp, "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
    }

    #[test]
    fn append_creates_private_file_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let k = blob("ssh-ed25519", b"new");
        append(&path, "[10.0.0.5]:2222", &k).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let kh = KnownHosts::read(&path).unwrap();
        assert_eq!(kh.verify("[10.0.0.5]:2222", &k), Verdict::Known);
    }
}
