//! POSIX shell quoting for every value that reaches a remote command line.

/// Quotes one word for a POSIX shell. Words made only of characters the
/// shell never interprets are returned as they are; everything else is put
/// in single quotes, with embedded single quotes written as `'\''`.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b'@' | b'%' | b'+' | b','
                )
        });
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Quotes each word and joins them with spaces: a command line that runs
/// exactly these arguments.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(quote("eth0"), "eth0");
        assert_eq!(quote("198.18.0.100/24"), "198.18.0.100/24");
    }

    #[test]
    fn dangerous_words_are_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("x;rm -rf /"), "'x;rm -rf /'");
        assert_eq!(quote("-n\nls"), "'-n\nls'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        let hostile = [
            "it's",
            "$(echo pwned)",
            "`id`",
            "a\"b",
            "semi;colon",
            "new\nline",
            "*",
            "~",
            "",
            "back\\slash",
        ];
        let line = format!("printf '%s\\0' {}", join(&hostile));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        let got: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        let want: Vec<String> = hostile
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, want);
        // The empty word is still one argument.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("set -- {}; echo $#", join(&hostile)))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            hostile.len().to_string()
        );
    }

    #[test]
    fn every_character_outside_the_safe_set_forces_quotes() {
        for safe in ["a-b_c.d/e:f=g@h%i+j,k", "ABC123", "-", "/", "@"] {
            assert_eq!(quote(safe), safe);
        }
        for unsafe_ in [
            "a&b", "a|b", "a>b", "a<b", "a(b", "a!b", "a#b", "a{b}", "a[b]", "a?b", "a^b", "a\tb",
            "é", "a\0b",
        ] {
            let q = quote(unsafe_);
            assert!(q.starts_with('\'') && q.ends_with('\''), "{unsafe_:?}: {q}");
        }
    }

    #[test]
    fn a_word_of_single_quotes_is_still_one_literal_word() {
        assert_eq!(quote("'"), r"''\'''");
        assert_eq!(quote("''"), r"''\'''\'''");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s' {}", quote("'''")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "'''");
    }

    #[test]
    fn joining_nothing_or_one_word() {
        assert_eq!(join::<&str>(&[]), "");
        assert_eq!(
            join(&["ip", "addr", "del", "10.0.0.1/24", "dev", "eth 0"]),
            "ip addr del 10.0.0.1/24 dev 'eth 0'"
        );
        assert_eq!(join(&[String::new()]), "''");
    }
}
