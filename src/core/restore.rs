//! Putting an upload back: the shell lines that keep the file an upload
//! replaces, restore it in a rollback, and ask whether a host still holds
//! what the change uploaded (a fleet rollback's check before it starts),
//! and the reading of that answer.
//!
//! The rule: an upload keeps the file it replaces as `PATH.baton-prev`, and
//! removes a stale `PATH.baton-prev` when there was no file (so its absence
//! means "the upload created it"). A rollback puts a file back only while it
//! still holds exactly what the change uploaded (by SHA-256): from its
//! `.baton-prev` copy, atomically, or by removing it when the upload created
//! it. A file changed since (by hand, or by a later change) is left as it is
//! and said so; so is a file the upload never reached.

use crate::core::quote::quote;

/// The suffix of the copy an upload keeps.
pub const SUFFIX: &str = ".baton-prev";

/// The line that keeps the file an upload is about to replace.
pub fn keep_line(path: &str) -> String {
    let dest = quote(path);
    let prev = quote(&format!("{path}{SUFFIX}"));
    format!("if [ -e {dest} ]; then cp -p -- {dest} {prev}; else rm -f -- {prev}; fi")
}

/// The line that restores one upload (`sha256`: the uploaded content's,
/// lower-case hex). It fails only when the file cannot be read or put back.
pub fn restore_line(path: &str, sha256: &str) -> String {
    let dest = quote(path);
    let prev = quote(&format!("{path}{SUFFIX}"));
    let tmp = quote(&format!("{path}.baton-restore"));
    let shown = quote(path);
    format!(
        "if [ -e {dest} ]; then h=$(sha256sum < {dest}) || exit 1; \
         if [ \"${{h%% *}}\" = {sha} ]; then \
         if [ -e {prev} ]; then cp -p -- {prev} {tmp} && mv -f -- {tmp} {dest} && echo restored {shown} from its .baton-prev copy; \
         else rm -f -- {dest} && echo removed {shown}: the upload created it; fi; \
         else echo left {shown} as it is: it no longer holds what the change uploaded; fi; \
         else echo {shown} is not there: nothing to restore; fi",
        sha = quote(sha256),
    )
}

/// The line that asks what a rollback would find (one word, see
/// [`Standing::parse`]).
pub fn probe_line(path: &str, sha256: &str) -> String {
    let dest = quote(path);
    let prev = quote(&format!("{path}{SUFFIX}"));
    format!(
        "if [ ! -e {dest} ]; then echo missing; \
         elif ! h=$(sha256sum < {dest} 2>/dev/null); then echo unreadable; \
         elif [ \"${{h%% *}}\" != {sha} ]; then echo changed; \
         elif [ -e {prev} ]; then echo kept; else echo created; fi",
        sha = quote(sha256),
    )
}

/// What a host holds at an upload's destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// What the change uploaded, with the file it replaced kept beside it.
    Kept,
    /// What the change uploaded, where there was no file before.
    Created,
    /// Something else: edited by hand or by a later change.
    Changed,
    /// No file.
    Missing,
    /// A file the login user cannot read.
    Unreadable,
}

impl Standing {
    /// Reads the probe's answer.
    pub fn parse(stdout: &str) -> Option<Standing> {
        match stdout.trim() {
            "kept" => Some(Standing::Kept),
            "created" => Some(Standing::Created),
            "changed" => Some(Standing::Changed),
            "missing" => Some(Standing::Missing),
            "unreadable" => Some(Standing::Unreadable),
            _ => None,
        }
    }

    /// Whether a rollback can put the file back.
    pub fn restorable(self) -> bool {
        matches!(self, Standing::Kept | Standing::Created)
    }

    /// Why it cannot, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Standing::Kept => "holds the upload, the previous file kept",
            Standing::Created => "holds the upload, which created it",
            Standing::Changed => "no longer holds what the change uploaded (edited since, by hand or by a later change)",
            Standing::Missing => "is not there",
            Standing::Unreadable => "cannot be read by the login user",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const SHA_ONE: &str = "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806";

    fn sh(dir: &std::path::Path, line: &str) -> (bool, String) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn probe(dir: &std::path::Path, path: &str) -> Option<Standing> {
        Standing::parse(&sh(dir, &probe_line(path, SHA_ONE)).1)
    }

    #[test]
    fn the_test_hash_is_the_sha256_of_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "one\n").unwrap();
        let (_, out) = sh(dir.path(), "sha256sum < f");
        assert_eq!(out.split(' ').next(), Some(SHA_ONE));
    }

    #[test]
    fn a_replaced_file_comes_back_from_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("it's a.conf");
        let path = p.to_str().unwrap();
        std::fs::write(&p, "zero\n").unwrap();
        assert!(sh(dir.path(), &keep_line(path)).0);
        std::fs::write(&p, "one\n").unwrap(); // the upload
        assert_eq!(probe(dir.path(), path), Some(Standing::Kept));
        let (ok, out) = sh(dir.path(), &restore_line(path, SHA_ONE));
        assert!(ok, "{out}");
        assert!(out.starts_with("restored"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "zero\n");
        // Run again (a rollback settled twice): the file is no longer the
        // upload, so it stays as it is.
        let (ok, out) = sh(dir.path(), &restore_line(path, SHA_ONE));
        assert!(ok && out.starts_with("left"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "zero\n");
        assert_eq!(probe(dir.path(), path), Some(Standing::Changed));
    }

    #[test]
    fn a_created_file_is_removed_and_a_stale_copy_never_restored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.txt");
        let path = p.to_str().unwrap();
        // A copy left by an earlier apply, when the file is gone since.
        std::fs::write(dir.path().join("new.txt.baton-prev"), "stale\n").unwrap();
        assert!(sh(dir.path(), &keep_line(path)).0);
        assert!(!dir.path().join("new.txt.baton-prev").exists());
        std::fs::write(&p, "one\n").unwrap();
        assert_eq!(probe(dir.path(), path), Some(Standing::Created));
        let (ok, out) = sh(dir.path(), &restore_line(path, SHA_ONE));
        assert!(ok && out.starts_with("removed"), "{out}");
        assert!(!p.exists());
        assert_eq!(probe(dir.path(), path), Some(Standing::Missing));
        let (ok, out) = sh(dir.path(), &restore_line(path, SHA_ONE));
        assert!(ok && out.contains("nothing to restore"), "{out}");
    }

    #[test]
    fn a_file_edited_since_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let path = p.to_str().unwrap();
        std::fs::write(dir.path().join("f.baton-prev"), "zero\n").unwrap();
        std::fs::write(&p, "edited\n").unwrap();
        assert_eq!(probe(dir.path(), path), Some(Standing::Changed));
        let (ok, out) = sh(dir.path(), &restore_line(path, SHA_ONE));
        assert!(ok && out.starts_with("left"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "edited\n");
    }

    #[test]
    fn the_probe_answers_are_read_and_judged() {
        for (word, s, ok) in [
            ("kept\n", Standing::Kept, true),
            ("created", Standing::Created, true),
            ("changed", Standing::Changed, false),
            ("missing", Standing::Missing, false),
            ("unreadable", Standing::Unreadable, false),
        ] {
            assert_eq!(Standing::parse(word), Some(s));
            assert_eq!(s.restorable(), ok);
        }
        assert_eq!(Standing::parse("kept\nmore"), None);
        assert_eq!(Standing::parse(""), None);
    }
}
