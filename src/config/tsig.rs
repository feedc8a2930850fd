//! TSIG key files in BIND's `tsig-keygen` format: parsing, algorithm and
//! permission checks. The secret never appears in `Debug` output or errors.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::quote::quote;

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
    Format { path: String, reason: String },
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
    let text =
        crate::readfile::text(path, crate::readfile::KEY).map_err(|e| TsigError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    parse(&text, path)
}

/// Parses the text of a BIND key file (one `key` statement).
pub fn parse(text: &str, path: &Path) -> Result<TsigKey, TsigError> {
    let shown = path.display().to_string();
    let format = |reason: &str| TsigError::Format {
        path: shown.clone(),
        reason: reason.to_string(),
    };
    let tokens = tokenize(text).map_err(|r| format(&r))?;
    let mut it = tokens.iter().map(String::as_str);
    if it.next() != Some("key") {
        return Err(format("it must start with `key \"NAME\" {`"));
    }
    let name = it.next().ok_or_else(|| format("the key has no name"))?;
    if name.is_empty() || name == "{" {
        return Err(format("the key has no name"));
    }
    if it.next() != Some("{") {
        return Err(format("expected `{` after the key name"));
    }
    let mut algorithm = None;
    let mut secret = None;
    loop {
        match it.next() {
            Some("}") => break,
            Some("algorithm") => {
                algorithm = Some(
                    it.next()
                        .ok_or_else(|| format("`algorithm` has no value"))?,
                );
                expect_semicolon(&mut it).map_err(|r| format(&r))?;
            }
            Some("secret") => {
                secret = Some(it.next().ok_or_else(|| format("`secret` has no value"))?);
                expect_semicolon(&mut it).map_err(|r| format(&r))?;
            }
            Some(other) => return Err(format(&format!("unexpected `{other}` inside the key"))),
            None => return Err(format("the key statement is not closed with `};`")),
        }
    }
    if it.next() != Some(";") {
        return Err(format("the key statement must end with `};`"));
    }
    if it.next().is_some() {
        return Err(format("the file must hold exactly one key statement"));
    }
    let algorithm = algorithm.ok_or_else(|| format("the key has no `algorithm`"))?;
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
    let secret = secret.ok_or_else(|| format("the key has no `secret`"))?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .map_err(|_| format("the secret is not valid base64"))?;
    if secret.len() < 16 {
        return Err(format("the secret is shorter than 16 bytes"));
    }
    Ok(TsigKey {
        file: path.to_path_buf(),
        name: name.to_string(),
        algorithm,
        secret,
    })
}

fn expect_semicolon<'a>(it: &mut impl Iterator<Item = &'a str>) -> Result<(), String> {
    match it.next() {
        Some(";") => Ok(()),
        _ => Err("expected `;` after a value".to_string()),
    }
}

/// Splits BIND syntax into words, quoted strings (unquoted), braces and
/// semicolons; comments (`#`, `//`, `/* */`) dropped.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
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
                return Err("a /* comment is not closed".to_string());
            }
            i += 2;
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i >= chars.len() {
                return Err("a quoted string is not closed".to_string());
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
}
