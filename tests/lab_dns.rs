//! The DNS adapter against the lab's real Knot: authoritative answers, and
//! the TSIG-signed compare-and-swap UPDATE (applied when the record holds
//! the expected value, refused when it does not, refused with a wrong key).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use baton::config::tsig;
use baton::dns::{self, DnsUpdateError, Replace};
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
        assert!(matches!(e, DnsUpdateError::BadKey { .. }), "{e}");
        let a = dns::query(server(), NAME, RecordType::A, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(a.addresses(), vec![ip("198.18.0.21")]);
    });
}
