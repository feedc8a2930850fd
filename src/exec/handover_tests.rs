//! The overlap handover of a VIP (`handover = "overlap"`) through the
//! simulated world: the order (the new host takes the address before the
//! old one lets go, never a moment without a holder), the fall back to the
//! classic order when the new host cannot hand connections back, a failed
//! add that leaves the address on the old host for good, a del that fails
//! (the switch back in the same order), and a controller that dies inside
//! the overlap: what the hosts' own timers leave is exactly one holder,
//! and the next run settles on it.

use super::sim::{Effect, Sim};
use super::testkit::{self, Lab};
use crate::core::cycle::{Kind, Outcome, Step};
use crate::store::journal::Record;

const VIP: &str = "198.51.100.100";

fn overlap_lab() -> Lab {
    Lab::new(
        &testkit::vip("handover = \"overlap\"\noverlap = \"1s\"\n"),
        "",
    )
}

fn vip_on(sim: &Sim) -> Vec<String> {
    sim.holders(VIP.parse().unwrap())
}

fn lapsing(sim: &Sim) -> Vec<String> {
    sim.lock()
        .hosts
        .iter()
        .filter(|h| !h.lapsing.is_empty())
        .map(|h| h.name.clone())
        .collect()
}

/// The switch step's operations, as (host, command).
fn switch_ops(lab: &Lab) -> Vec<(String, String)> {
    lab.ops()
        .into_iter()
        .filter(|(s, _, _, _)| s == "switch")
        .map(|(_, h, _, c)| (h, c))
        .collect()
}

fn index(ops: &[(String, String)], host: &str, piece: &str) -> usize {
    ops.iter()
        .position(|(h, c)| h == host && c.contains(piece))
        .unwrap_or_else(|| panic!("no `{piece}` on {host}: {ops:#?}"))
}

fn detail(lab: &Lab, step: Step) -> String {
    lab.records()
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::End {
                step: s, detail, ..
            } if *s == step => Some(detail.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no end of {step:?}"))
}

#[tokio::test]
async fn the_new_host_takes_the_vip_before_the_old_one_lets_go() {
    let lab = overlap_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    assert!(
        lapsing(&sim).is_empty(),
        "no address is left with a lifetime"
    );
    assert!(sim.lock().hosts.iter().all(|h| !h.handback));
    let ops = switch_ops(&lab);
    let hand_back = index(
        &ops,
        "green",
        "add element ip baton handback { 198.51.100.100 timeout 3000ms : 198.51.100.11 }",
    );
    let lifetime = index(&ops, "blue", "valid_lft 3 preferred_lft 3");
    let add = index(
        &ops,
        "green",
        "addr replace 198.51.100.100/24 dev eth0 valid_lft forever preferred_lft forever",
    );
    let announce = index(&ops, "green", "arping -U");
    let wait = index(&ops, "controller", "wait 1s (the overlap)");
    // (the hand-back's own transaction deletes an element left from
    // before, too: the end is the last such line)
    let end = ops
        .iter()
        .rposition(|(h, c)| h == "green" && c.contains("delete element ip baton handback"))
        .unwrap();
    let close = index(&ops, "blue", "sudo -n ss -K -t -n src 198.51.100.100");
    let del = index(&ops, "blue", "ip addr del 198.51.100.100/24 dev eth0");
    // Hand-back ready and the old address bounded before the new host
    // has it; the old one lets go only after the overlap.
    assert!(hand_back < lifetime && lifetime < add, "{ops:#?}");
    assert!(add < announce && announce < wait && wait < end, "{ops:#?}");
    // The old host's own connections end (each client reset at once) while
    // it still holds the address, then it lets go.
    assert!(end < close && close < del, "{ops:#?}");
    // The lifetime leaves the address in place: nothing to it is lost.
    assert!(
        ops[lifetime]
            .1
            .contains("'addr change 198.51.100.100/24 dev eth0 valid_lft 3 preferred_lft 3'"),
        "{}",
        ops[lifetime].1
    );
    assert!(!ops[lifetime].1.contains("addr del"), "{}", ops[lifetime].1);
    // The new host's add runs through the ip program armed before it.
    assert!(index(&ops, "green", "start sudo -n ip -o -batch -") < add);
    let d = detail(&lab, Step::Switch);
    assert!(d.contains("taken by green in"), "{d}");
    assert!(
        d.contains("blue kept it 1s more for its open connections (handover overlap)"),
        "{d}"
    );
}

#[tokio::test]
async fn without_nftables_on_the_new_host_the_switch_falls_back_to_the_classic_order_and_says_so() {
    let lab = overlap_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "nft -f -", Effect::Exits(127), 0);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    let ops = switch_ops(&lab);
    // Nothing of the overlap ran on blue: the classic del, then the add.
    assert!(
        !ops.iter().any(|(_, c)| c.contains("valid_lft 3")),
        "{ops:#?}"
    );
    let del = index(&ops, "blue", "addr del 198.51.100.100/24");
    let add = index(&ops, "green", "addr add 198.51.100.100/24");
    assert_eq!(add, del + 1, "{ops:#?}");
    let d = detail(&lab, Step::Switch);
    assert!(d.contains("moved to green in"), "{d}");
    assert!(d.contains("(handover classic, not overlap: "), "{d}");
    assert!(d.contains("set `handover = \"classic\"`"), "{d}");
}

#[tokio::test]
async fn an_old_host_that_cannot_give_the_address_a_lifetime_keeps_it_and_the_switch_falls_back() {
    let lab = overlap_lab();
    let sim = lab.sim();
    sim.fault(Some("blue"), "valid_lft 3", Effect::Exits(1), 0);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    assert!(lapsing(&sim).is_empty());
    let ops = switch_ops(&lab);
    // The hand-back already started on green is ended before the classic
    // order runs.
    let end = index(&ops, "green", "delete element ip baton handback");
    let del = index(&ops, "blue", "addr del 198.51.100.100/24 dev eth0");
    assert!(end < del, "{ops:#?}");
    assert!(detail(&lab, Step::Switch).contains("handover classic, not overlap"));
}

#[tokio::test]
async fn an_old_host_whose_sudo_refuses_ip_batch_falls_back_without_trying_to_keep_it() {
    let lab = overlap_lab();
    let sim = lab.sim();
    sim.fault(Some("blue"), "ip -o -batch -", Effect::SudoRefuses, 0);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    let ops = switch_ops(&lab);
    // Nothing ran, so nothing is taken back: no `valid_lft forever` on blue.
    assert!(
        !ops.iter()
            .any(|(h, c)| h == "blue" && c.contains("valid_lft forever")),
        "{ops:#?}"
    );
    let d = detail(&lab, Step::Switch);
    assert!(
        d.contains("handover classic, not overlap: blue cannot give 198.51.100.100/24 a lifetime:")
            && d.contains("needs a password"),
        "{d}"
    );
}

#[tokio::test]
async fn a_failed_add_leaves_the_vip_on_the_old_host_for_good() {
    let lab = overlap_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "addr replace", Effect::Exits(2), 0);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    // Its lifetime was taken back, and the hand-back ended.
    assert!(lapsing(&sim).is_empty(), "blue's address would lapse");
    assert!(sim.lock().hosts.iter().all(|h| !h.handback));
    sim.lapse();
    assert_eq!(vip_on(&sim), ["blue"]);
}

#[tokio::test]
async fn an_old_host_that_does_not_let_go_loses_the_address_when_its_lifetime_ends() {
    let lab = overlap_lab();
    let sim = lab.sim();
    sim.fault(Some("blue"), "ip addr del", Effect::Exits(2), 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    let ops = switch_ops(&lab);
    let del = index(&ops, "blue", "ip addr del 198.51.100.100/24");
    let wait = index(
        &ops,
        "controller",
        "wait 3s (the old holder's address lifetime)",
    );
    assert!(del < wait, "{ops:#?}");
    let d = detail(&lab, Step::Switch);
    assert!(d.contains("(waited 3 s for its lifetime to end)"), "{d}");
}

/// A controller that dies inside the switch leaves what the hosts' own
/// timers settle: never two holders once they ran out, and the next run
/// settles on the one that holds it.
#[tokio::test]
async fn a_controller_dying_inside_the_overlap_leaves_exactly_one_holder() {
    let before = [Step::Preflight, Step::VerifyStandby];
    // Died after the lifetime, before the add: blue's address would lapse;
    // the next run keeps it there for good.
    let lab = overlap_lab();
    let sim = lab.sim();
    {
        let mut s = sim.lock();
        let blue = s.hosts.iter_mut().find(|h| h.name == "blue").unwrap();
        blue.lapsing.insert(VIP.parse().unwrap());
        let green = s.hosts.iter_mut().find(|h| h.name == "green").unwrap();
        green.handback = true;
    }
    let died = testkit::Died {
        kind: Kind::Switchover,
        ..testkit::Died::apply()
    };
    lab.interrupted(&died, &before, Some(Step::Switch));
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    assert!(lapsing(&sim).is_empty(), "blue keeps it for good");
    sim.lapse();
    assert_eq!(vip_on(&sim), ["blue"]);

    // Died inside the overlap, both holding: once blue's lifetime ran out
    // only green has it, and the next run goes on from there.
    let lab = overlap_lab();
    let sim = lab.sim();
    {
        let mut s = sim.lock();
        for h in s.hosts.iter_mut() {
            h.addrs.insert(VIP.parse().unwrap());
            if h.name == "blue" {
                h.lapsing.insert(VIP.parse().unwrap());
            } else {
                h.handback = true;
            }
        }
    }
    sim.lapse();
    assert_eq!(vip_on(&sim), ["green"]);
    lab.interrupted(&died, &before, Some(Step::Switch));
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
}

/// A pair with an IPv6 VIP whose hosts baton reaches over IPv4.
fn dual_stack_lab() -> Lab {
    Lab::new(
        "[traffic]\nmethod = \"vip\"\naddress = \"2001:db8:100::100/64\"\ninterface = \"eth0\"\n",
        "",
    )
}

#[tokio::test]
async fn an_ipv6_vip_on_hosts_reached_over_ipv4_without_an_ipv6_address_falls_back_to_the_classic_order(
) {
    let lab = dual_stack_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(sim.holders("2001:db8:100::100".parse().unwrap()), ["green"]);
    let d = detail(&lab, Step::Switch);
    assert!(d.contains("handover classic, not overlap: blue: it has no global IPv6 address in 2001:db8:100::100/64's prefix besides the VIP"), "{d}");
}

#[tokio::test]
async fn an_ipv6_vip_on_dual_stack_hosts_reached_over_ipv4_is_handed_back_to_the_old_hosts_ipv6_address(
) {
    let lab = dual_stack_lab();
    let sim = lab.sim();
    for (i, own) in ["2001:db8:100::11", "2001:db8:100::12"].iter().enumerate() {
        sim.lock().hosts[i].addrs.insert(own.parse().unwrap());
    }
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(sim.holders("2001:db8:100::100".parse().unwrap()), ["green"]);
    let d = detail(&lab, Step::Switch);
    assert!(!d.contains("classic"), "{d}");
    let ops = switch_ops(&lab);
    // Blue's addresses are asked first, and its IPv6 one is the target.
    let asked = index(&ops, "blue", "ip -o addr show dev eth0");
    let hand_back = index(
        &ops,
        "green",
        "add element ip6 baton handback { 2001:db8:100::100 timeout 3000ms : 2001:db8:100::11 }",
    );
    assert!(asked < hand_back, "{ops:?}");
}

#[tokio::test]
async fn the_plan_of_an_overlap_pair_lists_the_overlap() {
    let lab = overlap_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let ops = switch_ops(&lab);
    // The wait inside the switch is the overlap, printed with its reason.
    assert!(ops
        .iter()
        .any(|(h, c)| h == "controller" && c == "wait 1s (the overlap): the new holder takes new connections, the old one finishes its own"));
}

#[tokio::test]
async fn an_ipv6_vip_on_ipv6_hosts_overlaps_in_its_own_table_and_is_added_nodad() {
    let hosts = "environment = \"dev\"\nobserve_period = \"1s\"\n\n[hosts.blue]\naddress = \"2001:db8:100::11\"\n\n[hosts.green]\naddress = \"2001:db8:100::12\"\n\n";
    let lab = Lab::with_hosts(
        hosts,
        "[traffic]\nmethod = \"vip\"\naddress = \"2001:db8:100::100/64\"\ninterface = \"eth0\"\nhandover = \"overlap\"\n",
        "",
    );
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(sim.holders("2001:db8:100::100".parse().unwrap()), ["green"]);
    let ops = switch_ops(&lab);
    let hand_back = index(
        &ops,
        "green",
        "add element ip6 baton handback { 2001:db8:100::100 timeout 3000ms : 2001:db8:100::11 }",
    );
    let lifetime = index(&ops, "blue", "valid_lft 3 preferred_lft 3 nodad");
    let add = index(
        &ops,
        "green",
        "addr replace 2001:db8:100::100/64 dev eth0 valid_lft forever preferred_lft forever nodad",
    );
    let close = index(&ops, "blue", "ss -K -t -n src '[2001:db8:100::100]'");
    let del = index(&ops, "blue", "ip addr del 2001:db8:100::100/64 dev eth0");
    assert!(
        hand_back < lifetime && lifetime < add && add < close && close < del,
        "{ops:#?}"
    );
    assert!(detail(&lab, Step::Switch).contains("(handover overlap)"));
}
