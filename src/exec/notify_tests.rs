//! Notifications of whole runs through the simulated world (what is told,
//! and when: a start after preflight, one end, a refusal without a run, a
//! hold and its decision), and the notifier itself with a real command:
//! the event on stdin, failures and timeouts journaled, bounded in time.
//! `tests/lab_notify.rs` proves the same with a webhook in the lab.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::notify::Notifier;
use super::run::Keep;
use super::sim::Effect;
use super::testkit::{self, Lab};
use crate::core::cycle::{Ended, Kind, Outcome, Step};
use crate::core::notify::{Decision, Event, Trigger};
use crate::store::journal::Record;

fn vip_lab() -> Lab {
    Lab::new(&testkit::vip(""), "")
}

fn events(lab: &Lab) -> Vec<Event> {
    lab.notified.lock().expect("the list").clone()
}

fn triggers(lab: &Lab) -> Vec<Trigger> {
    events(lab).iter().map(|e| e.event).collect()
}

#[tokio::test]
async fn an_apply_tells_its_start_after_preflight_and_its_end_with_the_new_primary() {
    let lab = vip_lab();
    let sim = lab.sim();
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::Ok, "{}", f.message);
    let e = events(&lab);
    assert_eq!(triggers(&lab), [Trigger::Start, Trigger::Ok]);
    let run = e[0].run.clone().expect("a run id");
    assert_eq!(e[1].run.as_deref(), Some(run.as_str()));
    let end = serde_json::to_value(&e[1]).expect("serializes");
    assert_eq!(end["kind"], "apply");
    assert_eq!(end["pair"], "web");
    assert_eq!(end["environment"], "dev");
    assert_eq!(end["operator"], "tester");
    assert_eq!(end["reason"], "test");
    assert_eq!(end["change"]["name"], "v2");
    assert_eq!(
        end["change"]["hash"].as_str().map(str::len),
        Some(16),
        "{end}"
    );
    assert_eq!(end["primary_before"], "blue");
    assert_eq!(end["primary_after"], "green");
    assert_eq!(end["hosts"][0]["name"], "blue");
    assert_eq!(end["hosts"][0]["address"], "198.51.100.11");
    assert_eq!(end["step"], serde_json::Value::Null);
    assert_eq!(end["message"], f.message.as_str());
    assert!(
        end["started"].is_string() && end["ended"].is_string(),
        "{end}"
    );
    assert!(
        e[1].text.starts_with("baton: web apply v2 (hash ")
            && e[1].text.contains(" ok: done: traffic is on green"),
        "{}",
        e[1].text
    );
}

#[tokio::test]
async fn a_change_failing_on_the_standby_tells_rolled_back_and_the_step() {
    let lab = vip_lab();
    let sim = lab.sim();
    sim.fault(Some("green"), "deploy v2", Effect::Fail, 1);
    let f = lab.run(&sim, Some(Kind::Apply), Some("v2")).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    let e = events(&lab);
    assert_eq!(triggers(&lab), [Trigger::Start, Trigger::RolledBack]);
    assert_eq!(e[1].step, Some("apply_standby"));
    assert_eq!(e[1].outcome, Some("rolled_back"));
    assert_eq!(e[1].primary_after.as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_run_refused_by_preflight_tells_only_that_it_did_not_start() {
    let lab = vip_lab();
    let sim = lab.sim();
    // The standby fails its checks: preflight refuses.
    sim.lock().hosts[1].healthy = false;
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    let e = events(&lab);
    assert_eq!(triggers(&lab), [Trigger::NotStarted]);
    assert_eq!(e[0].step, Some("preflight"));
    assert!(e[0].run.is_some());
    assert_eq!(e[0].kind, Some("switchover"));
}

#[tokio::test]
async fn a_hold_tells_held_and_its_revert_tells_the_decision_then_the_end() {
    let lab = vip_lab();
    let sim = lab.sim();
    let f = lab
        .run_with(&sim, Some(Kind::Apply), Some("v2"), |r| {
            r.hold = Some(Duration::from_secs(3600));
        })
        .await;
    assert_eq!(f.outcome, Outcome::Held, "{}", f.message);
    assert_eq!(triggers(&lab), [Trigger::Start, Trigger::Held]);
    // Another run is refused while the pair is held: no run, no start.
    let f = lab.run(&sim, Some(Kind::Switchover), None).await;
    assert_eq!(f.outcome, Outcome::NotStarted, "{}", f.message);
    let refused = events(&lab)[2].clone();
    assert_eq!(refused.event, Trigger::NotStarted);
    assert_eq!(refused.run, None);
    assert_eq!(refused.kind, Some("switchover"));
    assert!(refused.message.contains("holds web"), "{}", refused.message);
    let f = lab.decide(&sim, Keep::Old).await;
    assert_eq!(f.outcome, Outcome::RolledBack, "{}", f.message);
    let e = events(&lab);
    assert_eq!(
        triggers(&lab),
        [
            Trigger::Start,
            Trigger::Held,
            Trigger::NotStarted,
            Trigger::Start,
            Trigger::RolledBack
        ]
    );
    assert_eq!(e[3].decision, Some(Decision::Revert));
    assert_eq!(e[4].decision, Some(Decision::Revert));
    assert_eq!(e[4].run, e[0].run, "the decision goes on with the held run");
    assert_eq!(
        e[4].step, None,
        "a revert is no failure: {:?}",
        e[4].failed_steps
    );
}

/// A notifier with this `[notify]` table on the lab's pair.
fn notifier(lab_dir: &std::path::Path, notify: &str) -> (Lab, Notifier) {
    let lab = Lab::new(&format!("{}\n{notify}\n", testkit::vip("")), "");
    let _ = lab_dir;
    let n = Notifier::for_pair(lab.pair());
    (lab, n)
}

fn start_record(run: &str) -> Record {
    Record::test_start(run)
}

fn request() -> super::run::Request {
    super::run::Request {
        kind: Some(Kind::Apply),
        change: Some("v2".into()),
        reason: Some("test".into()),
        operator: "tester".into(),
        command: "baton test".into(),
        members: vec![],
        skip_gate: false,
        ignore_window: false,
        force: false,
        accept_data_loss: false,
        ramp: None,
        experiment: None,
        decide: None,
        hold: None,
        reverse: false,
    }
}

fn notify_records(lab: &Lab) -> Vec<(String, Trigger, String, bool, String)> {
    lab.records()
        .into_iter()
        .filter_map(|r| match r {
            Record::Notify {
                run,
                about,
                target,
                ok,
                detail,
                ..
            } => Some((run, about, target, ok, detail)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_command_gets_each_event_the_filter_lets_through_and_each_delivery_is_journaled() {
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("events");
    let (lab, n) = notifier(
        out.path(),
        &format!(
            "[notify]\ncommand = \"cat >> {}\"\non = [\"start\", \"rolled_back\"]\n",
            file.display()
        ),
    );
    n.know(&start_record("r1"));
    n.start("r1", None);
    let ended = [
        Ended {
            step: Step::Preflight,
            ok: true,
        },
        Ended {
            step: Step::ApplyStandby,
            ok: true,
        },
        Ended {
            step: Step::VerifyStandby,
            ok: false,
        },
        Ended {
            step: Step::RollbackStandby,
            ok: true,
        },
    ];
    n.end(
        "r1",
        &ended,
        Outcome::RolledBack,
        "failed at verify_standby and undone",
    );
    n.settle(&lab.journal(), &request(), (Outcome::RolledBack, "x"))
        .await;
    let text = std::fs::read_to_string(&file).expect("the command wrote");
    let got: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per event"))
        .collect();
    let mut kinds: Vec<&str> = got.iter().filter_map(|e| e["event"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["rolled_back", "start"], "{text}");
    let end = got
        .iter()
        .find(|e| e["event"] == "rolled_back")
        .expect("the end");
    assert_eq!(end["step"], "verify_standby");
    assert_eq!(end["schema"], 1);
    let records = notify_records(&lab);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records
        .iter()
        .all(|(run, _, target, ok, detail)| run == "r1"
            && target == "command"
            && *ok
            && detail == "exit 0"));
    // `ok` is not in `on`: nothing sent, nothing journaled.
    n.end("r1", &ended, Outcome::Ok, "done");
    n.settle(&lab.journal(), &request(), (Outcome::Ok, "done"))
        .await;
    assert_eq!(notify_records(&lab).len(), 2);
}

#[tokio::test]
async fn a_hanging_command_and_an_unreachable_webhook_are_given_up_at_the_timeout_and_journaled() {
    let out = tempfile::tempdir().expect("tempdir");
    let (lab, n) = notifier(
        out.path(),
        "[notify]\ncommand = \"sleep 60\"\nwebhook = \"http://127.0.0.1:9/hooks/s3cr3t\"\ntimeout = \"300ms\"\n",
    );
    n.know(&start_record("r2"));
    let began = Instant::now();
    n.end("r2", &[], Outcome::Ok, "done");
    n.settle(&lab.journal(), &request(), (Outcome::Ok, "done"))
        .await;
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    let records = notify_records(&lab);
    assert_eq!(records.len(), 2, "{records:?}");
    let command = records.iter().find(|r| r.2 == "command").expect("command");
    assert!(
        !command.3 && command.4.starts_with("timed out after 300ms"),
        "{command:?}"
    );
    let webhook = records
        .iter()
        .find(|r| r.2 == "webhook http://127.0.0.1:9/…")
        .expect("webhook, shown without its path");
    assert!(!webhook.3, "{webhook:?}");
    let journal = std::fs::read_to_string(lab.journal().path()).expect("journal");
    assert!(!journal.contains("s3cr3t"), "{journal}");
}

#[tokio::test]
async fn a_refusal_before_any_run_is_told_once_and_a_plain_recover_is_not() {
    let (lab, _) = notifier(std::path::Path::new("."), "");
    let sink = Arc::default();
    let n = Notifier::recording(lab.pair(), Arc::clone(&sink));
    n.settle(
        &lab.journal(),
        &request(),
        (Outcome::NotStarted, "another run holds web"),
    )
    .await;
    let mut recover = request();
    recover.kind = None;
    let n = Notifier::recording(lab.pair(), Arc::clone(&sink));
    n.settle(
        &lab.journal(),
        &recover,
        (Outcome::Ok, "nothing to recover"),
    )
    .await;
    let got = sink.lock().expect("list").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].event, Trigger::NotStarted);
    assert_eq!(got[0].run, None);
    assert_eq!(got[0].change.as_ref().map(|c| c.name.as_str()), Some("v2"));
}
