//! The interpreter of operations (`core::op`). A step is written once, as
//! the operations it performs on an [`Exec`]; the `Exec` hands each one to
//! a [`World`] and keeps the journal's record of it. Two worlds exist:
//! the real one (`real`: SSH sessions, DNS servers, the clock, local
//! hooks), and a simulation (`sim`) that `baton plan` seeds with the
//! recorded roles (so the plan is the list of operations the run would
//! perform when nothing fails) and the unit tests seed with faults (so
//! every branch of a run runs in memory). The rest of `exec` is the run
//! itself (`run`), each step as operations (`steps`, `change`), the window
//! decision (`schedule`), its notifications (`notify`), signals and crash
//! points.

pub mod change;
pub mod crash;
pub mod notify;
pub mod real;
pub mod run;
pub mod schedule;
pub mod signals;
pub mod sim;
pub mod steps;

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::Pair;
use crate::core::assess::PairSeen;
use crate::core::op::{Op, Remote, Rendered};
use crate::io::dns::{Answer, DnsQueryError, DnsUpdateError};
use crate::io::ssh::{Output, SshError};
use crate::store::journal::{redact, CommandRecord};

/// What an operation gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A command, an upload or a hook ended (whatever its exit status).
    Output(Output),
    /// A DNS answer.
    Answer(Answer),
    /// Every server served the answer this many milliseconds after the
    /// operation began.
    Propagated(u128),
    /// A check or the observation period passed; what was seen.
    Passed(String),
    /// Done (an update applied, a wait over, a program armed).
    Done,
}

/// Why an operation could not be performed, or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// No SSH session to the host.
    #[error("{host} is unreachable over SSH")]
    Unreachable {
        /// The host.
        host: String,
    },
    /// SSH failed (connection, timeout, sudo).
    #[error(transparent)]
    Ssh(Box<SshError>),
    /// A DNS question got no usable answer.
    #[error(transparent)]
    Query(Box<DnsQueryError>),
    /// An UPDATE was not applied.
    #[error(transparent)]
    Update(Box<DnsUpdateError>),
    /// Not every server served the answer in time.
    #[error("not every server serves it: {lagging}")]
    Lagging {
        /// Each lagging server and what it serves.
        lagging: String,
    },
    /// A check failed with its policy, or during the observation period.
    #[error("{0}")]
    Check(String),
    /// A standby did not reach the position it had to, in time.
    #[error("{host} did not catch up: {detail}")]
    Behind {
        /// The standby.
        host: String,
        /// Where it is and where it had to be.
        detail: String,
    },
    /// A balancer's server still had sessions when its drain ran out of
    /// time (or the balancer could not say).
    #[error("server {server} did not drain: {detail}")]
    Busy {
        /// The server.
        server: String,
        /// What was seen last.
        detail: String,
    },
    /// A local file could not be read (an upload's source).
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The operation is not one this world performs, or it gave back a
    /// value of the wrong kind (a bug).
    #[error("the operation `{0}` cannot be performed here")]
    Unsupported(String),
}

impl OpError {
    /// Whether sudo refused the command (it asked for a password, or no
    /// rule allows it): the command did not run.
    pub fn sudo_refused(&self) -> bool {
        matches!(self, OpError::Ssh(e) if matches!(**e, SshError::SudoPassword { .. } | SshError::SudoRefused { .. }))
    }
}

impl From<SshError> for OpError {
    fn from(e: SshError) -> Self {
        OpError::Ssh(Box::new(e))
    }
}

impl From<DnsQueryError> for OpError {
    fn from(e: DnsQueryError) -> Self {
        OpError::Query(Box::new(e))
    }
}

impl From<DnsUpdateError> for OpError {
    fn from(e: DnsUpdateError) -> Self {
        OpError::Update(Box::new(e))
    }
}

/// The world operations act on.
pub trait World: Sync {
    /// Performs one operation.
    fn perform(&self, pair: &Pair, op: &Op) -> impl Future<Output = Result<Value, OpError>> + Send;

    /// Observes the pair as `status` and preflight do.
    fn observe(&self, pair: &Pair) -> impl Future<Output = PairSeen> + Send;

    /// A point where the controller may die (`crash`), in worlds where
    /// that means something.
    fn crash_point(&self, name: &str) {
        crate::exec::crash::point(name);
    }
}

/// How much of each output stream is kept in the journal.
const KEEP: usize = 64 * 1024;

/// What is told of a long wait as it begins: the operation as printed,
/// and how long it may take.
pub type WaitTold<'a> = dyn Fn(&Rendered, Duration) + Sync + 'a;

/// Performs a step's operations on a world and keeps the record of each.
pub struct Exec<'a, W> {
    /// The world.
    pub world: &'a W,
    /// The pair.
    pub pair: &'a Pair,
    secrets: Vec<String>,
    /// The record of every operation so far, in order.
    pub records: Vec<CommandRecord>,
    /// Told of each long wait as it begins (`Op::long_wait`): the
    /// operation as printed, and how long it may take.
    pub on_wait: Option<&'a WaitTold<'a>>,
}

impl<'a, W: World> Exec<'a, W> {
    /// An executor for one step of a run on `pair`.
    pub fn new(world: &'a W, pair: &'a Pair) -> Self {
        Exec {
            world,
            pair,
            secrets: crate::io::hooks::secrets(pair),
            records: Vec::new(),
            on_wait: None,
        }
    }

    /// The operation as printed and journaled, secrets redacted.
    pub fn render(&self, op: &Op) -> Rendered {
        let mut r = op.render(self.pair);
        r.command = redact(&r.command, &self.secrets);
        r
    }

    /// Performs one operation and records it.
    pub async fn perform(&mut self, op: Op) -> Result<Value, OpError> {
        self.announce(&op);
        let started = Instant::now();
        let result = self.world.perform(self.pair, &op).await;
        self.keep(&op, &result, started.elapsed());
        result
    }

    /// Performs operations at once; records them in the order given.
    pub async fn perform_all(&mut self, ops: Vec<Op>) -> Vec<Result<Value, OpError>> {
        for op in &ops {
            self.announce(op);
        }
        let (world, pair) = (self.world, self.pair);
        let timed = futures_util::future::join_all(ops.iter().map(|op| async move {
            let started = Instant::now();
            let r = world.perform(pair, op).await;
            (r, started.elapsed())
        }))
        .await;
        let mut results = Vec::with_capacity(timed.len());
        for (op, (r, took)) in ops.iter().zip(timed) {
            self.keep(op, &r, took);
            results.push(r);
        }
        results
    }

    /// Tells `on_wait` of a long wait about to begin.
    fn announce(&self, op: &Op) {
        if let (Some(tell), Some(d)) = (self.on_wait, op.long_wait()) {
            tell(&self.render(op), d);
        }
    }

    /// Runs a command on a host; its output whatever its exit status.
    pub async fn remote(&mut self, host: &str, command: Remote) -> Result<Output, OpError> {
        let op = Op::Remote {
            host: host.to_string(),
            command,
        };
        output(&op, self.perform(op.clone()).await)
    }

    /// Runs a command on a host and requires it to succeed; `what` names
    /// it in the failure.
    pub async fn remote_ok(
        &mut self,
        host: &str,
        command: Remote,
        what: &str,
    ) -> Result<Output, Failed> {
        let out = self.remote(host, command).await;
        succeeded(what, out)
    }

    fn keep(&mut self, op: &Op, result: &Result<Value, OpError>, took: Duration) {
        let Rendered { host, op, command } = self.render(op);
        let (status, stdout, stderr) = match result {
            Ok(Value::Output(o)) => (o.status, o.stdout_text(), o.stderr_text()),
            Ok(Value::Answer(a)) => (
                Some(0),
                format!(
                    "{}{}",
                    a.values.join(","),
                    a.ttl.map(|t| format!(" (TTL {t}s)")).unwrap_or_default()
                ),
                String::new(),
            ),
            Ok(Value::Propagated(ms)) => (
                Some(0),
                format!("all served it after {ms} ms"),
                String::new(),
            ),
            Ok(Value::Passed(detail)) => (Some(0), detail.clone(), String::new()),
            Ok(Value::Done) => (Some(0), String::new(), String::new()),
            Err(e) => (None, String::new(), e.to_string()),
        };
        self.records.push(CommandRecord {
            host,
            op,
            command,
            status,
            stdout: truncate(&redact(&stdout, &self.secrets)),
            stderr: truncate(&redact(&stderr, &self.secrets)),
            duration_ms: took.as_millis() as u64,
        });
    }
}

/// The output of a command-like operation's result.
pub fn output(op: &Op, result: Result<Value, OpError>) -> Result<Output, OpError> {
    match result? {
        Value::Output(o) => Ok(o),
        _ => Err(OpError::Unsupported(format!("{op:?}"))),
    }
}

/// A step's failure: what failed, in a sentence for the journal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

impl Failed {
    /// The failure with a note appended.
    pub fn with(self, note: &str) -> Failed {
        Failed(self.0 + note)
    }
}

/// A command that must have succeeded: its output, or what failed.
pub fn succeeded(what: &str, out: Result<Output, OpError>) -> Result<Output, Failed> {
    match out {
        Ok(o) if o.success() => Ok(o),
        other => Err(Failed(failure(what, &other))),
    }
}

/// A one-line summary of a failed command, for step details.
pub fn failure(what: &str, out: &Result<Output, OpError>) -> String {
    match out {
        Err(e) => format!("{what}: {e}"),
        Ok(o) => {
            let err = o.stderr_text();
            let line = err.trim().lines().last().unwrap_or_default().to_string();
            match o.status {
                Some(0) => format!("{what} printed no usable answer: {line}"),
                Some(code) => format!("{what} exited {code}: {line}"),
                None => format!(
                    "{what} was killed by signal {}: {line}",
                    o.signal.clone().unwrap_or_default()
                ),
            }
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= KEEP {
        return s.to_string();
    }
    let mut end = KEEP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [{} bytes cut]", &s[..end], s.len() - end)
}

/// A failed or successful output of a command, for tests and worlds.
pub fn out(status: i32, stdout: &str, stderr: &str) -> Output {
    Output {
        status: Some(status),
        signal: None,
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
        duration: Duration::ZERO,
    }
}

/// The operations a step performed, as rendered (for `log --json`).
pub fn rendered(records: &[CommandRecord]) -> Vec<Rendered> {
    records
        .iter()
        .map(|r| Rendered {
            host: r.host.clone(),
            op: r.op,
            command: r.command.clone(),
        })
        .collect()
}

#[cfg(test)]
mod ab_tests;
#[cfg(test)]
mod handover_tests;
#[cfg(test)]
mod haproxy_tests;
#[cfg(test)]
mod hold_tests;
#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod roles_tests;
#[cfg(test)]
pub mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vip6_tests;
