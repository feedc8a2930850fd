//! Whether a host can take part in an overlap handover (`handover =
//! "overlap"`, `traffic::handover`), as `status` asks before any switch:
//! it must be able to run `nft -f -` (through `sudo -n` when the pair
//! uses sudo), and it must have an own address of the VIP's family (the
//! new holder hands the packets of connections it does not know back to
//! the old one's own address: the one baton reaches it by, or for a
//! dual-stack host reached by the other family, a global one on the VIP's
//! interface). The probe line and the reading of its exit status;
//! a host that cannot is reported, and a switch with it falls back to the
//! classic order.

use std::net::IpAddr;

use crate::core::ifaddr::{own, same_prefix};
use crate::core::quote::quote;

/// What `status` found of one host for a pair whose VIP moves by the
/// overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Whether it can take part (`Err`: why not).
    pub able: Result<(), String>,
    /// Whether the pair file chose the overlap (else it is the default):
    /// a host that cannot take part in a chosen overlap degrades the pair,
    /// in the default one it is a note.
    pub chosen: bool,
}

/// The probe's exit status when nft is not installed.
const NO_NFT: i32 = 3;
/// The probe's exit status when sudo does not allow `nft -f -`.
const NO_SUDO: i32 = 4;
/// The probe's exit status when `ip` cannot show the interface.
const NO_ADDRS: i32 = 5;

/// The probe, run as the login user: nft installed, and with `sudo` the
/// sudoers rule that the handover's `sudo -n nft -f -` needs (`sudo -n -l`
/// asks sudo, changing nothing); then the addresses on the VIP's interface
/// (`ip -o addr show`), from which `target` finds the hand-back's.
pub fn probe(sudo: bool, interface: &str) -> String {
    // (A login over SSH has no sbin directories in its PATH, sudo has them
    // in its secure_path.)
    let mut line = format!(
        "(PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; command -v nft) >/dev/null 2>&1 || exit {NO_NFT}"
    );
    if sudo {
        line.push_str(&format!(
            "; sudo -n -l nft -f - >/dev/null 2>&1 || exit {NO_SUDO}"
        ));
    }
    line.push_str(&format!(
        "; ip -o addr show dev {} || exit {NO_ADDRS}",
        quote(interface)
    ));
    line
}

/// The probe read: its exit status (`None`: killed), and from what it
/// printed, whether the host has a hand-back target (`target`).
pub fn verdict(
    status: Option<i32>,
    shown: &str,
    reached: IpAddr,
    vip: IpAddr,
    prefix: u8,
) -> Result<(), String> {
    match status {
        Some(0) => match target(reached, vip, prefix, Some(shown)) {
            Target::Is(_) => Ok(()),
            Target::Missing(why) => Err(why),
            Target::Ask => Err("its addresses could not be read".to_string()),
        },
        Some(NO_NFT) => Err("nft is not installed".to_string()),
        Some(NO_SUDO) => Err("sudo does not allow `nft -f -` without a password".to_string()),
        Some(NO_ADDRS) => Err("`ip -o addr show` failed on the VIP's interface".to_string()),
        Some(n) => Err(format!("the probe exited {n}")),
        None => Err("the probe was ended by a signal".to_string()),
    }
}

/// Where the new holder hands back the packets of the old holder's
/// connections: an own address of the old holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This address.
    Is(IpAddr),
    /// The host's addresses on the VIP's interface must be asked first.
    Ask,
    /// None fits, and why.
    Missing(String),
}

/// The hand-back's target on a host baton reaches at `reached`, for a VIP
/// `vip`/`prefix`; `shown`: the host's `ip -o addr show dev IF`, when
/// asked. The address baton reaches it by when it is of the VIP's family
/// (and for IPv6 in the VIP's prefix), else its first global address of
/// the family (for IPv6 in the VIP's prefix) on the interface. For IPv6
/// the prefix matters: the old holder's VIP gets a lifetime, and another
/// address of the prefix must keep the prefix's route (the VIP's lifetime
/// is set `noprefixroute`, which would otherwise remove that route).
pub fn target(reached: IpAddr, vip: IpAddr, prefix: u8, shown: Option<&str>) -> Target {
    let within = vip.is_ipv6().then_some(prefix);
    let near = |a: &IpAddr| within.is_none_or(|len| same_prefix(a, &vip, len));
    if reached.is_ipv4() == vip.is_ipv4() && near(&reached) {
        return Target::Is(reached);
    }
    let Some(text) = shown else {
        return Target::Ask;
    };
    match own(text, &vip, within) {
        Some(a) => Target::Is(a),
        None if vip.is_ipv6() => Target::Missing(format!(
            "it has no global IPv6 address in {vip}/{prefix}'s prefix besides the VIP on the VIP's interface, to which the hand-back would send the packets of its connections and which keeps the prefix's route while the VIP's lifetime runs"
        )),
        None => Target::Missing(format!(
            "it is reached at {reached} and has no global IPv4 address on the VIP's interface, to which the hand-back would send the packets of its connections"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const SHOWN: &str = "2: eth0    inet 198.18.0.15/24 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                         2: eth0    inet6 fd00:198:18::160/64 scope global nodad \\       valid_lft forever preferred_lft forever\n\
                         2: eth0    inet6 fd00:198:18::15/64 scope global nodad \\       valid_lft forever preferred_lft forever\n";

    #[test]
    fn the_probe_asks_sudo_only_for_a_sudo_pair_then_shows_the_interface() {
        let nft = "(PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; command -v nft) >/dev/null 2>&1 || exit 3";
        assert_eq!(
            probe(false, "eth0"),
            format!("{nft}; ip -o addr show dev eth0 || exit 5")
        );
        assert_eq!(
            probe(true, "eth 0"),
            format!("{nft}; sudo -n -l nft -f - >/dev/null 2>&1 || exit 4; ip -o addr show dev 'eth 0' || exit 5")
        );
    }

    #[test]
    fn each_status_says_why() {
        let v = |status| verdict(status, SHOWN, a("198.18.0.15"), a("198.18.0.100"), 24);
        assert_eq!(v(Some(0)), Ok(()));
        assert_eq!(v(Some(3)), Err("nft is not installed".into()));
        assert!(v(Some(4)).unwrap_err().contains("sudo does not allow"));
        assert!(v(Some(5)).unwrap_err().contains("`ip -o addr show` failed"));
        assert!(v(Some(1)).unwrap_err().contains("exited 1"));
        assert!(v(None).is_err());
        // A dual-stack host without an IPv6 address in the VIP's prefix.
        let w = verdict(Some(0), SHOWN, a("198.18.0.15"), a("fd00:198:19::160"), 64);
        assert!(w
            .unwrap_err()
            .contains("no global IPv6 address in fd00:198:19::160/64's prefix"));
    }

    #[test]
    fn the_target_is_the_reached_address_or_one_of_the_family_asked_of_the_host() {
        let v4 = a("198.18.0.100");
        let v6 = a("fd00:198:18::160");
        // Same family: the address baton reaches it by, nothing asked.
        assert_eq!(
            target(a("198.18.0.15"), v4, 24, None),
            Target::Is(a("198.18.0.15"))
        );
        assert_eq!(
            target(a("10.0.0.15"), v4, 24, None),
            Target::Is(a("10.0.0.15"))
        );
        assert_eq!(
            target(a("fd00:198:18::15"), v6, 64, None),
            Target::Is(a("fd00:198:18::15"))
        );
        // IPv6 outside the VIP's prefix, or the other family: asked.
        assert_eq!(target(a("fd00:1::15"), v6, 64, None), Target::Ask);
        assert_eq!(target(a("198.18.0.15"), v6, 64, None), Target::Ask);
        assert_eq!(
            target(a("198.18.0.15"), v6, 64, Some(SHOWN)),
            Target::Is(a("fd00:198:18::15"))
        );
        assert_eq!(
            target(a("fd00:198:18::15"), v4, 24, Some(SHOWN)),
            Target::Is(a("198.18.0.15"))
        );
        let bare = "2: eth0    inet6 fd00:198:18::160/64 scope global nodad \\       valid_lft forever preferred_lft forever\n";
        assert!(matches!(
            target(a("198.18.0.15"), v6, 64, Some(bare)),
            Target::Missing(_)
        ));
        assert!(matches!(
            target(a("fd00::15"), v4, 24, Some(bare)),
            Target::Missing(_)
        ));
    }
}
