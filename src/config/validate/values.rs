//! The forms of single values, wherever they are written: names (of pairs,
//! hosts, environments, changes; HAProxy's names of backends and servers),
//! network interface names, virtual IPs in CIDR form, DNS server addresses,
//! absolute DNS names and zones, and the `{placeholder}`s a command or check
//! may hold.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::config::diag::{Key, Source};

use super::Sink;

/// An absolute DNS name (ending in a dot, labels of letters, digits, `-`
/// and `_`, within DNS's lengths); reported at `at` when it is not.
pub(super) fn dns_name(
    n: &str,
    src: &Source<'_>,
    at: &[Key<'_>],
    sink: &mut Sink<'_>,
) -> Option<String> {
    if !n.ends_with('.') {
        sink.push(src.at(
            at,
            format!("`{n}` is not an absolute DNS name"),
            format!("end it with a dot: \"{n}.\""),
        ));
        return None;
    }
    let labels_ok = n.len() <= 254
        && n.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if n == "." || !labels_ok {
        sink.push(src.at(
            at,
            format!("`{n}` is not a valid DNS name"),
            "use labels of letters, digits and `-` separated by dots, like \"www.example.com.\"",
        ));
        return None;
    }
    Some(n.to_string())
}

/// Whether `name` is `zone` or inside it (on a label boundary, any case).
pub(super) fn in_zone(name: &str, zone: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let z = zone.to_ascii_lowercase();
    n == z || n.ends_with(&format!(".{z}"))
}

/// A DNS server's address: `IP:PORT`, or an IP alone for port 53; never
/// port 0.
pub(super) fn parse_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
        .filter(|a| a.port() != 0)
}

/// Why a text is not a virtual IP in CIDR form (`ADDR/PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CidrError {
    /// There is no `/`.
    #[error("the prefix length (`/24`) is missing")]
    NoPrefix,
    /// What precedes the `/` is not an IP address.
    #[error("`{0}` is not an IP address")]
    Address(String),
    /// What follows the `/` is not a number of bits.
    #[error("`{0}` is not a prefix length")]
    Prefix(String),
    /// The prefix length is 0 or longer than the address.
    #[error("prefix length {prefix} is out of range 1-{max}")]
    PrefixRange {
        /// The prefix length written.
        prefix: u8,
        /// The address family's length: 32 or 128.
        max: u8,
    },
    /// The unspecified, a multicast or a loopback address.
    #[error("{0} cannot be a service address")]
    NotService(IpAddr),
    /// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`).
    #[error(
        "{address} is the IPv4 address {v4} written as IPv6; write {v4} with an IPv4 prefix length"
    )]
    Ipv4Mapped {
        /// The address as written.
        address: IpAddr,
        /// The IPv4 address it is.
        v4: Ipv4Addr,
    },
}

/// Parses `ADDR/PREFIX`.
pub(crate) fn parse_cidr(s: &str) -> Result<(IpAddr, u8), CidrError> {
    let (a, p) = s.split_once('/').ok_or(CidrError::NoPrefix)?;
    let addr: IpAddr = a.parse().map_err(|_| CidrError::Address(a.to_string()))?;
    let prefix: u8 = p.parse().map_err(|_| CidrError::Prefix(p.to_string()))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix == 0 || prefix > max {
        return Err(CidrError::PrefixRange { prefix, max });
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(CidrError::NotService(addr));
    }
    if let IpAddr::V6(v6) = addr {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Err(CidrError::Ipv4Mapped { address: addr, v4 });
        }
    }
    Ok((addr, prefix))
}

/// A network interface name as Linux allows it: 1 to 15 letters, digits,
/// `-`, `_` and `.`.
pub(super) fn valid_interface(i: &str) -> bool {
    !i.is_empty()
        && i.len() <= 15
        && i.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A name baton gives things (a pair, a host, an environment, a change):
/// letters, digits, `-` and `_`, starting with a letter or digit.
pub(super) fn valid_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A name HAProxy accepts for a proxy (a backend) or a server: letters,
/// digits, `-`, `_`, `.` and `:`, at least one. Every [`valid_name`] is
/// one, so a pair's host names are valid server names.
pub(super) fn valid_haproxy_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// The placeholders a command or a check is filled with.
const PLACEHOLDERS: [&str; 2] = ["{address}", "{host}"];

/// A `{word}` in a command or a check that is not one of the placeholders
/// baton fills in; shown as written, braces included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{{{0}}}")]
pub(super) struct UnknownPlaceholder(pub(super) String);

/// Placeholders are `{word}`; shell syntax such as `${VAR}` or `{ a; b; }`
/// is left alone. Linear in the text's length: after each `{` only the
/// word characters that follow it are looked at (a search for the next `}`
/// from every `{` was quadratic, seconds for a value of many braces).
pub(super) fn placeholders_ok(s: &str) -> Result<(), UnknownPlaceholder> {
    placeholders_in(s, &PLACEHOLDERS)
}

/// The placeholders a role hook is filled with: the host it runs on, and
/// its peer (the other host of the pair).
pub(super) const ROLE_PLACEHOLDERS: [&str; 4] = ["{address}", "{host}", "{peer}", "{peer_address}"];

/// The placeholders a `command` traffic method's `switch` is filled with.
pub(super) const SWITCH_PLACEHOLDERS: [&str; 4] =
    ["{from}", "{to}", "{from_address}", "{to_address}"];

/// Every placeholder baton fills in somewhere: in a command that is run as
/// written (`query`, `version_command`), one of these is a mistake, left
/// unfilled (other `{word}`s there may be the command's own syntax, like
/// awk's `{print}`).
const ANY_PLACEHOLDER: [&str; 8] = [
    "{address}",
    "{host}",
    "{peer}",
    "{peer_address}",
    "{from}",
    "{to}",
    "{from_address}",
    "{to_address}",
];

/// The first of baton's placeholders in a command run as written.
pub(super) fn unfilled(s: &str) -> Option<&'static str> {
    ANY_PLACEHOLDER.into_iter().find(|p| s.contains(p))
}

/// Like [`placeholders_ok`], for a text whose placeholders are `allowed`.
pub(super) fn placeholders_in(s: &str, allowed: &[&str]) -> Result<(), UnknownPlaceholder> {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (at, _) in s.match_indices('{') {
        if s[..at].ends_with('$') {
            continue;
        }
        let rest = &s[at + 1..];
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        let word = &rest[..len];
        let is_word = rest[len..].starts_with('}')
            && word
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if is_word && !allowed.contains(&format!("{{{word}}}").as_str()) {
            return Err(UnknownPlaceholder(word.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, messages};
    use super::*;
    use crate::config::raw::PairFile;

    #[test]
    fn a_command_run_as_written_holds_none_of_batons_placeholders() {
        assert_eq!(unfilled("cat /srv/app/VERSION"), None);
        assert_eq!(unfilled("awk '{print}' /srv/app/VERSION"), None);
        assert_eq!(unfilled("/usr/local/bin/lb-query {host}"), Some("{host}"));
        assert_eq!(unfilled("q --to {to_address}"), Some("{to_address}"));
        assert!(placeholders_in("lb {from} {to_address}", &SWITCH_PLACEHOLDERS).is_ok());
        assert_eq!(
            placeholders_in("lb {from} {address}", &SWITCH_PLACEHOLDERS),
            Err(UnknownPlaceholder("address".into()))
        );
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("192.0.2.1/24"),
            Ok(("192.0.2.1".parse().unwrap(), 24))
        );
        assert!(parse_cidr("192.0.2.1")
            .unwrap_err()
            .to_string()
            .contains("missing"));
        assert!(parse_cidr("192.0.2.1/33")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse_cidr("nope/24")
            .unwrap_err()
            .to_string()
            .contains("not an IP"));
        assert!(parse_cidr("0.0.0.0/8").is_err());
        assert!(parse_cidr("::ffff:192.0.2.1/120")
            .unwrap_err()
            .to_string()
            .contains("192.0.2.1 written as IPv6"));
        assert!(parse_cidr("2001:db8::1/64").is_ok());
    }

    #[test]
    fn cidr_errors_say_what_is_wrong_in_the_words_shown_to_the_operator() {
        let cases = [
            ("192.0.2.1", "the prefix length (`/24`) is missing"),
            ("192.0.2.1/x", "`x` is not a prefix length"),
            ("192.0.2.1/300", "`300` is not a prefix length"),
            ("192.0.2.1/0", "prefix length 0 is out of range 1-32"),
            ("2001:db8::1/129", "prefix length 129 is out of range 1-128"),
            ("127.0.0.1/8", "127.0.0.1 cannot be a service address"),
            ("224.0.0.1/4", "224.0.0.1 cannot be a service address"),
            ("::/64", ":: cannot be a service address"),
            (
                "::ffff:192.0.2.1/120",
                "::ffff:192.0.2.1 is the IPv4 address 192.0.2.1 written as IPv6; write 192.0.2.1 with an IPv4 prefix length",
            ),
        ];
        for (text, message) in cases {
            let e = parse_cidr(text).expect_err(text);
            assert_eq!(e.to_string(), message, "{text}");
        }
        assert_eq!(
            parse_cidr("2001:db8::1/128"),
            Ok(("2001:db8::1".parse().unwrap(), 128))
        );
    }

    #[test]
    fn zones_contain_names_on_label_boundaries() {
        assert!(in_zone("www.example.com.", "example.com."));
        assert!(in_zone("example.com.", "example.com."));
        assert!(!in_zone("www.badexample.com.", "example.com."));
        assert!(in_zone("WWW.Example.COM.", "example.com."), "any case");
        assert!(!in_zone("example.com.", "www.example.com."));
    }

    #[test]
    fn placeholders() {
        assert!(placeholders_ok("http://{address}/x?{host}").is_ok());
        assert_eq!(
            placeholders_ok("http://{addr}/"),
            Err(UnknownPlaceholder("addr".to_string()))
        );
        assert!(
            placeholders_ok("! { ip a | grep -q x; }").is_ok(),
            "shell braces are not placeholders"
        );
        assert!(placeholders_ok("echo ${HOME} {host}").is_ok());
        assert!(placeholders_ok("{{host}}").is_ok());
        assert_eq!(
            placeholders_ok("{{nope}}").map_err(|e| e.to_string()),
            Err("{nope}".to_string())
        );
        assert_eq!(
            placeholders_ok("{ {x} }").map_err(|e| e.to_string()),
            Err("{x}".to_string())
        );
        assert!(placeholders_ok("{1x} {host-name} {} {host").is_ok());
        // Many braces without a closing one: linear, not quadratic.
        let braces = "{".repeat(400_000);
        assert!(placeholders_ok(&format!("{braces}address}}")).is_ok());
        assert_eq!(
            placeholders_ok(&format!("{braces}nope}}")).map_err(|e| e.to_string()),
            Err("{nope}".to_string())
        );
    }

    #[test]
    fn names_start_with_a_letter_or_digit_and_hold_no_dots() {
        for good in ["web", "db1", "1st", "blue-green", "a_b"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-web", "_web", "web.1", "web 1", "wéb", "a/b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn haproxy_names_and_every_host_name_as_a_server_name() {
        for good in ["web", "be_web.v2:x", "-", "1"] {
            assert!(valid_haproxy_name(good), "{good}");
        }
        for bad in ["", "web/1", "web 1", "wéb", "a,b", "a\nb", "a#b"] {
            assert!(!valid_haproxy_name(bad), "{bad}");
        }
        // A host name is a server's name in the balancer's backend: every
        // character a host name may hold, in every place, is one HAProxy
        // takes (so that method `haproxy` needs no check of its own).
        for c in (0..=0x2ff_u32).filter_map(char::from_u32) {
            for name in [format!("{c}"), format!("a{c}"), format!("{c}a")] {
                assert!(
                    !valid_name(&name) || valid_haproxy_name(&name),
                    "{name:?} is a host name but no HAProxy server name"
                );
            }
        }
    }

    #[test]
    fn interface_names_are_at_most_fifteen_characters() {
        assert!(valid_interface("eth0"));
        assert!(valid_interface("br-lan.100"));
        assert!(valid_interface(&"e".repeat(15)));
        assert!(!valid_interface(&"e".repeat(16)));
        assert!(!valid_interface(""));
        assert!(!valid_interface("eth0:1"));
        assert!(!valid_interface("eth 0"));
    }

    #[test]
    fn a_dns_server_without_a_port_is_on_53_and_port_0_is_none() {
        assert_eq!(
            parse_server("192.0.2.53"),
            Some("192.0.2.53:53".parse().unwrap())
        );
        assert_eq!(
            parse_server("2001:db8::53"),
            Some("[2001:db8::53]:53".parse().unwrap())
        );
        assert_eq!(
            parse_server("192.0.2.53:5353"),
            Some("192.0.2.53:5353".parse().unwrap())
        );
        assert_eq!(parse_server("192.0.2.53:0"), None);
        assert_eq!(parse_server("ns1.example.com"), None);
        assert_eq!(parse_server("192.0.2.53/24"), None);
    }

    #[test]
    fn dns_names_are_absolute_with_valid_labels() {
        let name = |n: &str| {
            let (out, d) = check("canary = true\n", |_: &PairFile, src, sink| {
                dns_name(n, src, &[], sink)
            });
            (out, messages(&d).join("; "))
        };
        assert_eq!(
            name("www.example.com."),
            (Some("www.example.com.".to_string()), String::new())
        );
        assert_eq!(
            name("www.example.com"),
            (
                None,
                "1:1: `www.example.com` is not an absolute DNS name".to_string()
            )
        );
        let long = format!("{}.example.", "a".repeat(64));
        for bad in [
            ".",
            "a..b.",
            "-a.example.",
            "a-.example.",
            "a b.example.",
            long.as_str(),
        ] {
            assert_eq!(
                name(bad),
                (None, format!("1:1: `{bad}` is not a valid DNS name")),
                "{bad}"
            );
        }
        let max = format!("{}.example.", "a".repeat(63));
        assert_eq!(name(&max).0, Some(max.clone()));
    }
}
