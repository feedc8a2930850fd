//! Maintenance windows: the grammar of a window (`"Sun 02:00-04:00"`,
//! `"Mon-Fri 22:00-02:00"`, `"daily 03:00-04:30"`) and the pure decision
//! whether a run may start now, given the time zone, the current instant
//! and how long the run is expected to take. No clock reads: the caller
//! passes the instant in.
//!
//! A window belongs to the day it starts on; an end earlier than the start
//! runs into the next day, and `24:00` is midnight at the end of the day.
//! Windows that touch or overlap count as one, so a run may start in one
//! and end in the next. Times that do not exist on a daylight-saving day
//! move forward (02:30 on a spring-forward night is 03:30), times that
//! exist twice take the first.

use std::fmt;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

/// One maintenance window, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The text it was parsed from.
    pub spec: String,
    /// Days it starts on, Monday first.
    days: [bool; 7],
    /// Start, minutes after midnight (0..1440).
    start: u16,
    /// End, minutes after midnight (1..=1440); at or before `start` means
    /// the next day.
    end: u16,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const FORM: &str =
    "write DAYS HH:MM-HH:MM, like \"Sun 02:00-04:00\", \"Mon-Fri 22:00-02:00\" or \"daily 03:00-04:30\"";

fn day(s: &str) -> Option<usize> {
    let l = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == l)
        .or_else(|| LONG.iter().position(|d| *d == l))
}

fn minutes(s: &str, end: bool) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Why a window was refused: what is wrong and the form to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WindowError(pub String);

/// Parses one window; the error says what is wrong and the form to use.
pub fn parse(spec: &str) -> Result<Window, WindowError> {
    let mut words = spec.split_whitespace();
    let (Some(days_text), Some(times), None) = (words.next(), words.next(), words.next()) else {
        return Err(WindowError(format!("`{spec}` is not a window; {FORM}")));
    };
    let mut days = [false; 7];
    if days_text.eq_ignore_ascii_case("daily") || days_text == "*" {
        days = [true; 7];
    } else {
        for item in days_text.split(',') {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let (Some(a), Some(b)) = (day(a), day(b)) else {
                return Err(WindowError(format!(
                    "`{item}` in `{spec}` is not a day or a range of days; use Mon Tue Wed Thu Fri Sat Sun, ranges like Mon-Fri, lists like Sat,Sun, or daily"
                )));
            };
            let mut d = a;
            loop {
                days[d] = true;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
    }
    let Some((s, e)) = times.split_once('-') else {
        return Err(WindowError(format!(
            "`{times}` in `{spec}` is not a time range; {FORM}"
        )));
    };
    let (Some(start), Some(end)) = (minutes(s, false), minutes(e, true)) else {
        return Err(WindowError(format!(
            "`{times}` in `{spec}` is not a time range of HH:MM from 00:00 to 24:00; {FORM}"
        )));
    };
    if start == end {
        return Err(WindowError(format!(
            "`{spec}` starts and ends at the same time; for a whole day write 00:00-24:00"
        )));
    }
    Ok(Window {
        spec: spec.to_string(),
        days,
        start,
        end,
    })
}

/// May a run start now?
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No windows are configured: any time.
    Always,
    /// Inside a window that ends at `ends`, with time for the expected run.
    Open {
        /// When the window (with any window it runs into) ends.
        ends: Zoned,
    },
    /// Outside every window.
    Closed {
        /// When the next window opens (none within a week: a window exists
        /// only on days that never come, which `parse` rules out).
        next: Option<Zoned>,
    },
    /// Inside a window, but the run is expected to end after it does.
    TooShort {
        /// When the window ends.
        ends: Zoned,
        /// How long the run is expected to take.
        expected: Duration,
        /// When the next window opens.
        next: Option<Zoned>,
    },
}

impl Decision {
    /// May the run start?
    pub fn allows(&self) -> bool {
        matches!(self, Decision::Always | Decision::Open { .. })
    }

    /// A sentence for the operator and the journal.
    pub fn describe(&self, now: Timestamp) -> String {
        let next = |n: &Option<Zoned>| match n {
            Some(z) => format!("; the next window opens {}", when(z, now)),
            None => String::new(),
        };
        match self {
            Decision::Always => "no maintenance window is configured: any time".to_string(),
            Decision::Open { ends } => {
                format!(
                    "inside the maintenance window, which ends {}",
                    when(ends, now)
                )
            }
            Decision::Closed { next: n } => {
                format!("outside the maintenance window{}", next(n))
            }
            Decision::TooShort {
                ends,
                expected,
                next: n,
            } => format!(
                "the maintenance window ends {}, before a run expected to take {} would end{}",
                when(ends, now),
                fmt_duration(*expected),
                next(n)
            ),
        }
    }
}

/// `Sun 2026-11-29 02:00 CET (in 6d 3h)`.
fn when(z: &Zoned, now: Timestamp) -> String {
    let secs = z.timestamp().as_second() - now.as_second();
    let rel = if secs >= 0 {
        format!("in {}", fmt_duration(Duration::from_secs(secs as u64)))
    } else {
        format!("{} ago", fmt_duration(Duration::from_secs((-secs) as u64)))
    };
    format!("{} ({rel})", z.strftime("%a %Y-%m-%d %H:%M %Z"))
}

/// A duration to the minute for long ones, to the second for short.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts = [(days, "d"), (h, "h"), (m, "m"), (sec, "s")];
    let skip_seconds = s >= 3600;
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, u)| *n > 0 && !(skip_seconds && *u == "s"))
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if text.is_empty() {
        "0s".to_string()
    } else {
        text.join(" ")
    }
}

/// Every occurrence of the windows that starts between yesterday and a
/// week from today (local dates), as (start, end) instants, sorted.
fn occurrences(windows: &[Window], tz: &TimeZone, today: Date) -> Vec<(Zoned, Zoned)> {
    let mut out = Vec::new();
    for offset in -1..=8i64 {
        let Ok(date) = today.checked_add(Span::new().days(offset)) else {
            continue;
        };
        let Ok(next_day) = date.checked_add(Span::new().days(1)) else {
            continue;
        };
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        for w in windows.iter().filter(|w| w.days[weekday]) {
            let end_date = if w.end <= w.start || w.end == 1440 {
                next_day
            } else {
                date
            };
            let end_min = w.end % 1440;
            let at = |d: Date, m: u16| {
                d.at((m / 60) as i8, (m % 60) as i8, 0, 0)
                    .to_zoned(tz.clone())
                    .ok()
            };
            if let (Some(s), Some(e)) = (at(date, w.start), at(end_date, end_min)) {
                if s < e {
                    out.push((s, e));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Whether a run expected to take `expected` may start at `now`.
pub fn decide(windows: &[Window], tz: &TimeZone, now: Timestamp, expected: Duration) -> Decision {
    if windows.is_empty() {
        return Decision::Always;
    }
    let today = now.to_zoned(tz.clone()).date();
    let all = occurrences(windows, tz, today);
    let next = all
        .iter()
        .find(|(s, _)| s.timestamp() > now)
        .map(|(s, _)| s.clone());
    let Some(mut ends) = all
        .iter()
        .filter(|(s, e)| s.timestamp() <= now && now < e.timestamp())
        .map(|(_, e)| e.clone())
        .max()
    else {
        return Decision::Closed { next };
    };
    // Windows that touch or overlap run on into each other.
    while let Some(later) = all
        .iter()
        .filter(|(s, e)| *s <= ends && *e > ends)
        .map(|(_, e)| e.clone())
        .max()
    {
        ends = later;
    }
    let fits = jiff::SignedDuration::try_from(expected)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .is_some_and(|done| done <= ends.timestamp());
    if fits {
        Decision::Open { ends }
    } else {
        let next = all.iter().find(|(s, _)| *s > ends).map(|(s, _)| s.clone());
        Decision::TooShort {
            ends,
            expected,
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: &TimeZone, s: &str) -> Timestamp {
        let dt: jiff::civil::DateTime = s.parse().unwrap();
        dt.to_zoned(tz.clone()).unwrap().timestamp()
    }

    fn w(specs: &[&str]) -> Vec<Window> {
        specs.iter().map(|s| parse(s).unwrap()).collect()
    }

    const M: Duration = Duration::from_secs(60);

    #[test]
    fn parses_days_ranges_lists_and_times() {
        let x = parse("Sun 02:00-04:00").unwrap();
        assert_eq!(x.days, [false, false, false, false, false, false, true]);
        assert_eq!((x.start, x.end), (120, 240));
        let x = parse("mon-fri 22:00-02:00").unwrap();
        assert_eq!(x.days, [true, true, true, true, true, false, false]);
        assert_eq!((x.start, x.end), (1320, 120));
        let x = parse("Fri-Mon 00:00-24:00").unwrap();
        assert_eq!(x.days, [true, false, false, false, true, true, true]);
        assert_eq!(x.end, 1440);
        assert_eq!(
            parse("Sat,Sunday 03:00-03:30").unwrap().days[5..],
            [true, true]
        );
        assert_eq!(parse("daily 03:00-04:30").unwrap().days, [true; 7]);
        assert_eq!(parse("*  03:00-04:30").unwrap().days, [true; 7]);
    }

    #[test]
    fn rejects_malformed_windows_with_the_form_to_use() {
        for (bad, says) in [
            ("Sun", "is not a window"),
            ("Sun 02:00-04:00 extra", "is not a window"),
            ("Sonntag 02:00-04:00", "is not a day"),
            ("Mon-Xyz 02:00-04:00", "is not a day"),
            ("Sun 02:00", "is not a time range"),
            ("Sun 2:00-04:00", "HH:MM"),
            ("Sun 24:00-02:00", "HH:MM"),
            ("Sun 02:60-04:00", "HH:MM"),
            ("Sun 02:00-24:01", "HH:MM"),
            ("Sun 02:00-02:00", "same time"),
            ("", "is not a window"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.0.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn no_windows_means_any_time() {
        let d = decide(&[], &TimeZone::UTC, Timestamp::UNIX_EPOCH, M);
        assert_eq!(d, Decision::Always);
        assert!(d.allows());
    }

    #[test]
    fn open_inside_closed_outside_with_the_next_opening() {
        let tz = TimeZone::UTC;
        let ws = w(&["Sun 02:00-04:00"]);
        // 2026-11-22 is a Sunday.
        let d = decide(&ws, &tz, at(&tz, "2026-11-22T02:30"), 10 * M);
        let Decision::Open { ends } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(ends.timestamp(), at(&tz, "2026-11-22T04:00"));
        let d = decide(&ws, &tz, at(&tz, "2026-11-22T04:00"), M);
        assert_eq!(
            d,
            Decision::Closed {
                next: Some(
                    "2026-11-29T02:00"
                        .parse::<jiff::civil::DateTime>()
                        .unwrap()
                        .to_zoned(tz.clone())
                        .unwrap()
                )
            }
        );
        assert!(!d.allows());
        // The start is inside, the end outside.
        assert!(decide(&ws, &tz, at(&tz, "2026-11-22T02:00"), M).allows());
        assert!(!decide(&ws, &tz, at(&tz, "2026-11-22T01:59:59"), M).allows());
        assert!(!decide(&ws, &tz, at(&tz, "2026-11-21T02:30"), M).allows());
    }

    #[test]
    fn a_run_that_would_overrun_the_end_does_not_start() {
        let tz = TimeZone::UTC;
        let ws = w(&["Sun 02:00-04:00"]);
        let now = at(&tz, "2026-11-22T03:50");
        assert!(decide(&ws, &tz, now, 10 * M).allows());
        let d = decide(&ws, &tz, now, 11 * M);
        let Decision::TooShort { expected, next, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(*expected, 11 * M);
        assert_eq!(
            next.as_ref().map(|z| z.timestamp()),
            Some(at(&tz, "2026-11-29T02:00"))
        );
        let text = d.describe(now);
        assert!(text.contains("expected to take 11m"), "{text}");
        assert!(text.contains("Sun 2026-11-22 04:00 UTC (in 10m)"), "{text}");
    }

    #[test]
    fn a_window_runs_past_midnight_and_belongs_to_its_start_day() {
        let tz = TimeZone::UTC;
        let ws = w(&["Sat 23:00-01:00"]);
        // Sunday 00:30 is inside Saturday's window.
        let d = decide(&ws, &tz, at(&tz, "2026-11-22T00:30"), 10 * M);
        let Decision::Open { ends } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(ends.timestamp(), at(&tz, "2026-11-22T01:00"));
        // Sunday 23:30 is not (the window starts on Saturdays only).
        assert!(!decide(&ws, &tz, at(&tz, "2026-11-22T23:30"), M).allows());
        // Whole days.
        let ws = w(&["Sat 00:00-24:00"]);
        assert!(decide(&ws, &tz, at(&tz, "2026-11-21T23:59"), Duration::ZERO).allows());
        assert!(!decide(&ws, &tz, at(&tz, "2026-11-22T00:00"), Duration::ZERO).allows());
    }

    #[test]
    fn touching_windows_count_as_one() {
        let tz = TimeZone::UTC;
        let ws = w(&["Sat 00:00-24:00", "Sun 00:00-06:00", "Sun 05:00-07:00"]);
        let now = at(&tz, "2026-11-21T23:00");
        let d = decide(&ws, &tz, now, 7 * 60 * M);
        let Decision::Open { ends } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(ends.timestamp(), at(&tz, "2026-11-22T07:00"));
        assert!(!decide(&ws, &tz, now, 8 * 60 * M + M).allows());
    }

    #[test]
    fn the_time_zone_decides_the_wall_clock() {
        let tz = TimeZone::get("Europe/Berlin").expect("tzdata is installed (scripts/deps)");
        let ws = w(&["Sun 02:00-04:00"]);
        // 02:30 in Berlin (CET, UTC+1) is 01:30 UTC.
        let now: Timestamp = "2026-11-22T01:30:00Z".parse().unwrap();
        assert!(decide(&ws, &tz, now, M).allows());
        assert!(!decide(&ws, &TimeZone::UTC, now, M).allows());
    }

    #[test]
    fn daylight_saving_moves_a_missing_start_forward() {
        let tz = TimeZone::get("Europe/Berlin").expect("tzdata is installed (scripts/deps)");
        // 2026-03-29 02:00 does not exist in Berlin (clocks go 02:00 -> 03:00).
        let ws = w(&["Sun 02:00-04:00"]);
        let before: Timestamp = "2026-03-29T00:59:00Z".parse().unwrap(); // 01:59 CET
        assert!(!decide(&ws, &tz, before, M).allows());
        let after: Timestamp = "2026-03-29T01:00:00Z".parse().unwrap(); // 03:00 CEST
        let d = decide(&ws, &tz, after, 59 * M);
        let Decision::Open { ends } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(ends.timestamp(), "2026-03-29T02:00:00Z".parse().unwrap());
        // Only one real hour in the window that night.
        assert!(!decide(&ws, &tz, after, 61 * M).allows());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_secs(75)), "1m 15s");
        assert_eq!(
            fmt_duration(Duration::from_secs(3 * 86400 + 7200 + 61)),
            "3d 2h 1m"
        );
    }

    #[test]
    fn day_ranges_wrap_around_the_week_and_lists_mix_with_ranges() {
        let x = parse("Sat-Mon 01:00-02:00").unwrap();
        assert_eq!(x.days, [true, false, false, false, false, true, true]);
        let x = parse("Mon,Wed-Thu 01:00-02:00").unwrap();
        assert_eq!(x.days, [true, false, true, true, false, false, false]);
        let x = parse("Tue-Tue 01:00-02:00").unwrap();
        assert_eq!(x.days, [false, true, false, false, false, false, false]);
        assert_eq!(parse("DAILY 00:00-24:00").unwrap().days, [true; 7]);
        assert!(parse("TUESDAY 01:00-02:00").unwrap().days[1]);
        assert!(parse("Mon, 01:00-02:00").is_err());
        assert!(parse("Mon- 01:00-02:00").is_err());
        assert_eq!(
            parse("Sun 02:00-04:00").unwrap().to_string(),
            "Sun 02:00-04:00"
        );
    }

    #[test]
    fn each_decision_reads_as_a_sentence() {
        let tz = TimeZone::UTC;
        let now = at(&tz, "2026-11-22T03:00");
        assert_eq!(
            Decision::Always.describe(now),
            "no maintenance window is configured: any time"
        );
        let ws = w(&["Sun 02:00-04:00"]);
        let open = decide(&ws, &tz, now, M);
        assert_eq!(
            open.describe(now),
            "inside the maintenance window, which ends Sun 2026-11-22 04:00 UTC (in 1h)"
        );
        let closed = decide(&ws, &tz, at(&tz, "2026-11-22T05:30"), M);
        assert_eq!(
            closed.describe(at(&tz, "2026-11-22T05:30")),
            "outside the maintenance window; the next window opens Sun 2026-11-29 02:00 UTC (in 6d 20h 30m)"
        );
        // An instant already past reads as "ago".
        let Decision::Open { ends } = open else {
            panic!()
        };
        assert!(when(&ends, at(&tz, "2026-11-22T04:01:30")).ends_with("(1m 30s ago)"));
    }

    #[test]
    fn a_run_longer_than_any_window_has_no_next_chance_within_the_horizon() {
        let tz = TimeZone::UTC;
        // Every day whole: the windows run into each other to the horizon.
        let ws = w(&["daily 00:00-24:00"]);
        let now = at(&tz, "2026-11-22T12:00");
        assert!(decide(&ws, &tz, now, 3 * 24 * 60 * M).allows());
        let d = decide(&ws, &tz, now, 30 * 24 * 60 * M);
        let Decision::TooShort { next, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(*next, None);
        assert!(
            !d.describe(now).contains("next window"),
            "{}",
            d.describe(now)
        );
        // A window elsewhere in the week is the next chance.
        let ws = w(&["Sun 02:00-03:00", "Wed 01:00-09:00"]);
        let d = decide(&ws, &tz, at(&tz, "2026-11-22T02:30"), 2 * 60 * M);
        let Decision::TooShort { next, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(
            next.as_ref().map(|z| z.timestamp()),
            Some(at(&tz, "2026-11-25T01:00"))
        );
    }

    #[test]
    fn a_time_that_exists_twice_takes_the_first() {
        let tz = TimeZone::get("Europe/Berlin").expect("tzdata is installed (scripts/deps)");
        // 2026-10-25: clocks go 03:00 CEST -> 02:00 CET; 02:00-04:00 local
        // is 00:00-03:00 UTC, three real hours.
        let ws = w(&["Sun 02:00-04:00"]);
        let start: Timestamp = "2026-10-25T00:00:00Z".parse().unwrap();
        let d = decide(&ws, &tz, start, 3 * 60 * M);
        let Decision::Open { ends } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(ends.timestamp(), "2026-10-25T03:00:00Z".parse().unwrap());
        assert!(!decide(&ws, &tz, start, 3 * 60 * M + M).allows());
        let before: Timestamp = "2026-10-24T23:59:00Z".parse().unwrap();
        assert!(!decide(&ws, &tz, before, M).allows());
    }

    #[test]
    fn durations_round_at_the_hour() {
        assert_eq!(fmt_duration(Duration::from_secs(59)), "59s");
        assert_eq!(fmt_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(fmt_duration(Duration::from_secs(3659)), "1h");
        assert_eq!(fmt_duration(Duration::from_secs(86400)), "1d");
        assert_eq!(fmt_duration(Duration::from_millis(999)), "0s");
    }
}
