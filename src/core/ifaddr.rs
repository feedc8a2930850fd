//! What `ip -o addr show dev IF` says about one address: absent, held and
//! usable, held but still `tentative` (IPv6 duplicate address detection
//! running: the host cannot use it yet), or held but `dadfailed` (another
//! host answered for it when it was added: the host will never use it
//! until it is removed and added again). Both `inet` and `inet6` lines.
//! Pure.

use std::net::IpAddr;

/// The state of one address on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Not on the interface.
    No,
    /// On the interface and usable.
    Yes,
    /// On the interface, duplicate address detection still running.
    Tentative,
    /// On the interface, duplicate address detection failed.
    DadFailed,
}

impl Held {
    /// Whether the address is configured on the interface at all (a
    /// tentative one becomes usable by itself; a failed one still has to
    /// be removed).
    pub fn configured(self) -> bool {
        self != Held::No
    }
}

/// The state of `address` in `ip -o addr show` output.
pub fn held(text: &str, address: &IpAddr) -> Held {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w != "inet" && w != "inet6" {
                continue;
            }
            let Some(a) = words
                .next()
                .and_then(|cidr| cidr.split('/').next())
                .and_then(|a| a.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if a != *address {
                continue;
            }
            // The flags follow on the same line (`ip -o` joins the
            // continuation with a backslash), before `valid_lft`.
            let flags: Vec<&str> = words.by_ref().take_while(|w| *w != "valid_lft").collect();
            return if flags.contains(&"dadfailed") {
                Held::DadFailed
            } else if flags.contains(&"tentative") {
                Held::Tentative
            } else {
                Held::Yes
            };
        }
    }
    Held::No
}

/// The host's own usable address of `vip`'s family in `ip -o addr show`
/// output: the first of scope global that is not `vip` itself (nor
/// tentative, nor failed), and with `within` Some(len), in `vip`'s prefix
/// of that length. The overlap handover hands packets back to it.
pub fn own(text: &str, vip: &IpAddr, within: Option<u8>) -> Option<IpAddr> {
    let family = if vip.is_ipv4() { "inet" } else { "inet6" };
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == family)?;
        let a: IpAddr = words.get(at + 1)?.split('/').next()?.parse().ok()?;
        let flags: Vec<&str> = words[at + 2..]
            .iter()
            .copied()
            .take_while(|w| *w != "valid_lft")
            .collect();
        let global = flags.windows(2).any(|p| p == ["scope", "global"]);
        let usable = !flags.contains(&"tentative") && !flags.contains(&"dadfailed");
        let near = within.is_none_or(|len| same_prefix(&a, vip, len));
        (a != *vip && a.is_ipv4() == vip.is_ipv4() && global && usable && near).then_some(a)
    })
}

/// Whether `a` and `b` share their first `len` bits (false across
/// families).
pub fn same_prefix(a: &IpAddr, b: &IpAddr, len: u8) -> bool {
    let (x, y, bits) = match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => (u128::from(x.to_bits()), u128::from(y.to_bits()), 32),
        (IpAddr::V6(x), IpAddr::V6(y)) => (x.to_bits(), y.to_bits(), 128),
        _ => return false,
    };
    let len = u32::from(len).min(bits);
    len == 0 || (x ^ y) >> (bits - len) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_own_address_of_a_family_is_global_usable_and_not_the_vip() {
        let text = "2: eth0    inet 198.18.0.15/24 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd00:198:18::160/64 scope global nodad \\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd00:198:18::99/64 scope global tentative \\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd00:198:18::15/64 scope global nodad \\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fe80::28ac:deff:fe59:5658/64 scope link \\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            own(text, &a("fd00:198:18::160"), None),
            Some(a("fd00:198:18::15"))
        );
        assert_eq!(
            own(text, &a("fd00:198:18::160"), Some(64)),
            Some(a("fd00:198:18::15"))
        );
        assert_eq!(own(text, &a("fd00:198:19::160"), Some(64)), None);
        assert_eq!(own(text, &a("198.18.0.100"), None), Some(a("198.18.0.15")));
        // Only the VIP and a link-local address: none.
        let bare = "2: eth0    inet6 fd00:198:18::160/64 scope global nodad \\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n";
        assert_eq!(own(bare, &a("fd00:198:18::160"), None), None);
        assert_eq!(own(bare, &a("198.18.0.100"), None), None);
    }

    #[test]
    fn prefixes_compare_by_their_leading_bits() {
        assert!(same_prefix(&a("198.18.0.15"), &a("198.18.0.100"), 24));
        assert!(!same_prefix(&a("198.18.1.15"), &a("198.18.0.100"), 24));
        assert!(same_prefix(&a("198.18.1.15"), &a("198.18.0.100"), 16));
        assert!(same_prefix(
            &a("fd00:198:18::15"),
            &a("fd00:198:18::160"),
            64
        ));
        assert!(!same_prefix(
            &a("fd00:198:19::15"),
            &a("fd00:198:18::160"),
            64
        ));
        assert!(same_prefix(&a("fd00::1"), &a("fe00::1"), 0));
        assert!(!same_prefix(&a("fd00::1"), &a("198.18.0.1"), 0));
        assert!(same_prefix(&a("fd00::1"), &a("fd00::1"), 200));
    }

    #[test]
    fn inet_and_inet6_lines_are_read_with_their_flags() {
        let text = "2: eth0    inet 198.18.0.11/24 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet 198.18.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd00:198:18::100/64 scope global nodad \\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd00:198:18::101/64 scope global tentative \\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fd00:198:18::102/64 scope global dadfailed tentative \\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n";
        assert_eq!(held(text, &a("198.18.0.100")), Held::Yes);
        assert_eq!(held(text, &a("fd00:198:18::100")), Held::Yes);
        assert_eq!(held(text, &a("fd00:198:18::101")), Held::Tentative);
        assert_eq!(held(text, &a("fd00:198:18::102")), Held::DadFailed);
        assert_eq!(held(text, &a("fd00:198:18::103")), Held::No);
        assert_eq!(held(text, &a("198.18.0.1")), Held::No);
        // The same address written another way is the same address.
        assert_eq!(held(text, &a("fd00:198:18:0:0:0:0:100")), Held::Yes);
        assert!(Held::DadFailed.configured() && Held::Tentative.configured());
        assert!(!Held::No.configured());
    }

    #[test]
    fn a_flag_word_after_valid_lft_or_of_another_address_counts_not() {
        let text = "2: eth0    inet6 fd00::1/64 scope global \\       valid_lft forever preferred_lft forever tentative\n\
                    2: eth0    inet6 fd00::2/64 scope global dadfailed tentative \\       valid_lft forever\n";
        assert_eq!(held(text, &a("fd00::1")), Held::Yes);
        assert_eq!(held(text, &a("fd00::2")), Held::DadFailed);
        assert_eq!(held("", &a("fd00::1")), Held::No);
        assert_eq!(
            held("2: eth0 inet6 garbage/64 tentative", &a("fd00::1")),
            Held::No
        );
    }
}
