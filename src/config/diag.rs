//! Configuration diagnostics: one problem in one file, located by line and
//! column, with what is wrong and how to fix it. Also owns the mapping from a
//! TOML key path (`traffic.address`, `checks[1].url`) to its position in the
//! source text, so validation can point at the exact value it rejects, and
//! carries what the file's parse refused beside its text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::config::raw::Refused;

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column, 0 when the problem is about the file as a whole.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// `FILE:LINE:COLUMN: MESSAGE` (`FILE: MESSAGE` for the file as a whole),
/// then the fix on a line of its own. The file's name is shown
/// [`printable`] like the message: a pair file named with a newline or
/// U+202E still gives one readable line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = printable(&self.file.display().to_string());
        if self.line == 0 {
            write!(f, "{file}: {}", self.message)?;
        } else {
            write!(f, "{file}:{}:{}: {}", self.line, self.column, self.message)?;
        }
        if !self.fix.is_empty() {
            write!(f, "\n    fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Every problem found in a configuration, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The text of one configuration file, with its parsed span tree, used to
/// turn key paths into positions, and what its parse refused
/// ([`Refused`]), used to tell a missing key from a refused one.
pub struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    tree: Option<toml::Spanned<DeTable<'a>>>,
    refused: Refused,
}

/// One step of a key path.
#[derive(Debug, Clone, Copy)]
pub enum Key<'k> {
    /// A table key.
    Name(&'k str),
    /// An array index.
    Index(usize),
}

impl<'a> Source<'a> {
    /// Wraps a file's text; the span tree is built if the text parses.
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        let tree = DeTable::parse(text).ok();
        Source {
            path,
            text,
            tree,
            refused: Refused::default(),
        }
    }

    /// Records what the parse of this file refused.
    pub fn set_refused(&mut self, refused: Refused) {
        self.refused = refused;
    }

    /// What the parse of this file refused.
    pub fn refused(&self) -> &Refused {
        &self.refused
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// The file's text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// A diagnostic at a byte range of the text. The message and the fix
    /// quote what the file holds: they are made [`printable`].
    pub fn at_span(&self, span: Range<usize>, message: String, fix: String) -> Diagnostic {
        let (line, column) = line_col(self.text, span.start);
        Diagnostic {
            file: self.path.to_path_buf(),
            line,
            column,
            message: printable(&message),
            fix: printable(&fix),
        }
    }

    /// A diagnostic at the value of a key path; falls back to the nearest
    /// enclosing key that exists, then to the start of the file.
    pub fn at(
        &self,
        path: &[Key<'_>],
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Diagnostic {
        let span = self.span_of(path).unwrap_or(0..0);
        let mut d = self.at_span(span, message.into(), fix.into());
        if self.text.is_empty() {
            d.line = 0;
            d.column = 0;
        }
        d
    }

    /// The byte range of the value at a key path (or of the closest existing
    /// ancestor).
    pub fn span_of(&self, path: &[Key<'_>]) -> Option<Range<usize>> {
        let tree = self.tree.as_ref()?;
        let mut best: Option<Range<usize>> = None;
        let mut current: Option<&DeValue<'_>> = None;
        let mut table: Option<&DeTable<'_>> = Some(tree.get_ref());
        for key in path {
            let next = match (key, table, current) {
                (Key::Name(name), Some(t), _) => t
                    .iter()
                    .find(|(k, _)| k.get_ref().as_ref() == *name)
                    .map(|(_, v)| v),
                (Key::Index(i), _, Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            let Some(next) = next else { break };
            best = Some(next.span());
            current = Some(next.get_ref());
            table = match next.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        best
    }
}

pub use crate::core::printable::{escape as printable, unprintable};

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 11), (2, 6));
    }

    #[test]
    fn printable_escapes_controls_and_invisible_reordering() {
        assert_eq!(printable("eth0"), "eth0");
        assert_eq!(printable("a\nb\u{0}"), "a\\nb\\u{0}");
        assert_eq!(printable("x\u{202e}y\u{feff}"), "x\\u{202e}y\\u{feff}");
        assert_eq!(printable(&printable("a\tb")), printable("a\tb"));
        assert_eq!(printable("é"), "é");
    }

    #[test]
    fn a_file_name_is_shown_printable() {
        let d = Diagnostic {
            file: PathBuf::from("pairs/a\nb\u{202e}.toml"),
            line: 1,
            column: 1,
            message: "m".to_string(),
            fix: "f".to_string(),
        };
        assert_eq!(
            d.to_string(),
            "pairs/a\\nb\\u{202e}.toml:1:1: m\n    fix: f"
        );
    }

    #[test]
    fn span_of_finds_nested_keys_and_array_items() {
        let text = "x = 1\n[traffic]\naddress = \"10.0.0.1\"\n[[checks]]\nurl = \"a\"\n[[checks]]\nurl = \"b\"\n";
        let src = Source::new(Path::new("p.toml"), text);
        let d = src.at(&[Key::Name("traffic"), Key::Name("address")], "m", "f");
        assert_eq!((d.line, d.column), (3, 11));
        let d = src.at(
            &[Key::Name("checks"), Key::Index(1), Key::Name("url")],
            "m",
            "f",
        );
        assert_eq!((d.line, d.column), (7, 7));
        // A missing key falls back to its closest ancestor.
        let d = src.at(&[Key::Name("traffic"), Key::Name("nope")], "m", "f");
        assert_eq!(d.line, 2);
    }
}
