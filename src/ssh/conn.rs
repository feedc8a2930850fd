//! One blocking SSH connection (libssh2 through the ssh2 crate): connect
//! with a deadline, verify the host key strictly before authenticating,
//! authenticate, and run commands with stdin, separate stdout/stderr capture
//! and a per-command deadline. Runs only on blocking threads; `ssh::SshHost`
//! is the async face.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, ErrorCode, MethodType, Session};

use crate::ssh::known_hosts::{self, KnownHosts, Verdict};
use crate::ssh::{Output, PresentedKey, SshError, Target};

/// libssh2's "would block" code.
const EAGAIN: i32 = -37;

/// A connected, verified, authenticated session.
pub(crate) struct Conn {
    sess: Session,
    fd: RawFd,
    label: String,
}

impl Conn {
    /// Connects, verifies the host key and authenticates, all within the
    /// connect timeout.
    pub(crate) fn open(t: &Target) -> Result<Conn, SshError> {
        let label = t.label();
        let addr = SocketAddr::new(t.address, t.port);
        let deadline = Instant::now() + t.connect_timeout;
        let tcp = TcpStream::connect_timeout(&addr, t.connect_timeout).map_err(|e| {
            if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock {
                SshError::Timeout {
                    host: label.clone(),
                    what: "connecting".into(),
                    after: t.connect_timeout,
                }
            } else {
                SshError::Connect {
                    host: label.clone(),
                    reason: e.to_string(),
                }
            }
        })?;
        let _ = tcp.set_nodelay(true);
        let fd = tcp.as_raw_fd();
        let mut sess = Session::new().map_err(|e| SshError::Protocol {
            host: label.clone(),
            reason: e.to_string(),
        })?;
        sess.set_tcp_stream(tcp);
        sess.set_timeout(remaining_ms(deadline));

        // Offer the host key algorithms in OpenSSH's order, the types
        // recorded for this host first, so the server presents the key
        // OpenSSH would be shown, and the verdict below is OpenSSH's.
        let name = known_hosts::lookup_name(&t.address.to_string(), t.port);
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
        match known.verify(&name, &key) {
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
        let auth = match &t.identity {
            Some(path) => {
                let passphrase = match &t.passphrase_env {
                    Some(var) => Some(
                        std::env::var(var)
                            .map_err(|_| SshError::Passphrase { var: var.clone() })?,
                    ),
                    None => None,
                };
                sess.userauth_pubkey_file(&t.user, None, path, passphrase.as_deref())
                    .map_err(|e| auth_error(&label, &t.user, Some(path.display().to_string()), e))
            }
            None => sess
                .userauth_agent(&t.user)
                .map_err(|e| auth_error(&label, &t.user, None, e)),
        };
        auth?;
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
        ready: impl FnOnce(),
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
        ready();
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
    fn again<T>(
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
    fn wait(&self, deadline: Instant) {
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
        .clamp(1, u32::MAX as u128) as u32
}

fn classify(label: &str, what: &str, e: ssh2::Error, after: Duration) -> SshError {
    if matches!(
        e.code(),
        ErrorCode::Session(-9) | ErrorCode::Session(EAGAIN)
    ) {
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

fn auth_error(label: &str, user: &str, identity: Option<String>, e: ssh2::Error) -> SshError {
    if e.code() == ErrorCode::Session(-9) {
        return SshError::Timeout {
            host: label.to_string(),
            what: "authenticating".into(),
            after: Duration::ZERO,
        };
    }
    SshError::Auth {
        host: label.to_string(),
        user: user.to_string(),
        identity,
        reason: e.message().to_string(),
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
