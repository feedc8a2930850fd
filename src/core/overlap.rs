//! Whether a host can take part in an overlap handover (`handover =
//! "overlap"`, `traffic::handover`), as `status` asks before any switch:
//! its own address must be of the VIP's family (the new holder hands the
//! packets of connections it does not know back to the old one's own
//! address), and it must be able to run `nft -f -` (through `sudo -n` when
//! the pair uses sudo). The probe line and the reading of its exit status;
//! a host that cannot is reported, and a switch with it falls back to the
//! classic order.

use std::net::IpAddr;

/// The probe's exit status when nft is not installed.
const NO_NFT: i32 = 3;
/// The probe's exit status when sudo does not allow `nft -f -`.
const NO_SUDO: i32 = 4;

/// The probe, run as the login user: nft installed, and with `sudo` the
/// sudoers rule that the handover's `sudo -n nft -f -` needs (`sudo -n -l`
/// asks sudo, changing nothing).
pub fn probe(sudo: bool) -> String {
    let mut line = format!("command -v nft >/dev/null 2>&1 || exit {NO_NFT}");
    if sudo {
        line.push_str(&format!(
            "; sudo -n -l nft -f - >/dev/null 2>&1 || exit {NO_SUDO}"
        ));
    }
    line
}

/// Why a host of `own` address cannot take part for a VIP of `vip`'s
/// family, before asking it anything.
pub fn family(own: IpAddr, vip: IpAddr) -> Result<(), String> {
    if own.is_ipv4() == vip.is_ipv4() {
        Ok(())
    } else {
        Err(format!(
            "its own address {own} is not of the VIP's family, and the hand-back sends the packets of its connections there"
        ))
    }
}

/// The probe's exit status read (`None`: no status, killed).
pub fn verdict(status: Option<i32>) -> Result<(), String> {
    match status {
        Some(0) => Ok(()),
        Some(NO_NFT) => Err("nft is not installed".to_string()),
        Some(NO_SUDO) => Err("sudo does not allow `nft -f -` without a password".to_string()),
        Some(n) => Err(format!("the probe exited {n}")),
        None => Err("the probe was ended by a signal".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_asks_sudo_only_for_a_sudo_pair() {
        assert_eq!(probe(false), "command -v nft >/dev/null 2>&1 || exit 3");
        assert_eq!(
            probe(true),
            "command -v nft >/dev/null 2>&1 || exit 3; sudo -n -l nft -f - >/dev/null 2>&1 || exit 4"
        );
    }

    #[test]
    fn each_status_says_why() {
        assert_eq!(verdict(Some(0)), Ok(()));
        assert_eq!(verdict(Some(3)), Err("nft is not installed".into()));
        assert!(verdict(Some(4))
            .unwrap_err()
            .contains("sudo does not allow"));
        assert!(verdict(Some(1)).unwrap_err().contains("exited 1"));
        assert!(verdict(None).is_err());
    }

    #[test]
    fn the_family_must_match() {
        let v4: IpAddr = "198.18.0.15".parse().unwrap();
        let v6: IpAddr = "fd00:198:18::160".parse().unwrap();
        assert_eq!(family(v4, "198.18.0.100".parse().unwrap()), Ok(()));
        assert!(family(v4, v6)
            .unwrap_err()
            .contains("198.18.0.15 is not of the VIP's family"));
        assert_eq!(family(v6, "fd00::1".parse().unwrap()), Ok(()));
    }
}
