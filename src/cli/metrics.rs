//! `--metrics-file`: the fleet in Prometheus text format, for node_exporter's
//! textfile collector. Per pair: the last finished run's outcome, end time
//! and duration (from its journal), whether its last run was interrupted
//! and is not settled yet, and which host holds traffic (from the recorded
//! roles). Written atomically so the collector never reads half.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::config::Config;
use crate::core::assess::{HeldBy, LastRun};
use crate::core::cycle::Outcome;
use crate::store::journal::{Journal, Record};
use crate::store::state::StateStore;

const OUTCOMES: [Outcome; 5] = [
    Outcome::Ok,
    Outcome::RolledBack,
    Outcome::Incomplete,
    Outcome::Operator,
    Outcome::NotStarted,
];

/// The metrics text for every pair of the configuration.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP baton_last_run_outcome The outcome of the pair's last finished run (1 for that outcome).");
    let _ = writeln!(out, "# TYPE baton_last_run_outcome gauge");
    let mut times = String::new();
    let mut durations = String::new();
    let mut holders = String::new();
    let mut interrupted = String::new();
    let mut held = String::new();
    let mut hold_until = String::new();
    let (mut watched, mut watched_at, mut paused_now) =
        (String::new(), String::new(), String::new());
    let Ok(backend) = crate::store::open(&config.settings) else {
        let _ = writeln!(out, "# HELP baton_store_up 1 when baton's store answered.");
        let _ = writeln!(out, "# TYPE baton_store_up gauge");
        let _ = writeln!(out, "baton_store_up 0");
        return out;
    };
    let store = StateStore::of(&backend);
    let mut store_up = true;
    for pair in config.pairs.values() {
        let name = &pair.name;
        // One reading of the journal for both: the last finished run and
        // the last run's state.
        let runs = Journal::of(&backend, name).runs();
        store_up &= runs.is_ok();
        let last_run = runs
            .as_ref()
            .map(|r| crate::store::history::judge(&backend, name, r.last()))
            .map_err(|_| ());
        let last = runs
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|v| v.finished.is_some());
        if let Some(view) = last {
            for o in OUTCOMES {
                let _ = writeln!(
                    out,
                    "baton_last_run_outcome{{pair=\"{name}\",outcome=\"{}\"}} {}",
                    o.name(),
                    u8::from(view.finished == Some(o))
                );
            }
            let started = match &view.start {
                Record::Start { at, .. } => humantime::parse_rfc3339_weak(at).ok(),
                _ => None,
            };
            let ended = view
                .finished_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
            if let Some(end) = ended {
                let secs = end
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let _ = writeln!(
                    times,
                    "baton_last_run_timestamp_seconds{{pair=\"{name}\"}} {secs}"
                );
                if let Some(start) = started {
                    let took = end
                        .duration_since(start)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(0.0);
                    let _ = writeln!(
                        durations,
                        "baton_last_run_duration_seconds{{pair=\"{name}\"}} {took}"
                    );
                }
            }
        }
        // An unreadable journal counts as unsettled: someone must look.
        let unsettled = !matches!(
            last_run,
            Ok(LastRun::Settled | LastRun::InProgress { .. } | LastRun::Held { .. })
        );
        let _ = writeln!(
            held,
            "baton_held{{pair=\"{name}\"}} {}",
            u8::from(matches!(last_run, Ok(LastRun::Held { .. })))
        );
        if let Ok(LastRun::Held {
            by: HeldBy::Hold { until, .. },
            ..
        }) = &last_run
        {
            if let Ok(t) = humantime::parse_rfc3339_weak(until) {
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let _ = writeln!(
                    hold_until,
                    "baton_hold_until_seconds{{pair=\"{name}\"}} {secs}"
                );
            }
        }
        let _ = writeln!(
            interrupted,
            "baton_run_interrupted{{pair=\"{name}\"}} {}",
            u8::from(unsettled)
        );
        if let Ok(Some(w)) =
            store.load_json::<super::watch::Observed>(&super::watch::observed_file(name))
        {
            let _ = writeln!(
                watched,
                "baton_watch_failures{{pair=\"{name}\"}} {}",
                w.failures
            );
            if let Ok(t) = humantime::parse_rfc3339_weak(&w.at) {
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let _ = writeln!(
                    watched_at,
                    "baton_watch_observed_timestamp_seconds{{pair=\"{name}\"}} {secs}"
                );
            }
        }
        let paused = matches!(store.load_pause(name), Ok(Some(_)));
        let _ = writeln!(
            paused_now,
            "baton_watch_paused{{pair=\"{name}\"}} {}",
            u8::from(paused)
        );
        if let Ok(Some(state)) = store.load(name) {
            for h in &pair.hosts {
                let _ = writeln!(
                    holders,
                    "baton_traffic_holder{{pair=\"{name}\",host=\"{}\"}} {}",
                    h.name,
                    u8::from(state.primary == h.name)
                );
            }
        }
    }
    let _ = writeln!(out, "# HELP baton_last_run_timestamp_seconds When the pair's last finished run ended (Unix time).");
    let _ = writeln!(out, "# TYPE baton_last_run_timestamp_seconds gauge");
    out.push_str(&times);
    let _ = writeln!(
        out,
        "# HELP baton_last_run_duration_seconds How long the pair's last finished run took."
    );
    let _ = writeln!(out, "# TYPE baton_last_run_duration_seconds gauge");
    out.push_str(&durations);
    let _ = writeln!(
        out,
        "# HELP baton_traffic_holder Which host holds traffic, as recorded (1 for the primary)."
    );
    let _ = writeln!(out, "# TYPE baton_traffic_holder gauge");
    out.push_str(&holders);
    let _ = writeln!(
        out,
        "# HELP baton_run_interrupted 1 when the pair's last run never finished and no baton process is running it (or its journal cannot be read): run `baton recover`."
    );
    let _ = writeln!(out, "# TYPE baton_run_interrupted gauge");
    out.push_str(&interrupted);
    let _ = writeln!(
        out,
        "# HELP baton_held 1 while a run holds the pair for the operator's decision (a hold, an A/B experiment): `baton finish`, `baton revert` or `baton ab --end` ends it."
    );
    let _ = writeln!(out, "# TYPE baton_held gauge");
    out.push_str(&held);
    let _ = writeln!(
        out,
        "# HELP baton_hold_until_seconds When the pair's hold ends (Unix time)."
    );
    let _ = writeln!(out, "# TYPE baton_hold_until_seconds gauge");
    out.push_str(&hold_until);
    for (name, help, body) in [
        (
            "baton_watch_failures",
            "`baton watch`: the primary's failed observations in a row.",
            &watched,
        ),
        (
            "baton_watch_observed_timestamp_seconds",
            "When `baton watch` last observed the pair (Unix time).",
            &watched_at,
        ),
        (
            "baton_watch_paused",
            "1 while `baton pause` keeps the watcher from failing the pair over.",
            &paused_now,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        out.push_str(body);
    }
    watchers(&mut out, &backend, store_up);
    out
}

/// The store and the watchers: whether the store answered, who leads, and
/// when each watcher last published its view.
fn watchers(out: &mut String, backend: &crate::store::Store, store_up: bool) {
    let d = backend.describe();
    let leader = backend.leader();
    let views = backend.views();
    let up = store_up && leader.is_ok() && views.is_ok();
    let _ = writeln!(out, "# HELP baton_store_up 1 when baton's store answered.");
    let _ = writeln!(out, "# TYPE baton_store_up gauge");
    let _ = writeln!(
        out,
        "baton_store_up{{kind=\"{}\"}} {}",
        d.kind,
        u8::from(up)
    );
    let _ = writeln!(
        out,
        "# HELP baton_watch_leader 1 for the watcher that leads (acts on the pairs)."
    );
    let _ = writeln!(out, "# TYPE baton_watch_leader gauge");
    if let Ok(Some(l)) = &leader {
        let _ = writeln!(out, "baton_watch_leader{{watcher=\"{}\"}} 1", label(l));
    }
    let _ = writeln!(
        out,
        "# HELP baton_watcher_seen_timestamp_seconds When each watcher last published its view (Unix time)."
    );
    let _ = writeln!(out, "# TYPE baton_watcher_seen_timestamp_seconds gauge");
    for (id, body) in views.unwrap_or_default() {
        if let Ok(v) = serde_json::from_slice::<crate::core::watch::View>(&body) {
            let _ = writeln!(
                out,
                "baton_watcher_seen_timestamp_seconds{{watcher=\"{}\"}} {}",
                label(&id),
                v.at
            );
        }
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes the metrics atomically (temporary file beside it, then rename),
/// readable by the collector.
pub fn write(config: &Config, path: &Path) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".baton-metrics")
        .tempfile_in(dir)?;
    tmp.write_all(render(config).as_bytes())?;
    tmp.as_file().sync_all()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cycle::{Kind, Step};
    use crate::store::state::PairState;

    /// A configuration in a temporary directory with the pairs `web` and
    /// `api`, its state directory inside it.
    fn config(dir: &Path) -> Config {
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
        for (name, n) in [("web", 1), ("api", 2)] {
            std::fs::write(
                dir.join(format!("pairs/{name}.toml")),
                format!(
                    "environment = \"prod\"\n[hosts.blue]\naddress = \"192.0.2.{n}1\"\n[hosts.green]\naddress = \"192.0.2.{n}2\"\n[traffic]\nmethod = \"vip\"\naddress = \"192.0.2.{n}0/24\"\ninterface = \"eth0\"\n[[checks]]\nkind = \"tcp\"\nport = 80\n"
                ),
            )
            .unwrap();
        }
        let (config, _) = crate::config::load(&dir.join("baton.toml"))
            .select(&[])
            .unwrap_or_else(|e| panic!("{e:?}"));
        config
    }

    fn start(j: &Journal, id: &str, at: &str) {
        j.append(&Record::Start {
            run: id.into(),
            pair: "web".into(),
            kind: Kind::Switchover,
            from: "blue".into(),
            to: "green".into(),
            change: None,
            label: None,
            hash: None,
            operator: "t".into(),
            reason: None,
            gate: None,
            window: None,
            forced: None,
            roles: false,
            data_loss: None,
            ramp: None,
            experiment: None,
            hold: None,
            reverse: false,
            at: at.into(),
        })
        .unwrap();
    }

    fn finish(j: &Journal, id: &str, outcome: Outcome, at: &str) {
        j.append(&Record::Finish {
            run: id.into(),
            outcome,
            message: String::new(),
            at: at.into(),
        })
        .unwrap();
    }

    fn lines(text: &str, metric: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_pair_without_history_has_headers_and_no_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(&config(dir.path()));
        for metric in [
            "baton_last_run_outcome",
            "baton_last_run_timestamp_seconds",
            "baton_last_run_duration_seconds",
            "baton_traffic_holder",
            "baton_run_interrupted",
        ] {
            assert!(text.contains(&format!("# TYPE {metric} gauge\n")), "{text}");
            assert!(text.contains(&format!("# HELP {metric} ")), "{text}");
        }
        assert!(lines(&text, "baton_last_run_outcome").is_empty(), "{text}");
        assert!(lines(&text, "baton_traffic_holder").is_empty(), "{text}");
        assert_eq!(
            lines(&text, "baton_run_interrupted"),
            [
                "baton_run_interrupted{pair=\"api\"} 0",
                "baton_run_interrupted{pair=\"web\"} 0"
            ]
        );
        assert_eq!(
            lines(&text, "baton_store_up"),
            ["baton_store_up{kind=\"local\"} 1"]
        );
        assert!(lines(&text, "baton_watch_leader").is_empty(), "{text}");
    }

    #[test]
    fn the_leading_watcher_and_each_watchers_view_are_shown() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let store = crate::store::local(&config.settings.state_dir);
        assert!(matches!(
            store.lead("ctl\"1:42"),
            Ok(crate::store::Leadership::Leading { .. })
        ));
        let view = crate::core::watch::View {
            watcher: "ctl\"1:42".into(),
            at: 1_796_083_200,
            interval_secs: 10,
            leading: true,
            pairs: std::collections::BTreeMap::new(),
        };
        store
            .publish_view("ctl\"1:42", &serde_json::to_vec(&view).unwrap())
            .unwrap();
        let text = render(&config);
        assert_eq!(
            lines(&text, "baton_watch_leader"),
            ["baton_watch_leader{watcher=\"ctl\\\"1:42\"} 1"]
        );
        assert_eq!(
            lines(&text, "baton_watcher_seen_timestamp_seconds"),
            ["baton_watcher_seen_timestamp_seconds{watcher=\"ctl\\\"1:42\"} 1796083200"]
        );
        store.resign("ctl\"1:42");
    }

    #[test]
    fn the_last_finished_run_gives_outcome_end_and_duration() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let j = Journal::new(&config.settings.state_dir, "web");
        start(&j, "a", "2026-11-20T02:00:00.000Z");
        finish(&j, "a", Outcome::Ok, "2026-11-20T02:00:30.000Z");
        start(&j, "b", "2026-11-21T02:00:00.000Z");
        finish(&j, "b", Outcome::RolledBack, "2026-11-21T02:01:02.500Z");
        let text = render(&config);
        let outcomes = lines(&text, "baton_last_run_outcome");
        assert_eq!(outcomes.len(), 5, "one per outcome: {text}");
        assert!(outcomes.contains(
            &"baton_last_run_outcome{pair=\"web\",outcome=\"rolled_back\"} 1".to_string()
        ));
        assert_eq!(outcomes.iter().filter(|l| l.ends_with(" 1")).count(), 1);
        let end = humantime::parse_rfc3339("2026-11-21T02:01:02Z")
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(
            lines(&text, "baton_last_run_timestamp_seconds"),
            [format!(
                "baton_last_run_timestamp_seconds{{pair=\"web\"}} {end}"
            )]
        );
        assert_eq!(
            lines(&text, "baton_last_run_duration_seconds"),
            ["baton_last_run_duration_seconds{pair=\"web\"} 62.5"]
        );
    }

    #[test]
    fn an_interrupted_run_is_flagged_and_the_one_before_it_still_reported() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let j = Journal::new(&config.settings.state_dir, "web");
        start(&j, "a", "2026-11-20T02:00:00.000Z");
        finish(&j, "a", Outcome::Ok, "2026-11-20T02:00:30.000Z");
        start(&j, "b", "2026-11-21T02:00:00.000Z");
        j.append(&Record::Begin {
            run: "b".into(),
            step: Step::Switch,
            at: "2026-11-21T02:00:01.000Z".into(),
        })
        .unwrap();
        let text = render(&config);
        assert!(
            text.contains("baton_run_interrupted{pair=\"web\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("baton_run_interrupted{pair=\"api\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("baton_last_run_outcome{pair=\"web\",outcome=\"ok\"} 1\n"),
            "{text}"
        );
        // A journal that cannot be read counts as unsettled: someone must look.
        let api = Journal::new(&config.settings.state_dir, "api");
        std::fs::write(api.path(), "garbage\n{}\n").unwrap();
        let text = render(&config);
        assert!(
            text.contains("baton_run_interrupted{pair=\"api\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn the_recorded_primary_holds_traffic() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        StateStore::new(&config.settings.state_dir)
            .save(&PairState {
                pair: "web".into(),
                primary: "green".into(),
                standby: "blue".into(),
                updated_at: "2026-11-20T02:00:00.000Z".into(),
                source: "observed".into(),
                failed: None,
            })
            .unwrap();
        let text = render(&config);
        assert_eq!(
            lines(&text, "baton_traffic_holder"),
            [
                "baton_traffic_holder{pair=\"web\",host=\"blue\"} 0",
                "baton_traffic_holder{pair=\"web\",host=\"green\"} 1"
            ]
        );
    }

    #[test]
    fn the_file_is_replaced_whole_and_readable_by_the_collector() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let out = dir.path().join("textfile/baton.prom");
        std::fs::create_dir(out.parent().unwrap()).unwrap();
        std::fs::write(&out, "stale\n").unwrap();
        write(&config, &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), render(&config));
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["baton.prom"], "no temporary file left");
        // Into a directory that does not exist: an error, nothing written.
        assert!(write(&config, &dir.path().join("missing/baton.prom")).is_err());
    }
}
