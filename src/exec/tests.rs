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

/// A VIP pair that moves in the classic order (remove, then add): the
/// tests of that order's steps and of faults injected into them.
fn classic_lab() -> Lab {
    Lab::new(&testkit::vip(testkit::CLASSIC), "")
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
    // The upload is put back first (only while it is still the uploaded
    // file), then the change's own rollback steps run.
    let undo: Vec<String> = lab
        .ops()
        .into_iter()
        .filter(|(s, h, _, _)| s == "rollback_standby" && h == "green")
        .map(|(_, _, _, c)| c)
        .collect();
    assert_eq!(undo.len(), 3, "{undo:?}");
    assert!(
        undo[0].starts_with("f=/etc/site.conf;") && undo[0].contains("site.conf.baton-prev.owner"),
        "{undo:?}"
    );
    assert!(undo[1].contains("cp /etc/site.conf.baton-prev"), "{undo:?}");
    assert!(!lab.ops().iter().any(|(_, _, _, c)| c.contains("addr del")));
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_change_edited_during_its_run_never_reaches_the_old_primary_under_its_old_hash() {
    let lab = vip_lab();
    let sim = lab.sim();
    // While green is updated, someone edits the change's upload on the
    // controller: the run's start record holds the hash of the old content.
    let upload = lab.dir().join("pairs/site.conf");
    sim.fault(
        Some("green"),
        "systemctl reload web",
        Effect::Edits(upload, b"v3, edited by hand\n".to_vec()),
        1,
    );
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Incomplete, "{}", f.message);
    let (detail, ok) = lab.ended(crate::core::cycle::Step::ApplyOldPrimary);
    assert!(!ok);
    assert!(
        detail.contains("change v2 was edited during the run")
            && detail.contains("nothing of it was done on blue"),
        "{detail}"
    );
    // blue got nothing: no upload, no step; traffic is on green, verified
    assert!(sim.lock().hosts[0].files.is_empty(), "blue got the upload");
    assert!(!lab
        .ops()
        .iter()
        .any(|(s, h, _, _)| s == "apply_old_primary" && h == "blue"));
    assert_eq!(vip_on(&sim), ["green"]);
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
    let lab = classic_lab();
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
    let lab = classic_lab();
    let sim = lab.sim();
    sim.fault(Some("blue"), "addr del 198.51.100.100/24", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(count(&lab, "switch", "green", "addr add"), 0);
}

#[tokio::test]
async fn a_switch_back_that_fails_needs_an_operator() {
    let lab = classic_lab();
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
    let lab = classic_lab();
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
    let lab = Lab::new(&testkit::vip("batch = false\nhandover = \"classic\"\n"), "");
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
    assert_eq!(f.held, crate::exec::run::Held::Not);
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
    assert_eq!(f.held, crate::exec::run::Held::ByDrift);
    assert_eq!(
        crate::cli::apply::exit_of(&f),
        crate::cli::exit::Exit::Operator
    );
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

const BLUE: &str = "198.51.100.11";
const GREEN: &str = "198.51.100.12";

fn records(sim: &super::sim::Sim) -> Vec<(String, u32)> {
    sim.lock()
        .records
        .values()
        .map(|(a, t)| (crate::core::holder::list(a), *t))
        .collect()
}

#[tokio::test]
async fn a_dns_apply_replaces_the_record_and_waits_out_its_ttl() {
    let lab = Lab::new(&testkit::dns(""), "");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(records(&sim), [(GREEN.into(), 300), (GREEN.into(), 300)]);
    let switch: Vec<(OpKind, String)> = lab
        .ops()
        .into_iter()
        .filter(|(s, _, _, _)| s == "switch")
        .map(|(_, h, k, c)| {
            assert_eq!(h, "controller");
            (k, c)
        })
        .collect();
    let kinds: Vec<OpKind> = switch.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [OpKind::Query, OpKind::Update, OpKind::Propagate]);
    assert!(
        switch[1].1.contains(&format!(
            "prerequisite www.example.test. A is exactly {BLUE}; delete www.example.test. A {BLUE}; add www.example.test. 300 A {GREEN}"
        )),
        "{}",
        switch[1].1
    );
    assert_eq!(
        count(&lab, "drain", "controller", "wait 5m (the record's TTL)"),
        1
    );
    // The long waits were announced as they began: what for, until when.
    let events = lab.progress.0.lock().unwrap().clone();
    let waits: Vec<(&str, &str, u64)> = events
        .iter()
        .filter(|e| e.state == crate::exec::run::State::Wait)
        .map(|e| {
            assert!(
                e.until
                    .as_deref()
                    .is_some_and(|u| u.ends_with('Z') && u > e.at.as_str()),
                "{e:?}"
            );
            (e.step.name(), e.detail.as_str(), e.duration_ms)
        })
        .collect();
    assert!(
        waits.iter().any(|(s, d, ms)| *s == "drain"
            && d.starts_with("wait 5m (the record's TTL)")
            && *ms == 300_000),
        "{waits:?}"
    );
    assert!(
        waits
            .iter()
            .any(|(s, d, _)| *s == "verify_service" && d.starts_with("repeat every check")),
        "{waits:?}"
    );
    assert!(waits.iter().all(|(_, _, ms)| *ms >= 1000), "{waits:?}");
}

#[tokio::test]
async fn with_switch_ttl_the_ttl_is_lowered_one_old_ttl_ahead_and_the_drain_is_short() {
    let lab = Lab::new(&testkit::dns("switch_ttl = \"30s\"\n"), "");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let switch: Vec<String> = lab
        .ops()
        .into_iter()
        .filter(|(s, _, _, _)| s == "switch")
        .map(|(_, _, _, c)| c)
        .collect();
    assert_eq!(switch.len(), 6, "{switch:#?}");
    assert!(switch[1].contains(&format!("add www.example.test. 30 A {BLUE}")));
    assert!(switch[2].contains(&format!("until all answer {BLUE} with TTL 30s")));
    assert!(switch[3].starts_with("wait 5m (the old TTL)"));
    // The new record gets the normal TTL at once.
    assert!(switch[4].contains(&format!("add www.example.test. 300 A {GREEN}")));
    assert_eq!(count(&lab, "drain", "controller", "wait 30s"), 1);
    assert_eq!(records(&sim), [(GREEN.into(), 300), (GREEN.into(), 300)]);
}

/// Issue 13's test (b): dropping the UPDATE's prerequisite makes it fail.
#[tokio::test]
async fn a_dns_switch_never_overwrites_a_record_changed_since_it_was_read() {
    let lab = Lab::new(&testkit::dns(""), "");
    let sim = lab.sim();
    // Preflight's observation is not an operation: the first question to
    // the zone's primary is the switch's own compare; someone else repoints
    // the record just after it.
    sim.fault(
        None,
        "ask 198.51.100.53:53",
        Effect::Repoints("198.51.100.99".parse().unwrap()),
        1,
    );
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_ne!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        records(&sim),
        [("198.51.100.99".into(), 300), ("198.51.100.99".into(), 300)],
        "the record changed by someone else was overwritten"
    );
    assert!(lab.steps().contains(&("switch".into(), false)));
}

#[tokio::test]
async fn a_secondary_that_never_follows_fails_the_switch_which_is_undone() {
    let lab = Lab::new(&testkit::dns(""), "");
    let sim = lab.sim();
    sim.lock()
        .lagging
        .insert("198.51.100.54:53".parse().unwrap());
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(records(&sim), [(BLUE.into(), 300), (BLUE.into(), 300)]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn an_update_the_server_does_not_apply_fails_the_switch_and_nothing_moves() {
    let lab = Lab::new(&testkit::dns(""), "");
    let sim = lab.sim();
    sim.fault(None, "UPDATE to 198.51.100.53:53", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(records(&sim), [(BLUE.into(), 300), (BLUE.into(), 300)]);
    assert_eq!(lab.steps().last(), Some(&("rollback_standby".into(), true)));
}

#[tokio::test]
async fn a_command_pair_switches_through_its_hooks() {
    let lab = Lab::new(&testkit::command(), "");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(sim.lock().hook_holder.as_deref(), Some("green"));
    let hooks: Vec<String> = lab
        .ops()
        .into_iter()
        .filter(|(s, _, k, _)| s == "switch" && *k == OpKind::Hook)
        .map(|(_, _, _, c)| c)
        .collect();
    assert_eq!(
        hooks,
        [
            "/usr/local/bin/lb-who",
            "/usr/local/bin/lb-move blue green",
            "/usr/local/bin/lb-who"
        ]
    );
}

#[tokio::test]
async fn a_switch_hook_that_fails_leaves_traffic_and_rolls_back() {
    let lab = Lab::new(&testkit::command(), "");
    let sim = lab.sim();
    sim.fault(None, "lb-move blue green", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(sim.lock().hook_holder.as_deref(), Some("blue"));
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_failover_takes_the_vip_when_no_host_answers_for_it_any_more() {
    let lab = vip_lab();
    let sim = lab.sim();
    {
        let mut s = sim.lock();
        s.hosts[0].ssh = false;
        s.hosts[0].up = false;
    }
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(lab.failed().as_deref(), Some("blue"));
    assert_eq!(lab.primary().as_deref(), Some("green"));
    assert_eq!(count(&lab, "fence", "green", "arping -D"), 1);
    let held = sim.lock().hosts[1].addrs.contains(&VIP.parse().unwrap());
    assert!(held);
}

#[tokio::test]
async fn a_forced_failover_does_not_take_a_vip_the_old_primary_still_answers_for() {
    let lab = vip_lab();
    let sim = lab.sim();
    // sshd is dead on blue, but blue still serves and holds the VIP.
    sim.lock().hosts[0].ssh = false;
    let f = lab
        .run_with(&sim, Some(Kind::Failover), None, |r| r.force = true)
        .await;
    assert_ne!(f.outcome, Outcome::Ok, "{}", f.message);
    let green_holds = sim.lock().hosts[1].addrs.contains(&VIP.parse().unwrap());
    assert!(!green_holds, "split brain: green took the VIP");
    assert_eq!(lab.steps().last(), Some(&("fence".into(), false)));
}

#[tokio::test]
async fn the_fence_command_cuts_the_old_primary_off_and_the_failover_proceeds() {
    let lab = Lab::new(
        &testkit::vip(""),
        "fence = \"/usr/local/bin/power-off {host}\"\n",
    );
    let sim = lab.sim();
    sim.lock().hosts[0].ssh = false;
    let f = lab
        .run_with(&sim, Some(Kind::Failover), None, |r| r.force = true)
        .await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        count(&lab, "fence", "controller", "/usr/local/bin/power-off blue"),
        1
    );
    assert!(!sim.lock().hosts[0].up);
}

#[tokio::test]
async fn an_unforced_failover_is_refused_while_the_primary_serves() {
    let lab = vip_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(lab.ops().is_empty());
    assert_eq!(vip_on(&sim), ["blue"]);
}

#[tokio::test]
async fn a_rejoin_removes_a_vip_the_repaired_host_came_back_with_and_never_fences_it() {
    let lab = Lab::new(
        &testkit::vip(""),
        "fence = \"/usr/local/bin/power-off {host}\"\n",
    );
    let sim = lab.sim();
    {
        let mut s = sim.lock();
        s.hosts[0].ssh = false;
        s.hosts[0].up = false;
    }
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    // blue comes back, with the VIP still configured.
    {
        let mut s = sim.lock();
        s.hosts[0].ssh = true;
        s.hosts[0].up = true;
    }
    let f = lab.run(&sim, Some(Kind::Rejoin), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.failed(), None);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    assert_eq!(count(&lab, "release", "blue", "ip addr del"), 1);
    assert!(!lab.ops().iter().any(|(_, _, _, c)| c.contains("power-off")));
}

#[tokio::test]
async fn recover_with_nothing_interrupted_puts_a_lost_vip_back_on_the_recorded_primary() {
    let lab = vip_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok);
    sim.lock().hosts[1].addrs.clear();
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
}

use crate::core::cycle::Step;
use crate::store::journal::Record;

fn interrupted(lab: &Lab, done: &[Step], open: Option<Step>) {
    lab.interrupted(&super::testkit::Died::apply(), done, open);
}

fn put_vip(sim: &super::sim::Sim, on: &[&str]) {
    let mut s = sim.lock();
    for h in s.hosts.iter_mut() {
        h.addrs.clear();
        if on.contains(&h.name.as_str()) {
            h.addrs.insert(VIP.parse().unwrap());
        }
    }
}

/// Issue 13's test (c): recover after a crash inside the switch settles on
/// the host that really holds the VIP, whatever the record says.
#[tokio::test]
async fn recover_after_a_crash_inside_the_switch_settles_on_the_host_that_holds_the_vip() {
    let before = [Step::Preflight, Step::ApplyStandby, Step::VerifyStandby];
    let forward: &[(&str, bool)] = &[
        ("switch", true),
        ("verify_service", true),
        ("drain", true),
        ("apply_old_primary", true),
        ("verify_old_primary", true),
    ];
    let undone: &[(&str, bool)] = &[
        ("switch", false),
        ("switch_back", true),
        ("rollback_standby", true),
    ];
    for (on, outcome, primary, after) in [
        (&["green"][..], Outcome::Ok, "green", forward),
        (&["blue"][..], Outcome::RolledBack, "blue", undone),
        (&[][..], Outcome::RolledBack, "blue", undone),
    ] {
        let lab = vip_lab();
        let sim = lab.sim();
        put_vip(&sim, on);
        interrupted(&lab, &before, Some(Step::Switch));
        let f = lab.run(&sim, None, None).await;
        assert_eq!(f.outcome, outcome, "VIP on {on:?}: {}", f.message);
        assert_eq!(vip_on(&sim), [primary], "VIP on {on:?}");
        assert_eq!(lab.primary().as_deref(), Some(primary), "VIP on {on:?}");
        // The interrupted switch is settled as done only when the VIP is on
        // green; then the run goes on, else it is undone.
        let steps = lab.steps();
        let settled: Vec<(&str, bool)> =
            steps[3..].iter().map(|(s, ok)| (s.as_str(), *ok)).collect();
        assert_eq!(settled, after, "VIP on {on:?}");
        // The interrupted step is settled from what the hosts said.
        let settled = lab.records().into_iter().find_map(|r| match r {
            Record::End {
                step: Step::Switch,
                detail,
                commands,
                ..
            } => Some((detail, commands.len())),
            _ => None,
        });
        let (detail, asked) = settled.unwrap();
        assert!(detail.starts_with("interrupted"), "{detail}");
        // Both hosts are asked for the VIP; the one that holds it announces
        // it again (the switch's announcement may have died with it).
        match on {
            [holder] => {
                assert_eq!(asked, 3, "VIP on {on:?}");
                assert!(
                    detail.ends_with(&format!("announced again from {holder}")),
                    "{detail}"
                );
            }
            _ => assert_eq!(asked, 2, "VIP on {on:?}: nobody to announce it"),
        }
    }
    // On both hosts: an operator decides, nothing moves.
    let lab = vip_lab();
    let sim = lab.sim();
    put_vip(&sim, &["blue", "green"]);
    interrupted(&lab, &before, Some(Step::Switch));
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue", "green"]);
}

#[tokio::test]
async fn recover_settles_an_apply_interrupted_at_every_position() {
    use Step::*;
    let forward = [
        Preflight,
        ApplyStandby,
        VerifyStandby,
        Switch,
        VerifyService,
        Drain,
        ApplyOldPrimary,
        VerifyOldPrimary,
    ];
    // Inside each step: (open step, outcome, where traffic ends).
    let inside = [
        (Preflight, Outcome::NotStarted, "blue"),
        (ApplyStandby, Outcome::RolledBack, "blue"),
        (VerifyStandby, Outcome::RolledBack, "blue"),
        (VerifyService, Outcome::RolledBack, "blue"),
        (Drain, Outcome::Ok, "green"),
        (ApplyOldPrimary, Outcome::Incomplete, "green"),
        (VerifyOldPrimary, Outcome::Incomplete, "green"),
    ];
    for (open, outcome, on) in inside {
        let lab = vip_lab();
        let sim = lab.sim();
        let i = forward.iter().position(|s| *s == open).unwrap();
        let done = &forward[..i];
        put_vip(
            &sim,
            if done.contains(&Switch) {
                &["green"]
            } else {
                &["blue"]
            },
        );
        interrupted(&lab, done, Some(open));
        let f = lab.run(&sim, None, None).await;
        assert_eq!(f.outcome, outcome, "inside {open:?}: {}", f.message);
        assert_eq!(vip_on(&sim), [on], "inside {open:?}");
        assert_eq!(lab.primary().as_deref(), Some(on), "inside {open:?}");
    }
    // Between steps: the run goes on from where it stopped.
    for i in 1..forward.len() {
        let lab = vip_lab();
        let sim = lab.sim();
        let done = &forward[..i];
        put_vip(
            &sim,
            if done.contains(&Switch) {
                &["green"]
            } else {
                &["blue"]
            },
        );
        interrupted(&lab, done, None);
        let f = lab.run(&sim, None, None).await;
        assert_eq!(
            f.outcome,
            Outcome::Ok,
            "after {:?}: {}",
            done.last(),
            f.message
        );
        assert_eq!(vip_on(&sim), ["green"], "after {:?}", done.last());
        let steps: Vec<String> = lab.steps().into_iter().map(|(s, _)| s).collect();
        let rest: Vec<&str> = forward[i..].iter().map(|s| s.name()).collect();
        assert_eq!(steps[i..], rest[..], "after {:?}", done.last());
    }
}

#[tokio::test]
async fn an_interrupted_run_is_settled_before_a_new_one_starts() {
    let lab = vip_lab();
    let sim = lab.sim();
    put_vip(&sim, &["green"]);
    interrupted(
        &lab,
        &[Step::Preflight, Step::ApplyStandby, Step::VerifyStandby],
        Some(Step::Switch),
    );
    // A switchover asked now first finishes the apply (traffic on green),
    // then swaps back.
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
    let runs: Vec<crate::core::cycle::Outcome> = lab
        .records()
        .into_iter()
        .filter_map(|r| match r {
            Record::Finish { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(runs, [Outcome::Ok, Outcome::Ok]);
}

/// The simulated world, whose journal file becomes unwritable (a
/// directory takes its place) right after the operation matching `on`.
struct JournalBreaks<'a> {
    sim: &'a super::sim::Sim,
    journal: std::path::PathBuf,
    on: &'static str,
}

impl super::World for JournalBreaks<'_> {
    async fn perform(
        &self,
        pair: &crate::config::Pair,
        op: &crate::core::op::Op,
    ) -> Result<super::Value, super::OpError> {
        let r = self.sim.lock().perform_for_test(pair, op);
        if op.render(pair).command.contains(self.on) && !self.journal.is_dir() {
            std::fs::rename(&self.journal, self.journal.with_extension("aside")).unwrap();
            std::fs::create_dir(&self.journal).unwrap();
        }
        r
    }

    async fn observe(&self, pair: &crate::config::Pair) -> crate::core::assess::PairSeen {
        self.sim.observe(pair).await
    }

    fn crash_point(&self, _: &str) {}
}

/// An apply of `v2` whose journal becomes unwritable after the operation
/// matching `on`; how it ended, and the journal's path.
async fn apply_with_journal_breaking(
    lab: &Lab,
    sim: &super::sim::Sim,
    on: &'static str,
) -> (crate::exec::run::Finished, std::path::PathBuf) {
    let path = lab.journal().path();
    let world = JournalBreaks {
        sim,
        journal: path.clone(),
        on,
    };
    (lab.run(&world, Some(Kind::Apply), Some("v2")).await, path)
}

#[tokio::test]
async fn a_journal_that_cannot_be_written_stops_the_run_before_its_next_action() {
    let lab = classic_lab();
    let sim = lab.sim();
    let (f, path) = apply_with_journal_breaking(&lab, &sim, "addr add 198.51.100.100/24").await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    assert!(
        f.message
            .starts_with("STOPPED: cannot journal the end of switch"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("traffic was last known on green"),
        "{}",
        f.message
    );
    // Nothing after the switch ran: blue never got the change.
    assert!(sim.lock().hosts[0].files.is_empty());
    assert_eq!(vip_on(&sim), ["green"]);
    // Once the state directory is mended, recover settles the switch from
    // where the VIP really is and finishes the apply.
    std::fs::remove_dir(&path).unwrap();
    std::fs::rename(path.with_extension("aside"), &path).unwrap();
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    assert!(!sim.lock().hosts[0].files.is_empty());
}

#[tokio::test]
async fn a_journal_that_fails_before_the_switch_keeps_traffic_where_it_was() {
    let lab = vip_lab();
    let sim = lab.sim();
    let (f, path) = apply_with_journal_breaking(&lab, &sim, "deploy v2").await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    assert!(
        f.message.contains("traffic was last known on blue"),
        "{}",
        f.message
    );
    assert_eq!(vip_on(&sim), ["blue"]);
    // The step in flight ended (its end could not be written); nothing
    // after it ran: blue was never touched, no address moved.
    assert!(sim.lock().hosts[0].files.is_empty());
    std::fs::remove_dir(&path).unwrap();
    std::fs::rename(path.with_extension("aside"), &path).unwrap();
    assert!(!lab.ops().iter().any(|(_, _, _, c)| c.contains("addr")));
    assert_eq!(lab.steps().last(), Some(&("preflight".into(), true)));
}

/// `baton plan` prints the operations the run then performs, in order.
#[tokio::test]
async fn the_plan_is_the_list_of_operations_the_run_performs() {
    let cases = [
        testkit::vip(""),
        testkit::vip("quiesce = \"50ms\"\n"),
        testkit::vip("batch = false\n"),
        testkit::dns(""),
        testkit::dns("switch_ttl = \"30s\"\n"),
        testkit::command(),
        format!("{}{}", testkit::vip(""), testkit::roles("")),
    ];
    for traffic in cases {
        for (kind, change) in [(Kind::Apply, Some("v2")), (Kind::Switchover, None)] {
            let lab = Lab::new(&traffic, "");
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
            assert_eq!(f.outcome, Outcome::Ok, "{traffic} {kind:?}: {}", f.message);
            let ran: Vec<(String, String, OpKind, String)> = lab.ops();
            assert!(!ran.is_empty());
            assert_eq!(plan.ops(), ran, "{traffic} {kind:?}");
        }
    }
}
