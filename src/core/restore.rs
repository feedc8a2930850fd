//! Putting an upload back: the shell lines that keep the file an upload
//! replaces, restore it in a rollback, and ask whether a host still holds
//! what the change uploaded (a fleet rollback's check before it starts),
//! and the reading of their answers.
//!
//! The rule: an upload keeps the file it replaces as `PATH.baton-prev`
//! and writes beside it an owner mark, `PATH.baton-prev.owner`, naming the
//! change (its content hash), the uploaded content's SHA-256, and whether
//! the upload created the file. A rollback acts only on its own mark, and
//! only while the file still holds exactly what the change uploaded: it
//! copies `PATH.baton-prev` back (beside the file, then renamed over it),
//! or removes a file the upload created, then removes the mark, so a second
//! rollback does nothing. A file changed since, a mark of another change,
//! no mark at all, or a directory the login user cannot write: left as it
//! is, and said so. An apply of the same change again keeps the first copy
//! (the file already holds the upload: its true previous version is the
//! copy already kept).

use crate::core::quote::quote;

/// The suffix of the copy an upload keeps.
pub const SUFFIX: &str = ".baton-prev";

/// The suffix of the owner mark beside the copy.
pub const OWNER: &str = ".baton-prev.owner";

/// What one upload of one change is, for the lines below.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The destination.
    pub path: &'a str,
    /// The change's content hash.
    pub change: &'a str,
    /// The uploaded content's SHA-256, lower-case hex.
    pub sha256: &'a str,
}

/// The shell variables every line starts with, each value quoted: `f` the
/// destination, `d` its directory, `p` the kept copy, `o` the owner mark,
/// `t` the restore's temporary file, `k`/`c` the mark of this change (kept,
/// created), `s` the upload's SHA-256, `m` the mark found on the host.
fn prelude(u: &Upload<'_>) -> String {
    let dir = match u.path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((d, _)) => d,
    };
    format!(
        "f={}; d={}; p={}; o={}; t={}; k={}; c={}; s={}; m=$(cat -- \"$o\" 2>/dev/null); ",
        quote(u.path),
        quote(dir),
        quote(&format!("{}{SUFFIX}", u.path)),
        quote(&format!("{}{OWNER}", u.path)),
        quote(&format!("{}.baton-restore", u.path)),
        quote(&format!("{} {}", u.change, u.sha256)),
        quote(&format!("{} {} created", u.change, u.sha256)),
        quote(u.sha256),
    )
}

/// `h` := the file's SHA-256 (or the line fails).
const HASH_OF: &str = "h=$(sha256sum < \"$f\") || exit 1; h=${h%% *};";

/// Whether the mark found is this change's (kept or created).
const OURS: &str = "{ [ \"$m\" = \"$k\" ] || [ \"$m\" = \"$c\" ]; }";

/// The line that keeps the file an upload is about to replace.
pub fn keep_line(u: &Upload<'_>) -> String {
    format!(
        "{}if [ ! -w \"$d\" ]; then echo not kept: the login user cannot write \"$d\"; exit 0; fi; \
         if [ -e \"$f\" ] && {OURS}; then {HASH_OF} \
         if [ \"$h\" = \"$s\" ]; then echo kept before: the file already holds this upload; exit 0; fi; fi; \
         if [ -e \"$f\" ]; then cp -p -- \"$f\" \"$p\" && printf '%s\\n' \"$k\" > \"$o\"; \
         else rm -f -- \"$p\" && printf '%s\\n' \"$c\" > \"$o\"; fi",
        prelude(u)
    )
}

/// The line that puts one upload back. It fails only when the file cannot
/// be read, or its kept copy is gone, or it cannot be put back.
pub fn restore_line(u: &Upload<'_>) -> String {
    format!(
        "{}if [ ! -w \"$d\" ]; then echo left \"$f\" as it is: the login user cannot write \"$d\"; exit 0; fi; \
         if ! {OURS}; then echo left \"$f\" as it is: nothing was kept for it by this change; exit 0; fi; \
         if [ ! -e \"$f\" ]; then rm -f -- \"$o\"; echo \"$f\" is not there: nothing to put back; exit 0; fi; \
         {HASH_OF} if [ \"$h\" != \"$s\" ]; then echo left \"$f\" as it is: it no longer holds what the change uploaded; exit 0; fi; \
         if [ \"$m\" = \"$c\" ]; then rm -f -- \"$f\" && rm -f -- \"$o\" && echo removed \"$f\": the upload created it; exit; fi; \
         if [ ! -e \"$p\" ]; then echo cannot put \"$f\" back: its .baton-prev copy is gone >&2; exit 1; fi; \
         cp -p -- \"$p\" \"$t\" && mv -f -- \"$t\" \"$f\" && rm -f -- \"$o\" && echo restored \"$f\" from its .baton-prev copy",
        prelude(u)
    )
}

/// The line that asks what a rollback would find (one word, see
/// [`Standing::parse`]).
pub fn probe_line(u: &Upload<'_>) -> String {
    format!(
        "{}command -v sha256sum >/dev/null || {{ echo nosha; exit 0; }}; \
         if [ ! -w \"$d\" ]; then echo unwritable; exit 0; fi; \
         if ! {OURS}; then echo unowned; exit 0; fi; \
         if [ ! -e \"$f\" ]; then echo missing; exit 0; fi; \
         if ! h=$(sha256sum < \"$f\" 2>/dev/null); then echo unreadable; exit 0; fi; h=${{h%% *}}; \
         if [ \"$h\" != \"$s\" ]; then echo changed; \
         elif [ \"$m\" = \"$c\" ]; then echo created; \
         elif [ -e \"$p\" ]; then echo kept; else echo gone; fi",
        prelude(u)
    )
}

/// What a restore line did, read from its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The file was put back (copied back, or removed).
    Back,
    /// It was left as it is (said why).
    Left,
}

impl Restored {
    /// Reads a restore line's output.
    pub fn parse(stdout: &str) -> Restored {
        if stdout.starts_with("restored ") || stdout.starts_with("removed ") {
            Restored::Back
        } else {
            Restored::Left
        }
    }
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
    /// No mark of this change: nothing was kept for it (an apply by an
    /// older baton, or the mark of another change).
    Unowned,
    /// The mark is there, the copy it names is gone.
    Gone,
    /// The login user cannot write the file's directory.
    Unwritable,
    /// The host has no `sha256sum`.
    NoSha,
}

impl Standing {
    /// Reads the probe's answer.
    pub fn parse(stdout: &str) -> Option<Standing> {
        Some(match stdout.trim() {
            "kept" => Standing::Kept,
            "created" => Standing::Created,
            "changed" => Standing::Changed,
            "missing" => Standing::Missing,
            "unreadable" => Standing::Unreadable,
            "unowned" => Standing::Unowned,
            "gone" => Standing::Gone,
            "unwritable" => Standing::Unwritable,
            "nosha" => Standing::NoSha,
            _ => return None,
        })
    }

    /// Whether a rollback can put the file back.
    pub fn restorable(self) -> bool {
        matches!(self, Standing::Kept | Standing::Created)
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Standing::Kept => "holds the upload, the previous file kept",
            Standing::Created => "holds the upload, which created it",
            Standing::Changed => "no longer holds what the change uploaded (edited since, by hand or by a later change)",
            Standing::Missing => "is not there",
            Standing::Unreadable => "cannot be read by the login user",
            Standing::Unowned => "has nothing kept for it by this change (applied by an older baton, or kept for another change since)",
            Standing::Gone => "has lost its .baton-prev copy",
            Standing::Unwritable => "is in a directory the login user cannot write",
            Standing::NoSha => "is on a host without sha256sum",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const SHA_ONE: &str = "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806";
    const SHA_TWO: &str = "27dd8ed44a83ff94d557f9fd0412ed5a8cbca69ea04922d88c01184a07300a5a";

    fn sh(line: &str) -> (bool, String) {
        let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn up<'a>(path: &'a str, change: &'a str, sha256: &'a str) -> Upload<'a> {
        Upload {
            path,
            change,
            sha256,
        }
    }

    /// Keeps then "uploads" `content` as change `change`.
    fn apply(u: &Upload<'_>, content: &str) -> String {
        let (ok, out) = sh(&keep_line(u));
        assert!(ok, "{out}");
        std::fs::write(u.path, content).unwrap();
        out
    }

    /// A temporary directory holding `name` with `content` (when given).
    fn file(name: &str, content: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        if let Some(c) = content {
            std::fs::write(&p, c).unwrap();
        }
        (dir, p)
    }

    fn probe(u: &Upload<'_>) -> Option<Standing> {
        Standing::parse(&sh(&probe_line(u)).1)
    }

    fn restore(u: &Upload<'_>) -> (bool, String) {
        sh(&restore_line(u))
    }

    #[test]
    fn the_test_hashes_are_the_sha256_of_the_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        for (content, sha) in [("one\n", SHA_ONE), ("two\n", SHA_TWO)] {
            std::fs::write(&p, content).unwrap();
            let (_, out) = sh(&format!("sha256sum < {}", p.display()));
            assert_eq!(out.split(' ').next(), Some(sha));
        }
    }

    #[test]
    fn a_replaced_file_comes_back_once_from_its_copy() {
        let (_dir, p) = file("it's a.conf", Some("zero\n"));
        let path = p.to_str().unwrap();
        let u = up(path, "v1hash", SHA_ONE);
        apply(&u, "one\n");
        assert_eq!(probe(&u), Some(Standing::Kept));
        let (ok, out) = restore(&u);
        assert!(ok && out.starts_with("restored"), "{out}");
        assert_eq!(Restored::parse(&out), Restored::Back);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "zero\n");
        // A second rollback (settled twice) does nothing.
        let (ok, out) = restore(&u);
        assert!(ok && out.contains("nothing was kept for it"), "{out}");
        assert_eq!(Restored::parse(&out), Restored::Left);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "zero\n");
    }

    #[test]
    fn a_created_file_is_removed_and_a_stale_copy_never_restored() {
        let (dir, p) = file("new.txt", None);
        let path = p.to_str().unwrap();
        std::fs::write(dir.path().join("new.txt.baton-prev"), "stale\n").unwrap();
        let u = up(path, "v2hash", SHA_ONE);
        apply(&u, "one\n");
        assert!(!dir.path().join("new.txt.baton-prev").exists());
        assert_eq!(probe(&u), Some(Standing::Created));
        let (ok, out) = restore(&u);
        assert!(ok && out.starts_with("removed"), "{out}");
        assert!(!p.exists());
        assert_eq!(probe(&u), Some(Standing::Unowned));
    }

    #[test]
    fn a_file_edited_since_is_left_alone() {
        let (_dir, p) = file("f", Some("zero\n"));
        let path = p.to_str().unwrap();
        let u = up(path, "v1hash", SHA_ONE);
        apply(&u, "one\n");
        std::fs::write(&p, "edited\n").unwrap();
        assert_eq!(probe(&u), Some(Standing::Changed));
        let (ok, out) = restore(&u);
        assert!(ok && out.contains("no longer holds"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "edited\n");
    }

    /// A failed apply of v2 never reached its upload of `g` (which v1
    /// created with the same content): v2's rollback must not touch it.
    #[test]
    fn an_upload_the_apply_never_reached_is_left_to_its_own_change() {
        let (_dir, p) = file("g", None);
        let path = p.to_str().unwrap();
        let v1 = up(path, "v1hash", SHA_ONE);
        apply(&v1, "one\n");
        let v2 = up(path, "v2hash", SHA_ONE);
        assert_eq!(probe(&v2), Some(Standing::Unowned));
        let (ok, out) = restore(&v2);
        assert!(ok && out.contains("nothing was kept for it"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        // v1's own rollback still removes it.
        let (ok, out) = restore(&v1);
        assert!(ok && out.starts_with("removed"), "{out}");
    }

    /// v1 C0→C1, v2 C1→C2: rolling back v2 gives C1; v1's copy was
    /// replaced by v2's, so v1's rollback leaves C1 and says so (never C1
    /// from a copy it did not make).
    #[test]
    fn each_change_restores_only_what_it_kept() {
        let (_dir, p) = file("f", Some("zero\n"));
        let path = p.to_str().unwrap();
        let v1 = up(path, "v1hash", SHA_ONE);
        apply(&v1, "one\n");
        let v2 = up(path, "v2hash", SHA_TWO);
        apply(&v2, "two\n");
        assert_eq!(probe(&v1), Some(Standing::Unowned));
        let (ok, out) = restore(&v2);
        assert!(ok && out.starts_with("restored"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        let (ok, out) = restore(&v1);
        assert!(ok && out.starts_with("left"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
    }

    /// An apply of the same change again (an incomplete run's old primary)
    /// keeps the copy of the file before the first one.
    #[test]
    fn applying_the_same_change_again_keeps_the_first_copy() {
        let (_dir, p) = file("f", Some("zero\n"));
        let path = p.to_str().unwrap();
        let u = up(path, "v1hash", SHA_ONE);
        apply(&u, "one\n");
        let out = apply(&u, "one\n");
        assert!(out.starts_with("kept before"), "{out}");
        let (ok, out) = restore(&u);
        assert!(ok && out.starts_with("restored"), "{out}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "zero\n");
    }

    #[test]
    fn a_lost_copy_fails_the_rollback_and_a_lost_mark_leaves_the_file() {
        let (dir, p) = file("f", Some("zero\n"));
        let path = p.to_str().unwrap();
        let u = up(path, "v1hash", SHA_ONE);
        apply(&u, "one\n");
        std::fs::remove_file(dir.path().join("f.baton-prev")).unwrap();
        assert_eq!(probe(&u), Some(Standing::Gone));
        let (ok, _) = restore(&u);
        assert!(!ok, "the copy is gone: the rollback fails, the file stays");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\n");
        // Someone tidied the marks away: the file is never removed.
        std::fs::remove_file(dir.path().join("f.baton-prev.owner")).unwrap();
        let (ok, out) = restore(&u);
        assert!(ok && out.starts_with("left"), "{out}");
        assert!(p.exists());
    }

    #[test]
    fn the_probe_answers_are_read_and_judged() {
        for (word, s, ok) in [
            ("kept\n", Standing::Kept, true),
            ("created", Standing::Created, true),
            ("changed", Standing::Changed, false),
            ("missing", Standing::Missing, false),
            ("unreadable", Standing::Unreadable, false),
            ("unowned", Standing::Unowned, false),
            ("gone", Standing::Gone, false),
            ("unwritable", Standing::Unwritable, false),
            ("nosha", Standing::NoSha, false),
        ] {
            assert_eq!(Standing::parse(word), Some(s));
            assert_eq!(s.restorable(), ok);
        }
        assert_eq!(Standing::parse("kept\nmore"), None);
        assert_eq!(Standing::parse(""), None);
    }
}
