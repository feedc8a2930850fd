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

/// The lines of a multi-line `text` (a command's output), each escaped;
/// tabs are kept.
pub fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split('\t').map(escape).collect::<Vec<_>>().join("\t"))
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
        let out: Vec<String> = lines("ok\tfine\nbad\u{7}bell\r\n").collect();
        assert_eq!(out, ["ok\tfine", "bad\\u{7}bell\\r"]);
    }
}
