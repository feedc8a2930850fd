//! `--metrics-file`: the fleet in Prometheus text format, for node_exporter's
//! textfile collector. Per pair: the last finished run's outcome, end time
//! and duration (from its journal), whether its last run was interrupted
//! and is not settled yet, and which host holds traffic (from the recorded
//! roles). Written atomically so the collector never reads half.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::config::Config;
use crate::core::assess::LastRun;
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
    let store = StateStore::new(&config.settings.state_dir);
    for pair in config.pairs.values() {
        let name = &pair.name;
        let last = Journal::new(&config.settings.state_dir, name)
            .runs()
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
            crate::history::last_run(&config.settings.state_dir, name),
            Ok(LastRun::Settled | LastRun::InProgress { .. })
        );
        let _ = writeln!(
            interrupted,
            "baton_run_interrupted{{pair=\"{name}\"}} {}",
            u8::from(unsettled)
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
    out
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
