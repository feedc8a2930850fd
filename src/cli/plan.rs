//! `baton plan`: the dry run. For each pair, the steps the cycle would take
//! (from `core::cycle::sequence`) and the operations of each: the very step
//! code of a run, performed on a simulation of the pair where nothing fails
//! (`exec::sim`), so each command on each host, each DNS UPDATE in full,
//! each check and each wait is what the run would do. It reads the recorded
//! roles (only when none are recorded does it ask the hosts who holds
//! traffic), for DNS the record's TTL from the zone's primary, and for a
//! VIP moved in the overlap order to a host reached by the other family,
//! the old holder's addresses (the hand-back's target). It never changes
//! anything.

use serde::Serialize;

use crate::cli::exit::Exit;
use crate::config::{Change, Config, Handover, Host, Pair, Traffic};
use crate::core::assess::{self, Holder};
use crate::core::cycle::{sequence_for, Kind, Shape, Step};
use crate::core::gate::{Decision, Member};
use crate::core::op::{Invocation, OpKind, Remote, Rendered};
use crate::core::overlap;
use crate::core::ramp::Ramp;
use crate::exec::change;
use crate::exec::sim::{self, Sim};
use crate::exec::steps::{self, Carry, Cycle};
use crate::exec::{rendered, Exec};
use crate::io::observe;
use crate::io::ssh::{SshHost, Target as SshTarget};
use crate::store::history;
use crate::store::state::StateStore;

#[derive(Serialize)]
struct PlannedStep {
    step: &'static str,
    host: String,
    /// What the step does besides its operations (preflight's observation),
    /// or a note on the simulation.
    notes: Vec<String>,
    ops: Vec<Rendered>,
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
    /// The record's TTL the zone's primary serves (DNS; `None`: not asked,
    /// the plan assumed 300 s).
    ttl: Option<u32>,
    gate: Option<String>,
    window: Option<String>,
    steps: Vec<PlannedStep>,
    on_failure: Vec<String>,
}

/// Prints the plan of `kind` for every configured pair.
pub async fn run(
    config: &Config,
    (kind, change_name, ramp): (Kind, Option<&str>, Option<&Ramp>),
    members: &[Member],
    json: bool,
) -> Exit {
    let backend = match super::open_store(config) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let store = StateStore::of(&backend);
    let mut worst = Exit::Ok;
    for pair in config.pairs.values() {
        let from = match store.load(&pair.name) {
            Ok(Some(s)) => s.primary,
            Ok(None) => match assess::assess(&observe::observe(pair).await.seen).holder {
                Holder::Host(h) => h,
                other => {
                    eprintln!("baton: {}: nothing recorded and who holds traffic is unclear ({other}); see `baton status`", pair.name);
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
        if ramp.is_some() {
            if let Err(why) = crate::exec::run::splittable(pair, "--ramp") {
                eprintln!("baton: {why}");
                worst = worst.worst(Exit::Config);
                continue;
            }
        }
        let ttl = current_ttl(pair).await;
        let shown = shown_addresses(pair, kind, from).await;
        let mut plan = build_seeded(
            pair,
            kind,
            (from, to),
            change,
            (ttl, ramp),
            shown.as_deref(),
        );
        if let (Kind::Apply, Some(hash)) = (kind, &plan.hash) {
            let s = &config.settings;
            plan.gate = Some(
                match history::decide(
                    &backend,
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
        if crate::exec::schedule::applies_to(kind) {
            let v = crate::exec::schedule::check(&backend, pair, kind);
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
            for line in json_lines(&plan) {
                crate::outln!("{line}");
            }
        } else {
            print(&plan);
        }
    }
    worst
}

impl Plan {
    /// Every operation of the plan as (step, host, kind, command).
    pub fn ops(&self) -> Vec<(String, String, OpKind, String)> {
        self.steps
            .iter()
            .flat_map(|s| {
                s.ops
                    .iter()
                    .map(|o| (s.step.to_string(), o.host.clone(), o.op, o.command.clone()))
            })
            .collect()
    }
}

/// The TTL a plan assumes when the zone's primary was not asked.
pub const ASSUMED_TTL: u32 = 300;

/// The planned steps of a run of `kind` on `pair` moving traffic from
/// `from` to `to`, with `change` for an apply: the operations the run's own
/// step code performs against a simulation of the pair in which traffic is
/// on `from`, every check passes and nothing fails (for a failover, `from`
/// is down), the record's TTL being `ttl`. Pure apart from reading the
/// change's upload files (for the hash); never touches the network. The
/// configuration mutation test calls it on every configuration it accepts.
pub fn build(
    pair: &Pair,
    kind: Kind,
    from: &Host,
    to: &Host,
    change: Option<&Change>,
    ttl: Option<u32>,
) -> Plan {
    build_with(pair, kind, (from, to), change, ttl, None)
}

/// As [`build`], for an apply ramped by `ramp` (`plan --ramp`): the ramp
/// step's weights, waits and comparisons before the switch.
pub fn build_with(
    pair: &Pair,
    kind: Kind,
    (from, to): (&Host, &Host),
    change: Option<&Change>,
    ttl: Option<u32>,
    ramp: Option<&Ramp>,
) -> Plan {
    build_seeded(pair, kind, (from, to), change, (ttl, ramp), None)
}

/// As [`build_with`], the old holder's addresses on the VIP's interface
/// being `shown` (`ip -o addr show`, asked by `shown_addresses`): the
/// overlap handover's target when baton reaches that host by the other
/// family, which the run asks it for.
pub fn build_seeded(
    pair: &Pair,
    kind: Kind,
    (from, to): (&Host, &Host),
    change: Option<&Change>,
    (ttl, ramp): (Option<u32>, Option<&Ramp>),
    shown: Option<&str>,
) -> Plan {
    let ramp = ramp.filter(|_| kind == Kind::Apply);
    let sim = Sim::healthy_on(pair, &from.name, ttl.unwrap_or(ASSUMED_TTL));
    {
        let mut s = sim.lock();
        if let (Traffic::Vip(v), Some(text)) = (&pair.traffic, shown) {
            if let overlap::Target::Is(own) =
                overlap::target(from.address, v.address, v.prefix, Some(text))
            {
                if let Some(h) = s.hosts.iter_mut().find(|h| h.name == from.name) {
                    h.addrs.insert(own);
                }
            }
        }
        for h in s.hosts.iter_mut() {
            match kind {
                // The failover's old primary is down: SSH cannot reach it.
                Kind::Failover if h.name == from.name => {
                    h.ssh = false;
                    h.up = false;
                }
                // A restore puts back a VIP that no host holds.
                Kind::Restore => h.addrs.clear(),
                _ => {}
            }
        }
    }
    let cycle = Cycle {
        experiment: None,
        kind,
        from,
        to,
        change,
        hash: None,
        from_reachable: kind != Kind::Failover,
        last_seen: None,
        accept_data_loss: false,
        ramp,
        reverse: false,
    };
    let mut carry = Carry::default();
    let mut steps = Vec::new();
    let hold = pair.hold.filter(|_| kind == Kind::Apply && ramp.is_none());
    for step in sequence_for(
        kind,
        Shape::of(pair.roles.is_some(), ramp.is_some(), false, hold.is_some()),
    ) {
        let (ops, note) = if step == Step::Preflight {
            (Vec::new(), preflight(pair, from, to))
        } else if step == Step::Decide {
            let held = hold.map_or(String::new(), |d| {
                format!(" (the pair's hold: {})", humantime::format_duration(d))
            });
            (
                Vec::new(),
                vec![format!(
                    "HELD{held}: {} stays on the old version; `baton finish {}` goes on with the steps below, `baton revert {}` goes back to it",
                    from.name, pair.name, pair.name
                )],
            )
        } else {
            let mut x = Exec::new(&sim, pair);
            let performed = sim::now(async {
                let r = steps::perform(&mut x, &cycle, step, &mut carry).await;
                if !step.moves_traffic() {
                    steps::report(&mut x, &mut carry).await;
                }
                r
            });
            let note = match performed {
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => vec![format!("(in the simulation this step failed: {e})")],
                None => vec!["(the simulation could not finish this step)".to_string()],
            };
            (rendered(&x.records), note)
        };
        steps.push(PlannedStep {
            step: step.name(),
            host: step.concerns(kind, &from.name, &to.name),
            notes: note,
            ops,
        });
    }
    let mut on_failure = match kind {
        Kind::Apply => vec![
            format!("apply_standby or verify_standby fails: rollback_standby on {}; traffic stays on {}", to.name, from.name),
            format!("switch or verify_service fails: switch_back to {}, then rollback_standby on {}", from.name, to.name),
            format!("apply_old_primary or verify_old_primary fails: INCOMPLETE, traffic stays on {}", to.name),
        ],
        Kind::Switchover => vec![format!("switch or verify_service fails: switch_back to {}", from.name)],
        Kind::Failover | Kind::Rejoin | Kind::Restore => vec!["any failure stops the run for an operator".to_string()],
    };
    if ramp.is_some() {
        on_failure.insert(1, format!("a ramp step in which {} does worse than {} (error rate, mean response time), or a stop signal: switch_back to {}, then rollback_standby on {}", to.name, from.name, from.name, to.name));
    }
    Plan {
        pair: pair.name.clone(),
        kind,
        from: from.name.clone(),
        to: to.name.clone(),
        change: change.map(|c| c.name.clone()),
        hash: change.and_then(|c| change::hash(c).ok()),
        ttl,
        gate: None,
        window: None,
        steps,
        on_failure,
    }
}

/// What preflight does (an observation, not operations).
fn preflight(pair: &Pair, from: &Host, to: &Host) -> Vec<String> {
    vec![
        format!(
            "connect to {} and {} over SSH as {}, host keys checked against {}",
            target(from),
            target(to),
            pair.ssh.user,
            pair.ssh.known_hosts.display()
        ),
        format!(
            "confirm traffic is on {} and nothing drifted; every check passes on both hosts",
            from.name
        ),
    ]
}

fn target(h: &Host) -> String {
    format!("{} ({}:{})", h.name, h.address, h.ssh_port)
}

/// One operation of a plan, as `plan --json` prints it (and as `log --run
/// ID --json` prints what a run performed).
#[derive(Serialize)]
pub struct OpLine<'a> {
    /// The pair.
    pub pair: &'a str,
    /// The step.
    pub step: &'a str,
    /// The host, or `controller`.
    pub host: &'a str,
    /// The kind of operation.
    pub op: OpKind,
    /// The command, the UPDATE, the check or the wait, in full.
    pub command: &'a str,
}

/// The plan as JSON lines: one object per operation.
pub fn json_lines(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .flat_map(|s| {
            s.ops.iter().map(move |o| {
                serde_json::to_string(&OpLine {
                    pair: &plan.pair,
                    step: s.step,
                    host: &o.host,
                    op: o.op,
                    command: &o.command,
                })
                .unwrap_or_default()
            })
        })
        .collect()
}

/// The record's TTL, asked of the zone's primary (read-only); `None` for
/// other methods or when it does not answer.
/// What the old holder `from` says of its addresses on the VIP's interface
/// (`ip -o addr show`, read-only), when a switch in the overlap order would
/// ask it for the hand-back's target (`overlap::target`: a host reached by
/// the other family); `None` when not needed or not answered (the plan
/// then shows what the run would do without it: the classic order).
async fn shown_addresses(pair: &Pair, kind: Kind, from: &Host) -> Option<String> {
    let Traffic::Vip(v) = &pair.traffic else {
        return None;
    };
    let asks = matches!(v.handover, Handover::Overlap(_))
        && kind != Kind::Failover
        && overlap::target(from.address, v.address, v.prefix, None) == overlap::Target::Ask;
    if !asks {
        return None;
    }
    let show = Remote::AddrShow {
        interface: v.interface.clone(),
    };
    let Invocation::User(line) = show.invocation() else {
        return None;
    };
    let ssh = SshHost::connect(SshTarget::new(from, &pair.ssh))
        .await
        .ok()?;
    let out = ssh.run(&line).await.ok()?;
    out.success().then(|| out.stdout_text())
}

async fn current_ttl(pair: &Pair) -> Option<u32> {
    let Traffic::Dns(d) = &pair.traffic else {
        return None;
    };
    let timeout = pair
        .ssh
        .connect_timeout
        .min(std::time::Duration::from_secs(5));
    let rtype = crate::io::dns::record_type_for(&pair.hosts[0].address);
    crate::io::dns::query(*d.servers.first()?, &d.name, rtype, timeout)
        .await
        .ok()
        .and_then(|a| a.ttl)
}

fn op_word(op: OpKind) -> &'static str {
    match op {
        OpKind::Run => "$",
        OpKind::Upload => "upload",
        OpKind::Hook => "hook",
        OpKind::Query => "ask",
        OpKind::Update => "update",
        OpKind::Propagate => "await",
        OpKind::Wait => "wait",
        OpKind::Check => "check",
        OpKind::Observe => "observe",
        OpKind::Arm => "arm",
        OpKind::CatchUp => "await",
        OpKind::Balancer => "$",
        OpKind::Drain => "await",
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
    if let Some(ttl) = plan.ttl {
        crate::outln!("  the record's TTL on the zone's primary: {ttl}s");
    }
    for (i, s) in plan.steps.iter().enumerate() {
        crate::outln!("  {i}. {} [{}]", s.step, s.host);
        for n in &s.notes {
            crate::outln!("       {n}");
        }
        for o in &s.ops {
            // A command over several lines (an nft script) keeps its
            // continuation lines indented under it.
            let command = o.command.replace('\n', "\n           ");
            crate::outln!("       {} {}: {command}", op_word(o.op), o.host);
        }
    }
    crate::outln!("  on failure:");
    for f in &plan.on_failure {
        crate::outln!("       {f}");
    }
    crate::outln!("  nothing was changed.");
}
