//! The benchmark client (`scripts/bench`): requests a URL at a fixed rate,
//! a new TCP connection for every request, and prints one line per request
//! as it completes: `send_unix_us latency_us outcome detail`, where outcome
//! is the `host=` the page named, or `FAIL` with the reason. Run it in the
//! lab's client namespace while baton moves the service.
//!
//! Usage: probe HOST:PORT RATE_PER_S SECONDS [TIMEOUT_MS]
//! (an IPv6 address in brackets: `[fd00:198:18::160]:80`)

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

async fn one(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let work = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).ok();
        s.write_all(b"GET / HTTP/1.0\r\nHost: probe\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(1024);
        s.read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&buf);
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
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("timeout after {} ms", timeout.as_millis())),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: probe HOST:PORT RATE_PER_S SECONDS [TIMEOUT_MS]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("HOST:PORT ([IPV6]:PORT)");
    let rate: u64 = args[2].parse().expect("rate");
    let secs: f64 = args[3].parse().expect("seconds");
    let timeout = Duration::from_millis(args.get(4).map_or(3000, |t| t.parse().expect("ms")));
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let total = (secs * rate as f64) as u64;
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
    for i in 0..total {
        let due = start + period * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let tx = tx.clone();
        tokio::spawn(async move {
            let sent = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros();
            let t0 = Instant::now();
            let r = one(addr, timeout).await;
            let us = t0.elapsed().as_micros();
            let line = match r {
                Ok(host) => format!("{sent} {us} {host} -"),
                Err(e) => format!("{sent} {us} FAIL {}", e.replace(' ', "_")),
            };
            let _ = tx.send(line);
        });
    }
    drop(tx);
    let _ = printer.await;
}
