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
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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
    let mut index = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(index_path(journal))?;
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
