//! The state directory itself: before any command reads or writes the
//! journals, states and locks in it, it must be a directory that belongs to
//! the user running baton and that nobody else may write (else another user
//! could plant or change the record baton acts on). One readable by others
//! is used, with a warning: the journals hold command outputs. It also
//! owns how baton opens the files it writes there: mode 0600, never through
//! a symlink (`open_private`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// How `open_private` opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Read and write, created when missing, never truncated (a journal, a
    /// lock file).
    ReadWrite,
    /// Append, created when missing (a log, an index).
    Append,
    /// Write a new file; an existing one (or a symlink) is an error.
    New,
}

/// Opens a file baton writes in its state directory: created 0600, and
/// never through a symlink (`O_NOFOLLOW`: one planted in the directory
/// makes the open fail, instead of baton writing where it points).
pub fn open_private(path: &Path, how: Open) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    match how {
        Open::ReadWrite => options.read(true).write(true).create(true).truncate(false),
        Open::Append => options.append(true).create(true),
        Open::New => options.write(true).create_new(true),
    };
    options
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirError {
    /// It exists but is not a directory.
    #[error("state_dir {path} is not a directory; point `state_dir` in baton.toml at a directory (it is created 0700 when missing)")]
    NotADirectory { path: String },
    /// Another user owns it.
    #[error("state_dir {path} belongs to uid {owner}, not to the user running baton (uid {me}): another user could change the record baton acts on; `chown {me} {path}` (or run baton as its owner)")]
    OtherOwner { path: String, owner: u32, me: u32 },
    /// Group or others may write it.
    #[error("state_dir {path} is writable by group or others (mode {mode:04o}): they could change the record baton acts on; `chmod 700 {path}`")]
    Writable { path: String, mode: u32 },
    /// It cannot be examined.
    #[error("cannot examine state_dir {path}: {reason}")]
    Io { path: String, reason: String },
}

/// A state directory that may be used, but shows its contents to others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    /// Its mode.
    pub mode: u32,
}

/// Checks the state directory; `Ok(None)` when it is private or does not
/// exist yet (it is then created 0700).
pub fn check(dir: &Path) -> Result<Option<Exposed>, DirError> {
    let path = dir.display().to_string();
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(DirError::Io {
                path,
                reason: e.to_string(),
            })
        }
    };
    if !meta.is_dir() {
        return Err(DirError::NotADirectory { path });
    }
    // SAFETY: geteuid cannot fail.
    #[allow(unsafe_code, reason = "geteuid(2): std cannot tell who we are")]
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(DirError::OtherOwner {
            path,
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DirError::Writable { path, mode });
    }
    Ok((mode & 0o077 != 0).then_some(Exposed { mode }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_never_opened_through_a_symlink() {
        use std::io::{Read, Write};
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("web.journal");
        open_private(&path, Open::Append)
            .unwrap()
            .write_all(b"one\n")
            .unwrap();
        open_private(&path, Open::Append)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        let mut text = String::new();
        open_private(&path, Open::ReadWrite)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n", "neither truncated nor overwritten");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            open_private(&path, Open::New).is_err(),
            "New refuses an existing file"
        );
        // a symlink planted where baton writes: every way refuses it, and
        // the file it points at is untouched
        let target = root.path().join("elsewhere");
        fs::write(&target, "theirs").unwrap();
        let link = root.path().join("api.journal");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for how in [Open::ReadWrite, Open::Append, Open::New] {
            assert!(
                open_private(&link, how).is_err(),
                "{how:?} followed a symlink"
            );
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "theirs");
    }

    #[test]
    fn private_missing_exposed_writable_and_not_a_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        assert_eq!(check(&dir), Ok(None), "missing: created later");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check(&dir), Ok(None));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check(&dir), Ok(Some(Exposed { mode: 0o755 })));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = check(&dir).unwrap_err();
        assert!(matches!(e, DirError::Writable { mode: 0o777, .. }), "{e}");
        assert!(e.to_string().contains("chmod 700"), "{e}");
        let file = root.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(check(&file), Err(DirError::NotADirectory { .. })));
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        // SAFETY: geteuid cannot fail.
        #[allow(unsafe_code, reason = "geteuid(2): std cannot tell who we are")]
        let me = unsafe { libc::geteuid() };
        if me != 0 {
            return; // only root can give a directory away
        }
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&dir, Some(4242), None).unwrap();
        assert!(matches!(
            check(&dir),
            Err(DirError::OtherOwner { owner: 4242, .. })
        ));
    }

    #[test]
    fn only_group_or_other_write_is_refused_and_special_bits_do_not_expose() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        fs::create_dir(&dir).unwrap();
        for (mode, want) in [
            (0o700, Ok(None)),
            (0o1700, Ok(None)),
            (0o750, Ok(Some(Exposed { mode: 0o750 }))),
            (0o701, Ok(Some(Exposed { mode: 0o701 }))),
        ] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(check(&dir), want, "{mode:o}");
        }
        for mode in [0o720, 0o702, 0o770, 0o1777] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            let e = check(&dir).unwrap_err();
            assert_eq!(
                e,
                DirError::Writable {
                    path: dir.display().to_string(),
                    mode
                },
                "{mode:o}"
            );
        }
    }

    #[test]
    fn a_symlink_to_a_private_directory_is_checked_as_that_directory() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(check(&link), Err(DirError::Writable { .. })));
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check(&link), Ok(None));
        // A path through a file cannot be examined.
        let file = root.path().join("file");
        fs::write(&file, "").unwrap();
        let e = check(&file.join("state")).unwrap_err();
        assert!(matches!(e, DirError::Io { .. }), "{e}");
        assert!(e.to_string().contains("cannot examine"), "{e}");
    }
}
