//! The per-pair journal: an append-only file of JSON lines, one record per
//! line, each written and fsynced before the step it announces runs and
//! after it ends. Reading tolerates a torn last line (a crash mid-write).
//! Secrets never reach it: command outputs pass through `redact` first.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::cycle::{Ended, Kind, Outcome, Step};

/// One command run during a step, with what it printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Host it ran on (or `local`).
    pub host: String,
    /// The command line.
    pub command: String,
    /// Exit status; `None` if it did not finish.
    pub status: Option<i32>,
    /// Standard output (redacted).
    pub stdout: String,
    /// Standard error (redacted).
    pub stderr: String,
    /// Wall time.
    pub duration_ms: u64,
}

/// One journal line.
// The start record is the large one (about 300 bytes inline); next to the
// strings every record owns on the heap, boxing it would save little.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// A run started.
    Start {
        run: String,
        pair: String,
        kind: Kind,
        /// Primary at the start (the old primary).
        from: String,
        /// Standby at the start (the new primary).
        to: String,
        change: Option<String>,
        label: Option<String>,
        hash: Option<String>,
        operator: String,
        reason: Option<String>,
        /// The environment gate's decision, or why it was skipped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gate: Option<String>,
        /// The maintenance window's decision, or why it was ignored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<String>,
        /// `failover --force`: who declared the primary unfit, and why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forced: Option<String>,
        at: String,
    },
    /// A step is about to run.
    Begin { run: String, step: Step, at: String },
    /// A step ended.
    End {
        run: String,
        step: Step,
        ok: bool,
        detail: String,
        duration_ms: u64,
        #[serde(default)]
        commands: Vec<CommandRecord>,
        at: String,
    },
    /// The run ended.
    Finish {
        run: String,
        outcome: Outcome,
        message: String,
        at: String,
    },
}

impl Record {
    /// The run this record belongs to.
    pub fn run(&self) -> &str {
        match self {
            Record::Start { run, .. }
            | Record::Begin { run, .. }
            | Record::End { run, .. }
            | Record::Finish { run, .. } => run,
        }
    }
}

/// The records of one run, digested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    /// Its start record.
    pub start: Record,
    /// Steps that ended, in order.
    pub ended: Vec<Ended>,
    /// A step that began and never ended (the controller died inside it).
    pub open: Option<Step>,
    /// How it finished, if it did.
    pub finished: Option<Outcome>,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
}

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write journal {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read journal {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("journal {path} line {line} is corrupt ({reason}); it is never rewritten by baton: move it aside only after reading it")]
    Corrupt {
        path: String,
        line: usize,
        reason: String,
    },
}

/// A pair's journal file.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal of `pair` in `state_dir`.
    pub fn new(state_dir: &Path, pair: &str) -> Journal {
        Journal {
            path: state_dir.join(format!("{pair}.journal")),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs it.
    pub fn append(&self, record: &Record) -> Result<(), JournalError> {
        let err = |source| JournalError::Write {
            path: self.path.display().to_string(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let mut line = serde_json::to_vec(record).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        let created = !self.path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(err)?;
        f.write_all(&line).map_err(err)?;
        f.sync_all().map_err(err)?;
        if created {
            if let Some(dir) = self.path.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Every record, oldest first. A torn last line is ignored; a corrupt
    /// line anywhere else is an error.
    pub fn read(&self) -> Result<Vec<Record>, JournalError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(source) => {
                return Err(JournalError::Read {
                    path: self.path.display().to_string(),
                    source,
                })
            }
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let complete = line.ends_with('\n');
            match serde_json::from_str::<Record>(line.trim_end()) {
                Ok(r) => out.push(r),
                Err(_) if !complete && i + 1 == lines.len() => {}
                Err(e) if line.trim().is_empty() => {
                    let _ = e;
                }
                Err(e) => {
                    return Err(JournalError::Corrupt {
                        path: self.path.display().to_string(),
                        line: i + 1,
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The last run in the journal, digested.
    pub fn last_run(&self) -> Result<Option<RunView>, JournalError> {
        Ok(runs(&self.read()?).pop())
    }
}

/// Groups records into runs, in order.
pub fn runs(records: &[Record]) -> Vec<RunView> {
    let mut out: Vec<RunView> = Vec::new();
    for r in records {
        match r {
            Record::Start { .. } => out.push(RunView {
                start: r.clone(),
                ended: vec![],
                open: None,
                finished: None,
                finished_at: None,
            }),
            _ => {
                let Some(view) = out.iter_mut().rev().find(|v| v.start.run() == r.run()) else {
                    continue;
                };
                match r {
                    Record::Begin { step, .. } => view.open = Some(*step),
                    Record::End { step, ok, .. } => {
                        view.open = None;
                        view.ended.push(Ended {
                            step: *step,
                            ok: *ok,
                        });
                    }
                    Record::Finish { outcome, at, .. } => {
                        view.finished = Some(*outcome);
                        view.finished_at = Some(at.clone());
                    }
                    Record::Start { .. } => {}
                }
            }
        }
    }
    out
}

/// Replaces every occurrence of each secret, however short, with
/// `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn start(run: &str) -> Record {
        Record::Start {
            run: run.into(),
            pair: "web".into(),
            kind: Kind::Apply,
            from: "blue".into(),
            to: "green".into(),
            change: Some("c".into()),
            label: Some("l".into()),
            hash: Some("h".into()),
            operator: "alice".into(),
            reason: Some("why".into()),
            gate: None,
            window: None,
            forced: None,
            at: "t".into(),
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
            at: "t".into(),
        }
    }

    #[test]
    fn appends_reads_and_digests_runs() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(&dir.path().join("state"), "web");
        assert_eq!(j.last_run().unwrap(), None);
        j.append(&start("r1")).unwrap();
        j.append(&Record::Begin {
            run: "r1".into(),
            step: Step::Preflight,
            at: "t".into(),
        })
        .unwrap();
        j.append(&end("r1", Step::Preflight, true)).unwrap();
        j.append(&Record::Finish {
            run: "r1".into(),
            outcome: Outcome::Ok,
            message: String::new(),
            at: "t".into(),
        })
        .unwrap();
        j.append(&start("r2")).unwrap();
        j.append(&Record::Begin {
            run: "r2".into(),
            step: Step::Switch,
            at: "t".into(),
        })
        .unwrap();
        let last = j.last_run().unwrap().unwrap();
        assert_eq!(last.start.run(), "r2");
        assert_eq!(last.open, Some(Step::Switch));
        assert_eq!(last.finished, None);
        let all = runs(&j.read().unwrap());
        assert_eq!(all[0].finished, Some(Outcome::Ok));
        assert_eq!(
            all[0].ended,
            vec![Ended {
                step: Step::Preflight,
                ok: true
            }]
        );
        let mode = fs::metadata(j.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_torn_last_line_is_ignored_a_corrupt_middle_line_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path(), "web");
        j.append(&start("r1")).unwrap();
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"event\":\"begin\",\"ru").unwrap();
        assert_eq!(j.read().unwrap().len(), 1);
        f.write_all(b"\n").unwrap();
        j.append(&start("r2")).unwrap();
        let e = j.read().unwrap_err();
        assert!(e.to_string().contains("line 2 is corrupt"), "{e}");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("key=s3cr3t!", &["s3cr3t".into()]), "key=<redacted>!");
        // An empty secret redacts nothing; a short one is still a secret.
        assert_eq!(redact("abc", &["".into()]), "abc");
        assert_eq!(redact("pw=ab.", &["ab".into()]), "pw=<redacted>.");
    }
}
