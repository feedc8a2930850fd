//! What a run must keep from what it runs: the pair's secrets (never shown,
//! stored or handed on), and local hooks started without them in their
//! environment, run within a deadline.

use std::time::{Duration, Instant};

use crate::config::{Pair, Traffic};
use crate::io::ssh::Output;

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

/// Why a local hook did not end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    /// It ran past its deadline (and was killed).
    Timeout,
    /// It could not be started.
    Spawn(String),
}

/// Runs a local hook (`hook`) within `timeout`: what it did, whatever its
/// exit status.
pub async fn run(
    command: &str,
    secrets: &[String],
    timeout: Duration,
) -> Result<Output, HookError> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, hook(command, secrets).output()).await {
        Err(_) => Err(HookError::Timeout),
        Ok(Err(e)) => Err(HookError::Spawn(e.to_string())),
        Ok(Ok(o)) => Ok(Output {
            status: o.status.code(),
            signal: None,
            stdout: o.stdout,
            stderr: o.stderr,
            duration: started.elapsed(),
        }),
    }
}
