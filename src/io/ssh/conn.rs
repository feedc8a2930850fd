//! One blocking SSH connection (libssh2 through the ssh2 crate): connect
//! with a deadline, verify the host key strictly before authenticating,
//! authenticate, and run commands with stdin, separate stdout/stderr capture
//! and a per-command deadline. Runs only on blocking threads; `ssh::SshHost`
//! is the async face.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ssh2::{BlockDirections, ErrorCode, MethodType, Session};

use crate::io::ssh::known_hosts::{self, KnownHosts, Verdict};
use crate::io::ssh::{Output, PresentedKey, SshError, Target};

/// libssh2's "would block" code.
const EAGAIN: i32 = -37;
/// libssh2's error codes (libssh2.h) that authentication tells apart.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
const LIBSSH2_ERROR_FILE: i32 = -16;
const LIBSSH2_ERROR_AUTHENTICATION_FAILED: i32 = -18;
const LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED: i32 = -19;
const LIBSSH2_ERROR_AGENT_PROTOCOL: i32 = -42;
const LIBSSH2_ERROR_KEYFILE_AUTH_FAILED: i32 = -48;

/// A connected, verified, authenticated session.
pub(crate) struct Conn {
    pub(super) sess: Session,
    pub(super) fd: RawFd,
    pub(super) label: String,
}

/// What a session runs over: a TCP connection, or one end of the socket
/// pair a jump host's tunnel carries (`ssh::jump`).
pub(super) enum Stream {
    /// Straight to the host.
    Tcp(TcpStream),
    /// Through jump hosts.
    Unix(UnixStream),
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// A TCP connection to the target (its `dial` name resolved, else its
/// address), within the connect timeout.
fn connect(t: &Target) -> Result<TcpStream, SshError> {
    let label = t.label();
    let deadline = Instant::now() + t.connect_timeout;
    let addrs: Vec<SocketAddr> = match &t.dial {
        None => vec![SocketAddr::new(t.address, t.port)],
        // (A name is resolved by the system's resolver, which its own
        // settings bound; each address is then tried in turn, as OpenSSH
        // does, within the connect timeout.)
        Some(name) => (name.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| SshError::Connect {
                host: label.clone(),
                reason: format!("cannot resolve {name}: {e}"),
            })?
            .collect(),
    };
    let mut last = SshError::Connect {
        host: label.clone(),
        reason: "the name resolves to no address".into(),
    };
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
                last = SshError::Timeout {
                    host: label.clone(),
                    what: format!("connecting to {addr}"),
                    after: t.connect_timeout,
                }
            }
            Err(e) => {
                last = SshError::Connect {
                    host: label.clone(),
                    reason: e.to_string(),
                }
            }
        }
    }
    Err(last)
}

impl Conn {
    /// Connects, verifies the host key and authenticates, all within the
    /// connect timeout.
    pub(crate) fn open(t: &Target) -> Result<Conn, SshError> {
        let deadline = Instant::now() + t.connect_timeout;
        let stream = if t.jump.is_empty() {
            Stream::Tcp(connect(t)?)
        } else {
            Stream::Unix(super::jump::tunnel(t, deadline)?)
        };
        Conn::over(t, stream, deadline)
    }

    /// Verifies the host key and authenticates over a connected stream
    /// (TCP, or a jump host's tunnel), by the deadline.
    pub(super) fn over(t: &Target, stream: Stream, deadline: Instant) -> Result<Conn, SshError> {
        let label = t.label();
        let fd = stream.as_raw_fd();
        let mut sess = Session::new().map_err(|e| SshError::Protocol {
            host: label.clone(),
            reason: e.to_string(),
        })?;
        sess.set_tcp_stream(stream);
        sess.set_timeout(remaining_ms(deadline));

        // Offer the host key algorithms in OpenSSH's order, the types
        // recorded for this host first, so the server presents the key
        // OpenSSH would be shown, and the verdict below is OpenSSH's.
        let name = known_hosts::lookup_name(&t.host(), t.port);
        let known = KnownHosts::read(&t.known_hosts).map_err(|e| SshError::KnownHostsFile {
            path: t.known_hosts.display().to_string(),
            reason: e.to_string(),
        })?;
        let supported =
            sess.supported_algs(MethodType::HostKey)
                .map_err(|e| SshError::Protocol {
                    host: label.clone(),
                    reason: format!("cannot list libssh2's host key algorithms: {}", e.message()),
                })?;
        let prefs = known.host_key_algorithms(&name, &supported);
        sess.method_pref(MethodType::HostKey, &prefs.join(","))
            .map_err(|e| SshError::Protocol {
                host: label.clone(),
                reason: format!(
                    "cannot offer the host key algorithms {}: {}",
                    prefs.join(","),
                    e.message()
                ),
            })?;
        sess.handshake()
            .map_err(|e| classify(&label, "the SSH handshake", e, t.connect_timeout))?;

        let (key, _) = sess.host_key().ok_or_else(|| SshError::Protocol {
            host: label.clone(),
            reason: "the server presented no host key".into(),
        })?;
        let key = key.to_vec();
        let fp = known_hosts::fingerprint(&key);
        let key_type = known_hosts::key_type_of(&key).unwrap_or_else(|| "unknown".into());
        let presented = PresentedKey {
            name: name.clone(),
            key_type,
            fingerprint: fp.clone(),
            known_hosts: t.known_hosts.display().to_string(),
        };
        // The presented key read as OpenSSH reads keys, so it is compared
        // with the recorded ones by type and numbers, as OpenSSH compares.
        let host_key = known_hosts::HostKey::from_blob(&key).map_err(|e| SshError::Protocol {
            host: label.clone(),
            reason: format!(
                "the server presented a host key ({fp}) that is no valid public key: {e}; \
                 check the host's sshd HostKey files"
            ),
        })?;
        match known.verify(&name, &host_key) {
            Verdict::Known => {}
            Verdict::Unknown if t.accept_new_host_keys => {
                known_hosts::append(&t.known_hosts, &name, &key).map_err(|e| {
                    SshError::KnownHostsFile {
                        path: t.known_hosts.display().to_string(),
                        reason: format!("cannot record the new host key: {e}"),
                    }
                })?;
                tracing::warn!(host = %label, fingerprint = %fp, "recorded a new host key (accept_new_host_keys)");
            }
            Verdict::Unknown => {
                return Err(SshError::HostKeyUnknown {
                    host: label,
                    key: Box::new(presented),
                })
            }
            Verdict::Changed {
                line,
                recorded_type,
            } => {
                return Err(SshError::HostKeyChanged {
                    host: label,
                    key: Box::new(presented),
                    recorded_type,
                    line,
                })
            }
            Verdict::Revoked { line } => {
                return Err(SshError::HostKeyRevoked {
                    host: label,
                    fingerprint: fp,
                    known_hosts: t.known_hosts.display().to_string(),
                    line,
                })
            }
        }

        sess.set_timeout(remaining_ms(deadline));
        match &t.identity {
            Some(path) => auth_key_file(&sess, t, &label, path)?,
            None => auth_agent(&sess, t, &label)?,
        }
        if !sess.authenticated() {
            return Err(SshError::Auth {
                host: label,
                user: t.user.clone(),
                identity: t.identity.as_ref().map(|p| p.display().to_string()),
                reason: "the server did not accept the key".into(),
            });
        }
        sess.set_keepalive(true, 15);
        sess.set_timeout(0);
        sess.set_blocking(false);
        Ok(Conn { sess, fd, label })
    }

    /// Runs a command line through the login shell; feeds `stdin` if given.
    pub(crate) fn exec(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut ch = self.start(command, deadline, timeout)?;
        self.pump(
            &mut ch,
            command,
            stdin.unwrap_or(&[]),
            started,
            deadline,
            timeout,
        )
    }

    /// Starts `command` now and tells `ready` once it runs; its input comes
    /// later from `input` (then end of file), and its output is collected
    /// as `exec` does. If `input` never delivers (the sender is dropped, or
    /// the deadline passes), the command gets end of file with no input.
    /// This takes the time of starting a program (sudo, say) out of the
    /// moment the input is sent.
    pub(crate) fn exec_when(
        &self,
        command: &str,
        probe: &[u8],
        ready: impl FnOnce(&[u8]),
        input: std::sync::mpsc::Receiver<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        // Starting and the probe must be quick (they happen before a switch);
        // the input may come later, and the command then has its own time.
        let started = Instant::now();
        let deadline = started + timeout.min(ARM_TIMEOUT);
        let mut ch = self.start(command, deadline, timeout)?;
        // The remote program is only known to run once it answers: `probe`
        // is written first, and ready is told when its first output (or the
        // end of the command, when it could not start) arrives.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        if !probe.is_empty() {
            self.await_answer(
                &mut ch, command, probe, &mut out, &mut err, deadline, timeout,
            )?;
        }
        ready(&out);
        // A command that ended without answering (sudo refused it, say) is
        // not waited for: its output and status are the result.
        let (bytes, from) = if ch.eof() {
            (Vec::new(), started)
        } else {
            (
                input.recv_timeout(timeout).unwrap_or_default(),
                Instant::now(),
            )
        };
        let mut o = self.pump(&mut ch, command, &bytes, from, from + timeout, timeout)?;
        out.append(&mut o.stdout);
        err.append(&mut o.stderr);
        o.stdout = out;
        o.stderr = err;
        Ok(o)
    }

    /// Writes `probe` and reads until the command prints something or ends.
    #[allow(clippy::too_many_arguments)]
    fn await_answer(
        &self,
        ch: &mut ssh2::Channel,
        command: &str,
        probe: &[u8],
        out: &mut Vec<u8>,
        err: &mut Vec<u8>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), SshError> {
        let timed_out = || SshError::Timeout {
            host: self.label.clone(),
            what: format!("starting `{}`", short(command)),
            after: timeout,
        };
        let channel_err = |what: &str, e: std::io::Error| SshError::Channel {
            host: self.label.clone(),
            reason: format!("{what}: {e}"),
        };
        let mut written = 0;
        let mut buf = vec![0u8; 4096];
        loop {
            let mut progress = false;
            if written < probe.len() {
                match ch.write(&probe[written..]) {
                    Ok(n) => {
                        written += n;
                        progress |= n > 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(channel_err("writing input", e)),
                }
            }
            match ch.stderr().read(&mut buf) {
                Ok(n) if n > 0 => {
                    err.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(channel_err("reading output", e)),
            }
            match ch.stream(0).read(&mut buf) {
                Ok(n) if n > 0 => {
                    out.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(channel_err("reading output", e)),
            }
            if ch.eof() {
                return Ok(());
            }
            if !progress {
                if Instant::now() >= deadline {
                    return Err(timed_out());
                }
                self.wait(deadline);
            }
        }
    }

    fn start(
        &self,
        command: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<ssh2::Channel, SshError> {
        let timed_out = || SshError::Timeout {
            host: self.label.clone(),
            what: format!("running `{}`", short(command)),
            after: timeout,
        };
        let mut ch = self
            .again(deadline, || self.sess.channel_session())
            .map_err(|e| self.err(e, &timed_out))?;
        self.again(deadline, || ch.exec(command))
            .map_err(|e| self.err(e, &timed_out))?;
        Ok(ch)
    }

    /// Feeds `input` then end of file to a started command and collects its
    /// output and exit status, never blocking on one stream while the other
    /// fills.
    fn pump(
        &self,
        ch: &mut ssh2::Channel,
        command: &str,
        input: &[u8],
        started: Instant,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Output, SshError> {
        let timed_out = || SshError::Timeout {
            host: self.label.clone(),
            what: format!("running `{}`", short(command)),
            after: timeout,
        };
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut written = 0;
        let mut eof_sent = false;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let mut progress = false;
            if written < input.len() {
                match ch.write(&input[written..]) {
                    Ok(n) => {
                        written += n;
                        progress |= n > 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => {
                        return Err(SshError::Channel {
                            host: self.label.clone(),
                            reason: format!("writing input: {e}"),
                        })
                    }
                }
            } else if !eof_sent && ch.eof() {
                // The command has ended: there is nobody to tell.
                eof_sent = true;
            } else if !eof_sent {
                match ch.send_eof() {
                    Ok(()) => {
                        eof_sent = true;
                        progress = true;
                    }
                    Err(e) if e.code() == ErrorCode::Session(EAGAIN) => {}
                    Err(e) => return Err(self.err(e, &timed_out)),
                }
            }
            let mut drained = true;
            for (stream, sink) in [(0, &mut stdout), (1, &mut stderr)] {
                let mut s = if stream == 0 {
                    ch.stream(0)
                } else {
                    ch.stderr()
                };
                match s.read(&mut buf) {
                    Ok(0) => {}
                    Ok(n) => {
                        sink.extend_from_slice(&buf[..n]);
                        progress = true;
                        drained = false;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => {
                        return Err(SshError::Channel {
                            host: self.label.clone(),
                            reason: format!("reading output: {e}"),
                        })
                    }
                }
            }
            if drained && ch.eof() {
                break;
            }
            if !progress {
                if Instant::now() >= deadline {
                    let _ = ch.close();
                    return Err(timed_out());
                }
                self.wait(deadline);
            }
        }
        self.again(deadline, || ch.wait_close())
            .map_err(|e| self.err(e, &timed_out))?;
        let status = ch.exit_status().unwrap_or(-1);
        let signal = ch.exit_signal().ok().and_then(|s| s.exit_signal);
        Ok(Output {
            status: if signal.is_some() { None } else { Some(status) },
            signal,
            stdout,
            stderr,
            duration: started.elapsed(),
        })
    }

    /// Retries a libssh2 call while it would block, until the deadline.
    pub(super) fn again<T>(
        &self,
        deadline: Instant,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, ssh2::Error> {
        loop {
            match f() {
                Err(e) if e.code() == ErrorCode::Session(EAGAIN) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    self.wait(deadline);
                }
                other => return other,
            }
        }
    }

    fn err(&self, e: ssh2::Error, timed_out: &dyn Fn() -> SshError) -> SshError {
        if e.code() == ErrorCode::Session(EAGAIN) {
            timed_out()
        } else {
            SshError::Channel {
                host: self.label.clone(),
                reason: e.message().to_string(),
            }
        }
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked
    /// on, at most 50 ms and never past the deadline.
    pub(super) fn wait(&self, deadline: Instant) {
        let events = match self.sess.block_directions() {
            BlockDirections::Inbound => libc::POLLIN,
            BlockDirections::Outbound => libc::POLLOUT,
            BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
            BlockDirections::None => libc::POLLIN,
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd on a socket the session owns and keeps open.
        #[allow(unsafe_code, reason = "poll(2): std cannot wait for a raw socket")]
        unsafe {
            libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int);
        }
    }
}

/// How long a prepared command may take to start and answer its probe.
const ARM_TIMEOUT: Duration = Duration::from_secs(10);

fn remaining_ms(deadline: Instant) -> u32 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_millis()
        .clamp(1, u128::from(u32::MAX)) as u32
}

fn classify(label: &str, what: &str, e: ssh2::Error, after: Duration) -> SshError {
    if timed_out(&e) {
        SshError::Timeout {
            host: label.to_string(),
            what: what.to_string(),
            after,
        }
    } else {
        SshError::Protocol {
            host: label.to_string(),
            reason: format!("{what} failed: {}", e.message()),
        }
    }
}

/// libssh2's codes for a server that refused a public key.
fn refused(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Session(LIBSSH2_ERROR_AUTHENTICATION_FAILED)
            | ErrorCode::Session(LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
    )
}

fn timed_out(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) | ErrorCode::Session(EAGAIN)
    )
}

/// Public key authentication with the key file `path`. What the file says
/// about itself (encrypted or not, with what) is read first, so a key that
/// cannot be read, is encrypted without a passphrase, or cannot be
/// decrypted is named as such rather than as a key the server refused.
fn auth_key_file(sess: &Session, t: &Target, label: &str, path: &Path) -> Result<(), SshError> {
    let shown = path.display().to_string();
    let text = crate::io::readfile::bytes(path, crate::io::readfile::KEY).map_err(|e| {
        SshError::KeyFile {
            path: shown.clone(),
            reason: e.to_string(),
        }
    })?;
    let passphrase = match &t.passphrase_env {
        Some(var) => Some((
            var.clone(),
            std::env::var(var).map_err(|_| SshError::Passphrase { var: var.clone() })?,
        )),
        None => None,
    };
    let unsupported = |reason: String| SshError::KeyUnsupported {
        path: shown.clone(),
        reason,
    };
    let encrypted = match inspect_key(&String::from_utf8_lossy(&text)) {
        KeyEnvelope::Plain => false,
        KeyEnvelope::PemEncrypted => true,
        KeyEnvelope::UnusableType(kind) => {
            return Err(unsupported(format!(
                "its type {kind} is not one libssh2 can sign with"
            )))
        }
        KeyEnvelope::OpenSshEncrypted { cipher, kdf } => {
            if kdf != "bcrypt" {
                return Err(unsupported(format!(
                    "it is encrypted with key derivation `{kdf}`, which libssh2 cannot use"
                )));
            }
            // (Should libssh2 not list its ciphers, it is left to try.)
            let known = sess
                .supported_algs(MethodType::CryptCs)
                .map_or(true, |ciphers| ciphers.contains(&cipher.as_str()));
            if !known {
                return Err(unsupported(format!(
                    "it is encrypted with {cipher}, which libssh2 cannot decrypt \
                     (`ssh-keygen -p -Z aes256-ctr -f {shown}` re-encrypts it with one it can)"
                )));
            }
            true
        }
    };
    if encrypted && passphrase.is_none() {
        return Err(SshError::KeyEncrypted { path: shown });
    }
    let secret = passphrase.as_ref().map(|(_, p)| p.as_str());
    sess.userauth_pubkey_file(&t.user, None, path, secret)
        .map_err(|e| {
            let var = passphrase.as_ref().map(|(var, _)| var.as_str());
            key_auth_error(&e, label, t, &shown, encrypted, var)
        })
}

/// What a failed key file authentication means, from libssh2's code: a
/// timeout; the server refused the key; libssh2 could not load the key (an
/// encrypted one whose envelope `auth_key_file` found readable fails to
/// load only when the passphrase does not decrypt it; a plain one is in a
/// format it cannot read); anything else as it is.
fn key_auth_error(
    e: &ssh2::Error,
    label: &str,
    t: &Target,
    key: &str,
    encrypted: bool,
    passphrase_env: Option<&str>,
) -> SshError {
    if timed_out(e) {
        return SshError::Timeout {
            host: label.to_string(),
            what: "authenticating".into(),
            after: t.connect_timeout,
        };
    }
    if refused(e) {
        return SshError::Auth {
            host: label.to_string(),
            user: t.user.clone(),
            identity: Some(key.to_string()),
            reason: e.message().to_string(),
        };
    }
    let unloadable = matches!(
        e.code(),
        ErrorCode::Session(LIBSSH2_ERROR_FILE)
            | ErrorCode::Session(LIBSSH2_ERROR_KEYFILE_AUTH_FAILED)
    );
    match (unloadable, encrypted, passphrase_env) {
        (true, true, Some(var)) => SshError::WrongPassphrase {
            path: key.to_string(),
            var: var.to_string(),
        },
        (true, true, None) => SshError::KeyEncrypted {
            path: key.to_string(),
        },
        (true, false, _) => SshError::KeyUnsupported {
            path: key.to_string(),
            reason: e.message().to_string(),
        },
        (false, _, _) => SshError::Protocol {
            host: label.to_string(),
            reason: format!("authenticating with key {key} failed: {}", e.message()),
        },
    }
}

/// Public key authentication with the keys of the ssh agent at
/// SSH_AUTH_SOCK, each in turn (as OpenSSH does) until the server takes
/// one. No agent, an agent that cannot be reached, an agent with no keys
/// and keys all refused are each their own error.
fn auth_agent(sess: &Session, t: &Target, label: &str) -> Result<(), SshError> {
    let host = label.to_string();
    let path = match std::env::var_os("SSH_AUTH_SOCK") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => return Err(SshError::NoAgent { host }),
    };
    let shown = path.display().to_string();
    let unreachable = |reason: String| SshError::AgentUnreachable {
        host: host.clone(),
        path: shown.clone(),
        reason,
    };
    let mut agent = sess
        .agent()
        .map_err(|e| unreachable(format!("libssh2: {}", e.message())))?;
    agent
        .set_identity_path(&path)
        .map_err(|e| unreachable(format!("libssh2: {}", e.message())))?;
    if let Err(e) = agent.connect() {
        return Err(unreachable(
            agent_socket_problem(&path).unwrap_or_else(|| e.message().to_string()),
        ));
    }
    let result = try_agent_keys(&mut agent, t, label, &shown);
    let _ = agent.disconnect();
    result
}

fn try_agent_keys(
    agent: &mut ssh2::Agent,
    t: &Target,
    label: &str,
    shown: &str,
) -> Result<(), SshError> {
    let unreachable = |e: ssh2::Error| SshError::AgentUnreachable {
        host: label.to_string(),
        path: shown.to_string(),
        reason: format!("it did not list its keys: {}", e.message()),
    };
    agent.list_identities().map_err(unreachable)?;
    let keys = agent.identities().map_err(unreachable)?;
    if keys.is_empty() {
        return Err(SshError::AgentEmpty {
            host: label.to_string(),
            path: shown.to_string(),
        });
    }
    let mut refused_keys = Vec::new();
    for key in &keys {
        let name = describe_agent_key(key);
        match agent.userauth(&t.user, key) {
            Ok(()) => return Ok(()),
            Err(e) if refused(&e) => refused_keys.push(name),
            Err(e) if e.code() == ErrorCode::Session(LIBSSH2_ERROR_AGENT_PROTOCOL) => {
                refused_keys.push(format!("{name}: the agent did not sign with it"));
            }
            Err(e) if timed_out(&e) => {
                return Err(SshError::Timeout {
                    host: label.to_string(),
                    what: "authenticating with the ssh agent's keys".into(),
                    after: t.connect_timeout,
                })
            }
            Err(e) => {
                return Err(SshError::Protocol {
                    host: label.to_string(),
                    reason: format!(
                        "authenticating with the ssh agent's keys failed after {} of its {} keys were refused: {}",
                        refused_keys.len(),
                        keys.len(),
                        e.message()
                    ),
                })
            }
        }
    }
    Err(SshError::AgentKeysRefused {
        host: label.to_string(),
        user: t.user.clone(),
        keys: refused_keys,
    })
}

/// An agent key for messages: its fingerprint and comment.
fn describe_agent_key(key: &ssh2::PublicKey) -> String {
    let fp = known_hosts::fingerprint(key.blob());
    match key.comment().trim() {
        "" => fp,
        comment => format!("{fp} {comment}"),
    }
}

/// Why a unix socket path does not lead to an agent, as the system says
/// it; `None` when it looks reachable after all.
fn agent_socket_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Err(e) => Some(e.to_string()),
        Ok(m) if !m.file_type().is_socket() => Some("it is not a socket".into()),
        Ok(_) => std::os::unix::net::UnixStream::connect(path)
            .err()
            .map(|e| e.to_string()),
    }
}

/// The next `n` bytes of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let value = rest.get(..n)?;
    *rest = &rest[n..];
    Some(value)
}

/// The next SSH `string` (uint32 length, bytes) of `rest`.
fn ssh_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(take(rest, 4)?.try_into().ok()?) as usize;
    take(rest, len)
}

/// What a private key file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyEnvelope {
    /// Not encrypted, or not recognized here (libssh2 then decides).
    Plain,
    /// OpenSSH's format, encrypted with `cipher` from a key made by `kdf`.
    OpenSshEncrypted { cipher: String, kdf: String },
    /// Encrypted PEM (`Proc-Type: 4,ENCRYPTED`) or PKCS#8
    /// (`BEGIN ENCRYPTED PRIVATE KEY`).
    PemEncrypted,
    /// OpenSSH's format, of a key type libssh2 cannot sign with (a
    /// security key, say).
    UnusableType(String),
}

/// Key types libssh2 (built with OpenSSL) signs with.
const USABLE_KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "ssh-dss",
];

/// Reads a private key file's envelope: OpenSSH's format (its cipher, key
/// derivation and, from the public part, key type) or PEM's headers.
fn inspect_key(text: &str) -> KeyEnvelope {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    if let Some(start) = text.find(BEGIN) {
        let body = &text[start + BEGIN.len()..];
        let body = body.find(END).map_or(body, |end| &body[..end]);
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let Ok(raw) = STANDARD.decode(b64) else {
            return KeyEnvelope::Plain;
        };
        return openssh_envelope(&raw).unwrap_or(KeyEnvelope::Plain);
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.lines().any(|l| l.trim() == "Proc-Type: 4,ENCRYPTED")
    {
        return KeyEnvelope::PemEncrypted;
    }
    KeyEnvelope::Plain
}

/// `openssh-key-v1\0`, string cipher, string kdf, string kdf options,
/// uint32 count, string public key, ... (OpenSSH's PROTOCOL.key).
fn openssh_envelope(raw: &[u8]) -> Option<KeyEnvelope> {
    let mut rest = raw.strip_prefix(b"openssh-key-v1\0")?;
    let cipher = String::from_utf8(ssh_string(&mut rest)?.to_vec()).ok()?;
    let kdf = String::from_utf8(ssh_string(&mut rest)?.to_vec()).ok()?;
    let _options = ssh_string(&mut rest)?;
    let _count = take(&mut rest, 4)?;
    let public = ssh_string(&mut rest)?;
    let kind = known_hosts::key_type_of(public)?;
    if !USABLE_KEY_TYPES.contains(&kind.as_str()) {
        return Some(KeyEnvelope::UnusableType(kind));
    }
    if cipher == "none" {
        Some(KeyEnvelope::Plain)
    } else {
        Some(KeyEnvelope::OpenSshEncrypted { cipher, kdf })
    }
}

fn short(command: &str) -> String {
    let one_line = command.lines().next().unwrap_or_default();
    if one_line.chars().count() > 60 || command.contains('\n') {
        format!("{}...", one_line.chars().take(60).collect::<String>())
    } else {
        one_line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "blue".into(),
            address: "198.18.0.11".parse().unwrap(),
            port: 22,
            user: "deploy".into(),
            identity: Some("/k".into()),
            passphrase_env: Some("PASS".into()),
            known_hosts: "/kh".into(),
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(3),
            command_timeout: Duration::from_secs(30),
            sudo: false,
            dial: None,
            jump: Vec::new(),
        }
    }

    fn string(b: &mut Vec<u8>, v: &[u8]) {
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v);
    }

    /// A private key file in OpenSSH's format (the envelope only: the
    /// private part is not looked at).
    fn openssh_key(cipher: &str, kdf: &str, key_type: &str) -> String {
        let mut b = b"openssh-key-v1\0".to_vec();
        string(&mut b, cipher.as_bytes());
        string(&mut b, kdf.as_bytes());
        string(&mut b, if kdf == "none" { b"" } else { b"salt+rounds" });
        b.extend_from_slice(&1u32.to_be_bytes());
        let mut public = Vec::new();
        string(&mut public, key_type.as_bytes());
        string(&mut public, &[7; 32]);
        string(&mut b, &public);
        string(&mut b, b"private part");
        let b64 = STANDARD.encode(&b);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn the_envelope_says_whether_a_key_is_encrypted() {
        assert_eq!(
            inspect_key(&openssh_key("none", "none", "ssh-ed25519")),
            KeyEnvelope::Plain
        );
        assert_eq!(
            inspect_key(&openssh_key("aes256-ctr", "bcrypt", "ssh-ed25519")),
            KeyEnvelope::OpenSshEncrypted {
                cipher: "aes256-ctr".into(),
                kdf: "bcrypt".into()
            }
        );
        assert_eq!(
            inspect_key(&openssh_key("none", "none", "sk-ssh-ed25519@openssh.com")),
            KeyEnvelope::UnusableType("sk-ssh-ed25519@openssh.com".into())
        );
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(inspect_key(pem), KeyEnvelope::PemEncrypted);
        let pkcs8 =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(inspect_key(pkcs8), KeyEnvelope::PemEncrypted);
        let plain_pem = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(inspect_key(plain_pem), KeyEnvelope::Plain);
        // What cannot be read is left to libssh2.
        assert_eq!(inspect_key("not a key"), KeyEnvelope::Plain);
        assert_eq!(
            inspect_key(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n!!!\n-----END OPENSSH PRIVATE KEY-----\n"
            ),
            KeyEnvelope::Plain
        );
    }

    #[test]
    fn a_key_that_does_not_load_is_a_wrong_passphrase_only_when_encrypted() {
        let t = target();
        let file = ssh2::Error::new(
            ErrorCode::Session(LIBSSH2_ERROR_FILE),
            "Unable to extract public key from private key: Unsupported private key format",
        );
        let e = key_auth_error(&file, "blue", &t, "/k", true, Some("PASS"));
        assert_eq!(
            e,
            SshError::WrongPassphrase {
                path: "/k".into(),
                var: "PASS".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "wrong passphrase for the SSH key /k (from environment variable PASS): put the key's passphrase in PASS \
             (`ssh-keygen -y -f /k` asks for it and shows whether it is right)"
        );
        let pem = ssh2::Error::new(
            ErrorCode::Session(LIBSSH2_ERROR_KEYFILE_AUTH_FAILED),
            "Wrong passphrase for private key",
        );
        assert!(matches!(
            key_auth_error(&pem, "blue", &t, "/k", true, Some("PASS")),
            SshError::WrongPassphrase { .. }
        ));
        let e = key_auth_error(&file, "blue", &t, "/k", false, None);
        assert!(matches!(e, SshError::KeyUnsupported { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot use the SSH key /k: Unable to extract public key"),
            "{e}"
        );
        assert!(!e.to_string().contains("authorized_keys"), "{e}");
    }

    #[test]
    fn only_a_refusal_by_the_server_points_at_authorized_keys() {
        let t = target();
        for code in [
            LIBSSH2_ERROR_AUTHENTICATION_FAILED,
            LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED,
        ] {
            let e = ssh2::Error::new(
                ErrorCode::Session(code),
                "Username/PublicKey combination invalid",
            );
            let e = key_auth_error(&e, "blue", &t, "/k", true, Some("PASS"));
            assert!(matches!(e, SshError::Auth { .. }), "{e}");
            assert!(e.to_string().contains("authorized_keys"), "{e}");
        }
        let e = ssh2::Error::new(ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT), "timed out");
        assert!(matches!(
            key_auth_error(&e, "blue", &t, "/k", false, None),
            SshError::Timeout { after, .. } if after == Duration::from_secs(3)
        ));
        let e = ssh2::Error::new(ErrorCode::Session(-13), "socket disconnect");
        let e = key_auth_error(&e, "blue", &t, "/k", false, None);
        assert!(matches!(e, SshError::Protocol { .. }), "{e}");
    }

    #[test]
    fn an_agent_socket_problem_is_named_by_the_system() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(agent_socket_problem(&missing)
            .unwrap()
            .contains("No such file or directory"));
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            agent_socket_problem(&file).as_deref(),
            Some("it is not a socket")
        );
        // A socket nobody listens on any more.
        let sock = dir.path().join("sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        assert!(agent_socket_problem(&sock)
            .unwrap()
            .contains("Connection refused"));
    }
}
