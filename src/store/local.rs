//! The local store: files in `state_dir`, as baton always kept them. The
//! journal is `PAIR.journal` (`journal::FileJournal`, with its archive),
//! documents are files written atomically (`state::write_file`), the run
//! lock is `PAIR.lock` (`lock::acquire`), the watchers' leadership is a
//! `flock` on `watch.lock` (so two watchers on one state directory never
//! both act: the second stands by), and a watcher's view is
//! `watcher.ID.view.json`.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::journal::{FileJournal, JournalError, Record, RunView};
use super::lock::{self, LockError, LockOwner, PairLock};
use super::state::{self, StateError};
use super::{Backend, Described, Leadership, StoreError};

/// Local files in one directory.
#[derive(Debug)]
pub struct Local {
    dir: PathBuf,
    /// The leadership's lock file while this process leads.
    leading: Mutex<Option<File>>,
}

impl Local {
    /// The store in `dir` (created 0700 on first write).
    pub fn new(dir: &Path) -> Local {
        Local {
            dir: dir.to_path_buf(),
            leading: Mutex::new(None),
        }
    }

    fn journal(&self, pair: &str) -> FileJournal {
        FileJournal::new(&self.dir, pair)
    }

    fn unavailable(&self, e: &std::io::Error) -> StoreError {
        StoreError::Unavailable {
            store: self.dir.display().to_string(),
            reason: e.to_string(),
        }
    }

    fn view_name(me: &str) -> String {
        format!("watcher.{me}.view.json")
    }
}

/// The file of the watchers' leadership.
const LEADER_FILE: &str = "watch.lock";

impl Backend for Local {
    fn describe(&self) -> Described {
        Described {
            kind: "local",
            location: self.dir.display().to_string(),
        }
    }

    fn append(&self, pair: &str, record: &Record) -> Result<(), JournalError> {
        self.journal(pair).append(record)
    }

    fn each(&self, pair: &str, visit: &mut dyn FnMut(Record)) -> Result<(), JournalError> {
        self.journal(pair).each(visit)
    }

    fn runs(&self, pair: &str) -> Result<Vec<RunView>, JournalError> {
        self.journal(pair).runs()
    }

    fn last_run(&self, pair: &str) -> Result<Option<RunView>, JournalError> {
        self.journal(pair).last_run()
    }

    fn whereis(&self, doc: &str) -> String {
        self.dir.join(doc).display().to_string()
    }

    fn load(&self, doc: &str) -> Result<Option<Vec<u8>>, StateError> {
        state::read_file(&self.dir.join(doc))
    }

    fn save(&self, doc: &str, body: &[u8]) -> Result<(), StateError> {
        state::write_file(&self.dir, doc, body)
    }

    fn remove(&self, doc: &str) -> Result<bool, StateError> {
        state::remove_file(&self.dir, doc)
    }

    fn lock(&self, pair: &str, owner: &LockOwner) -> Result<PairLock, LockError> {
        lock::acquire(&self.dir, pair, owner)
    }

    fn held_by(&self, pair: &str) -> Option<LockOwner> {
        lock::held_by(&self.dir, pair)
    }

    fn lead(&self, me: &str) -> Result<Leadership, StoreError> {
        // A local lock lasts as long as the process: no lease to renew.
        let until = Instant::now() + Duration::from_secs(86400);
        let mut leading = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        if leading.is_some() {
            return Ok(Leadership::Leading { until });
        }
        let mut file = lock::open_lock_file(&self.dir, &self.dir.join(LEADER_FILE))
            .map_err(|e| self.unavailable(&e))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| file.write_all(me.as_bytes()))
                    .and_then(|()| file.sync_all())
                    .map_err(|e| self.unavailable(&e))?;
                *leading = Some(file);
                Ok(Leadership::Leading { until })
            }
            Err(TryLockError::WouldBlock) => {
                let mut name = String::new();
                let _ = file.take(256).read_to_string(&mut name);
                Ok(Leadership::Following {
                    leader: if name.is_empty() {
                        "unknown".to_string()
                    } else {
                        name
                    },
                })
            }
            Err(TryLockError::Error(e)) => Err(self.unavailable(&e)),
        }
    }

    fn resign(&self, _me: &str) {
        if let Ok(mut leading) = self.leading.lock() {
            *leading = None;
        }
    }

    fn leader(&self) -> Result<Option<String>, StoreError> {
        // The file names the last leader; the kernel's table says whether
        // it still leads (asked without taking the lock).
        let path = self.dir.join(LEADER_FILE);
        let alive = lock::flock_holder_of(&path).is_some();
        if !alive {
            return Ok(None);
        }
        Ok(state::read_file(&path)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(256)]).into_owned()))
    }

    fn publish_view(&self, me: &str, view: &[u8]) -> Result<(), StoreError> {
        state::write_file(&self.dir, &Local::view_name(me), view).map_err(|e| {
            StoreError::Unavailable {
                store: self.dir.display().to_string(),
                reason: e.to_string(),
            }
        })
    }

    fn views(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.unavailable(&e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_prefix("watcher.")
                .and_then(|n| n.strip_suffix(".view.json"))
            else {
                continue;
            };
            if let Ok(Some(body)) = state::read_file(&entry.path()) {
                out.push((id.to_string(), body));
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_watcher_leads_a_state_directory_the_other_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Local::new(dir.path());
        let b = Local::new(dir.path());
        assert!(matches!(a.lead("ctl-a"), Ok(Leadership::Leading { .. })));
        assert!(
            matches!(a.lead("ctl-a"), Ok(Leadership::Leading { .. })),
            "again"
        );
        assert_eq!(
            b.lead("ctl-b"),
            Ok(Leadership::Following {
                leader: "ctl-a".into()
            })
        );
        assert_eq!(b.leader(), Ok(Some("ctl-a".into())));
        a.resign("ctl-a");
        assert!(matches!(b.lead("ctl-b"), Ok(Leadership::Leading { .. })));
        assert_eq!(a.leader(), Ok(Some("ctl-b".into())));
        b.resign("ctl-b");
        assert_eq!(a.leader(), Ok(None), "nobody leads");
    }

    #[test]
    fn documents_and_views_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Local::new(&dir.path().join("state"));
        assert_eq!(s.load("web.state.json").expect("load"), None);
        s.save("web.state.json", b"{}\n").expect("save");
        assert_eq!(
            s.load("web.state.json").expect("load"),
            Some(b"{}\n".to_vec())
        );
        assert!(s.remove("web.state.json").expect("remove"));
        assert!(!s.remove("web.state.json").expect("remove again"));
        s.publish_view("ctl-b", b"{\"b\":1}").expect("publish");
        s.publish_view("ctl-a", b"{\"a\":1}").expect("publish");
        let v = s.views().expect("views");
        assert_eq!(
            v.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["ctl-a", "ctl-b"]
        );
    }
}
