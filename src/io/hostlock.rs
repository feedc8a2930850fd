//! A lock on the hosts themselves, beside the controller's own lock file:
//! two controllers whose state directories differ (two configurations, two
//! machines) must never move one pair at once. For the length of a run,
//! each reachable host of the pair holds an exclusive `flock` on
//! `/run/lock/baton-SERVICE-on-ADDRESS.lock`, taken by a command that waits
//! on its own SSH session; it ends, and the kernel releases the lock, when
//! the run drops it, or when the controller dies and its connection closes.
//! A second controller is refused at once, naming the holder.

use std::time::Duration;

use crate::config::{Host, Pair, Traffic};
use crate::core::printable;
use crate::core::quote;
use crate::io::ssh::{Armed, SshError, SshHost, Target};

/// The longest a run may hold the hosts' locks (a run longer than this
/// loses them, never the other way round).
const HOLD: Duration = Duration::from_secs(24 * 3600);

/// The exit status the lock command gives when another holder has it.
const HELD: i32 = 75;

/// The locks of one run; released when dropped.
pub struct HostLocks {
    _held: Vec<Armed>,
}

/// Why the hosts could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum HostLockError {
    /// Another controller runs on the pair.
    #[error("host {host} of pair {pair} is in use by another baton run ({holder}); two controllers never move one pair at once: wait for it, or find that controller")]
    Held {
        pair: String,
        host: String,
        holder: String,
    },
    /// The lock could not be taken at all.
    #[error("cannot take the run's lock on host {host} ({path}): {reason}; baton needs `flock` (util-linux) on the hosts and a /run/lock the login user may write")]
    Failed {
        host: String,
        path: String,
        reason: String,
    },
}

/// The lock file's path on `host` for `pair`: named after the service (the
/// VIP, the DNS name, else the pair) and the host's own address, so that
/// every configuration that moves this service on this host meets it.
pub fn path(pair: &Pair, host: &Host) -> String {
    let service = match &pair.traffic {
        Traffic::Vip(v) => format!("vip-{}", v.address),
        Traffic::Dns(d) => format!("dns-{}", d.name.trim_end_matches('.')),
        Traffic::Command(_) => format!("pair-{}", pair.name),
        Traffic::Haproxy(h) => format!("haproxy-{}-{}", h.frontend.ip(), h.frontend.port()),
    };
    let safe = |s: String| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "/run/lock/baton-{}-on-{}.lock",
        safe(service),
        safe(host.address.to_string())
    )
}

/// The shell command that takes the lock on file descriptor 9, records its
/// holder beside it, says `LOCKED`, and holds it until its input ends; or
/// says `HELD` and who holds it, and exits 75.
pub fn command(path: &str, holder: &str) -> String {
    let f = quote::quote(path);
    let h = quote::quote(&format!("{path}.holder"));
    let info = quote::quote(&printable::escape(holder));
    format!(
        "PATH=\"$PATH:/usr/bin:/bin\"; umask 022; : >>{f} 2>/dev/null; exec 9<{f} || exit 70; \
         if ! flock -n 9; then printf 'HELD %s\\n' \"$(head -c 400 {h} 2>/dev/null | tr -d '\\n')\"; exit {HELD}; fi; \
         printf '%s\\n' {info} >{h}; echo LOCKED; exec cat >/dev/null"
    )
}

/// What the lock command's first answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The lock is ours.
    Locked,
    /// Another run holds it; who, as it wrote.
    Held(String),
    /// Anything else (it failed before answering).
    Other,
}

/// Reads the lock command's first line.
pub fn answer(first: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(first);
    let line = text.lines().next().unwrap_or_default();
    if line == "LOCKED" {
        Answer::Locked
    } else if let Some(who) = line.strip_prefix("HELD") {
        Answer::Held(match who.trim() {
            "" => "holder unknown".to_string(),
            w => w.to_string(),
        })
    } else {
        Answer::Other
    }
}

/// Who this run is, as the lock records it.
pub fn holder(operator: &str, command: &str, since: &str) -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into our buffer.
    #[allow(unsafe_code, reason = "gethostname(2): std cannot read the host name")]
    let rc = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    let host = if rc == 0 {
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).into_owned()
    } else {
        "unknown".to_string()
    };
    format!(
        "controller {host} pid {} by {operator} since {since}: baton {command}",
        std::process::id()
    )
}

/// Tries the lock on both hosts of `pair`, each on a session of its own,
/// at once (while the pair is observed). `keep` then decides with what the
/// observation found.
pub async fn try_both(pair: &Pair, holder: &str) -> [Result<Armed, HostLockError>; 2] {
    let [a, b] = &pair.hosts;
    let (la, lb) = tokio::join!(lock_one(pair, a, holder), lock_one(pair, b, holder));
    [la, lb]
}

/// The run's locks from `try_both`: every host SSH reaches (`reachable`,
/// from the observation) must be locked; a host it cannot reach cannot be
/// locked, nor moved, so its failure does not count.
pub fn keep(
    tried: [Result<Armed, HostLockError>; 2],
    reachable: [bool; 2],
) -> Result<HostLocks, HostLockError> {
    let mut held = Vec::new();
    for (r, reached) in tried.into_iter().zip(reachable) {
        match r {
            Ok(a) => held.push(a),
            // Whatever was taken is released as `held` drops.
            Err(e @ HostLockError::Held { .. }) => return Err(e),
            Err(e) if reached => return Err(e),
            Err(_) => {}
        }
    }
    Ok(HostLocks { _held: held })
}

async fn lock_one(pair: &Pair, host: &Host, holder: &str) -> Result<Armed, HostLockError> {
    let path = path(pair, host);
    let failed = |reason: String| HostLockError::Failed {
        host: host.name.clone(),
        path: path.clone(),
        reason,
    };
    let ssh = SshHost::connect(Target::new(host, &pair.ssh))
        .await
        .map_err(|e: SshError| failed(e.to_string()))?;
    let armed = ssh
        .arm(command(&path, holder), b"\n", HOLD)
        .await
        .map_err(|e| failed(e.to_string()))?;
    match answer(&armed.first) {
        Answer::Locked => Ok(armed),
        Answer::Held(who) => Err(HostLockError::Held {
            pair: pair.name.clone(),
            host: host.name.clone(),
            holder: who,
        }),
        Answer::Other => {
            let out = armed.fire(Vec::new()).await;
            Err(failed(match out {
                Ok(o) => format!(
                    "the lock command exited {}: {}",
                    o.status
                        .map_or("by a signal".to_string(), |c| c.to_string()),
                    printable::escape(o.stderr_text().trim())
                ),
                Err(e) => e.to_string(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_commands_answers() {
        assert_eq!(answer(b"LOCKED\n"), Answer::Locked);
        assert_eq!(
            answer(b"HELD controller ctl pid 7 by eve since t: baton apply web\n"),
            Answer::Held("controller ctl pid 7 by eve since t: baton apply web".into())
        );
        assert_eq!(answer(b"HELD \n"), Answer::Held("holder unknown".into()));
        assert_eq!(answer(b""), Answer::Other);
        assert_eq!(answer(b"sh: flock: not found\n"), Answer::Other);
    }

    #[test]
    fn the_holder_is_quoted_and_inert_in_the_command() {
        let c = command(
            "/run/lock/baton-vip-1.2.3.4-on-1.2.3.5.lock",
            "eve'; rm -rf /\n",
        );
        assert!(c.contains("'eve'\\''; rm -rf /\\n'"), "{c}");
        assert!(c.contains("flock -n 9"));
    }
}
