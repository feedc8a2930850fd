//! `baton status`: observes every selected pair at once, assesses it,
//! records roles on first sight, and renders a compact table or the stable
//! JSON document described in the README.

use crate::store::Store;

use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::exit::Exit;
use crate::config::{Config, Pair, Traffic};
use crate::core::assess::{
    self, Assessment, Drift, Finding, HeldBy, Holder, HostSeen, LastRun, PairSeen, Roles, Severity,
    TrafficSeen, Verdict, Version,
};
use crate::io::observe;
use crate::store::state::{now_rfc3339, PairState, StateStore};

/// The JSON schema version; bump on any incompatible change.
const SCHEMA: u32 = 1;

#[derive(Serialize)]
struct Report {
    schema: u32,
    verdict: Verdict,
    exit_code: u8,
    pairs: Vec<PairReport>,
    store: StoreReport,
}

/// The store, who leads the watchers, and each watcher's last view.
#[derive(Serialize)]
struct StoreReport {
    #[serde(flatten)]
    described: crate::store::Described,
    /// An error from the store, if it did not answer.
    error: Option<String>,
    /// The leading watcher, if any.
    leader: Option<String>,
    /// Every watcher's last published view.
    watchers: Vec<crate::core::watch::View>,
}

impl StoreReport {
    fn of(backend: &Store) -> StoreReport {
        let leader = backend.leader();
        let views = backend.views();
        let error = match (&leader, &views) {
            (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
            _ => None,
        };
        StoreReport {
            described: backend.describe(),
            error,
            leader: leader.ok().flatten(),
            watchers: views
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(_, b)| serde_json::from_slice(&b).ok())
                .collect(),
        }
    }

    /// The lines under the table: the store when it is not local files,
    /// and the watchers when there are any.
    fn render(&self, now: u64) -> String {
        let mut out = String::new();
        if self.described.kind != "local" || self.error.is_some() {
            out.push_str(&format!(
                "store: {} {}{}\n",
                self.described.kind,
                self.described.location,
                self.error
                    .as_ref()
                    .map(|e| format!(" (ERROR {e})"))
                    .unwrap_or_default()
            ));
        }
        if self.watchers.is_empty() && self.leader.is_none() {
            return out;
        }
        let leader = self.leader.as_deref().unwrap_or("none");
        let mut line = format!("watchers: leader {leader}");
        for v in &self.watchers {
            let age = now.saturating_sub(v.at);
            let stale = if age > v.interval_secs.max(1) * crate::core::watch::FRESH_INTERVALS {
                ", STALE"
            } else {
                ""
            };
            line.push_str(&format!("; {} seen {age}s ago{stale}", v.watcher));
        }
        out.push_str(&line);
        out.push('\n');
        out
    }
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
    /// A pair with role hooks whose primary and standby both answered:
    /// the replication lag.
    lag: Option<LagReport>,
    /// Method `haproxy`: the balancer's view of the pair's servers
    /// (`null` for other methods).
    balancer: Option<BalancerReport>,
    /// A run holding the pair for the operator's decision (a hold, an A/B
    /// experiment), `null` otherwise.
    held: Option<HeldReport>,
    /// `baton watch`'s last observation of the pair (`null`: never
    /// watched).
    watch: Option<super::watch::Observed>,
    /// An operator's pause of the watcher's acting on the pair.
    paused: Option<crate::store::state::Pause>,
    problems: Vec<Finding>,
}

/// A run that holds the pair.
#[derive(Serialize)]
struct HeldReport {
    /// Its run id.
    run: String,
    /// `hold` or `experiment`.
    by: &'static str,
    /// The change.
    change: String,
    /// The host that runs it and takes traffic (a hold) or a share of it
    /// (an experiment).
    updated: String,
    /// The host kept on the old version.
    kept: String,
    /// A hold: when it ends (RFC 3339), and whether it has.
    until: Option<String>,
    expired: Option<bool>,
    /// An experiment: the updated host's share of new requests, percent.
    percent: Option<u8>,
}

impl HeldReport {
    fn of(last: &LastRun) -> Option<HeldReport> {
        let LastRun::Held {
            run,
            to,
            from,
            change,
            by,
            ..
        } = last
        else {
            return None;
        };
        let mut r = HeldReport {
            run: run.clone(),
            by: "hold",
            change: change.clone(),
            updated: to.clone(),
            kept: from.clone(),
            until: None,
            expired: None,
            percent: None,
        };
        match by {
            HeldBy::Hold { until, expired } => {
                r.until = Some(until.clone());
                r.expired = Some(*expired);
            }
            HeldBy::Experiment { percent } => {
                r.by = "experiment";
                r.percent = Some(*percent);
            }
        }
        Some(r)
    }
}

/// What the balancer said of the pair's backend.
#[derive(Serialize)]
struct BalancerReport {
    /// The balancer's name in the pair file.
    host: String,
    /// The backend.
    backend: String,
    /// The backend's servers, as `show stat` printed them.
    servers: Vec<ServerReport>,
    /// Why `show stat` could not be read.
    error: Option<String>,
}

/// One server of the backend.
#[derive(Serialize)]
struct ServerReport {
    name: String,
    status: String,
    weight: u32,
    sessions: u64,
    requests: u64,
    errors: u64,
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
    /// A pair with role hooks: what the `position` hook said.
    replication: Option<ReplicationReport>,
}

/// A host's role and position, from the pair's `position` hook.
#[derive(Serialize)]
struct ReplicationReport {
    /// `primary`, `standby` or `stopped`; `null` when the hook failed.
    state: Option<&'static str>,
    /// Its position, as printed.
    position: Option<String>,
    /// A standby's replay delay in seconds, when the hook gives it.
    delay_seconds: Option<f64>,
    /// Why the hook could not tell.
    error: Option<String>,
}

/// How far the standby is behind the primary.
#[derive(Serialize)]
struct LagReport {
    /// The standby.
    standby: String,
    /// Bytes (or the position's unit) behind the primary's position.
    bytes: u64,
    /// Seconds of replay delay, when the hook gives them.
    seconds: Option<f64>,
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
    let backend = match super::open_store(config) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let store = StateStore::of(&backend);
    let reports: Vec<PairReport> = futures_util::stream::iter(config.pairs.values())
        .map(|p| one(p, &store, &backend))
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let b = backend.clone();
    let store_report = match tokio::task::spawn_blocking(move || StoreReport::of(&b)).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baton: {e}");
            return Exit::Internal;
        }
    };
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
            store: store_report,
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        print!("{}", store_report.render(now));
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

async fn one(pair: &Pair, store: &StateStore, backend: &Store) -> PairReport {
    let observed = observe::observe(pair).await;
    let mut seen: PairSeen = observed.seen;
    let mut extra = Vec::new();
    let mut failed = None;
    match crate::store::history::last_run(backend, &pair.name) {
        Ok(last) => seen.last_run = last,
        Err(e) => extra.push(Finding {
            kind: Drift::Records,
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
            });
        }
        Ok(None) => {}
        Err(e) => extra.push(Finding {
            kind: Drift::Records,
            severity: Severity::Operator,
            message: e.to_string(),
        }),
    }
    let mut a: Assessment = assess::assess(&seen);
    let remembered = match assess::primary_position(&seen, &a.holder) {
        Some((host, position)) => store.remember_position(&pair.name, host, position),
        None => Ok(()),
    };
    if let Err(e) = remembered {
        extra.push(Finding {
            kind: Drift::Records,
            severity: Severity::Operator,
            message: e.to_string(),
        });
    }
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
                kind: Drift::Records,
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
            kind: Drift::Failed,
            severity: Severity::Degraded,
            message: format!("{f} is marked failed since a failover: the pair has no standby until `baton rejoin {}`", pair.name),
        });
        if a.verdict == Verdict::Ok {
            a.verdict = Verdict::Degraded;
        }
    }
    let mut r = report(pair, &seen, a, recorded_now, failed.as_deref());
    r.watch = store
        .load_json(&super::watch::observed_file(&pair.name))
        .ok()
        .flatten();
    r.paused = store.load_pause(&pair.name).ok().flatten();
    r
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
        Traffic::Haproxy(h) => format!("{} (backend {} on {})", h.frontend, h.backend, h.host.name),
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
            version: match &h.version {
                Some(Version::Printed(v)) => Some(v.clone()),
                _ => None,
            },
            version_error: match &h.version {
                Some(Version::Failed(e)) => Some(e.clone()),
                _ => None,
            },
            // A check of the primary fails on the standby by design: each
            // host shows the checks of its role.
            checks: h
                .checks
                .iter()
                .filter(|c| {
                    c.counts_as(match role(h) {
                        "primary" => Some(crate::config::CheckRole::Primary),
                        "standby" => Some(crate::config::CheckRole::Standby),
                        _ => None,
                    })
                })
                .cloned()
                .collect(),
            replication: h.role.as_ref().map(|r| match r {
                Ok(r) => ReplicationReport {
                    state: Some(r.state.name()),
                    position: Some(r.position.to_string()),
                    delay_seconds: r.delay.map(|d| d.as_secs_f64()),
                    error: None,
                },
                Err(e) => ReplicationReport {
                    state: None,
                    position: None,
                    delay_seconds: None,
                    error: Some(e.clone()),
                },
            }),
        })
        .collect();
    let lag = match &a.holder {
        Holder::Host(p) => assess::replication_lag(seen, p).and_then(|(bytes, delay)| {
            Some(LagReport {
                standby: pair.other(p)?.name.clone(),
                bytes,
                seconds: delay.map(|d| d.as_secs_f64()),
            })
        }),
        _ => None,
    };
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
    let balancer = match (&pair.traffic, &seen.traffic) {
        (Traffic::Haproxy(b), TrafficSeen::Balancer { stats, .. }) => Some(BalancerReport {
            host: b.host.name.clone(),
            backend: b.backend.clone(),
            servers: stats
                .iter()
                .flatten()
                .filter(|s| s.backend == b.backend)
                .map(|s| ServerReport {
                    name: s.server.clone(),
                    status: s.status.clone(),
                    weight: s.weight,
                    sessions: s.sessions,
                    requests: s.requests,
                    errors: s.errors,
                })
                .collect(),
            error: stats.as_ref().err().cloned(),
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
        lag,
        balancer,
        held: HeldReport::of(&seen.last_run),
        watch: None,
        paused: None,
        problems: a.findings,
    }
}

/// `, STALE: ...` when the watcher's last observation is older than three
/// of its intervals (it stopped, or hangs): the line is history, not news.
fn stale(w: &super::watch::Observed, now: std::time::SystemTime) -> String {
    let Ok(at) = humantime::parse_rfc3339_weak(&w.at) else {
        return String::new();
    };
    let age = now.duration_since(at).unwrap_or_default();
    let limit = std::time::Duration::from_secs(
        crate::core::watch::FRESH_INTERVALS * w.interval_secs.max(1),
    );
    if age > limit {
        format!(
            ", STALE: no observation for {} (is baton watch running?)",
            humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
        )
    } else {
        String::new()
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
            let replication = match &h.replication {
                Some(ReplicationReport {
                    state: Some(s),
                    position: Some(p),
                    ..
                }) => format!(" [{s} at {p}]"),
                Some(_) => " [role ?]".to_string(),
                None => String::new(),
            };
            out.push_str(&format!(
                "    {:<10} {:<16} {:<8} {:<11} {:<14} {}{}{}\n",
                h.name,
                h.address,
                h.role,
                reach,
                version,
                checks.join(", "),
                traffic,
                replication
            ));
        }
        if let Some(w) = &r.watch {
            out.push_str(&format!(
                "    watch: {} ({} of {} failed in a row; {} at {}{})\n",
                w.verdict,
                w.failures,
                w.threshold,
                w.watcher,
                w.at,
                stale(w, std::time::SystemTime::now())
            ));
        }
        if let Some(p) = &r.paused {
            out.push_str(&format!(
                "    watch paused by {} at {}: {} (`baton resume {}`)\n",
                p.by, p.at, p.reason, r.pair
            ));
        }
        if let Some(l) = &r.lag {
            let seconds = l.seconds.map(|s| format!(", {s:.3} s")).unwrap_or_default();
            out.push_str(&format!(
                "    replication: {} is {} behind{seconds}\n",
                l.standby, l.bytes
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
        if let Some(b) = &r.balancer {
            for s in &b.servers {
                out.push_str(&format!(
                    "    server {}/{:<10} {:<8} weight {:<3} sessions {:<5} requests {} (5xx {})\n",
                    b.backend, s.name, s.status, s.weight, s.sessions, s.requests, s.errors
                ));
            }
            if let Some(e) = &b.error {
                out.push_str(&format!("    balancer {} ERROR {e}\n", b.host));
            }
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
                Severity::Note => " -",
            };
            out.push_str(&format!("  {mark} {}\n", p.message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_observation_older_than_three_intervals_is_stale() {
        let w = super::super::watch::Observed {
            watcher: "ctl:1".into(),
            at: "2026-11-30T20:00:00Z".into(),
            interval_secs: 10,
            failures: 0,
            threshold: 3,
            last_failover: None,
            verdict: "primary healthy".into(),
        };
        let at = humantime::parse_rfc3339_weak("2026-11-30T20:00:00Z").unwrap();
        let secs = std::time::Duration::from_secs;
        assert_eq!(stale(&w, at + secs(30)), "");
        assert_eq!(
            stale(&w, at + secs(95)),
            ", STALE: no observation for 1m 35s (is baton watch running?)"
        );
    }
    use crate::core::assess::{CheckOutcome, KeySeen, LastRun};

    /// The pair `web` (a VIP pair) from a configuration in `dir`.
    fn pair(dir: &std::path::Path) -> Pair {
        std::fs::create_dir_all(dir.join("pairs")).unwrap();
        std::fs::write(dir.join("known_hosts"), "").unwrap();
        std::fs::write(
            dir.join("baton.toml"),
            format!(
                "state_dir = \"{}\"\nenvironments = [\"prod\"]\n[ssh]\nuser = \"deploy\"\nknown_hosts = \"known_hosts\"\naccept_new_host_keys = true\n",
                dir.join("state").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("pairs/web.toml"),
            "environment = \"prod\"\n[hosts.blue]\naddress = \"192.0.2.11\"\n[hosts.green]\naddress = \"192.0.2.12\"\n[traffic]\nmethod = \"vip\"\naddress = \"192.0.2.10/24\"\ninterface = \"eth0\"\n[[checks]]\nname = \"page\"\nkind = \"tcp\"\nport = 80\n",
        )
        .unwrap();
        let (mut config, _) = crate::config::load(&dir.join("baton.toml"))
            .select(&[])
            .unwrap_or_else(|e| panic!("{e:?}"));
        config.pairs.remove("web").unwrap()
    }

    fn host(name: &str, address: &str, vip: bool) -> HostSeen {
        HostSeen {
            name: name.into(),
            address: Some(address.parse().unwrap()),
            ssh: Ok(()),
            holds_vip: Some(vip),
            vip_error: None,
            announces: None,
            overlaps: None,
            version: Some(Version::Printed("1.2".into())),
            checks: vec![CheckOutcome {
                name: "page".into(),
                ok: true,
                detail: "192.0.2.11:80 accepts connections".into(),
                via_ssh: false,
                role: crate::config::CheckRole::Any,
            }],
            role: None,
        }
    }

    fn seen() -> PairSeen {
        PairSeen {
            hosts: [
                host("blue", "192.0.2.11", true),
                host("green", "192.0.2.12", false),
            ],
            traffic: TrafficSeen::Vip,
            recorded: Some(Roles {
                primary: "blue".into(),
                standby: "green".into(),
            }),
            last_run: LastRun::Settled,
        }
    }

    #[test]
    fn the_worst_verdict_wins_whatever_the_order() {
        use Verdict::*;
        for (a, b, w) in [
            (Ok, Ok, Ok),
            (Ok, Degraded, Degraded),
            (Degraded, Ok, Degraded),
            (Operator, Degraded, Operator),
            (Degraded, Operator, Operator),
            (Ok, Operator, Operator),
        ] {
            assert_eq!(worst(a, b), w, "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_vip_pair_reports_roles_holders_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let pair = pair(dir.path());
        let mut s = seen();
        s.hosts[1].version = Some(Version::Failed("exit 127: nginx: not found".into()));
        s.hosts[1].ssh = Err("connection refused".into());
        let a = assess::assess(&s);
        let r = report(&pair, &s, a, false, None);
        assert_eq!(r.service, "192.0.2.10/24 on eth0");
        assert_eq!(r.method, "vip");
        assert_eq!(r.environment, "prod");
        assert_eq!(r.holder, Holder::Host("blue".into()));
        assert_eq!(r.verdict, Verdict::Degraded);
        let [blue, green] = &r.hosts[..] else {
            panic!()
        };
        assert_eq!(
            (blue.role, blue.holds_traffic, blue.reachable),
            ("primary", true, true)
        );
        assert_eq!(blue.version.as_deref(), Some("1.2"));
        assert_eq!(
            (green.role, green.holds_traffic, green.reachable),
            ("standby", false, false)
        );
        assert_eq!(green.error.as_deref(), Some("connection refused"));
        assert_eq!(green.version, None);
        assert_eq!(
            green.version_error.as_deref(),
            Some("exit 127: nginx: not found")
        );
        assert!(r.dns_servers.is_empty() && r.tsig.is_none());
    }

    #[test]
    fn a_failed_host_and_a_split_brain_show_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let pair = pair(dir.path());
        let mut s = seen();
        s.hosts[1].holds_vip = Some(true);
        let a = assess::assess(&s);
        let r = report(&pair, &s, a, false, Some("green"));
        assert_eq!(r.holder, Holder::Both);
        assert!(r.hosts.iter().all(|h| h.holds_traffic));
        assert_eq!(r.hosts[0].role, "primary");
        assert_eq!(r.hosts[1].role, "failed");
        // Nothing recorded: the roles are unknown.
        let mut s = seen();
        s.recorded = None;
        let a = assess::assess(&s);
        let r = report(&pair, &s, a, false, None);
        assert!(r.hosts.iter().all(|h| h.role == "unknown"));
    }

    #[test]
    fn dns_answers_and_the_key_are_reported_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let pair = pair(dir.path());
        let mut s = seen();
        let (a1, a2) = (
            "192.0.2.53:53".parse().unwrap(),
            "192.0.2.54:53".parse().unwrap(),
        );
        s.traffic = TrafficSeen::Dns {
            answers: vec![
                (a1, Ok(vec!["192.0.2.11".parse().unwrap()])),
                (a2, Err("timed out".into())),
            ],
            key: KeySeen::Refused("BADSIG".into()),
        };
        let a = assess::assess(&s);
        let r = report(&pair, &s, a, false, None);
        assert_eq!(r.dns_servers.len(), 2);
        assert_eq!(r.dns_servers[0].server, "192.0.2.53:53");
        assert_eq!(
            r.dns_servers[0].answer,
            Some(vec!["192.0.2.11".to_string()])
        );
        assert_eq!(r.dns_servers[1].answer, None);
        assert_eq!(r.dns_servers[1].error.as_deref(), Some("timed out"));
        let tsig = r.tsig.as_ref().unwrap();
        assert!(!tsig.ok);
        assert_eq!(tsig.detail, "BADSIG");
        let text = render(&[r]);
        assert!(
            text.contains("    dns 192.0.2.53:53         192.0.2.11\n"),
            "{text}"
        );
        assert!(
            text.contains("    dns 192.0.2.54:53         ERROR timed out\n"),
            "{text}"
        );
        assert!(text.contains("    tsig FAIL\n"), "{text}");
        assert!(
            text.contains("  !! a switch by DNS would fail: BADSIG\n"),
            "{text}"
        );
        assert!(
            text.contains("   ! authoritative server 192.0.2.54:53 gave no answer"),
            "{text}"
        );
    }

    #[test]
    fn the_table_aligns_its_columns_and_marks_what_is_new_or_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let pair = pair(dir.path());
        let mut s = seen();
        s.recorded = None;
        s.hosts[1].checks[0].ok = false;
        s.hosts[1].version = None;
        let a = assess::assess(&s);
        s.recorded = a.record.clone();
        let mut r = report(&pair, &s, a, true, None);
        let mut other = report(&pair, &seen(), assess::assess(&seen()), false, None);
        other.pair = "a-much-longer-name".into();
        r.tsig = Some(TsigReport {
            ok: true,
            detail: "verified".into(),
        });
        r.dns_servers.push(DnsReport {
            server: "192.0.2.53:53".into(),
            answer: Some(vec![]),
            error: None,
        });
        let text = render(&[r, other]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "PAIR                ENV   METHOD  SERVICE                TRAFFIC  RECORDED    STATUS"
        );
        assert_eq!(
            lines[1],
            "web                 prod  vip     192.0.2.10/24 on eth0  blue     blue (new)  DEGRADED"
        );
        assert!(
            lines[2].starts_with("    blue       192.0.2.11       primary  up          version 1.2    page ok [traffic]"),
            "{text}"
        );
        assert!(
            lines[3].starts_with(
                "    green      192.0.2.12       standby  up          version ?      page FAIL"
            ),
            "{text}"
        );
        assert!(
            text.contains("    dns 192.0.2.53:53         no record\n"),
            "{text}"
        );
        assert!(text.contains("    tsig ok: verified\n"), "{text}");
        assert!(
            text.contains("   ! standby green fails check page"),
            "{text}"
        );
        assert!(
            text.contains("\na-much-longer-name  prod  vip     192.0.2.10/24 on eth0  blue     blue        ok\n"),
            "{text}"
        );
        assert!(text.lines().all(|l| l == l.trim_end()), "{text}");
    }

    #[test]
    fn the_store_lines_name_the_leader_and_each_watchers_age() {
        let view = |w: &str, at: u64| crate::core::watch::View {
            watcher: w.into(),
            at,
            interval_secs: 10,
            leading: false,
            pairs: std::collections::BTreeMap::new(),
        };
        let mut r = StoreReport {
            described: crate::store::Described {
                kind: "local",
                location: "/var/lib/baton".into(),
            },
            error: None,
            leader: None,
            watchers: vec![],
        };
        assert_eq!(r.render(1000), "", "local files, no watcher: nothing");
        r.leader = Some("ctl1:7".into());
        r.watchers = vec![view("ctl1:7", 995), view("ctl2:8", 960)];
        assert_eq!(
            r.render(1000),
            "watchers: leader ctl1:7; ctl1:7 seen 5s ago; ctl2:8 seen 40s ago, STALE\n"
        );
        r.described = crate::store::Described {
            kind: "etcd",
            location: "http://10.0.0.1:2379 /baton/".into(),
        };
        r.error = Some("no answer".into());
        assert!(
            r.render(1000)
                .starts_with("store: etcd http://10.0.0.1:2379 /baton/ (ERROR no answer)\n"),
            "{}",
            r.render(1000)
        );
    }

    #[test]
    fn the_json_document_has_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let pair = pair(dir.path());
        let mut s = seen();
        s.hosts[0].holds_vip = Some(false);
        let a = assess::assess(&s);
        let r = report(&pair, &s, a, false, None);
        let doc = serde_json::to_value(Report {
            schema: SCHEMA,
            verdict: r.verdict,
            exit_code: Exit::Operator.code(),
            pairs: vec![r],
            store: StoreReport::of(&crate::store::local(&dir.path().join("state"))),
        })
        .unwrap();
        assert_eq!(doc["schema"], 1);
        assert_eq!(doc["verdict"], "operator");
        assert_eq!(doc["exit_code"], 4);
        let p = &doc["pairs"][0];
        assert_eq!(p["pair"], "web");
        assert_eq!(p["holder"], serde_json::json!({"kind": "neither"}));
        assert_eq!(p["recorded"]["primary"], "blue");
        assert_eq!(p["recorded_now"], false);
        assert_eq!(p["tsig"], serde_json::Value::Null);
        assert_eq!(p["hosts"][0]["address"], "192.0.2.11");
        assert_eq!(p["hosts"][0]["checks"][0]["name"], "page");
        assert!(p["hosts"][0]["checks"][0].get("via_ssh").is_none());
        assert_eq!(p["problems"][0]["severity"], "operator");
        assert_eq!(p["problems"][0]["message"], "no host holds traffic");
        assert_eq!(p["problems"][0]["kind"], "no_holder");
        assert_eq!(doc["store"]["kind"], "local");
        assert_eq!(doc["store"]["leader"], serde_json::Value::Null);
        assert_eq!(doc["store"]["watchers"], serde_json::json!([]));
        let holder = serde_json::to_value(Holder::Host("blue".into())).unwrap();
        assert_eq!(
            holder,
            serde_json::json!({"kind": "host", "detail": "blue"})
        );
    }
}
