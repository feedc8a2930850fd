//! The per-pair journal: an append-only file of JSON lines, one record per
//! line, each written and fsynced before the step it announces runs and
//! after it ends. Reading tolerates a torn last line (a crash mid-write);
//! the next append moves such a fragment aside into a file of its own and
//! goes on from the last whole record, so a crash never blocks a pair.
//! Secrets never reach it: command outputs pass through `redact` first.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::cycle::{self, Ended, Kind, Next, Outcome, Shape, Step};
use crate::core::op::OpKind;
use crate::store::{archive, Store, StoreError};

/// One command run during a step, with what it printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Host it ran on (`controller`, or `local` in older journals).
    pub host: String,
    /// The kind of operation (`run` in journals older than operations).
    #[serde(default)]
    pub op: OpKind,
    /// The command line (for other operations, the operation in full, as
    /// `baton plan` prints it).
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
        /// The pair had role hooks when the run began: its steps hand the
        /// primary role over (a run is recovered with the steps it began
        /// with, whatever the configuration says by then).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        roles: bool,
        /// `failover --accept-data-loss`: who accepted losing what the
        /// standby lacks, and why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_loss: Option<String>,
        /// `apply --ramp`: the shares of requests the standby gets, step
        /// by step, before the switch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ramp: Option<crate::core::ramp::Ramp>,
        /// `baton ab`: the A/B experiment's split, length and interval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment: Option<crate::core::experiment::Experiment>,
        /// `apply --hold` (or the pair's `hold`): how long the old primary
        /// is held on the old version after the switch.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "humantime_serde::option"
        )]
        hold: Option<std::time::Duration>,
        /// `baton rollback`: the cycle applies the change's rollback steps
        /// (and, if it must undo, the change itself): the change is taken
        /// back from the pair.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reverse: bool,
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
    /// One sample of an A/B experiment: both hosts over an interval, and
    /// the verdict (written as it is taken, inside the `experiment` step).
    Sample {
        run: String,
        sample: crate::core::experiment::Sample,
        at: String,
    },
    /// The run ended.
    Finish {
        run: String,
        outcome: Outcome,
        message: String,
        at: String,
    },
    /// A notification about the run was sent, or could not be (written
    /// after the run's end: a notifier never delays a step). `run` is
    /// empty for a command refused before any run began.
    Notify {
        run: String,
        /// What it told: `start`, or the outcome.
        about: crate::core::notify::Trigger,
        /// `command`, or `webhook` and the URL as baton shows it (scheme,
        /// host and port: never its path or query).
        target: String,
        /// Whether it was delivered (the command exited 0, the webhook
        /// answered 2xx).
        ok: bool,
        /// What happened (`exit 0`, `HTTP 500 ...`, `timed out after 5s,
        /// killed`), secrets redacted.
        detail: String,
        duration_ms: u64,
        at: String,
    },
}

impl Record {
    /// When it was written (RFC 3339).
    pub fn at(&self) -> &str {
        match self {
            Record::Start { at, .. }
            | Record::Begin { at, .. }
            | Record::End { at, .. }
            | Record::Sample { at, .. }
            | Record::Finish { at, .. }
            | Record::Notify { at, .. } => at,
        }
    }

    /// The run this record belongs to.
    pub fn run(&self) -> &str {
        match self {
            Record::Start { run, .. }
            | Record::Begin { run, .. }
            | Record::End { run, .. }
            | Record::Sample { run, .. }
            | Record::Finish { run, .. }
            | Record::Notify { run, .. } => run,
        }
    }
}

/// A start record for tests in any module: an apply of change `c` on pair
/// `web`, blue to green, by alice.
#[cfg(test)]
impl Record {
    pub fn test_start(run: &str) -> Record {
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
            roles: false,
            data_loss: None,
            ramp: None,
            experiment: None,
            hold: None,
            reverse: false,
            at: "t".into(),
        }
    }
}

/// The records of one run, digested (and, for runs in a rotated segment,
/// kept so in the archive's index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The sum of its steps' own durations, in milliseconds.
    pub took_ms: u64,
    /// When its last record was written (RFC 3339): for a held run, when
    /// the hold began.
    #[serde(default)]
    pub last_at: Option<String>,
    /// Notifications of its events that were sent.
    #[serde(default)]
    pub notified: u32,
    /// Notifications of its events that failed (a notifier that answered an
    /// error, timed out or could not start).
    #[serde(default)]
    pub notify_failed: u32,
}

impl RunView {
    /// The shape its steps have (from the start record's flags).
    pub fn shape(&self) -> Shape {
        match &self.start {
            Record::Start {
                roles,
                ramp,
                experiment,
                hold,
                ..
            } => Shape::of(*roles, ramp.is_some(), experiment.is_some(), hold.is_some()),
            _ => Shape::Plain,
        }
    }

    /// Whether the run is held for the operator's decision (an A/B
    /// experiment watched to its end, or no longer watched): unfinished,
    /// no step open, and the core says it waits.
    pub fn held(&self) -> bool {
        let Record::Start { kind, .. } = &self.start else {
            return false;
        };
        self.finished.is_none()
            && self.open.is_none()
            && cycle::decide_for(*kind, self.shape(), &self.ended) == Next::Finish(Outcome::Held)
    }
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
    /// The store that holds it (not local files) failed.
    #[error("journal of `{pair}`: {source}")]
    Store { pair: String, source: StoreError },
}

/// A pair's journal, in the store it lives in.
#[derive(Debug, Clone)]
pub struct Journal {
    store: Store,
    pair: String,
}

impl Journal {
    /// The journal of `pair` in local files in `state_dir`.
    pub fn new(state_dir: &Path, pair: &str) -> Journal {
        Journal::of(&crate::store::local(state_dir), pair)
    }

    /// The journal of `pair` in `store`.
    pub fn of(store: &Store, pair: &str) -> Journal {
        Journal {
            store: store.clone(),
            pair: pair.to_string(),
        }
    }

    /// The store it lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends one record, durably (see `Backend::append`).
    pub fn append(&self, record: &Record) -> Result<(), JournalError> {
        self.store.append(&self.pair, record)
    }

    /// Every record, oldest first.
    pub fn read(&self) -> Result<Vec<Record>, JournalError> {
        let mut out = Vec::new();
        self.store.each(&self.pair, &mut |r| out.push(r))?;
        Ok(out)
    }

    /// Streams every record, oldest first, to `visit`.
    pub fn each(&self, mut visit: impl FnMut(Record)) -> Result<(), JournalError> {
        self.store.each(&self.pair, &mut visit)
    }

    /// Every run, digested.
    pub fn runs(&self) -> Result<Vec<RunView>, JournalError> {
        self.store.runs(&self.pair)
    }

    /// The last run, digested.
    pub fn last_run(&self) -> Result<Option<RunView>, JournalError> {
        self.store.last_run(&self.pair)
    }

    /// The file of a journal in local files (for tests).
    #[cfg(test)]
    pub fn path(&self) -> PathBuf {
        PathBuf::from(self.store.describe().location).join(format!("{}.journal", self.pair))
    }

    /// What the operator must mend when a record cannot be written.
    pub fn mend_hint(&self) -> String {
        let d = self.store.describe();
        match d.kind {
            "local" => format!("Free the state directory ({})", d.location),
            _ => format!("Bring the store back ({})", d.location),
        }
    }
}

/// A pair's journal file (the local store's journal).
#[derive(Debug, Clone)]
pub struct FileJournal {
    path: PathBuf,
    /// At this size the journal is rotated at the next run's start.
    rotate_at: u64,
}

impl FileJournal {
    /// The journal of `pair` in `state_dir`.
    pub fn new(state_dir: &Path, pair: &str) -> FileJournal {
        FileJournal {
            path: state_dir.join(format!("{pair}.journal")),
            rotate_at: archive::ROTATE_AT,
        }
    }

    /// The same journal, rotated at `bytes` instead (for tests).
    pub fn rotating_at(mut self, bytes: u64) -> FileJournal {
        self.rotate_at = bytes;
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs it (and the directory, when the file
    /// is new). A torn last line left by an earlier crash or full disk is
    /// first moved aside into `PAIR.journal.torn-MILLIS` (never dropped:
    /// it is reported, and kept for a person to read), so the new record
    /// starts on a line of its own. A write that fails is cut back off, so
    /// it leaves no torn line of its own.
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
        if let Record::Start { .. } = record {
            self.rotate_if_large()?;
        }
        let mut line = serde_json::to_vec(record).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        let created = !self.path.exists();
        let mut f =
            super::dir::open_private(&self.path, super::dir::Open::ReadWrite).map_err(err)?;
        let whole = self.set_aside_torn_tail(&mut f).map_err(err)?;
        f.seek(SeekFrom::Start(whole)).map_err(err)?;
        let written = f.write_all(&line).and_then(|()| f.sync_all());
        if let Err(e) = written {
            // Best effort: what did reach the file goes again.
            let _ = f.set_len(whole).and_then(|()| f.sync_all());
            return Err(err(e));
        }
        if created {
            if let Some(dir) = self.path.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
            }
        }
        Ok(())
    }

    /// When the file does not end with a newline, copies the fragment after
    /// its last newline into a file of its own beside it, then cuts it off.
    /// Returns the length of the whole lines.
    fn set_aside_torn_tail(&self, f: &mut File) -> std::io::Result<u64> {
        let len = f.metadata()?.len();
        if len == 0 {
            return Ok(0);
        }
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] == b'\n' {
            return Ok(len);
        }
        // Find the last newline, reading backwards a block at a time.
        let mut end = len;
        let mut whole = 0;
        let mut block = vec![0u8; 64 * 1024];
        while end > 0 {
            let start = end.saturating_sub(block.len() as u64);
            let n = (end - start) as usize;
            f.seek(SeekFrom::Start(start))?;
            f.read_exact(&mut block[..n])?;
            if let Some(i) = block[..n].iter().rposition(|b| *b == b'\n') {
                whole = start + i as u64 + 1;
                break;
            }
            end = start;
        }
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let aside = self
            .path
            .with_file_name(format!("{}.torn-{millis}", self.file_name()));
        let mut out = super::dir::open_private(&aside, super::dir::Open::New)?;
        f.seek(SeekFrom::Start(whole))?;
        std::io::copy(&mut (&*f).take(len - whole), &mut out)?;
        out.sync_all()?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        f.set_len(whole)?;
        f.sync_all()?;
        tracing::warn!(
            journal = %self.path.display(),
            kept = %aside.display(),
            bytes = len - whole,
            "the journal ended in a torn line (a crash or a full disk mid-write); it was moved aside and the journal goes on from its last whole record"
        );
        Ok(whole)
    }

    /// Before a new run starts: a journal past its size whose runs have all
    /// finished goes to the archive (see `store::archive`).
    fn rotate_if_large(&self) -> Result<(), JournalError> {
        let big = fs::symlink_metadata(&self.path).is_ok_and(|m| m.len() >= self.rotate_at);
        if !big {
            return Ok(());
        }
        let mut digest = Digest::default();
        self.scan(&self.path, 0, |r| digest.push(&r))?;
        match archive::rotate(&self.path, &digest.runs, self.rotate_at) {
            Ok(Some(segment)) => {
                tracing::info!(journal = %self.path.display(), segment = %segment.display(), "journal rotated");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(source) => Err(JournalError::Write {
                path: self.path.display().to_string(),
                source,
            }),
        }
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// Every record, oldest first. A torn last line is ignored; a corrupt
    /// line anywhere else is an error.
    pub fn read(&self) -> Result<Vec<Record>, JournalError> {
        let mut out = Vec::new();
        self.scan(&self.path, 0, |r| out.push(r))?;
        Ok(out)
    }

    /// Streams every record, oldest first, of the rotated segments and the
    /// journal to `visit` (one line in memory at a time).
    pub fn each(&self, mut visit: impl FnMut(Record)) -> Result<(), JournalError> {
        for segment in archive::segments(&self.path) {
            self.scan(&segment, 0, &mut visit)?;
        }
        self.scan(&self.path, 0, visit)
    }

    /// Every run, digested: the archive's index, then the journal's own
    /// (the records themselves are not kept: memory stays small however
    /// long the history is).
    pub fn runs(&self) -> Result<Vec<RunView>, JournalError> {
        let mut digest = Digest::default();
        self.scan(&self.path, 0, |r| digest.push(&r))?;
        Ok(archive::merge(archive::indexed(&self.path)?, digest.runs))
    }

    /// The last run in the journal, digested: read from the last start
    /// record to the end, not from the beginning.
    pub fn last_run(&self) -> Result<Option<RunView>, JournalError> {
        let from = self.last_start().map_err(|source| JournalError::Read {
            path: self.path.display().to_string(),
            source,
        })?;
        let mut digest = Digest::default();
        self.scan(&self.path, from, |r| digest.push(&r))?;
        Ok(digest.runs.pop())
    }

    /// Streams the records from byte `from` (the start of a line) to
    /// `visit`, one line in memory at a time, each at most `MAX_LINE`.
    fn scan(
        &self,
        path: &Path,
        from: u64,
        mut visit: impl FnMut(Record),
    ) -> Result<(), JournalError> {
        scan_file(path, from, |number, text, complete| {
            match serde_json::from_str::<Record>(text.trim_end()) {
                Ok(r) => visit(r),
                // A torn last line (a crash mid-write): the next append
                // sets it aside.
                Err(_) if !complete => {}
                // A record glued onto a torn fragment by a version of
                // baton that appended without checking the tail: the
                // record is whole, the fragment before it is not.
                Err(_) if glued(text).is_some() => {
                    if let Some(r) = glued(text) {
                        tracing::warn!(journal = %path.display(), line = number, "a torn fragment precedes a whole record on this line; the fragment is ignored");
                        visit(r);
                    }
                }
                Err(_) if text.trim().is_empty() => {}
                Err(e) => return Err(e.to_string()),
            }
            Ok(())
        })
    }

    /// Where the last start record begins (0 when there is none or the
    /// journal does not exist), found by reading backwards from the end.
    fn last_start(&self) -> std::io::Result<u64> {
        const MARK: &[u8] = b"\n{\"event\":\"start\"";
        const BLOCK: u64 = 64 * 1024;
        let mut f = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let mut end = len;
        let mut buf = Vec::new();
        while end > 0 {
            let start = end.saturating_sub(BLOCK);
            // Overlap the next block by the mark's length, so a mark that
            // straddles two blocks is seen.
            let stop = (end + MARK.len() as u64).min(len);
            buf.resize((stop - start) as usize, 0);
            f.seek(SeekFrom::Start(start))?;
            f.read_exact(&mut buf)?;
            if let Some(i) = buf.windows(MARK.len()).rposition(|w| w == MARK) {
                return Ok(start + i as u64 + 1);
            }
            end = start;
        }
        Ok(0)
    }
}

/// The longest journal line read: far more than any record (each command's
/// outputs are cut at 64 KiB), far less than memory.
const MAX_LINE: usize = 16 << 20;

/// Streams the lines of a JSON-lines file from byte `from` to `line`
/// (its number counted from `from`, its text, whether it ended with a
/// newline), one line in memory at a time, each at most `MAX_LINE`; a
/// missing file has none. `line` says why a line is corrupt.
pub(crate) fn scan_file(
    path: &Path,
    from: u64,
    mut line: impl FnMut(usize, &str, bool) -> Result<(), String>,
) -> Result<(), JournalError> {
    let read_err = |source| JournalError::Read {
        path: path.display().to_string(),
        source,
    };
    let corrupt = |line: usize, reason: String| JournalError::Corrupt {
        path: path.display().to_string(),
        line,
        reason,
    };
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(read_err(e)),
    };
    let mut reader = std::io::BufReader::new(file);
    reader.seek(SeekFrom::Start(from)).map_err(read_err)?;
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(read_err)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let complete = buf.ends_with(b"\n");
        if !complete && buf.len() > MAX_LINE {
            return Err(corrupt(
                number,
                format!(
                    "the line is longer than {MAX_LINE} bytes, more than any record baton writes"
                ),
            ));
        }
        line(number, &String::from_utf8_lossy(&buf), complete).map_err(|e| corrupt(number, e))?;
    }
}

/// Builds run digests from records in order.
#[derive(Default)]
struct Digest {
    runs: Vec<RunView>,
}

impl Digest {
    fn push(&mut self, r: &Record) {
        if let Record::Start { .. } = r {
            self.runs.push(RunView {
                start: r.clone(),
                ended: vec![],
                open: None,
                finished: None,
                finished_at: None,
                took_ms: 0,
                last_at: None,
                notified: 0,
                notify_failed: 0,
            });
            return;
        }
        let Some(view) = self
            .runs
            .iter_mut()
            .rev()
            .find(|v| v.start.run() == r.run())
        else {
            return;
        };
        // A notification, written after the run's end, is no part of the
        // run's own time line (a held run's hold began before it).
        if let Record::Notify { ok, .. } = r {
            match ok {
                true => view.notified += 1,
                false => view.notify_failed += 1,
            }
            return;
        }
        view.last_at = Some(r.at().to_string());
        match r {
            Record::Begin { step, .. } => view.open = Some(*step),
            Record::End {
                step,
                ok,
                duration_ms,
                ..
            } => {
                view.open = None;
                view.took_ms += duration_ms;
                view.ended.push(Ended {
                    step: *step,
                    ok: *ok,
                });
            }
            Record::Finish { outcome, at, .. } => {
                view.finished = Some(*outcome);
                view.finished_at = Some(at.clone());
            }
            Record::Start { .. } | Record::Sample { .. } | Record::Notify { .. } => {}
        }
    }
}

/// The whole record at the end of a line that starts with a torn fragment
/// (records are written with their `event` tag first).
fn glued(line: &str) -> Option<Record> {
    let at = line.rfind("{\"event\":")?;
    (at > 0)
        .then(|| serde_json::from_str(line[at..].trim_end()).ok())
        .flatten()
}

/// Groups records into runs, in order.
pub fn runs(records: &[Record]) -> Vec<RunView> {
    let mut digest = Digest::default();
    for r in records {
        digest.push(r);
    }
    digest.runs
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
        Record::test_start(run)
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
        let j = FileJournal::new(&dir.path().join("state"), "web");
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
    fn a_runs_notifications_are_counted_but_are_no_part_of_its_time_line() {
        let notify = |run: &str, ok: bool| Record::Notify {
            run: run.into(),
            about: crate::core::notify::Trigger::Ok,
            target: "command".into(),
            ok,
            detail: String::new(),
            duration_ms: 7,
            at: "late".into(),
        };
        let records = [
            start("r1"),
            end("r1", Step::Preflight, true),
            notify("r1", true),
            notify("r1", false),
            notify("r1", false),
            start("r2"),
            notify("r2", true),
            notify("", false),
        ];
        let all = runs(&records);
        assert_eq!((all[0].notified, all[0].notify_failed), (1, 2));
        assert_eq!((all[1].notified, all[1].notify_failed), (1, 0));
        assert_eq!(all[0].took_ms, 1);
        assert_eq!(all[0].last_at.as_deref(), Some("t"));
        // a digest written before the counts existed still reads
        let mut old = serde_json::to_value(&all[0]).unwrap();
        old.as_object_mut().unwrap().remove("notify_failed");
        let back: RunView = serde_json::from_value(old).unwrap();
        assert_eq!(back.notify_failed, 0);
    }

    #[test]
    fn a_torn_last_line_is_ignored_a_corrupt_middle_line_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::new(dir.path(), "web");
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

    #[test]
    fn a_torn_tail_is_set_aside_and_the_journal_goes_on_from_its_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::new(dir.path(), "web");
        j.append(&start("r1")).unwrap();
        // A crash mid-write: half a record, no newline.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"event\":\"begin\",\"run\":\"r1\",\"st")
            .unwrap();
        drop(f);
        j.append(&end("r1", Step::Preflight, true)).unwrap();
        let text = fs::read_to_string(j.path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.ends_with('\n'));
        let records = j.read().unwrap();
        assert_eq!(records.len(), 2);
        let kept: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("web.journal.torn-"))
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        let fragment = fs::read_to_string(dir.path().join(&kept[0])).unwrap();
        assert_eq!(fragment, "{\"event\":\"begin\",\"run\":\"r1\",\"st");
        let mode = fs::metadata(dir.path().join(&kept[0]))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_record_glued_onto_a_fragment_by_an_older_baton_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::new(dir.path(), "web");
        j.append(&start("r1")).unwrap();
        let whole = serde_json::to_string(&end("r1", Step::Preflight, true)).unwrap();
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(format!("{{\"event\":\"begin\",\"ru{whole}\n").as_bytes())
            .unwrap();
        drop(f);
        let records = j.read().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1], end("r1", Step::Preflight, true));
    }

    #[test]
    fn a_journal_that_is_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("web.journal")).unwrap();
        let j = FileJournal::new(dir.path(), "web");
        assert!(j.append(&start("r1")).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn the_last_run_is_found_from_the_end_wherever_its_start_falls() {
        // Records of varied sizes put the last start record on either side
        // of the backwards reader's 64 KiB block boundary.
        for pad in (65_400..65_600).step_by(7) {
            let dir = tempfile::tempdir().unwrap();
            let j = FileJournal::new(dir.path(), "web");
            j.append(&start("r1")).unwrap();
            j.append(&Record::End {
                run: "r1".into(),
                step: Step::Preflight,
                ok: true,
                detail: "x".repeat(pad),
                duration_ms: 5,
                commands: vec![],
                at: "t".into(),
            })
            .unwrap();
            j.append(&start("r2")).unwrap();
            j.append(&end("r2", Step::Preflight, false)).unwrap();
            let last = j.last_run().unwrap().unwrap();
            assert_eq!(last.start.run(), "r2", "pad {pad}");
            assert_eq!(Some(last), j.runs().unwrap().pop(), "pad {pad}");
        }
    }

    #[test]
    fn a_line_longer_than_any_record_is_refused_without_reading_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::new(dir.path(), "web");
        j.append(&start("r1")).unwrap();
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(&vec![b'x'; MAX_LINE + 10]).unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        j.append(&start("r2")).unwrap();
        let e = j.read().unwrap_err();
        assert!(matches!(e, JournalError::Corrupt { line: 2, .. }), "{e}");
        // The last run is read from its own start: an old broken line does
        // not stop the next command on the pair.
        assert_eq!(j.last_run().unwrap().unwrap().start.run(), "r2");
    }

    fn finished(run: &str) -> Record {
        Record::Finish {
            run: run.into(),
            outcome: Outcome::Ok,
            message: "done".into(),
            at: "t".into(),
        }
    }

    #[test]
    fn a_large_journal_is_rotated_at_the_next_start_and_no_run_is_lost_or_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::new(dir.path(), "web").rotating_at(600);
        for run in ["r1", "r2"] {
            j.append(&start(run)).unwrap();
            j.append(&end(run, Step::Preflight, true)).unwrap();
            j.append(&finished(run)).unwrap();
        }
        assert!(
            archive::segments(j.path()).is_empty(),
            "rotation waits for a start"
        );
        j.append(&start("r3")).unwrap();
        let segments = archive::segments(j.path());
        assert_eq!(segments.len(), 1);
        // The journal now holds only the new run; the index the old ones.
        assert_eq!(j.read().unwrap(), vec![start("r3")]);
        let ids = |v: Vec<RunView>| -> Vec<String> {
            v.iter().map(|v| v.start.run().to_string()).collect()
        };
        assert_eq!(ids(j.runs().unwrap()), ["r1", "r2", "r3"]);
        assert_eq!(j.last_run().unwrap().unwrap().start.run(), "r3");
        let mut all = Vec::new();
        j.each(|r| all.push(r.run().to_string())).unwrap();
        assert_eq!(all.len(), 7, "every record of every segment: {all:?}");
        assert_eq!(all[0], "r1");
        // A crash after the index was written but before the journal was
        // renamed leaves a run in both: it is counted once.
        let other = tempfile::tempdir().unwrap();
        let k = FileJournal::new(other.path(), "web");
        k.append(&start("r1")).unwrap();
        k.append(&finished("r1")).unwrap();
        let digest = serde_json::to_string(&k.runs().unwrap()[0]).unwrap();
        fs::write(archive::index_path(k.path()), digest + "\n").unwrap();
        assert_eq!(ids(k.runs().unwrap()), ["r1"]);
        let index = archive::index_path(j.path());
        let mode = fs::metadata(&index).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_journal_whose_last_run_is_unfinished_is_never_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let j = FileJournal::new(dir.path(), "web").rotating_at(100);
        j.append(&start("r1")).unwrap();
        j.append(&end("r1", Step::Preflight, true)).unwrap();
        // r1 never finished (the controller died); the next start is r1's
        // recovery's business, not a rotation.
        j.append(&start("r2")).unwrap();
        assert!(archive::segments(j.path()).is_empty());
        assert_eq!(j.read().unwrap().len(), 3);
    }
}
