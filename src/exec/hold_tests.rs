//! Holds (`apply --hold`) through the simulated world: the run held after
//! the switch and the drain with the old primary untouched, other runs
//! refused, `finish` updating the old primary, `revert` sending traffic
//! back (verified) and rolling the change back (verified), a revert cut
//! off inside its switch settled by `recover`, and the hold refused for a
//! pair with role hooks. The lab suite (`tests/lab_hold.rs`) proves the
//! same against real hosts under a poller.

use std::time::Duration;

use super::run::Keep;
use super::testkit::{self, Died, Lab};
use crate::core::assess::{HeldBy, LastRun};
use crate::core::cycle::{Kind, Outcome, Step};
use crate::exec::run::Finished;
use crate::exec::sim::Sim;

const VIP: &str = "198.51.100.100";

fn lab() -> Lab {
    Lab::new(&testkit::vip(""), "")
}

fn vip_on(sim: &Sim) -> Vec<String> {
    sim.holders(VIP.parse().expect("an address"))
}

async fn apply_held(lab: &Lab, sim: &Sim) -> Finished {
    lab.run_with(sim, Some(Kind::Apply), Some("v2"), |r| {
        r.hold = Some(Duration::from_secs(3600));
    })
    .await
}

/// The operations of the last run on `host` in `step`.
fn ran(lab: &Lab, step: &str, host: &str) -> Vec<String> {
    lab.ops()
        .into_iter()
        .filter(|(s, h, ..)| s == step && h == host)
        .map(|(.., c)| c)
        .collect()
}

#[tokio::test]
async fn a_hold_keeps_the_old_primary_on_the_old_version_until_the_operator_decides() {
    let lab = lab();
    let sim = lab.sim();
    let f = apply_held(&lab, &sim).await;
    assert_eq!(f.outcome, Outcome::Held, "{}", f.message);
    assert!(
        f.message
            .contains("traffic is on green with change v2, blue is kept on the old version for 1h")
            && f.message.contains("baton finish web")
            && f.message.contains("baton revert web"),
        "{}",
        f.message
    );
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "switch",
            "verify_service",
            "drain"
        ]
    );
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    // blue was never changed.
    assert!(sim.lock().hosts[0].files.is_empty());
    match lab.last_run() {
        LastRun::Held {
            by: HeldBy::Hold { expired, ref until },
            ref from,
            ref to,
            ..
        } => {
            assert!(!expired, "a 1h hold has not ended");
            assert!(until.ends_with('Z'), "{until}");
            assert_eq!((from.as_str(), to.as_str()), ("blue", "green"));
        }
        other => panic!("{other:?}"),
    }
    // Nothing else starts; recover leaves it alone.
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert_eq!(f.held, crate::exec::run::Held::ByHold);
    assert!(f.message.contains("baton revert web"), "{}", f.message);
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(vip_on(&sim), ["green"]);
}

#[tokio::test]
async fn finish_updates_the_held_old_primary() {
    let lab = lab();
    let sim = lab.sim();
    assert_eq!(apply_held(&lab, &sim).await.outcome, Outcome::Held);
    let f = lab.decide(&sim, Keep::New).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        &lab.step_marks()[6..],
        ["decide", "apply_old_primary", "verify_old_primary"]
    );
    let (detail, _) = lab.ended(Step::Decide);
    assert!(
        detail.starts_with("tester finished the hold of change v2 (hash "),
        "{detail}"
    );
    assert!(!sim.lock().hosts[0].files.is_empty(), "blue got the change");
    assert_eq!(vip_on(&sim), ["green"]);
    assert_eq!(lab.last_run(), LastRun::Settled);
}

#[tokio::test]
async fn revert_sends_traffic_back_then_rolls_the_change_back_verifying_each() {
    let lab = lab();
    let sim = lab.sim();
    assert_eq!(apply_held(&lab, &sim).await.outcome, Outcome::Held);
    let f = lab.decide(&sim, Keep::Old).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert!(
        f.message.starts_with("reverted: traffic is back on blue (verified), and the change was rolled back on green (verified)"),
        "{}",
        f.message
    );
    assert_eq!(
        &lab.step_marks()[6..],
        [
            "decide!",
            "verify_kept",
            "switch_back",
            "verify_back",
            "drain_back",
            "rollback_standby",
            "verify_rolled_back"
        ]
    );
    let (detail, _) = lab.ended(Step::Decide);
    assert!(
        detail.contains("tester reverted change v2 (hash "),
        "{detail}"
    );
    assert_eq!(vip_on(&sim), ["blue"]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
    // The rollback ran on green; blue was only asked for the address.
    assert!(ran(&lab, "rollback_standby", "green")
        .iter()
        .any(|c| c.contains("site.conf.baton-prev")));
    let moves = ["switch", "switch_back", "verify_back"];
    assert!(lab
        .ops()
        .iter()
        .all(|(s, h, ..)| h != "blue" || moves.contains(&s.as_str())));
    // The service was verified through the VIP on blue.
    assert!(!ran(&lab, "verify_back", "controller").is_empty());
}

#[tokio::test]
async fn a_revert_to_a_held_host_that_fails_its_checks_moves_nothing_and_stays_held() {
    let lab = lab();
    let sim = lab.sim();
    assert_eq!(apply_held(&lab, &sim).await.outcome, Outcome::Held);
    sim.lock().hosts[0].healthy = false;
    let f = lab.decide(&sim, Keep::Old).await;
    assert_eq!(f.outcome, Outcome::Held, "{}", f.message);
    assert!(f.message.starts_with("NOT REVERTED: blue"), "{}", f.message);
    assert_eq!(&lab.step_marks()[6..], ["decide!", "verify_kept!"]);
    assert_eq!(vip_on(&sim), ["green"]);
    assert!(matches!(lab.last_run(), LastRun::Held { .. }));
    // Repaired, it can be reverted.
    sim.lock().hosts[0].healthy = true;
    let f = lab.decide(&sim, Keep::Old).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(vip_on(&sim), ["blue"]);
}

#[tokio::test]
async fn a_held_run_is_not_finished_when_its_traffic_was_moved_by_hand() {
    let lab = lab();
    let sim = lab.sim();
    assert_eq!(apply_held(&lab, &sim).await.outcome, Outcome::Held);
    // Someone moved the VIP back to blue by hand.
    {
        let mut s = sim.lock();
        let vip: std::net::IpAddr = VIP.parse().expect("an address");
        s.hosts[1].addrs.remove(&vip);
        s.hosts[0].addrs.insert(vip);
    }
    let f = lab.decide(&sim, Keep::New).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(
        f.message
            .contains("the hold left traffic on green, and it is on blue now"),
        "{}",
        f.message
    );
    assert!(sim.lock().hosts[0].files.is_empty(), "blue was not updated");
    assert!(matches!(lab.last_run(), LastRun::Held { .. }));
}

#[tokio::test]
async fn a_failover_supersedes_a_hold() {
    let lab = lab();
    let sim = lab.sim();
    assert_eq!(apply_held(&lab, &sim).await.outcome, Outcome::Held);
    // green, serving, dies.
    {
        let mut s = sim.lock();
        s.hosts[1].up = false;
        s.hosts[1].ssh = false;
    }
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    // blue took the address (the dead green's interface is not asked).
    assert!(vip_on(&sim).contains(&"blue".to_string()));
    assert_eq!(lab.primary().as_deref(), Some("blue"));
    assert_eq!(lab.failed().as_deref(), Some("green"));
    let superseded = lab.records().into_iter().find_map(|r| match r {
        crate::store::journal::Record::Finish {
            run,
            outcome,
            message,
            ..
        } if run != f.message => Some((outcome, message)),
        _ => None,
    });
    let (outcome, message) = superseded.expect("the hold was finished");
    assert_eq!(outcome, Outcome::Incomplete);
    assert!(message.starts_with("superseded by a failover"), "{message}");
}

/// A held apply whose revert was recorded (`decide` not ok) and then cut
/// off inside its switch back.
fn revert_cut_off(lab: &Lab) {
    let died = Died {
        hold: Some(Duration::from_secs(3600)),
        ..Died::apply()
    };
    // It died inside the switch back: the VIP already moved to blue.
    lab.interrupted(
        &died,
        &[
            Step::Preflight,
            Step::ApplyStandby,
            Step::VerifyStandby,
            Step::Switch,
            Step::VerifyService,
            Step::Drain,
        ],
        None,
    );
    let records = lab.journal();
    records
        .append(&crate::store::journal::Record::End {
            run: "crashed".into(),
            step: Step::Decide,
            ok: false,
            detail: "reverted".into(),
            duration_ms: 0,
            commands: vec![],
            at: "2026-11-30T00:00:01Z".into(),
        })
        .expect("append");
    records
        .append(&crate::store::journal::Record::Begin {
            run: "crashed".into(),
            step: Step::SwitchBack,
            at: "2026-11-30T00:00:02Z".into(),
        })
        .expect("append");
}

#[tokio::test]
async fn a_revert_cut_off_inside_its_switch_is_finished_by_recover() {
    let lab = lab();
    let sim = lab.sim();
    revert_cut_off(&lab);
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert!(f.message.starts_with("reverted"), "{}", f.message);
    assert_eq!(
        &lab.step_marks()[7..],
        [
            "switch_back",
            "verify_back",
            "drain_back",
            "rollback_standby",
            "verify_rolled_back"
        ]
    );
    assert_eq!(vip_on(&sim), ["blue"]);
}

/// A decision asked after another one was recorded and cut off: the
/// recorded one is carried out, and the command says nothing was done for
/// what it asked.
#[tokio::test]
async fn a_finish_asked_after_a_revert_was_cut_off_carries_out_the_revert_and_says_so() {
    let lab = lab();
    let sim = lab.sim();
    revert_cut_off(&lab);
    let f = lab.decide(&sim, Keep::New).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(
        f.message
            .contains("had already been decided (keep the old version (revert))")
            && f.message
                .ends_with("nothing was done to keep the new version (finish)"),
        "{}",
        f.message
    );
    assert_eq!(vip_on(&sim), ["blue"]);
    assert!(sim.lock().hosts[0].files.is_empty(), "blue was not updated");
    assert_eq!(lab.last_run(), LastRun::Settled);
}

#[tokio::test]
async fn a_hold_is_refused_for_a_pair_with_role_hooks_and_zero_means_none() {
    let roles = Lab::new(&format!("{}{}", testkit::vip(""), testkit::roles("")), "");
    let sim = roles.sim();
    let f = apply_held(&roles, &sim).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(
        f.message.contains("not supported for replicated pairs"),
        "{}",
        f.message
    );
    // --hold 0s on a plain pair: the whole cycle, no hold.
    let lab = lab();
    let sim = lab.sim();
    let f = lab
        .run_with(&sim, Some(Kind::Apply), Some("v2"), |r| {
            r.hold = Some(Duration::ZERO);
        })
        .await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
}

async fn rollback(lab: &Lab, sim: &Sim) -> Finished {
    lab.run_with(sim, Some(Kind::Apply), Some("v2"), |r| r.reverse = true)
        .await
}

/// `baton rollback`: a whole cycle whose change is the rollback: the
/// rollback steps on the standby, the switch, then on the old primary;
/// undone by applying the change again.
#[tokio::test]
async fn a_rollback_run_takes_the_change_back_on_both_hosts() {
    let lab = lab();
    let sim = lab.sim();
    assert_eq!(
        lab.run(&sim, Some(Kind::Apply), Some("v2")).await.outcome,
        Outcome::Ok
    );
    let f = rollback(&lab, &sim).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert!(
        f.message
            .starts_with("done: change v2 rolled back on both hosts; traffic is on blue"),
        "{}",
        f.message
    );
    // green held traffic after the apply: blue is rolled back first.
    for (step, host) in [("apply_standby", "blue"), ("apply_old_primary", "green")] {
        let ops = ran(&lab, step, host);
        assert!(
            ops.iter().any(|c| c.contains("site.conf.baton-prev")),
            "{step} ran the rollback steps on {host}: {ops:?}"
        );
        assert!(!ops.iter().any(|c| c.contains("deploy v2")), "{ops:?}");
        // The upload is put back before the change's rollback steps.
        assert!(
            ops[0].starts_with("f=/etc/site.conf;")
                && ops[0].contains("site.conf.baton-prev.owner"),
            "{ops:?}"
        );
    }
    assert_eq!(vip_on(&sim), ["blue"]);
    let start = lab
        .records()
        .into_iter()
        .rev()
        .find_map(|r| match r {
            crate::store::journal::Record::Start { reverse, gate, .. } => Some((reverse, gate)),
            _ => None,
        })
        .expect("a start record");
    assert!(start.0, "the start record says it is a rollback");
    assert!(
        start
            .1
            .as_deref()
            .is_some_and(|g| g.starts_with("gate not asked: a rollback of change ")),
        "{start:?}"
    );
    // A rollback that fails on the standby is undone by applying the change again.
    assert_eq!(
        lab.run(&sim, Some(Kind::Apply), Some("v2")).await.outcome,
        Outcome::Ok
    );
    // The apply moved traffic to green again: blue is the standby.
    assert_eq!(vip_on(&sim), ["green"]);
    sim.fault(
        Some("blue"),
        "site.conf.baton-prev",
        crate::exec::sim::Effect::Fail,
        1,
    );
    let f = rollback(&lab, &sim).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    let undo = ran(&lab, "rollback_standby", "blue");
    assert!(undo.iter().any(|c| c.contains("deploy v2")), "{undo:?}");
}
