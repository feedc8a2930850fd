//! The benchmark client (`scripts/bench`): requests a URL and prints one
//! line per request attempt as it completes: `send_unix_us latency_us
//! outcome detail`, where outcome is the `host=` the page named, or `FAIL`
//! with the reason. Run it in the lab's client namespace while baton moves
//! the service. Three kinds of client:
//!
//! - `probe HOST:PORT RATE SECONDS [TIMEOUT_MS]`: requests at a fixed rate,
//!   a new TCP connection for every request (`Connection: close`);
//! - `probe --seq HOST:PORT RATE SECONDS [TIMEOUT_MS]`: one request at a
//!   time, a new connection each, the next sent when the last ended (at
//!   most RATE per second);
//! - `probe --pool N HOST:PORT RATE SECONDS [TIMEOUT_MS]`: N persistent
//!   HTTP/1.1 keep-alive connections, each sending its requests back to
//!   back (at most RATE per second per connection). A request that fails
//!   on a connection is printed as `FAIL` with the reason (`reset`, `eof`,
//!   `timeout`, ...), the connection is opened again and the request
//!   retried once; the retry's line (`retry=1` in its detail) counts its
//!   latency from the first attempt's send, so a retried request shows the
//!   whole wait its user saw.
//!
//! (an IPv6 address in brackets: `[fd00:198:18::160]:80`)

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

/// The `host=` a 200 page names.
fn host_of(text: &str) -> Result<String, String> {
    if !text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.0 200") {
        return Err(format!(
            "status: {}",
            text.lines().next().unwrap_or("(none)")
        ));
    }
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("host="))
        .map(str::to_string)
        .ok_or_else(|| "no host= in the page".to_string())
}

/// What an I/O error is, in one word where it has one.
fn kind(stage: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset => format!("{stage}:reset"),
        ConnectionRefused => format!("{stage}:refused"),
        BrokenPipe => format!("{stage}:broken_pipe"),
        _ => format!("{stage}: {e}"),
    }
}

async fn one(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let work = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| kind("connect", &e))?;
        s.set_nodelay(true).ok();
        s.write_all(b"GET / HTTP/1.0\r\nHost: probe\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| kind("write", &e))?;
        let mut buf = Vec::with_capacity(1024);
        s.read_to_end(&mut buf)
            .await
            .map_err(|e| kind("read", &e))?;
        host_of(&String::from_utf8_lossy(&buf))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("timeout after {} ms", timeout.as_millis())),
    }
}

/// One request on a kept-alive connection: the page's host, and whether
/// the server closes the connection after it.
async fn on(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(String, bool), String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
        .await
        .map_err(|e| kind("write", &e))?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.map_err(|e| kind("read", &e))?;
        if n == 0 {
            return Err("read:eof".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no content-length")?;
    let close = head.contains("connection: close");
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await.map_err(|e| kind("read", &e))?;
        if n == 0 {
            return Err("read:eof".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(buf);
    host_of(&text).map(|h| (h, close))
}

/// One kept-alive connection's requests until `end`, each printed.
async fn keep_alive(
    addr: SocketAddr,
    period: Duration,
    timeout: Duration,
    end: Instant,
    tx: mpsc::UnboundedSender<String>,
) {
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut next = Instant::now();
    while Instant::now() < end {
        tokio::time::sleep_until(next.into()).await;
        next = Instant::now() + period;
        let sent = now_us();
        let t0 = Instant::now();
        let mut retry = 0;
        loop {
            let attempt = async {
                if conn.is_none() {
                    let s = TcpStream::connect(addr)
                        .await
                        .map_err(|e| kind("connect", &e))?;
                    s.set_nodelay(true).ok();
                    conn = Some(s);
                }
                match conn.as_mut() {
                    Some(s) => on(s, &mut buf).await,
                    None => Err("no connection".into()),
                }
            };
            let r = match tokio::time::timeout(timeout, attempt).await {
                Ok(r) => r,
                Err(_) => Err(format!("timeout after {} ms", timeout.as_millis())),
            };
            let us = t0.elapsed().as_micros();
            match r {
                Ok((host, close)) => {
                    if close {
                        conn = None;
                    }
                    let _ = tx.send(format!("{sent} {us} {host} retry={retry}"));
                    break;
                }
                Err(e) => {
                    conn = None;
                    let _ = tx.send(format!("{sent} {us} FAIL {}", e.replace(' ', "_")));
                    if retry == 1 {
                        break;
                    }
                    retry = 1;
                }
            }
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: probe [--seq | --pool N] HOST:PORT RATE_PER_S SECONDS [TIMEOUT_MS]");
    std::process::exit(2);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut seq = false;
    let mut pool = 0usize;
    match args.first().map(String::as_str) {
        Some("--seq") => {
            seq = true;
            args.remove(0);
        }
        Some("--pool") if args.len() > 1 => {
            pool = args[1].parse().unwrap_or_else(|_| usage());
            args.drain(..2);
        }
        _ => {}
    }
    if args.len() < 3 {
        usage();
    }
    let addr: SocketAddr = args[0].parse().unwrap_or_else(|_| usage());
    let rate: u64 = args[1].parse().unwrap_or_else(|_| usage());
    let secs: f64 = args[2].parse().unwrap_or_else(|_| usage());
    let timeout = Duration::from_millis(
        args.get(3)
            .map_or(Some(3000), |t| t.parse().ok())
            .unwrap_or_else(|| usage()),
    );
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let printer = tokio::spawn(async move {
        let mut out = String::new();
        while let Some(line) = rx.recv().await {
            out.push_str(&line);
            out.push('\n');
        }
        print!("{out}");
    });
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    if pool > 0 {
        let mut all = Vec::new();
        for _ in 0..pool {
            all.push(tokio::spawn(keep_alive(
                addr,
                period,
                timeout,
                end,
                tx.clone(),
            )));
        }
        for t in all {
            let _ = t.await;
        }
    } else if seq {
        while Instant::now() < end {
            let next = Instant::now() + period;
            let sent = now_us();
            let t0 = Instant::now();
            let r = one(addr, timeout).await;
            let _ = tx.send(line(sent, t0, r));
            tokio::time::sleep_until(next.into()).await;
        }
    } else {
        let total = (secs * rate as f64) as u64;
        for i in 0..total {
            let due = start + period * i as u32;
            tokio::time::sleep_until(due.into()).await;
            let tx = tx.clone();
            tokio::spawn(async move {
                let sent = now_us();
                let t0 = Instant::now();
                let r = one(addr, timeout).await;
                let _ = tx.send(line(sent, t0, r));
            });
        }
    }
    drop(tx);
    let _ = printer.await;
}

fn line(sent: u128, t0: Instant, r: Result<String, String>) -> String {
    let us = t0.elapsed().as_micros();
    match r {
        Ok(host) => format!("{sent} {us} {host} -"),
        Err(e) => format!("{sent} {us} FAIL {}", e.replace(' ', "_")),
    }
}
