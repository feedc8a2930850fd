//! Telling a link where an address now lives, and asking it who still
//! answers for one: the command lines, by address family.
//!
//! - IPv4: gratuitous ARP (`arping -U`), and duplicate address detection
//!   (`arping -D`), both from iputils-arping.
//! - IPv6: unsolicited neighbour advertisements (RFC 4861 section 7.2.6:
//!   target the address, override flag set, the interface's link-layer
//!   address, to all nodes) and a neighbour solicitation to the address's
//!   solicited-node group, answered by any host that holds it. No Debian
//!   tool sends the first (`arping` is IPv4 only, `ndisc6` has no sender
//!   for unsolicited advertisements), so a small Python 3 program
//!   (`NDP_SCRIPT`, standard library only, a raw ICMPv6 socket: root) is
//!   sent along on the command line; hosts need `python3`. The probe prints
//!   its findings in `arping -D`'s words, so one reader (`traffic::fence`)
//!   judges both families.
//!
//! The announcement runs in the background on the new holder (repeated
//! once a second: arping takes that long per packet, and the switch must
//! not wait), its report to a file the next step reads (`announce_file`).
//! Pure: building a command line touches nothing.

use std::net::IpAddr;

use crate::core::quote;

/// The Python 3 program behind IPv6 announcements and probes:
/// `python3 -c NDP_SCRIPT announce IFACE ADDRESS COUNT` sends COUNT
/// unsolicited neighbour advertisements for ADDRESS (the first at once,
/// then one a second); `python3 -c NDP_SCRIPT probe IFACE ADDRESS` sends two
/// neighbour solicitations for it, a second apart, and prints every
/// link-layer address that answered. Both need a raw socket (root).
pub const NDP_SCRIPT: &str = r#"import select, socket as S, struct, sys, time
def main(what, ifn, addr, count="1"):
    idx = S.if_nametoindex(ifn)
    with open("/sys/class/net/%s/address" % ifn) as f:
        mac = bytes.fromhex(f.read().strip().replace(":", ""))
    t = S.inet_pton(S.AF_INET6, addr)
    s = S.socket(S.AF_INET6, S.SOCK_RAW, S.IPPROTO_ICMPV6)
    s.setsockopt(S.IPPROTO_IPV6, S.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(S.IPPROTO_IPV6, S.IPV6_UNICAST_HOPS, 255)
    s.setsockopt(S.IPPROTO_IPV6, S.IPV6_MULTICAST_IF, idx)
    s.setsockopt(S.IPPROTO_IPV6, S.IPV6_MULTICAST_LOOP, 0)
    if what == "announce":
        s.bind((addr, 0, 0, 0))
        na = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + t + bytes([2, 1]) + mac
        n = int(count)
        for i in range(n):
            if i:
                time.sleep(1)
            s.sendto(na, ("ff02::1", 0, 0, idx))
            print("sent neighbour advertisement %d of %d: %s is at %s on %s" % (i + 1, n, addr, mac.hex(":"), ifn), flush=True)
        return 0
    group = S.inet_ntop(S.AF_INET6, bytes.fromhex("ff0200000000000000000001ff") + t[13:])
    ns = struct.pack("!BBHI", 135, 0, 0, 0) + t + bytes([1, 1]) + mac
    print("NDP probe for %s on %s to %s" % (addr, ifn, group), flush=True)
    seen = []
    for _ in range(2):
        s.sendto(ns, (group, 0, 0, idx))
        end = time.time() + 1
        while True:
            left = end - time.time()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            d = s.recvfrom(2048)[0]
            if len(d) < 24 or d[0] != 136 or d[8:24] != t:
                continue
            o, who = d[24:], "unnamed"
            while len(o) >= 8 and o[1]:
                if o[0] == 2:
                    who = o[2:8].hex(":").upper()
                o = o[8 * o[1]:]
            if who not in seen:
                seen.append(who)
                print("Unicast reply from %s [%s]" % (addr, who), flush=True)
    print("Sent 2 probes (2 multicast(s))")
    print("Received %d response(s)" % len(seen))
    return 0
try:
    sys.exit(main(*sys.argv[1:]))
except (OSError, ValueError, TypeError) as e:
    print("ndp: %s" % e, file=sys.stderr)
    sys.exit(2)
"#;

/// The line the announcement's wrapper prints when arping has ended.
pub const ARPING_EXIT: &str = "arping exit ";

/// The line the announcement's wrapper prints when the IPv6 sender has
/// ended.
pub const NA_EXIT: &str = "neighbour advertisement exit ";

/// The exit status of an IPv6 announcement that could not start because
/// the host has no `python3`: the address stays where it was added, but
/// unannounced.
pub const NO_PYTHON_EXIT: i32 = 3;

/// The shell test that succeeds when the host can send IPv6 announcements:
/// `python3` is found and executable (bash's `command -v` also names a file
/// in PATH that is not executable). `status` asks it; the announcement's
/// line begins with it.
pub const HAS_ANNOUNCER: &str = "[ -x \"$(command -v python3)\" ]";

/// The file the background announcement of `address` reports to: in a
/// directory of the login user's own under /tmp (made 0700 and checked to
/// be the user's own, never followed through a link), named after the
/// address so that the plan can name it before the run.
pub fn announce_file(address: &IpAddr) -> String {
    format!("/tmp/baton-$(id -u)/arping-{address}.log")
}

/// The shell line that starts announcing `address` on `interface`,
/// `count` packets, in the background; with `sudo`, the sender may run
/// through `sudo -n`.
pub fn announce_line(interface: &str, address: &IpAddr, count: u32, sudo: bool) -> String {
    let path = "PATH=\"$PATH:/usr/sbin:/sbin\"";
    let (run, marker, check) = match address {
        IpAddr::V4(_) => {
            let arping = quote::join(&[
                "arping",
                "-U",
                "-c",
                &count.to_string(),
                "-I",
                interface,
                &address.to_string(),
            ]);
            // arping usually holds the raw-socket capability itself
            // (Debian sets cap_net_raw on it), so it is tried without
            // sudo first: starting sudo would delay the announcement.
            let run = if sudo {
                format!("{arping} || sudo -n {arping}")
            } else {
                arping
            };
            (run, ARPING_EXIT, String::new())
        }
        IpAddr::V6(_) => {
            let python = quote::join(&[
                "python3",
                "-c",
                NDP_SCRIPT,
                "announce",
                interface,
                &address.to_string(),
                &count.to_string(),
            ]);
            // A raw socket needs root: through sudo when configured (no
            // point trying without, as with arping's capability).
            let run = if sudo {
                format!("sudo -n {python}")
            } else {
                python
            };
            // Without python3 nothing is announced: say so at once (a
            // status of its own), before anything is started.
            let check = format!(
                "{HAS_ANNOUNCER} || {{ echo \"no python3 on this host: {address} is not announced (unsolicited neighbour advertisements need python3)\" >&2; exit {NO_PYTHON_EXIT}; }}; "
            );
            (run, NA_EXIT, check)
        }
    };
    // One process before the sender starts (`id`; the directory is made
    // only once): every millisecond before the announcement is one in
    // which neighbours still send to the old holder.
    let dir = "/tmp/baton-$(id -u)";
    // The report stays 30 s after the sender ends, then goes, unless a
    // later announcement has taken the file over meanwhile.
    let inner = format!(
        "echo \"baton $$\"; {run}; echo \"{marker}$?\"; sleep 30; \
         [ \"$(head -n 1 \"$BATON_ARPING_LOG\")\" = \"baton $$\" ] && rm -f \"$BATON_ARPING_LOG\""
    );
    format!(
        "{path}; {check}d={dir}; {{ [ -d \"$d\" ] || mkdir -m 700 \"$d\"; }} && [ -O \"$d\" ] && [ ! -L \"$d\" ] && \
         f=\"$d/arping-{address}.log\" && \
         {{ BATON_ARPING_LOG=\"$f\" nohup sh -c {} </dev/null >\"$f\" 2>&1 & }}",
        quote::quote(&inner)
    )
}

/// The sender's exit status from the wrapper's last line, once it has
/// ended (either family's).
pub fn announce_status(text: &str) -> Option<i32> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(ARPING_EXIT).or(l.strip_prefix(NA_EXIT)))
        .and_then(|c| c.trim().parse().ok())
}

/// Whether a report line is the wrapper's own last line.
pub fn is_status_line(line: &str) -> bool {
    line.starts_with(ARPING_EXIT) || line.starts_with(NA_EXIT)
}

/// What an announcement of `address` is called.
pub fn announcement(address: &IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "gratuitous ARP",
        IpAddr::V6(_) => "unsolicited neighbour advertisement",
    }
}

/// The probe that proves no host answers for `address` on `interface`:
/// duplicate address detection (two ARP probes from the unspecified
/// address, two seconds at most), or for IPv6 two neighbour
/// solicitations, a second apart. Either prints `arping -D`'s words.
pub fn probe_argv(interface: &str, address: &IpAddr) -> Vec<String> {
    let a = address.to_string();
    let words: Vec<&str> = match address {
        IpAddr::V4(_) => vec!["arping", "-D", "-c", "2", "-w", "2", "-I", interface, &a],
        IpAddr::V6(_) => vec!["python3", "-c", NDP_SCRIPT, "probe", interface, &a],
    };
    words.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6() -> IpAddr {
        "fd00:198:18::100".parse().unwrap()
    }

    #[test]
    fn an_ipv6_announcement_is_the_python_sender_started_in_the_background() {
        let line = announce_line("eth0", &v6(), 3, true);
        // python3 missing: its own status, before anything starts.
        assert!(line.starts_with(
            "PATH=\"$PATH:/usr/sbin:/sbin\"; [ -x \"$(command -v python3)\" ] || { echo \"no python3 on this host: fd00:198:18::100 is not announced"
        ), "{line}");
        assert!(
            line.contains("exit 3; }; d=/tmp/baton-$(id -u); "),
            "{line}"
        );
        assert!(line.contains("f=\"$d/arping-fd00:198:18::100.log\""));
        // The sender runs through sudo, with its script quoted as one word.
        assert!(
            line.contains("sudo -n python3 -c '\\''import select"),
            "{line}"
        );
        assert!(
            line.contains(
                "announce eth0 fd00:198:18::100 3; echo \"neighbour advertisement exit $?\""
            ),
            "{line}"
        );
        // Two processes before the sender starts: the python3 test's and `id`.
        let before = line.split("nohup").next().unwrap_or_default();
        assert_eq!(before.matches("$(").count(), 2, "{line}");
        let plain = announce_line("eth0", &v6(), 1, false);
        assert!(!plain.contains("sudo"), "{plain}");
    }

    #[test]
    fn an_ipv4_announcement_is_arping_without_then_with_sudo() {
        let line = announce_line("eth0", &"198.18.0.100".parse().unwrap(), 3, true);
        assert!(line.contains("arping -U -c 3 -I eth0 198.18.0.100 || sudo -n arping"));
        assert!(!line.contains("python3"));
        assert!(line.contains("echo \"arping exit $?\""));
    }

    #[test]
    fn the_senders_status_is_read_from_its_wrappers_last_line() {
        assert_eq!(
            announce_status("baton 12\nsent neighbour advertisement 1 of 3\n"),
            None
        );
        assert_eq!(
            announce_status(
                "baton 12\nsent neighbour advertisement 3 of 3\nneighbour advertisement exit 0\n"
            ),
            Some(0)
        );
        assert_eq!(
            announce_status("sudo: a password is required\nneighbour advertisement exit 1\n"),
            Some(1)
        );
        assert_eq!(
            announce_status("Received 0 response(s)\narping exit 0\n"),
            Some(0)
        );
        assert!(
            is_status_line("arping exit 2") && is_status_line("neighbour advertisement exit 2")
        );
    }

    #[test]
    fn the_probe_follows_the_address_family() {
        assert_eq!(
            probe_argv("eth0", &"198.18.0.100".parse().unwrap()),
            [
                "arping",
                "-D",
                "-c",
                "2",
                "-w",
                "2",
                "-I",
                "eth0",
                "198.18.0.100"
            ]
        );
        let p = probe_argv("eth0", &v6());
        assert_eq!(p[..2], ["python3", "-c"]);
        assert_eq!(p[2], NDP_SCRIPT);
        assert_eq!(p[3..], ["probe", "eth0", "fd00:198:18::100"]);
        assert_eq!(announcement(&v6()), "unsolicited neighbour advertisement");
    }

    #[test]
    fn the_script_is_plain_ascii_without_single_quotes() {
        // (so it reads the same in a journal, quoted once or twice)
        assert!(NDP_SCRIPT.is_ascii());
        assert!(!NDP_SCRIPT.contains('\''));
        assert!(!NDP_SCRIPT.contains('\t'));
    }

    #[test]
    fn an_ipv6_address_is_added_without_duplicate_address_detection() {
        use crate::core::op::{addr_on_eth0 as addr, AddrAction, Invocation};
        assert_eq!(
            addr(AddrAction::Add, "fd00:198:18::100/64", true),
            Invocation::Batch("addr add fd00:198:18::100/64 dev eth0 nodad".into())
        );
        assert_eq!(
            addr(AddrAction::Add, "fd00:198:18::100/64", false),
            Invocation::Privileged {
                argv: [
                    "ip",
                    "addr",
                    "add",
                    "fd00:198:18::100/64",
                    "dev",
                    "eth0",
                    "nodad"
                ]
                .map(String::from)
                .to_vec(),
                input: None
            }
        );
        // Removing needs no flag, and IPv4 has no duplicate address detection to skip.
        assert_eq!(
            addr(AddrAction::Del, "fd00:198:18::100/64", true),
            Invocation::Batch("addr del fd00:198:18::100/64 dev eth0".into())
        );
        assert_eq!(
            addr(AddrAction::Add, "198.18.0.100/24", true),
            Invocation::Batch("addr add 198.18.0.100/24 dev eth0".into())
        );
    }
}
