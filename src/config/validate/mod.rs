//! Validation: turns the raw files into the typed model, collecting every
//! problem (never stopping at the first) with its position and a fix.
//!
//! This module orchestrates: it reads baton.toml and each pair file in
//! turn, hands each part to the module that owns its rules, and keeps the
//! order in which problems are reported (file order, then the cross-pair
//! conflicts). What each submodule owns:
//!
//! - [`parse`]: the lenient TOML parse's refusals as diagnostics, with fixes;
//! - [`settings`]: baton.toml's own keys (state directory, environments, soak);
//! - [`maintenance`]: a `[maintenance]` table (time zone, windows, estimate);
//! - [`notify`]: a `[notify]` table (command, webhook, moments, timeout);
//! - [`pair`]: a pair file's own keys and the assembly of a [`Pair`](crate::config::Pair);
//! - [`hosts`]: a pair's two hosts;
//! - [`ssh`]: the SSH settings, a pair's `[ssh]` over baton.toml's;
//! - [`jump`]: how each host is reached: jump hosts, and what an OpenSSH
//!   client configuration (`[ssh] config`) says for it;
//! - [`traffic`]: `[traffic]` for each method (vip, dns, command, haproxy),
//!   the keys that apply to each;
//! - [`haproxy`]: method `haproxy`'s own rules (the balancer, its socket,
//!   backend and frontend, weight, drain timeout, ramp limits);
//! - [`checks`]: the `[[checks]]` of every kind;
//! - [`changes`]: `[changes.NAME]` and their uploads;
//! - [`roles`]: `[roles]`, the hooks that hand a replicated service's
//!   primary role over;
//! - [`fleet`]: conflicts between pairs (a VIP, a DNS name, an HAProxy
//!   frontend or backend, a host address, a name in two pairs);
//! - [`values`]: the forms of single values (names, addresses, DNS names,
//!   placeholders);
//! - [`paths`]: configured paths, resolved, and the files they name checked.
//!
//! One mistake gives one message: a key the parse refused (`raw::parse`)
//! is unknown, not missing, so its absence is not reported nor its default
//! checked (`Sink::missing`, and the SSH settings a pair inherits); the
//! same problem reached through several pairs (a bad value in baton.toml)
//! is reported once for all of them.

mod changes;
mod checks;
mod fleet;
mod haproxy;
mod hosts;
mod jump;
mod maintenance;
mod notify;
mod pair;
mod parse;
mod paths;
mod roles;
mod settings;
mod ssh;
mod store;
mod traffic;
mod values;

use std::path::{Path, PathBuf};

use crate::config::diag::{Key, Source};
use crate::config::raw::{self, GlobalFile, PairFile};
use crate::config::{pair_name, Diagnostic, Loaded, Problem};

use Key::Name as N;

/// Collects problems for one scope (the global file, or one pair).
struct Sink<'a> {
    pairs: Vec<String>,
    problems: &'a mut Vec<Problem>,
}

impl Sink<'_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.problems.push(Problem {
            pairs: self.pairs.clone(),
            diagnostic,
        });
    }

    /// Reports that the key at `key` is missing from `src`, unless it may
    /// have been written and refused (`raw::Refused::lost`): then it is
    /// unknown rather than missing, and the refusal is the one message.
    fn missing(&mut self, src: &Source<'_>, key: &[Key<'_>], diagnostic: Diagnostic) {
        if !src.refused().lost(key) {
            self.push(diagnostic);
        }
    }
}

/// Validates the files `load` read: `None` for a file that could not be
/// read as text, whose problem is already reported (baton.toml is then
/// taken as refused as a whole, like a syntax error; a pair is only named).
pub(super) fn run(
    loaded: &mut Loaded,
    file: &Path,
    global_text: Option<&str>,
    pairs: &[(PathBuf, Option<String>)],
) {
    let mut global_src = Source::new(file, global_text.unwrap_or(""));
    let base = file.parent().unwrap_or(Path::new("."));
    let global: Option<GlobalFile> = match global_text {
        Some(_) => parse::parse(
            &mut global_src,
            &mut Sink {
                pairs: vec![],
                problems: &mut loaded.problems,
            },
        ),
        None => {
            global_src.set_refused(raw::Refused::everything());
            None
        }
    };
    let global_refused = global_src.refused().clone();
    let settings = global.as_ref().and_then(|g| {
        settings::settings(
            g,
            &global_src,
            base,
            &mut Sink {
                pairs: vec![],
                problems: &mut loaded.problems,
            },
        )
    });
    // The environments are known if the file names them, or names none
    // and refused nothing that may be them.
    let environments_known = global
        .as_ref()
        .is_some_and(|g| g.environments.is_some() || !global_refused.lost(&[N("environments")]));
    let default_global = GlobalFile::default();
    let global_ref = global.as_ref().unwrap_or(&default_global);

    let mut fleet = fleet::Fleet::default();
    for (path, text) in pairs {
        let name = pair_name(path);
        loaded.names.push(name.clone());
        let Some(text) = text else { continue };
        let mut src = Source::new(path, text);
        let mut sink = Sink {
            pairs: vec![name.clone()],
            problems: &mut loaded.problems,
        };
        if !values::valid_name(&name) {
            sink.push(src.at(
                &[],
                format!("`{name}` is not a valid pair name"),
                "rename the file: a pair name uses letters, digits, `-` and `_`, and starts with a letter or digit",
            ));
        }
        let Some(raw) = parse::parse::<PairFile>(&mut src, &mut sink) else {
            continue;
        };
        let ctx = pair::PairCtx {
            src: &src,
            global_src: &global_src,
            global: global_ref,
            base: path.parent().unwrap_or(Path::new(".")),
            global_base: base,
            environments: settings
                .as_ref()
                .filter(|_| environments_known)
                .map(|s| s.environments.as_slice()),
            maintenance: settings.as_ref().map(|s| &s.maintenance),
            holds: settings.as_ref().map(|s| &s.holds),
        };
        // A file with a refused part is not a pair, even where what was read
        // of it validated: what was left out would be defaults (no servers,
        // no environment) that nothing may act on.
        let pair =
            pair::pair(&name, path, &raw, &ctx, &mut sink).filter(|_| src.refused().is_empty());
        if let Some(pair) = pair {
            loaded.warnings.extend(checks::fixed_addresses(&src, &pair));
            fleet.admit(
                &src,
                &name,
                path,
                &pair,
                &mut loaded.problems,
                &mut loaded.warnings,
            );
            loaded.pairs.insert(name, pair);
        }
    }
    fleet::names_differing_in_case(file, &loaded.names, &mut loaded.problems);
    // A baton.toml with a refused part is not usable, even where what was
    // read of it validated.
    loaded.settings = settings.filter(|_| global_refused.is_empty());
    merge_repeats(&mut loaded.problems);
}

/// One problem reported for several pairs (a bad value in baton.toml that
/// every pair inherits) is shown once, for all of them.
fn merge_repeats(problems: &mut Vec<Problem>) {
    let mut out: Vec<Problem> = Vec::with_capacity(problems.len());
    for p in problems.drain(..) {
        match out.iter_mut().find(|o| o.diagnostic == p.diagnostic) {
            // A problem that blocks everything stays so.
            Some(o) if o.pairs.is_empty() || p.pairs.is_empty() => o.pairs.clear(),
            Some(o) => {
                for name in p.pairs {
                    if !o.pairs.contains(&name) {
                        o.pairs.push(name);
                    }
                }
            }
            None => out.push(p),
        }
    }
    *problems = out;
}

/// What the submodules' unit tests share: one file's text validated by one
/// rule, and the diagnostics it gave.
#[cfg(test)]
mod testing {
    use std::path::Path;

    use serde::de::DeserializeOwned;

    use super::{parse, Sink};
    use crate::config::diag::Source;
    use crate::config::Diagnostic;

    /// Parses `text` (as the file `file.toml`) into `T` as validation
    /// does, then runs `rule` on it; returns what the rule returned and
    /// every diagnostic, the parse's refusals first.
    pub(super) fn check<T: DeserializeOwned, R>(
        text: &str,
        rule: impl FnOnce(&T, &Source<'_>, &mut Sink<'_>) -> R,
    ) -> (R, Vec<Diagnostic>) {
        let mut problems = Vec::new();
        let mut src = Source::new(Path::new("file.toml"), text);
        let mut sink = Sink {
            pairs: vec!["p".to_string()],
            problems: &mut problems,
        };
        let raw: T = parse::parse(&mut src, &mut sink).expect("the test's text is TOML");
        let out = rule(&raw, &src, &mut sink);
        (out, problems.into_iter().map(|p| p.diagnostic).collect())
    }

    /// The messages of `diagnostics`, each as `LINE:COLUMN: MESSAGE`.
    pub(super) fn messages(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(pairs: &[&str], message: &str) -> Problem {
        Problem {
            pairs: pairs.iter().map(|p| p.to_string()).collect(),
            diagnostic: Diagnostic {
                file: PathBuf::from("baton.toml"),
                line: 3,
                column: 1,
                message: message.to_string(),
                fix: "fix it".to_string(),
            },
        }
    }

    #[test]
    fn a_repeated_problem_is_shown_once_for_every_pair_it_affects() {
        let mut problems = vec![
            problem(&["a"], "bad"),
            problem(&["b"], "other"),
            problem(&["c", "a"], "bad"),
        ];
        merge_repeats(&mut problems);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].diagnostic.message, "bad");
        assert_eq!(problems[0].pairs, ["a", "c"]);
        assert_eq!(problems[1].pairs, ["b"]);
    }

    #[test]
    fn a_repeated_problem_that_blocks_everything_stays_blocking() {
        for mut problems in [
            vec![problem(&["a"], "bad"), problem(&[], "bad")],
            vec![problem(&[], "bad"), problem(&["a"], "bad")],
        ] {
            merge_repeats(&mut problems);
            assert_eq!(problems.len(), 1);
            assert!(problems[0].pairs.is_empty(), "{:?}", problems[0].pairs);
        }
    }
}
