//! Plan equals run, against the lab's real servers: after a successful
//! `apply` (and `switchover`), the operations the journal records are
//! exactly those `baton plan --json` printed just before, in the same
//! order, compared through `baton log --run ID --json`: a VIP pair with and
//! without `quiesce` and `batch` and with `handover = "overlap"` (and the
//! dual-stack web6 in the default overlap), a DNS pair with and without
//! `switch_ttl`, and a command pair.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// (step, host, op, command) of every JSON line.
fn ops(stdout: &str) -> Vec<(String, String, String, String)> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("no `{k}` in {l}"))
                    .to_string()
            };
            (s("step"), s("host"), s("op"), s("command"))
        })
        .collect()
}

/// The id of the last run in a pair's journal.
fn last_run(state: &Path, pair: &str) -> String {
    journal(state, pair)
        .into_iter()
        .rev()
        .find(|r| r["event"] == "start")
        .and_then(|r| r["run"].as_str().map(str::to_string))
        .expect("a run in the journal")
}

/// Plans `args` (`apply PAIR --change v2` or `switchover PAIR`), runs it,
/// and compares the plan with the run's log.
fn plan_equals_run(cfg: &Path, state: &Path, pair: &str, change: Option<&str>) {
    let mut plan_args = vec!["--json", "plan", pair];
    let mut run_args = match change {
        Some(c) => vec!["apply", pair, "--change", c],
        None => vec!["switchover", pair],
    };
    if let Some(c) = change {
        plan_args.extend(["--change", c]);
    }
    run_args.extend(["--reason", "plan equals run"]);
    let plan = baton(cfg, &plan_args);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let planned = ops(&plan.stdout);
    assert!(planned.len() > 3, "{planned:#?}");
    let run = baton(cfg, &run_args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let id = last_run(state, pair);
    let log = baton(cfg, &["--json", "log", pair, "--run", &id]);
    assert_eq!(log.code, 0, "{}\n{}", log.stdout, log.stderr);
    let ran = ops(&log.stdout);
    assert_eq!(
        planned, ran,
        "{pair} {change:?}: the plan and the run differ\nplan: {planned:#?}\nrun: {ran:#?}"
    );
}

#[test]
fn a_vip_pair_runs_what_it_planned() {
    let _lab = lab();
    let state = Path::new(LAB).join("state");
    plan_equals_run(&lab_config(), &state, "web", Some("v2"));
    plan_equals_run(&lab_config(), &state, "web", None);
}

#[test]
fn a_vip_pair_with_quiesce_runs_what_it_planned() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| add_traffic_keys(&t, "quiesce = \"50ms\"\n"));
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    plan_equals_run(&cfg, &state, "web", Some("v2"));
    plan_equals_run(&cfg, &state, "web", None);
}

#[test]
fn a_vip_pair_with_the_overlap_handover_runs_what_it_planned() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| {
        add_traffic_keys(&t, "handover = \"overlap\"\noverlap = \"200ms\"\n")
    });
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    plan_equals_run(&cfg, &state, "web", Some("v2"));
    plan_equals_run(&cfg, &state, "web", None);
}

#[test]
fn a_dual_stack_vip_pair_in_the_overlap_runs_what_it_planned() {
    // web6: an IPv6 VIP on hosts reached over IPv4; the plan asks the old
    // holder for its addresses, as the run does, for the hand-back's target.
    let _lab = lab();
    let state = Path::new(LAB).join("state");
    plan_equals_run(&lab_config(), &state, "web6", None);
    let plan = baton(&lab_config(), &["plan", "web6"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains(
            "add element ip6 baton handback { fd00:198:18::160 timeout 3000ms : fd00:198:18::16 }"
        ),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_vip_pair_without_batch_runs_what_it_planned() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| add_traffic_keys(&t, "batch = false\n"));
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    plan_equals_run(&cfg, &state, "web", Some("v2"));
    plan_equals_run(&cfg, &state, "web", None);
}

#[test]
fn a_dns_pair_runs_what_it_planned() {
    let _lab = lab();
    let state = Path::new(LAB).join("state");
    plan_equals_run(&lab_config(), &state, "api", Some("v2"));
    plan_equals_run(&lab_config(), &state, "api", None);
}

#[test]
fn a_dns_pair_with_switch_ttl_runs_what_it_planned() {
    let _lab = lab();
    let dir = with_pair("api.toml", |t| {
        add_traffic_keys(&t, "switch_ttl = \"1s\"\n")
    });
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    plan_equals_run(&cfg, &state, "api", None);
    // The plan shows the real TTL the zone's primary serves, and the
    // lowering one TTL ahead.
    let plan = baton(&cfg, &["plan", "api"]);
    assert!(
        plan.stdout
            .contains("the record's TTL on the zone's primary: 5s"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("wait 5s (the old TTL)"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_command_pair_runs_what_it_planned() {
    let _lab = lab();
    let dir = custom_config(|_, t| t);
    let holder = command_pair(dir.path());
    let cfg = dir.path().join("baton.toml");
    let state = dir.path().join("state");
    plan_equals_run(&cfg, &state, "hooks", Some("v2"));
    assert_eq!(fs::read_to_string(&holder).unwrap(), "green\n");
    plan_equals_run(&cfg, &state, "hooks", None);
    assert_eq!(fs::read_to_string(&holder).unwrap(), "blue\n");
}

/// A pair with role hooks (PostgreSQL): the hand-over's hooks and the
/// catch-up are operations like the others.
#[test]
fn the_postgresql_pair_runs_what_it_planned() {
    let _lab = lab();
    let state = Path::new(LAB).join("state");
    plan_equals_run(&lab_config(), &state, "pg", Some("conn200"));
    plan_equals_run(&lab_config(), &state, "pg", None);
}
