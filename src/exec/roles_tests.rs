//! Whole runs of a pair with role hooks (`[roles]`) through the simulated
//! world: the hand-over's order, every failure before and after `promote`,
//! failover with and without a position to compare, rejoin, and recover
//! from an interrupted hand-over. After every run at most one host takes
//! writes; the lab suite (`tests/lab_roles.rs`) proves the same against
//! PostgreSQL.

use super::sim::{Effect, Sim};
use super::testkit::{self, Lab};
use crate::core::cycle::{Kind, Outcome, Step};
use crate::core::op::OpKind;
use crate::core::position::RoleState;
use crate::store::journal::Record;
use crate::store::state::{SeenPosition, StateStore};

fn roles_lab(extra: &str) -> Lab {
    Lab::new(
        &format!("{}{}", testkit::vip(""), testkit::roles(extra)),
        "",
    )
}

/// A roles pair whose VIP moves in the classic order (its faults are
/// injected into the remove and the add).
fn classic_roles_lab() -> Lab {
    Lab::new(
        &format!("{}{}", testkit::vip(testkit::CLASSIC), testkit::roles("")),
        "",
    )
}

fn writable(sim: &Sim) -> Vec<String> {
    sim.lock().writable()
}

fn role(sim: &Sim, host: &str) -> RoleState {
    sim.lock()
        .hosts
        .iter()
        .find(|h| h.name == host)
        .map(|h| h.role)
        .expect("a host of the pair")
}

/// The detail the journal keeps of `step`'s end in the last run.
fn ended_detail(lab: &Lab, step: Step) -> String {
    lab.ended(step).0
}

#[tokio::test]
async fn a_switchover_demotes_waits_for_the_standby_promotes_then_moves_traffic_and_follows() {
    let lab = roles_lab("");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "verify_standby",
            "demote",
            "catch_up",
            "promote",
            "switch",
            "verify_service",
            "drain",
            "follow",
            "verify_old_primary"
        ]
    );
    assert_eq!(writable(&sim), ["green"]);
    assert_eq!(role(&sim, "blue"), RoleState::Standby);
    assert_eq!(sim.holders("198.51.100.100".parse().unwrap()), ["green"]);
    assert_eq!(lab.primary().as_deref(), Some("green"));
    // The hooks ran where they must, filled for their host and its peer.
    let ops: Vec<(String, String, OpKind, String)> = lab
        .ops()
        .into_iter()
        .filter(|(_, _, k, c)| c.starts_with("db-role") || *k == OpKind::CatchUp)
        .collect();
    let brief: Vec<String> = ops
        .iter()
        .map(|(s, h, _, c)| format!("{s}@{h}: {}", c.split(" every").next().unwrap_or(c)))
        .collect();
    assert_eq!(
        brief,
        [
            "demote@blue: db-role demote",
            "catch_up@blue: db-role position",
            "catch_up@green: run `db-role position`",
            "promote@green: db-role promote",
            "promote@green: db-role position",
            "follow@blue: db-role follow 198.51.100.12",
            "follow@blue: db-role position",
        ]
    );
    // The journal says which position the standby reached.
    let caught = ended_detail(&lab, Step::CatchUp);
    assert!(caught.contains("0 behind 0/3000078"), "{caught}");
}

#[tokio::test]
async fn an_apply_updates_the_standby_hands_the_role_over_then_updates_the_old_primary_as_a_standby(
) {
    let lab = roles_lab("");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "demote",
            "catch_up",
            "promote",
            "switch",
            "verify_service",
            "drain",
            "follow",
            "apply_old_primary",
            "verify_old_primary"
        ]
    );
    assert_eq!(writable(&sim), ["green"]);
}

/// A replicated pair's way back from a change (holds are not offered for
/// it): a fleet rollback's run, a whole cycle with the role hand-over,
/// whose change is the rollback on each host in turn.
#[tokio::test]
async fn a_rollback_run_hands_the_role_over_and_takes_the_change_back_on_both_hosts() {
    let lab = roles_lab("");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(writable(&sim), ["green"]);
    let f = lab
        .run_with(&sim, Some(Kind::Apply), Some("v2"), |r| r.reverse = true)
        .await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(writable(&sim), ["blue"], "handed back, one writable host");
    assert_eq!(role(&sim, "green"), RoleState::Standby);
    for (step, host) in [("apply_standby", "blue"), ("apply_old_primary", "green")] {
        let ops: Vec<String> = lab
            .ops()
            .into_iter()
            .rev()
            .take_while(|(s, ..)| s != "preflight")
            .filter(|(s, h, ..)| s == step && h == host)
            .map(|(.., c)| c)
            .collect();
        assert!(
            ops.iter().any(|c| c.contains("site.conf.baton-prev")),
            "{step} on {host} rolled the change back: {ops:?}"
        );
        assert!(!ops.iter().any(|c| c.contains("deploy v2")), "{ops:?}");
    }
}

#[tokio::test]
async fn a_standby_that_does_not_catch_up_is_never_promoted_and_the_old_primary_resumes() {
    let lab = roles_lab("max_lag = 0\n");
    let sim = lab.sim();
    sim.lock().hosts[1].behind = 4096;
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "apply_standby",
            "verify_standby",
            "demote",
            "catch_up!",
            "resume",
            "rollback_standby"
        ]
    );
    assert_eq!(writable(&sim), ["blue"]);
    assert_eq!(role(&sim, "green"), RoleState::Standby);
    assert_eq!(sim.holders("198.51.100.100".parse().unwrap()), ["blue"]);
    assert_eq!(lab.primary().as_deref(), Some("blue"));
}

#[tokio::test]
async fn within_max_lag_a_standby_that_is_slightly_behind_is_promoted() {
    let lab = roles_lab("max_lag = 8192\n");
    let sim = lab.sim();
    sim.lock().hosts[1].behind = 4096;
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(writable(&sim), ["green"]);
}

#[tokio::test]
async fn a_demote_that_fails_resumes_the_old_primary_and_nothing_moves() {
    let lab = roles_lab("");
    let sim = lab.sim();
    sim.fault(Some("blue"), "db-role demote", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        ["preflight", "verify_standby", "demote!", "resume"]
    );
    assert_eq!(writable(&sim), ["blue"]);
}

#[tokio::test]
async fn after_promote_nothing_goes_back_to_the_old_primary() {
    // A failed promote, switch or verification of the service: the old
    // primary stays demoted, for an operator.
    for (host, piece) in [
        ("green", "db-role promote"),
        ("blue", "addr del 198.51.100.100/24"),
        ("controller", "repeat every check"),
    ] {
        let lab = classic_roles_lab();
        let sim = lab.sim();
        let on = (host != "controller").then_some(host);
        // A switch is tried twice: it fails every time here.
        let times = if piece.contains("addr") { 0 } else { 1 };
        sim.fault(on, piece, Effect::Fail, times);
        let f = lab.run(&sim, Some(Kind::Switchover), None).await;
        assert_eq!(f.outcome, Outcome::Operator, "{piece}: {}", f.message);
        assert_ne!(role(&sim, "blue"), RoleState::Primary, "{piece}");
        assert!(writable(&sim).len() <= 1, "{piece}");
        assert!(
            !lab.step_marks()
                .iter()
                .any(|s| s == "resume" || s == "switch_back"),
            "{piece}: {:?}",
            lab.step_marks()
        );
    }
}

#[tokio::test]
async fn a_hook_that_returns_before_its_host_changed_role_fails_its_step() {
    // promote exits 0, but the standby still says `standby`.
    let lab = roles_lab("");
    let sim = lab.sim();
    sim.fault(Some("green"), "db-role promote", Effect::Ignored, 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    assert!(
        lab.step_marks().contains(&"promote!".to_string()),
        "{:?}",
        lab.step_marks()
    );
    assert_eq!(role(&sim, "blue"), RoleState::Stopped);
    assert_eq!(role(&sim, "green"), RoleState::Standby);
    // follow exits 0, but the old primary is still stopped: incomplete.
    let lab = roles_lab("");
    let sim = lab.sim();
    sim.fault(Some("blue"), "db-role follow", Effect::Ignored, 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Incomplete, "{}", f.message);
    assert_eq!(writable(&sim), ["green"]);
}

#[tokio::test]
async fn after_promote_a_switch_that_fails_once_is_tried_again_and_goes_forward() {
    let lab = classic_roles_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "addr add 198.51.100.100/24", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let s = lab.step_marks();
    assert_eq!(
        s.iter().filter(|s| s.starts_with("switch")).count(),
        2,
        "{s:?}"
    );
    assert_eq!(writable(&sim), ["green"]);
    assert_eq!(sim.holders("198.51.100.100".parse().unwrap()), ["green"]);
}

#[tokio::test]
async fn an_old_primary_that_does_not_follow_is_fenced_with_the_fence_command() {
    let lab = Lab::new(
        &format!("{}{}", testkit::vip(""), testkit::roles("")),
        "fence = \"power-off {host}\"\n",
    );
    let sim = lab.sim();
    sim.fault(Some("blue"), "db-role follow", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Incomplete, "{}", f.message);
    assert_eq!(lab.step_marks().last().map(String::as_str), Some("fence"));
    let fenced: Vec<_> = lab
        .ops()
        .into_iter()
        .filter(|(s, _, k, _)| s == "fence" && *k == OpKind::Hook)
        .map(|(_, _, _, c)| c)
        .collect();
    assert_eq!(fenced, ["power-off blue"]);
    assert_eq!(writable(&sim), ["green"]);
    // The fence cut blue off (the simulated fence takes it off the network).
    assert!(!sim.lock().hosts[0].up);
}

#[tokio::test]
async fn a_follow_that_fails_leaves_the_run_incomplete_with_the_old_primary_demoted() {
    let lab = roles_lab("");
    let sim = lab.sim();
    sim.fault(Some("blue"), "db-role follow", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Incomplete, "{}", f.message);
    assert_eq!(writable(&sim), ["green"]);
    assert_eq!(role(&sim, "blue"), RoleState::Stopped);
    assert_eq!(lab.primary().as_deref(), Some("green"));
}

/// Every role operation failing once, in a switchover and an apply: never
/// two writable hosts, and never a writable host without traffic after a
/// run that ended well or was rolled back.
#[tokio::test]
async fn no_single_failure_of_a_role_operation_makes_two_writable_primaries() {
    let pieces = [
        ("blue", "db-role demote"),
        ("blue", "db-role position"),
        ("green", "db-role position"),
        ("green", "db-role promote"),
        ("blue", "db-role follow"),
        ("blue", "db-role resume"),
        ("green", "deploy v2"),
        ("blue", "deploy v2"),
    ];
    for kind in [Kind::Switchover, Kind::Apply] {
        for (host, piece) in pieces {
            for effect in [Effect::Fail, Effect::Vanishes] {
                let lab = roles_lab("");
                let sim = lab.sim();
                sim.fault(Some(host), piece, effect.clone(), 1);
                let change = (kind == Kind::Apply).then_some("v2");
                let f = lab.run(&sim, Some(kind), change).await;
                let w = writable(&sim);
                assert!(w.len() <= 1, "{kind:?} {piece} {effect:?}: {w:?}");
                if matches!(
                    f.outcome,
                    Outcome::Ok | Outcome::RolledBack | Outcome::Incomplete
                ) {
                    let holders = sim.holders("198.51.100.100".parse().unwrap());
                    assert_eq!(w, holders, "{kind:?} {piece} {effect:?}: {}", f.message);
                }
            }
        }
    }
}

fn seen(lab: &Lab, position: &str) {
    StateStore::new(&lab.state_dir())
        .save_position(
            "web",
            &SeenPosition {
                host: "blue".into(),
                position: position.into(),
                at: "2026-11-30T00:00:00Z".into(),
            },
        )
        .expect("the position is saved");
}

fn dead_primary(sim: &Sim) {
    let mut s = sim.lock();
    s.hosts[0].ssh = false;
    s.hosts[0].up = false;
}

#[tokio::test]
async fn a_failover_promotes_a_standby_within_max_lag_on_failover_of_the_last_position_seen() {
    let lab = roles_lab("max_lag_on_failover = 1024\n");
    let sim = lab.sim();
    // Last seen 512 bytes past what the standby has.
    seen(&lab, "0/3000200");
    dead_primary(&sim);
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        [
            "preflight",
            "verify_standby",
            "fence",
            "catch_up",
            "promote",
            "switch",
            "verify_service"
        ]
    );
    assert_eq!(writable(&sim), ["green"]);
    assert_eq!(lab.failed().as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_failover_refuses_to_promote_a_standby_too_far_behind_unless_the_loss_is_accepted() {
    for (position, accept, outcome) in [
        ("0/3100000", false, Outcome::Operator),
        ("0/3100000", true, Outcome::Ok),
        // Never seen: the loss is unknown.
        ("", false, Outcome::Operator),
        ("", true, Outcome::Ok),
    ] {
        let lab = roles_lab("max_lag_on_failover = 1024\n");
        let sim = lab.sim();
        if !position.is_empty() {
            seen(&lab, position);
        }
        dead_primary(&sim);
        let f = lab
            .run_with(&sim, Some(Kind::Failover), None, |r| {
                r.accept_data_loss = accept;
            })
            .await;
        assert_eq!(f.outcome, outcome, "{position} {accept}: {}", f.message);
        let promoted = role(&sim, "green") == RoleState::Primary;
        assert_eq!(promoted, accept, "{position} {accept}");
        if !accept {
            assert!(
                f.message.contains("catch_up")
                    || f.message.contains("behind")
                    || f.message.contains("never saw"),
                "{}",
                f.message
            );
        }
        let start = lab.records().into_iter().find_map(|r| match r {
            Record::Start {
                data_loss, roles, ..
            } => Some((data_loss, roles)),
            _ => None,
        });
        let (data_loss, roles) = start.expect("a start record");
        assert!(roles);
        assert_eq!(data_loss.is_some(), accept);
    }
}

#[tokio::test]
async fn a_hand_over_remembers_the_new_primarys_position_for_a_later_failover() {
    let lab = roles_lab("max_lag_on_failover = 1024\n");
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let seen = StateStore::new(&lab.state_dir())
        .load_position("web")
        .expect("readable")
        .expect("remembered");
    assert_eq!(seen.host, "green");
    // green dies: blue (following it) is within the lag of what green
    // wrote, as far as baton saw: the failover promotes it.
    {
        let mut s = sim.lock();
        s.hosts[1].ssh = false;
        s.hosts[1].up = false;
    }
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(writable(&sim), ["blue"]);
}

#[tokio::test]
async fn a_position_seen_when_the_standby_was_primary_is_no_reference_for_a_failover() {
    let lab = roles_lab("");
    let sim = lab.sim();
    StateStore::new(&lab.state_dir())
        .save_position(
            "web",
            &SeenPosition {
                host: "green".into(),
                position: "0/1000".into(),
                at: "2026-11-29T00:00:00Z".into(),
            },
        )
        .expect("saved");
    dead_primary(&sim);
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Operator, "{}", f.message);
    let detail = ended_detail(&lab, Step::CatchUp);
    assert!(
        detail.contains("never saw a replication position of blue"),
        "{detail}"
    );
    assert_eq!(role(&sim, "green"), RoleState::Standby);
}

#[tokio::test]
async fn a_rejoin_makes_the_failed_host_follow_the_new_primary() {
    let lab = roles_lab("");
    let sim = lab.sim();
    seen(&lab, "0/3000000");
    dead_primary(&sim);
    let f = lab.run(&sim, Some(Kind::Failover), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    {
        // Repaired: back on the network, still thinking it is the primary
        // (it crashed as one).
        let mut s = sim.lock();
        s.hosts[0].ssh = true;
        s.hosts[0].up = true;
        s.hosts[0].role = RoleState::Stopped;
    }
    let f = lab.run(&sim, Some(Kind::Rejoin), None).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    assert_eq!(
        lab.step_marks(),
        ["preflight", "release", "follow", "verify_standby"]
    );
    assert_eq!(role(&sim, "blue"), RoleState::Standby);
    assert_eq!(writable(&sim), ["green"]);
    assert_eq!(lab.failed(), None);
}

/// Writes the journal of a switchover with roles from blue to green that
/// ended the steps `done` (all well) and died inside `open`.
fn interrupted(lab: &Lab, done: &[Step], open: Step) {
    let died = testkit::Died {
        kind: Kind::Switchover,
        roles: true,
        ramp: None,
        experiment: None,
        hold: None,
    };
    lab.interrupted(&died, done, Some(open));
}

/// Issue 14: `recover` after the controller died at any point of a
/// hand-over settles on exactly one writable primary, holding traffic.
#[tokio::test]
async fn recover_settles_an_interrupted_hand_over_on_exactly_one_writable_primary() {
    use Step::*;
    let forward = [
        Preflight,
        VerifyStandby,
        Demote,
        CatchUp,
        Promote,
        Switch,
        VerifyService,
        Drain,
        Follow,
        VerifyOldPrimary,
    ];
    for i in 1..forward.len() {
        let (done, open) = (&forward[..i], forward[i]);
        // Each step either had its effect before the controller died, or
        // had not.
        for happened in [false, true] {
            let lab = roles_lab("");
            let sim = lab.sim();
            {
                let mut s = sim.lock();
                let demoted = done.contains(&Demote) || open == Demote && happened;
                let promoted = done.contains(&Promote) || open == Promote && happened;
                let moved = done.contains(&Switch) || open == Switch && happened;
                let followed = done.contains(&Follow) || open == Follow && happened;
                if demoted {
                    s.hosts[0].role = RoleState::Stopped;
                }
                if promoted {
                    s.hosts[1].role = RoleState::Primary;
                }
                if followed {
                    s.hosts[0].role = RoleState::Standby;
                }
                if moved {
                    let vip = "198.51.100.100".parse().unwrap();
                    s.hosts[0].addrs.remove(&vip);
                    s.hosts[1].addrs.insert(vip);
                }
            }
            interrupted(&lab, done, open);
            let f = lab.run(&sim, None, None).await;
            let w = writable(&sim);
            let holders = sim.holders("198.51.100.100".parse().unwrap());
            assert_eq!(
                w.len(),
                1,
                "inside {open:?} ({happened}): {w:?} {}",
                f.message
            );
            assert_eq!(w, holders, "inside {open:?} ({happened}): {}", f.message);
            let expected = if done.contains(&Promote) || open == Promote {
                "green"
            } else {
                "blue"
            };
            assert_eq!(w, [expected], "inside {open:?} ({happened}): {}", f.message);
            // An interrupted verification of the old primary counts as
            // failed, as in a pair without roles: incomplete.
            assert!(
                matches!(f.outcome, Outcome::Ok | Outcome::RolledBack)
                    || open == VerifyOldPrimary && f.outcome == Outcome::Incomplete,
                "inside {open:?} ({happened}): {:?} {}",
                f.outcome,
                f.message
            );
        }
    }
}
