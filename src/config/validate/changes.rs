//! The `[changes.NAME]` of a pair: a valid name, a one-line label, at least
//! an upload or a step, no blank command, and each upload's local file,
//! absolute remote path and octal mode.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::diag::{printable, Key, Source};
use crate::config::raw::ChangeFile;
use crate::config::{Change, Upload};

use super::paths::resolve;
use super::values::valid_name;
use super::Sink;

use Key::{Index as I, Name as N};

/// Every change, by name; an upload with a problem is left out of its
/// change (the problem refuses the pair).
pub(super) fn changes(
    raw: &BTreeMap<String, ChangeFile>,
    src: &Source<'_>,
    base: &Path,
    sink: &mut Sink<'_>,
) -> BTreeMap<String, Change> {
    let mut out = BTreeMap::new();
    for (name, c) in raw {
        let whole = [N("changes"), N(name)];
        if let Some(label) = c.label.as_deref().filter(|l| l.contains(char::is_control)) {
            sink.push(src.at(
                &[N("changes"), N(name), N("label")],
                format!("the label of change `{name}` holds a control character: `{}`", printable(label)),
                "write the label on one line, without tabs or other control characters (it is shown in the journal and `baton log`, one line per run)",
            ));
        }
        if !valid_name(name) {
            sink.push(src.at(
                &whole,
                format!("`{name}` is not a valid change name"),
                "use letters, digits, `-` and `_`",
            ));
        }
        let lost = src.refused().lost(&[N("changes"), N(name), N("steps")]);
        if c.steps.is_empty() && c.upload.is_empty() && !lost {
            sink.missing(
                src,
                &[N("changes"), N(name), N("upload")],
                src.at(
                    &whole,
                    format!("change `{name}` has neither `upload` nor `steps`"),
                    "add the files to upload and/or the commands to run",
                ),
            );
        }
        for (i, s) in c.steps.iter().chain(&c.rollback).enumerate() {
            if s.trim().is_empty() {
                let (key, idx) = if i < c.steps.len() {
                    ("steps", i)
                } else {
                    ("rollback", i - c.steps.len())
                };
                sink.push(src.at(
                    &[N("changes"), N(name), N(key), I(idx)],
                    "an empty command",
                    "remove it or write the command",
                ));
            }
        }
        let mut upload = Vec::new();
        for (i, u) in c.upload.iter().enumerate() {
            let at = |k: &'static str| [N("changes"), N(name), N("upload"), I(i), N(k)];
            let from = match u.from.as_deref() {
                None => {
                    sink.missing(
                        src,
                        &[N("changes"), N(name), N("upload"), I(i), N("from")],
                        src.at(
                            &[N("changes"), N(name), N("upload"), I(i)],
                            "an upload has no `from`",
                            "add `from = \"files/NAME\"` (the local file)",
                        ),
                    );
                    None
                }
                Some(f) => {
                    let p = resolve(base, f);
                    if !p.is_file() {
                        sink.push(src.at(&at("from"), format!("cannot read the file to upload {}", p.display()), "point `from` at an existing local file (relative paths start at the pair file's directory)"));
                    }
                    Some(p)
                }
            };
            let to = match u.to.as_deref() {
                None => {
                    sink.missing(
                        src,
                        &[N("changes"), N(name), N("upload"), I(i), N("to")],
                        src.at(
                            &[N("changes"), N(name), N("upload"), I(i)],
                            "an upload has no `to`",
                            "add `to = \"/absolute/remote/path\"`",
                        ),
                    );
                    None
                }
                Some(t) if !t.starts_with('/') || t.ends_with('/') || t.contains('\0') => {
                    sink.push(src.at(
                        &at("to"),
                        format!("`{t}` is not an absolute file path"),
                        "write the remote file's absolute path, like \"/etc/nginx/nginx.conf\"",
                    ));
                    None
                }
                Some(t) => Some(t.to_string()),
            };
            let mode = match u.mode.as_deref() {
                None => Some(0o644),
                Some(m) => match u32::from_str_radix(m, 8) {
                    Ok(v) if (3..=4).contains(&m.len()) && v <= 0o7777 => Some(v),
                    _ => {
                        sink.push(src.at(
                            &at("mode"),
                            format!("`{m}` is not a file mode"),
                            "write the mode as a quoted octal string, like \"0644\"",
                        ));
                        None
                    }
                },
            };
            if let (Some(from), Some(to), Some(mode)) = (from, to, mode) {
                upload.push(Upload { from, to, mode });
            }
        }
        out.insert(
            name.clone(),
            Change {
                name: name.clone(),
                label: c.label.clone().unwrap_or_else(|| name.clone()),
                upload,
                steps: c.steps.clone(),
                rollback: c.rollback.clone(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, messages};
    use super::*;
    use crate::config::raw::PairFile;

    /// `[changes]` from `text`, with a file `files/app.tar` beside it.
    fn validate(text: &str) -> (BTreeMap<String, Change>, Vec<String>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let base = std::fs::canonicalize(dir.path()).expect("dir");
        std::fs::create_dir(base.join("files")).expect("mkdir");
        std::fs::write(base.join("files/app.tar"), "x").expect("file");
        let (c, d) = check(text, |raw: &PairFile, src, sink| {
            changes(&raw.changes, src, &base, sink)
        });
        let c = c
            .into_iter()
            .map(|(n, mut c)| {
                for u in &mut c.upload {
                    u.from = u
                        .from
                        .strip_prefix(&base)
                        .expect("under base")
                        .to_path_buf();
                }
                (n, c)
            })
            .collect();
        (c, messages(&d))
    }

    #[test]
    fn a_change_is_labelled_by_its_name_and_uploads_mode_0644() {
        let (c, m) = validate(
            "[changes.v2]\nupload = [{ from = \"files/app.tar\", to = \"/srv/app.tar\" }, { from = \"files/app.tar\", to = \"/srv/run\", mode = \"755\" }]\nsteps = [\"tar xf /srv/app.tar\"]\n",
        );
        assert!(m.is_empty(), "{m:?}");
        let v2 = &c["v2"];
        assert_eq!(v2.label, "v2");
        let uploads: Vec<_> = v2
            .upload
            .iter()
            .map(|u| (u.from.to_string_lossy().into_owned(), u.to.as_str(), u.mode))
            .collect();
        assert_eq!(
            uploads,
            [
                ("files/app.tar".to_string(), "/srv/app.tar", 0o644),
                ("files/app.tar".to_string(), "/srv/run", 0o755)
            ]
        );
    }

    #[test]
    fn an_invalid_change_name_is_refused() {
        let (_, m) = validate("[changes.\"v2.1\"]\nsteps = [\"true\"]\n");
        assert_eq!(m, ["1:1: `v2.1` is not a valid change name"]);
    }

    #[test]
    fn a_blank_rollback_command_is_pointed_at_in_rollback() {
        let (_, m) = validate("[changes.v2]\nsteps = [\"a\", \"b\"]\nrollback = [\"c\", \" \"]\n");
        assert_eq!(m, ["3:18: an empty command"]);
    }

    #[test]
    fn an_upload_needs_an_absolute_file_path_and_an_octal_mode() {
        for (to, mode, expect) in [
            ("/srv/", "0644", "4:6: `/srv/` is not an absolute file path"),
            (
                "srv/app",
                "0644",
                "4:6: `srv/app` is not an absolute file path",
            ),
            ("/srv/app", "12345", "5:8: `12345` is not a file mode"),
            ("/srv/app", "0888", "5:8: `0888` is not a file mode"),
            ("/srv/app", "64", "5:8: `64` is not a file mode"),
        ] {
            let (c, m) = validate(&format!(
                "[changes.v2]\n[[changes.v2.upload]]\nfrom = \"files/app.tar\"\nto = \"{to}\"\nmode = \"{mode}\"\n"
            ));
            assert_eq!(m, [expect], "{to} {mode}");
            assert!(c["v2"].upload.is_empty());
        }
    }
}
