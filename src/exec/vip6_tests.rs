//! IPv6 through the simulated world: a dual-stack VIP pair (hosts reached
//! over IPv4, the VIP IPv6) whose address is added `nodad` and announced
//! with unsolicited neighbour advertisements, a host without python3 (the
//! address moves unannounced, and the journal says so), the failover's
//! fence by neighbour solicitation, quiesce's IPv6 set, the plan, and a DNS
//! pair whose hosts are IPv6 (its record is AAAA).

use super::sim::Effect;
use super::testkit::{self, Lab};
use crate::core::cycle::{Kind, Outcome};
use crate::core::op::OpKind;
use crate::store::journal::Record;

const VIP6: &str = "2001:db8:100::100";

fn vip6(extra: &str) -> String {
    format!("[traffic]\nmethod = \"vip\"\naddress = \"{VIP6}/64\"\ninterface = \"eth0\"\n{extra}")
}

fn vip6_lab(extra: &str) -> Lab {
    Lab::new(&vip6(extra), "")
}

/// The hosts of a pair reached over IPv6.
const HOSTS6: &str = "environment = \"dev\"\nobserve_period = \"1s\"\n\n[hosts.blue]\naddress = \"2001:db8:100::11\"\n\n[hosts.green]\naddress = \"2001:db8:100::12\"\n\n";

fn on(sim: &super::sim::Sim) -> Vec<String> {
    sim.holders(VIP6.parse().unwrap())
}

fn at(lab: &Lab, step: &str, host: &str, piece: &str) -> usize {
    let ops = lab.ops();
    ops.iter()
        .position(|(s, h, _, c)| s == step && h == host && c.contains(piece))
        .unwrap_or_else(|| panic!("no `{piece}` on {host} in {step}: {ops:#?}"))
}

/// The detail of the last `end` record of `step`.
fn detail(lab: &Lab, step: &str) -> String {
    lab.records()
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::End {
                step: s, detail, ..
            } if s.name() == step => Some(detail.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no end of {step}"))
}

#[tokio::test]
async fn an_ipv6_vip_is_added_nodad_right_after_the_del_and_then_announced() {
    let lab = vip6_lab("");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(on(&sim), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    let del = at(
        &lab,
        "switch",
        "blue",
        &format!("addr del {VIP6}/64 dev eth0"),
    );
    let add = at(
        &lab,
        "switch",
        "green",
        &format!("addr add {VIP6}/64 dev eth0 nodad"),
    );
    assert_eq!(add, del + 1, "nothing between the del and the add");
    // The announcement: the Python sender through sudo, after the add; no arping.
    let na = at(&lab, "switch", "green", "sudo -n python3 -c");
    assert!(na > add);
    assert!(lab.ops()[na].3.contains(&format!("announce eth0 {VIP6} 3")));
    assert!(!lab.ops().iter().any(|(_, _, _, c)| c.contains("arping -")));
    // Its report is read at the end of the next step.
    let report = at(
        &lab,
        "verify_service",
        "green",
        "cat -- \"/tmp/baton-$(id -u)/arping-",
    );
    assert!(report > na);
    assert!(
        detail(&lab, "switch").contains(&format!("{VIP6}/64 moved to green")),
        "{}",
        detail(&lab, "switch")
    );
}

#[tokio::test]
async fn without_python3_the_address_moves_unannounced_and_the_journal_says_so() {
    let lab = vip6_lab("");
    let sim = lab.sim();
    sim.fault(Some("green"), "$(command -v python3)", Effect::Exits(3), 0);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(on(&sim), ["green"]);
    let d = detail(&lab, "switch");
    assert!(d.contains("NOT announced: green has no python3"), "{d}");
    // Nothing was started, so no report is read.
    assert!(!lab
        .ops()
        .iter()
        .any(|(_, _, _, c)| c.starts_with("cat -- ")));
    // A sender that starts but fails is named when its report is read.
    let lab = vip6_lab("");
    let sim = lab.sim();
    sim.fault(Some("green"), "cat -- ", Effect::Fail, 0);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let d = detail(&lab, "verify_service");
    assert!(
        d.contains("the unsolicited neighbour advertisement's report could not be read"),
        "{d}"
    );
}

#[tokio::test]
async fn a_failover_proves_an_ipv6_vip_free_by_neighbour_solicitation() {
    // blue is gone: nobody answers, green takes the address.
    let lab = vip6_lab("");
    let sim = lab.sim();
    {
        let mut s = sim.lock();
        s.hosts[0].ssh = false;
        s.hosts[0].up = false;
    }
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(lab.failed().as_deref(), Some("blue"));
    assert!(at(&lab, "fence", "green", &format!("probe eth0 {VIP6}")) < usize::MAX);
    assert!(detail(&lab, "fence").contains("neighbour solicitation from green"));
    assert!(at(&lab, "switch", "green", "nodad") < usize::MAX);
    let green_holds = sim.lock().hosts[1].addrs.contains(&VIP6.parse().unwrap());
    assert!(green_holds);

    // sshd is dead on blue but it still answers for the address: no split brain.
    let lab = vip6_lab("");
    let sim = lab.sim();
    sim.lock().hosts[0].ssh = false;
    let f = lab
        .run_with(&sim, Some(Kind::Failover), None, |r| r.force = true)
        .await;
    assert_ne!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(on(&sim), ["blue"], "split brain: green took the VIP");
    assert_eq!(lab.steps().last(), Some(&("fence".into(), false)));
    assert!(detail(&lab, "fence").contains("is still answered on the link"));
}

#[tokio::test]
async fn quiesce_holds_an_ipv6_vip_in_the_ipv6_set() {
    let lab = vip6_lab("quiesce = \"50ms\"\n");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let hold = at(
        &lab,
        "switch",
        "blue",
        &format!("add element inet baton quiesce6 {{ {VIP6} timeout 2050ms }}"),
    );
    assert!(hold < at(&lab, "switch", "blue", "addr del"));
    assert_eq!(on(&sim), ["green"]);
}

#[tokio::test]
async fn the_plan_of_an_ipv6_pair_is_what_its_run_performs() {
    let cases = [
        (testkit::HOSTS, vip6(""), "vip6"),
        (
            testkit::HOSTS,
            vip6("quiesce = \"50ms\"\nbatch = false\n"),
            "vip6 quiesce",
        ),
        (HOSTS6, testkit::dns(""), "dns AAAA"),
    ];
    for (hosts, traffic, what) in cases {
        for (kind, change) in [(Kind::Apply, Some("v2")), (Kind::Switchover, None)] {
            let lab = Lab::with_hosts(hosts, &traffic, "");
            let pair = lab.pair();
            let plan = crate::cli::plan::build(
                pair,
                kind,
                &pair.hosts[0],
                &pair.hosts[1],
                change.map(|c| &pair.changes[c]),
                Some(300),
            );
            let sim = lab.sim();
            let f = lab.run(&sim, Some(kind), change).await;
            assert_eq!(f.outcome, Outcome::Ok, "{what} {kind:?}: {}", f.message);
            assert_eq!(plan.ops(), lab.ops(), "{what} {kind:?}");
        }
    }
}

#[tokio::test]
async fn a_dns_pair_of_ipv6_hosts_switches_its_aaaa_record() {
    let lab = Lab::with_hosts(HOSTS6, &testkit::dns(""), "");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    let update = lab
        .ops()
        .into_iter()
        .find(|(s, _, k, _)| s == "switch" && *k == OpKind::Update)
        .expect("an UPDATE");
    assert!(
        update.3.contains(
            "prerequisite www.example.test. AAAA is exactly 2001:db8:100::11; delete www.example.test. AAAA 2001:db8:100::11; add www.example.test. 300 AAAA 2001:db8:100::12"
        ),
        "{}",
        update.3
    );
    // The checks go to each host's bracketed address.
    assert!(
        at(
            &lab,
            "verify_standby",
            "controller",
            "GET http://[2001:db8:100::12]/"
        ) < usize::MAX
    );
    for (_, r) in sim.lock().records.iter() {
        assert_eq!(
            r.0,
            vec!["2001:db8:100::12".parse::<std::net::IpAddr>().unwrap()]
        );
    }
}
