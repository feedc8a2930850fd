//! Runs commands on hosts (and local hooks) on behalf of a step, and keeps
//! the record of each for the journal: command line, exit status, both
//! outputs (redacted, truncated), duration.

use std::time::{Duration, Instant};

use crate::config::{Pair, Traffic};
use crate::quote;
use crate::ssh::{Armed, Output, SshError, SshHost};
use crate::store::journal::{redact, CommandRecord};

/// How much of each output stream is kept in the journal.
const KEEP: usize = 64 * 1024;

/// The commands one step ran.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Records so far.
    pub commands: Vec<CommandRecord>,
    secrets: Vec<String>,
}

impl Recorder {
    /// A recorder that redacts these secrets from every output.
    pub fn new(secrets: Vec<String>) -> Recorder {
        Recorder {
            commands: Vec::new(),
            secrets,
        }
    }

    fn keep(&mut self, host: &str, command: &str, out: &Result<Output, SshError>, took: Duration) {
        let (status, stdout, stderr) = match out {
            Ok(o) => (o.status, o.stdout_text(), o.stderr_text()),
            Err(e) => (None, String::new(), e.to_string()),
        };
        self.commands.push(CommandRecord {
            host: host.to_string(),
            command: redact(command, &self.secrets),
            status,
            stdout: truncate(&redact(&stdout, &self.secrets)),
            stderr: truncate(&redact(&stderr, &self.secrets)),
            duration_ms: took.as_millis() as u64,
        });
    }

    /// Runs a shell command line as the login user.
    pub async fn run(&mut self, ssh: &SshHost, command: &str) -> Result<Output, SshError> {
        let started = Instant::now();
        let out = ssh.run(command).await;
        self.keep(&ssh.target().name, command, &out, started.elapsed());
        out
    }

    /// Runs a program with root privileges (`sudo -n` when configured).
    pub async fn run_privileged(
        &mut self,
        ssh: &SshHost,
        argv: &[&str],
    ) -> Result<Output, SshError> {
        let started = Instant::now();
        let out = ssh.run_privileged(argv).await;
        self.keep(
            &ssh.target().name,
            &ssh.privileged_line(argv),
            &out,
            started.elapsed(),
        );
        out
    }

    /// Runs a program with root privileges with `input` on its stdin;
    /// journaled as `COMMAND <<< INPUT`.
    pub async fn run_privileged_input(
        &mut self,
        ssh: &SshHost,
        argv: &[&str],
        input: &str,
    ) -> Result<Output, SshError> {
        let started = Instant::now();
        let out = ssh
            .run_privileged_input(argv, input.as_bytes().to_vec())
            .await;
        let shown = format!(
            "{} <<< {}",
            ssh.privileged_line(argv),
            quote::quote(input.trim_end())
        );
        self.keep(&ssh.target().name, &shown, &out, started.elapsed());
        out
    }

    /// Sends the input of an armed command (`SshHost::arm_privileged`) and
    /// waits for it to end; journaled as `COMMAND <<< INPUT`.
    pub async fn fire(
        &mut self,
        ssh: &SshHost,
        armed: Armed,
        input: &str,
    ) -> Result<Output, SshError> {
        let started = Instant::now();
        let shown = format!("{} <<< {}", armed.command, quote::quote(input.trim_end()));
        let out = armed.fire(input.as_bytes().to_vec()).await;
        self.keep(&ssh.target().name, &shown, &out, started.elapsed());
        out
    }

    /// Uploads a file atomically with a mode.
    pub async fn upload(
        &mut self,
        ssh: &SshHost,
        content: Vec<u8>,
        to: &str,
        mode: u32,
    ) -> Result<Output, SshError> {
        let started = Instant::now();
        let size = content.len();
        let out = ssh.upload(content, to, mode).await;
        self.keep(
            &ssh.target().name,
            &format!("upload {size} bytes to {to} (mode {mode:04o})"),
            &out,
            started.elapsed(),
        );
        out
    }

    /// Runs a local hook through `sh -c` with a deadline, without the
    /// secrets in its environment.
    pub async fn local(&mut self, command: &str, timeout: Duration) -> Result<Output, SshError> {
        let started = Instant::now();
        let child = hook(command, &self.secrets).output();
        let out = match tokio::time::timeout(timeout, child).await {
            Err(_) => Err(SshError::Timeout {
                host: "local".into(),
                what: format!("running `{command}`"),
                after: timeout,
            }),
            Ok(Err(e)) => Err(SshError::Channel {
                host: "local".into(),
                reason: format!("cannot run `{command}`: {e}"),
            }),
            Ok(Ok(o)) => Ok(Output {
                status: o.status.code(),
                signal: None,
                stdout: o.stdout,
                stderr: o.stderr,
                duration: started.elapsed(),
            }),
        };
        self.keep("local", command, &out, started.elapsed());
        out
    }
}

/// The secrets of a pair that must never be shown or stored: the TSIG
/// secret (as written in the key file) and the SSH key's passphrase.
pub fn secrets(pair: &Pair) -> Vec<String> {
    let mut out = Vec::new();
    if let Traffic::Dns(d) = &pair.traffic {
        use base64::Engine;
        out.push(base64::engine::general_purpose::STANDARD.encode(d.tsig_key.secret()));
    }
    if let Some(var) = &pair.ssh.passphrase_env {
        if let Ok(v) = std::env::var(var) {
            out.push(v);
        }
    }
    out
}

/// A local hook (`sh -c COMMAND`), killed when dropped, whose environment
/// lacks every variable that holds one of the secrets (the passphrase's
/// variable above all): a hook that needs SSH gets a key of its own.
pub fn hook(command: &str, secrets: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(command).kill_on_drop(true);
    for (name, value) in std::env::vars_os() {
        if value.to_str().is_some_and(|v| {
            secrets
                .iter()
                .any(|s| !s.is_empty() && v.contains(s.as_str()))
        }) {
            cmd.env_remove(name);
        }
    }
    cmd
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

/// A one-line summary of a failed command, for step details.
pub fn failure(what: &str, out: &Result<Output, SshError>) -> String {
    match out {
        Err(e) => format!("{what}: {e}"),
        Ok(o) => {
            let err = o.stderr_text();
            let line = err.trim().lines().last().unwrap_or_default().to_string();
            match o.status {
                Some(code) => format!("{what} exited {code}: {line}"),
                None => format!(
                    "{what} was killed by signal {}: {line}",
                    o.signal.clone().unwrap_or_default()
                ),
            }
        }
    }
}
