//! Per-pair state documents: the recorded roles (which host is primary),
//! and for a pair with role hooks the last replication position seen from
//! its primary (its own document, written by `status` as well as by runs,
//! so that an observation never rewrites the roles a run is changing), a
//! pause, the watcher's last look; typed here, kept by the store's
//! backend. The local backend's files (`read_file`, `write_file`) are
//! written atomically (temporary file in the same directory, fsync,
//! rename, directory fsync) with mode 0600 in a 0700 state directory.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::store::Store;

use serde::{Deserialize, Serialize};

/// What baton has recorded about a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairState {
    /// The pair's name.
    pub pair: String,
    /// The host that holds traffic.
    pub primary: String,
    /// The host that does not.
    pub standby: String,
    /// When this was recorded (RFC 3339, UTC).
    pub updated_at: String,
    /// Why: `observed` (first sight, derived from reality) or the command
    /// that changed it.
    pub source: String,
    /// A host marked failed by a failover, until `baton rejoin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The last replication position baton saw from a pair's writable
/// primary: what a failover compares the standby with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenPosition {
    /// The primary it was read from.
    pub host: String,
    /// The position, as the hook printed it.
    pub position: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// An operator's pause of a pair's automatic failover (`baton pause`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// Who paused it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// Errors reading or writing state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt ({reason}); move it aside and run `baton status` to record the roles from what the hosts say")]
    Corrupt { path: String, reason: String },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("state `{doc}`: {source}")]
    Store {
        doc: String,
        source: crate::store::StoreError,
    },
}

/// The pairs' state documents, in the store they live in.
#[derive(Debug, Clone)]
pub struct StateStore {
    store: Store,
}

impl StateStore {
    /// Local files in `dir` (created 0700 on first write).
    pub fn new(dir: &Path) -> StateStore {
        StateStore::of(&crate::store::local(dir))
    }

    /// The documents of `store`.
    pub fn of(store: &Store) -> StateStore {
        StateStore {
            store: store.clone(),
        }
    }

    fn path(&self, pair: &str) -> String {
        format!("{pair}.state.json")
    }

    fn position_path(&self, pair: &str) -> String {
        format!("{pair}.position.json")
    }

    fn read<T: serde::de::DeserializeOwned>(&self, doc: &str) -> Result<Option<T>, StateError> {
        let Some(body) = self.store.load(doc)? else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path: self.store.whereis(doc),
                reason: e.to_string(),
            })
    }

    /// The recorded state of a pair, if any.
    pub fn load(&self, pair: &str) -> Result<Option<PairState>, StateError> {
        self.read(&self.path(pair))
    }

    /// Records a pair's state atomically.
    pub fn save(&self, state: &PairState) -> Result<(), StateError> {
        self.write(&self.path(&state.pair), state)
    }

    fn pause_path(&self, pair: &str) -> String {
        format!("{pair}.pause.json")
    }

    /// The pair's pause, if an operator paused its automatic failover.
    pub fn load_pause(&self, pair: &str) -> Result<Option<Pause>, StateError> {
        self.read(&self.pause_path(pair))
    }

    /// Pauses a pair's automatic failover.
    pub fn save_pause(&self, pair: &str, pause: &Pause) -> Result<(), StateError> {
        self.write(&self.pause_path(pair), pause)
    }

    /// Resumes it: the pause is removed (durably); `false` when there
    /// was none.
    pub fn clear_pause(&self, pair: &str) -> Result<bool, StateError> {
        self.store.remove(&self.pause_path(pair))
    }

    /// The last report `baton watch` wrote, if any (`store::watch`).
    pub fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StateError> {
        self.read(name)
    }

    /// Writes a JSON document atomically.
    pub fn save_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        self.write(name, value)
    }

    /// The last position seen from a pair's primary, if any.
    pub fn load_position(&self, pair: &str) -> Result<Option<SeenPosition>, StateError> {
        self.read(&self.position_path(pair))
    }

    /// Records the last position seen from a pair's primary.
    pub fn save_position(&self, pair: &str, seen: &SeenPosition) -> Result<(), StateError> {
        self.write(&self.position_path(pair), seen)
    }

    /// Records `position`, read from `host` as a writable primary, unless
    /// a later position of the same host is already recorded (a slower
    /// observation finishing after a faster one never moves it back).
    pub fn remember_position(
        &self,
        pair: &str,
        host: &str,
        position: crate::core::position::Position,
    ) -> Result<(), StateError> {
        if let Some(old) = self.load_position(pair)? {
            let older = crate::core::position::Position::parse(&old.position)
                .ok()
                .and_then(|p| position.compare(p).ok());
            if old.host == host && older == Some(std::cmp::Ordering::Less) {
                return Ok(());
            }
        }
        self.save_position(
            pair,
            &SeenPosition {
                host: host.to_string(),
                position: position.to_string(),
                at: now_rfc3339(),
            },
        )
    }

    fn write<T: Serialize>(&self, doc: &str, value: &T) -> Result<(), StateError> {
        let mut body = serde_json::to_vec_pretty(value).map_err(|e| StateError::Write {
            path: self.store.whereis(doc),
            source: std::io::Error::other(e),
        })?;
        body.push(b'\n');
        self.store.save(doc, &body)
    }
}

/// Writes `body` to `dir/name` atomically (0600 in a 0700 directory).
pub(crate) fn write_file(dir: &Path, name: &str, body: &[u8]) -> Result<(), StateError> {
    let path = dir.join(name);
    let dir_err = |source| StateError::Dir {
        path: dir.display().to_string(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(dir_err)?;
    let write_err = |source| StateError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".state-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(body).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(&path).map_err(|e| write_err(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)?;
    Ok(())
}

/// Removes `dir/name` durably; `false` when there was none.
pub(crate) fn remove_file(dir: &Path, name: &str) -> Result<bool, StateError> {
    let path = dir.join(name);
    let err = |source| StateError::Write {
        path: path.display().to_string(),
        source,
    };
    match fs::remove_file(&path) {
        Ok(()) => {
            File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(err(e)),
    }
}

/// A state file's bytes, if any: not through a symlink, at most 64 KiB
/// (a state file is a few hundred bytes).
pub(crate) fn read_file(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    let read = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|f| {
            let mut body = Vec::new();
            f.take(64 << 10).read_to_end(&mut body).map(|_| body)
        });
    match read {
        Ok(body) => Ok(Some(body)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Now, in RFC 3339 UTC with milliseconds (records, events, lock holders).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_private_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(&dir.path().join("state"));
        assert_eq!(store.load("web").unwrap(), None);
        let s = PairState {
            pair: "web".into(),
            primary: "blue".into(),
            standby: "green".into(),
            updated_at: now_rfc3339(),
            source: "observed".into(),
            failed: None,
        };
        store.save(&s).unwrap();
        assert_eq!(store.load("web").unwrap(), Some(s.clone()));
        let file_mode = fs::metadata(dir.path().join("state/web.state.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        let dir_mode = fs::metadata(dir.path().join("state"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!((file_mode, dir_mode), (0o600, 0o700));
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_seen_position_only_moves_forward_for_its_host() {
        use crate::core::position::Position;
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert_eq!(store.load_position("db").unwrap(), None);
        store
            .remember_position("db", "db1", Position::Lsn(0x300))
            .unwrap();
        store
            .remember_position("db", "db1", Position::Lsn(0x200))
            .unwrap();
        assert_eq!(
            store.load_position("db").unwrap().unwrap().position,
            "0/300"
        );
        store
            .remember_position("db", "db1", Position::Lsn(0x400))
            .unwrap();
        assert_eq!(
            store.load_position("db").unwrap().unwrap().position,
            "0/400"
        );
        // Another primary's position replaces it, whatever its value.
        store
            .remember_position("db", "db2", Position::Lsn(0x100))
            .unwrap();
        let seen = store.load_position("db").unwrap().unwrap();
        assert_eq!(
            (seen.host.as_str(), seen.position.as_str()),
            ("db2", "0/100")
        );
        let mode = fs::metadata(dir.path().join("db.position.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn corrupt_state_is_reported_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("web.state.json"), "{not json").unwrap();
        let e = StateStore::new(dir.path()).load("web").unwrap_err();
        assert!(e.to_string().contains("corrupt"), "{e}");
    }

    fn state(failed: Option<&str>) -> PairState {
        PairState {
            pair: "web".into(),
            primary: "green".into(),
            standby: "blue".into(),
            updated_at: "2026-11-20T02:00:00.000Z".into(),
            source: "failover".into(),
            failed: failed.map(String::from),
        }
    }

    #[test]
    fn a_failed_host_is_kept_and_absent_when_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        store.save(&state(Some("blue"))).unwrap();
        assert_eq!(store.load("web").unwrap(), Some(state(Some("blue"))));
        // Rejoined: saved again without it, and the file no longer names it.
        store.save(&state(None)).unwrap();
        assert_eq!(store.load("web").unwrap(), Some(state(None)));
        let text = fs::read_to_string(dir.path().join("web.state.json")).unwrap();
        assert!(!text.contains("failed"), "{text}");
    }

    #[test]
    fn an_unknown_field_is_corrupt_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(state(None)).unwrap();
        v["primry"] = "blue".into();
        fs::write(dir.path().join("web.state.json"), v.to_string()).unwrap();
        let e = StateStore::new(dir.path()).load("web").unwrap_err();
        assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("primry"), "{e}");
    }

    #[test]
    fn a_state_file_that_is_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.json");
        fs::write(&elsewhere, serde_json::to_string(&state(None)).unwrap()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("web.state.json")).unwrap();
        let e = StateStore::new(dir.path()).load("web").unwrap_err();
        assert!(matches!(e, StateError::Read { .. }), "{e}");
    }

    #[test]
    fn a_huge_state_file_is_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        // Valid JSON, but padded past the 64 KiB a state file may have:
        // only its start is read, which does not parse.
        let text = serde_json::to_string(&state(None)).unwrap();
        let padded = format!("{}{}}}", &text[..text.len() - 1], " ".repeat(128 << 10));
        assert!(serde_json::from_str::<PairState>(&padded).is_ok());
        fs::write(dir.path().join("web.state.json"), padded).unwrap();
        let e = StateStore::new(dir.path()).load("web").unwrap_err();
        assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
    }

    #[test]
    fn saving_into_a_state_dir_that_is_a_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        fs::write(&file, "").unwrap();
        let e = StateStore::new(&file).save(&state(None)).unwrap_err();
        assert!(matches!(e, StateError::Dir { .. }), "{e}");
    }

    #[test]
    fn now_is_rfc3339_utc_with_milliseconds() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-11-20T02:00:00.000Z".len(), "{now}");
        assert!(now.ends_with('Z'), "{now}");
        humantime::parse_rfc3339(&now).unwrap();
    }
}
