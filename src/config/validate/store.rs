//! `[store]` in baton.toml: `kind = "local"` (the default: files in
//! `state_dir`) or `kind = "etcd"` with its endpoints (http or https URLs
//! with a host and a port), the key prefix (absolute, ending with `/`), the
//! lease's TTL and a request's timeout within their ranges, and the TLS and
//! authentication files (which must be readable; the password is read only
//! when the store is opened, never here, and never shown).

use std::path::Path;
use std::time::Duration;

use crate::config::diag::{printable, Key, Source};
use crate::config::raw::StoreFile;
use crate::config::{EtcdStore, StoreKind};

use super::paths::{file_fault, resolve, shown, FileFault};
use super::Sink;

use Key::{Index as I, Name as N};

/// The shortest lease: a keep-alive goes out every third of it, and a
/// leader stops acting a margin before it ends.
pub const MIN_TTL: Duration = Duration::from_secs(3);

/// `[store]`, checked; `None` when any key is refused.
pub(super) fn store(
    raw: Option<&StoreFile>,
    src: &Source<'_>,
    base: &Path,
    sink: &mut Sink<'_>,
) -> Option<StoreKind> {
    let Some(raw) = raw else {
        return Some(StoreKind::Local);
    };
    let start = sink.problems.len();
    let s = N("store");
    let etcd_keys = [
        ("endpoints", raw.endpoints.is_some()),
        ("prefix", raw.prefix.is_some()),
        ("ttl", raw.ttl.is_some()),
        ("timeout", raw.timeout.is_some()),
        ("ca", raw.ca.is_some()),
        ("cert", raw.cert.is_some()),
        ("key", raw.key.is_some()),
        ("user", raw.user.is_some()),
        ("password_file", raw.password_file.is_some()),
    ];
    match raw.kind.as_deref() {
        None | Some("local") => {
            for (key, given) in etcd_keys {
                if given {
                    sink.push(src.at(
                        &[s, N(key)],
                        format!("`{key}` applies to the etcd store only, and this store is local"),
                        "add `kind = \"etcd\"` to [store], or remove the key",
                    ));
                }
            }
            return (sink.problems.len() == start).then_some(StoreKind::Local);
        }
        Some("etcd") if !cfg!(feature = "etcd") => {
            sink.push(src.at(
                &[s, N("kind")],
                "this baton was built without the etcd store",
                "build it with `cargo build --release --features etcd` (needs protoc: `apt-get install protobuf-compiler libprotobuf-dev`), install the Debian package (built with it), or use kind = \"local\"",
            ));
            return None;
        }
        Some("etcd") => {}
        Some(other) => {
            sink.push(src.at(
                &[s, N("kind")],
                format!("store kind `{}` is not known", printable(other)),
                "use \"local\" (files in state_dir, the default) or \"etcd\"",
            ));
            return None;
        }
    }
    let endpoints = raw.endpoints.clone().unwrap_or_default();
    if endpoints.is_empty() {
        sink.push(src.at(
            &[s, N(if raw.endpoints.is_some() { "endpoints" } else { "kind" })],
            "the etcd store has no endpoints",
            "list the members' client URLs, like endpoints = [\"https://10.0.0.1:2379\", \"https://10.0.0.2:2379\", \"https://10.0.0.3:2379\"]",
        ));
    }
    for (i, e) in endpoints.iter().enumerate() {
        if let Some(problem) = endpoint_problem(e) {
            sink.push(src.at(
                &[s, N("endpoints"), I(i)],
                format!("endpoint `{}` {problem}", printable(e)),
                "write the member's client URL, like \"https://10.0.0.1:2379\"",
            ));
        } else if endpoints[..i].contains(e) {
            sink.push(src.at(
                &[s, N("endpoints"), I(i)],
                format!("endpoint `{}` is listed twice", printable(e)),
                "list each member once",
            ));
        }
    }
    let tls = endpoints.iter().any(|e| e.starts_with("https://"));
    if tls && endpoints.iter().any(|e| e.starts_with("http://")) {
        sink.push(src.at(
            &[s, N("endpoints")],
            "the endpoints mix http:// and https://",
            "use https:// for every member (or http:// for every member of a cluster without TLS)",
        ));
    }
    let prefix = raw.prefix.clone().unwrap_or_else(|| "/baton/".to_string());
    if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.len() < 2 {
        sink.push(src.at(
            &[s, N("prefix")],
            format!("prefix `{}` must start and end with `/`", printable(&prefix)),
            "write it like \"/baton/\" or \"/baton/site-a/\" (each site's controllers share one prefix)",
        ));
    } else if prefix.contains("//") || prefix.chars().any(char::is_control) {
        sink.push(src.at(
            &[s, N("prefix")],
            format!(
                "prefix `{}` holds an empty segment or a control character",
                printable(&prefix)
            ),
            "write it like \"/baton/\" or \"/baton/site-a/\"",
        ));
    }
    let ttl = raw.ttl.unwrap_or(Duration::from_secs(10));
    if !(MIN_TTL..=Duration::from_secs(300)).contains(&ttl) || ttl.subsec_nanos() != 0 {
        sink.push(src.at(
            &[s, N("ttl")],
            format!("ttl {} is out of range", humantime::format_duration(ttl)),
            "use whole seconds from \"3s\" to \"5m\" (\"10s\" is the default; Patroni uses 30s)",
        ));
    }
    let timeout = raw.timeout.unwrap_or(Duration::from_secs(2));
    if timeout < Duration::from_millis(100) || timeout >= ttl {
        sink.push(src.at(
            &[s, N("timeout")],
            format!(
                "timeout {} is out of range",
                humantime::format_duration(timeout)
            ),
            "use at least \"100ms\" and less than the ttl (\"2s\" is the default)",
        ));
    }
    let file = |key: &str, value: Option<&String>, sink: &mut Sink<'_>| {
        let v = value?;
        let path = resolve(base, v);
        let fault = match file_fault(&path) {
            None => return Some(path),
            Some(FileFault::Unreadable(e)) => format!("cannot be read: {e}"),
            Some(FileFault::Directory) => "is a directory".to_string(),
            Some(FileFault::Empty) => "is empty".to_string(),
        };
        sink.push(src.at(
            &[s, N(key)],
            format!("{key} {} {fault}", shown(&path)),
            format!("point `{key}` at a readable file"),
        ));
        None
    };
    let ca = file("ca", raw.ca.as_ref(), sink);
    let cert = file("cert", raw.cert.as_ref(), sink);
    let key = file("key", raw.key.as_ref(), sink);
    let password_file = file("password_file", raw.password_file.as_ref(), sink);
    if (raw.ca.is_some() || raw.cert.is_some() || raw.key.is_some()) && !tls {
        sink.push(src.at(
            &[s, N(if raw.ca.is_some() { "ca" } else { "cert" })],
            "TLS files are given but no endpoint is https://",
            "write the endpoints as https:// URLs, or remove ca, cert and key",
        ));
    }
    if raw.cert.is_some() != raw.key.is_some() {
        sink.push(src.at(
            &[s, N(if raw.cert.is_some() { "cert" } else { "key" })],
            "a client certificate needs both `cert` and `key`",
            "give both files, or neither",
        ));
    }
    if raw.user.is_some() != raw.password_file.is_some() {
        sink.push(src.at(
            &[
                s,
                N(if raw.user.is_some() {
                    "user"
                } else {
                    "password_file"
                }),
            ],
            "etcd authentication needs both `user` and `password_file`",
            "give both (the file holds the password alone, mode 0600), or neither",
        ));
    }
    if let Some(u) = &raw.user {
        if u.is_empty() || u.chars().any(|c| c.is_control() || c.is_whitespace()) {
            sink.push(src.at(
                &[s, N("user")],
                format!(
                    "user `{}` is empty or holds spaces or control characters",
                    printable(u)
                ),
                "give the etcd user's name",
            ));
        }
    }
    (sink.problems.len() == start).then(|| {
        StoreKind::Etcd(EtcdStore {
            endpoints,
            prefix,
            ttl,
            timeout,
            ca,
            cert,
            key,
            user: raw.user.clone(),
            password_file,
        })
    })
}

/// What is wrong with an endpoint URL, if anything.
fn endpoint_problem(e: &str) -> Option<&'static str> {
    let Some(rest) = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
    else {
        return Some("is not an http:// or https:// URL");
    };
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.contains('/') || hostport.contains('@') || hostport.contains('?') {
        return Some("has a path, a user or a query (give scheme, host and port only)");
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.is_empty() && !h.ends_with(':') => (h, p),
        _ => return Some("has no port (etcd's client port is usually 2379)"),
    };
    if host.starts_with('[') != host.ends_with(']') {
        return Some("has an unclosed IPv6 bracket");
    }
    if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some("holds spaces or control characters");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Some("has a port that is not 1 to 65535"),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, messages};
    use super::*;
    use crate::config::raw::GlobalFile;

    fn parse(text: &str) -> (Option<StoreKind>, Vec<String>) {
        let (s, d) = check(text, |g: &GlobalFile, src, sink| {
            store(
                g.store.as_ref(),
                src,
                Path::new("/nonexistent-baton-base"),
                sink,
            )
        });
        (s, messages(&d))
    }

    #[test]
    fn no_table_or_local_is_the_local_store() {
        assert_eq!(parse("").0, Some(StoreKind::Local));
        assert_eq!(
            parse("[store]\nkind = \"local\"\n").0,
            Some(StoreKind::Local)
        );
        let (s, m) = parse("[store]\nprefix = \"/x/\"\n");
        assert_eq!(s, None);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("etcd store only"), "{m:?}");
    }

    #[test]
    #[cfg(not(feature = "etcd"))]
    fn an_etcd_store_needs_the_etcd_feature() {
        let (s, m) = parse("[store]\nkind = \"etcd\"\nendpoints = [\"http://10.0.0.1:2379\"]\n");
        assert_eq!(s, None);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("built without the etcd store"), "{m:?}");
    }

    #[test]
    #[cfg(feature = "etcd")]
    fn an_etcd_store_gets_its_defaults() {
        let (s, m) = parse(
            "[store]\nkind = \"etcd\"\nendpoints = [\"http://10.0.0.1:2379\", \"http://[fd00::1]:2379\"]\n",
        );
        assert!(m.is_empty(), "{m:?}");
        let Some(StoreKind::Etcd(e)) = s else {
            panic!("etcd expected: {s:?}")
        };
        assert_eq!(e.endpoints.len(), 2);
        assert_eq!(e.prefix, "/baton/");
        assert_eq!(e.ttl, Duration::from_secs(10));
        assert_eq!(e.timeout, Duration::from_secs(2));
        assert_eq!(e.user, None);
    }

    #[test]
    #[cfg(feature = "etcd")]
    fn bad_etcd_settings_are_each_named() {
        let (s, m) = parse(
            "[store]\nkind = \"etcd\"\nendpoints = [\"10.0.0.1:2379\", \"http://a\", \"http://a:2379/x\", \"http://b:99999\", \"https://c:2379\", \"https://c:2379\"]\nprefix = \"baton\"\nttl = \"1s\"\ntimeout = \"5s\"\nuser = \"root\"\n",
        );
        assert_eq!(s, None);
        let want = [
            "is not an http:// or https:// URL",
            "has no port",
            "has a path",
            "not 1 to 65535",
            "listed twice",
            "mix http:// and https://",
            "must start and end with `/`",
            "ttl 1s is out of range",
            "timeout 5s is out of range",
            "needs both `user` and `password_file`",
        ];
        for w in want {
            assert!(m.iter().any(|x| x.contains(w)), "{w}: {m:#?}");
        }
        assert_eq!(m.len(), want.len(), "{m:#?}");
        let (_, m) = parse("[store]\nkind = \"etcd\"\n");
        assert!(m[0].contains("no endpoints"), "{m:?}");
    }

    #[test]
    fn an_unknown_kind_is_named() {
        let (s, m) = parse("[store]\nkind = \"zookeeper\"\n");
        assert_eq!(s, None);
        assert!(m[0].contains("not known"), "{m:?}");
    }

    #[test]
    #[cfg(feature = "etcd")]
    fn tls_and_password_files_must_be_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").expect("write");
        let text = format!(
            "[store]\nkind = \"etcd\"\nendpoints = [\"http://10.0.0.1:2379\"]\nuser = \"baton\"\npassword_file = \"{}\"\nca = \"{}\"\n",
            pw.display(),
            dir.path().join("missing-ca.pem").display()
        );
        let (s, m) = parse(&text);
        assert_eq!(s, None);
        assert!(
            m.iter()
                .any(|x| x.contains("missing-ca.pem cannot be read")),
            "{m:?}"
        );
        assert!(
            m.iter().any(|x| x.contains("no endpoint is https://")),
            "{m:?}"
        );
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(!m.iter().any(|x| x.contains("secret")), "{m:?}");
    }
}
