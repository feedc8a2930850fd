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
pub use crate::core::template::{describe, fill};
use crate::io::ssh::SshHost;

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
                &crate::core::template::fill_server(server, host),
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
    let line = s.trim().lines().next().unwrap_or_default().trim_end();
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
        let cert = crate::io::readfile::bytes(path, crate::io::readfile::KEY)
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
    match crate::io::dns::query(server, query, rtype, timeout).await {
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

#[cfg(test)]
mod tests {
    //! The probes against real listeners on the loopback (127.0.0.0/8 is
    //! all loopback on Linux: two "hosts" may listen on the same port).

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    fn host(name: &str, address: &str) -> Host {
        Host {
            name: name.into(),
            address: address.parse().unwrap(),
            ssh_port: 22,
        }
    }

    fn check(kind: CheckKind, timeout: Duration) -> Check {
        Check {
            name: "page".into(),
            kind,
            role: crate::config::CheckRole::Any,
            successes: 1,
            failures_allowed: 0,
            interval: Duration::from_millis(10),
            timeout,
        }
    }

    fn http(url: &str, status: u16, body: Option<&str>) -> Check {
        check(
            CheckKind::Http {
                url: url.into(),
                expect_status: status,
                expect_body: body.map(String::from),
                ca_file: None,
            },
            Duration::from_secs(5),
        )
    }

    /// An HTTP server at `listener` answering every request with `status`
    /// and `body`; each request's head is sent to the receiver.
    fn serve(listener: TcpListener, status: u16, body: String) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (tx, body) = (tx.clone(), body.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nLocation: http://elsewhere.test/\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        rx
    }

    async fn server(status: u16, body: &str) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        (at, serve(listener, status, body.to_string()))
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    #[test]
    fn placeholders_are_filled_and_ipv6_is_bracketed_only_in_urls() {
        let v6 = host("green", "2001:db8::12");
        assert_eq!(
            fill("http://{address}:8080/{host}?h={host}", &v6, true),
            "http://[2001:db8::12]:8080/green?h=green"
        );
        assert_eq!(fill("{address}:53", &v6, false), "2001:db8::12:53");
        let v4 = host("blue", "192.0.2.11");
        assert_eq!(
            fill("http://{address}/{address}", &v4, true),
            "http://192.0.2.11/192.0.2.11"
        );
        assert_eq!(
            fill("{hostname} {Host} {}", &v4, false),
            "{hostname} {Host} {}"
        );
    }

    #[test]
    fn the_first_line_is_trimmed_and_bounded() {
        assert_eq!(first_line("\n  ok  \nsecond"), "ok");
        assert_eq!(first_line(""), "");
        assert_eq!(first_line(&"é".repeat(300)).chars().count(), 120);
    }

    #[tokio::test]
    async fn a_matching_status_and_body_pass_with_the_host_filled_into_the_body() {
        let (at, mut rx) = server(200, "served by blue\nmore").await;
        let url = format!("http://{{address}}:{}/health", at.port());
        let p = probe(
            &http(&url, 200, Some("by {host}")),
            &host("blue", "127.0.0.1"),
            None,
        )
        .await;
        assert!(p.ok, "{p:?}");
        assert_eq!(p.check, "page");
        assert_eq!(p.detail, "200 served by blue");
        let head = rx.recv().await.unwrap();
        assert!(head.starts_with("GET /health HTTP/1.1\r\n"), "{head}");
        // Another host's name is not in the body: it fails.
        let p = probe(
            &http(&url, 200, Some("by {host}")),
            &host("green", "127.0.0.1"),
            None,
        )
        .await;
        assert!(!p.ok);
        assert_eq!(p.detail, "body lacks \"by green\": served by blue");
    }

    #[tokio::test]
    async fn another_status_fails_and_redirects_are_not_followed() {
        let (at, _rx) = server(503, "down").await;
        let url = format!("http://{{address}}:{}/", at.port());
        let p = probe(&http(&url, 200, None), &host("blue", "127.0.0.1"), None).await;
        assert!(!p.ok);
        assert_eq!(p.detail, "status 503, expected 200");
        let (at, mut rx) = server(302, "").await;
        let url = format!("http://{{address}}:{}/", at.port());
        let p = probe(&http(&url, 200, None), &host("blue", "127.0.0.1"), None).await;
        assert_eq!(p.detail, "status 302, expected 200");
        let p = probe(&http(&url, 302, None), &host("blue", "127.0.0.1"), None).await;
        assert!(p.ok, "{p:?}");
        rx.recv().await.unwrap();
        rx.recv().await.unwrap();
        assert!(rx.try_recv().is_err(), "the redirect was not followed");
    }

    #[tokio::test]
    async fn a_named_url_keeps_its_host_header_but_goes_to_each_hosts_own_address() {
        // Two hosts on the same port: 127.0.0.1 and 127.0.0.2.
        let one = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = one.local_addr().unwrap().port();
        let two = TcpListener::bind(("127.0.0.2", port)).await.unwrap();
        let mut rx_one = serve(one, 200, "i am one".into());
        let mut rx_two = serve(two, 200, "i am two".into());
        // The name does not resolve anywhere: only the pinning reaches it.
        let url = format!("http://www.service.invalid:{port}/health");
        let p = probe(
            &http(&url, 200, Some("two")),
            &host("green", "127.0.0.2"),
            None,
        )
        .await;
        assert!(p.ok, "{p:?}");
        let head = rx_two.recv().await.unwrap();
        assert_eq!(
            header(&head, "host"),
            Some(format!("www.service.invalid:{port}").as_str())
        );
        assert!(rx_one.try_recv().is_err(), "nothing went to the other host");
        let p = probe(
            &http(&url, 200, Some("one")),
            &host("blue", "127.0.0.1"),
            None,
        )
        .await;
        assert!(p.ok, "{p:?}");
        assert!(rx_one.recv().await.is_some());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        // Accepts, reads, never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut c = http(&format!("http://{{address}}:{}/", at.port()), 200, None);
        c.timeout = Duration::from_millis(100);
        let started = std::time::Instant::now();
        let p = probe(&c, &host("blue", "127.0.0.1"), None).await;
        assert!(!p.ok);
        assert_eq!(p.detail, "no answer within 100ms");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    /// A port on the loopback nobody listens on.
    async fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_refused_connection_says_why_through_the_error_chain() {
        let port = closed_port().await;
        let url = format!("http://{{address}}:{port}/");
        let p = probe(&http(&url, 200, None), &host("blue", "127.0.0.1"), None).await;
        assert!(!p.ok);
        assert!(
            p.detail.to_lowercase().contains("connection refused"),
            "{}",
            p.detail
        );
        let p = probe(
            &http("http://[::1", 200, None),
            &host("blue", "127.0.0.1"),
            None,
        )
        .await;
        assert!(p.detail.starts_with("bad url http://[::1"), "{}", p.detail);
    }

    #[tokio::test]
    async fn an_unusable_ca_file_fails_the_check_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // Missing, or not a regular file (config validation only looked
        // once; the file is read again at each attempt).
        for path in [dir.path().join("missing.pem"), dir.path().to_path_buf()] {
            let c = check(
                CheckKind::Http {
                    url: "https://{address}/".into(),
                    expect_status: 200,
                    expect_body: None,
                    ca_file: Some(path.clone()),
                },
                Duration::from_secs(1),
            );
            let p = probe(&c, &host("blue", "127.0.0.1"), None).await;
            assert!(!p.ok);
            assert!(
                p.detail
                    .starts_with(&format!("cannot use the CA file {}", path.display())),
                "{}",
                p.detail
            );
        }
    }

    #[tokio::test]
    async fn tcp_accepts_or_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tcp = |port| check(CheckKind::Tcp { port }, Duration::from_secs(2));
        let p = probe(&tcp(port), &host("blue", "127.0.0.1"), None).await;
        assert!(p.ok);
        assert_eq!(p.detail, format!("127.0.0.1:{port} accepts connections"));
        // The port of the host's own address: not on 127.0.0.2.
        let p = probe(&tcp(port), &host("green", "127.0.0.2"), None).await;
        assert!(!p.ok);
        assert!(
            p.detail.starts_with(&format!("127.0.0.2:{port}: ")),
            "{}",
            p.detail
        );
        drop(listener);
        let p = probe(&tcp(closed_port().await), &host("blue", "127.0.0.1"), None).await;
        assert!(!p.ok);
    }

    #[tokio::test]
    async fn a_command_check_without_a_session_fails_as_unreachable() {
        let c = check(
            CheckKind::Command {
                command: "true".into(),
                expect_output: None,
            },
            Duration::from_secs(1),
        );
        let p = probe(&c, &host("blue", "127.0.0.1"), None).await;
        assert!(!p.ok);
        assert_eq!(p.detail, "host unreachable over SSH");
    }

    fn dns_check(server: &str, record_type: &str, expect: &str) -> Check {
        check(
            CheckKind::Dns {
                query: "www.example.test.".into(),
                record_type: record_type.into(),
                server: server.into(),
                expect: expect.into(),
            },
            Duration::from_secs(2),
        )
    }

    #[tokio::test]
    async fn a_dns_check_needs_an_address_and_a_known_record_type() {
        let blue = host("blue", "192.0.2.11");
        let p = probe(&dns_check("ns.example.test", "A", "x"), &blue, None).await;
        assert_eq!(p.detail, "`ns.example.test` is not a server address");
        let p = probe(&dns_check("{address}", "BOGUS", "x"), &blue, None).await;
        assert_eq!(p.detail, "unsupported record type BOGUS");
    }

    /// An authoritative DNS server on the loopback answering every question
    /// with `values` (A addresses, or a CNAME target when not an address).
    async fn dns_server(values: &'static [&'static str]) -> SocketAddr {
        use hickory_proto::op::{Message, MessageType};
        use hickory_proto::rr::rdata::{A, CNAME};
        use hickory_proto::rr::{Name, RData, Record};
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let request = Message::from_vec(&buf[..len]).unwrap();
                let mut response = Message::response(request.metadata.id, request.metadata.op_code);
                response.metadata.message_type = MessageType::Response;
                response.metadata.authoritative = true;
                response.queries = request.queries.clone();
                let name = request.queries[0].name().clone();
                for v in values {
                    let data = match v.parse() {
                        Ok(a) => RData::A(A(a)),
                        Err(_) => RData::CNAME(CNAME(Name::from_ascii(v).unwrap())),
                    };
                    response
                        .answers
                        .push(Record::from_rdata(name.clone(), 60, data));
                }
                let bytes = response.to_vec().unwrap();
                socket.send_to(&bytes, from).await.unwrap();
            }
        });
        at
    }

    #[tokio::test]
    async fn a_dns_check_passes_when_the_expected_value_is_among_the_answers() {
        let at = dns_server(&["127.0.0.1", "192.0.2.99"]).await;
        let server = format!("{{address}}:{}", at.port());
        let blue = host("blue", "127.0.0.1");
        // `{address}` filled in both the server and the expected value.
        let p = probe(&dns_check(&server, "A", "{address}"), &blue, None).await;
        assert!(p.ok, "{p:?}");
        assert_eq!(p.detail, "127.0.0.1 192.0.2.99");
        let p = probe(&dns_check(&server, "A", "192.0.2.1"), &blue, None).await;
        assert!(!p.ok);
        assert_eq!(
            p.detail,
            "answer [\"127.0.0.1\", \"192.0.2.99\"] lacks 192.0.2.1"
        );
        // A name matches with or without its final dot.
        let at = dns_server(&["web.example.test."]).await;
        let server = format!("127.0.0.1:{}", at.port());
        for expect in ["web.example.test", "web.example.test."] {
            let p = probe(&dns_check(&server, "CNAME", expect), &blue, None).await;
            assert!(p.ok, "{expect}: {p:?}");
        }
    }
}
