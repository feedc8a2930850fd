//! Notifications, the rules: the moments of a run that can be reported
//! ([`Trigger`]: its start, and each outcome it can end with), the
//! operator's choice of them ([`Filter`], `on = [...]` under `[notify]`),
//! the event itself ([`Event`], schema 1: one JSON object a command gets
//! on stdin and a webhook gets as its body) with its human line (`text`,
//! which Slack and Mattermost show), and a webhook URL shown without what
//! usually holds its token ([`shown_url`]). Pure: building an event reads
//! no clock and sends nothing (`io::notify` sends, `exec::notify` decides
//! when).

use serde::{Deserialize, Serialize};

use crate::core::cycle::{self, Ended, Kind, Outcome, Shape};
use crate::core::printable;

/// The version of the event's schema: fields are only ever added within
/// a version.
pub const SCHEMA: u32 = 1;

/// The longest `text` (in characters): a chat line, not a report.
const TEXT_MAX: usize = 600;

/// A moment of a run that can be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// A run passed preflight and begins to change things (or an operator
    /// decided a held run, which goes on).
    Start,
    /// The run ended well.
    Ok,
    /// The run is held for the operator's decision (a hold, an A/B
    /// experiment).
    Held,
    /// The run failed and was undone: traffic on the old primary.
    RolledBack,
    /// Traffic moved and was verified, but the old primary is not a healthy
    /// standby.
    Incomplete,
    /// An undo failed, traffic is unclear, or a record could not be
    /// written: someone must look.
    Operator,
    /// The run did not start (preflight, the gate, the window, a hold).
    NotStarted,
}

impl Trigger {
    /// Every trigger, in the order the README lists them.
    pub const ALL: [Trigger; 7] = [
        Trigger::Start,
        Trigger::Ok,
        Trigger::Held,
        Trigger::RolledBack,
        Trigger::Incomplete,
        Trigger::Operator,
        Trigger::NotStarted,
    ];

    /// Its name in `on = [...]`, in the event and in the journal (an
    /// outcome's own name, or `start`).
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Ok => Outcome::Ok.name(),
            Trigger::Held => Outcome::Held.name(),
            Trigger::RolledBack => Outcome::RolledBack.name(),
            Trigger::Incomplete => Outcome::Incomplete.name(),
            Trigger::Operator => Outcome::Operator.name(),
            Trigger::NotStarted => Outcome::NotStarted.name(),
        }
    }

    /// The trigger named `name`, if any.
    pub fn parse(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The trigger of a run that ended so.
    pub fn of(outcome: Outcome) -> Trigger {
        match outcome {
            Outcome::Ok => Trigger::Ok,
            Outcome::Held => Trigger::Held,
            Outcome::RolledBack => Trigger::RolledBack,
            Outcome::Incomplete => Trigger::Incomplete,
            Outcome::Operator => Trigger::Operator,
            Outcome::NotStarted => Trigger::NotStarted,
        }
    }

    /// Every name, for messages (`start, ok, held, ...`).
    pub fn names() -> String {
        Trigger::ALL.map(Trigger::name).join(", ")
    }
}

impl Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Trigger::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown notification `{name}` (one of: {})",
                Trigger::names()
            ))
        })
    }
}

/// Which moments are sent (`on = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter(u8);

impl Filter {
    /// Nothing (`on = []`).
    pub const NONE: Filter = Filter(0);

    /// The default: every end of a run (each outcome), not the start.
    pub fn ends() -> Filter {
        Filter::of(
            Trigger::ALL
                .iter()
                .copied()
                .filter(|t| *t != Trigger::Start),
        )
    }

    /// Exactly these.
    pub fn of(triggers: impl IntoIterator<Item = Trigger>) -> Filter {
        Filter(triggers.into_iter().fold(0, |acc, t| acc | Filter::bit(t)))
    }

    fn bit(t: Trigger) -> u8 {
        1 << (t as u8)
    }

    /// Whether `t` is sent.
    pub fn allows(self, t: Trigger) -> bool {
        self.0 & Filter::bit(t) != 0
    }

    /// The names it lets through, in order.
    pub fn names(self) -> Vec<&'static str> {
        Trigger::ALL
            .into_iter()
            .filter(|t| self.allows(*t))
            .map(Trigger::name)
            .collect()
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter::ends()
    }
}

/// The operator's decision on a held run, when the event is about one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// `baton finish`: the held old primary is updated.
    Finish,
    /// `baton revert`: traffic back to the held old primary, the change
    /// rolled back.
    Revert,
    /// `baton ab --end --keep new`.
    KeepNew,
    /// `baton ab --end --keep old`.
    KeepOld,
}

impl Decision {
    /// The decision that keeps the new version (`new`) or the old one, on
    /// a run of this shape (an A/B experiment, or a hold).
    pub fn of(new: bool, shape: Shape) -> Decision {
        match (shape == Shape::Experiment, new) {
            (true, true) => Decision::KeepNew,
            (true, false) => Decision::KeepOld,
            (false, true) => Decision::Finish,
            (false, false) => Decision::Revert,
        }
    }

    /// How `text` says it.
    fn words(self) -> &'static str {
        match self {
            Decision::Finish => "finish",
            Decision::Revert => "revert",
            Decision::KeepNew => "A/B end keeping the new version",
            Decision::KeepOld => "A/B end keeping the old version",
        }
    }
}

/// A change as the event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRef {
    /// Its name in the pair file (`[changes.NAME]`).
    pub name: String,
    /// Its label.
    pub label: Option<String>,
    /// Its content hash.
    pub hash: Option<String>,
}

/// A host of the pair as the event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRef {
    /// Its name in the pair file.
    pub name: String,
    /// Its own address.
    pub address: String,
}

/// What the event says about the run, from its start record (or, for a
/// command refused before any run began, from the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The run's id; `None` when no run began.
    pub run: Option<String>,
    /// What kind of run (`None`: not known, a `recover` with nothing to
    /// settle).
    pub kind: Option<Kind>,
    /// `baton rollback`: the cycle takes the change back.
    pub reverse: bool,
    /// The old primary (traffic's holder when the run began).
    pub from: Option<String>,
    /// The new primary.
    pub to: Option<String>,
    /// The change.
    pub change: Option<ChangeRef>,
    /// Who.
    pub operator: String,
    /// Why, in the operator's words.
    pub reason: Option<String>,
    /// When the run began (RFC 3339).
    pub started: Option<String>,
    /// The run's shape (a hold, an experiment: which decisions it has).
    pub shape: Shape,
}

impl Facts {
    /// The kind's name as `log` shows it (`rollback` for a fleet
    /// rollback's cycle).
    fn kind_name(&self) -> Option<&'static str> {
        self.kind
            .map(|k| if self.reverse { "rollback" } else { k.name() })
    }
}

/// What the pair is, for every event about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRef {
    /// Its name.
    pub name: String,
    /// Its environment.
    pub environment: String,
    /// Its two hosts.
    pub hosts: Vec<HostRef>,
}

/// One notification (schema 1): the start or the end of a run. Fields are
/// only ever added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// [`SCHEMA`].
    pub schema: u32,
    /// `start`, or the outcome's name (`ok`, `held`, `rolled_back`,
    /// `incomplete`, `operator`, `not_started`): what `on` filters on.
    pub event: Trigger,
    /// The pair.
    pub pair: String,
    /// Its environment.
    pub environment: String,
    /// The run's id (`baton log --run ID`); `null` when the command was
    /// refused before any run began.
    pub run: Option<String>,
    /// `apply`, `switchover`, `failover`, `rejoin`, `restore`, or
    /// `rollback` (a fleet rollback's cycle).
    pub kind: Option<&'static str>,
    /// A held run's decision this event is about (`finish`, `revert`,
    /// `keep_new`, `keep_old`).
    pub decision: Option<Decision>,
    /// The outcome; `null` at the start.
    pub outcome: Option<&'static str>,
    /// The step that failed first (the cause); `null` when none failed.
    pub step: Option<&'static str>,
    /// Every step that failed, in order (an undo that failed too follows
    /// the cause).
    pub failed_steps: Vec<&'static str>,
    /// Who (`$SUDO_USER`, `$USER`).
    pub operator: String,
    /// Why (`--reason`).
    pub reason: Option<String>,
    /// The change (`null` without one).
    pub change: Option<ChangeRef>,
    /// Both hosts of the pair, in the pair file's order.
    pub hosts: Vec<HostRef>,
    /// The host that held traffic when the run began.
    pub primary_before: Option<String>,
    /// The host that holds traffic now, as the run's steps leave it
    /// (`null` at the start and when no run began).
    pub primary_after: Option<String>,
    /// When the run began (RFC 3339, UTC).
    pub started: Option<String>,
    /// When it ended (`null` at the start).
    pub ended: Option<String>,
    /// The run's own sentence (what `baton` printed as its outcome).
    pub message: String,
    /// One line for a person (the field Slack and Mattermost show).
    pub text: String,
}

impl Event {
    /// The event that a run begins to change things (or that a held run
    /// was decided and goes on), at `at`.
    pub fn start(pair: &PairRef, facts: &Facts, decision: Option<Decision>, at: &str) -> Event {
        let mut e = Event::blank(pair, facts, Trigger::Start, decision);
        e.message = match (decision, &facts.reason) {
            (Some(d), Some(r)) => format!("{} decided: {} ({r})", facts.operator, d.words()),
            (Some(d), None) => format!("{} decided: {}", facts.operator, d.words()),
            (None, Some(r)) => format!("started by {} ({r})", facts.operator),
            (None, None) => format!("started by {}", facts.operator),
        };
        if e.started.is_none() {
            e.started = Some(at.to_string());
        }
        e.text = e.line();
        e
    }

    /// The event that a run ended with `outcome` after the steps `ended`,
    /// saying `message`, at `at`.
    pub fn end(
        pair: &PairRef,
        facts: &Facts,
        ended: &[Ended],
        (outcome, message): (Outcome, &str),
        decision: Option<Decision>,
        at: &str,
    ) -> Event {
        let mut e = Event::blank(pair, facts, Trigger::of(outcome), decision);
        e.outcome = Some(outcome.name());
        e.failed_steps = ended
            .iter()
            .filter(|s| !s.ok && s.step != cycle::Step::Decide)
            .map(|s| s.step.name())
            .collect();
        e.step = e.failed_steps.first().copied();
        e.primary_after = match (&facts.from, &facts.to) {
            (Some(_), Some(to)) if cycle::traffic_on_new(ended) => Some(to.clone()),
            (Some(from), Some(_)) if facts.run.is_some() => Some(from.clone()),
            _ => None,
        };
        e.ended = Some(at.to_string());
        e.message = message.to_string();
        e.text = e.line();
        e
    }

    fn blank(pair: &PairRef, facts: &Facts, event: Trigger, decision: Option<Decision>) -> Event {
        Event {
            schema: SCHEMA,
            event,
            pair: pair.name.clone(),
            environment: pair.environment.clone(),
            run: facts.run.clone(),
            kind: facts.kind_name(),
            decision,
            outcome: None,
            step: None,
            failed_steps: Vec::new(),
            operator: facts.operator.clone(),
            reason: facts.reason.clone(),
            change: facts.change.clone(),
            hosts: pair.hosts.clone(),
            primary_before: facts.from.clone(),
            primary_after: None,
            started: facts.started.clone(),
            ended: None,
            message: String::new(),
            text: String::new(),
        }
    }

    /// `baton: web apply v2 (hash 3f2a9c1b7d4e5f60) ok: done: traffic is on
    /// green, blue is the standby`: one line, control characters escaped,
    /// at most [`TEXT_MAX`] characters.
    fn line(&self) -> String {
        let mut what = self.kind.unwrap_or("run").to_string();
        if let Some(c) = &self.change {
            what.push(' ');
            what.push_str(&c.name);
            if let Some(h) = &c.hash {
                what.push_str(&format!(" (hash {h})"));
            }
        }
        if let Some(d) = self.decision {
            what.push_str(&format!(", {}", d.words()));
        }
        let state = match self.outcome {
            Some(o) => o.to_string(),
            None => "started".to_string(),
        };
        let line = printable::escape(&format!(
            "baton: {} {what} {state}: {}",
            self.pair, self.message
        ));
        match line.char_indices().nth(TEXT_MAX) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line,
        }
    }

    /// Every text field passed through `redact` (a reason or a message
    /// that quotes a secret).
    pub fn redacted(mut self, redact: impl Fn(&str) -> String) -> Event {
        self.reason = self.reason.as_deref().map(&redact);
        self.message = redact(&self.message);
        self.text = redact(&self.text);
        self
    }
}

/// A webhook URL as baton shows it (messages, the journal, logs): its
/// scheme, host and port, and `/…` for whatever follows, where webhooks
/// keep their token (`https://hooks.slack.com/…`). A user and password
/// before the host are left out too.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = if rest[end..].trim_start_matches('/').is_empty() {
        ""
    } else {
        "/…"
    };
    printable::escape(&format!("{scheme}://{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cycle::Step;

    fn pair() -> PairRef {
        PairRef {
            name: "web".into(),
            environment: "dev".into(),
            hosts: vec![
                HostRef {
                    name: "blue".into(),
                    address: "198.18.0.11".into(),
                },
                HostRef {
                    name: "green".into(),
                    address: "198.18.0.12".into(),
                },
            ],
        }
    }

    fn facts() -> Facts {
        Facts {
            run: Some("20261122T020000.000Z-42".into()),
            kind: Some(Kind::Apply),
            reverse: false,
            from: Some("blue".into()),
            to: Some("green".into()),
            change: Some(ChangeRef {
                name: "v2".into(),
                label: Some("version 2".into()),
                hash: Some("3f2a9c1b7d4e5f60".into()),
            }),
            operator: "alice".into(),
            reason: Some("weekly window".into()),
            started: Some("2026-11-22T02:00:00.000Z".into()),
            shape: Shape::Plain,
        }
    }

    fn steps(list: &[(Step, bool)]) -> Vec<Ended> {
        list.iter().map(|&(step, ok)| Ended { step, ok }).collect()
    }

    #[test]
    fn trigger_names_are_the_outcomes_names_and_start() {
        for t in Trigger::ALL {
            assert_eq!(Trigger::parse(t.name()), Some(t));
        }
        for o in [
            Outcome::Ok,
            Outcome::Held,
            Outcome::RolledBack,
            Outcome::Incomplete,
            Outcome::Operator,
            Outcome::NotStarted,
        ] {
            assert_eq!(Trigger::of(o).name(), o.name());
        }
        assert_eq!(Trigger::parse("failed"), None);
        assert_eq!(
            Trigger::names(),
            "start, ok, held, rolled_back, incomplete, operator, not_started"
        );
    }

    #[test]
    fn the_default_filter_sends_every_end_and_not_the_start() {
        let f = Filter::default();
        assert!(!f.allows(Trigger::Start));
        for t in Trigger::ALL.into_iter().skip(1) {
            assert!(f.allows(t), "{t:?}");
        }
        let only = Filter::of([Trigger::RolledBack, Trigger::Operator]);
        assert_eq!(only.names(), ["rolled_back", "operator"]);
        assert!(!only.allows(Trigger::Ok));
        assert!(Filter::NONE.names().is_empty());
    }

    #[test]
    fn an_apply_that_ended_well_names_the_new_primary_and_its_line_says_so() {
        let ended = steps(&[
            (Step::Preflight, true),
            (Step::ApplyStandby, true),
            (Step::VerifyStandby, true),
            (Step::Switch, true),
            (Step::VerifyService, true),
            (Step::Drain, true),
            (Step::ApplyOldPrimary, true),
            (Step::VerifyOldPrimary, true),
        ]);
        let e = Event::end(
            &pair(),
            &facts(),
            &ended,
            (
                Outcome::Ok,
                "done: traffic is on green, blue is the standby",
            ),
            None,
            "2026-11-22T02:01:00.000Z",
        );
        let json = serde_json::to_value(&e).expect("serializes");
        assert_eq!(json["schema"], 1);
        assert_eq!(json["event"], "ok");
        assert_eq!(json["outcome"], "ok");
        assert_eq!(json["kind"], "apply");
        assert_eq!(json["step"], serde_json::Value::Null);
        assert_eq!(json["failed_steps"], serde_json::json!([]));
        assert_eq!(json["primary_before"], "blue");
        assert_eq!(json["primary_after"], "green");
        assert_eq!(json["change"]["label"], "version 2");
        assert_eq!(json["hosts"][1]["address"], "198.18.0.12");
        assert_eq!(json["started"], "2026-11-22T02:00:00.000Z");
        assert_eq!(json["ended"], "2026-11-22T02:01:00.000Z");
        assert_eq!(
            e.text,
            "baton: web apply v2 (hash 3f2a9c1b7d4e5f60) ok: done: traffic is on green, blue is the standby"
        );
    }

    #[test]
    fn a_rolled_back_run_names_the_step_that_failed_first() {
        let ended = steps(&[
            (Step::Preflight, true),
            (Step::ApplyStandby, true),
            (Step::VerifyStandby, false),
            (Step::RollbackStandby, false),
        ]);
        let e = Event::end(
            &pair(),
            &facts(),
            &ended,
            (Outcome::Operator, "NEEDS AN OPERATOR"),
            None,
            "t",
        );
        assert_eq!(e.event, Trigger::Operator);
        assert_eq!(e.step, Some("verify_standby"));
        assert_eq!(e.failed_steps, ["verify_standby", "rollback_standby"]);
        assert_eq!(e.primary_after.as_deref(), Some("blue"));
        // Switched, then switched back: traffic is on the old primary.
        let back = steps(&[
            (Step::Switch, true),
            (Step::VerifyService, false),
            (Step::SwitchBack, true),
        ]);
        let e = Event::end(
            &pair(),
            &facts(),
            &back,
            (Outcome::RolledBack, "x"),
            None,
            "t",
        );
        assert_eq!(e.primary_after.as_deref(), Some("blue"));
        assert_eq!(e.step, Some("verify_service"));
    }

    #[test]
    fn a_start_has_no_outcome_and_a_decision_is_named() {
        let e = Event::start(&pair(), &facts(), None, "t");
        assert_eq!(e.event, Trigger::Start);
        assert_eq!(e.outcome, None);
        assert_eq!(e.ended, None);
        assert_eq!(
            e.text,
            "baton: web apply v2 (hash 3f2a9c1b7d4e5f60) started: started by alice (weekly window)"
        );
        let mut held = facts();
        held.shape = Shape::Hold;
        let e = Event::start(&pair(), &held, Some(Decision::of(false, held.shape)), "t");
        let json = serde_json::to_value(&e).expect("serializes");
        assert_eq!(json["decision"], "revert");
        assert!(
            e.text
                .contains("v2 (hash 3f2a9c1b7d4e5f60), revert started: alice decided: revert"),
            "{}",
            e.text
        );
        assert_eq!(Decision::of(true, Shape::Experiment), Decision::KeepNew);
    }

    #[test]
    fn a_refusal_without_a_run_has_no_run_and_no_primary_after() {
        let f = Facts {
            run: None,
            kind: Some(Kind::Switchover),
            reverse: false,
            from: None,
            to: None,
            change: None,
            operator: "cron".into(),
            reason: None,
            started: None,
            shape: Shape::Plain,
        };
        let e = Event::end(
            &pair(),
            &f,
            &[],
            (
                Outcome::NotStarted,
                "did not start: another run holds the pair",
            ),
            None,
            "t",
        );
        let json = serde_json::to_value(&e).expect("serializes");
        assert_eq!(json["run"], serde_json::Value::Null);
        assert_eq!(json["primary_after"], serde_json::Value::Null);
        assert_eq!(json["event"], "not_started");
        assert_eq!(
            e.text,
            "baton: web switchover not_started: did not start: another run holds the pair"
        );
    }

    #[test]
    fn a_rollback_cycle_is_named_so_and_the_line_stays_one_short_line() {
        let mut f = facts();
        f.reverse = true;
        f.reason = Some("oops\nsecond line".into());
        let e = Event::start(&pair(), &f, None, "t");
        assert_eq!(e.kind, Some("rollback"));
        assert!(e.text.contains("oops\\nsecond line"), "{}", e.text);
        let long = "x".repeat(5000);
        let e = Event::end(&pair(), &f, &[], (Outcome::Ok, &long), None, "t");
        assert_eq!(e.text.chars().count(), TEXT_MAX + 1);
        assert!(e.text.ends_with('…'));
    }

    #[test]
    fn redaction_reaches_the_reason_the_message_and_the_text() {
        let mut f = facts();
        f.reason = Some("key s3cr3t leaked".into());
        let e = Event::end(&pair(), &f, &[], (Outcome::Ok, "s3cr3t"), None, "t")
            .redacted(|t| t.replace("s3cr3t", "<redacted>"));
        let json = serde_json::to_string(&e).expect("serializes");
        assert!(!json.contains("s3cr3t"), "{json}");
    }

    #[test]
    fn a_webhook_url_is_shown_without_its_path_query_or_user() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T000/B000/XXXXsecret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            shown_url("http://user:pw@198.18.0.200:8080/hook?token=abc"),
            "http://198.18.0.200:8080/…"
        );
        assert_eq!(shown_url("https://example.com"), "https://example.com");
        assert_eq!(shown_url("https://example.com/"), "https://example.com");
        assert_eq!(
            shown_url("https://example.com?t=1"),
            "https://example.com/…"
        );
        assert_eq!(shown_url("nonsense"), "(not a URL)");
        assert_eq!(shown_url("http://a\nb/x"), "http://a\\nb/…");
    }
}
