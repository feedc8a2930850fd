//! Jump hosts: reaching a host through one or two bastions, as OpenSSH's
//! ProxyJump does. Each bastion gets its own session, its host key
//! verified like any other and authenticated with the pair's key; a
//! direct-tcpip channel through it is joined to one end of a local socket
//! pair, and the other end carries the next session (the next bastion's,
//! or the target's own, whose host key is then verified end to end as
//! ever). A thread per hop moves the bytes both ways and ends, closing its
//! bastion session, when either side closes.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, ErrorCode};

use super::conn::{Conn, Stream};
use super::{SshError, Target};
use crate::config::Jump;

/// libssh2's "would block" code.
const EAGAIN: i32 = -37;

/// The stream to `t` through its jump hosts: every bastion connected and
/// verified in turn, by the deadline.
pub(super) fn tunnel(t: &Target, deadline: Instant) -> Result<UnixStream, SshError> {
    let mut carried: Option<UnixStream> = None;
    for (i, hop) in t.jump.iter().enumerate() {
        let ht = hop_target(t, hop);
        let conn = match carried.take() {
            None => Conn::open(&ht)?,
            Some(s) => Conn::over(&ht, Stream::Unix(s), deadline)?,
        };
        let (host, port) = match t.jump.get(i + 1) {
            Some(next) => (next.host.clone(), next.port),
            None => (t.host(), t.port),
        };
        carried = Some(forward(
            conn,
            (&host, port),
            (deadline, t.connect_timeout),
            &t.label(),
        )?);
    }
    carried.ok_or_else(|| SshError::Protocol {
        host: t.label(),
        reason: "no jump host to go through".into(),
    })
}

/// A bastion's target: its own address and port, the pair's user unless
/// the hop names one, and the pair's key, known_hosts and timeouts.
fn hop_target(t: &Target, hop: &Jump) -> Target {
    let (address, dial) = match hop.host.parse::<IpAddr>() {
        Ok(a) => (a, None),
        Err(_) => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), Some(hop.host.clone())),
    };
    Target {
        name: format!("jump host {}", hop.host),
        address,
        port: hop.port,
        user: hop.user.clone().unwrap_or_else(|| t.user.clone()),
        identity: t.identity.clone(),
        passphrase_env: t.passphrase_env.clone(),
        known_hosts: t.known_hosts.clone(),
        accept_new_host_keys: t.accept_new_host_keys,
        connect_timeout: t.connect_timeout,
        command_timeout: t.command_timeout,
        sudo: false,
        dial,
        jump: Vec::new(),
    }
}

/// Opens a channel from `via` to `host:port` and joins it to a socket
/// pair; returns the end the next session runs over.
fn forward(
    via: Conn,
    (host, port): (&str, u16),
    (deadline, timeout): (Instant, Duration),
    target: &str,
) -> Result<UnixStream, SshError> {
    let channel = via
        .again(deadline, || via.sess.channel_direct_tcpip(host, port, None))
        .map_err(|e| {
            if e.code() == ErrorCode::Session(EAGAIN) {
                SshError::Timeout {
                    host: target.to_string(),
                    what: format!("opening a connection to {host}:{port} through {}", via.label),
                    after: timeout,
                }
            } else {
                SshError::Connect {
                    host: target.to_string(),
                    reason: format!(
                        "{} would not open a connection to {host}:{port}: {} (its sshd must allow it: AllowTcpForwarding yes)",
                        via.label,
                        e.message()
                    ),
                }
            }
        })?;
    let io = |e: std::io::Error| SshError::Protocol {
        host: target.to_string(),
        reason: format!("cannot set up the jump host's tunnel: {e}"),
    };
    let (ours, theirs) = UnixStream::pair().map_err(io)?;
    theirs.set_nonblocking(true).map_err(io)?;
    std::thread::Builder::new()
        .name("baton-jump".into())
        .spawn(move || carry(via, channel, theirs))
        .map_err(io)?;
    Ok(ours)
}

/// Moves bytes between the local socket and the channel until either side
/// closes; then closes the channel (and, dropping `via`, its session).
fn carry(via: Conn, mut ch: Channel, mut local: UnixStream) {
    let mut up: Vec<u8> = Vec::new(); // from the local socket, to the channel
    let mut down: Vec<u8> = Vec::new(); // from the channel, to the local socket
    let mut buf = vec![0u8; 32 * 1024];
    let (mut local_eof, mut remote_eof) = (false, false);
    loop {
        let mut progress = false;
        if up.is_empty() && !local_eof {
            match local.read(&mut buf) {
                Ok(0) => local_eof = true,
                Ok(n) => {
                    up.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if !up.is_empty() {
            match ch.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        // The next session is gone: nobody is left to carry anything for.
        if local_eof && up.is_empty() {
            break;
        }
        // The far end closed and all it sent was handed on: nothing more
        // will come (and what the bastion still sends is not for us).
        if remote_eof && down.is_empty() {
            break;
        }
        if down.is_empty() && !remote_eof {
            match ch.read(&mut buf) {
                Ok(0) if ch.eof() => {
                    remote_eof = true;
                    let _ = local.shutdown(Shutdown::Write);
                }
                Ok(0) => {}
                Ok(n) => {
                    down.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if !down.is_empty() {
            match local.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if !progress {
            wait(&via, &local, local_eof, up.is_empty(), !down.is_empty());
        }
    }
    let _ = ch.close();
}

/// Waits until the local socket or the bastion's socket is ready for what
/// is pending, at most a second. A local socket at its end is not watched
/// (its hang-up would wake the wait at once, over and over).
fn wait(via: &Conn, local: &UnixStream, local_eof: bool, read_local: bool, write_local: bool) {
    let remote = match via.sess.block_directions() {
        BlockDirections::Outbound => libc::POLLOUT,
        BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
        BlockDirections::Inbound | BlockDirections::None => libc::POLLIN,
    };
    let mut local_events = 0;
    if read_local && !local_eof {
        local_events |= libc::POLLIN;
    }
    if write_local {
        local_events |= libc::POLLOUT;
    }
    let mut fds = [
        libc::pollfd {
            fd: via.fd,
            events: remote,
            revents: 0,
        },
        libc::pollfd {
            // A negative descriptor is skipped by poll(2).
            fd: if local_eof { -1 } else { local.as_raw_fd() },
            events: local_events,
            revents: 0,
        },
    ];
    let wait = Duration::from_secs(1).as_millis() as libc::c_int;
    // SAFETY: two valid pollfds on sockets this thread owns and keeps open.
    #[allow(unsafe_code, reason = "poll(2): std cannot wait for two raw sockets")]
    unsafe {
        libc::poll(fds.as_mut_ptr(), 2, wait);
    }
}
