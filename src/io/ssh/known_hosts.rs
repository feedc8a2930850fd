//! OpenSSH known_hosts files, read as OpenSSH 9.2 reads them: parsing
//! (plain, comma-listed, wildcard and negated patterns, hashed `|1|salt|hash`
//! and `[host]:port` names, `@revoked` and `@cert-authority` markers), the
//! host key algorithms to offer for a host (OpenSSH's order, recorded
//! types first), strict verification of a presented host key, SHA256
//! fingerprints, and recording a new key for the accept-new opt-in.
//!
//! Every line is judged by the rules of OpenSSH's own reader
//! (`hostkeys_foreach_file` and `check_markers` in hostfile.c, `sshkey_read`
//! and `sshkey_from_blob` in sshkey.c, `match_pattern_list` in match.c,
//! `b64_pton`), so a line OpenSSH skips records nothing here either, and a
//! line it reads records the same key:
//!
//! - the file is bytes, not text: a byte that is no UTF-8 is just a byte;
//!   lines end at `\n` only, and a NUL byte ends what is read of a line;
//! - fields are separated by spaces and tabs only (a vertical tab, form
//!   feed, carriage return or no-break space is part of a field), and only
//!   spaces and tabs may lead a line;
//! - a marker is `@revoked` or `@cert-authority`, ended by the line's first
//!   space (or, with none, its first tab); any other `@` word, or two
//!   markers, makes the line one that is skipped;
//! - a hashed name is `|1|`, a salt of exactly 20 bytes, `|`, and the
//!   HMAC-SHA1 of the name; it matches only if the field is exactly that
//!   text; any other field starting with `|` is a line that is skipped;
//! - patterns are compared byte by byte, ASCII letters without case; a
//!   negated pattern that matches makes the line not match; a pattern of
//!   1023 bytes or more makes the line match nothing;
//! - the type field must be one of OpenSSH's key type names exactly
//!   (`rsa-sha2-256` and `rsa-sha2-512` are RSA), the base64 is decoded as
//!   `b64_pton` does (white space inside it is skipped, padding is
//!   required), and the blob must be a whole key of that type: an ed25519
//!   key of 32 bytes, an ECDSA point on the curve its type names, an RSA
//!   modulus of at least 1024 bits, nothing after the key;
//! - keys are compared as OpenSSH compares them: by type and public
//!   numbers, not by their bytes (a redundant leading zero or OpenSSH's
//!   short type name `ED25519` inside a blob changes nothing).
//!
//! The order and the verdict are OpenSSH's (`order_hostkeyalgs` in
//! sshconnect2.c, `check_hostkeys_by_key_or_type` in hostfile.c), so baton
//! refuses exactly the hosts `ssh -o StrictHostKeyChecking=yes` refuses:
//! which key a server presents depends on the order offered, and a server
//! with several keys must not be let through on a right key of one type
//! while its recorded key of the preferred type no longer matches.
//!
//! Two differences are deliberate, both stricter (README.md, "SSH"):
//! a key marked `@revoked` is refused for every host, whatever names the
//! `@revoked` line gives (OpenSSH applies it only to the names it
//! matches), and on a port other than 22 only `[host]:port` entries count
//! (OpenSSH falls back to the plain host's entries; `lookup_name` and
//! conn.rs decide that). A certificate recorded on a plain line is read as
//! far as its key (its signature is not checked): it never matches a
//! presented key (baton offers no certificate algorithms), exactly as in
//! OpenSSH, but it does count as a recorded key.
//!
//! Written here rather than through libssh2's knownhost API because that
//! parser gives up on the first line it does not understand (a certificate
//! authority, a security-key type), which would make a user's real file
//! unusable, and it cannot say which line holds a changed key.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

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
    /// The key is marked `@revoked` (for any host).
    Revoked {
        /// 1-based line of the marker.
        line: usize,
    },
}

/// Why a public key blob is not a key OpenSSH would read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Cut short, a string holding a NUL, or bytes after the key.
    #[error("the key blob is cut short or malformed")]
    Malformed,
    /// A type name OpenSSH does not know.
    #[error("the key type `{0}` is not one OpenSSH knows")]
    UnknownType(String),
    /// The type inside the blob is not the one the line names.
    #[error("the key is of type {found}, the line says {said}")]
    TypeMismatch {
        /// The type the known_hosts line names.
        said: String,
        /// The type inside the blob.
        found: String,
    },
    /// An ECDSA key whose curve is not the one its type names.
    #[error("the ECDSA key's curve does not match its type")]
    CurveMismatch,
    /// An ECDSA point that is no valid public key of its curve.
    #[error("the ECDSA point is not a valid public key of its curve")]
    BadPoint,
    /// A negative or overlong integer.
    #[error("an integer of the key is negative or too long")]
    BadInteger,
    /// An RSA modulus under OpenSSH's minimum.
    #[error("the RSA key has {0} bits; OpenSSH reads none under 1024")]
    RsaTooSmall(usize),
    /// An ed25519 key that is not 32 bytes.
    #[error("the ed25519 key is not 32 bytes")]
    BadEd25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "nistp256",
            Curve::P384 => "nistp384",
            Curve::P521 => "nistp521",
        }
    }
}

/// A key type without its certificate-ness (OpenSSH's `sshkey_type_plain`
/// with the curve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Ed25519,
    Ed25519Sk,
    Ecdsa(Curve),
    EcdsaSk,
    Rsa,
    Dsa,
}

impl Base {
    /// The known_hosts name of the plain type.
    fn name(self) -> &'static str {
        match self {
            Base::Ed25519 => "ssh-ed25519",
            Base::Ed25519Sk => "sk-ssh-ed25519@openssh.com",
            Base::Ecdsa(Curve::P256) => "ecdsa-sha2-nistp256",
            Base::Ecdsa(Curve::P384) => "ecdsa-sha2-nistp384",
            Base::Ecdsa(Curve::P521) => "ecdsa-sha2-nistp521",
            Base::EcdsaSk => "sk-ecdsa-sha2-nistp256@openssh.com",
            Base::Rsa => "ssh-rsa",
            Base::Dsa => "ssh-dss",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyType {
    base: Base,
    cert: bool,
}

const fn plain(base: Base) -> KeyType {
    KeyType { base, cert: false }
}

const fn cert(base: Base) -> KeyType {
    KeyType { base, cert: true }
}

/// OpenSSH's key type names (the `name` of each of its `keyimpls`), as the
/// type field of a line must spell one.
const TYPE_NAMES: [(&str, KeyType); 21] = [
    ("ssh-ed25519", plain(Base::Ed25519)),
    ("ssh-ed25519-cert-v01@openssh.com", cert(Base::Ed25519)),
    ("sk-ssh-ed25519@openssh.com", plain(Base::Ed25519Sk)),
    ("sk-ssh-ed25519-cert-v01@openssh.com", cert(Base::Ed25519Sk)),
    ("ecdsa-sha2-nistp256", plain(Base::Ecdsa(Curve::P256))),
    (
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        cert(Base::Ecdsa(Curve::P256)),
    ),
    ("ecdsa-sha2-nistp384", plain(Base::Ecdsa(Curve::P384))),
    (
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        cert(Base::Ecdsa(Curve::P384)),
    ),
    ("ecdsa-sha2-nistp521", plain(Base::Ecdsa(Curve::P521))),
    (
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        cert(Base::Ecdsa(Curve::P521)),
    ),
    ("sk-ecdsa-sha2-nistp256@openssh.com", plain(Base::EcdsaSk)),
    (
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
        cert(Base::EcdsaSk),
    ),
    (
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
        plain(Base::EcdsaSk),
    ),
    ("ssh-dss", plain(Base::Dsa)),
    ("ssh-dss-cert-v01@openssh.com", cert(Base::Dsa)),
    ("ssh-rsa", plain(Base::Rsa)),
    ("ssh-rsa-cert-v01@openssh.com", cert(Base::Rsa)),
    ("rsa-sha2-256", plain(Base::Rsa)),
    ("rsa-sha2-256-cert-v01@openssh.com", cert(Base::Rsa)),
    ("rsa-sha2-512", plain(Base::Rsa)),
    ("rsa-sha2-512-cert-v01@openssh.com", cert(Base::Rsa)),
];

/// The type a known_hosts type field names (`peek_type_nid`: exact names).
fn type_from_field(name: &[u8]) -> Option<KeyType> {
    TYPE_NAMES
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|(_, t)| *t)
}

/// The type a blob names (`sshkey_type_from_name`: exact names, or a
/// plain type's short name in any case: `ED25519`, `RSA`, ...).
fn type_from_blob_name(name: &[u8]) -> Option<KeyType> {
    if let Some(t) = type_from_field(name) {
        return Some(t);
    }
    const SHORT: [(&str, Base); 6] = [
        ("ED25519", Base::Ed25519),
        ("ED25519-SK", Base::Ed25519Sk),
        ("ECDSA-SK", Base::EcdsaSk),
        // OpenSSH knows the name, but its ECDSA reader then wants a full
        // name to find the curve, so such a blob is refused below.
        ("ECDSA", Base::Ecdsa(Curve::P256)),
        ("RSA", Base::Rsa),
        ("DSA", Base::Dsa),
    ];
    SHORT
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(_, b)| plain(*b))
}

/// The curve an ECDSA type name (in full) names (`sshkey_ecdsa_nid_from_name`).
fn curve_from_name(name: &[u8]) -> Option<Curve> {
    TYPE_NAMES
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .and_then(|(_, t)| match t.base {
            Base::Ecdsa(c) => Some(c),
            Base::EcdsaSk => Some(Curve::P256),
            _ => None,
        })
}

/// A public key as OpenSSH compares it: its type and its public numbers
/// (integers without leading zeros), whatever bytes spelt them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    kind: KeyType,
    public: Vec<Vec<u8>>,
}

impl HostKey {
    /// Reads an SSH public key blob as OpenSSH's `sshkey_from_blob` does.
    /// A certificate is read as far as its key (its signature is not
    /// checked).
    pub fn from_blob(blob: &[u8]) -> Result<HostKey, KeyError> {
        let mut r = Reader(blob);
        let name = r.cstring()?;
        let kind = type_from_blob_name(name)
            .ok_or_else(|| KeyError::UnknownType(String::from_utf8_lossy(name).into_owned()))?;
        if kind.cert {
            r.string()?; // the nonce
        }
        let mut public = Vec::new();
        match kind.base {
            Base::Ed25519 | Base::Ed25519Sk => {
                let pk = r.string()?;
                if pk.len() != 32 {
                    return Err(KeyError::BadEd25519);
                }
                public.push(pk.to_vec());
            }
            Base::Ecdsa(_) | Base::EcdsaSk => {
                let curve = curve_from_name(name).ok_or(KeyError::CurveMismatch)?;
                if r.cstring()? != curve.name().as_bytes() {
                    return Err(KeyError::CurveMismatch);
                }
                let point = r.string()?;
                if !ec::valid_public(curve, point) {
                    return Err(KeyError::BadPoint);
                }
                public.push(point.to_vec());
            }
            Base::Rsa => {
                let e = r.bignum()?;
                let n = r.bignum()?;
                let bits = bit_len(n);
                if bits < 1024 {
                    return Err(KeyError::RsaTooSmall(bits));
                }
                public.push(e.to_vec());
                public.push(n.to_vec());
            }
            Base::Dsa => {
                for _ in 0..4 {
                    public.push(r.bignum()?.to_vec());
                }
            }
        }
        if matches!(kind.base, Base::Ed25519Sk | Base::EcdsaSk) {
            public.push(r.cstring()?.to_vec()); // the application
        }
        // A certificate's fields follow its key; a plain key ends there.
        if !kind.cert && !r.0.is_empty() {
            return Err(KeyError::Malformed);
        }
        Ok(HostKey { kind, public })
    }

    /// The known_hosts name of its type (`ssh-ed25519`, `ecdsa-sha2-nistp256`,
    /// `ssh-rsa`, ...; a certificate's type name for a certificate).
    pub fn type_name(&self) -> &'static str {
        if self.kind.cert {
            TYPE_NAMES
                .iter()
                .find(|(_, t)| *t == self.kind)
                .map_or("certificate", |(n, _)| n)
        } else {
            self.kind.base.name()
        }
    }

    /// OpenSSH's `sshkey_equal_public`: the same key, a certificate counting
    /// as the key it certifies.
    fn same_public(&self, other: &HostKey) -> bool {
        self.kind.base == other.kind.base && self.public == other.public
    }
}

/// Bits of a big-endian unsigned integer without leading zeros.
fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// SSH wire-format reading, as OpenSSH's sshbuf does it.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Result<&'a [u8], KeyError> {
        let len = self.0.get(..4).ok_or(KeyError::Malformed)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let s = self.0.get(4..4 + len).ok_or(KeyError::Malformed)?;
        self.0 = &self.0[4 + len..];
        Ok(s)
    }

    /// A string that holds no NUL but perhaps one at its end
    /// (`sshbuf_get_cstring`), without it.
    fn cstring(&mut self) -> Result<&'a [u8], KeyError> {
        let s = self.string()?;
        match s.iter().position(|&b| b == 0) {
            None => Ok(s),
            Some(i) if i == s.len() - 1 => Ok(&s[..i]),
            Some(_) => Err(KeyError::Malformed),
        }
    }

    /// An unsigned integer (`sshbuf_get_bignum2`): not negative, at most
    /// 16384 bits; leading zeros dropped.
    fn bignum(&mut self) -> Result<&'a [u8], KeyError> {
        let mut d = self.string()?;
        if d.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(KeyError::BadInteger);
        }
        if d.len() > 2049 || (d.len() == 2049 && d[0] != 0) {
            return Err(KeyError::BadInteger);
        }
        while let [0, rest @ ..] = d {
            d = rest;
        }
        Ok(d)
    }
}

/// ECDSA public key validation as OpenSSH (with OpenSSL) does it:
/// `get_ec` in sshbuf-getput-crypto.c (an uncompressed point of the
/// curve's size), `EC_POINT_oct2point` (coordinates below the prime, the
/// point on the curve) and `sshkey_ec_validate_public` (each coordinate
/// longer than half the order and below the order minus one; the curves
/// have cofactor 1, so a point on them has the group's order).
mod ec {
    use super::Curve;

    /// Little-endian 32-bit limbs, no trailing zero limbs.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Num(Vec<u32>);

    impl Num {
        fn from_be(bytes: &[u8]) -> Num {
            let mut limbs = Vec::with_capacity(bytes.len() / 4 + 1);
            for chunk in bytes.rchunks(4) {
                let mut v = 0u32;
                for &b in chunk {
                    v = (v << 8) | u32::from(b);
                }
                limbs.push(v);
            }
            Num(limbs).trimmed()
        }

        fn from_hex(hex: &str) -> Num {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
                .collect();
            Num::from_be(&bytes)
        }

        fn trimmed(mut self) -> Num {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
            self
        }

        fn bits(&self) -> usize {
            match self.0.last() {
                None => 0,
                Some(&top) => (self.0.len() - 1) * 32 + (32 - top.leading_zeros() as usize),
            }
        }

        fn bit(&self, i: usize) -> bool {
            self.0.get(i / 32).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
        }

        fn cmp(&self, other: &Num) -> std::cmp::Ordering {
            self.0
                .len()
                .cmp(&other.0.len())
                .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
        }

        fn add(&self, other: &Num) -> Num {
            let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
            let mut carry = 0u64;
            for i in 0..self.0.len().max(other.0.len()) {
                let s = u64::from(*self.0.get(i).unwrap_or(&0))
                    + u64::from(*other.0.get(i).unwrap_or(&0))
                    + carry;
                out.push(s as u32);
                carry = s >> 32;
            }
            out.push(carry as u32);
            Num(out).trimmed()
        }

        /// `self - other`, for `self >= other`.
        fn sub(&self, other: &Num) -> Num {
            let mut out = Vec::with_capacity(self.0.len());
            let mut borrow = 0i64;
            for i in 0..self.0.len() {
                let mut d =
                    i64::from(self.0[i]) - i64::from(*other.0.get(i).unwrap_or(&0)) - borrow;
                borrow = 0;
                if d < 0 {
                    d += 1 << 32;
                    borrow = 1;
                }
                out.push(d as u32);
            }
            Num(out).trimmed()
        }

        fn mul(&self, other: &Num) -> Num {
            let mut out = vec![0u32; self.0.len() + other.0.len() + 1];
            for (i, &a) in self.0.iter().enumerate() {
                let mut carry = 0u64;
                for (j, &b) in other.0.iter().enumerate() {
                    let t = u64::from(a) * u64::from(b) + u64::from(out[i + j]) + carry;
                    out[i + j] = t as u32;
                    carry = t >> 32;
                }
                let mut k = i + other.0.len();
                while carry != 0 {
                    let t = u64::from(out[k]) + carry;
                    out[k] = t as u32;
                    carry = t >> 32;
                    k += 1;
                }
            }
            Num(out).trimmed()
        }

        /// `self mod m`, by shifting in one bit at a time.
        fn rem(&self, m: &Num) -> Num {
            let mut r = Num(Vec::new());
            for i in (0..self.bits()).rev() {
                r = r.add(&r);
                if self.bit(i) {
                    r = r.add(&Num(vec![1]));
                }
                if r.cmp(m) != std::cmp::Ordering::Less {
                    r = r.sub(m);
                }
            }
            r
        }
    }

    /// The prime, `b` and the order of each curve (SEC 2; `a` is `p - 3`).
    fn params(curve: Curve) -> (Num, Num, Num, usize) {
        let (p, b, n, size) = match curve {
            Curve::P256 => (
                "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
                "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
                "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
                32,
            ),
            Curve::P384 => (
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
                "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
                "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
                48,
            ),
            Curve::P521 => (
                "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
                "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
                66,
            ),
        };
        (Num::from_hex(p), Num::from_hex(b), Num::from_hex(n), size)
    }

    /// Whether `point` (as a key blob holds it) is a public key OpenSSH
    /// accepts on `curve`.
    pub(super) fn valid_public(curve: Curve, point: &[u8]) -> bool {
        let (p, b, n, size) = params(curve);
        if point.len() != 1 + 2 * size || point[0] != 4 {
            return false;
        }
        let x = Num::from_be(&point[1..1 + size]);
        let y = Num::from_be(&point[1 + size..]);
        let less = std::cmp::Ordering::Less;
        if x.cmp(&p) != less || y.cmp(&p) != less {
            return false;
        }
        // y^2 = x^3 - 3x + b (mod p)
        let lhs = y.mul(&y).rem(&p);
        let x3 = x.mul(&x).rem(&p).mul(&x).rem(&p);
        let three_x = x.add(&x).add(&x).rem(&p);
        let rhs = x3.add(&b).add(&p.sub(&three_x)).rem(&p);
        if lhs != rhs {
            return false;
        }
        let half = n.bits() / 2;
        let n_minus_1 = n.sub(&Num(vec![1]));
        x.bits() > half && y.bits() > half && x.cmp(&n_minus_1) == less && y.cmp(&n_minus_1) == less
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn arithmetic() {
            let a = Num::from_hex("ffffffffffffffffff");
            let b = Num::from_hex("0100000000");
            assert_eq!(a.add(&Num(vec![1])), Num::from_hex("01000000000000000000"));
            assert_eq!(a.mul(&b), Num::from_hex("ffffffffffffffffff00000000"));
            assert_eq!(a.mul(&b).rem(&a), Num(Vec::new()));
            assert_eq!(
                Num::from_hex("0123").rem(&Num::from_hex("10")),
                Num::from_hex("03")
            );
            assert_eq!(b.sub(&Num(vec![1])), Num::from_hex("ffffffff"));
        }

        #[test]
        fn the_generators_are_valid_and_a_moved_point_is_not() {
            let g256 = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
            let bytes: Vec<u8> = (0..g256.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&g256[i..i + 2], 16).unwrap())
                .collect();
            assert!(valid_public(Curve::P256, &bytes));
            let mut moved = bytes.clone();
            moved[64] ^= 1;
            assert!(!valid_public(Curve::P256, &moved));
            assert!(!valid_public(Curve::P384, &bytes));
            let mut compressed = bytes[..33].to_vec();
            compressed[0] = 3;
            assert!(!valid_public(Curve::P256, &compressed));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    marker: Marker,
    /// The host field as written (`hostkeys_foreach_file`'s `hosts`).
    hosts: Vec<u8>,
    /// The line as OpenSSH's reader holds it, and where its key starts.
    buf: Vec<u8>,
    key_start: usize,
    /// The key, read on first use: as in OpenSSH, only the keys of lines
    /// whose names match are read (and of `@revoked` lines), so a large
    /// file costs little per connection.
    key: OnceLock<Option<HostKey>>,
}

impl Entry {
    /// The line's key, `None` if OpenSSH would not read one from it.
    fn key(&self) -> Option<&HostKey> {
        self.key
            .get_or_init(|| read_key(&self.buf, self.key_start).ok())
            .as_ref()
    }
}

/// A parsed known_hosts file: the lines that name hosts, in order, each
/// with its key read when first needed. Lines OpenSSH skips (comments,
/// blank lines, lines it cannot parse) record nothing here either.
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

/// C's `isspace` in the C locale.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Skips spaces and tabs (the only separators OpenSSH's reader knows).
fn skip_blanks(buf: &[u8], mut i: usize) -> usize {
    while matches!(buf.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// The end of the C string token starting at `i`: the first byte in
/// `stops` or NUL.
fn token_end(buf: &[u8], i: usize, stops: &[u8]) -> usize {
    let mut j = i;
    while let Some(&b) = buf.get(j) {
        if b == 0 || stops.contains(&b) {
            break;
        }
        j += 1;
    }
    j
}

/// `b64_pton` (the resolver's base64 decoder OpenSSH uses): white space
/// anywhere is skipped, padding is required and checked, and the bits past
/// the last whole byte must be zero.
fn b64_pton(src: &[u8]) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out: Vec<u8> = Vec::new();
    let mut state = 0;
    let mut i = 0;
    let mut pad = false;
    while i < src.len() {
        let ch = src[i];
        i += 1;
        if c_space(ch) {
            continue;
        }
        if ch == b'=' {
            pad = true;
            break;
        }
        let v = ALPHABET.iter().position(|&a| a == ch)? as u8;
        match state {
            0 => {
                out.push(v << 2);
                state = 1;
            }
            1 => {
                *out.last_mut()? |= v >> 4;
                out.push((v & 0x0f) << 4);
                state = 2;
            }
            2 => {
                *out.last_mut()? |= v >> 2;
                out.push((v & 0x03) << 6);
                state = 3;
            }
            _ => {
                *out.last_mut()? |= v;
                state = 0;
            }
        }
    }
    if !pad {
        return (state == 0).then_some(out);
    }
    // After a `=`: one more `=` after state 2 (white space may come
    // between), then only white space; the partial byte must be zero.
    let mut rest = src[i..].iter().copied().filter(|&b| !c_space(b));
    match state {
        2 => {
            if rest.next() != Some(b'=') {
                return None;
            }
        }
        3 => {}
        _ => return None,
    }
    if rest.next().is_some() {
        return None;
    }
    // The partial byte started by the last character holds the bits that
    // must be zero; it is not part of the result.
    if out.pop() != Some(0) {
        return None;
    }
    Some(out)
}

/// `check_markers`: the marker at `*i` (if any), moving past it and the
/// blanks after it; `None` for a line OpenSSH skips (an unknown marker,
/// two markers, a marker not ended by a space or tab).
fn read_marker(buf: &[u8], i: &mut usize) -> Option<Marker> {
    let mut marker = Marker::None;
    let mut cp = *i;
    while buf.get(cp) == Some(&b'@') {
        if marker != Marker::None {
            return None;
        }
        // The marker ends at the line's first space, or with none its
        // first tab (strchr over the rest of the line).
        let end = token_end(buf, cp, b" ");
        let sp = if buf.get(end) == Some(&b' ') {
            end
        } else {
            let tab = token_end(buf, cp, b"\t");
            if buf.get(tab) != Some(&b'\t') {
                return None;
            }
            tab
        };
        if sp <= cp + 1 || sp >= cp + 32 {
            return None;
        }
        marker = match &buf[cp..sp] {
            b"@cert-authority" => Marker::CertAuthority,
            b"@revoked" => Marker::Revoked,
            _ => return None,
        };
        cp = skip_blanks(buf, sp);
    }
    *i = cp;
    Some(marker)
}

/// `sshkey_read`: the key at `i` (type field, blanks, base64), or why not.
fn read_key(buf: &[u8], i: usize) -> Result<HostKey, KeyError> {
    let type_end = token_end(buf, i, b" \t");
    if buf.get(type_end).is_none_or(|&b| b == 0) {
        return Err(KeyError::Malformed);
    }
    let field = &buf[i..type_end];
    let said = type_from_field(field)
        .ok_or_else(|| KeyError::UnknownType(String::from_utf8_lossy(field).into_owned()))?;
    let start = skip_blanks(buf, type_end);
    if buf.get(start).is_none_or(|&b| b == 0) {
        return Err(KeyError::Malformed);
    }
    let end = token_end(buf, start, b" \t");
    let blob = b64_pton(&buf[start..end]).ok_or(KeyError::Malformed)?;
    let key = HostKey::from_blob(&blob)?;
    // The blob's type must be the line's (and an ECDSA key's curve the
    // one the line names).
    if key.kind != said {
        let name = |t: KeyType| {
            TYPE_NAMES
                .iter()
                .find(|(_, k)| *k == t)
                .map_or("?", |(n, _)| n)
        };
        return Err(KeyError::TypeMismatch {
            said: String::from_utf8_lossy(field).into_owned(),
            found: name(key.kind).to_string(),
        });
    }
    Ok(key)
}

/// One line as `hostkeys_foreach_file` reads it, up to where its key
/// starts; `None` for a comment, a blank line or a line it skips whatever
/// its names.
fn read_line(line: &[u8], newline: bool, number: usize) -> Option<Entry> {
    // getline's buffer: the line, its newline, a NUL; then the line is
    // cut at its first newline or NUL.
    let mut buf = line.to_vec();
    if newline {
        buf.push(b'\n');
    }
    buf.push(0);
    let cut = buf
        .iter()
        .position(|&b| b == 0 || b == b'\n')
        .unwrap_or(buf.len() - 1);
    buf[cut] = 0;

    let mut cp = skip_blanks(&buf, 0);
    if matches!(buf.get(cp), None | Some(0 | b'#' | b'\n')) {
        return None;
    }
    let marker = read_marker(&buf, &mut cp)?;
    let hosts_end = token_end(&buf, cp, b" \t");
    let hosts = buf[cp..hosts_end].to_vec();
    // OpenSSH ends the host field by writing a NUL over its end and goes
    // on after it, even when that end was a NUL already: a NUL right
    // after the host field acts as a separator. Past the line's own end
    // it would read a buffer left over from an earlier line; here there is
    // nothing there.
    let after = hosts_end + 1;
    if after >= buf.len() {
        return None;
    }
    let key_start = skip_blanks(&buf, after);
    if matches!(buf.get(key_start), None | Some(0 | b'#')) {
        return None;
    }
    Some(Entry {
        line: number,
        marker,
        hosts,
        buf,
        key_start,
        key: OnceLock::new(),
    })
}

impl KnownHosts {
    /// Parses the bytes of a known_hosts file.
    pub fn parse(bytes: &[u8]) -> KnownHosts {
        let mut entries = Vec::new();
        let mut rest = bytes;
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let (line, newline, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true, &rest[i + 1..]),
                None => (rest, false, &rest[rest.len()..]),
            };
            if let Some(e) = read_line(line, newline, number) {
                entries.push(e);
            }
            rest = next;
        }
        KnownHosts { entries }
    }

    /// Reads a file (a regular file of at most 16 MiB); a missing file is
    /// an empty list.
    pub fn read(path: &Path) -> std::io::Result<KnownHosts> {
        match crate::io::readfile::bytes(path, crate::io::readfile::KNOWN_HOSTS) {
            Ok(bytes) => Ok(Self::parse(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(e),
        }
    }

    /// Plain key types recorded for a host (not `@revoked` nor
    /// `@cert-authority` lines, nor certificates), in file order, without
    /// duplicates.
    pub fn key_types(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.marker != Marker::None || !host_matches(&e.hosts, name) {
                continue;
            }
            let Some(key) = e.key().filter(|k| !k.kind.cert) else {
                continue;
            };
            let t = key.type_name().to_string();
            if !out.contains(&t) {
                out.push(t);
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

    /// Verifies a presented key for a host lookup name, as OpenSSH does:
    /// `@revoked` wins (a key revoked under any name: baton's one stricter
    /// rule); a recorded key equal to it is `Known`; else any other key
    /// recorded for the host makes it `Changed` (the line named is one of
    /// the presented type when there is one); else `Unknown`.
    pub fn verify(&self, name: &str, key: &HostKey) -> Verdict {
        for e in &self.entries {
            if e.marker == Marker::Revoked && e.key().is_some_and(|k| k.same_public(key)) {
                return Verdict::Revoked { line: e.line };
            }
        }
        let mut same_type: Option<(usize, &HostKey)> = None;
        let mut other_type: Option<(usize, &HostKey)> = None;
        for e in &self.entries {
            if e.marker != Marker::None || !host_matches(&e.hosts, name) {
                continue;
            }
            let Some(recorded) = e.key() else {
                continue;
            };
            if recorded == key {
                return Verdict::Known;
            }
            let slot = if recorded.kind == key.kind {
                &mut same_type
            } else {
                &mut other_type
            };
            slot.get_or_insert((e.line, recorded));
        }
        match same_type.or(other_type) {
            Some((line, recorded)) => Verdict::Changed {
                line,
                recorded_type: recorded.type_name().to_string(),
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

/// `match_maybe_hashed(name, hosts) == 1`: a hashed field is compared with
/// the name hashed under its salt, a plain one as a pattern list.
fn host_matches(hosts: &[u8], name: &str) -> bool {
    if hosts.first() == Some(&b'|') {
        return hashed_name(hosts, name).is_some_and(|h| h.as_bytes() == hosts);
    }
    pattern_list_matches(&name.to_ascii_lowercase(), hosts)
}

/// `host_hash`: `name` hashed under the salt of the hashed field `hosts`
/// (`|1|salt|...`), as OpenSSH writes it; `None` when the field is not one
/// OpenSSH can read (another magic, no salt, a salt that is not 20 bytes).
fn hashed_name(hosts: &[u8], name: &str) -> Option<String> {
    let rest = hosts.strip_prefix(b"|1|")?;
    let end = rest.iter().position(|&b| b == b'|')?;
    if end == 0 || end > 1024 {
        return None;
    }
    let salt = b64_pton(&rest[..end])?;
    if salt.len() != 20 {
        return None;
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(&salt).ok()?;
    mac.update(name.as_bytes());
    Some(format!(
        "|1|{}|{}",
        STANDARD.encode(&salt),
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// `match_pattern_list(name, patterns, dolower) == 1`: comma-separated
/// patterns, each perhaps negated with `!`; a negated match wins; ASCII
/// letters of the patterns compared without case (the name is lower case
/// already); a pattern of 1023 bytes or more ends the list with no match.
fn pattern_list_matches(name: &str, patterns: &[u8]) -> bool {
    let mut positive = false;
    let mut i = 0;
    while i < patterns.len() {
        let negated = patterns[i] == b'!';
        if negated {
            i += 1;
        }
        let end = patterns[i..]
            .iter()
            .position(|&b| b == b',')
            .map_or(patterns.len(), |p| i + p);
        let sub: Vec<u8> = patterns[i..end].to_ascii_lowercase();
        if sub.len() >= 1023 {
            return false;
        }
        i = if end < patterns.len() { end + 1 } else { end };
        if glob(&sub, name.as_bytes()) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// OpenSSH's `match_pattern`, byte by byte: `*` any run, `?` one byte.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
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
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    /// An ed25519 key blob (any 32 bytes are one).
    fn ed(seed: u8) -> Vec<u8> {
        wire(&[b"ssh-ed25519", &[seed; 32]])
    }

    /// An RSA key blob of 1024 bits.
    fn rsa(seed: u8) -> Vec<u8> {
        let mut n = vec![0u8, 0xc0];
        n.extend(std::iter::repeat_n(seed | 1, 127));
        wire(&[b"ssh-rsa", &[1, 0, 1], &n])
    }

    /// Real ECDSA public keys (ssh-keygen), as blobs.
    const EC256: [&str; 2] = [
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNsvSxalacQu0WasPTQv8HojjL7LMKkUJzgOAC77X+MRNIXlkU1Wlgj8AeEbV9V4UFq2P/W8awGrfi7s3zDMMLc=",
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIs3hLTqIhB2PVygz1NpVOudLJZeAcwQdIAWg/i37mmHpw68qkU39LHpv6aCpNZfKeFjGAYqDLMZgkr6p/lDut4=",
    ];
    const EC384: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBGl4L4b55rfSWT39ouVIHGAi+HZEFacVWEaqC38BGeLOrOZxNy360sETLBzFmT5rd5pxiwYaMep75Q6qw9bYUVH3YO+FueyJJWKbvmZBIhF0k7hmYI02U9UkmLEVktMJjQ==";
    const EC521: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBACblpcsAH7UjiyQ2nrqnEokg4UvMixuqWMHFDTkFZjoCEd6rbyG0xmbXWCPB5PnGkCKTrMvW3QiISOH1CAFM7DI2QBEsJxkk5dgvqznuVoSCX3bZE1DuKo+7ht4jI0n4e4r8QIF/mM1js9/BaLrwsoqnZE8Yjin60PwSFULDAXwkDwE0Q==";

    fn ec(i: usize) -> Vec<u8> {
        STANDARD.decode(EC256[i]).unwrap()
    }

    fn key(blob: &[u8]) -> HostKey {
        HostKey::from_blob(blob).unwrap()
    }

    fn line(hosts: &str, blob: &[u8]) -> String {
        format!(
            "{hosts} {} {}\n",
            key_type_of(blob).unwrap(),
            STANDARD.encode(blob)
        )
    }

    fn parse(text: &str) -> KnownHosts {
        KnownHosts::parse(text.as_bytes())
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
        let (k1, k2) = (ed(1), ed(2));
        let kh = parse(&line("10.0.0.1,db1", &k1));
        assert_eq!(kh.verify("10.0.0.1", &key(&k1)), Verdict::Known);
        assert_eq!(kh.verify("db1", &key(&k1)), Verdict::Known);
        assert_eq!(kh.verify("10.0.0.2", &key(&k1)), Verdict::Unknown);
        assert_eq!(
            kh.verify("10.0.0.1", &key(&k2)),
            Verdict::Changed {
                line: 1,
                recorded_type: "ssh-ed25519".into()
            }
        );
    }

    #[test]
    fn a_key_of_another_type_is_a_change_not_unknown() {
        let kh = parse(&line("h", &ed(1)));
        assert!(matches!(
            kh.verify("h", &key(&ec(0))),
            Verdict::Changed { .. }
        ));
        assert_eq!(kh.key_types("h"), vec!["ssh-ed25519".to_string()]);
    }

    #[test]
    fn hashed_entries_and_ports() {
        let k = ed(7);
        let text = format!(
            "# comment\n{}{}",
            line(&hashed("10.0.0.1", b"0123456789abcdefghij"), &k),
            line(&hashed("[10.0.0.2]:2222", b"jihgfedcba9876543210"), &k)
        );
        let kh = parse(&text);
        assert_eq!(kh.verify("10.0.0.1", &key(&k)), Verdict::Known);
        assert_eq!(
            kh.verify(&lookup_name("10.0.0.2", 2222), &key(&k)),
            Verdict::Known
        );
        // The same address on port 22 is a different entry.
        assert_eq!(
            kh.verify(&lookup_name("10.0.0.2", 22), &key(&k)),
            Verdict::Unknown
        );
    }

    #[test]
    fn a_hashed_entry_needs_a_salt_of_20_bytes_and_its_exact_text() {
        let k = key(&ed(7));
        for salt in [&b"0123456789abcdef"[..], &[9u8; 32][..], &[][..]] {
            let kh = parse(&line(&hashed("h", salt), &ed(7)));
            assert_eq!(kh.verify("h", &k), Verdict::Unknown, "salt {salt:?}");
        }
        // Another magic, a missing hash, a hashed name in a list.
        let good = hashed("h", b"0123456789abcdefghij");
        for hosts in [
            good.replacen("|1|", "|2|", 1),
            "|1|MDEyMzQ1Njc4OWFiY2RlZmdoaWo=".to_string(),
            format!("{good},h"),
        ] {
            let kh = parse(&line(&hosts, &ed(7)));
            assert_eq!(kh.verify("h", &k), Verdict::Unknown, "{hosts}");
        }
        assert_eq!(parse(&line(&good, &ed(7))).verify("h", &k), Verdict::Known);
    }

    #[test]
    fn wildcards_negation_and_bracketed_ports() {
        let k = ed(3);
        let kh = parse(&line("10.0.0.*,!10.0.0.9,[10.1.0.1]:2200", &k));
        let k = key(&k);
        assert_eq!(kh.verify("10.0.0.4", &k), Verdict::Known);
        assert_eq!(kh.verify("10.0.0.9", &k), Verdict::Unknown);
        assert_eq!(kh.verify("[10.1.0.1]:2200", &k), Verdict::Known);
        assert_eq!(kh.verify("10.1.0.1", &k), Verdict::Unknown);
        // The negation wins wherever it stands; `?` is one byte.
        assert_eq!(
            parse(&line("!h,*", &ed(3))).verify("h", &k),
            Verdict::Unknown
        );
        assert_eq!(
            parse(&line("*,!h", &ed(3))).verify("h", &k),
            Verdict::Unknown
        );
        assert_eq!(parse(&line("H?", &ed(3))).verify("hx", &k), Verdict::Known);
        assert_eq!(parse(&line("h?", &ed(3))).verify("h", &k), Verdict::Unknown);
    }

    #[test]
    fn a_pattern_of_1023_bytes_makes_the_line_match_nothing() {
        let k = key(&ed(3));
        let long = "a".repeat(1023);
        assert_eq!(
            parse(&line(&format!("h,{long}"), &ed(3))).verify("h", &k),
            Verdict::Unknown
        );
        let shorter = "a".repeat(1022);
        assert_eq!(
            parse(&line(&format!("h,{shorter}"), &ed(3))).verify("h", &k),
            Verdict::Known
        );
    }

    #[test]
    fn only_spaces_and_tabs_separate_fields() {
        let k = ed(4);
        let (t, b) = ("ssh-ed25519", STANDARD.encode(&k));
        let k = key(&k);
        for sep in ["\u{a0}", "\u{2003}", "\x0b", "\x0c", "\r"] {
            let kh = parse(&format!("h{sep}{t} {b}\n"));
            assert_eq!(kh.verify("h", &k), Verdict::Unknown, "{sep:?}");
            let kh = parse(&format!("h {t}{sep}{b}\n"));
            assert_eq!(kh.verify("h", &k), Verdict::Unknown, "{sep:?}");
            let kh = parse(&format!("{sep}h {t} {b}\n"));
            assert_eq!(kh.verify("h", &k), Verdict::Unknown, "{sep:?}");
        }
        let kh = parse(&format!(" \t h\t{t} \t{b}\r\n"));
        assert_eq!(kh.verify("h", &k), Verdict::Known);
    }

    #[test]
    fn white_space_inside_the_base64_is_skipped_as_openssh_skips_it() {
        let k = ed(5);
        let b = STANDARD.encode(&k);
        for ws in ["\r", "\x0b", "\x0c"] {
            let text = format!("h ssh-ed25519 {}{ws}{}\n", &b[..10], &b[10..]);
            assert_eq!(parse(&text).verify("h", &key(&k)), Verdict::Known, "{ws:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_and_nul_bytes() {
        let k = ed(6);
        let mut bytes = b"# caf\xe9\nh\xffst ".to_vec();
        bytes.extend(line("x", &ed(9)).as_bytes());
        bytes.extend(line("h", &k).trim_end().as_bytes());
        bytes.extend(b"\0garbage\n");
        let kh = KnownHosts::parse(&bytes);
        assert_eq!(kh.verify("h", &key(&k)), Verdict::Known);
        // A NUL right after the host field separates it from the type.
        let text = line("h", &k).replacen(' ', "\0 ", 1);
        assert_eq!(parse(&text).verify("h", &key(&k)), Verdict::Known);
        // A host field alone on a last line without a newline is nothing.
        assert_eq!(parse("h").verify("h", &key(&k)), Verdict::Unknown);
    }

    #[test]
    fn the_type_field_must_name_the_blobs_type() {
        let k = ed(8);
        let b = STANDARD.encode(&k);
        for t in [
            "ecdsa-sha2-nistp256",
            "foo",
            "SSH-ED25519",
            "ssh-ed25519-cert-v01@openssh.com",
        ] {
            let kh = parse(&format!("h {t} {b}\nh {}", line("", &ec(0)).trim_start()));
            // The line records nothing: ecdsa alone is recorded and asked for.
            assert_eq!(
                kh.key_types("h"),
                vec!["ecdsa-sha2-nistp256".to_string()],
                "{t}"
            );
        }
        // rsa-sha2-256/512 name RSA keys; a nistp256 key is no nistp384 key.
        let kh = parse(&format!("h rsa-sha2-512 {}\n", STANDARD.encode(rsa(1))));
        assert_eq!(kh.verify("h", &key(&rsa(1))), Verdict::Known);
        let kh = parse(&format!("h ecdsa-sha2-nistp384 {}\n", EC256[0]));
        assert!(kh.key_types("h").is_empty());
    }

    #[test]
    fn keys_compare_by_their_numbers_not_their_bytes() {
        // OpenSSH's short type name inside the blob, a redundant zero in
        // the modulus, an rsa-sha2 name inside the blob: the same keys.
        let k = ed(9);
        let short = wire(&[b"ED25519", &[9; 32]]);
        let kh = parse(&format!("h ssh-ed25519 {}\n", STANDARD.encode(&short)));
        assert_eq!(kh.verify("h", &key(&k)), Verdict::Known);
        let r = rsa(2);
        let mut padded = wire(&[b"ssh-rsa", &[1, 0, 1]]);
        let n = &r[r.len() - 129..];
        padded.extend(wire(&[&[&[0u8][..], n].concat()]));
        let kh = parse(&format!("h ssh-rsa {}\n", STANDARD.encode(&padded)));
        assert_eq!(kh.verify("h", &key(&r)), Verdict::Known);
        let renamed = [wire(&[b"rsa-sha2-256"]), r[11..].to_vec()].concat();
        let kh = parse(&format!("h ssh-rsa {}\n", STANDARD.encode(&renamed)));
        assert_eq!(kh.verify("h", &key(&r)), Verdict::Known);
    }

    #[test]
    fn blobs_openssh_would_not_read_record_nothing() {
        let ed_bad = wire(&[b"ssh-ed25519", &[1; 31]]);
        let trailing = [ed(1), vec![0, 0, 0, 0]].concat();
        let mut small = vec![0u8, 0xc0];
        small.extend([3u8; 95]);
        let rsa_small = wire(&[b"ssh-rsa", &[1, 0, 1], &small]);
        let negative = wire(&[b"ssh-rsa", &[0x81], &rsa(1)[22..]]);
        let mut off_curve = ec(0);
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        let ec_short_name = [wire(&[b"ECDSA"]), ec(0)[23..].to_vec()].concat();
        for (what, blob, t) in [
            ("31-byte ed25519", ed_bad, "ssh-ed25519"),
            ("bytes after the key", trailing, "ssh-ed25519"),
            ("768-bit rsa", rsa_small, "ssh-rsa"),
            ("negative exponent", negative, "ssh-rsa"),
            ("point off the curve", off_curve, "ecdsa-sha2-nistp256"),
            ("ECDSA short name", ec_short_name, "ecdsa-sha2-nistp256"),
        ] {
            let kh = parse(&format!("h {t} {}\n", STANDARD.encode(&blob)));
            assert!(kh.key_types("h").is_empty(), "{what}");
        }
        for text in [
            format!("h ssh-ed25519 {}\n", &STANDARD.encode(ed(1))[..40]),
            format!("h ecdsa-sha2-nistp256 {}\n", EC256[0].trim_end_matches('=')),
            format!("h ssh-ed25519 {}#c\n", STANDARD.encode(ed(1))),
            "h ssh-ed25519\n".to_string(),
            "h\n".to_string(),
            format!("h #ssh-ed25519 {}\n", STANDARD.encode(ed(1))),
        ] {
            assert!(parse(&text).key_types("h").is_empty(), "{text:?}");
        }
    }

    #[test]
    fn real_ecdsa_keys_of_every_curve_are_read() {
        for (b64, t) in [
            (EC256[0], "ecdsa-sha2-nistp256"),
            (EC384, "ecdsa-sha2-nistp384"),
            (EC521, "ecdsa-sha2-nistp521"),
        ] {
            let kh = parse(&format!("h {t} {b64}\n"));
            assert_eq!(kh.key_types("h"), vec![t.to_string()]);
            let k = key(&STANDARD.decode(b64).unwrap());
            assert_eq!(kh.verify("h", &k), Verdict::Known);
        }
    }

    #[test]
    fn base64_is_decoded_as_b64_pton_decodes_it() {
        assert_eq!(b64_pton(b"aGk="), Some(b"hi".to_vec()));
        assert_eq!(b64_pton(b"aG k\r="), Some(b"hi".to_vec()));
        assert_eq!(b64_pton(b"aGk"), None); // padding required
        assert_eq!(b64_pton(b"aGl="), None); // bits past the end not zero
        assert_eq!(b64_pton(b"aA= ="), Some(b"h".to_vec()));
        assert_eq!(b64_pton(b"aA=x"), None);
        assert_eq!(b64_pton(b"aGk=aGk="), None);
        assert_eq!(b64_pton(b"a==="), None);
        assert_eq!(b64_pton(b""), Some(Vec::new()));
    }

    #[test]
    fn markers_are_read_as_check_markers_reads_them() {
        let k = ed(1);
        let b = STANDARD.encode(&k);
        let known = format!("h ssh-ed25519 {b}\n");
        let judge = |first: &str| parse(&format!("{first}\n{known}")).verify("h", &key(&k));
        assert_eq!(
            judge(&format!("@revoked h ssh-ed25519 {b}")),
            Verdict::Revoked { line: 1 }
        );
        assert_eq!(
            judge(&format!("@revoked\th\tssh-ed25519\t{b}")),
            Verdict::Revoked { line: 1 }
        );
        // A tab after the marker with a space later on the line: no marker.
        assert_eq!(
            judge(&format!("@revoked\th ssh-ed25519 {b}")),
            Verdict::Known
        );
        assert_eq!(
            judge(&format!("@REVOKED h ssh-ed25519 {b}")),
            Verdict::Known
        );
        assert_eq!(
            judge(&format!("@revoked @revoked h ssh-ed25519 {b}")),
            Verdict::Known
        );
        assert_eq!(
            judge(&format!("@trusted h ssh-ed25519 {b}")),
            Verdict::Known
        );
        // @cert-authority lines never vouch for a plain key.
        let kh = parse(&format!("@cert-authority h ssh-ed25519 {b}\n"));
        assert_eq!(kh.verify("h", &key(&k)), Verdict::Unknown);
        assert!(kh.key_types("h").is_empty());
    }

    #[test]
    fn a_revoked_key_is_refused_for_every_host() {
        // Stricter than OpenSSH, which applies @revoked to the names it
        // matches only.
        let k = ed(1);
        let text = format!(
            "garbage\n@cert-authority *.x ssh-ed25519 AAAA\n{}@revoked other {}",
            line("h", &k),
            line("", &k).trim_start()
        );
        let kh = parse(&text);
        assert_eq!(kh.verify("h", &key(&k)), Verdict::Revoked { line: 4 });
        // Another of the host's keys revoked: the right key is known.
        let kh = parse(&format!(
            "@revoked h {}{}",
            line("", &ed(2)).trim_start(),
            line("h", &k)
        ));
        assert_eq!(kh.verify("h", &key(&k)), Verdict::Known);
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
        let (real_ed, ecdsa, rsa) = (ed(1), ec(0), rsa(1));
        let text = format!(
            "{}{}{}",
            line("h", &ecdsa),
            line("h", &ed(2)),
            line("h", &rsa)
        );
        let kh = parse(&text);
        let offered = kh.host_key_algorithms("h", &LIBSSH2);
        let server = [rsa.clone(), ecdsa.clone(), real_ed.clone()];
        let k = presented(&offered, &server);
        assert_eq!(k, &real_ed[..]);
        assert_eq!(
            kh.verify("h", &key(k)),
            Verdict::Changed {
                line: 2,
                recorded_type: "ssh-ed25519".into()
            }
        );
        // With the ed25519 entry right, the same server is known.
        let kh = parse(&format!("{}{}", line("h", &ecdsa), line("h", &real_ed)));
        let k = presented(&kh.host_key_algorithms("h", &LIBSSH2), &server);
        assert_eq!(kh.verify("h", &key(k)), Verdict::Known);
    }

    #[test]
    fn a_wrong_ecdsa_entry_is_a_change_when_rsa_comes_first_in_the_file() {
        let (ecdsa, rsa) = (ec(0), rsa(1));
        let kh = parse(&format!("{}{}", line("h", &rsa), line("h", &ec(1))));
        let server = [ed(1), rsa, ecdsa.clone()];
        let k = presented(&kh.host_key_algorithms("h", &LIBSSH2), &server);
        assert_eq!(k, &ecdsa[..]);
        assert_eq!(
            kh.verify("h", &key(k)),
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
        let right = ed(2);
        let kh = parse(&format!("{}{}", line("h", &ed(1)), line("h", &right)));
        assert_eq!(kh.verify("h", &key(&right)), Verdict::Known);
    }

    #[test]
    fn a_changed_key_names_the_line_of_its_own_type() {
        let kh = parse(&format!("{}{}", line("h", &ec(0)), line("h", &ed(1))));
        assert_eq!(
            kh.verify("h", &key(&ed(2))),
            Verdict::Changed {
                line: 2,
                recorded_type: "ssh-ed25519".into()
            }
        );
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
        let k = ed(5);
        append(&path, "[10.0.0.5]:2222", &k).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let kh = KnownHosts::read(&path).unwrap();
        assert_eq!(kh.verify("[10.0.0.5]:2222", &key(&k)), Verdict::Known);
    }
}
