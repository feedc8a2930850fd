//! The overlap handover of a virtual IP (`handover = "overlap"`): the new
//! host takes the address before the old one lets go of it, so that no
//! moment exists in which no host answers a SYN, and the connections the
//! old host already has get the `overlap` time to finish.
//!
//! The order (`traffic::vip::switch` performs it):
//!
//! 1. on the new host, the **hand-back**: an nftables rule in baton's own
//!    table (`ip baton`, or `ip6 baton`) sends every TCP packet to the
//!    address that is no SYN and belongs to no connection the new host
//!    knows (conntrack: `ct state new,invalid`) on to the old host's own
//!    address, unchanged (`dup to ... ; drop`: the packet keeps the VIP as
//!    its destination and reaches the old host's interface), so that a
//!    client whose ARP cache already points at the new host keeps its
//!    connection to the old one. The target is an element, with a
//!    timeout, of a map keyed by the address: it lapses by itself;
//! 2. on the old host, the address gets a **lifetime** (`ip addr change
//!    ... valid_lft`): `overlap` plus `LAPSE`, rounded up to whole seconds.
//!    The kernel removes it when the lifetime ends, so a controller that
//!    dies from here on never leaves two holders for longer than that: once
//!    the new host has the address, exactly that one (and had the
//!    controller died before the add, neither, until the next run settles
//!    it, as after a classic switch that died between its del and add).
//!    The address stays in place meanwhile (removing and
//!    adding it again, which would make the line a compare, drops what
//!    arrives in between: the benchmark lost SYNs there); the compare is
//!    the holder check just before the switch, and should the address have
//!    left the old host since, the change gives it back only for those
//!    seconds;
//! 3. the new host adds the address (held for good: `replace ...
//!    valid_lft forever`) and announces it (gratuitous ARP, or unsolicited
//!    neighbour advertisements); from here on new connections reach it;
//! 4. the `overlap` wait: connections open on the old host finish there
//!    (a client that has not yet heard the announcement even opens new
//!    ones there, which is no loss either);
//! 5. the hand-back ends, the old host ends its own connections to the
//!    address (`ss -K`: each client gets a reset at once and opens a new
//!    connection, to the new host), then removes the address. Without that
//!    end, such a connection lingers on the old host (its answers can no
//!    longer leave) until that host takes the address again, when a client
//!    that reuses the port (or whose packets the next hand-back would send
//!    there) meets a stale socket: a challenge ACK and a hang instead of a
//!    connection;
//! 6. both hosts are asked: exactly the new one holds the address.
//!
//! When a host lacks what the overlap needs (nftables with conntrack and
//! `dup` on the new host, `ip -o -batch -` on the old one, the old host's
//! own address of the VIP's family) the switch falls back to the classic
//! order, and its detail in the journal says why.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::model::Vip;
use crate::core::op::NftPurpose;
use crate::exec::{Exec, Failed, World};

/// How long the hand-back and the old host's address outlive the
/// overlap: enough for the old host to let go (which normally follows
/// within milliseconds), short enough that what a dead controller left
/// soon lapses.
pub const LAPSE: Duration = Duration::from_secs(2);

/// What to do when nft cannot run the hand-back.
const FIX: &str = "install nftables (with conntrack and nf_dup) and allow `nft -f -` (sudoers: /usr/sbin/nft -f -), or set `handover = \"classic\"`";

/// The nft family, the map's key type and the address expression of the
/// VIP's family.
fn family(address: &IpAddr) -> (&'static str, &'static str, &'static str) {
    match address {
        IpAddr::V4(_) => ("ip", "ipv4_addr", "ip daddr"),
        IpAddr::V6(_) => ("ip6", "ipv6_addr", "ip6 daddr"),
    }
}

/// The lifetime, in whole seconds, of the old host's address: the overlap
/// and `LAPSE`, rounded up.
pub fn lifetime(overlap: Duration) -> u64 {
    let d = overlap + LAPSE;
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The table, its map and its one chain (idempotent: `add` keeps what
/// exists, and the chain is flushed and given its rule again).
fn table(address: &IpAddr) -> String {
    let (fam, kind, daddr) = family(address);
    format!(
        "add table {fam} baton\n\
         add map {fam} baton handback {{ type {kind} : {kind}; flags timeout; }}\n\
         add chain {fam} baton handback {{ type filter hook prerouting priority -150; policy accept; }}\n\
         flush chain {fam} baton handback\n\
         add rule {fam} baton handback tcp flags & syn == 0 ct state new,invalid dup to {daddr} map @handback drop\n"
    )
}

/// The transaction that starts handing the packets of connections to
/// `address` that this host does not own back to `old` (the old holder's
/// own address) for `overlap` (and then `LAPSE` more, at most). An element
/// left from before is replaced, so the hand-back gets its whole time and
/// the right target.
pub fn hand_back_script(address: &IpAddr, old: &IpAddr, overlap: Duration) -> String {
    let (fam, _, _) = family(address);
    let ms = (overlap + LAPSE).as_millis();
    format!(
        "{}add element {fam} baton handback {{ {address} timeout 1s : {old} }}\n\
         delete element {fam} baton handback {{ {address} }}\n\
         add element {fam} baton handback {{ {address} timeout {ms}ms : {old} }}\n",
        table(address)
    )
}

/// The transaction that ends any hand-back of `address` to `old` (adding
/// the element first makes deleting it succeed whether or not it was
/// there; nft refuses to add a key that exists with another target, and a
/// host's target for one address is always its peer).
pub fn end_script(address: &IpAddr, old: &IpAddr) -> String {
    let (fam, kind, _) = family(address);
    format!(
        "add table {fam} baton\n\
         add map {fam} baton handback {{ type {kind} : {kind}; flags timeout; }}\n\
         add element {fam} baton handback {{ {address} timeout 1s : {old} }}\n\
         delete element {fam} baton handback {{ {address} }}\n"
    )
}

/// Starts the hand-back on `host`, the host taking the address, towards
/// `old`, the old holder's own address.
pub async fn hand_back<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    v: &Vip,
    old: &IpAddr,
    overlap: Duration,
) -> Result<(), Failed> {
    let what = format!(
        "handing connections to {} that {host} does not own back to {old}",
        v.address
    );
    nft(
        x,
        host,
        NftPurpose::HandBack,
        hand_back_script(&v.address, old, overlap),
        &what,
    )
    .await
}

/// Ends any hand-back of the address to `old` on `host`.
pub async fn end<W: World>(
    x: &mut Exec<'_, W>,
    host: &str,
    v: &Vip,
    old: &IpAddr,
) -> Result<(), Failed> {
    let what = format!("ending the hand-back of {} on {host}", v.address);
    nft(
        x,
        host,
        NftPurpose::EndHandBack,
        end_script(&v.address, old),
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
    fn the_hand_back_takes_only_packets_of_connections_the_new_host_does_not_own() {
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        let old: IpAddr = "198.18.0.11".parse().unwrap();
        let s = hand_back_script(&vip, &old, Duration::from_millis(1500));
        // Never a SYN (new connections stay on the new host), never a
        // packet of a connection conntrack knows; sent on unchanged.
        assert!(s.contains(
            "add rule ip baton handback tcp flags & syn == 0 ct state new,invalid dup to ip daddr map @handback drop\n"
        ));
        // Before conntrack's own helpers and any NAT, after conntrack.
        assert!(s.contains("hook prerouting priority -150;"));
        // The chain is rebuilt, never appended to.
        assert!(s.contains("flush chain ip baton handback\nadd rule"));
        assert_eq!(s.matches("add rule").count(), 1);
        // The element lapses by itself, and replaces one left from before.
        assert!(s.ends_with(
            "add element ip baton handback { 198.18.0.100 timeout 1s : 198.18.0.11 }\n\
             delete element ip baton handback { 198.18.0.100 }\n\
             add element ip baton handback { 198.18.0.100 timeout 3500ms : 198.18.0.11 }\n"
        ));
    }

    #[test]
    fn ipv6_has_its_own_table_and_ending_works_whether_or_not_it_was_there() {
        let vip: IpAddr = "fd00:198:18::160".parse().unwrap();
        let old: IpAddr = "fd00:198:18::15".parse().unwrap();
        let s = hand_back_script(&vip, &old, Duration::from_secs(1));
        assert!(
            s.contains("add map ip6 baton handback { type ipv6_addr : ipv6_addr; flags timeout; }")
        );
        assert!(s.contains("dup to ip6 daddr map @handback drop"));
        let e = end_script(&vip, &old);
        assert!(e.ends_with(
            "add element ip6 baton handback { fd00:198:18::160 timeout 1s : fd00:198:18::15 }\n\
             delete element ip6 baton handback { fd00:198:18::160 }\n"
        ));
        assert!(!e.contains("add rule"), "ending touches no rule: {e}");
    }

    #[test]
    fn the_old_hosts_address_outlives_the_overlap_by_the_lapse_in_whole_seconds() {
        assert_eq!(lifetime(Duration::from_secs(1)), 3);
        assert_eq!(lifetime(Duration::from_millis(100)), 3);
        assert_eq!(lifetime(Duration::from_millis(1001)), 4);
    }
}
