//! `baton status`: observes every selected pair at once, assesses it,
//! records roles on first sight, and renders a compact table or the stable
//! JSON document described in the README.

use std::path::Path;

use futures_util::StreamExt;
use serde::Serialize;

use crate::config::{Config, Pair, Traffic};
use crate::core::assess::{
    self, Assessment, Finding, Holder, HostSeen, PairSeen, Roles, Severity, TrafficSeen, Verdict,
};
use crate::exit::Exit;
use crate::observe;
use crate::store::state::{now_rfc3339, PairState, StateStore};

/// The JSON schema version; bump on any incompatible change.
const SCHEMA: u32 = 1;

#[derive(Serialize)]
struct Report {
    schema: u32,
    verdict: Verdict,
    exit_code: u8,
    pairs: Vec<PairReport>,
}

#[derive(Serialize)]
struct PairReport {
    pair: String,
    environment: String,
    method: &'static str,
    service: String,
    holder: Holder,
    recorded: Option<Roles>,
    recorded_now: bool,
    verdict: Verdict,
    hosts: Vec<HostReport>,
    dns_servers: Vec<DnsReport>,
    /// The TSIG key proved against the zone's primary (`null` for other
    /// methods).
    tsig: Option<TsigReport>,
    problems: Vec<Finding>,
}

#[derive(Serialize)]
struct HostReport {
    name: String,
    address: String,
    role: &'static str,
    reachable: bool,
    error: Option<String>,
    holds_traffic: bool,
    version: Option<String>,
    version_error: Option<String>,
    checks: Vec<assess::CheckOutcome>,
}

#[derive(Serialize)]
struct TsigReport {
    ok: bool,
    detail: String,
}

#[derive(Serialize)]
struct DnsReport {
    server: String,
    answer: Option<Vec<String>>,
    error: Option<String>,
}

/// Runs `status` over the configured pairs; returns the exit code.
/// At most `concurrency` pairs are observed at once, so a large fleet does
/// not open hundreds of SSH sessions together and starve its own checks.
pub async fn run(config: &Config, json: bool, concurrency: usize) -> Exit {
    let store = StateStore::new(&config.settings.state_dir);
    let reports: Vec<PairReport> = futures_util::stream::iter(config.pairs.values())
        .map(|p| one(p, &store, &config.settings.state_dir))
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let verdict = reports.iter().map(|r| r.verdict).fold(Verdict::Ok, worst);
    let exit = match verdict {
        Verdict::Ok => Exit::Ok,
        Verdict::Degraded => Exit::Degraded,
        Verdict::Operator => Exit::Operator,
    };
    if json {
        let report = Report {
            schema: SCHEMA,
            verdict,
            exit_code: exit.code(),
            pairs: reports,
        };
        match serde_json::to_string(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("baton: cannot render JSON: {e}");
                return Exit::Internal;
            }
        }
    } else {
        print!("{}", render(&reports));
    }
    exit
}

fn worst(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v: Verdict| match v {
        Verdict::Ok => 0,
        Verdict::Degraded => 1,
        Verdict::Operator => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

async fn one(pair: &Pair, store: &StateStore, state_dir: &Path) -> PairReport {
    let observed = observe::observe(pair).await;
    let mut seen: PairSeen = observed.seen;
    let mut extra = Vec::new();
    let mut failed = None;
    match crate::history::last_run(state_dir, &pair.name) {
        Ok(last) => seen.last_run = last,
        Err(e) => extra.push(Finding {
            severity: Severity::Operator,
            message: e.to_string(),
        }),
    }
    match store.load(&pair.name) {
        Ok(Some(s)) => {
            failed = s.failed.clone();
            seen.recorded = Some(Roles {
                primary: s.primary,
                standby: s.standby,
            })
        }
        Ok(None) => {}
        Err(e) => extra.push(Finding {
            severity: Severity::Operator,
            message: e.to_string(),
        }),
    }
    let mut a: Assessment = assess::assess(&seen);
    let mut recorded_now = false;
    if let (Some(roles), true) = (&a.record, extra.is_empty()) {
        let state = PairState {
            pair: pair.name.clone(),
            primary: roles.primary.clone(),
            standby: roles.standby.clone(),
            updated_at: now_rfc3339(),
            source: "observed".to_string(),
            failed: None,
        };
        match store.save(&state) {
            Ok(()) => {
                recorded_now = true;
                seen.recorded = Some(roles.clone());
            }
            Err(e) => extra.push(Finding {
                severity: Severity::Operator,
                message: e.to_string(),
            }),
        }
    }
    if !extra.is_empty() {
        a.findings.extend(extra);
        a.verdict = Verdict::Operator;
    }
    if let Some(f) = &failed {
        a.findings.push(Finding {
            severity: Severity::Degraded,
            message: format!("{f} is marked failed since a failover: the pair has no standby until `baton rejoin {}`", pair.name),
        });
        if a.verdict == Verdict::Ok {
            a.verdict = Verdict::Degraded;
        }
    }
    report(pair, &seen, a, recorded_now, failed.as_deref())
}

fn report(
    pair: &Pair,
    seen: &PairSeen,
    a: Assessment,
    recorded_now: bool,
    failed: Option<&str>,
) -> PairReport {
    let service = match &pair.traffic {
        Traffic::Vip(v) => format!("{v} on {}", v.interface),
        Traffic::Dns(d) => d.name.clone(),
        Traffic::Command(_) => "command hook".to_string(),
    };
    let holds = |h: &HostSeen| match &a.holder {
        Holder::Host(n) => *n == h.name,
        Holder::Both => true,
        _ => false,
    };
    let role = |h: &HostSeen| match &seen.recorded {
        _ if failed == Some(h.name.as_str()) => "failed",
        Some(r) if r.primary == h.name => "primary",
        Some(_) => "standby",
        None => "unknown",
    };
    let hosts = seen
        .hosts
        .iter()
        .map(|h| HostReport {
            name: h.name.clone(),
            address: h.address.map(|a| a.to_string()).unwrap_or_default(),
            role: role(h),
            reachable: h.ssh.is_ok(),
            error: h.ssh.clone().err(),
            holds_traffic: holds(h),
            version: h.version.clone().and_then(Result::ok),
            version_error: h.version.clone().and_then(Result::err),
            checks: h.checks.clone(),
        })
        .collect();
    let dns_servers = match &seen.traffic {
        TrafficSeen::Dns { answers, .. } => answers
            .iter()
            .map(|(s, r)| DnsReport {
                server: s.to_string(),
                answer: r
                    .as_ref()
                    .ok()
                    .map(|v| v.iter().map(|a| a.to_string()).collect()),
                error: r.clone().err(),
            })
            .collect(),
        _ => vec![],
    };
    let tsig = match &seen.traffic {
        TrafficSeen::Dns { key, .. } => Some(TsigReport {
            ok: key.ok(),
            detail: key.detail().to_string(),
        }),
        _ => None,
    };
    PairReport {
        pair: pair.name.clone(),
        environment: pair.environment.clone(),
        method: pair.traffic.method(),
        service,
        holder: a.holder,
        recorded: seen.recorded.clone(),
        recorded_now,
        verdict: a.verdict,
        hosts,
        dns_servers,
        tsig,
        problems: a.findings,
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Degraded => "DEGRADED",
        Verdict::Operator => "NEEDS OPERATOR",
    }
}

fn holder_word(h: &Holder) -> String {
    match h {
        Holder::Host(n) => n.clone(),
        Holder::Both => "BOTH".into(),
        Holder::Neither => "NONE".into(),
        Holder::Unknown(_) => "?".into(),
    }
}

/// The human table: one line per pair, one per host, one per DNS server
/// and the TSIG key, one per problem.
fn render(reports: &[PairReport]) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "PAIR".into(),
        "ENV".into(),
        "METHOD".into(),
        "SERVICE".into(),
        "TRAFFIC".into(),
        "RECORDED".into(),
        "STATUS".into(),
    ]];
    for r in reports {
        rows.push([
            r.pair.clone(),
            r.environment.clone(),
            r.method.to_string(),
            r.service.clone(),
            holder_word(&r.holder),
            r.recorded
                .as_ref()
                .map(|x| x.primary.clone())
                .unwrap_or_else(|| "-".into())
                + if r.recorded_now { " (new)" } else { "" },
            verdict_word(r.verdict).to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |r: &[String; 7]| {
        let mut s = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&rows[0]);
    for (r, row) in reports.iter().zip(&rows[1..]) {
        out.push_str(&line(row));
        for h in &r.hosts {
            let reach = if h.reachable { "up" } else { "UNREACHABLE" };
            let version = h
                .version
                .clone()
                .map(|v| format!("version {v}"))
                .unwrap_or_else(|| "version ?".into());
            let checks: Vec<String> = h
                .checks
                .iter()
                .map(|c| format!("{} {}", c.name, if c.ok { "ok" } else { "FAIL" }))
                .collect();
            let traffic = if h.holds_traffic { " [traffic]" } else { "" };
            out.push_str(&format!(
                "    {:<10} {:<16} {:<8} {:<11} {:<14} {}{}\n",
                h.name,
                h.address,
                h.role,
                reach,
                version,
                checks.join(", "),
                traffic
            ));
        }
        for d in &r.dns_servers {
            let said = match (&d.answer, &d.error) {
                (Some(a), _) if a.is_empty() => "no record".to_string(),
                (Some(a), _) => a.join(", "),
                (None, Some(e)) => format!("ERROR {e}"),
                _ => "?".into(),
            };
            out.push_str(&format!("    dns {:<21} {said}\n", d.server));
        }
        // A key that is not proven is always a problem too, whose line
        // below says why.
        match &r.tsig {
            Some(t) if t.ok => out.push_str(&format!("    tsig ok: {}\n", t.detail)),
            Some(_) => out.push_str("    tsig FAIL\n"),
            None => {}
        }
        for p in &r.problems {
            let mark = match p.severity {
                Severity::Operator => "!!",
                Severity::Degraded => " !",
            };
            out.push_str(&format!("  {mark} {}\n", p.message));
        }
    }
    out
}
