//! Whole A/B experiments (`baton ab`) on a pair behind a balancer through
//! the simulated world: the split set and watched, each interval's sample
//! journaled, the run held for the operator (other runs refused, `status`
//! calling it an experiment), the end that keeps the new version (the
//! cycle goes on) or the old (switch back, roll back), the guard that
//! aborts a change harming users, and a watcher that died. The lab suite
//! (`tests/lab_haproxy.rs`) proves the same against HAProxy 2.6.

use std::time::Duration;

use super::haproxy_tests::{balancer_ops, lb_lab, server, servers};
use super::run::Keep;
use super::testkit::{Died, Lab};
use crate::core::assess::LastRun;
use crate::core::balancer::State;
use crate::core::cycle::{Kind, Outcome, Step};
use crate::core::experiment::{Experiment, Verdict};
use crate::exec::run::Finished;
use crate::exec::sim::Sim;
use crate::store::journal::Record;

/// 10 % to the standby, watched for 3 intervals of 1 s.
fn ten_percent() -> Experiment {
    Experiment::new(10, Duration::from_secs(3), Duration::from_secs(1)).expect("valid")
}

async fn start(lab: &Lab, sim: &Sim) -> Finished {
    lab.run_with(sim, Some(Kind::Apply), Some("v2"), |r| {
        r.experiment = Some(ten_percent());
    })
    .await
}

fn samples(lab: &Lab) -> Vec<crate::core::experiment::Sample> {
    lab.records()
        .into_iter()
        .filter_map(|r| match r {
            Record::Sample { sample, .. } => Some(sample),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_experiment_is_watched_then_held_and_other_runs_wait_for_its_end() {
    let lab = lb_lab();
    let sim = lab.sim();
    let f = start(&lab, &sim).await;
    assert_eq!(f.outcome, Outcome::Held, "{}", f.message);
    assert!(
        f.message
            .contains("10% of new requests to green (change v2)")
            && f.message.contains("baton ab web --end --keep new"),
        "{}",
        f.message
    );
    assert_eq!(
        lab.step_marks(),
        ["preflight", "apply_standby", "verify_standby", "experiment"]
    );
    // One line set the split; the servers hold it.
    let sets: Vec<String> = balancer_ops(&lab)
        .into_iter()
        .filter(|(s, c)| s == "experiment" && c.contains("set server"))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert!(
        sets[0].contains("'set server web/green weight 10; set server web/green state ready; set server web/blue weight 90'"),
        "{}",
        sets[0]
    );
    assert_eq!(
        servers(&sim),
        [
            server("blue", 90, State::Ready),
            server("green", 10, State::Ready)
        ]
    );
    // Every interval was sampled, read with the highest values cleared.
    let s = samples(&lab);
    assert_eq!(s.len(), 3);
    assert!(s.iter().all(|s| s.verdict == Verdict::AsGood
        && s.new.host == "green"
        && s.new.window.requests == 100
        && s.old.window.requests == 900));
    assert!(balancer_ops(&lab)
        .iter()
        .any(|(s, c)| s == "experiment" && c.contains("'show stat; clear counters'")));
    let (detail, _) = lab.ended(Step::Experiment);
    assert!(
        detail.contains("all 3 intervals watched (3 as good"),
        "{detail}"
    );
    // Held: no finish record, the roles unchanged.
    assert!(!lab
        .records()
        .iter()
        .any(|r| matches!(r, Record::Finish { .. })));
    assert_eq!(lab.primary().as_deref(), Some("blue"));
    assert!(
        matches!(lab.last_run(), LastRun::Held { ref to, by: crate::core::assess::HeldBy::Experiment { percent: 10 }, ref change, .. } if to == "green" && change == "v2"),
        "{:?}",
        lab.last_run()
    );
    // Nothing else starts, and recover leaves it alone.
    for kind in [Some(Kind::Switchover), Some(Kind::Apply)] {
        let f = lab.run(&sim, kind, Some("v2")).await;
        assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
        assert!(
            f.message.contains("an A/B experiment") && f.message.contains("--end"),
            "{}",
            f.message
        );
    }
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert!(f.message.contains("nothing to recover"), "{}", f.message);
    assert_eq!(servers(&sim)[1], server("green", 10, State::Ready));
}

#[tokio::test]
async fn keeping_the_new_version_finishes_the_cycle() {
    let lab = lb_lab();
    let sim = lab.sim();
    assert_eq!(start(&lab, &sim).await.outcome, Outcome::Held);
    let f = lab.decide(&sim, Keep::New).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "experiment",
            "decide",
            "switch",
            "verify_service",
            "drain",
            "apply_old_primary",
            "verify_old_primary"
        ]
    );
    let (detail, _) = lab.ended(Step::Decide);
    assert!(
        detail.contains("tester ended the A/B experiment of change v2 (hash ")
            && detail.contains("keeping the new version (test)"),
        "{detail}"
    );
    assert_eq!(
        servers(&sim),
        [
            server("blue", 0, State::Ready),
            server("green", 100, State::Ready)
        ]
    );
    assert_eq!(lab.primary().as_deref(), Some("green"));
    assert_eq!(lab.last_run(), LastRun::Settled);
    // Nothing is left to end.
    let f = lab.decide(&sim, Keep::Old).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(f.message.contains("no run holds web"), "{}", f.message);
}

#[tokio::test]
async fn keeping_the_old_version_sends_everything_back_and_rolls_the_change_back() {
    let lab = lb_lab();
    let sim = lab.sim();
    assert_eq!(start(&lab, &sim).await.outcome, Outcome::Held);
    let f = lab.decide(&sim, Keep::Old).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert!(
        f.message
            .contains("ended keeping the old version: all new requests go to blue again"),
        "{}",
        f.message
    );
    assert_eq!(
        &lab.step_marks()[4..],
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
    // green drained, then the standby again: weight 0, ready.
    assert_eq!(
        servers(&sim),
        [
            server("blue", 100, State::Ready),
            server("green", 0, State::Ready)
        ]
    );
    assert_eq!(lab.primary().as_deref(), Some("blue"));
    assert_eq!(lab.last_run(), LastRun::Settled);
}

#[tokio::test]
async fn a_change_that_harms_users_is_aborted_at_the_first_worse_interval() {
    let lab = lb_lab();
    let sim = lab.sim();
    sim.lock().error_percent.insert("green".into(), 20);
    let f = start(&lab, &sim).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(
        &lab.step_marks()[3..],
        [
            "experiment!",
            "switch_back",
            "drain_back",
            "rollback_standby"
        ]
    );
    assert!(
        f.message.contains("during the A/B experiment"),
        "{}",
        f.message
    );
    let s = samples(&lab);
    assert_eq!(s.len(), 1, "the first worse interval ends it");
    assert_eq!((s[0].verdict, s[0].new.window.errors), (Verdict::Worse, 20));
    let (detail, _) = lab.ended(Step::Experiment);
    assert!(
        detail.contains("1 of 3 intervals watched (0 as good")
            && detail.contains("ABORTED at interval 1"),
        "{detail}"
    );
    assert_eq!(servers(&sim)[0], server("blue", 100, State::Ready));
}

#[tokio::test]
async fn an_experiment_whose_watcher_died_is_held_if_its_split_is_still_there() {
    let done = [Step::Preflight, Step::ApplyStandby, Step::VerifyStandby];
    let died = Died {
        experiment: Some(ten_percent()),
        ..Died::apply()
    };
    // The split is there: held, and the operator can end it at once.
    let lab = lb_lab();
    let sim = lab.sim();
    lab.interrupted(&died, &done, Some(Step::Experiment));
    sim.lock().servers.insert("blue".into(), (90, State::Ready));
    sim.lock()
        .servers
        .insert("green".into(), (10, State::Ready));
    let f = lab.decide(&sim, Keep::New).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    // A new apply settles it into the hold, and does not start.
    let lab = lb_lab();
    let sim = lab.sim();
    lab.interrupted(&died, &done, Some(Step::Experiment));
    sim.lock().servers.insert("blue".into(), (90, State::Ready));
    sim.lock()
        .servers
        .insert("green".into(), (10, State::Ready));
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert_eq!(f.held, crate::exec::run::Held::ByHold);
    assert!(matches!(lab.last_run(), LastRun::Held { .. }));
    // Someone put every request back on blue by hand: undone.
    let lab = lb_lab();
    let sim = lab.sim();
    lab.interrupted(&died, &done, Some(Step::Experiment));
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn an_experiment_needs_a_balancer() {
    let lab = Lab::new(&super::testkit::vip(""), "");
    let sim = lab.sim();
    let f = start(&lab, &sim).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(
        f.message
            .contains("an A/B experiment (baton ab) needs a balancer"),
        "{}",
        f.message
    );
}
