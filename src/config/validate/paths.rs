//! Paths in the configuration: resolved (`~/` from $HOME, relative from the
//! file's directory) to an absolute path without `.` or `..`, shown with
//! control characters escaped, and the files baton must read (SSH keys,
//! known_hosts) checked for what would make them unusable.

use std::path::{Path, PathBuf};

use crate::config::diag::printable;

/// Why a file baton must read is refused.
pub(super) enum FileFault {
    /// It cannot be opened (missing, no permission, a NUL in its name).
    Unreadable(std::io::Error),
    /// It is a directory.
    Directory,
    /// It is a regular file with nothing in it.
    Empty,
}

/// What is wrong with a file baton must read, if anything.
pub(super) fn file_fault(path: &Path) -> Option<FileFault> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(FileFault::Unreadable(e)),
    };
    if meta.is_dir() {
        return Some(FileFault::Directory);
    }
    if let Err(e) = std::fs::File::open(path) {
        return Some(FileFault::Unreadable(e));
    }
    (meta.is_file() && meta.len() == 0).then_some(FileFault::Empty)
}

/// A path for a message, control characters escaped.
pub(super) fn shown(path: &Path) -> String {
    printable(&path.display().to_string())
}

/// Resolves a configured path: `~/` from $HOME, relative from `base`. The
/// result is absolute and holds no `.` or `..`, so that a message or a fix
/// shows it as the operator can paste it wherever baton runs (see [`tidy`]).
pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return tidy(&PathBuf::from(home).join(rest));
        }
    }
    let path = Path::new(p);
    if path.is_absolute() {
        tidy(path)
    } else {
        tidy(&base.join(path))
    }
}

/// Makes a path absolute (from the current directory) without `.` or `..`:
/// the directories above the last component that exist are resolved as the
/// kernel resolves them (symlinks too, so `pairs/..` is the parent of where
/// `pairs` really is); what follows them, which does not exist, is
/// normalized by its text. The last component is kept as written (a key
/// file that is a symlink is shown under its configured name).
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dir: Vec<Component<'_>> = abs.components().collect();
    let last = match dir.last() {
        Some(Component::Normal(name)) => {
            let name = name.to_os_string();
            dir.pop();
            Some(name)
        }
        _ => None,
    };
    let dir: PathBuf = dir.iter().collect();
    let (mut out, rest) = dir
        .ancestors()
        .find_map(|a| {
            let real = std::fs::canonicalize(a).ok()?;
            Some((real, dir.strip_prefix(a).ok()?.to_path_buf()))
        })
        .unwrap_or_else(|| (PathBuf::from("/"), dir.clone()));
    for c in rest.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    if let Some(name) = last {
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn resolved_paths_are_absolute_without_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("pairs")).unwrap();
        let pairs = real.join("pairs");
        assert_eq!(resolve(&pairs, "../loose.key"), real.join("loose.key"));
        assert_eq!(resolve(&pairs, "./a/../b/./c"), pairs.join("b/c"));
        assert_eq!(
            resolve(&pairs, "/etc/../etc/baton/x"),
            PathBuf::from("/etc/baton/x")
        );
        // A directory that is a symlink: `..` goes up from where it points.
        std::fs::create_dir_all(real.join("elsewhere/deep")).unwrap();
        std::os::unix::fs::symlink(real.join("elsewhere/deep"), real.join("link")).unwrap();
        assert_eq!(resolve(&real, "link/../k"), real.join("elsewhere/k"));
        // A relative base is taken from the current directory.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            resolve(Path::new(""), "x.key"),
            std::fs::canonicalize(&cwd).unwrap().join("x.key")
        );
    }

    #[test]
    fn a_file_is_faulted_when_missing_a_directory_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("key"), "k").unwrap();
        std::fs::write(d.join("empty"), "").unwrap();
        assert!(file_fault(&d.join("key")).is_none());
        assert!(matches!(file_fault(d), Some(FileFault::Directory)));
        assert!(matches!(
            file_fault(&d.join("empty")),
            Some(FileFault::Empty)
        ));
        assert!(matches!(
            file_fault(&d.join("absent")),
            Some(FileFault::Unreadable(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
        // A file that cannot be opened (unless root, who opens anything).
        let locked = d.join("locked");
        std::fs::write(&locked, "k").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::File::open(&locked).is_err() {
            assert!(matches!(
                file_fault(&locked),
                Some(FileFault::Unreadable(_))
            ));
        }
    }

    #[test]
    fn a_shown_path_escapes_control_characters() {
        let shown = shown(Path::new("/etc/ke\ny"));
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with("/etc/ke"), "{shown}");
    }
}
