//! Text from outside (a remote command's output, a reason, an operator's
//! name, a hook's answer) made safe for a terminal and for line-oriented
//! output: control characters are shown escaped (`\n`, `\u{1b}`), so that
//! nothing printed can forge a line of its own or drive the terminal.

/// `text` with every control character escaped: one line, inert.
pub fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
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
        assert_eq!(escape("bad\u{7}bell\t"), "bad\\u{7}bell\\t");
    }
}
