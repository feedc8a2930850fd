//! Text from outside (a remote command's output, a reason, an operator's
//! name, a hook's answer) made safe for a terminal and for line-oriented
//! output: control characters and invisible reordering ones are shown
//! escaped (`\n`, `\u{1b}`, `\u{202e}`), so that nothing printed can forge
//! a line of its own, drive the terminal, or read as something else.

/// Whether a character would not show as itself on one line of a
/// terminal: a control character (a newline, a tab, NUL, an escape), or an
/// invisible one that reorders or hides text (bidirectional overrides and
/// isolates such as U+202E, zero-width characters, line and paragraph
/// separators, a byte order mark).
pub fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `text` with every [`unprintable`] character escaped (`\n`, `\u{1b}`,
/// `\u{202e}`): one line that reads as what it holds, inert. Escaping
/// twice changes nothing more.
pub fn escape(text: &str) -> String {
    if !text.chars().any(unprintable) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if unprintable(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(escape("plain text"), "plain text");
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("x\ry"), "x\\ry");
        assert_eq!(escape("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(escape("bad\u{7}bell\t"), "bad\\u{7}bell\\t");
    }

    #[test]
    fn the_invisible_ranges_are_unprintable_at_both_ends_and_their_neighbours_are_not() {
        for c in [
            '\u{0}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}', '\u{061c}', '\u{200b}', '\u{200f}',
            '\u{2028}', '\u{202e}', '\u{2060}', '\u{2064}', '\u{2066}', '\u{2069}', '\u{feff}',
        ] {
            assert!(unprintable(c), "{c:?}");
        }
        for c in [
            ' ', '~', '\u{a0}', 'é', '\u{061b}', '\u{200a}', '\u{2010}', '\u{2027}', '\u{202f}',
            '\u{2065}', '\u{206a}', '\u{fefe}', '日', '🙂',
        ] {
            assert!(!unprintable(c), "{c:?}");
        }
    }

    #[test]
    fn escaping_is_idempotent_and_keeps_printable_unicode() {
        for text in [
            "a\nb\u{1b}[2J",
            "x\u{2066}y\u{feff}",
            "tab\there",
            "\\n literal",
        ] {
            let once = escape(text);
            assert!(!once.chars().any(unprintable), "{once:?}");
            assert_eq!(escape(&once), once, "{text:?}");
        }
        assert_eq!(escape("grüße 日本 🙂"), "grüße 日本 🙂");
        assert_eq!(escape("line\u{2028}sep"), "line\\u{2028}sep");
        assert_eq!(escape("\u{7f}"), "\\u{7f}");
        // A forged second line stays on the first.
        assert_eq!(escape("ok\nbaton: done").lines().count(), 1);
    }
}
