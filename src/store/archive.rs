//! The journal's archive, so that no command reads more history than it
//! needs. When a pair's journal has grown past a size and its last run has
//! finished, the next run's start rotates it: every run it holds is first
//! digested into the pair's index (`PAIR.runs`, one JSON line per run:
//! the start record, the steps' results, the outcome, the time its steps
//! took), then the journal is renamed to a segment (`PAIR.journal.old-MILLIS`)
//! kept whole for `log --run`. The gate, the maintenance window's estimate,
//! the metrics and `log` read the index and the current journal; a run's
//! command reads only the journal's last run. A crash between the two
//! writes leaves runs in both the index and the journal, which readers
//! count once (by run id).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::journal::{scan_file, JournalError, RunView};

/// A journal this large is rotated at the next run's start.
pub const ROTATE_AT: u64 = 64 << 20;

/// The index of a journal's rotated runs.
pub fn index_path(journal: &Path) -> PathBuf {
    with_suffix(journal, ".runs", true)
}

/// `journal`'s name with `.journal` replaced (`index`) or followed by
/// `suffix`.
fn with_suffix(journal: &Path, suffix: &str, replace: bool) -> PathBuf {
    let name = journal
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let stem = if replace {
        name.strip_suffix(".journal").unwrap_or(&name).to_string()
    } else {
        name
    };
    journal.with_file_name(format!("{stem}{suffix}"))
}

/// The rotated segments of `journal`, oldest first.
pub fn segments(journal: &Path) -> Vec<PathBuf> {
    let prefix = format!(
        "{}.old-",
        journal
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    let Some(dir) = journal.parent() else {
        return Vec::new();
    };
    let mut found: Vec<(u128, PathBuf)> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let millis = name.strip_prefix(&prefix)?.parse().ok()?;
                    Some((millis, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// The runs in the index, oldest first.
pub fn indexed(journal: &Path) -> Result<Vec<RunView>, JournalError> {
    let mut out = Vec::new();
    scan_file(&index_path(journal), 0, |_, text, complete| {
        match serde_json::from_str::<RunView>(text.trim_end()) {
            Ok(v) => out.push(v),
            // A line torn by a crash: its runs are still in the journal
            // (it is renamed only after the index is whole).
            Err(_) if !complete => {}
            Err(_) if text.trim().is_empty() => {}
            Err(e) => return Err(e.to_string()),
        }
        Ok(())
    })?;
    Ok(out)
}

/// The index's runs, then the journal's runs not already among them.
pub fn merge(indexed: Vec<RunView>, current: Vec<RunView>) -> Vec<RunView> {
    let seen: HashSet<String> = indexed.iter().map(|v| v.start.run().to_string()).collect();
    let mut out = indexed;
    out.extend(
        current
            .into_iter()
            .filter(|v| !seen.contains(v.start.run())),
    );
    out
}

/// Rotates `journal` when it has reached `limit` bytes and all its `runs`
/// (its digest) have finished: the runs go to the index (fsynced), then
/// the file becomes a segment. Returns the segment's path, if it rotated.
pub fn rotate(journal: &Path, runs: &[RunView], limit: u64) -> std::io::Result<Option<PathBuf>> {
    let len = match fs::symlink_metadata(journal) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if len < limit || runs.iter().any(|v| v.finished.is_none()) {
        return Ok(None);
    }
    let mut lines = Vec::new();
    for v in runs {
        serde_json::to_writer(&mut lines, v).map_err(std::io::Error::other)?;
        lines.push(b'\n');
    }
    let mut index = super::dir::open_private(&index_path(journal), super::dir::Open::Append)?;
    index.write_all(&lines)?;
    index.sync_all()?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let segment = with_suffix(journal, &format!(".old-{millis}"), false);
    fs::rename(journal, &segment)?;
    if let Some(dir) = journal.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(Some(segment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cycle::{Kind, Outcome};
    use crate::store::journal::Record;

    fn view(run: &str, finished: Option<Outcome>) -> RunView {
        RunView {
            start: Record::Start {
                run: run.into(),
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
                at: "2026-11-20T02:00:00.000Z".into(),
            },
            ended: vec![],
            open: None,
            finished,
            finished_at: finished.map(|_| "2026-11-20T02:01:00.000Z".to_string()),
            took_ms: 1,
            last_at: None,
            notified: 0,
            notify_failed: 0,
        }
    }

    fn ids(v: &[RunView]) -> Vec<&str> {
        v.iter().map(|v| v.start.run()).collect()
    }

    #[test]
    fn the_index_and_segments_are_named_after_the_journal() {
        let j = Path::new("/state/web.journal");
        assert_eq!(index_path(j), Path::new("/state/web.runs"));
        assert_eq!(
            index_path(Path::new("/state/odd")),
            Path::new("/state/odd.runs")
        );
        assert_eq!(
            with_suffix(j, ".old-12", false),
            Path::new("/state/web.journal.old-12")
        );
    }

    #[test]
    fn segments_are_ordered_by_their_time_not_their_text_and_others_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("web.journal");
        for name in [
            "web.journal.old-1000",
            "web.journal.old-999",
            "web.journal.old-20000",
            "web.journal.old-x",
            "web.journal.old-",
            "api.journal.old-5",
            "web.journal",
            "web.runs",
            "xweb.journal.old-7",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = segments(&j)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "web.journal.old-999",
                "web.journal.old-1000",
                "web.journal.old-20000"
            ]
        );
        assert!(segments(&dir.path().join("missing/web.journal")).is_empty());
    }

    #[test]
    fn the_index_skips_a_torn_last_line_and_blank_lines_but_not_a_corrupt_one() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("web.journal");
        let line = |v: &RunView| serde_json::to_string(v).unwrap();
        let (a, b) = (
            view("r1", Some(Outcome::Ok)),
            view("r2", Some(Outcome::RolledBack)),
        );
        fs::write(
            index_path(&j),
            format!("{}\n\n{}\n{{\"start\":{{\"ev", line(&a), line(&b)),
        )
        .unwrap();
        assert_eq!(indexed(&j).unwrap(), vec![a.clone(), b.clone()]);
        fs::write(
            index_path(&j),
            format!("{}\nnot json\n{}\n", line(&a), line(&b)),
        )
        .unwrap();
        let e = indexed(&j).unwrap_err();
        assert!(matches!(e, JournalError::Corrupt { line: 2, .. }), "{e}");
        // No index at all: no runs.
        assert!(indexed(&dir.path().join("api.journal")).unwrap().is_empty());
    }

    #[test]
    fn merging_keeps_the_index_order_and_counts_each_run_once() {
        let merged = merge(
            vec![view("r1", Some(Outcome::Ok)), view("r2", Some(Outcome::Ok))],
            vec![view("r2", Some(Outcome::Ok)), view("r3", None)],
        );
        assert_eq!(ids(&merged), ["r1", "r2", "r3"]);
        assert_eq!(ids(&merge(vec![], vec![view("r9", None)])), ["r9"]);
    }

    #[test]
    fn rotation_waits_for_the_size_and_for_every_run_to_finish() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("web.journal");
        let done = [view("r1", Some(Outcome::Ok))];
        assert_eq!(rotate(&j, &done, 10).unwrap(), None, "no journal yet");
        fs::write(&j, "x".repeat(100)).unwrap();
        assert_eq!(rotate(&j, &done, 101).unwrap(), None, "below the size");
        let open = [view("r1", Some(Outcome::Ok)), view("r2", None)];
        assert_eq!(rotate(&j, &open, 100).unwrap(), None, "a run is open");
        assert!(j.exists() && !index_path(&j).exists());
        let segment = rotate(&j, &done, 100).unwrap().expect("rotated");
        assert!(!j.exists());
        assert_eq!(fs::read_to_string(&segment).unwrap(), "x".repeat(100));
        assert_eq!(segments(&j), vec![segment]);
        assert_eq!(indexed(&j).unwrap(), done.to_vec());
    }

    #[test]
    fn an_index_that_is_a_symlink_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("web.journal");
        fs::write(&j, "x".repeat(10)).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, index_path(&j)).unwrap();
        assert!(rotate(&j, &[view("r1", Some(Outcome::Ok))], 1).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(j.exists(), "the journal stays where it was");
    }
}
