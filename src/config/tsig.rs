//! TSIG key files in BIND's `tsig-keygen` format: parsing, algorithm and
//! permission checks. The secret never appears in `Debug` output or errors.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::core::quote::quote;

/// Supported TSIG algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    /// hmac-sha256
    HmacSha256,
    /// hmac-sha384
    HmacSha384,
    /// hmac-sha512
    HmacSha512,
}

impl TsigAlgorithm {
    /// The algorithm's name as BIND writes it.
    pub fn name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }
}

/// A TSIG key. The secret is redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The file it was read from.
    pub file: PathBuf,
    /// The key's name (an absolute DNS name once used on the wire).
    pub name: String,
    /// Its algorithm.
    pub algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl TsigKey {
    /// The raw secret. Only the DNS adapter signs with it; never print it.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("file", &self.file)
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a key file was refused; each message says how to fix it (the
/// commands in a fix quote the path, so they can be pasted).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TsigError {
    #[error("cannot read TSIG key file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("TSIG key file {path} is readable or writable by other users (mode {mode:04o})")]
    Permissions { path: String, mode: u32 },
    #[error("TSIG key file {path} is not in BIND key format: {reason}")]
    Format { path: String, reason: KeyFormat },
    #[error("TSIG key file {path} uses algorithm {algorithm}, which baton does not support")]
    Algorithm { path: String, algorithm: String },
}

impl TsigError {
    /// How to fix this error.
    pub fn fix(&self) -> String {
        match self {
            TsigError::Unreadable { path, .. } => {
                format!("check the path, or create the key with `tsig-keygen -a hmac-sha256 NAME > {}`", quote(path))
            }
            TsigError::Permissions { path, .. } => format!("run `chmod 600 {}`", quote(path)),
            TsigError::Format { path, .. } => format!(
                "write the file as `tsig-keygen -a hmac-sha256 NAME > {}` prints it: key \"NAME\" {{ algorithm hmac-sha256; secret \"BASE64\"; }};",
                quote(path)
            ),
            TsigError::Algorithm { .. } => {
                "use hmac-sha256, hmac-sha384 or hmac-sha512 (generate a new key with `tsig-keygen -a hmac-sha256 NAME`)".to_string()
            }
        }
    }
}

/// What in a key file's text is not BIND key format.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyFormat {
    #[error("a /* comment is not closed")]
    UnclosedComment,
    #[error("a quoted string is not closed")]
    UnclosedString,
    #[error("it must start with `key \"NAME\" {{`")]
    NoKeyStatement,
    #[error("the key has no name")]
    NoName,
    #[error("expected `{{` after the key name")]
    NoOpeningBrace,
    #[error("`algorithm` has no value")]
    NoAlgorithmValue,
    #[error("`secret` has no value")]
    NoSecretValue,
    #[error("expected `;` after a value")]
    NoSemicolon,
    /// A word that is neither `algorithm`, `secret` nor `}`.
    #[error("unexpected `{0}` inside the key")]
    Unexpected(String),
    #[error("the key statement is not closed with `}};`")]
    NotClosed,
    #[error("the key statement must end with `}};`")]
    NoFinalSemicolon,
    #[error("the file must hold exactly one key statement")]
    NotOneStatement,
    #[error("the key has no `algorithm`")]
    NoAlgorithm,
    #[error("the key has no `secret`")]
    NoSecret,
    #[error("the secret is not valid base64")]
    SecretNotBase64,
    #[error("the secret is shorter than 16 bytes")]
    SecretTooShort,
}

/// Reads and checks a key file: mode, format, algorithm, secret.
pub fn load(path: &Path) -> Result<TsigKey, TsigError> {
    let shown = path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| TsigError::Unreadable {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(TsigError::Permissions { path: shown, mode });
    }
    let text = crate::io::readfile::text(path, crate::io::readfile::KEY).map_err(|e| {
        TsigError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        }
    })?;
    parse(&text, path)
}

/// Parses the text of a BIND key file (one `key` statement).
pub fn parse(text: &str, path: &Path) -> Result<TsigKey, TsigError> {
    let shown = path.display().to_string();
    let format = |reason: KeyFormat| TsigError::Format {
        path: shown.clone(),
        reason,
    };
    let tokens = tokenize(text).map_err(format)?;
    let mut it = tokens.iter().map(String::as_str);
    if it.next() != Some("key") {
        return Err(format(KeyFormat::NoKeyStatement));
    }
    let name = it.next().ok_or_else(|| format(KeyFormat::NoName))?;
    if name.is_empty() || name == "{" {
        return Err(format(KeyFormat::NoName));
    }
    if it.next() != Some("{") {
        return Err(format(KeyFormat::NoOpeningBrace));
    }
    let mut algorithm = None;
    let mut secret = None;
    loop {
        match it.next() {
            Some("}") => break,
            Some("algorithm") => {
                algorithm = Some(
                    it.next()
                        .ok_or_else(|| format(KeyFormat::NoAlgorithmValue))?,
                );
                expect_semicolon(&mut it).map_err(format)?;
            }
            Some("secret") => {
                secret = Some(it.next().ok_or_else(|| format(KeyFormat::NoSecretValue))?);
                expect_semicolon(&mut it).map_err(format)?;
            }
            Some(other) => return Err(format(KeyFormat::Unexpected(other.to_string()))),
            None => return Err(format(KeyFormat::NotClosed)),
        }
    }
    if it.next() != Some(";") {
        return Err(format(KeyFormat::NoFinalSemicolon));
    }
    if it.next().is_some() {
        return Err(format(KeyFormat::NotOneStatement));
    }
    let algorithm = algorithm.ok_or_else(|| format(KeyFormat::NoAlgorithm))?;
    let algorithm = match algorithm.to_ascii_lowercase().as_str() {
        "hmac-sha256" => TsigAlgorithm::HmacSha256,
        "hmac-sha384" => TsigAlgorithm::HmacSha384,
        "hmac-sha512" => TsigAlgorithm::HmacSha512,
        _ => {
            return Err(TsigError::Algorithm {
                path: shown,
                algorithm: algorithm.to_string(),
            })
        }
    };
    let secret = secret.ok_or_else(|| format(KeyFormat::NoSecret))?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .map_err(|_| format(KeyFormat::SecretNotBase64))?;
    if secret.len() < 16 {
        return Err(format(KeyFormat::SecretTooShort));
    }
    Ok(TsigKey {
        file: path.to_path_buf(),
        name: name.to_string(),
        algorithm,
        secret,
    })
}

fn expect_semicolon<'a>(it: &mut impl Iterator<Item = &'a str>) -> Result<(), KeyFormat> {
    match it.next() {
        Some(";") => Ok(()),
        _ => Err(KeyFormat::NoSemicolon),
    }
}

/// Splits BIND syntax into words, quoted strings (unquoted), braces and
/// semicolons; comments (`#`, `//`, `/* */`) dropped.
fn tokenize(text: &str) -> Result<Vec<String>, KeyFormat> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' || (c == '/' && chars.get(i + 1) == Some(&'/')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            if i + 1 >= chars.len() {
                return Err(KeyFormat::UnclosedComment);
            }
            i += 2;
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(KeyFormat::UnclosedString);
            }
            out.push(chars[start..i].iter().collect());
            i += 1;
        } else if c == '{' || c == '}' || c == ';' {
            out.push(c.to_string());
            i += 1;
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '{' | '}' | ';' | '"')
            {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "key \"baton-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\";\n};\n";

    #[test]
    fn parses_tsig_keygen_output() {
        let k = parse(GOOD, Path::new("k")).expect("valid key");
        assert_eq!(k.name, "baton-update");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(k.secret(), b"secret-secret-secret-secret-secret");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = parse(GOOD, Path::new("k")).expect("valid key");
        let shown = format!("{k:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn refuses_md5() {
        let text = GOOD.replace("hmac-sha256", "hmac-md5");
        let e = parse(&text, Path::new("k")).unwrap_err();
        assert!(matches!(e, TsigError::Algorithm { ref algorithm, .. } if algorithm == "hmac-md5"));
    }

    #[test]
    fn refuses_bad_base64_and_missing_parts() {
        let e = parse(&GOOD.replace("c2Vj", "!!!!"), Path::new("k")).unwrap_err();
        assert!(e.to_string().contains("not valid base64"), "{e}");
        let e = parse("key \"x\" { algorithm hmac-sha256; };", Path::new("k")).unwrap_err();
        assert!(e.to_string().contains("no `secret`"), "{e}");
        let e = parse("secret \"x\";", Path::new("k")).unwrap_err();
        assert!(e.to_string().contains("must start with"), "{e}");
    }

    #[test]
    fn each_format_fault_reads_as_before_it_was_typed() {
        let reason = |text: &str| match parse(text, Path::new("k")) {
            Err(TsigError::Format { reason, .. }) => reason.to_string(),
            other => panic!("{text}: {other:?}"),
        };
        let secret = "secret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\";";
        let cases = [
            ("/* x", "a /* comment is not closed"),
            ("key \"x", "a quoted string is not closed"),
            ("zone \"x\" {};", "it must start with `key \"NAME\" {`"),
            ("key", "the key has no name"),
            ("key { };", "the key has no name"),
            ("key \"x\" ;", "expected `{` after the key name"),
            ("key \"x\" { algorithm", "`algorithm` has no value"),
            ("key \"x\" { secret", "`secret` has no value"),
            (
                "key \"x\" { algorithm hmac-sha256 }",
                "expected `;` after a value",
            ),
            (
                "key \"x\" { owner me; };",
                "unexpected `owner` inside the key",
            ),
            (
                "key \"x\" { algorithm hmac-sha256;",
                "the key statement is not closed with `};`",
            ),
            ("key \"x\" { }", "the key statement must end with `};`"),
            (
                "key \"x\" { }; key",
                "the file must hold exactly one key statement",
            ),
            (
                "key \"x\" { secret \"AAAA\"; };",
                "the key has no `algorithm`",
            ),
            (
                "key \"x\" { algorithm hmac-sha256; };",
                "the key has no `secret`",
            ),
            (
                "key \"x\" { algorithm hmac-sha256; secret \"AAAA\"; };",
                "the secret is shorter than 16 bytes",
            ),
        ];
        for (text, expect) in cases {
            assert_eq!(reason(text), expect, "{text}");
        }
        let e = parse(
            &format!("key \"x\" {{ algorithm hmac-sha256; {secret} }};"),
            Path::new("/k"),
        );
        assert!(e.is_ok(), "{e:?}");
        assert_eq!(
            parse(
                "key \"x\" { algorithm hmac-sha256; secret \"@@\"; };",
                Path::new("/etc/k")
            )
            .unwrap_err()
            .to_string(),
            "TSIG key file /etc/k is not in BIND key format: the secret is not valid base64"
        );
    }
}
