//! Notifications around a run: when they are sent and what becomes of
//! them. The run tells its [`Notifier`] what it knows of each run it acts
//! on (its start record), when a run begins to change things (after
//! preflight, or an operator's decision on a held run) and when one ends;
//! each event the pair's `on` lets through is handed at once to a task of
//! its own (`io::notify`, bounded by the pair's `timeout`), so no step
//! waits for it. When the command's work on the pair is done, [`settle`]
//! waits for what is still being sent, never past the timeout, and
//! journals each delivery (a `notify` record, after the run's end). A
//! notifier's failure changes neither the run nor its exit code.
//!
//! [`settle`]: Notifier::settle

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Notify, Pair};
use crate::core::cycle::{Ended, Kind, Outcome, Shape};
use crate::core::notify::{ChangeRef, Decision, Event, Facts, HostRef, PairRef, Trigger};
use crate::io::notify::{self as send, Failure};
use crate::store::journal::{redact, Journal, Record};
use crate::store::state::now_rfc3339;

/// One delivery of one event to one notifier.
#[derive(Debug, Clone)]
struct Delivery {
    /// `command`, or `webhook https://host/…`.
    target: String,
    /// What happened.
    result: Result<String, Failure>,
    /// How long it took.
    took: Duration,
}

/// An event on its way.
struct Pending {
    run: String,
    about: Trigger,
    task: tokio::task::JoinHandle<Vec<Delivery>>,
}

/// Where events go.
enum Out {
    /// Nowhere: no `[notify]` for the pair, or `on = []`.
    Off,
    /// To the pair's command and webhook.
    Send(Notify),
    /// Into a list (the in-memory tests), every trigger.
    Record(Arc<Mutex<Vec<Event>>>),
}

/// The notifications of one command on one pair.
pub struct Notifier {
    out: Out,
    pair: PairRef,
    secrets: Vec<String>,
    /// What is known of each run acted on, by id.
    facts: Mutex<BTreeMap<String, Facts>>,
    /// Events on their way.
    pending: Mutex<Vec<Pending>>,
    /// Whether a run's end was reported (else a refusal is, at the end).
    ended: Mutex<bool>,
}

impl Notifier {
    /// The pair's notifier (`[notify]`); sends nothing when none is set.
    pub fn for_pair(pair: &Pair) -> Notifier {
        let out = if pair.notify.active() {
            Out::Send(pair.notify.clone())
        } else {
            Out::Off
        };
        Notifier::with(pair, out)
    }

    /// A notifier that sends nothing.
    pub fn off(pair: &Pair) -> Notifier {
        Notifier::with(pair, Out::Off)
    }

    /// A notifier that keeps every event (whatever `on` says) in `sink`.
    pub fn recording(pair: &Pair, sink: Arc<Mutex<Vec<Event>>>) -> Notifier {
        Notifier::with(pair, Out::Record(sink))
    }

    fn with(pair: &Pair, out: Out) -> Notifier {
        let secrets = match &out {
            Out::Off => Vec::new(),
            _ => crate::io::hooks::secrets(pair),
        };
        Notifier {
            out,
            pair: PairRef {
                name: pair.name.clone(),
                environment: pair.environment.clone(),
                hosts: pair
                    .hosts
                    .iter()
                    .map(|h| HostRef {
                        name: h.name.clone(),
                        address: h.address.to_string(),
                    })
                    .collect(),
            },
            secrets,
            facts: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(Vec::new()),
            ended: Mutex::new(false),
        }
    }

    /// Learns what a run is from its start record.
    pub fn know(&self, start: &Record) {
        if let (Some(f), Ok(mut all)) = (facts_of(start), self.facts.lock()) {
            all.insert(start.run().to_string(), f);
        }
    }

    /// Run `run` begins to change things (or, with `decision`, a held run
    /// was decided and goes on). Sent in the background.
    pub fn start(&self, run: &str, decision: Option<Decision>) {
        let Some(facts) = self.facts_for(run) else {
            return;
        };
        let at = now_rfc3339();
        self.send(run, Event::start(&self.pair, &facts, decision, &at));
    }

    /// Run `run` ended (`Held`: waits for the operator) after `ended`,
    /// saying `message`.
    pub fn end(&self, run: &str, ended: &[Ended], outcome: Outcome, message: &str) {
        if let Ok(mut e) = self.ended.lock() {
            *e = true;
        }
        let Some(facts) = self.facts_for(run) else {
            return;
        };
        let decision = ended
            .iter()
            .rev()
            .find(|e| e.step == crate::core::cycle::Step::Decide)
            .map(|d| Decision::of(d.ok, facts.shape));
        let at = now_rfc3339();
        let event = Event::end(&self.pair, &facts, ended, (outcome, message), decision, &at);
        self.send(run, event);
    }

    fn facts_for(&self, run: &str) -> Option<Facts> {
        self.facts.lock().ok().and_then(|f| f.get(run).cloned())
    }

    /// Hands `event` to its notifiers, each in a task of its own.
    fn send(&self, run: &str, event: Event) {
        let event = event.redacted(|t| redact(t, &self.secrets));
        let about = event.event;
        let settings = match &self.out {
            Out::Off => return,
            Out::Record(sink) => {
                if let Ok(mut s) = sink.lock() {
                    s.push(event);
                }
                return;
            }
            Out::Send(n) if !n.on.allows(about) => return,
            Out::Send(n) => n.clone(),
        };
        let body = match serde_json::to_vec(&event) {
            Ok(mut b) => {
                b.push(b'\n');
                b
            }
            Err(e) => {
                tracing::warn!(pair = %self.pair.name, "cannot write the notification: {e}");
                return;
            }
        };
        let secrets = self.secrets.clone();
        let task = tokio::spawn(async move {
            let command = async {
                match &settings.command {
                    Some(c) => {
                        let began = Instant::now();
                        let result = send::command(c, &body, settings.timeout).await;
                        Some(Delivery {
                            target: "command".to_string(),
                            result: redacted(result, &secrets),
                            took: began.elapsed(),
                        })
                    }
                    None => None,
                }
            };
            let webhook = async {
                match &settings.webhook {
                    Some(w) => {
                        let began = Instant::now();
                        let result = send::webhook(w, body.clone(), settings.timeout).await;
                        Some(Delivery {
                            target: format!("webhook {}", w.shown()),
                            result: redacted(result, &secrets),
                            took: began.elapsed(),
                        })
                    }
                    None => None,
                }
            };
            let (c, w) = tokio::join!(command, webhook);
            c.into_iter().chain(w).collect()
        });
        if let Ok(mut p) = self.pending.lock() {
            p.push(Pending {
                run: run.to_string(),
                about,
                task,
            });
        }
    }

    /// The command's work on the pair is done (`finished`): a command
    /// refused before any run ended is reported as not started (when a
    /// run was asked for: `kind` or `decide`); then waits for every event
    /// still on its way, at most the timeout from now, and journals each
    /// delivery. Only a command that holds the pair's lock may call it.
    pub async fn settle(
        &self,
        journal: &Journal,
        request: &super::run::Request,
        (outcome, message): (Outcome, &str),
    ) {
        let reported = self.ended.lock().map(|e| *e).unwrap_or(true);
        if !reported && (request.kind.is_some() || request.decide.is_some()) {
            let facts = Facts {
                run: None,
                kind: request.kind.or(request.decide.map(|_| Kind::Apply)),
                reverse: request.reverse,
                from: None,
                to: None,
                change: request.change.as_ref().map(|c| ChangeRef {
                    name: c.clone(),
                    label: None,
                    hash: None,
                }),
                operator: request.operator.clone(),
                reason: request.reason.clone(),
                started: None,
                shape: Shape::Plain,
            };
            let at = now_rfc3339();
            let event = Event::end(&self.pair, &facts, &[], (outcome, message), None, &at);
            self.send("", event);
        }
        let pending: Vec<Pending> = self
            .pending
            .lock()
            .map(|mut p| p.drain(..).collect())
            .unwrap_or_default();
        let Out::Send(settings) = &self.out else {
            return;
        };
        // Each delivery ends by its own timeout; this is the net under
        // them, with a moment for a killed command to be reaped.
        let deadline = tokio::time::Instant::now() + settings.timeout + Duration::from_secs(1);
        for p in pending {
            let abort = p.task.abort_handle();
            let deliveries = match tokio::time::timeout_at(deadline, p.task).await {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => vec![Delivery {
                    target: "notify".to_string(),
                    result: Err(Failure::Spawn(format!("the sending task failed: {e}"))),
                    took: Duration::ZERO,
                }],
                Err(_) => {
                    abort.abort();
                    vec![Delivery {
                        target: "notify".to_string(),
                        result: Err(Failure::Timeout(settings.timeout)),
                        took: settings.timeout,
                    }]
                }
            };
            for d in deliveries {
                let (ok, detail) = match &d.result {
                    Ok(how) => (true, how.clone()),
                    Err(f) => (false, f.to_string()),
                };
                if !ok {
                    tracing::warn!(
                        pair = %self.pair.name,
                        run = %p.run,
                        "the {} notification via {} failed: {detail}",
                        p.about.name(),
                        d.target
                    );
                }
                let record = Record::Notify {
                    run: p.run.clone(),
                    about: p.about,
                    target: d.target,
                    ok,
                    detail,
                    duration_ms: u64::try_from(d.took.as_millis()).unwrap_or(u64::MAX),
                    at: now_rfc3339(),
                };
                if let Err(e) = journal.append(&record) {
                    tracing::warn!(pair = %self.pair.name, "cannot journal a notification: {e}");
                }
            }
        }
    }
}

/// A result whose words are redacted of the pair's secrets.
fn redacted(result: Result<String, Failure>, secrets: &[String]) -> Result<String, Failure> {
    result.map_err(|f| match f {
        Failure::Exit {
            status,
            signal,
            stderr,
        } => Failure::Exit {
            status,
            signal,
            stderr: redact(&stderr, secrets),
        },
        Failure::Status { status, body } => Failure::Status {
            status,
            body: redact(&body, secrets),
        },
        Failure::Request(e) => Failure::Request(redact(&e, secrets)),
        Failure::Spawn(e) => Failure::Spawn(redact(&e, secrets)),
        t @ Failure::Timeout(_) => t,
    })
}

/// What the event says of a run, from its start record.
fn facts_of(start: &Record) -> Option<Facts> {
    let Record::Start {
        run,
        kind,
        from,
        to,
        change,
        label,
        hash,
        operator,
        reason,
        roles,
        ramp,
        experiment,
        hold,
        reverse,
        at,
        ..
    } = start
    else {
        return None;
    };
    Some(Facts {
        run: Some(run.clone()),
        kind: Some(*kind),
        reverse: *reverse,
        from: Some(from.clone()),
        to: Some(to.clone()),
        change: change.as_ref().map(|name| ChangeRef {
            name: name.clone(),
            label: label.clone(),
            hash: hash.clone(),
        }),
        operator: operator.clone(),
        reason: reason.clone(),
        started: Some(at.clone()),
        shape: Shape::of(*roles, ramp.is_some(), experiment.is_some(), hold.is_some()),
    })
}
