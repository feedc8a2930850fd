//! `baton ab PAIR --report`: an A/B experiment's samples, read from the
//! pair's journal, side by side per interval (requests, error rate, mean
//! and highest response time of each host) with the totals and where the
//! experiment stands: as a terminal table, as one JSON object, and as an
//! SVG plot of both hosts over time.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::cli::exit::Exit;
use crate::config::{Config, Pair};
use crate::core::experiment::{self, Experiment, Sample, Totals};
use crate::core::printable::escape;
use crate::store::journal::{self, Journal, Record};

/// One sample with the time it was taken.
#[derive(Debug, Clone, Serialize)]
pub struct Timed {
    /// When (RFC 3339).
    pub at: String,
    /// The sample.
    #[serde(flatten)]
    pub sample: Sample,
}

/// An experiment as its journal tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The pair.
    pub pair: String,
    /// The run.
    pub run: String,
    /// The change compared.
    pub change: String,
    /// Its content hash.
    pub hash: String,
    /// The host that kept the old version.
    pub old: String,
    /// The updated host.
    pub new: String,
    /// The split, length and interval.
    pub experiment: Experiment,
    /// Where it stands, in a few words (`watching`, `held`, `ended: ...`).
    pub state: String,
    /// When it started.
    pub started: String,
    /// Every sample, oldest first.
    pub samples: Vec<Timed>,
    /// Each host's totals over every sample.
    pub totals: Both,
}

/// Both hosts' totals.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Both {
    /// The host that kept the old version.
    pub old: Totals,
    /// The updated host.
    pub new: Totals,
}

/// The experiment `run` (else the pair's last one) from the pair's
/// records, oldest first; `None` when there is none.
pub fn collect(records: &[Record], run: Option<&str>) -> Option<Report> {
    let id = match run {
        Some(id) => id.to_string(),
        None => records.iter().rev().find_map(|r| match r {
            Record::Start {
                run,
                experiment: Some(_),
                ..
            } => Some(run.clone()),
            _ => None,
        })?,
    };
    let mine: Vec<Record> = records.iter().filter(|r| r.run() == id).cloned().collect();
    let view = journal::runs(&mine).pop()?;
    let Record::Start {
        pair,
        from,
        to,
        change,
        hash,
        experiment: Some(experiment),
        at,
        ..
    } = &view.start
    else {
        return None;
    };
    let samples: Vec<Timed> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Sample { sample, at, .. } => Some(Timed {
                at: at.clone(),
                sample: sample.clone(),
            }),
            _ => None,
        })
        .collect();
    let plain: Vec<Sample> = samples.iter().map(|t| t.sample.clone()).collect();
    let (old, new) = experiment::totals(&plain);
    let decided = view
        .ended
        .iter()
        .find(|e| e.step == crate::core::cycle::Step::Decide);
    let state = match (view.finished, decided, view.open) {
        (Some(outcome), Some(d), _) => format!(
            "ended: kept the {} version ({})",
            if d.ok { "new" } else { "old" },
            outcome.name()
        ),
        (Some(outcome), None, _) => format!("ended before a decision ({})", outcome.name()),
        (None, _, Some(crate::core::cycle::Step::Experiment)) => {
            "watching (or interrupted while watching)".to_string()
        }
        (None, _, _) if view.held() => "held: waiting for `baton ab --end`".to_string(),
        (None, _, _) => "in progress (or interrupted)".to_string(),
    };
    Some(Report {
        pair: pair.clone(),
        run: id,
        change: change.clone().unwrap_or_default(),
        hash: hash.clone().unwrap_or_default(),
        old: from.clone(),
        new: to.clone(),
        experiment: experiment.clone(),
        state,
        started: at.clone(),
        samples,
        totals: Both { old, new },
    })
}

/// Shows the report of `pair`'s experiment `run` (else its last), and
/// writes the SVG plot to `svg` when asked.
pub fn show(
    config: &Config,
    pair: &Pair,
    run: Option<&str>,
    svg: Option<&Path>,
    json: bool,
) -> Exit {
    let backend = match super::open_store(config) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let journal = Journal::of(&backend, &pair.name);
    // Two passes over the stream, one record in memory at a time: which
    // run, then that run's records.
    let mut id = run.map(str::to_string);
    if id.is_none() {
        if let Err(e) = journal.each(|r| {
            if let Record::Start {
                run,
                experiment: Some(_),
                ..
            } = r
            {
                id = Some(run);
            }
        }) {
            eprintln!("baton: {e}");
            return Exit::Internal;
        }
    }
    let mut records = Vec::new();
    if let Some(id) = &id {
        if let Err(e) = journal.each(|r| {
            if r.run() == id {
                records.push(r);
            }
        }) {
            eprintln!("baton: {e}");
            return Exit::Internal;
        }
    }
    let Some(report) = collect(&records, run) else {
        eprintln!(
            "baton: {} has no A/B experiment{} in its journal; start one with `baton ab {} --change NAME --weight 10 --for 1h --reason TEXT`",
            pair.name,
            run.map(|r| format!(" `{r}`")).unwrap_or_default(),
            pair.name
        );
        return Exit::Config;
    };
    if let Some(path) = svg {
        if let Err(e) = write_private(path, &plot(&report)) {
            eprintln!("baton: cannot write {}: {e}", path.display());
            return Exit::Internal;
        }
    }
    if json {
        match serde_json::to_string(&report) {
            Ok(s) => crate::outln!("{s}"),
            Err(e) => {
                eprintln!("baton: {e}");
                return Exit::Internal;
            }
        }
    } else {
        for line in table(&report).lines() {
            crate::outln!("{}", escape(line));
        }
    }
    Exit::Ok
}

/// Writes a file created 0600 (the plot names hosts and changes).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The terminal table: a header, one line per interval, the totals.
pub fn table(r: &Report) -> String {
    let e = &r.experiment;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  A/B experiment {} started {}: change {} ({}), {}% of new requests to {}, the rest to {}; sampled every {} for {}",
        r.pair,
        r.run,
        r.started,
        r.change,
        r.hash.chars().take(12).collect::<String>(),
        e.percent,
        r.new,
        r.old,
        humantime::format_duration(e.interval),
        humantime::format_duration(e.length)
    );
    let _ = writeln!(out, "state: {}", r.state);
    let (o, n) = (&r.old, &r.new);
    let _ = writeln!(
        out,
        "{:>4}  {:<8}  {:>17}  {:>13}  {:>13}  {:>13}  verdict",
        "#", "time", "requests", "5xx %", "mean ms", "high ms"
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<8}  {:>8} {:>8}  {:>6} {:>6}  {:>6} {:>6}  {:>6} {:>6}",
        "",
        "",
        short(o),
        short(n),
        short(o),
        short(n),
        short(o),
        short(n),
        short(o),
        short(n)
    );
    for t in &r.samples {
        let s = &t.sample;
        let (wo, wn) = (&s.old.window, &s.new.window);
        let _ = writeln!(
            out,
            "{:>4}  {:<8}  {:>8} {:>8}  {:>6.1} {:>6.1}  {:>6} {:>6}  {:>6} {:>6}  {}",
            s.index,
            t.at.get(11..19).unwrap_or(&t.at),
            wo.requests,
            wn.requests,
            wo.error_percent(),
            wn.error_percent(),
            ms(wo.response_ms),
            ms(wn.response_ms),
            ms(wo.response_max_ms),
            ms(wn.response_max_ms),
            match (&s.verdict, &s.why) {
                (experiment::Verdict::AsGood, _) => "as good".to_string(),
                (experiment::Verdict::TooFew, _) => "too few".to_string(),
                (experiment::Verdict::Worse, why) =>
                    format!("WORSE: {}", why.as_deref().unwrap_or("")),
            }
        );
    }
    let (to, tn) = (&r.totals.old, &r.totals.new);
    let mean = |t: &Totals| t.mean_response_ms.map_or("-".into(), |m| format!("{m:.1}"));
    let _ = writeln!(
        out,
        "{:>4}  {:<8}  {:>8} {:>8}  {:>6.2} {:>6.2}  {:>6} {:>6}  {:>6} {:>6}",
        "all",
        "",
        to.requests,
        tn.requests,
        to.error_percent,
        tn.error_percent,
        mean(to),
        mean(tn),
        ms(to.high_response_ms),
        ms(tn.high_response_ms)
    );
    if r.samples.is_empty() {
        let _ = writeln!(out, "(no interval sampled yet)");
    }
    out
}

/// A host name cut to a column's width.
fn short(name: &str) -> String {
    name.chars().take(6).collect()
}

/// The colours of the old and the updated host.
const COLOURS: [&str; 2] = ["#1f77b4", "#d62728"];

/// An SVG plot of both hosts over the intervals: the error rate above,
/// the mean (solid) and highest (dashed) response times below.
pub fn plot(r: &Report) -> String {
    const W: f64 = 820.0;
    const PANEL: f64 = 230.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 60.0;
    let n = r.samples.len().max(1);
    let x = |i: usize| {
        if n <= 1 {
            LEFT + (W - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64
        }
    };
    let mut out = String::new();
    let height = TOP + 2.0 * (PANEL + 50.0) + 20.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="14">{} A/B experiment {}: change {}, {}% of new requests to {}</text>"#,
        xml(&r.pair),
        xml(&r.run),
        xml(&r.change),
        r.experiment.percent,
        xml(&r.new)
    );
    for (k, (host, colour)) in [(&r.old, COLOURS[0]), (&r.new, COLOURS[1])]
        .into_iter()
        .enumerate()
    {
        let lx = LEFT + 260.0 * k as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="38" x2="{}" y2="38" stroke="{colour}" stroke-width="2"/><text x="{}" y="42">{} ({})</text>"#,
            lx + 24.0,
            lx + 30.0,
            xml(host),
            if k == 0 { "old version" } else { "updated" }
        );
    }
    let panels: [(&str, &[(Measure, &str)]); 2] = [
        (
            "5xx responses, % of the interval's requests",
            &[(Measure::ErrorRate, "")],
        ),
        (
            "response time, ms (solid: mean, dashed: highest)",
            &[(Measure::Mean, ""), (Measure::High, "5,4")],
        ),
    ];
    for (p, (title, series)) in panels.iter().enumerate() {
        let top = TOP + p as f64 * (PANEL + 50.0) + 20.0;
        let bottom = top + PANEL;
        let max = series
            .iter()
            .flat_map(|(m, _)| r.samples.iter().flat_map(|t| m.of(&t.sample)))
            .flatten()
            .fold(0.0_f64, f64::max);
        let max = if max <= 0.0 { 1.0 } else { max * 1.1 };
        let y = |v: f64| bottom - PANEL * v / max;
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{}">{}</text>"#,
            top - 6.0,
            xml(title)
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top}" width="{}" height="{PANEL}" fill="none" stroke="#999"/>"##,
            W - LEFT - RIGHT
        );
        for frac in [0.0, 0.5, 1.0] {
            let v = max * frac;
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}" text-anchor="end">{v:.1}</text><line x1="{LEFT}" y1="{yy}" x2="{}" y2="{yy}" stroke="#eee"/>"##,
                LEFT - 6.0,
                y(v) + 4.0,
                W - RIGHT,
                yy = y(v)
            );
        }
        for (m, dash) in series.iter() {
            for (host, colour) in COLOURS.iter().enumerate() {
                let points: Vec<String> = r
                    .samples
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| {
                        m.of(&t.sample)[host].map(|v| format!("{:.1},{:.1}", x(i), y(v)))
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
                    points.join(" ")
                );
            }
        }
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{}">interval 1</text><text x="{}" y="{}" text-anchor="end">interval {}</text>"#,
            bottom + 16.0,
            W - RIGHT,
            bottom + 16.0,
            r.samples.len()
        );
    }
    out.push_str("</svg>\n");
    out
}

/// What a line of the plot shows.
#[derive(Debug, Clone, Copy)]
enum Measure {
    ErrorRate,
    Mean,
    High,
}

impl Measure {
    /// The old host's and the updated host's value in a sample.
    fn of(self, s: &Sample) -> [Option<f64>; 2] {
        let (o, n) = (&s.old.window, &s.new.window);
        let ms = |v: Option<u64>| v.map(|v| v as f64);
        match self {
            Measure::ErrorRate => [Some(o.error_percent()), Some(n.error_percent())],
            Measure::Mean => [ms(o.response_ms), ms(n.response_ms)],
            Measure::High => [ms(o.response_max_ms), ms(n.response_max_ms)],
        }
    }
}

/// Text made safe inside an SVG element.
fn xml(text: &str) -> String {
    escape(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::balancer::{Limits, Window};
    use crate::core::cycle::{Kind, Step};
    use crate::core::experiment::Side;
    use std::time::Duration;

    fn start(run: &str) -> Record {
        Record::Start {
            run: run.into(),
            pair: "lb".into(),
            kind: Kind::Apply,
            from: "teal".into(),
            to: "coral".into(),
            change: Some("v2".into()),
            label: None,
            hash: Some("abcdef0123456789".into()),
            operator: "alice".into(),
            reason: Some("try v2".into()),
            gate: None,
            window: None,
            forced: None,
            roles: false,
            data_loss: None,
            ramp: None,
            experiment: Some(
                Experiment::new(10, Duration::from_secs(3), Duration::from_secs(1)).unwrap(),
            ),
            hold: None,
            reverse: false,
            at: "2026-11-30T18:00:00.000Z".into(),
        }
    }

    fn sample(run: &str, index: u64, new_errors: u64) -> Record {
        let w = |requests, errors, mean, high| Window {
            requests,
            errors,
            response_ms: Some(mean),
            response_max_ms: Some(high),
        };
        Record::Sample {
            run: run.into(),
            sample: Sample::judged(
                index,
                Duration::from_secs(1),
                (
                    Side {
                        host: "teal".into(),
                        window: w(900, 0, 2, 8),
                    },
                    Side {
                        host: "coral".into(),
                        window: w(100, new_errors, 3, 11),
                    },
                ),
                &Limits::default(),
            ),
            at: format!("2026-11-30T18:00:0{index}.000Z"),
        }
    }

    fn end(run: &str, step: Step, ok: bool) -> Record {
        Record::End {
            run: run.into(),
            step,
            ok,
            detail: String::new(),
            duration_ms: 1,
            commands: vec![],
            at: "2026-11-30T18:00:09.000Z".into(),
        }
    }

    fn held(run: &str) -> Vec<Record> {
        vec![
            start(run),
            end(run, Step::Preflight, true),
            end(run, Step::ApplyStandby, true),
            end(run, Step::VerifyStandby, true),
            Record::Begin {
                run: run.into(),
                step: Step::Experiment,
                at: String::new(),
            },
            sample(run, 1, 0),
            sample(run, 2, 0),
            end(run, Step::Experiment, true),
        ]
    }

    #[test]
    fn the_last_experiment_is_reported_with_its_samples_and_totals() {
        let mut records = held("r1");
        records.extend(held("r2"));
        records.push(sample("r2", 3, 30));
        let r = collect(&records, None).unwrap();
        assert_eq!((r.run.as_str(), r.samples.len()), ("r2", 3));
        assert_eq!(r.state, "held: waiting for `baton ab --end`");
        assert_eq!((r.totals.new.requests, r.totals.new.errors), (300, 30));
        assert_eq!(r.totals.old.high_response_ms, Some(8));
        let t = table(&r);
        assert!(t.contains("10% of new requests to coral"), "{t}");
        assert!(t.contains("18:00:03"), "{t}");
        assert!(
            t.contains("WORSE: the updated host's error rate is 30.0%"),
            "{t}"
        );
        assert!(t.lines().last().unwrap().starts_with(" all"), "{t}");
        // Another run by its id.
        assert_eq!(collect(&records, Some("r1")).unwrap().samples.len(), 2);
        assert!(collect(&records, Some("r9")).is_none());
        assert!(collect(&[start("x")][..0], None).is_none());
    }

    #[test]
    fn a_decided_experiment_says_which_version_it_kept() {
        let mut records = held("r1");
        records.push(end("r1", Step::Decide, false));
        records.push(end("r1", Step::SwitchBack, true));
        records.push(end("r1", Step::RollbackStandby, true));
        records.push(Record::Finish {
            run: "r1".into(),
            outcome: crate::core::cycle::Outcome::RolledBack,
            message: String::new(),
            at: String::new(),
        });
        let r = collect(&records, None).unwrap();
        assert_eq!(r.state, "ended: kept the old version (rolled_back)");
    }

    #[test]
    fn the_plot_draws_both_hosts_in_both_panels() {
        let mut records = held("r1");
        records.push(sample("r1", 3, 30));
        let r = collect(&records, None).unwrap();
        let svg = plot(&r);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        // Error rate (2 hosts) + mean and highest (2 hosts each).
        assert_eq!(svg.matches("<polyline").count(), 6, "{svg}");
        assert_eq!(svg.matches(COLOURS[1]).count(), 4, "{svg}");
        // The updated host's last error rate (30 %) is the panel's top
        // point: at y = top (the maximum is 110 % of it).
        assert!(svg.contains(">33.0</text>"), "{svg}");
        // Names are escaped.
        let mut r2 = r.clone();
        r2.change = "<v2&>".into();
        assert!(plot(&r2).contains("&lt;v2&amp;&gt;"));
        // No samples: an empty plot, still valid.
        let r3 = collect(&held("r1")[..4], None).unwrap();
        assert!(plot(&r3).contains("interval 0"));
    }
}
