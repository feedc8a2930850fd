//! `baton plan`: the dry run. For each pair, the steps the cycle would take
//! (from `core::cycle::sequence`), the exact commands on each host, the DNS
//! update, the checks, and what happens on failure. It reads the recorded
//! roles; only when none are recorded does it ask the hosts who holds
//! traffic. It never changes anything.

use serde::Serialize;

use crate::change;
use crate::config::{Change, CheckKind, Config, Host, Pair, Traffic};
use crate::core::assess::{self, Holder};
use crate::core::cycle::{sequence, Kind, Step};
use crate::core::gate::{Decision, Member};
use crate::exit::Exit;
use crate::history;
use crate::observe;
use crate::quote;
use crate::store::state::StateStore;

#[derive(Serialize)]
struct PlannedStep {
    step: &'static str,
    host: String,
    actions: Vec<String>,
}

/// The plan of one run on one pair: what [`build`] makes of the
/// configuration alone, without the network or the state directory (the
/// environment gate and the maintenance window are filled in by `run`).
#[derive(Serialize)]
pub struct Plan {
    pair: String,
    kind: Kind,
    from: String,
    to: String,
    change: Option<String>,
    hash: Option<String>,
    gate: Option<String>,
    window: Option<String>,
    steps: Vec<PlannedStep>,
    on_failure: Vec<String>,
}

/// Prints the plan of `kind` for every configured pair.
pub async fn run(
    config: &Config,
    kind: Kind,
    change_name: Option<&str>,
    members: &[Member],
    json: bool,
) -> Exit {
    let store = StateStore::new(&config.settings.state_dir);
    let mut worst = Exit::Ok;
    for pair in config.pairs.values() {
        let from = match store.load(&pair.name) {
            Ok(Some(s)) => s.primary,
            Ok(None) => match assess::assess(&observe::observe(pair).await.seen).holder {
                Holder::Host(h) => h,
                other => {
                    eprintln!("baton: {}: nothing recorded and traffic is unclear ({other:?}); see `baton status`", pair.name);
                    worst = worst.worst(Exit::Operator);
                    continue;
                }
            },
            Err(e) => {
                eprintln!("baton: {e}");
                worst = worst.worst(Exit::Internal);
                continue;
            }
        };
        let (Some(from), Some(to)) = (pair.host(&from), pair.other(&from)) else {
            eprintln!(
                "baton: {}: the recorded primary `{from}` is not one of its hosts",
                pair.name
            );
            worst = worst.worst(Exit::Operator);
            continue;
        };
        let change = change_name.and_then(|n| pair.changes.get(n));
        let mut plan = build(pair, kind, from, to, change);
        if let (Kind::Apply, Some(hash)) = (kind, &plan.hash) {
            let s = &config.settings;
            plan.gate = Some(
                match history::decide(
                    &s.state_dir,
                    &s.environments,
                    s.soak,
                    members,
                    &pair.environment,
                    hash,
                ) {
                    Ok(Decision::Open(why)) => format!("open: {why}"),
                    Ok(Decision::Closed(why)) => format!(
                        "CLOSED: {why}; `apply` would refuse unless --skip-gate --reason TEXT"
                    ),
                    Err(e) => format!("unknown: {e}"),
                },
            );
        }
        if crate::windows::applies_to(kind) {
            let v = crate::windows::check(&config.settings.state_dir, pair, kind);
            plan.window = Some(if v.allowed {
                format!("open: {}", v.text)
            } else {
                format!(
                    "CLOSED: {}; `{}` would refuse unless --ignore-window --reason TEXT",
                    v.text,
                    kind.name()
                )
            });
        }
        if json {
            crate::outln!("{}", serde_json::to_string(&plan).unwrap_or_default());
        } else {
            print(&plan);
        }
    }
    worst
}

/// The planned steps of a run of `kind` on `pair` moving traffic from
/// `from` to `to`, with `change` for an apply: pure apart from reading the
/// sizes and contents of the change's upload files (for the hash); never
/// touches the network. The configuration mutation test calls it on every
/// configuration it accepts.
pub fn build(pair: &Pair, kind: Kind, from: &Host, to: &Host, change: Option<&Change>) -> Plan {
    let steps = sequence(kind)
        .into_iter()
        .map(|step| {
            let (host, actions) = match step {
                Step::Preflight => (
                    format!("{},{}", from.name, to.name),
                    vec![
                        format!("connect to {} and {} over SSH as {}, host keys checked against {}", target(from), target(to), pair.ssh.user, pair.ssh.known_hosts.display()),
                        format!("confirm traffic is on {} and nothing drifted; every check passes on both hosts", from.name),
                    ],
                ),
                Step::ApplyStandby => (to.name.clone(), change_actions(change, false)),
                Step::ApplyOldPrimary => (from.name.clone(), change_actions(change, false)),
                Step::RollbackStandby => (to.name.clone(), change_actions(change, true)),
                Step::VerifyStandby => (to.name.clone(), checks(pair, to, &to.name)),
                Step::VerifyOldPrimary => (from.name.clone(), checks(pair, from, &from.name)),
                Step::Switch | Step::SwitchBack => (format!("{}->{}", from.name, to.name), switch_actions(pair, from, to, kind)),
                Step::VerifyService => {
                    let service = match &pair.traffic {
                        Traffic::Vip(v) => v.address,
                        _ => to.address,
                    };
                    let through = Host {
                        name: to.name.clone(),
                        address: service,
                        ssh_port: to.ssh_port,
                    };
                    let mut a = checks(pair, &through, &to.name);
                    a.push(format!("repeated for {} through {service}: every answer must come from {}", humantime::format_duration(pair.observe_period), to.name));
                    (format!("service->{}", to.name), a)
                }
                Step::Drain => (
                    from.name.clone(),
                    vec![match &pair.traffic {
                        Traffic::Dns(_) => "wait the record's TTL (read from the authoritative answer)".to_string(),
                        _ => "nothing to wait for".to_string(),
                    }],
                ),
                Step::Fence => {
                    let mut a = Vec::new();
                    if let Some(f) = &pair.fence {
                        a.push(format!("local: {}", crate::fence::fill(f, from)));
                    }
                    match &pair.traffic {
                        Traffic::Vip(v) => {
                            a.push(format!("if {} answers over SSH: remove {v} from it (`ip addr del {v} dev {}`)", from.name, v.interface));
                            a.push(format!("otherwise, on {}: {} — no other host may answer for {} (else stop: split brain)", to.name, crate::fence::probe_line(v), v.address));
                        }
                        _ if a.is_empty() => a.push(format!("nothing to fence: the {} switch moves traffic away from {}", pair.traffic.method(), from.name)),
                        _ => {}
                    }
                    (from.name.clone(), a)
                }
                Step::Release => (
                    to.name.clone(),
                    vec![match &pair.traffic {
                        Traffic::Vip(v) => format!("if {} holds {v}: remove it (`ip addr del {v} dev {}`); the fence command is never run on a rejoining host", to.name, v.interface),
                        _ => format!("confirm that traffic is on {} alone; the fence command is never run on a rejoining host", from.name),
                    }],
                ),
            };
            PlannedStep { step: step.name(), host, actions }
        })
        .collect();
    let on_failure = match kind {
        Kind::Apply => vec![
            format!("apply_standby or verify_standby fails: rollback_standby on {}; traffic stays on {}", to.name, from.name),
            format!("switch or verify_service fails: switch_back to {}, then rollback_standby on {}", from.name, to.name),
            format!("apply_old_primary or verify_old_primary fails: INCOMPLETE, traffic stays on {}", to.name),
        ],
        Kind::Switchover => vec![format!("switch or verify_service fails: switch_back to {}", from.name)],
        Kind::Failover | Kind::Rejoin | Kind::Restore => vec!["any failure stops the run for an operator".to_string()],
    };
    Plan {
        pair: pair.name.clone(),
        kind,
        from: from.name.clone(),
        to: to.name.clone(),
        change: change.map(|c| c.name.clone()),
        hash: change.and_then(|c| change::hash(c).ok()),
        gate: None,
        window: None,
        steps,
        on_failure,
    }
}

fn target(h: &Host) -> String {
    format!("{} ({}:{})", h.name, h.address, h.ssh_port)
}

fn change_actions(change: Option<&Change>, rollback: bool) -> Vec<String> {
    let Some(c) = change else {
        return vec!["no change".to_string()];
    };
    if rollback {
        if c.rollback.is_empty() {
            return vec!["the change has no rollback steps".to_string()];
        }
        return c.rollback.iter().map(|s| format!("$ {s}")).collect();
    }
    let mut out = Vec::new();
    for u in &c.upload {
        let size = std::fs::metadata(&u.from).map(|m| m.len()).unwrap_or(0);
        out.push(format!(
            "keep {} as {}.baton-prev (if it exists)",
            u.to, u.to
        ));
        out.push(format!(
            "upload {} ({size} bytes) to {} mode {:04o}, atomically",
            u.from.display(),
            u.to,
            u.mode
        ));
    }
    out.extend(c.steps.iter().map(|s| format!("$ {s}")));
    out
}

fn checks(pair: &Pair, target: &Host, expected: &str) -> Vec<String> {
    let host = Host {
        name: expected.to_string(),
        ..target.clone()
    };
    pair.checks
        .iter()
        .map(|c| {
            let what = match &c.kind {
                CheckKind::Http {
                    url,
                    expect_status,
                    expect_body,
                    ..
                } => format!(
                    "GET {} expecting {expect_status}{}",
                    crate::checks::fill(url, &host, true),
                    expect_body
                        .as_ref()
                        .map(|b| format!(
                            " and a body containing {:?}",
                            crate::checks::fill(b, &host, false)
                        ))
                        .unwrap_or_default()
                ),
                CheckKind::Tcp { port } => format!("TCP connect to {}:{port}", host.address),
                CheckKind::Dns {
                    query,
                    record_type,
                    server,
                    expect,
                } => format!(
                    "ask {} for {query} {record_type}, expecting {}",
                    crate::checks::fill(server, &host, false),
                    crate::checks::fill(expect, &host, false)
                ),
                CheckKind::Command {
                    command,
                    expect_output,
                } => format!(
                    "on {expected}: $ {}{}",
                    crate::checks::fill(command, &host, false),
                    expect_output
                        .as_ref()
                        .map(|e| format!(" (output must contain {e:?})"))
                        .unwrap_or_default()
                ),
            };
            format!(
                "check {}: {what}; {} success(es) needed, {} failure(s) allowed, every {}",
                c.name,
                c.successes,
                c.failures_allowed,
                humantime::format_duration(c.interval)
            )
        })
        .collect()
}

fn switch_actions(pair: &Pair, from: &Host, to: &Host, kind: Kind) -> Vec<String> {
    let sudo = if pair.ssh.sudo { "sudo -n " } else { "" };
    match &pair.traffic {
        Traffic::Vip(v) => {
            let cidr = v.to_string();
            let mut a = Vec::new();
            if kind != Kind::Failover {
                a.push(format!("confirm {} holds {cidr} and {} does not", from.name, to.name));
                let batch = "ip -o -batch - so that its command below is one line to a running ip (if sudo refuses it, it runs as shown)";
                match v.quiesce {
                    None if v.batch => a.push(format!("on {} and {}: start {sudo}{batch}", from.name, to.name)),
                    None => {}
                    Some(q) => {
                        let ms = (q + crate::quiesce::LAPSE).as_millis();
                        a.push(format!("on {}: {sudo}nft -f - (end any hold on new connections to {} left there)", to.name, v.address));
                        if v.batch {
                            a.push(format!("on {}: start {sudo}{batch}", to.name));
                        }
                        a.push(format!("on {}: {sudo}nft -f - (baton's table inet baton drops SYNs to {} for {ms}ms at most): no new connection starts there", from.name, v.address));
                        if v.batch {
                            a.push(format!("on {}: start {sudo}{batch}", from.name));
                        }
                        a.push(format!("wait until {} after the hold began: the open connections finish", humantime::format_duration(q)));
                    }
                }
                a.push(format!("on {}: {sudo}{}", from.name, quote::join(&["ip", "addr", "del", &cidr, "dev", &v.interface])));
            }
            if kind == Kind::Failover && v.quiesce.is_some() {
                a.push(format!("on {}: {sudo}nft -f - (end any hold on new connections to {} left there; best effort)", to.name, v.address));
            }
            a.push(format!("on {}: {sudo}{}", to.name, quote::join(&["ip", "addr", "add", &cidr, "dev", &v.interface])));
            a.push(format!("on {}: {sudo}arping -U -c {} -I {} {} (in the background)", to.name, v.arp_count, v.interface, v.address));
            a.push(format!("confirm exactly {} holds {cidr}", to.name));
            a
        }
        Traffic::Dns(d) => vec![
            format!(
                "UPDATE to {} for zone {}, signed with TSIG key {} ({}): prerequisite {} A {} exists exactly; delete {} A {}; add {} TTL A {} (TTL kept)",
                d.servers[0],
                d.zone,
                d.tsig_key.name,
                d.tsig_key.algorithm.name(),
                d.name,
                from.address,
                d.name,
                from.address,
                d.name,
                to.address
            ),
            format!(
                "ask {} directly until all answer {} ({} at most, else switch back)",
                d.servers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
                to.address,
                humantime::format_duration(d.propagation_timeout)
            ),
        ],
        Traffic::Command(c) => vec![
            format!(
                "local: {}",
                c.switch
                    .replace("{from}", &quote::quote(&from.name))
                    .replace("{to}", &quote::quote(&to.name))
                    .replace("{from_address}", &quote::quote(&from.address.to_string()))
                    .replace("{to_address}", &quote::quote(&to.address.to_string()))
            ),
            format!("local: {} must print {}", c.query, to.name),
        ],
    }
}

fn print(plan: &Plan) {
    crate::outln!(
        "plan for {}: {:?} from {} to {}{}",
        plan.pair,
        plan.kind,
        plan.from,
        plan.to,
        match (&plan.change, &plan.hash) {
            (Some(c), Some(h)) => format!(", change {c} (hash {h})"),
            _ => String::new(),
        }
    );
    if let Some(g) = &plan.gate {
        crate::outln!("  environment gate: {g}");
    }
    if let Some(w) = &plan.window {
        crate::outln!("  maintenance window: {w}");
    }
    for (i, s) in plan.steps.iter().enumerate() {
        crate::outln!("  {i}. {} [{}]", s.step, s.host);
        for a in &s.actions {
            crate::outln!("       {a}");
        }
    }
    crate::outln!("  on failure:");
    for f in &plan.on_failure {
        crate::outln!("       {f}");
    }
    crate::outln!("  nothing was changed.");
}
