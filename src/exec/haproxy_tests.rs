//! Whole runs of a pair behind an HAProxy balancer (method `haproxy`)
//! through the simulated world: the switch as one runtime API line, the
//! drain leaving the old server as the standby, the compare before the
//! switch, a failed switch or verification switched back, a failover that
//! fences through the balancer and a rejoin that releases, and a server in
//! maintenance refusing a run. The lab suite (`tests/lab_haproxy.rs`)
//! proves the same against HAProxy 2.6.

use super::sim::{Effect, Sim};
use super::testkit::{Died, Lab};
use crate::core::balancer::State;
use crate::core::cycle::{Kind, Outcome};
use crate::core::op::OpKind;

pub(super) const FRONTEND: &str = "198.51.100.80";

pub(super) fn lb_lab() -> Lab {
    Lab::new(
        &format!(
            "[traffic]\nmethod = \"haproxy\"\nhost = \"lb\"\naddress = \"198.51.100.40\"\nsocket = \"/run/haproxy/admin.sock\"\nbackend = \"web\"\nfrontend = \"{FRONTEND}:80\"\ndrain_timeout = \"5s\"\n"
        ),
        "",
    )
}

/// Each server's (weight, state).
pub(super) fn servers(sim: &Sim) -> Vec<(String, u32, State)> {
    sim.lock()
        .servers
        .iter()
        .map(|(n, (w, s))| (n.clone(), *w, *s))
        .collect()
}

pub(super) fn server(name: &str, weight: u32, state: State) -> (String, u32, State) {
    (name.to_string(), weight, state)
}

/// The balancer operations of the last run, as (step, command).
pub(super) fn balancer_ops(lab: &Lab) -> Vec<(String, String)> {
    lab.ops()
        .into_iter()
        .filter(|(_, _, k, _)| *k == OpKind::Balancer)
        .map(|(step, host, _, c)| {
            assert_eq!(host, "lb", "a balancer command runs on the balancer");
            (step, c)
        })
        .collect()
}

#[tokio::test]
async fn an_apply_moves_traffic_in_one_line_then_leaves_the_old_server_as_the_standby() {
    let lab = lb_lab();
    let sim = lab.sim();
    assert_eq!(
        servers(&sim),
        [
            server("blue", 100, State::Ready),
            server("green", 0, State::Ready)
        ]
    );
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
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
    let sets: Vec<(String, String)> = balancer_ops(&lab)
        .into_iter()
        .filter(|(_, c)| c.contains("set server"))
        .collect();
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(sets[0].0, "switch");
    assert!(
        sets[0].1.contains("'set server web/green weight 100; set server web/green state ready; set server web/blue state drain'")
            && sets[0].1.contains("UNIX-CONNECT:/run/haproxy/admin.sock"),
        "{}",
        sets[0].1
    );
    assert_eq!(sets[1].0, "drain");
    assert!(
        sets[1]
            .1
            .contains("'set server web/blue weight 0; set server web/blue state ready'"),
        "{}",
        sets[1].1
    );
    // The drain waited for the old server's sessions.
    assert!(lab
        .ops()
        .iter()
        .any(|(step, _, k, _)| step == "drain" && *k == OpKind::Drain));
    assert_eq!(
        servers(&sim),
        [
            server("blue", 0, State::Ready),
            server("green", 100, State::Ready)
        ]
    );
    assert_eq!(lab.primary().as_deref(), Some("green"));
    // The service was verified through the frontend.
    assert!(lab
        .ops()
        .iter()
        .any(|(step, _, k, c)| step == "verify_service"
            && *k == OpKind::Observe
            && c.contains(FRONTEND)));
}

#[tokio::test]
async fn a_switchover_and_back_leaves_the_balancer_as_it_began() {
    let lab = lb_lab();
    let sim = lab.sim();
    let before = servers(&sim);
    for _ in 0..2 {
        let f = lab.run(&sim, Some(Kind::Switchover), None).await;
        assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    }
    assert_eq!(servers(&sim), before);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_failed_verification_through_the_frontend_switches_back() {
    let lab = lb_lab();
    let sim = lab.sim();
    sim.fault(None, "repeat every check", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    let sets: Vec<String> = balancer_ops(&lab)
        .into_iter()
        .filter(|(_, c)| c.contains("set server"))
        .map(|(s, _)| s)
        .collect();
    assert_eq!(sets, ["switch", "switch_back"]);
    // Blue takes every new request again; green finishes what it has.
    let s = servers(&sim);
    assert_eq!(s[0], server("blue", 100, State::Ready));
    assert_eq!(s[1].2, State::Drain);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_balancer_that_refuses_the_switch_leaves_traffic_on_the_old_primary() {
    let lab = lb_lab();
    let sim = lab.sim();
    sim.fault(None, "state drain", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(
        servers(&sim)[0],
        server("blue", 100, State::Ready),
        "blue holds traffic"
    );
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn both_servers_weighted_is_drift_and_no_run_starts() {
    let lab = lb_lab();
    let sim = lab.sim();
    sim.lock()
        .servers
        .insert("green".into(), (50, State::Ready));
    let before = servers(&sim);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(f.message.contains("both"), "{}", f.message);
    assert_eq!(servers(&sim), before, "nothing changed");
    assert!(balancer_ops(&lab)
        .iter()
        .all(|(_, c)| !c.contains("set server")));
}

#[tokio::test]
async fn a_standby_server_in_maintenance_refuses_a_switch_before_anything_changes() {
    let lab = lb_lab();
    let sim = lab.sim();
    sim.lock().servers.insert("green".into(), (0, State::Maint));
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(f.message.contains("maintenance"), "{}", f.message);
    assert_eq!(servers(&sim)[1], server("green", 0, State::Maint));
}

#[tokio::test]
async fn a_failover_fences_the_dead_primary_in_maintenance_and_a_rejoin_releases_it() {
    let lab = lb_lab();
    let sim = lab.sim();
    {
        let mut s = sim.lock();
        s.hosts[0].ssh = false;
        s.hosts[0].up = false;
    }
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        servers(&sim),
        [
            server("blue", 0, State::Maint),
            server("green", 100, State::Ready)
        ],
        "the switch of a failover leaves the fence in place"
    );
    assert_eq!(lab.failed().as_deref(), Some("blue"));
    {
        let mut s = sim.lock();
        s.hosts[0].ssh = true;
        s.hosts[0].up = true;
    }
    let f = lab.run(&sim, Some(Kind::Rejoin), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        servers(&sim),
        [
            server("blue", 0, State::Ready),
            server("green", 100, State::Ready)
        ]
    );
    assert_eq!(lab.failed(), None);
}

#[tokio::test]
async fn recover_settles_a_run_that_died_inside_the_switch_by_the_balancers_word() {
    use crate::core::cycle::Step;
    let done = [Step::Preflight, Step::ApplyStandby, Step::VerifyStandby];
    // The line reached the balancer: the run goes forward.
    let lab = lb_lab();
    let sim = lab.sim();
    lab.interrupted(&Died::apply(), &done, Some(Step::Switch));
    {
        let mut s = sim.lock();
        s.servers.insert("green".into(), (100, State::Ready));
        s.servers.insert("blue".into(), (100, State::Drain));
    }
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        servers(&sim),
        [
            server("blue", 0, State::Ready),
            server("green", 100, State::Ready)
        ]
    );
    assert_eq!(lab.primary().as_deref(), Some("green"));
    // It did not: the standby's change is rolled back, traffic stays.
    let lab = lb_lab();
    let sim = lab.sim();
    let before = servers(&sim);
    lab.interrupted(&Died::apply(), &done, Some(Step::Switch));
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(servers(&sim), before);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

fn ramp(percents: &str) -> crate::core::ramp::Ramp {
    crate::core::ramp::Ramp::parse(percents, std::time::Duration::from_secs(120)).expect("a ramp")
}

#[tokio::test]
async fn a_ramp_raises_the_updated_hosts_share_step_by_step_then_switches() {
    let lab = lb_lab();
    let sim = lab.sim();
    let f = lab
        .run_with(&sim, Some(Kind::Apply), Some("v2"), |r| {
            r.ramp = Some(ramp("10,50,100"));
        })
        .await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "ramp",
            "switch",
            "verify_service",
            "drain",
            "apply_old_primary",
            "verify_old_primary"
        ]
    );
    let ramp_sets: Vec<String> = balancer_ops(&lab)
        .into_iter()
        .filter(|(s, c)| s == "ramp" && c.contains("set server"))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(ramp_sets.len(), 2, "{ramp_sets:?}");
    assert!(ramp_sets[0].contains("'set server web/green weight 10; set server web/green state ready; set server web/blue weight 90'"), "{}", ramp_sets[0]);
    assert!(
        ramp_sets[1].contains("web/green weight 50;")
            && ramp_sets[1].contains("web/blue weight 50'")
    );
    // Each step waited, then compared: 100 then 500 requests on green.
    let (detail, _) = lab.ended(crate::core::cycle::Step::Ramp);
    assert!(
        detail.contains("step 1/2 (10% to green) for 2m: green 100 requests, 0 5xx")
            && detail.contains("blue 900 requests")
            && detail.contains("step 2/2 (50% to green)")
            && detail.contains("green 500 requests"),
        "{detail}"
    );
    assert_eq!(
        servers(&sim),
        [
            server("blue", 0, State::Ready),
            server("green", 100, State::Ready)
        ]
    );
}

#[tokio::test]
async fn a_change_that_harms_users_is_aborted_at_the_first_step_and_rolled_back() {
    let lab = lb_lab();
    let sim = lab.sim();
    // Its checks pass; one request in five gets a 500.
    sim.lock().error_percent.insert("green".into(), 20);
    let f = lab
        .run_with(&sim, Some(Kind::Apply), Some("v2"), |r| {
            r.ramp = Some(ramp("10,50,100"));
        })
        .await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "ramp!",
            "switch_back",
            "drain_back",
            "rollback_standby"
        ]
    );
    assert!(f.message.contains("all go to blue again"), "{}", f.message);
    let (detail, ok) = lab.ended(crate::core::cycle::Step::Ramp);
    assert!(!ok);
    assert!(
        detail.contains("step 1/2") && detail.contains("ABORTED") && !detail.contains("step 2/2"),
        "{detail}"
    );
    assert!(
        detail.contains("20.0% (20 of 100)"),
        "the comparison is in the journal: {detail}"
    );
    // Every new request goes to blue again; green drained and waits as
    // the standby.
    assert_eq!(
        servers(&sim),
        [
            server("blue", 100, State::Ready),
            server("green", 0, State::Ready)
        ]
    );
    assert_eq!(lab.primary().as_deref(), Some("blue"));
    // Only the first step's weights were ever set.
    assert_eq!(
        balancer_ops(&lab)
            .iter()
            .filter(|(s, c)| s == "ramp" && c.contains("set server"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_ramp_is_refused_on_a_pair_that_no_balancer_splits() {
    let lab = Lab::new(&super::testkit::vip(""), "");
    let sim = lab.sim();
    let f = lab
        .run_with(&sim, Some(Kind::Apply), Some("v2"), |r| {
            r.ramp = Some(ramp("10,100"));
        })
        .await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    assert!(
        f.message.contains("--ramp needs a balancer"),
        "{}",
        f.message
    );
    assert!(lab.steps().is_empty() || lab.step_marks() == ["preflight!"]);
}

#[tokio::test]
async fn recover_after_a_ramp_cut_off_takes_the_share_back_and_rolls_back() {
    use crate::core::cycle::Step;
    let lab = lb_lab();
    let sim = lab.sim();
    let died = Died {
        ramp: Some(ramp("10,50,100")),
        ..Died::apply()
    };
    lab.interrupted(
        &died,
        &[Step::Preflight, Step::ApplyStandby, Step::VerifyStandby],
        Some(Step::Ramp),
    );
    sim.lock()
        .servers
        .insert("green".into(), (50, State::Ready));
    sim.lock().servers.insert("blue".into(), (50, State::Ready));
    let f = lab.run(&sim, None, None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(
        servers(&sim),
        [
            server("blue", 100, State::Ready),
            server("green", 0, State::Ready)
        ]
    );
}

#[tokio::test]
async fn sessions_that_outlast_the_drain_timeout_are_named_and_the_run_goes_on() {
    let lab = lb_lab();
    let sim = lab.sim();
    sim.fault(None, "has no current sessions", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let (detail, ok) = lab.ended(crate::core::cycle::Step::Drain);
    assert!(ok);
    assert!(
        detail.contains("did not drain") && detail.contains("going on"),
        "{detail}"
    );
    // The old server still becomes the standby.
    assert_eq!(servers(&sim)[0], server("blue", 0, State::Ready));
}

/// `baton plan` (also with `--ramp`) prints the balancer's operations the
/// run then performs, in order.
#[tokio::test]
async fn the_plan_of_a_balanced_pair_is_what_its_run_performs_ramped_or_not() {
    use crate::core::op::OpKind;
    for r in [None, Some(ramp("10,50,100"))] {
        for (kind, change) in [(Kind::Apply, Some("v2")), (Kind::Switchover, None)] {
            let lab = lb_lab();
            let pair = lab.pair();
            let plan = crate::cli::plan::build_with(
                pair,
                kind,
                (&pair.hosts[0], &pair.hosts[1]),
                change.map(|c| &pair.changes[c]),
                None,
                r.as_ref(),
            );
            let sim = lab.sim();
            let f = lab
                .run_with(&sim, Some(kind), change, |req| req.ramp = r.clone())
                .await;
            assert_eq!(f.outcome, Outcome::Ok, "{kind:?} {r:?}: {}", f.message);
            let ran: Vec<(String, String, OpKind, String)> = lab.ops();
            assert_eq!(plan.ops(), ran, "{kind:?} {r:?}");
            let ramped = ran.iter().any(|(s, ..)| s == "ramp");
            assert_eq!(ramped, r.is_some() && kind == Kind::Apply);
        }
    }
}
