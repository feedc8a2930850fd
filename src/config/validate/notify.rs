//! A `[notify]` table, in baton.toml or in a pair file: the command (not
//! empty), the webhook (an http or https URL with a host, never quoted
//! back whole in a message: its path usually holds a token), the moments
//! in `on` (`start` and the outcomes' names, each once) and the timeout
//! (above zero, at most a minute); a pair's keys over baton.toml's, key by
//! key.

use std::time::Duration;

use crate::config::diag::{printable, Key, Source};
use crate::config::raw::NotifyFile;
use crate::config::{Notify, WebhookUrl, NOTIFY_TIMEOUT_MAX};
use crate::core::notify::{shown_url, Filter, Trigger};

use super::Sink;

use Key::{Index as I, Name as N};

/// One file's `[notify]` table, checked; `None` where a key is absent (or
/// refused: the file is then refused as a whole anyway).
#[derive(Default)]
pub(super) struct NotifyPart {
    command: Option<String>,
    webhook: Option<WebhookUrl>,
    on: Option<Filter>,
    timeout: Option<Duration>,
}

impl NotifyPart {
    /// These keys, the rest from `base`.
    pub(super) fn over(self, base: &Notify) -> Notify {
        Notify {
            command: self.command.or_else(|| base.command.clone()),
            webhook: self.webhook.or_else(|| base.webhook.clone()),
            on: self.on.unwrap_or(base.on),
            timeout: self.timeout.unwrap_or(base.timeout),
        }
    }
}

pub(super) fn notify_part(
    raw: Option<&NotifyFile>,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
) -> NotifyPart {
    let Some(raw) = raw else {
        return NotifyPart::default();
    };
    let n = N("notify");
    let command = raw.command.as_ref().and_then(|c| {
        if c.trim().is_empty() {
            sink.push(src.at(
                &[n, N("command")],
                "the notify command is empty",
                "give the command that gets each event on stdin, like \"/usr/local/bin/page-oncall\", or remove the key",
            ));
            None
        } else if c.contains('\0') {
            sink.push(src.at(
                &[n, N("command")],
                format!("the notify command `{}` contains a NUL character", printable(c)),
                "remove the NUL character: a command line cannot hold one",
            ));
            None
        } else {
            Some(c.clone())
        }
    });
    let webhook = raw.webhook.as_ref().and_then(|url| {
        let at = [n, N("webhook")];
        let fix =
            "write an http or https URL with a host, like \"https://hooks.slack.com/services/...\"";
        match webhook_problem(url) {
            None => Some(WebhookUrl::new(url.clone())),
            Some(problem) => {
                sink.push(src.at(&at, problem, fix));
                None
            }
        }
    });
    let on = raw.on.as_ref().map(|names| {
        let mut seen: Vec<Trigger> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match Trigger::parse(name) {
                Some(t) if seen.contains(&t) => sink.push(src.at(
                    &[n, N("on"), I(i)],
                    format!("`{name}` is listed twice in `on`"),
                    "list each moment once",
                )),
                Some(t) => seen.push(t),
                None => sink.push(src.at(
                    &[n, N("on"), I(i)],
                    format!("`{}` is not a moment baton notifies of", printable(name)),
                    format!("use any of: {} (`on = []` sends nothing)", Trigger::names()),
                )),
            }
        }
        Filter::of(seen)
    });
    if let Some(t) = raw.timeout {
        if t.is_zero() || t > NOTIFY_TIMEOUT_MAX {
            sink.push(src.at(
                &[n, N("timeout")],
                format!(
                    "notify timeout {} is out of range",
                    humantime::format_duration(t)
                ),
                "use between \"100ms\" and \"1m\" (\"5s\" is the default): a notifier never delays a run by more",
            ));
        }
    }
    NotifyPart {
        command,
        webhook,
        on,
        timeout: raw.timeout,
    }
}

/// What is wrong with a webhook URL, in words that quote it only as
/// [`shown_url`] does (its path and query usually hold a token).
fn webhook_problem(url: &str) -> Option<String> {
    if url.trim().is_empty() {
        return Some("the webhook URL is empty".to_string());
    }
    match reqwest::Url::parse(url) {
        Err(e) => Some(format!(
            "the webhook `{}` is not a URL ({e})",
            shown_url(url)
        )),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
            "the webhook's scheme `{}` is not http or https",
            printable(u.scheme())
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            Some(format!("the webhook `{}` names no host", shown_url(url)))
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, messages};
    use super::*;
    use crate::config::raw::GlobalFile;

    fn part(text: &str) -> (NotifyPart, Vec<String>, Vec<String>) {
        let (p, d) = check(text, |g: &GlobalFile, src, sink| {
            notify_part(g.notify.as_ref(), src, sink)
        });
        let fixes = d.iter().map(|d| d.fix.clone()).collect();
        (p, messages(&d), fixes)
    }

    #[test]
    fn a_full_table_is_read_and_the_default_sends_every_end() {
        let (p, m, _) = part(
            "[notify]\ncommand = \"/usr/local/bin/page-oncall\"\nwebhook = \"https://hooks.example/services/T0/B0/tok\"\ntimeout = \"2s\"\n",
        );
        assert!(m.is_empty(), "{m:?}");
        let n = p.over(&Notify::none());
        assert_eq!(n.command.as_deref(), Some("/usr/local/bin/page-oncall"));
        assert_eq!(
            n.webhook.as_ref().map(WebhookUrl::secret),
            Some("https://hooks.example/services/T0/B0/tok")
        );
        assert_eq!(
            format!("{:?}", n.webhook),
            "Some(WebhookUrl(https://hooks.example/…))"
        );
        assert_eq!(n.timeout, Duration::from_secs(2));
        assert_eq!(n.on, Filter::default());
        assert!(n.active());
    }

    #[test]
    fn a_pairs_keys_replace_the_bases_one_by_one() {
        let (global, m, _) = part(
            "[notify]\nwebhook = \"http://198.18.0.200:8080/hook\"\non = [\"start\", \"ok\"]\n",
        );
        assert!(m.is_empty(), "{m:?}");
        let global = global.over(&Notify::none());
        let (pair, m, _) = part("[notify]\ncommand = \"cat\"\non = []\n");
        assert!(m.is_empty(), "{m:?}");
        let pair = pair.over(&global);
        assert_eq!(pair.command.as_deref(), Some("cat"));
        assert!(pair.webhook.is_some(), "baton.toml's webhook is kept");
        assert_eq!(pair.on, Filter::NONE, "an empty list sends nothing");
        assert!(!pair.active());
    }

    #[test]
    fn a_bad_url_is_refused_without_quoting_its_token() {
        for (text, want) in [
            (
                "ftp://hooks.example/tok3n",
                "the webhook's scheme `ftp` is not http or https",
            ),
            (
                "hooks.example/tok3n",
                "the webhook `(not a URL)` is not a URL (relative URL without a base)",
            ),
            ("", "the webhook URL is empty"),
            (
                "https://",
                "the webhook `https://` is not a URL (empty host)",
            ),
        ] {
            let (p, m, fixes) = part(&format!("[notify]\nwebhook = {text:?}\n"));
            assert!(p.webhook.is_none());
            assert_eq!(m.len(), 1, "{m:?}");
            assert_eq!(m[0], format!("2:11: {want}"), "{text}");
            assert!(
                fixes[0].starts_with("write an http or https URL"),
                "{fixes:?}"
            );
        }
        let (_, m, _) = part("[notify]\nwebhook = \"https://user:pw@hooks.example/s/tok3n?x=1\"\n");
        assert!(m.is_empty(), "{m:?}");
        let (_, m, _) = part("[notify]\nwebhook = \"mailto:ops@tok3n.example\"\n");
        assert!(!m.concat().contains("tok3n"), "{m:?}");
    }

    #[test]
    fn unknown_and_repeated_moments_and_a_timeout_out_of_range_are_refused() {
        let (p, m, fixes) = part(
            "[notify]\ncommand = \"cat\"\non = [\"ok\", \"failed\", \"ok\"]\ntimeout = \"2m\"\n",
        );
        assert_eq!(
            m,
            [
                "3:13: `failed` is not a moment baton notifies of",
                "3:23: `ok` is listed twice in `on`",
                "4:11: notify timeout 2m is out of range"
            ]
        );
        assert_eq!(
            fixes[0],
            "use any of: start, ok, held, rolled_back, incomplete, operator, not_started (`on = []` sends nothing)"
        );
        assert_eq!(p.on, Some(Filter::of([Trigger::Ok])));
        let (_, m, _) = part("[notify]\ncommand = \"cat\"\ntimeout = \"0s\"\n");
        assert_eq!(m, ["3:11: notify timeout 0s is out of range"]);
    }

    #[test]
    fn an_empty_command_is_refused() {
        let (p, m, _) = part("[notify]\ncommand = \"  \"\n");
        assert!(p.command.is_none());
        assert_eq!(m, ["2:11: the notify command is empty"]);
    }
}
