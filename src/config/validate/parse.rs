//! The lenient parse of one file (`raw::parse`) as diagnostics: each part
//! the parse refused (a syntax error, an unknown key, a bad value) becomes
//! one problem at its position, with the fix for that kind of mistake.

use crate::config::diag::Source;
use crate::config::raw::{self, RefusalKind};

use super::Sink;

/// Reads a file leniently (see `raw::parse`): each refused part becomes a
/// diagnostic, and `src` learns what was refused. `None` when the file is not
/// TOML at all.
pub(super) fn parse<T: serde::de::DeserializeOwned>(
    src: &mut Source<'_>,
    sink: &mut Sink<'_>,
) -> Option<T> {
    let parsed = raw::parse::<T>(src.text());
    for r in &parsed.refusals {
        let fix = match r.kind {
            RefusalKind::UnknownKey => {
                "remove or rename the key; the message lists the keys allowed here".to_string()
            }
            RefusalKind::BadValue => value_fix(&r.message),
            RefusalKind::Syntax => syntax_fix(&r.message),
        };
        sink.push(src.at_span(r.span.clone(), r.message.clone(), fix));
    }
    src.set_refused(parsed.refused);
    parsed.value
}

// Why these two read the message's text: the text is the toml library's (and
// serde's), not ours, and it is the only thing that tells these mistakes
// apart. `toml::de::Error` (toml 1.x) exposes only `message()` and `span()`;
// a syntax error is built from a `toml_parser::ParseError`, itself only a
// description string ("duplicate key", "recursion limit", "cannot recurse
// further; max recursion depth met"); a duration's error comes from
// `humantime_serde` through serde's `Error::custom` / `invalid_type` ("...
// expected a duration", "unknown time unit ..."). No kind or code is
// exposed to match on instead. The fix is only advice: a reworded library
// message gives the general fix, never a different decision (the message
// itself is shown as the library wrote it). "too deep" is `raw::parse`'s
// own wording for a key of too many dotted parts. The tests below pin the
// wording each branch relies on.

/// The fix for a refused value.
fn value_fix(message: &str) -> String {
    if message.contains("duration") || message.contains("time unit") {
        "write durations as a quoted number with a unit, like \"500ms\", \"30s\" or \"5m\""
            .to_string()
    } else if message.contains("floating point") && whole_number_expected(message) {
        "write a whole number, without a decimal point or exponent".to_string()
    } else {
        "write a value of the type and range the message names (strings in quotes, numbers and true/false bare)"
            .to_string()
    }
}

/// Whether serde's message names an integer type as the one expected
/// ("expected u32", "expected u16", "expected i64").
fn whole_number_expected(message: &str) -> bool {
    message.split("expected ").skip(1).any(|rest| {
        let mut chars = rest.chars();
        matches!(chars.next(), Some('u' | 'i')) && chars.next().is_some_and(|c| c.is_ascii_digit())
    })
}

/// The fix for a file that is not TOML.
fn syntax_fix(message: &str) -> String {
    if message.contains("duplicate key") {
        "remove one of the two definitions".to_string()
    } else if message.contains("recursion") || message.contains("too deep") {
        "nest arrays, inline tables and dotted keys less deeply: no setting of baton needs more than a few levels".to_string()
    } else {
        "fix the TOML syntax at this position".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::raw::PairFile;
    use crate::config::Diagnostic;

    /// The diagnostics of reading `text` as a pair file.
    fn refusals(text: &str) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        let mut src = Source::new(Path::new("p.toml"), text);
        let mut sink = Sink {
            pairs: vec![],
            problems: &mut problems,
        };
        let _ = parse::<PairFile>(&mut src, &mut sink);
        problems.into_iter().map(|p| p.diagnostic).collect()
    }

    fn only_fix(text: &str) -> String {
        let d = refusals(text);
        assert_eq!(d.len(), 1, "{d:?}");
        d[0].fix.clone()
    }

    #[test]
    fn a_bad_duration_gets_the_duration_fix_from_the_librarys_wording() {
        for text in [
            "observe_period = 5\n",
            "observe_period = \"5 parsecs\"\n",
            "observe_period = \"five\"\n",
        ] {
            assert!(
                only_fix(text).starts_with("write durations as a quoted number"),
                "{text}"
            );
        }
        // Any other bad value gets the general fix.
        assert!(only_fix("canary = \"yes\"\n").starts_with("write a value of the type"));
    }

    #[test]
    fn a_fraction_where_a_whole_number_is_expected_gets_the_whole_number_fix() {
        for text in [
            "[ssh]\nport = 22.0\n",
            "[traffic]\nweight = 1.5\n",
            "[traffic]\nmin_requests = 2e1\n",
            "[roles]\nmax_lag = 0.0\n",
        ] {
            let d = refusals(text);
            assert_eq!(d.len(), 1, "{d:?}");
            assert!(d[0].message.contains("floating point"), "{}", d[0].message);
            assert_eq!(
                d[0].fix, "write a whole number, without a decimal point or exponent",
                "{text}"
            );
        }
        // A string is not a fraction: the general fix.
        assert!(only_fix("[traffic]\nweight = \"1\"\n").starts_with("write a value of the type"));
    }

    #[test]
    fn a_key_defined_twice_gets_remove_one_of_them() {
        let d = refusals("environment = \"dev\"\nenvironment = \"test\"\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].message.contains("duplicate key"), "{}", d[0].message);
        assert_eq!(d[0].fix, "remove one of the two definitions");
        assert_eq!((d[0].line, d[0].column), (2, 1));
    }

    #[test]
    fn nesting_too_deep_gets_the_nesting_fix() {
        let deep = format!("x = {}1{}\n", "[".repeat(200), "]".repeat(200));
        assert!(only_fix(&deep).starts_with("nest arrays, inline tables and dotted keys"));
        let key = format!("{} = 1\n", vec!["a"; 90].join("."));
        assert!(only_fix(&key).starts_with("nest arrays, inline tables and dotted keys"));
    }

    #[test]
    fn other_syntax_errors_and_unknown_keys_get_their_own_fixes() {
        assert_eq!(
            only_fix("environment = \"dev\n"),
            "fix the TOML syntax at this position"
        );
        assert_eq!(
            only_fix("enviroment = \"dev\"\n"),
            "remove or rename the key; the message lists the keys allowed here"
        );
    }
}
