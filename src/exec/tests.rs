//! Whole runs through the simulated world: every branch of the README's
//! step table, for each traffic method, and recover from every journal
//! position. The lab suite proves the same against real servers.

use super::sim::Effect;
use super::testkit::{self, Lab};
use crate::core::cycle::{Kind, Outcome};
use crate::core::op::OpKind;

const VIP: &str = "198.51.100.100";

fn vip_lab() -> Lab {
    Lab::new(&testkit::vip(""), "")
}

#[tokio::test]
async fn an_apply_moves_the_vip_to_the_updated_standby_and_updates_the_old_primary() {
    let lab = vip_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(sim.holders(VIP.parse().unwrap()), vec!["green".to_string()]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    let steps: Vec<String> = lab.steps().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "switch",
            "verify_service",
            "drain",
            "apply_old_primary",
            "verify_old_primary"
        ]
    );
    let deploys: Vec<String> = lab
        .ops()
        .into_iter()
        .filter(|(_, _, _, c)| c == "deploy v2")
        .map(|(s, h, _, _)| format!("{s}@{h}"))
        .collect();
    assert_eq!(deploys, ["apply_standby@green", "apply_old_primary@blue"]);
    assert!(lab
        .ops()
        .iter()
        .any(|(s, h, k, _)| s == "apply_standby" && h == "green" && *k == OpKind::Upload));
}

fn count(lab: &Lab, step: &str, host: &str, piece: &str) -> usize {
    lab.ops()
        .iter()
        .filter(|(s, h, _, c)| s == step && h == host && c.contains(piece))
        .count()
}

fn vip_on(sim: &super::sim::Sim) -> Vec<String> {
    sim.holders(VIP.parse().unwrap())
}

#[tokio::test]
async fn a_failed_change_on_the_standby_is_rolled_back_and_traffic_never_moves() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "deploy v2", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(
        lab.steps(),
        [
            ("preflight".into(), true),
            ("apply_standby".into(), false),
            ("rollback_standby".into(), true)
        ]
    );
    assert_eq!(count(&lab, "rollback_standby", "green", "baton-prev"), 1);
    assert!(!lab.ops().iter().any(|(_, _, _, c)| c.contains("addr del")));
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_change_that_breaks_the_standby_fails_its_verification_and_is_rolled_back() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "systemctl reload web", Effect::Breaks, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    let steps: Vec<(String, bool)> = lab.steps();
    assert_eq!(steps[2], ("verify_standby".into(), false));
    assert_eq!(steps.last(), Some(&("rollback_standby".into(), true)));
    assert_eq!(vip_on(&sim), ["blue"]);
}

#[tokio::test]
async fn a_failed_observation_period_switches_back_then_rolls_back() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(None, "repeat every check", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    let names: Vec<String> = lab.steps().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        &names[3..],
        [
            "switch",
            "verify_service",
            "switch_back",
            "rollback_standby"
        ]
    );
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
    assert!(f.message.contains("switched back to blue"), "{}", f.message);
}

#[tokio::test]
async fn a_failure_on_the_old_primary_leaves_the_run_incomplete_with_traffic_on_the_new_one() {
    for (piece, effect) in [
        ("deploy v2", Effect::Fail),
        ("systemctl reload web", Effect::Breaks),
    ] {
        let lab = vip_lab();
        let sim = lab.sim();
        sim.fault(Some("blue"), piece, effect, 1);
        let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
        assert_eq!(f.outcome, Outcome::Incomplete, "{piece}: {}", f.message);
        assert_eq!(vip_on(&sim), ["green"]);
        assert_eq!(lab.primary().as_deref(), Some("green"));
        assert!(f.message.starts_with("INCOMPLETE"), "{}", f.message);
    }
}

#[tokio::test]
async fn an_add_that_fails_puts_the_address_back_on_the_old_primary() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "addr add 198.51.100.100/24", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    let switch = lab
        .records()
        .into_iter()
        .find_map(|r| match r {
            crate::store::journal::Record::End {
                step: crate::core::cycle::Step::Switch,
                detail,
                ..
            } => Some(detail),
            _ => None,
        })
        .unwrap();
    assert!(switch.contains("restored on the old host"), "{switch}");
    assert_eq!(count(&lab, "switch", "blue", "ip addr add"), 1);
}

#[tokio::test]
async fn a_remove_that_fails_leaves_traffic_where_it_was() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(Some("blue"), "addr del 198.51.100.100/24", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(count(&lab, "switch", "green", "addr add"), 0);
}

#[tokio::test]
async fn a_switch_back_that_fails_needs_an_operator() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(None, "repeat every check", Effect::Fail, 1);
    sim.fault(Some("green"), "addr del 198.51.100.100/24", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    assert_eq!(lab.steps().last(), Some(&("switch_back".into(), false)));
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
}

#[tokio::test]
async fn a_rollback_that_fails_needs_an_operator() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "deploy v2", Effect::Fail, 1);
    sim.fault(Some("green"), "baton-prev /etc/site.conf", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    assert_eq!(
        lab.steps().last(),
        Some(&("rollback_standby".into(), false))
    );
    assert_eq!(vip_on(&sim), ["blue"]);
}

#[tokio::test]
async fn a_standby_that_vanishes_mid_change_cannot_be_rolled_back() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "systemctl reload web", Effect::Vanishes, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

/// Issue 13's test (a): swapping the VIP's del and add makes it fail.
#[tokio::test]
async fn the_vip_leaves_the_old_primary_before_the_new_one_takes_it() {
    let lab = vip_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let ops = lab.ops();
    let at = |host: &str, piece: &str| {
        ops.iter()
            .position(|(s, h, _, c)| s == "switch" && h == host && c.contains(piece))
            .unwrap_or_else(|| panic!("no `{piece}` on {host} in {ops:#?}"))
    };
    let del = at("blue", "addr del 198.51.100.100/24");
    let add = at("green", "addr add 198.51.100.100/24");
    assert!(del < add, "the add ran before the del: {ops:#?}");
    // Nothing runs between them: the gap is two commands.
    assert_eq!(add, del + 1);
    // Both ip programs were started before the gap, and the announcement
    // and the confirmation come after it.
    assert!(at("blue", "start sudo -n ip -o -batch -") < del);
    assert!(at("green", "start sudo -n ip -o -batch -") < del);
    assert!(at("green", "arping -U") > add);
    assert_eq!(vip_on(&sim), ["green"]);
}

#[tokio::test]
async fn with_quiesce_the_new_host_is_released_first_and_the_old_one_held_until_the_move() {
    let lab = Lab::new(&testkit::vip("quiesce = \"50ms\"\n"), "");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let switch: Vec<(String, OpKind, String)> = lab
        .ops()
        .into_iter()
        .filter(|(s, _, _, _)| s == "switch")
        .map(|(_, h, k, c)| (h, k, c))
        .filter(|(_, k, _)| *k != OpKind::Run || true)
        .collect();
    let index = |host: &str, piece: &str| {
        switch
            .iter()
            .position(|(h, _, c)| h == host && c.contains(piece))
            .unwrap_or_else(|| panic!("no `{piece}` on {host}: {switch:#?}"))
    };
    let release_new = index("green", "delete element inet baton quiesce4");
    let hold_old = index("blue", "timeout 2050ms");
    let wait = switch
        .iter()
        .position(|(_, k, c)| *k == OpKind::Wait && c.contains("50ms"))
        .unwrap();
    let del = index("blue", "addr del");
    assert!(
        release_new < hold_old && hold_old < wait && wait < del,
        "{switch:#?}"
    );
    assert!(f.message.contains("done"), "{}", f.message);
}

#[tokio::test]
async fn without_batch_each_address_change_is_its_own_privileged_command() {
    let lab = Lab::new(&testkit::vip("batch = false\n"), "");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let ops = lab.ops();
    assert!(
        !ops.iter().any(|(_, _, k, _)| *k == OpKind::Arm),
        "{ops:#?}"
    );
    assert_eq!(
        count(
            &lab,
            "switch",
            "blue",
            "sudo -n ip addr del 198.51.100.100/24 dev eth0"
        ),
        1
    );
    assert_eq!(
        count(
            &lab,
            "switch",
            "green",
            "sudo -n ip addr add 198.51.100.100/24 dev eth0"
        ),
        1
    );
}

#[tokio::test]
async fn a_switchover_swaps_the_roles_without_touching_either_host_otherwise() {
    let lab = vip_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    assert!(!lab
        .ops()
        .iter()
        .any(|(_, _, k, c)| *k == OpKind::Upload || c.contains("deploy")));
    // And back again.
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn preflight_refuses_an_unhealthy_standby_and_changes_nothing() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.lock().hosts[1].healthy = false;
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert_eq!(f.held, crate::run::Held::Not);
    assert!(lab.ops().is_empty());
    assert_eq!(vip_on(&sim), ["blue"]);
}

#[tokio::test]
async fn traffic_moved_behind_batons_back_is_drift_for_an_operator() {
    let lab = vip_lab();
    let sim = lab.sim();
    // First sight records blue as primary.
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok);
    // Someone moves the VIP back to blue by hand: the record says green.
    {
        let mut s = sim.lock();
        s.hosts[1].addrs.clear();
        s.hosts[0].addrs.insert(VIP.parse().unwrap());
    }
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert_eq!(f.held, crate::run::Held::ByDrift);
    assert_eq!(crate::cli::cycle::exit_of(&f), crate::exit::Exit::Operator);
}

#[tokio::test]
async fn an_unreachable_standby_stops_the_run_before_it_starts() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.lock().hosts[1].ssh = false;
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(lab.ops().is_empty());
}
