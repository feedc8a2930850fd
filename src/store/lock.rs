//! One run per pair at a time: the lock a run holds from start to end
//! (`PairLock`, from any backend), and the local store's lock: an
//! exclusive, non-blocking `flock` on `STATE_DIR/PAIR.lock`, held for the
//! whole run and released by the kernel when the process ends (even by
//! kill -9). The file says who holds it, so a refused run can tell the
//! operator who and since when.

use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// Process id.
    pub pid: u32,
    /// Operator.
    pub operator: String,
    /// What it is doing.
    pub command: String,
    /// Since when (RFC 3339).
    pub since: String,
    /// The controller it runs on (its host name), when the lock is shared
    /// by several controllers (a pid means nothing elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// This controller's host name, as a lock's holder names it.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Errors taking a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("pair `{pair}` is busy: {} (pid {}) has been running `{}` since {}; wait for it, or check that process", .holder.operator, .holder.pid, .holder.command, .holder.since)]
    Held {
        pair: String,
        holder: Box<LockOwner>,
    },
    #[error("pair `{pair}` is locked by another baton run (its holder is not recorded yet)")]
    HeldUnknown { pair: String },
    #[error("cannot take the lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot take pair `{pair}`'s lock: {source}")]
    Store {
        pair: String,
        source: crate::store::StoreError,
    },
}

/// What keeps a lock held; it is released when this is dropped.
pub trait Guard: Send + Sync + std::fmt::Debug {
    /// Whether the lock is still this process's (a lease can end).
    fn held(&self) -> bool;
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct PairLock {
    guard: Box<dyn Guard>,
}

impl PairLock {
    /// A lock kept by `guard`.
    pub fn new(guard: Box<dyn Guard>) -> PairLock {
        PairLock { guard }
    }

    /// Whether it is still held: a local lock always is; an etcd lock as
    /// long as the controller's lease lives.
    pub fn held(&self) -> bool {
        self.guard.held()
    }
}

/// A local lock: the open file with its `flock`.
#[derive(Debug)]
struct FileGuard(#[allow(dead_code, reason = "held for its flock, released on drop")] File);

impl Guard for FileGuard {
    fn held(&self) -> bool {
        true
    }
}

/// Takes the pair's lock in `state_dir`, or says at once who holds it.
pub fn acquire(state_dir: &Path, pair: &str, holder: &LockOwner) -> Result<PairLock, LockError> {
    let path = state_dir.join(format!("{pair}.lock"));
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = open_lock_file(state_dir, &path).map_err(io)?;
    // flock(2) with LOCK_EX | LOCK_NB on Linux, as `held_by` expects.
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(
                // From the descriptor already open (no second lookup of the
                // path), and bounded.
                match read_holder(&file) {
                    Some(holder) => LockError::Held {
                        pair: pair.to_string(),
                        holder: Box::new(holder),
                    },
                    None => LockError::HeldUnknown {
                        pair: pair.to_string(),
                    },
                },
            );
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let body = serde_json::to_vec(holder).map_err(|e| io(std::io::Error::other(e)))?;
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(&body).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(PairLock::new(Box::new(FileGuard(file))))
}

/// Opens (creating it 0600, and its directory 0700) a lock file in
/// `dir`; a symlink planted there is refused, never followed to a file
/// elsewhere.
pub fn open_lock_file(dir: &Path, path: &Path) -> std::io::Result<File> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    super::dir::open_private(path, super::dir::Open::ReadWrite)
}

/// Who holds the pair's lock now, if a live process does: read from the
/// kernel's table of file locks (`/proc/locks`), so asking takes nothing
/// (a status must never make a starting run find the pair busy). `None`
/// when nobody holds it, the lock file does not exist, or the table cannot
/// be read.
pub fn held_by(state_dir: &Path, pair: &str) -> Option<LockOwner> {
    let path = state_dir.join(format!("{pair}.lock"));
    let (file, pid) = flock_holder_open(&path)?;
    Some(
        read_holder(&file)
            .filter(|h| h.pid == pid)
            .unwrap_or(LockOwner {
                pid,
                operator: "unknown".to_string(),
                command: "unknown".to_string(),
                since: "unknown".to_string(),
                host: None,
            }),
    )
}

/// The pid holding an exclusive `flock` on the file at `path`, if a live
/// process does (from `/proc/locks`, taking nothing).
pub fn flock_holder_of(path: &Path) -> Option<u32> {
    flock_holder_open(path).map(|(_, pid)| pid)
}

/// The file at `path`, opened, and the pid holding its `flock`.
fn flock_holder_open(path: &Path) -> Option<(File, u32)> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let mut table = String::new();
    File::open("/proc/locks")
        .ok()?
        .take(4 << 20)
        .read_to_string(&mut table)
        .ok()?;
    let pid = flock_holder(&table, meta.dev(), meta.ino())?;
    Some((file, pid))
}

/// The holder a lock file records, read from its start (at most 64 KiB).
fn read_holder(file: &File) -> Option<LockOwner> {
    use std::os::unix::fs::FileExt;
    let mut body = vec![0u8; 64 << 10];
    let n = file.read_at(&mut body, 0).ok()?;
    body.truncate(n);
    serde_json::from_slice(&body).ok()
}

/// The pid holding an exclusive `flock` on the file (device, inode) in a
/// `/proc/locks` table: `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`,
/// the device as hexadecimal major:minor.
fn flock_holder(table: &str, dev: u64, ino: u64) -> Option<u32> {
    let want = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    table.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        // Blocked waiters are listed as `1: -> FLOCK ...`: not holders.
        match words.as_slice() {
            [_, "FLOCK", _, "WRITE", pid, file, ..] if *file == want => pid.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn holder(pid: u32) -> LockOwner {
        LockOwner {
            pid,
            operator: "alice".into(),
            command: "apply web".into(),
            since: "2026-01-01T00:00:00Z".into(),
            host: None,
        }
    }

    #[test]
    fn a_second_taker_is_refused_with_the_holder_and_can_take_it_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "web", &holder(1)).unwrap();
        let e = acquire(dir.path(), "web", &holder(2)).unwrap_err();
        assert!(
            e.to_string()
                .contains("alice (pid 1) has been running `apply web` since 2026-01-01T00:00:00Z"),
            "{e}"
        );
        // Another pair is independent.
        let _other = acquire(dir.path(), "api", &holder(3)).unwrap();
        drop(first);
        let _again = acquire(dir.path(), "web", &holder(4)).unwrap();
    }

    #[test]
    fn the_holder_is_read_from_the_kernel_without_taking_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(held_by(dir.path(), "web"), None, "no lock file yet");
        let me = holder(std::process::id());
        let lock = acquire(dir.path(), "web", &me).unwrap();
        assert_eq!(held_by(dir.path(), "web"), Some(me.clone()));
        // Asking took nothing: the lock is still ours alone.
        assert!(acquire(dir.path(), "web", &holder(2)).is_err());
        drop(lock);
        // The file stays, nobody holds it.
        assert!(dir.path().join("web.lock").exists());
        assert_eq!(held_by(dir.path(), "web"), None);
    }

    #[test]
    fn a_lock_file_that_is_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("web.lock")).unwrap();
        assert!(matches!(
            acquire(dir.path(), "web", &holder(1)),
            Err(LockError::Io { .. })
        ));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn lock_table_lines() {
        let dev = libc::makedev(0x08, 0x01);
        let table = "1: POSIX  ADVISORY  WRITE 77 08:01:5678 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 99 08:01:5678 0 EOF\n";
        assert_eq!(flock_holder(table, dev, 5678), Some(1234));
        assert_eq!(flock_holder(table, dev, 5679), None);
        assert_eq!(flock_holder(table, libc::makedev(0x08, 0x02), 5678), None);
        let shared = "3: FLOCK  ADVISORY  READ 1234 08:01:5678 0 EOF\n";
        assert_eq!(flock_holder(shared, dev, 5678), None);
    }

    #[test]
    fn a_lock_held_by_a_run_that_has_not_written_its_holder_yet_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.lock");
        fs::write(&path, "").unwrap();
        let other = File::open(&path).unwrap();
        other.try_lock().unwrap();
        let e = acquire(dir.path(), "web", &holder(1)).unwrap_err();
        assert!(matches!(e, LockError::HeldUnknown { .. }), "{e}");
        assert!(e.to_string().contains("not recorded yet"), "{e}");
        drop(other);
        acquire(dir.path(), "web", &holder(1)).unwrap();
    }

    #[test]
    fn a_new_holder_replaces_a_longer_old_record_whole() {
        let dir = tempfile::tempdir().unwrap();
        let long = LockOwner {
            command: "x".repeat(500),
            ..holder(1)
        };
        drop(acquire(dir.path(), "web", &long).unwrap());
        let _lock = acquire(dir.path(), "web", &holder(2)).unwrap();
        let text = fs::read_to_string(dir.path().join("web.lock")).unwrap();
        assert_eq!(serde_json::from_str::<LockOwner>(&text).unwrap(), holder(2));
    }

    #[test]
    fn the_state_dir_is_created_private_for_the_lock() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        let _lock = acquire(&dir, "web", &holder(1)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("web.lock")), 0o600);
    }

    #[test]
    fn a_holder_the_file_does_not_name_is_reported_as_unknown_with_the_kernels_pid() {
        let dir = tempfile::tempdir().unwrap();
        // The file names pid 1, but this process holds the lock.
        let _lock = acquire(dir.path(), "web", &holder(1)).unwrap();
        let seen = held_by(dir.path(), "web").expect("held");
        assert_eq!(seen.pid, std::process::id());
        assert_eq!(seen.operator, "unknown");
        assert_eq!(seen.command, "unknown");
    }
}
