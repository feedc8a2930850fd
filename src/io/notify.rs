//! Sending one notification, bounded: a local command (`sh -c`, in a
//! process group of its own, with a minimal environment and the event on
//! stdin only), killed with its whole group when it outlives the timeout;
//! or a webhook (one POST of the event as JSON, connect and total time
//! bounded, no redirect followed). Decides nothing: what is sent and when
//! is `exec::notify`'s. A failure says what happened in words that never
//! hold the webhook's URL beyond its host.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::WebhookUrl;
use crate::core::printable;

/// What a notifier's caller learns when it was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not done within the timeout: the command was killed with its
    /// process group, the request given up.
    Timeout(Duration),
    /// The command could not be started.
    Spawn(String),
    /// The command ended with a non-zero status, or by a signal.
    Exit {
        /// Its exit status.
        status: Option<i32>,
        /// The signal that ended it.
        signal: Option<i32>,
        /// The start of what it wrote on stderr.
        stderr: String,
    },
    /// The webhook answered with a status that is not 2xx.
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// No answer from the webhook (refused, no route, TLS).
    Request(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout(t) => write!(
                f,
                "timed out after {}, given up (a command is killed with its process group)",
                humantime::format_duration(*t)
            ),
            Failure::Spawn(e) => write!(f, "cannot start it: {e}"),
            Failure::Exit {
                status,
                signal,
                stderr,
            } => {
                match (status, signal) {
                    (Some(s), _) => write!(f, "exit {s}")?,
                    (None, Some(sig)) => write!(f, "killed by signal {sig}")?,
                    (None, None) => write!(f, "ended without a status")?,
                }
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            Failure::Status { status, body } => {
                write!(f, "HTTP {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Failure::Request(e) => write!(f, "no answer: {e}"),
        }
    }
}

/// At most this much of a command's stderr or a webhook's answer is kept.
const KEEP: usize = 300;

/// The variables a notify command keeps from baton's environment; every
/// other is left out (a passphrase's variable above all).
const KEPT_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// Runs `command` (`sh -c`) with `body` on its stdin, within `timeout`.
/// `Ok` with `exit 0` when it exited 0.
pub async fn command(command: &str, body: &[u8], timeout: Duration) -> Result<String, Failure> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in KEPT_ENV {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    let mut child = cmd.spawn().map_err(|e| Failure::Spawn(e.to_string()))?;
    let group = child.id();
    // What it writes on stderr, read as it comes: once it exits, a
    // process it left behind holding the pipe is not waited for.
    let err = Arc::new(Mutex::new(Vec::new()));
    let reader = child.stderr.take().map(|mut pipe| {
        let err = Arc::clone(&err);
        tokio::spawn(async move {
            let mut chunk = [0u8; 1024];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut e) = err.lock() {
                    if e.len() < 4 * KEEP {
                        e.extend_from_slice(&chunk[..n]);
                    }
                }
            }
        })
    });
    let mut stdin = child.stdin.take();
    let ran = tokio::time::timeout(timeout, async {
        if let Some(pipe) = stdin.as_mut() {
            // A command that does not read its stdin may close it: that
            // is its business, its exit status says how it went.
            let _ = pipe.write_all(body).await;
            let _ = pipe.shutdown().await;
        }
        drop(stdin.take());
        child.wait().await
    })
    .await;
    let status = match ran {
        Err(_) => {
            kill_group(group);
            if let Some(r) = reader {
                r.abort();
            }
            return Err(Failure::Timeout(timeout));
        }
        Ok(Err(e)) => {
            kill_group(group);
            return Err(Failure::Spawn(e.to_string()));
        }
        Ok(Ok(status)) => status,
    };
    if let Some(r) = reader {
        // Whatever it wrote before it exited is in the pipe already.
        if tokio::time::timeout(Duration::from_millis(100), r)
            .await
            .is_err()
        {
            tracing::debug!("a notify command left a process holding its stderr");
        }
    }
    let stderr = err
        .lock()
        .map(|e| short(&String::from_utf8_lossy(&e)))
        .unwrap_or_default();
    if status.success() {
        return Ok("exit 0".to_string());
    }
    use std::os::unix::process::ExitStatusExt;
    Err(Failure::Exit {
        status: status.code(),
        signal: status.signal(),
        stderr,
    })
}

/// Kills the process group `group` (the command and whatever it started).
fn kill_group(group: Option<u32>) {
    let Some(pgid) = group.and_then(|g| libc::pid_t::try_from(g).ok()) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    #[allow(
        unsafe_code,
        reason = "kill(2) of a process group: std kills the child alone"
    )]
    // SAFETY: kill(2) on the process group of a child this process started
    // in a group of its own (`process_group(0)`: its id is the group's),
    // with a constant signal; no memory is shared.
    let _ = unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// POSTs `body` (JSON) to the webhook within `timeout` (connecting and
/// the whole exchange). `Ok` with `HTTP STATUS` for a 2xx answer.
pub async fn webhook(
    url: &WebhookUrl,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<String, Failure> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Request(hidden(url, &chain(&e.without_url()))))?;
    let sent = client
        .post(url.secret())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err(Failure::Timeout(timeout)),
        Err(e) => return Err(Failure::Request(hidden(url, &chain(&e.without_url())))),
    };
    let status = response.status();
    let answer = match response.text().await {
        Ok(t) => t,
        Err(e) if e.is_timeout() => return Err(Failure::Timeout(timeout)),
        Err(_) => String::new(),
    };
    if status.is_success() {
        Ok(format!("HTTP {}", status.as_u16()))
    } else {
        Err(Failure::Status {
            status: status.as_u16(),
            body: hidden(url, &short(&answer)),
        })
    }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// `text` without the webhook's URL or what follows its host (an answer
/// or an error that quotes it).
fn hidden(url: &WebhookUrl, text: &str) -> String {
    let whole = url.secret();
    let mut out = text.replace(whole, &url.shown());
    if let Some((_, rest)) = whole.split_once("://") {
        if let Some(at) = rest.find(['/', '?', '#']) {
            let tail = &rest[at..];
            if tail.len() > 1 {
                out = out.replace(tail, "/…");
            }
        }
    }
    out
}

/// The first [`KEEP`] characters of `text`, on one line.
fn short(text: &str) -> String {
    let text = text.trim();
    let cut: String = text.chars().take(KEEP).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    printable::escape(&format!("{cut}{more}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::AsyncBufReadExt;

    #[tokio::test]
    async fn a_command_gets_the_event_on_stdin_and_a_minimal_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("got");
        std::env::set_var("BATON_NOTIFY_TEST_SECRET", "hunter2");
        let cmd = format!(
            "cat > {0}; env >> {0}",
            crate::core::quote::quote(&out.display().to_string())
        );
        let r = command(&cmd, b"{\"schema\":1}\n", Duration::from_secs(5)).await;
        assert_eq!(r, Ok("exit 0".to_string()));
        let got = std::fs::read_to_string(&out).expect("written");
        assert!(got.starts_with("{\"schema\":1}\n"), "{got}");
        assert!(!got.contains("hunter2"), "{got}");
        assert!(got.contains("PATH="), "{got}");
    }

    #[tokio::test]
    async fn a_failing_command_says_its_status_and_stderr() {
        let r = command(
            "echo 'no pager here' >&2; exit 3",
            b"{}",
            Duration::from_secs(5),
        )
        .await;
        let e = r.expect_err("fails");
        assert_eq!(e.to_string(), "exit 3: no pager here");
        let e = command("kill -TERM $$", b"{}", Duration::from_secs(5))
            .await
            .expect_err("killed");
        assert_eq!(e.to_string(), "killed by signal 15");
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_with_its_process_group_at_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        // The command starts a child of its own that would outlive it.
        let cmd = format!(
            "sleep 30 & echo $! > {}; wait",
            crate::core::quote::quote(&pidfile.display().to_string())
        );
        let started = Instant::now();
        let r = command(&cmd, b"{}", Duration::from_millis(300)).await;
        assert_eq!(r, Err(Failure::Timeout(Duration::from_millis(300))));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid written")
            .trim()
            .parse()
            .expect("a pid");
        // The grandchild is gone too (reaped by init, or a zombie at most).
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = state
                .split(") ")
                .nth(1)
                .is_some_and(|s| !s.starts_with('Z'));
            if !alive {
                break;
            }
            assert!(
                Instant::now() < until,
                "the command's sleep outlived it: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn a_command_that_leaves_a_process_behind_is_not_waited_for() {
        let started = Instant::now();
        let r = command("sleep 3 >&2 & exit 0", b"{}", Duration::from_secs(5)).await;
        assert_eq!(r, Ok("exit 0".to_string()));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    /// A one-request HTTP server on 127.0.0.1: answers with `status` after
    /// `delay`, and hands back the request it got.
    async fn server(status: u16, delay: Duration) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let handle = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut reader = tokio::io::BufReader::new(stream);
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await.expect("read");
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().expect("length");
                }
                request.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await.expect("body");
            request.push_str(&String::from_utf8_lossy(&body));
            tokio::time::sleep(delay).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: 13\r\nconnection: close\r\n\r\ninvalid_token"
            );
            let _ = reader.get_mut().write_all(answer.as_bytes()).await;
            request
        });
        (format!("http://{addr}/services/T0/B0/s3cr3t"), handle)
    }

    #[tokio::test]
    async fn a_webhook_gets_one_post_of_the_json() {
        let (url, got) = server(200, Duration::ZERO).await;
        let r = webhook(
            &WebhookUrl::new(url),
            b"{\"text\":\"hi\"}".to_vec(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r, Ok("HTTP 200".to_string()));
        let request = got.await.expect("served");
        assert!(
            request.starts_with("POST /services/T0/B0/s3cr3t HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("content-type: application/json\r\n"),
            "{request}"
        );
        assert!(request.ends_with("{\"text\":\"hi\"}"), "{request}");
    }

    #[tokio::test]
    async fn a_webhook_answering_500_or_hanging_fails_in_bounded_time_without_its_token() {
        let (url, _got) = server(500, Duration::ZERO).await;
        let e = webhook(
            &WebhookUrl::new(url),
            b"{}".to_vec(),
            Duration::from_secs(5),
        )
        .await
        .expect_err("500");
        assert_eq!(e.to_string(), "HTTP 500: invalid_token");
        let (url, _got) = server(200, Duration::from_secs(10)).await;
        let started = Instant::now();
        let e = webhook(
            &WebhookUrl::new(url),
            b"{}".to_vec(),
            Duration::from_millis(300),
        )
        .await
        .expect_err("hangs");
        assert_eq!(e, Failure::Timeout(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(2));
        // Nobody listens: the error names neither the path nor the token.
        let e = webhook(
            &WebhookUrl::new("http://127.0.0.1:9/services/T0/B0/s3cr3t".into()),
            b"{}".to_vec(),
            Duration::from_secs(2),
        )
        .await
        .expect_err("refused");
        let text = e.to_string();
        assert!(
            !text.contains("s3cr3t") && !text.contains("/services"),
            "{text}"
        );
    }

    #[test]
    fn hidden_removes_the_url_and_its_tail() {
        let url = WebhookUrl::new("https://hooks.example/services/T0/s3cr3t?x=1".into());
        assert_eq!(
            hidden(
                &url,
                "bad https://hooks.example/services/T0/s3cr3t?x=1 and /services/T0/s3cr3t?x=1"
            ),
            "bad https://hooks.example/… and /…"
        );
    }
}
