//! The SSH adapter: an async interface over blocking ssh2 sessions. One
//! session per host, opened once and reused for every command of a run;
//! each call runs on a blocking thread. Host keys are verified strictly
//! (`known_hosts`), privileged commands go through `sudo -n`, and every
//! value placed in a command line is shell-quoted (`crate::core::quote`).

mod conn;
mod jump;
pub mod known_hosts;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{Host, Jump, SshSettings};
use crate::core::quote;
use conn::Conn;

/// Where and how to connect: one host with its pair's SSH settings.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host's name in the pair.
    pub name: String,
    /// Its address.
    pub address: IpAddr,
    /// Its SSH port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key; `None` uses the ssh agent.
    pub identity: Option<PathBuf>,
    /// Environment variable with the key's passphrase.
    pub passphrase_env: Option<String>,
    /// known_hosts file.
    pub known_hosts: PathBuf,
    /// Record unknown keys instead of refusing.
    pub accept_new_host_keys: bool,
    /// Deadline for connect + handshake + auth.
    pub connect_timeout: Duration,
    /// Default deadline for one command.
    pub command_timeout: Duration,
    /// Privileged commands through `sudo -n`.
    pub sudo: bool,
    /// The name or address to connect to instead of `address` (an
    /// OpenSSH configuration's `HostName`, or a jump host's name).
    pub dial: Option<String>,
    /// Jump hosts, in order; empty: straight to the host.
    pub jump: Vec<Jump>,
}

impl Target {
    /// A target for one host of a pair: the pair's SSH settings, with what
    /// the host's route changes for it.
    pub fn new(host: &Host, ssh: &SshSettings) -> Target {
        let route = ssh.routes.get(&host.name).cloned().unwrap_or_default();
        Target {
            name: host.name.clone(),
            address: host.address,
            port: route.port.unwrap_or(host.ssh_port),
            user: route.user.unwrap_or_else(|| ssh.user.clone()),
            identity: route.identity.or_else(|| ssh.identity.clone()),
            passphrase_env: ssh.passphrase_env.clone(),
            known_hosts: ssh.known_hosts.clone(),
            accept_new_host_keys: ssh.accept_new_host_keys,
            connect_timeout: ssh.connect_timeout,
            command_timeout: ssh.command_timeout,
            sudo: ssh.sudo,
            dial: None,
            jump: route.jump.unwrap_or_else(|| ssh.jump.clone()),
        }
    }

    /// The name or address connected to, as known_hosts records it.
    pub fn host(&self) -> String {
        self.dial
            .clone()
            .unwrap_or_else(|| self.address.to_string())
    }

    /// `name (user@address:port)`, for messages; through jump hosts,
    /// `name (user@address:port via user@bastion:port)`.
    pub fn label(&self) -> String {
        let via = if self.jump.is_empty() {
            String::new()
        } else {
            let hops: Vec<String> = self.jump.iter().map(Jump::to_string).collect();
            format!(" via {}", hops.join(", "))
        };
        format!(
            "{} ({}@{}{via})",
            self.name,
            self.user,
            known_hosts::lookup_name(&self.host(), self.port)
        )
    }
}

/// What a remote command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<String>,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
    /// Wall time of the command.
    pub duration: Duration,
}

impl Output {
    /// Exited 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Standard output as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Everything that can go wrong talking to a host. Each message says what
/// happened and how to fix it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SshError {
    #[error("cannot connect to {host}: {reason} (is the host up, and sshd listening on that address and port?)")]
    Connect { host: String, reason: String },
    #[error("{host}: timed out after {} while {what}", humantime::format_duration(*after))]
    Timeout {
        host: String,
        what: String,
        after: Duration,
    },
    #[error("{host}: {reason}")]
    Protocol { host: String, reason: String },
    #[error("{host}: host key refused: no key is recorded for {name} in {known_hosts}; the server presented {key_type} {fingerprint}. \
             Check that fingerprint on the host (`ssh-keygen -lf /etc/ssh/ssh_host_{short}_key.pub`), then add it \
             (`ssh-keyscan -p PORT ADDRESS >> {known_hosts}`), or set `accept_new_host_keys = true` under [ssh] to record unknown keys on first use",
             name = .key.name, known_hosts = .key.known_hosts, key_type = .key.key_type, fingerprint = .key.fingerprint,
             short = .key.key_type.trim_start_matches("ssh-").split('-').next().unwrap_or("ed25519"))]
    HostKeyUnknown {
        host: String,
        key: Box<PresentedKey>,
    },
    #[error("{host}: HOST KEY CHANGED: {known_hosts} line {line} records a different {recorded_type} key for {name}; the server presented {key_type} {fingerprint}. \
             This may be an attack (someone in the middle) or a reinstalled host. Verify the new fingerprint out of band, then remove the old key \
             (`ssh-keygen -R '{name}' -f {known_hosts}`) and add the new one; baton never accepts a changed key by itself",
             name = .key.name, known_hosts = .key.known_hosts, key_type = .key.key_type, fingerprint = .key.fingerprint)]
    HostKeyChanged {
        host: String,
        key: Box<PresentedKey>,
        recorded_type: String,
        line: usize,
    },
    #[error("{host}: host key {fingerprint} is marked @revoked in {known_hosts} line {line}; refusing to connect")]
    HostKeyRevoked {
        host: String,
        fingerprint: String,
        known_hosts: String,
        line: usize,
    },
    #[error("cannot use known_hosts file {path}: {reason}")]
    KnownHostsFile { path: String, reason: String },
    #[error("{host}: authentication as `{user}` {} was refused ({reason}). Check the user name and that its ~/.ssh/authorized_keys holds the public key",
            identity.as_ref().map(|i| format!("with key {i}")).unwrap_or_else(|| "with the ssh agent's keys".to_string()))]
    Auth {
        host: String,
        user: String,
        identity: Option<String>,
        reason: String,
    },
    #[error("{host}: no ssh agent: SSH_AUTH_SOCK is not set, and no `identity` is configured. Set `identity` under [ssh] to the private key file, \
             or start an agent (`eval \"$(ssh-agent)\"`) and add the key (`ssh-add KEYFILE`) where baton runs")]
    NoAgent { host: String },
    #[error("{host}: cannot connect to the ssh agent at {path} (SSH_AUTH_SOCK): {reason}. Point SSH_AUTH_SOCK at a running agent's socket \
             (`eval \"$(ssh-agent)\"` starts one, then `ssh-add KEYFILE`), or set `identity` under [ssh]")]
    AgentUnreachable {
        host: String,
        path: String,
        reason: String,
    },
    #[error("{host}: the ssh agent at {path} holds no keys: add the login key (`SSH_AUTH_SOCK={path} ssh-add KEYFILE`), or set `identity` under [ssh]")]
    AgentEmpty { host: String, path: String },
    #[error("{host}: {} for user `{user}`. Check the user name, and that ~/.ssh/authorized_keys of `{user}` on the host holds one of them",
            agent_keys_refused(.keys))]
    AgentKeysRefused {
        host: String,
        user: String,
        /// Each key: its SHA256 fingerprint and comment.
        keys: Vec<String>,
    },
    #[error("the SSH key's passphrase was to come from environment variable {var}, which is not set; export it before running baton")]
    Passphrase { var: String },
    #[error("cannot read the SSH key {path}: {reason}; point `identity` under [ssh] at a readable private key file")]
    KeyFile { path: String, reason: String },
    #[error("the SSH key {path} is encrypted and no passphrase is set: set `passphrase_env` under [ssh] to the name of an environment variable \
             that holds its passphrase, or add the key to an ssh agent (`ssh-add {path}`) and remove `identity`")]
    KeyEncrypted { path: String },
    #[error("wrong passphrase for the SSH key {path} (from environment variable {var}): put the key's passphrase in {var} \
             (`ssh-keygen -y -f {path}` asks for it and shows whether it is right)")]
    WrongPassphrase { path: String, var: String },
    #[error("cannot use the SSH key {path}: {reason}. baton (libssh2) reads OpenSSH and PEM private keys of type ed25519, ecdsa, rsa or dsa, \
             plain or encrypted with a passphrase; rewrite it in OpenSSH's format with `ssh-keygen -p -f {path}`, or make a new one with `ssh-keygen -t ed25519`")]
    KeyUnsupported { path: String, reason: String },
    #[error("{host}: {reason}")]
    Channel { host: String, reason: String },
    #[error("{host}: `sudo -n {command}` needs a password; allow it without one for the login user (NOPASSWD in a sudoers file), or run baton's commands as a user that needs no sudo (`sudo = false`)")]
    SudoPassword { host: String, command: String },
    #[error("{host}: sudo refused `{command}`: {reason}; allow exactly this command for the login user in a sudoers file")]
    SudoRefused {
        host: String,
        command: String,
        reason: String,
    },
}

/// "the ssh agent's only key (K) was refused" / "the ssh agent's N keys
/// (K, ...) were all refused".
fn agent_keys_refused(keys: &[String]) -> String {
    match keys {
        [one] => format!("the ssh agent's only key ({one}) was refused"),
        many => format!(
            "the ssh agent's {} keys ({}) were all refused",
            many.len(),
            many.join(", ")
        ),
    }
}

/// The key a server presented, for host-key errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// The name looked up in known_hosts (`addr` or `[addr]:port`).
    pub name: String,
    /// The key's type.
    pub key_type: String,
    /// Its SHA256 fingerprint.
    pub fingerprint: String,
    /// The known_hosts file consulted.
    pub known_hosts: String,
}

/// A command started on a host and waiting for its input
/// (`SshHost::arm_privileged`, `SshHost::arm`).
pub struct Armed {
    /// The command line as run, for the journal.
    pub command: String,
    /// What it printed on standard output before it was ready (its answer
    /// to the probe).
    pub first: Vec<u8>,
    input: std::sync::mpsc::Sender<Vec<u8>>,
    done: tokio::task::JoinHandle<Result<Output, SshError>>,
    label: String,
}

impl Armed {
    /// Sends `input` (then end of file) and waits for the command to end.
    pub async fn fire(self, input: Vec<u8>) -> Result<Output, SshError> {
        let _ = self.input.send(input);
        let label = self.label;
        self.done.await.map_err(|e| SshError::Channel {
            host: label,
            reason: format!("command thread failed: {e}"),
        })?
    }
}

/// An open session to one host. Cheap to clone; commands are serialized.
#[derive(Clone)]
pub struct SshHost {
    target: Arc<Target>,
    conn: Arc<Mutex<Conn>>,
}

impl SshHost {
    /// Connects, verifies the host key and authenticates.
    pub async fn connect(target: Target) -> Result<SshHost, SshError> {
        let t = target.clone();
        let conn = tokio::task::spawn_blocking(move || Conn::open(&t))
            .await
            .map_err(|e| SshError::Protocol {
                host: target.label(),
                reason: format!("connection thread failed: {e}"),
            })??;
        Ok(SshHost {
            target: Arc::new(target),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The target this session is connected to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs a shell command line as the login user.
    pub async fn run(&self, command: &str) -> Result<Output, SshError> {
        self.exec(command.to_string(), None, self.target.command_timeout)
            .await
    }

    /// Runs a shell command line with a specific deadline.
    pub async fn run_with_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        self.exec(command.to_string(), None, timeout).await
    }

    /// Runs a program with arguments (each quoted) with root privileges:
    /// through `sudo -n` when the pair sets `sudo = true`, else directly.
    /// A sudo that wants a password or refuses the command is an error.
    pub async fn run_privileged(&self, argv: &[&str]) -> Result<Output, SshError> {
        self.privileged(argv, None).await
    }

    /// As `run_privileged`, with `input` on the program's stdin.
    pub async fn run_privileged_input(
        &self,
        argv: &[&str],
        input: Vec<u8>,
    ) -> Result<Output, SshError> {
        self.privileged(argv, Some(input)).await
    }

    /// The command line a privileged program runs as on this host:
    /// `sudo -n PROGRAM ARGS...` with `sudo = true`, else the program itself.
    pub fn privileged_line(&self, argv: &[&str]) -> String {
        let line = quote::join(argv);
        if self.target.sudo {
            format!("sudo -n {line}")
        } else {
            line
        }
    }

    async fn privileged(&self, argv: &[&str], input: Option<Vec<u8>>) -> Result<Output, SshError> {
        let out = self
            .exec(
                self.privileged_line(argv),
                input,
                self.target.command_timeout,
            )
            .await?;
        if !self.target.sudo {
            return Ok(out);
        }
        let line = quote::join(argv);
        if out.status == Some(1) {
            let err = out.stderr_text();
            if err.contains("a password is required") || err.contains("a terminal is required") {
                return Err(SshError::SudoPassword {
                    host: self.target.label(),
                    command: line,
                });
            }
            if err.contains("not allowed to execute")
                || err.contains("is not in the sudoers file")
                || err.contains("may not run sudo")
            {
                return Err(SshError::SudoRefused {
                    host: self.target.label(),
                    command: line,
                    reason: err.trim().to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Writes `content` to the absolute remote path `to` with `mode`. When
    /// the login user may write the directory: atomically, a temporary file
    /// beside it then a rename. Otherwise, with `sudo = true`: to a private
    /// temporary file, then `sudo -n install -m MODE TMP DEST` (a sudoers
    /// rule can allow exactly that), then the temporary file is removed.
    pub async fn upload(&self, content: Vec<u8>, to: &str, mode: u32) -> Result<Output, SshError> {
        let dest = quote::quote(to);
        let probe = format!("d=$(dirname -- {dest}); test -d \"$d\" || {{ echo \"no directory $d on this host\" >&2; exit 3; }}; test -w \"$d\"");
        let writable = self.run(&probe).await?;
        if writable.status == Some(3) {
            return Ok(writable);
        }
        if writable.success() || !self.target.sudo {
            let script = format!(
                "set -e; umask 077; d=$(dirname -- {dest}); t=$(mktemp \"$d/.baton-upload.XXXXXX\"); \
                 trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; chmod {mode:04o} \"$t\"; mv -f -- \"$t\" {dest}; trap - EXIT"
            );
            return self
                .exec(
                    format!("sh -c {}", quote::quote(&script)),
                    Some(content),
                    self.target.command_timeout,
                )
                .await;
        }
        let staged = self
            .exec("sh -c 'umask 077; t=$(mktemp /tmp/.baton-upload.XXXXXX) && cat > \"$t\" && echo \"$t\"'".to_string(), Some(content), self.target.command_timeout)
            .await?;
        let tmp = staged.stdout_text().trim().to_string();
        if !staged.success() || !tmp.starts_with("/tmp/.baton-upload.") {
            return Ok(staged);
        }
        let installed = self
            .run_privileged(&["install", "-m", &format!("{mode:04o}"), &tmp, to])
            .await;
        let _ = self.run(&format!("rm -f {}", quote::quote(&tmp))).await;
        installed
    }

    /// Starts a program with root privileges (as `run_privileged`) that
    /// reads its input from stdin, writes `probe` to it and returns once the
    /// program answers (so it is known to run, sudo and all); `Armed::fire`
    /// sends the input. The session runs nothing else until then. Dropping
    /// the `Armed` gives the program end of file with no input.
    pub async fn arm_privileged(&self, argv: &[&str], probe: &[u8]) -> Result<Armed, SshError> {
        self.arm(
            self.privileged_line(argv),
            probe,
            self.target.command_timeout,
        )
        .await
    }

    /// Starts a shell command line as the login user, writes `probe` to it
    /// and returns once it has answered (or ended), holding this session's
    /// channel until the command is fired or dropped (dropping sends end of
    /// file, as does `hold` passing without input). Nothing else runs on
    /// the session meanwhile.
    pub async fn arm(
        &self,
        command: String,
        probe: &[u8],
        hold: Duration,
    ) -> Result<Armed, SshError> {
        let (input, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let conn = self.conn.clone();
        let label = self.target.label();
        let (cmd, timeout) = (command.clone(), hold);
        let probe = probe.to_vec();
        let done = tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| SshError::Channel {
                host: label,
                reason: "an earlier command on this session panicked".into(),
            })?;
            conn.exec_when(
                &cmd,
                &probe,
                move |first: &[u8]| {
                    let _ = ready_tx.send(first.to_vec());
                },
                rx,
                timeout,
            )
        });
        let thread_failed = |e: tokio::task::JoinError| SshError::Channel {
            host: self.target.label(),
            reason: format!("command thread failed: {e}"),
        };
        if let Ok(first) = ready_rx.await {
            return Ok(Armed {
                command,
                first,
                input,
                done,
                label: self.target.label(),
            });
        }
        match done.await.map_err(thread_failed)? {
            Err(e) => Err(e),
            Ok(_) => Err(SshError::Channel {
                host: self.target.label(),
                reason: format!("`{command}` ended before it was ready"),
            }),
        }
    }

    async fn exec(
        &self,
        command: String,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        let conn = self.conn.clone();
        let label = self.target.label();
        tracing::debug!(host = %label, command = %command, "run");
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| SshError::Channel {
                host: label.clone(),
                reason: "an earlier command on this session panicked".into(),
            })?;
            conn.exec(&command, stdin.as_deref(), timeout)
        })
        .await
        .map_err(|e| SshError::Channel {
            host: self.target.label(),
            reason: format!("command thread failed: {e}"),
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_errors_name_their_cause_and_fix() {
        let host = "blue (deploy@198.18.0.11)".to_string();
        let e = SshError::NoAgent { host: host.clone() }.to_string();
        assert!(e.contains("no ssh agent: SSH_AUTH_SOCK is not set"), "{e}");
        assert!(
            e.contains("`identity` under [ssh]") && e.contains("ssh-add"),
            "{e}"
        );
        let e = SshError::AgentEmpty {
            host: host.clone(),
            path: "/tmp/a.sock".into(),
        }
        .to_string();
        assert!(
            e.contains("the ssh agent at /tmp/a.sock holds no keys"),
            "{e}"
        );
        assert!(
            e.contains("SSH_AUTH_SOCK=/tmp/a.sock ssh-add KEYFILE"),
            "{e}"
        );
        for e in [
            SshError::NoAgent { host: host.clone() },
            SshError::AgentEmpty {
                host: host.clone(),
                path: "/tmp/a.sock".into(),
            },
            SshError::AgentUnreachable {
                host: host.clone(),
                path: "/nonexistent".into(),
                reason: "No such file or directory (os error 2)".into(),
            },
        ] {
            assert!(!e.to_string().contains("authorized_keys"), "{e}");
        }
        let one = SshError::AgentKeysRefused {
            host: host.clone(),
            user: "deploy".into(),
            keys: vec!["SHA256:a me@laptop".into()],
        }
        .to_string();
        assert!(
            one.starts_with("blue (deploy@198.18.0.11): the ssh agent's only key (SHA256:a me@laptop) was refused for user `deploy`"),
            "{one}"
        );
        let two = SshError::AgentKeysRefused {
            host,
            user: "deploy".into(),
            keys: vec!["SHA256:a".into(), "SHA256:b".into()],
        }
        .to_string();
        assert!(
            two.contains(
                "the ssh agent's 2 keys (SHA256:a, SHA256:b) were all refused for user `deploy`"
            ),
            "{two}"
        );
        assert!(two.contains("authorized_keys of `deploy`"), "{two}");
    }

    #[test]
    fn key_file_errors_name_their_cause_and_fix() {
        let e = SshError::KeyEncrypted { path: "/k".into() }.to_string();
        assert!(
            e.starts_with(
                "the SSH key /k is encrypted and no passphrase is set: set `passphrase_env`"
            ),
            "{e}"
        );
        let e = SshError::KeyUnsupported {
            path: "/k".into(),
            reason: "its type sk-ssh-ed25519@openssh.com is not one libssh2 can sign with".into(),
        }
        .to_string();
        assert!(e.starts_with("cannot use the SSH key /k: its type"), "{e}");
        assert!(
            !e.contains("authorized_keys") && !e.contains("wrong passphrase"),
            "{e}"
        );
    }
}
