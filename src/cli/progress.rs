//! How a run's progress is shown: one JSON object per line (`--json`), one
//! plain line per step when stdout is not a terminal (cron, systemd,
//! pipes), or on a terminal the same lines with a live block under them
//! that shows every pair in flight, its step and how long it has taken,
//! redrawn a few times a second. While a live block is drawn, log lines
//! (tracing, on stderr) are written above it, so it stays whole.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::core::cycle::Outcome;
use crate::exec::run::{Event, Progress, Stage, State};

/// How often the live block is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// The board of the live printer drawing now, if any: log lines go above
/// its block.
static LIVE: Mutex<Option<Arc<Mutex<Board>>>> = Mutex::new(None);

/// One log line on its way to stderr (`log_writer`): collected whole, then
/// written when tracing is done with it.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let live = LIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut err = std::io::stderr().lock();
        match live {
            Some(board) => {
                // Erase the block, write the line where it was, draw the
                // block again under it.
                let mut b = lock(&board);
                erase(&mut b);
                let _ = err.write_all(&self.0);
                let _ = err.flush();
                redraw(&mut b, &[]);
            }
            None => {
                let _ = err.write_all(&self.0);
            }
        }
    }
}

/// The writer for tracing's output: stderr, above the live block when one
/// is drawn.
pub fn log_writer() -> LogLine {
    LogLine(Vec::new())
}

/// The three ways of showing progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One JSON object per line.
    Json,
    /// One line per step.
    Plain,
    /// Plain lines plus a live block (a terminal).
    Live,
}

impl Mode {
    /// `--json` wins; else live on a terminal (unless `TERM=dumb` or
    /// `NO_COLOR`-style opt-out `BATON_PLAIN=1`), plain otherwise.
    pub fn detect(json: bool) -> Mode {
        if json {
            return Mode::Json;
        }
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb")
            || std::env::var_os("BATON_PLAIN").is_some_and(|v| !v.is_empty());
        if std::io::stdout().is_terminal() && !dumb {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// What the live block knows about one pair in flight.
struct Running {
    step: &'static str,
    host: String,
    step_started: Instant,
    started: Instant,
    /// A long wait in the step: until when (as shown) and when that is.
    waits: Option<(String, Instant)>,
}

#[derive(Default)]
struct Board {
    /// Pairs in flight, by name.
    running: BTreeMap<String, Running>,
    /// Pairs that ended, by outcome.
    ended: BTreeMap<Outcome, usize>,
    /// How many pairs this command covers (0: unknown).
    total: usize,
    /// Lines of the block drawn last (to erase it before drawing again).
    drawn: usize,
    started: Option<Instant>,
}

/// Shows progress events; the CLI hands it to the executor.
pub struct Printer {
    mode: Mode,
    board: Arc<Mutex<Board>>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Printer {
    /// A printer for `total` pairs (0 when unknown) in the given mode.
    pub fn new(mode: Mode, total: usize) -> Printer {
        let board = Arc::new(Mutex::new(Board {
            total,
            started: Some(Instant::now()),
            ..Board::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = (mode == Mode::Live).then(|| {
            let (board, stop) = (board.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(TICK);
                    let mut b = lock(&board);
                    if !b.running.is_empty() {
                        redraw(&mut b, &[]);
                    }
                }
            })
        });
        if mode == Mode::Live {
            *LIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(board.clone());
        }
        Printer {
            mode,
            board,
            stop,
            ticker,
        }
    }

    /// Ends the live block (erases it) so a summary can follow.
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if self.mode == Mode::Live {
            // The board first: a log line written meanwhile waits for it,
            // then finds no block to go above.
            let mut b = lock(&self.board);
            *LIVE.lock().unwrap_or_else(|p| p.into_inner()) = None;
            b.running.clear();
            erase(&mut b);
        }
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    board.lock().unwrap_or_else(|p| p.into_inner())
}

/// When a wait ends, for the eye: the time of day of its RFC 3339
/// timestamp (`2026-11-30T21:05:03.120Z` → `21:05:03Z`), with the date
/// when the wait is longer than 12 hours (`2026-12-01 21:05:03Z`); the
/// whole timestamp when it is not one.
fn clock(rfc3339: &str, wait_ms: u64) -> String {
    match rfc3339.split_once('T') {
        Some((date, time)) if time.len() >= 8 => {
            if wait_ms > 12 * 3600 * 1000 {
                format!("{date} {}Z", &time[..8])
            } else {
                format!("{}Z", &time[..8])
            }
        }
        _ => rfc3339.to_string(),
    }
}

/// The plain line of an event, if it has one; text from hosts and hooks
/// in its detail has its control characters escaped.
fn plain_line(e: &Event) -> Option<String> {
    plain_text(e).map(|l| crate::core::printable::escape(&l))
}

fn plain_text(e: &Event) -> Option<String> {
    if e.step == Stage::Run {
        Some(format!(
            "{}  {}: {}",
            e.pair,
            e.state.name().to_uppercase(),
            e.detail
        ))
    } else if e.state == State::Begin {
        (e.step == Stage::Recover).then(|| format!("{}  recover  {}", e.pair, e.detail))
    } else if e.state == State::Wait {
        Some(format!(
            "{:<10} {:<18} {:<22} {:>7}   wait   until {}: {}",
            e.pair,
            e.step.name(),
            e.host,
            "",
            e.until
                .as_deref()
                .map_or("?".to_string(), |u| clock(u, e.duration_ms)),
            e.detail
        ))
    } else {
        let secs = e.duration_ms as f64 / 1000.0;
        Some(format!(
            "{:<10} {:<18} {:<22} {:>7.2}s  {:<6} {}",
            e.pair,
            e.step.name(),
            e.host,
            secs,
            e.state.name(),
            e.detail
        ))
    }
}

impl Progress for Printer {
    fn event(&self, e: &Event) {
        match self.mode {
            Mode::Json => {
                if let Ok(s) = serde_json::to_string(e) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{s}");
                    let _ = out.flush();
                }
            }
            Mode::Plain => {
                if let Some(line) = plain_line(e) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            Mode::Live => {
                let mut b = lock(&self.board);
                let now = Instant::now();
                if let (Stage::Run, State::Ended(outcome)) = (e.step, e.state) {
                    b.running.remove(&e.pair);
                    *b.ended.entry(outcome).or_default() += 1;
                } else if e.state == State::Begin {
                    let started = b.running.get(&e.pair).map_or(now, |r| r.started);
                    b.running.insert(
                        e.pair.clone(),
                        Running {
                            step: e.step.name(),
                            host: e.host.clone(),
                            step_started: now,
                            started,
                            waits: None,
                        },
                    );
                } else if e.state == State::Wait {
                    if let Some(r) = b.running.get_mut(&e.pair) {
                        r.waits = Some((
                            e.until
                                .as_deref()
                                .map_or("?".to_string(), |u| clock(u, e.duration_ms)),
                            now + Duration::from_millis(e.duration_ms),
                        ));
                    }
                } else if matches!(e.state, State::Ok | State::Failed) {
                    // The step ended: so did any wait in it, early or not.
                    if let Some(r) = b.running.get_mut(&e.pair) {
                        r.waits = None;
                    }
                }
                let lines: Vec<String> = plain_line(e).into_iter().collect();
                redraw(&mut b, &lines);
            }
        }
    }
}

/// Moves the cursor back over the block drawn last and clears it.
fn erase(b: &mut Board) {
    let mut out = std::io::stdout().lock();
    if b.drawn > 0 {
        let _ = write!(out, "\x1b[{}A\r\x1b[J", b.drawn);
    }
    b.drawn = 0;
    let _ = out.flush();
}

/// Prints `lines` above the block, then the block afresh.
fn redraw(b: &mut Board, lines: &[String]) {
    erase(b);
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    if b.running.is_empty() {
        let _ = out.flush();
        return;
    }
    let now = Instant::now();
    let mut block = vec![header(b, now)];
    // A block taller than the terminal would scroll and break the erase.
    let (columns, rows) = terminal_size();
    let room = rows.saturating_sub(3).max(1);
    let hidden = b.running.len().saturating_sub(room);
    for (pair, r) in b.running.iter().take(room) {
        let waits = match &r.waits {
            Some((until, at)) if *at > now => format!(
                "  waits until {until} ({:.0}s more)",
                (*at - now).as_secs_f64().ceil()
            ),
            _ => String::new(),
        };
        block.push(format!(
            "  {:<12} {:<18} {:<22} {:>6.1}s  (pair {:.1}s){waits}",
            pair,
            r.step,
            r.host,
            (now - r.step_started).as_secs_f64(),
            (now - r.started).as_secs_f64()
        ));
    }
    if hidden > 0 {
        block.push(format!("  … and {hidden} more"));
    }
    // A line wider than the terminal would wrap and break the erase.
    let width = columns.saturating_sub(1).max(20);
    for l in &block {
        let cut: String = l.chars().take(width).collect();
        let _ = writeln!(out, "{cut}");
    }
    b.drawn = block.len();
    let _ = out.flush();
}

/// The block's first line: how many pairs ended, how (a pair refused at
/// preflight, for its window, the gate, a lock or drift, is told apart from
/// one that failed), how many run, for how long.
fn header(b: &Board, now: Instant) -> String {
    let done: usize = b.ended.values().sum();
    let count = |pick: &dyn Fn(Outcome) -> bool| -> usize {
        b.ended
            .iter()
            .filter(|(k, _)| pick(**k))
            .map(|(_, n)| n)
            .sum()
    };
    let failed = count(&|k| k != Outcome::Ok && k != Outcome::NotStarted);
    let held = match count(&|k| k == Outcome::NotStarted) {
        0 => String::new(),
        n => format!(", {n} not started"),
    };
    let total = if b.total > 0 {
        format!("/{}", b.total)
    } else {
        String::new()
    };
    let elapsed = b.started.map_or(0.0, |s| (now - s).as_secs_f64());
    format!(
        "── {done}{total} done ({failed} not ok{held}), {} running, {elapsed:.1}s ──",
        b.running.len()
    )
}

/// The terminal's columns and rows (80 by 24 when it cannot be asked).
fn terminal_size() -> (usize, usize) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize we pass; stdout is our own fd.
    #[allow(unsafe_code, reason = "ioctl(2): std cannot ask a terminal's size")]
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 && ws.ws_col > 0 && ws.ws_row > 0 {
        (ws.ws_col as usize, ws.ws_row as usize)
    } else {
        (80, 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waits_end_shows_its_date_only_past_twelve_hours() {
        let at = "2026-12-01T21:05:03.120Z";
        assert_eq!(clock(at, 300_000), "21:05:03Z");
        assert_eq!(clock(at, 13 * 3600 * 1000), "2026-12-01 21:05:03Z");
        assert_eq!(clock("soon", 1000), "soon");
    }

    #[test]
    fn the_header_tells_pairs_that_did_not_start_from_failed_ones() {
        let now = Instant::now();
        let mut b = Board {
            total: 8,
            started: Some(now),
            ..Board::default()
        };
        assert_eq!(
            header(&b, now),
            "── 0/8 done (0 not ok), 0 running, 0.0s ──"
        );
        for (outcome, n) in [
            (Outcome::Ok, 3),
            (Outcome::NotStarted, 2),
            (Outcome::RolledBack, 1),
            (Outcome::Operator, 1),
        ] {
            b.ended.insert(outcome, n);
        }
        assert_eq!(
            header(&b, now),
            "── 7/8 done (2 not ok, 2 not started), 0 running, 0.0s ──"
        );
    }
}
