//! OpenSSH known_hosts files: parsing (plain, wildcard, negated, hashed
//! `|1|salt|hash` and `[host]:port` entries, `@revoked` markers), the host
//! key algorithms to offer for a host (OpenSSH's order, recorded types
//! first), strict verification of a presented host key, SHA256
//! fingerprints, and recording a new key for the accept-new opt-in.
//!
//! The order and the verdict are OpenSSH's (`order_hostkeyalgs` in
//! sshconnect2.c, `check_hostkeys_by_key_or_type` in hostfile.c), so baton
//! refuses exactly the hosts `ssh -o StrictHostKeyChecking=yes` refuses:
//! which key a server presents depends on the order offered, and a server
//! with several keys must not be let through on a right key of one type
//! while its recorded key of the preferred type no longer matches.
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
    /// No recorded key matches, and some key is recorded for this host
    /// (of the presented type, or, when the server has none of the recorded
    /// types, of another: OpenSSH's HOST_CHANGED either way).
    Changed {
        /// 1-based line of the recorded key: one of the presented key's
        /// type when there is one.
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
            // OpenSSH skips a line whose key blob is of another type than
            // its type field says (sshkey_read: key type mismatch).
            if key_type_of(&key).as_deref() != Some(key_type) {
                continue;
            }
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

    /// Key types recorded for a host (not `@revoked` nor `@cert-authority`
    /// lines), in file order, without duplicates.
    pub fn key_types(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.marker == Marker::None && matches(&e.hosts, name) && !out.contains(&e.key_type) {
                out.push(e.key_type.clone());
            }
        }
        out
    }

    /// The host key algorithms to offer for a host, in order, from those
    /// `supported` (libssh2's): OpenSSH's default list, kept as it is when
    /// a key of its best-preference type (ed25519) is recorded for the
    /// host, else with the algorithms of the recorded types moved first in
    /// that list's order (never in the file's order).
    pub fn host_key_algorithms(&self, name: &str, supported: &[&str]) -> Vec<&'static str> {
        preferred_algorithms(&self.key_types(name), supported)
    }

    /// Verifies a presented key blob for a host lookup name, as OpenSSH
    /// does: `@revoked` wins; a recorded key equal to it is `Known`; else
    /// any other key recorded for the host makes it `Changed` (the line
    /// named is one of the presented type when there is one); else
    /// `Unknown`.
    pub fn verify(&self, name: &str, key: &[u8]) -> Verdict {
        for e in &self.entries {
            if e.marker == Marker::Revoked && e.key == key {
                return Verdict::Revoked { line: e.line };
            }
        }
        let presented = key_type_of(key);
        let mut same_type: Option<&Entry> = None;
        let mut other_type: Option<&Entry> = None;
        for e in &self.entries {
            if e.marker != Marker::None || !matches(&e.hosts, name) {
                continue;
            }
            if e.key == key {
                return Verdict::Known;
            }
            let slot = if presented.as_deref() == Some(e.key_type.as_str()) {
                &mut same_type
            } else {
                &mut other_type
            };
            slot.get_or_insert(e);
        }
        match same_type.or(other_type) {
            Some(e) => Verdict::Changed {
                line: e.line,
                recorded_type: e.key_type.clone(),
            },
            None => Verdict::Unknown,
        }
    }
}

/// OpenSSH's default `HostKeyAlgorithms` without the certificate and
/// security-key algorithms (which libssh2 does not offer and baton does not
/// verify), then `ssh-rsa` (RSA with SHA-1, for servers older than
/// OpenSSH 7.2; OpenSSH 8.8 dropped it from its defaults). The order is the
/// one OpenSSH negotiates in, best first. DSA is not offered: OpenSSH
/// removed it, and offering a type OpenSSH never asks for could let a
/// server be judged on another key than OpenSSH would judge it on.
pub const OPENSSH_HOST_KEY_ALGORITHMS: [&str; 7] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// The key type (as known_hosts names it) a host key algorithm uses.
pub fn key_type_of_algorithm(algorithm: &str) -> &str {
    match algorithm {
        "rsa-sha2-512" | "rsa-sha2-256" => "ssh-rsa",
        other => other,
    }
}

/// OpenSSH's `order_hostkeyalgs`, over `OPENSSH_HOST_KEY_ALGORITHMS` as
/// far as `supported`: with a key of the best-preference type recorded,
/// the list as it is; otherwise the algorithms whose key type is among
/// `recorded` first, then the rest, each part in the list's order.
pub fn preferred_algorithms(recorded: &[String], supported: &[&str]) -> Vec<&'static str> {
    let offered: Vec<&'static str> = OPENSSH_HOST_KEY_ALGORITHMS
        .iter()
        .copied()
        .filter(|a| supported.contains(a))
        .collect();
    let is_recorded = |alg: &str| recorded.iter().any(|t| t == key_type_of_algorithm(alg));
    if is_recorded(OPENSSH_HOST_KEY_ALGORITHMS[0]) {
        return offered;
    }
    let (mut first, last): (Vec<_>, Vec<_>) = offered.into_iter().partition(|a| is_recorded(a));
    first.extend(last);
    first
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

    /// What a server holding `server_keys` presents to a client offering
    /// `offered`: the key of the first offered algorithm it can sign with
    /// (the SSH rule: the client's preference wins).
    fn presented<'a>(offered: &[&str], server_keys: &'a [Vec<u8>]) -> &'a [u8] {
        offered
            .iter()
            .find_map(|alg| {
                server_keys
                    .iter()
                    .find(|k| key_type_of(k).as_deref() == Some(key_type_of_algorithm(alg)))
            })
            .expect("a common algorithm")
    }

    const LIBSSH2: [&str; 11] = [
        "ssh-ed25519",
        "ssh-ed25519-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
        "ssh-rsa-cert-v01@openssh.com",
        "ssh-dss",
    ];

    #[test]
    fn a_wrong_ed25519_entry_is_a_change_even_when_other_types_are_right() {
        // Issue 11: the ed25519 entry wrong, ecdsa (first in the file) and
        // rsa right. OpenSSH offers ed25519 first (it is recorded), the
        // server presents its real ed25519 key, no entry matches: changed.
        let real_ed = blob("ssh-ed25519", b"real");
        let ecdsa = blob("ecdsa-sha2-nistp256", b"ec");
        let rsa = blob("ssh-rsa", b"rsa");
        let text = format!(
            "{}{}{}",
            line("h", &ecdsa),
            line("h", &blob("ssh-ed25519", b"wrong")),
            line("h", &rsa)
        );
        let kh = KnownHosts::parse(&text);
        let offered = kh.host_key_algorithms("h", &LIBSSH2);
        let server = [rsa.clone(), ecdsa.clone(), real_ed.clone()];
        let key = presented(&offered, &server);
        assert_eq!(key, &real_ed[..]);
        assert_eq!(
            kh.verify("h", key),
            Verdict::Changed {
                line: 2,
                recorded_type: "ssh-ed25519".into()
            }
        );
        // With the ed25519 entry right, the same server is known.
        let kh = KnownHosts::parse(&format!("{}{}", line("h", &ecdsa), line("h", &real_ed)));
        let key = presented(&kh.host_key_algorithms("h", &LIBSSH2), &server);
        assert_eq!(kh.verify("h", key), Verdict::Known);
    }

    #[test]
    fn a_wrong_ecdsa_entry_is_a_change_when_rsa_comes_first_in_the_file() {
        let ecdsa = blob("ecdsa-sha2-nistp256", b"ec");
        let rsa = blob("ssh-rsa", b"rsa");
        let kh = KnownHosts::parse(&format!(
            "{}{}",
            line("h", &rsa),
            line("h", &blob("ecdsa-sha2-nistp256", b"wrong"))
        ));
        let server = [blob("ssh-ed25519", b"ed"), rsa, ecdsa.clone()];
        let key = presented(&kh.host_key_algorithms("h", &LIBSSH2), &server);
        assert_eq!(key, &ecdsa[..]);
        assert_eq!(
            kh.verify("h", key),
            Verdict::Changed {
                line: 2,
                recorded_type: "ecdsa-sha2-nistp256".into()
            }
        );
    }

    #[test]
    fn algorithms_follow_openssh_order_with_recorded_types_first() {
        let rec = |types: &[&str]| types.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let all = [
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
        ];
        // Nothing recorded: OpenSSH's list, without certificates or DSA.
        assert_eq!(preferred_algorithms(&[], &LIBSSH2), all);
        // ed25519 (the best preference) recorded: the list as it is, even
        // with rsa earlier in the file (OpenSSH 8.4's rule).
        assert_eq!(
            preferred_algorithms(&rec(&["ssh-rsa", "ssh-ed25519"]), &LIBSSH2),
            all
        );
        // Otherwise the recorded types first, in OpenSSH's order, not the file's.
        assert_eq!(
            preferred_algorithms(&rec(&["ssh-rsa", "ecdsa-sha2-nistp384"]), &LIBSSH2),
            [
                "ecdsa-sha2-nistp384",
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-rsa",
                "ssh-ed25519",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp521",
            ]
        );
        // Only what libssh2 supports is offered.
        assert_eq!(
            preferred_algorithms(&rec(&["ssh-rsa"]), &["ssh-rsa", "ssh-ed25519", "ssh-dss"]),
            ["ssh-rsa", "ssh-ed25519"]
        );
    }

    #[test]
    fn any_matching_entry_is_known_as_in_openssh() {
        // Two ed25519 entries for one name (a key rotation, a shared name):
        // OpenSSH accepts the key that matches one of them.
        let right = blob("ssh-ed25519", b"right");
        let kh = KnownHosts::parse(&format!(
            "{}{}",
            line("h", &blob("ssh-ed25519", b"old")),
            line("h", &right)
        ));
        assert_eq!(kh.verify("h", &right), Verdict::Known);
    }

    #[test]
    fn a_changed_key_names_the_line_of_its_own_type() {
        let kh = KnownHosts::parse(&format!(
            "{}{}",
            line("h", &blob("ecdsa-sha2-nistp256", b"ec")),
            line("h", &blob("ssh-ed25519", b"old"))
        ));
        assert_eq!(
            kh.verify("h", &blob("ssh-ed25519", b"new")),
            Verdict::Changed {
                line: 2,
                recorded_type: "ssh-ed25519".into()
            }
        );
    }

    #[test]
    fn a_line_whose_key_is_of_another_type_than_it_says_is_skipped() {
        // OpenSSH's sshkey_read refuses it, so it records nothing.
        let ed = blob("ssh-ed25519", b"k");
        let text = format!(
            "h ecdsa-sha2-nistp256 {}
",
            STANDARD.encode(&ed)
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(
            kh.verify("h", &blob("ssh-ed25519", b"other")),
            Verdict::Unknown
        );
        assert!(kh.key_types("h").is_empty());
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
