//! Configuration: loading `baton.toml` and `pairs/*.toml`, validating them
//! into the typed model, and reporting every problem with file, line, column
//! and a fix, and every warning (typed [`Warning`]s: legitimate but risky
//! setups that `check` points out without refusing them). Submodules: `raw` (the files as written), `model` (the typed
//! result), `validate` (raw to model), `diag` (positions and messages),
//! `tsig` (TSIG key files).

pub mod diag;
pub mod model;
pub mod raw;
pub mod tsig;
mod validate;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use model::*;

/// A problem, with the pairs it makes unusable (empty: it blocks everything).
#[derive(Debug, Clone)]
pub struct Problem {
    /// Pairs this problem affects; empty means the global settings.
    pub pairs: Vec<String>,
    /// The problem.
    pub diagnostic: Diagnostic,
}

/// Something `check` points out without refusing it: legitimate, but worth
/// a second look.
#[derive(Debug, Clone)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The pairs it concerns.
    pub pairs: Vec<String>,
    /// Where, what and what to do.
    pub diagnostic: Diagnostic,
}

/// The kinds of warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// Hosts of two pairs have the same address: one machine in both, so
    /// fencing it for one pair (a power-off `fence` in a failover) fences
    /// it for the other too.
    SharedHostAddress {
        /// The address.
        address: std::net::IpAddr,
        /// The pair and host named by the warning's position.
        this: (String, String),
        /// The pair and host that came first with the address.
        other: (String, String),
    },
    /// An HTTP(S) check whose URL names an IP address (not `{address}`,
    /// not a host name): it is sent to that address whatever host it
    /// verifies, so a standby's verification may pass on another host's
    /// answer (unless its `expect_body` names `{host}`).
    CheckOnFixedAddress {
        /// The pair.
        pair: String,
        /// The check.
        check: String,
        /// The address in its URL.
        address: std::net::IpAddr,
    },
}

impl WarningKind {
    /// A stable name for machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            WarningKind::SharedHostAddress { .. } => "shared_host_address",
            WarningKind::CheckOnFixedAddress { .. } => "check_on_fixed_address",
        }
    }
}

/// Everything loaded, valid or not.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The `baton.toml` path.
    pub file: PathBuf,
    /// Global settings, if `baton.toml` was valid.
    pub settings: Option<Settings>,
    /// Pairs that validated.
    pub pairs: BTreeMap<String, Pair>,
    /// Names of every pair file found, valid or not.
    pub names: Vec<String>,
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// Every warning, about the pairs that validated.
    pub warnings: Vec<Warning>,
}

impl Loaded {
    /// The warnings that concern any of the named pairs (all when none).
    pub fn warnings_for(&self, names: &[String]) -> Vec<Warning> {
        self.warnings
            .iter()
            .filter(|w| names.is_empty() || w.pairs.iter().any(|p| names.contains(p)))
            .cloned()
            .collect()
    }

    /// The configuration restricted to the named pairs (all when empty).
    /// Problems in the selection or in the global settings are errors;
    /// problems that only affect other pairs come back as warnings.
    pub fn select(mut self, names: &[String]) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
        let mut errors = Vec::new();
        for name in names {
            if !self.names.contains(name) {
                errors.push(Diagnostic {
                    file: self.file.clone(),
                    line: 0,
                    column: 0,
                    message: diag::printable(&format!("there is no pair named `{name}`")),
                    fix: if self.names.is_empty() {
                        "add a pair file pairs/NAME.toml beside baton.toml".to_string()
                    } else {
                        format!("use one of: {}", self.names.join(", "))
                    },
                });
            }
        }
        let selected = |p: &str| names.is_empty() || names.iter().any(|n| n == p);
        let mut warnings = Vec::new();
        for problem in std::mem::take(&mut self.problems) {
            if problem.pairs.is_empty() || problem.pairs.iter().any(|p| selected(p)) {
                errors.push(problem.diagnostic);
            } else {
                warnings.push(problem.diagnostic);
            }
        }
        let settings = match self.settings {
            Some(s) if errors.is_empty() => s,
            _ => return Err(Diagnostics(errors)),
        };
        let pairs = self
            .pairs
            .into_iter()
            .filter(|(n, _)| selected(n))
            .collect();
        Ok((
            Config {
                file: self.file,
                settings,
                pairs,
            },
            warnings,
        ))
    }
}

/// Loads `baton.toml` and every `pairs/*.toml` beside it.
///
/// A file that cannot be read at all (missing, not a regular file, over the
/// size bound) is a problem about the file as a whole (line 0); one that is
/// not UTF-8 is refused at its first byte that is not, like a syntax error.
/// Either way its pair is still named in [`Loaded::names`]: it exists,
/// and naming it gives its problem, not "there is no pair named".
pub fn load(file: &Path) -> Loaded {
    let mut loaded = Loaded {
        file: file.to_path_buf(),
        ..Loaded::default()
    };
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let pairs_dir = dir.join("pairs");
    let pair_files = fs::read_dir(&pairs_dir).map(|entries| {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        files
    });
    let global_text = match read(file) {
        Ok(t) => t,
        Err(e) => {
            loaded.problems.push(Problem {
                pairs: vec![],
                diagnostic: Diagnostic {
                    file: file.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: diag::printable(&format!("cannot read the configuration file: {e}")),
                    fix: "pass the right file with --config PATH (or BATON_CONFIG), or create baton.toml".to_string(),
                },
            });
            // Nothing is read without baton.toml; the pairs are only named.
            loaded.names = pair_files
                .unwrap_or_default()
                .iter()
                .map(|p| pair_name(p))
                .collect();
            return loaded;
        }
    };
    let global_text = match global_text {
        Text::Utf8(t) => Some(t),
        Text::NotUtf8(d) => {
            loaded.problems.push(Problem {
                pairs: vec![],
                diagnostic: d,
            });
            None
        }
    };
    let pair_files = match pair_files {
        Ok(files) => files,
        Err(e) => {
            loaded.problems.push(Problem {
                pairs: vec![],
                diagnostic: Diagnostic {
                    file: pairs_dir.clone(),
                    line: 0,
                    column: 0,
                    message: diag::printable(&format!("cannot read the pairs directory: {e}")),
                    fix: "create a directory `pairs` beside baton.toml with one NAME.toml per pair"
                        .to_string(),
                },
            });
            Vec::new()
        }
    };
    let mut texts = Vec::new();
    for path in pair_files {
        let text = match read(&path) {
            Ok(Text::Utf8(t)) => Some(t),
            Ok(Text::NotUtf8(d)) => {
                loaded.problems.push(Problem {
                    pairs: vec![pair_name(&path)],
                    diagnostic: d,
                });
                None
            }
            Err(e) => {
                loaded.problems.push(Problem {
                    pairs: vec![pair_name(&path)],
                    diagnostic: Diagnostic {
                        file: path.clone(),
                        line: 0,
                        column: 0,
                        message: diag::printable(&format!("cannot read the pair file: {e}")),
                        fix: "make it a regular file of at most 1 MiB that the user running baton can read".to_string(),
                    },
                });
                None
            }
        };
        texts.push((path, text));
    }
    validate::run(&mut loaded, file, global_text.as_deref(), &texts);
    loaded
}

/// A configuration file's content.
enum Text {
    /// Its text.
    Utf8(String),
    /// It is not UTF-8: the problem, at the first byte that is not.
    NotUtf8(Diagnostic),
}

/// Reads a configuration file within its bound.
fn read(path: &Path) -> std::io::Result<Text> {
    let bytes = crate::io::readfile::bytes(path, crate::io::readfile::CONFIG)?;
    Ok(match String::from_utf8(bytes) {
        Ok(t) => Text::Utf8(t),
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            let before = String::from_utf8_lossy(&bytes[..at]);
            let (line, column) = diag::line_col(&before, at);
            Text::NotUtf8(Diagnostic {
                file: path.to_path_buf(),
                line,
                column,
                message: format!(
                    "the file is not UTF-8 text: byte {:#04x} here does not form a UTF-8 character",
                    bytes.get(at).copied().unwrap_or(0)
                ),
                fix: "save the file as UTF-8 (a TOML file always is), retyping the character at this position".to_string(),
            })
        }
    })
}

/// A pair's name: its file's stem.
pub fn pair_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
