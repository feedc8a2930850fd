//! Quiescing a virtual IP on the host about to give it up: for a moment
//! before the address leaves it, that host drops the SYNs of new TCP
//! connections to the address (clients retry a second later and reach the
//! new holder) while the connections already open finish. A connection
//! still open when the address leaves is lost: the old host can no longer
//! send its answer, and the client's next packet reaches the new host, which
//! resets it.
//!
//! The hold is an element, with a timeout, of an nftables set that one rule
//! of baton's own table (`inet baton`) drops SYNs to: it lapses by itself,
//! so a controller that dies mid-switch leaves nothing behind for longer
//! than the timeout. Each command is one `nft -f -` transaction.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::model::Vip;
use crate::core::op::NftPurpose;
use crate::exec::{Exec, Failed, World};

/// How long a hold outlives its quiesce time: enough for the address to
/// leave the host (which normally follows within milliseconds), short
/// enough that a hold left by a dead controller soon lapses.
pub const LAPSE: Duration = Duration::from_secs(2);

/// What to do when nft cannot run.
const FIX: &str =
    "install nftables and allow `nft -f -` (sudoers: /usr/sbin/nft -f -), or remove `quiesce`";

fn set_for(address: &IpAddr) -> (&'static str, &'static str, &'static str) {
    match address {
        IpAddr::V4(_) => ("quiesce4", "ipv4_addr", "ip"),
        IpAddr::V6(_) => ("quiesce6", "ipv6_addr", "ip6"),
    }
}

/// The table, both sets and the one chain (idempotent: `add` keeps what
/// exists, and the chain is flushed and given its two rules again).
fn table() -> String {
    let mut s = String::from(
        "add table inet baton\n\
         add set inet baton quiesce4 { type ipv4_addr; flags timeout; }\n\
         add set inet baton quiesce6 { type ipv6_addr; flags timeout; }\n\
         add chain inet baton input { type filter hook input priority -10; policy accept; }\n\
         flush chain inet baton input\n",
    );
    for family in [IpAddr::from([0u8; 4]), IpAddr::from([0u16; 8])] {
        let (set, _, proto) = set_for(&family);
        s.push_str(&format!(
            "add rule inet baton input {proto} daddr @{set} tcp flags & (syn | ack) == syn drop\n"
        ));
    }
    s
}

/// The transaction that starts holding new connections to `address` off
/// for `quiesce` (and then `LAPSE` more, at most). An element left from
/// before is replaced, so the hold always gets its whole time (adding an
/// element that exists would keep the old one's timeout).
pub fn hold_script(address: &IpAddr, quiesce: Duration) -> String {
    let (set, _, _) = set_for(address);
    let ms = (quiesce + LAPSE).as_millis();
    format!(
        "{}add element inet baton {set} {{ {address} timeout 1s }}\n\
         delete element inet baton {set} {{ {address} }}\n\
         add element inet baton {set} {{ {address} timeout {ms}ms }}\n",
        table()
    )
}

/// The transaction that ends any hold on `address` (adding the element
/// first makes deleting it succeed whether or not it was there).
pub fn release_script(address: &IpAddr) -> String {
    let (set, kind, _) = set_for(address);
    format!(
        "add table inet baton\n\
         add set inet baton {set} {{ type {kind}; flags timeout; }}\n\
         add element inet baton {set} {{ {address} timeout 1s }}\n\
         delete element inet baton {set} {{ {address} }}\n"
    )
}

/// Starts the hold on `host`, the host giving the address up.
pub async fn hold<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    v: &Vip,
    quiesce: Duration,
) -> Result<(), Failed> {
    let what = format!("holding new connections to {} off on {host}", v.address);
    nft(
        x,
        host,
        NftPurpose::Hold,
        hold_script(&v.address, quiesce),
        &what,
    )
    .await
}

/// Ends any hold on the address on `host` (the one taking the address, or
/// the old one keeping it after all).
pub async fn release<W: World>(x: &mut Exec<'_, W>, host: &str, v: &Vip) -> Result<(), Failed> {
    let what = format!(
        "ending any hold on new connections to {} on {host}",
        v.address
    );
    nft(
        x,
        host,
        NftPurpose::Release,
        release_script(&v.address),
        &what,
    )
    .await
}

async fn nft<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    purpose: NftPurpose,
    script: String,
    what: &str,
) -> Result<(), Failed> {
    super::nft(x, host, (purpose, script), what, FIX).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_drops_only_new_connections_and_lapses() {
        let s = hold_script(&"198.18.0.100".parse().unwrap(), Duration::from_millis(50));
        assert!(s.ends_with("add element inet baton quiesce4 { 198.18.0.100 timeout 2050ms }\n"));
        // Any element left from before is replaced, not kept.
        assert!(s.contains(
            "add element inet baton quiesce4 { 198.18.0.100 timeout 1s }\n\
             delete element inet baton quiesce4 { 198.18.0.100 }\n\
             add element inet baton quiesce4 { 198.18.0.100 timeout 2050ms }\n"
        ));
        // Only a SYN without ACK: open connections keep flowing.
        assert!(s.contains("ip daddr @quiesce4 tcp flags & (syn | ack) == syn drop"));
        // The chain is rebuilt, never appended to.
        assert!(s.contains("flush chain inet baton input\nadd rule"));
        assert_eq!(s.matches("add rule").count(), 2);
    }

    #[test]
    fn ipv6_addresses_use_their_own_set() {
        let a: IpAddr = "2001:db8::10".parse().unwrap();
        assert!(hold_script(&a, Duration::from_millis(1))
            .ends_with("add element inet baton quiesce6 { 2001:db8::10 timeout 2001ms }\n"));
        let r = release_script(&a);
        assert!(r.contains("add set inet baton quiesce6 { type ipv6_addr; flags timeout; }"));
        assert!(r.ends_with("delete element inet baton quiesce6 { 2001:db8::10 }\n"));
    }
}
