//! The DNS adapter against the lab's real Knot: authoritative answers, the
//! TSIG-signed compare-and-swap UPDATE (applied when the record holds the
//! expected value, refused when it does not, refused with a wrong key), and
//! the proof of the key with a signed query that changes nothing: proven
//! with the right key, refused (BADSIG, BADKEY) with a wrong one, which
//! `status` reports as needing an operator.

mod common;

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton::config::tsig;
use baton::io::dns::{self, DnsUpdateError, KeyProofError, Replace, TsigRefusal};
use common::*;
use hickory_proto::rr::RecordType;

const SERVER: &str = "198.18.0.53:53";
const NAME: &str = "app.baton.test.";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn server() -> SocketAddr {
    SERVER.parse().unwrap()
}

fn replace<'a>(expected: &'a [IpAddr], new: &str) -> Replace<'a> {
    Replace {
        zone: "baton.test.",
        name: NAME,
        expected,
        new: ip(new),
        ttl: 5,
    }
}

#[test]
fn authoritative_answers_carry_the_ttl() {
    let _lab = lab();
    in_ctl(async || {
        let a = dns::query(server(), NAME, RecordType::A, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(a.addresses(), vec![ip("198.18.0.21")]);
        assert_eq!(a.ttl, Some(5));
        let none = dns::query(
            server(),
            "nothing.baton.test.",
            RecordType::A,
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert!(none.values.is_empty());
        // A zone the server does not serve is not answered authoritatively.
        let e = dns::query(
            server(),
            "example.com.",
            RecordType::A,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(!e.to_string().is_empty());
        // Nobody at .59: a timeout, not a hang.
        let e = dns::query(
            "198.18.0.59:53".parse().unwrap(),
            NAME,
            RecordType::A,
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, dns::DnsQueryError::Timeout { .. }), "{e}");
    });
}

#[test]
fn compare_and_swap_applies_only_over_the_expected_value() {
    let _lab = lab();
    let key = tsig::load(&Path::new(LAB).join("keys/update.key")).unwrap();
    in_ctl(async || {
        let t = Duration::from_secs(2);
        // Stale expectation: refused, nothing changed.
        let e = dns::replace(
            server(),
            replace(&[ip("198.18.0.22")], "198.18.0.99"),
            &key,
            t,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, DnsUpdateError::Changed { .. }), "{e}");
        let a = dns::query(server(), NAME, RecordType::A, t).await.unwrap();
        assert_eq!(a.addresses(), vec![ip("198.18.0.21")]);
        // Right expectation: replaced in one message.
        dns::replace(
            server(),
            replace(&[ip("198.18.0.21")], "198.18.0.22"),
            &key,
            t,
        )
        .await
        .unwrap();
        let a = dns::query(server(), NAME, RecordType::A, t).await.unwrap();
        assert_eq!(a.addresses(), vec![ip("198.18.0.22")]);
        assert_eq!(a.ttl, Some(5));
    });
}

#[test]
fn a_wrong_key_is_refused() {
    let _lab = lab();
    let wrong = tsig::load(&Path::new(LAB).join("keys/wrong.key")).unwrap();
    in_ctl(async || {
        let e = dns::replace(
            server(),
            replace(&[ip("198.18.0.21")], "198.18.0.22"),
            &wrong,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                DnsUpdateError::BadKey {
                    refusal: TsigRefusal::BadSig,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("refused the TSIG signature") && text.contains("keys/wrong.key"),
            "{text}"
        );
        assert!(!text.contains("file an issue"), "{text}");
        let a = dns::query(server(), NAME, RecordType::A, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(a.addresses(), vec![ip("198.18.0.21")]);
    });
}

/// The zone's SOA serial on a lab server, as dig sees it.
fn serial(server: &str) -> String {
    netns_ok(
        CTL,
        &["dig", "+short", "+norec", server, "baton.test.", "SOA"],
    )
    .split_whitespace()
    .nth(2)
    .unwrap_or_default()
    .to_string()
}

/// The base64 secret of a lab key file (to check that it is never shown).
fn secret_of(file: &Path) -> String {
    let text = fs::read_to_string(file).unwrap();
    let start = text.find("secret \"").unwrap() + "secret \"".len();
    let len = text[start..].find('"').unwrap();
    text[start..start + len].to_string()
}

/// A key file (mode 0600) in `dir` with a name the lab's server does not
/// know, and the algorithm and secret of the lab's key.
fn unknown_name_key(dir: &Path) -> PathBuf {
    let lab_key = Path::new(LAB).join("keys/update.key");
    let path = dir.join("unknown.key");
    fs::write(
        &path,
        format!(
            "key \"nobody-knows\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{}\";\n}};\n",
            secret_of(&lab_key)
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn the_right_key_is_proven_and_the_proof_changes_nothing() {
    let _lab = lab();
    let key = tsig::load(&Path::new(LAB).join("keys/update.key")).unwrap();
    let before = (serial("@198.18.0.53"), serial("@198.18.0.54"));
    assert!(!before.0.is_empty());
    in_ctl(async || {
        dns::prove_key(server(), "baton.test.", &key, Duration::from_secs(2))
            .await
            .unwrap();
        // The secondary has no key: it says BADKEY (only the primary, the
        // first of `servers`, is asked in a run).
        let e = dns::prove_key(
            "198.18.0.54:53".parse().unwrap(),
            "baton.test.",
            &key,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                KeyProofError::Refused {
                    refusal: TsigRefusal::BadKey,
                    ..
                }
            ),
            "{e:?}"
        );
    });
    let run = baton(&lab_config(), &["status", "api", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let pair = &run.json()["pairs"][0];
    assert_eq!(pair["tsig"]["ok"], true, "{pair}");
    assert!(
        pair["tsig"]["detail"]
            .as_str()
            .unwrap()
            .contains("198.18.0.53:53"),
        "{pair}"
    );
    // Nothing in the zone changed: same serial on both servers, same record.
    assert_eq!((serial("@198.18.0.53"), serial("@198.18.0.54")), before);
    assert_eq!(
        netns_ok(CTL, &["dig", "+short", "+norec", "@198.18.0.53", NAME, "A"]).trim(),
        "198.18.0.21"
    );
    // A VIP pair has no key to prove.
    let run = baton(&lab_config(), &["status", "web", "--json"]);
    assert_eq!(run.json()["pairs"][0]["tsig"], serde_json::Value::Null);
}

#[test]
fn the_proof_tells_a_wrong_secret_from_an_unknown_key_name() {
    let _lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let wrong = tsig::load(&Path::new(LAB).join("keys/wrong.key")).unwrap();
    let unknown = tsig::load(&unknown_name_key(dir.path())).unwrap();
    in_ctl(async || {
        let t = Duration::from_secs(2);
        let e = dns::prove_key(server(), "baton.test.", &wrong, t)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                KeyProofError::Refused {
                    refusal: TsigRefusal::BadSig,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = dns::prove_key(server(), "baton.test.", &unknown, t)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                KeyProofError::Refused {
                    refusal: TsigRefusal::BadKey,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("no key `nobody-knows`"), "{e}");
    });
}

#[test]
fn status_with_a_wrong_key_names_the_refusal_and_needs_an_operator() {
    let _lab = lab();
    let before = serial("@198.18.0.53");
    let wrong_secret = secret_of(&Path::new(LAB).join("keys/wrong.key"));
    let dir = with_pair("api.toml", |t| {
        t.replace("keys/update.key", "keys/wrong.key")
    });
    let cfg = dir.path().join("baton.toml");
    let run = baton(&cfg, &["status", "api"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(run.stdout.contains("tsig FAIL"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("!! a switch by DNS would fail: 198.18.0.53:53 (the zone's primary) refused the TSIG signature (BADSIG)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("BADSIG"), "{}", run.stdout);
    assert!(run.stdout.contains("keys/wrong.key"), "{}", run.stdout);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(&wrong_secret), "the secret is shown: {text}");
    }
    let run = baton(&cfg, &["status", "api", "--json"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    let json = run.json();
    let pair = &json["pairs"][0];
    assert_eq!(pair["verdict"], "operator", "{pair}");
    assert_eq!(pair["tsig"]["ok"], false, "{pair}");
    assert!(
        pair["tsig"]["detail"].as_str().unwrap().contains("BADSIG"),
        "{pair}"
    );
    assert!(
        pair["problems"].as_array().unwrap().iter().any(|p| {
            p["severity"] == "operator" && p["message"].as_str().unwrap().contains("BADSIG")
        }),
        "{pair}"
    );
    // Traffic is still seen where it is: only the key is wrong.
    assert_eq!(pair["holder"]["detail"], "amber", "{pair}");

    // A key name the server does not know: BADKEY, and what to check.
    let keys = tempfile::tempdir().unwrap();
    let unknown = unknown_name_key(keys.path()).display().to_string();
    let dir = with_pair("api.toml", move |t| {
        set_key(&t, "tsig_key", &format!("{unknown:?}"))
    });
    let run = baton(&dir.path().join("baton.toml"), &["status", "api"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(
        run.stdout.contains("BADKEY") && run.stdout.contains("no key `nobody-knows`"),
        "{}",
        run.stdout
    );
    assert_eq!(
        serial("@198.18.0.53"),
        before,
        "nothing in the zone changed"
    );
}
