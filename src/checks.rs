//! Health checks: one attempt of a configured check against one host (HTTP(S)
//! pinned to the host's address, TCP connect, an authoritative DNS answer, a
//! command over SSH), with placeholders filled for that host. The retry
//! policy (successes, failures allowed, interval) lives with the callers.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Once;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::config::{Check, CheckKind, Host};
use crate::ssh::SshHost;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The check's name.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen, in a few words.
    pub detail: String,
    /// How long the attempt took.
    pub duration: Duration,
}

/// Fills `{address}` and `{host}` for a host. IPv6 addresses are bracketed
/// inside URLs.
pub fn fill(template: &str, host: &Host, in_url: bool) -> String {
    let address = match host.address {
        std::net::IpAddr::V6(a) if in_url => format!("[{a}]"),
        a => a.to_string(),
    };
    template
        .replace("{address}", &address)
        .replace("{host}", &host.name)
}

/// What a check does against `address`, where `host` must answer, with
/// its policy: for `baton plan` and the journal.
pub fn describe(check: &Check, host: &str, address: std::net::IpAddr) -> String {
    let target = Host {
        name: host.to_string(),
        address,
        ssh_port: 0,
    };
    let what = match &check.kind {
        CheckKind::Http {
            url,
            expect_status,
            expect_body,
            ..
        } => format!(
            "GET {} expecting {expect_status}{}",
            fill(url, &target, true),
            expect_body
                .as_ref()
                .map(|b| format!(" and a body containing {:?}", fill(b, &target, false)))
                .unwrap_or_default()
        ),
        CheckKind::Tcp { port } => format!("TCP connect to {}", SocketAddr::new(address, *port)),
        CheckKind::Dns {
            query,
            record_type,
            server,
            expect,
        } => format!(
            "ask {} for {query} {record_type}, expecting {}",
            fill(server, &target, false),
            fill(expect, &target, false)
        ),
        CheckKind::Command {
            command,
            expect_output,
        } => format!(
            "on {host}: $ {}{}",
            fill(command, &target, false),
            expect_output
                .as_ref()
                .map(|e| format!(" (output must contain {:?})", fill(e, &target, false)))
                .unwrap_or_default()
        ),
    };
    format!(
        "check {}: {what}; {} success(es) needed, {} failure(s) allowed, every {}",
        check.name,
        check.successes,
        check.failures_allowed,
        humantime::format_duration(check.interval)
    )
}

/// Runs one attempt of `check` against `host`. `ssh` is needed for command
/// checks only; without it they fail saying the host is unreachable.
pub async fn probe(check: &Check, host: &Host, ssh: Option<&SshHost>) -> Probe {
    let started = Instant::now();
    let (ok, detail) = match &check.kind {
        CheckKind::Http {
            url,
            expect_status,
            expect_body,
            ca_file,
        } => {
            let expect = Expect {
                status: *expect_status,
                body: expect_body.as_ref().map(|b| fill(b, host, false)),
            };
            http(
                &fill(url, host, true),
                host,
                expect,
                ca_file.as_deref(),
                check.timeout,
            )
            .await
        }
        CheckKind::Tcp { port } => tcp(SocketAddr::new(host.address, *port), check.timeout).await,
        CheckKind::Dns {
            query,
            record_type,
            server,
            expect,
        } => {
            dns(
                &fill(server, host, false),
                query,
                record_type,
                &fill(expect, host, false),
                check.timeout,
            )
            .await
        }
        CheckKind::Command {
            command,
            expect_output,
        } => match ssh {
            None => (false, "host unreachable over SSH".to_string()),
            Some(ssh) => {
                let expect = expect_output.as_ref().map(|e| fill(e, host, false));
                match ssh
                    .run_with_timeout(&fill(command, host, false), check.timeout)
                    .await
                {
                    Err(e) => (false, e.to_string()),
                    Ok(out) if !out.success() => (
                        false,
                        format!(
                            "exit {}: {}",
                            out.status.map_or("signal".into(), |s| s.to_string()),
                            first_line(&out.stderr_text())
                        ),
                    ),
                    Ok(out) => match expect {
                        Some(e) if !out.stdout_text().contains(&e) => (
                            false,
                            format!("output lacks {e:?}: {}", first_line(&out.stdout_text())),
                        ),
                        _ => (true, first_line(&out.stdout_text())),
                    },
                }
            }
        },
    };
    Probe {
        check: check.name.clone(),
        ok,
        detail,
        duration: started.elapsed(),
    }
}

fn first_line(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or_default();
    line.chars().take(120).collect()
}

static TLS: Once = Once::new();

/// What an HTTP answer must be.
struct Expect {
    status: u16,
    body: Option<String>,
}

async fn http(
    url: &str,
    host: &Host,
    expect: Expect,
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
) -> (bool, String) {
    let Expect {
        status: expect_status,
        body: expect_body,
    } = expect;
    TLS.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return (false, format!("bad url {url}: {e}")),
    };
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout);
    // Keep the service's name for the Host header and TLS, but connect to
    // this host's own address.
    if let Some(domain) = parsed.domain() {
        let port = parsed.port_or_known_default().unwrap_or(80);
        builder = builder.resolve(domain, SocketAddr::new(host.address, port));
    }
    if let Some(path) = ca_file {
        let cert = crate::readfile::bytes(path, crate::readfile::KEY)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()));
        match cert {
            Ok(c) => builder = builder.add_root_certificate(c),
            Err(e) => {
                return (
                    false,
                    format!("cannot use the CA file {}: {e}", path.display()),
                )
            }
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot build an HTTP client: {e}")),
    };
    let response = match client.get(parsed).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return (
                false,
                format!("no answer within {}", humantime::format_duration(timeout)),
            )
        }
        Err(e) => return (false, error_chain(&e)),
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status != expect_status {
        return (false, format!("status {status}, expected {expect_status}"));
    }
    match expect_body {
        Some(b) if !body.contains(&b) => {
            (false, format!("body lacks {b:?}: {}", first_line(&body)))
        }
        _ => (true, format!("{status} {}", first_line(&body))),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

async fn tcp(addr: SocketAddr, timeout: Duration) -> (bool, String) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => (
            false,
            format!(
                "no connection to {addr} within {}",
                humantime::format_duration(timeout)
            ),
        ),
        Ok(Err(e)) => (false, format!("{addr}: {e}")),
        Ok(Ok(_)) => (true, format!("{addr} accepts connections")),
    }
}

async fn dns(
    server: &str,
    query: &str,
    record_type: &str,
    expect: &str,
    timeout: Duration,
) -> (bool, String) {
    let server: SocketAddr = match server.parse().or_else(|_| {
        server
            .parse::<std::net::IpAddr>()
            .map(|ip| SocketAddr::new(ip, 53))
    }) {
        Ok(s) => s,
        Err(_) => return (false, format!("`{server}` is not a server address")),
    };
    let Ok(rtype) = RecordType::from_str(record_type) else {
        return (false, format!("unsupported record type {record_type}"));
    };
    match crate::dns::query(server, query, rtype, timeout).await {
        Err(e) => (false, e.to_string()),
        Ok(a)
            if a.values.iter().any(|v| {
                v == expect || v.trim_end_matches('.') == expect.trim_end_matches('.')
            }) =>
        {
            (true, a.values.join(" "))
        }
        Ok(a) => (false, format!("answer {:?} lacks {expect}", a.values)),
    }
}
