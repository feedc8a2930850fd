//! Replication positions, as a pair's `position` hook prints them, and the
//! lag between two: how far a standby is behind what its primary wrote.
//! A position is a PostgreSQL log sequence number (`16/B374D848`: two
//! hexadecimal halves of a 64-bit byte offset) or a plain unsigned decimal
//! number (a byte offset or a sequence number of another service). Both
//! hosts of a pair must print the same form; positions of different forms
//! are not comparable, and nothing is guessed.
//!
//! The hook prints one line, `STATE POSITION [SECONDS]` ([`Report`]):
//! whether the host is a writable `primary`, a `standby` (replicating,
//! read-only) or `stopped` (not running: its last position on disk), its
//! position, and for a standby how many seconds its replay is behind, when
//! known. Pure.

use std::cmp::Ordering;
use std::fmt;

/// A comparable replication position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    /// A PostgreSQL LSN, as its byte offset.
    Lsn(u64),
    /// A plain number.
    Number(u64),
}

/// Why a hook's output is not a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// Nothing was printed.
    #[error("the position hook printed nothing")]
    Empty,
    /// What was printed is neither form.
    #[error("`{0}` is not a replication position: print a PostgreSQL LSN (16/B374D848) or an unsigned number")]
    Unreadable(String),
    /// The two positions are of different forms.
    #[error("the positions {0} and {1} are of different forms and cannot be compared")]
    Mixed(Position, Position),
}

impl Position {
    /// Reads a hook's output: its first non-empty line, trimmed.
    pub fn parse(text: &str) -> Result<Position, PositionError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or(PositionError::Empty)?;
        let unreadable = || PositionError::Unreadable(line.chars().take(80).collect());
        if let Some((hi, lo)) = line.split_once('/') {
            let half = |s: &str| {
                (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(s, 16).ok())
                    .flatten()
            };
            let (Some(hi), Some(lo)) = (half(hi), half(lo)) else {
                return Err(unreadable());
            };
            return Ok(Position::Lsn((u64::from(hi) << 32) | u64::from(lo)));
        }
        if line.bytes().all(|b| b.is_ascii_digit()) {
            return line.parse().map(Position::Number).map_err(|_| unreadable());
        }
        Err(unreadable())
    }

    /// How far `self` (a standby's) is behind `of` (a primary's): 0 when it
    /// has everything, or is ahead.
    pub fn lag_behind(self, of: Position) -> Result<u64, PositionError> {
        match (self, of) {
            (Position::Lsn(a), Position::Lsn(b)) | (Position::Number(a), Position::Number(b)) => {
                Ok(b.saturating_sub(a))
            }
            _ => Err(PositionError::Mixed(self, of)),
        }
    }

    /// Compares two positions of the same form.
    pub fn compare(self, other: Position) -> Result<Ordering, PositionError> {
        match (self, other) {
            (Position::Lsn(a), Position::Lsn(b)) | (Position::Number(a), Position::Number(b)) => {
                Ok(a.cmp(&b))
            }
            _ => Err(PositionError::Mixed(self, other)),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Lsn(v) => write!(f, "{:X}/{:X}", v >> 32, v & 0xFFFF_FFFF),
            Position::Number(n) => write!(f, "{n}"),
        }
    }
}

/// What a host says of its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleState {
    /// Running and accepting writes.
    Primary,
    /// Running, read-only, following a primary.
    Standby,
    /// Not running (a demoted primary, a stopped standby).
    Stopped,
}

impl RoleState {
    /// Its name as the hook prints it.
    pub fn name(self) -> &'static str {
        match self {
            RoleState::Primary => "primary",
            RoleState::Standby => "standby",
            RoleState::Stopped => "stopped",
        }
    }
}

/// One line of the `position` hook: the host's role state, its position,
/// and for a standby its replay delay in seconds when the hook knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// What the host is.
    pub state: RoleState,
    /// Where it is.
    pub position: Position,
    /// How far a standby's replay is behind in time (when given).
    pub delay: Option<std::time::Duration>,
}

/// Why a `position` hook's output is not a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Nothing was printed.
    #[error("the position hook printed nothing")]
    Empty,
    /// The first word is not a state.
    #[error("`{0}` is not a role state: the position hook must print `primary`, `standby` or `stopped`, then the position")]
    State(String),
    /// The position is unreadable.
    #[error(transparent)]
    Position(#[from] PositionError),
    /// The delay is not a number of seconds.
    #[error("`{0}` is not a delay in seconds (the optional third word, like 0.25)")]
    Delay(String),
}

impl Report {
    /// Reads a hook's output: its first non-empty line, `STATE POSITION
    /// [SECONDS]`.
    pub fn parse(text: &str) -> Result<Report, ReportError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or(ReportError::Empty)?;
        let clip = |s: &str| s.chars().take(80).collect::<String>();
        let mut words = line.split_whitespace();
        let state = match words.next() {
            Some("primary") => RoleState::Primary,
            Some("standby") => RoleState::Standby,
            Some("stopped") => RoleState::Stopped,
            other => return Err(ReportError::State(clip(other.unwrap_or_default()))),
        };
        let position = Position::parse(words.next().unwrap_or_default())?;
        let delay = match words.next() {
            None => None,
            Some(d) => match d.parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..1e9).contains(&v) => {
                    Some(std::time::Duration::from_secs_f64(v))
                }
                _ => return Err(ReportError::Delay(clip(d))),
            },
        };
        if let Some(extra) = words.next() {
            return Err(ReportError::Delay(clip(extra)));
        }
        Ok(Report {
            state,
            position,
            delay,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.state.name(), self.position)?;
        match self.delay {
            Some(d) => write!(f, " ({:.3} s behind)", d.as_secs_f64()),
            None => Ok(()),
        }
    }
}

/// Whether a standby at `standby` has caught up with a primary that ended
/// at `primary`, within `max_lag` bytes (or units): the rule a hand-over
/// waits for before it promotes, and a failover checks before it does.
pub fn caught_up(
    standby: Position,
    primary: Position,
    max_lag: u64,
) -> Result<bool, PositionError> {
    Ok(standby.lag_behind(primary)? <= max_lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_a_state_a_position_and_maybe_a_delay() {
        let r = Report::parse("standby 0/301EF90 0.25\n").unwrap();
        assert_eq!(r.state, RoleState::Standby);
        assert_eq!(r.position, Position::Lsn(0x301_EF90));
        assert_eq!(r.delay, Some(std::time::Duration::from_millis(250)));
        assert_eq!(r.to_string(), "standby at 0/301EF90 (0.250 s behind)");
        let r = Report::parse("\n stopped 0/301EF18 \n").unwrap();
        assert_eq!((r.state, r.delay), (RoleState::Stopped, None));
        assert_eq!(
            Report::parse("primary 42").unwrap().position,
            Position::Number(42)
        );
        assert_eq!(Report::parse(""), Err(ReportError::Empty));
        assert!(matches!(Report::parse("master 0/1"), Err(ReportError::State(s)) if s == "master"));
        assert!(matches!(
            Report::parse("primary"),
            Err(ReportError::Position(_))
        ));
        assert!(matches!(
            Report::parse("standby 0/1 -1"),
            Err(ReportError::Delay(_))
        ));
        assert!(matches!(
            Report::parse("standby 0/1 NaN"),
            Err(ReportError::Delay(_))
        ));
        assert!(matches!(
            Report::parse("standby 0/1 1 2"),
            Err(ReportError::Delay(_))
        ));
    }

    #[test]
    fn a_postgresql_lsn_is_read_as_its_byte_offset_and_printed_back() {
        let p = Position::parse("16/B374D848\n").unwrap();
        assert_eq!(p, Position::Lsn(0x16_B374_D848));
        assert_eq!(p.to_string(), "16/B374D848");
        assert_eq!(Position::parse("0/0").unwrap(), Position::Lsn(0));
        assert_eq!(
            Position::parse("FFFFFFFF/FFFFFFFF").unwrap(),
            Position::Lsn(u64::MAX)
        );
        // The first non-empty line counts, blanks around it do not.
        assert_eq!(
            Position::parse("\n  0/3000148  \nnoise").unwrap(),
            Position::Lsn(0x300_0148)
        );
    }

    #[test]
    fn a_plain_number_is_a_position_too() {
        assert_eq!(Position::parse("42").unwrap(), Position::Number(42));
        assert_eq!(Position::Number(7).to_string(), "7");
    }

    #[test]
    fn anything_else_is_refused_saying_what_was_printed() {
        for bad in [
            "",
            "  \n ",
            "0/",
            "/1",
            "G/1",
            "123456789/1",
            "-3",
            "1.5",
            "0/3000148 x",
            "t",
        ] {
            let e = Position::parse(bad).unwrap_err();
            match bad.trim() {
                "" => assert_eq!(e, PositionError::Empty),
                shown => assert_eq!(e, PositionError::Unreadable(shown.into()), "{bad:?}"),
            }
        }
        assert!(Position::parse("18446744073709551616").is_err(), "over u64");
    }

    #[test]
    fn lag_is_how_far_the_standby_is_behind_and_never_negative() {
        let primary = Position::parse("1/0").unwrap();
        let standby = Position::parse("0/FFFFF000").unwrap();
        assert_eq!(standby.lag_behind(primary).unwrap(), 0x1000);
        assert_eq!(primary.lag_behind(standby).unwrap(), 0, "ahead is no lag");
        assert!(caught_up(standby, primary, 0x1000).unwrap());
        assert!(!caught_up(standby, primary, 0xFFF).unwrap());
        assert!(caught_up(primary, primary, 0).unwrap());
        assert_eq!(standby.compare(primary).unwrap(), std::cmp::Ordering::Less);
    }

    #[test]
    fn positions_of_different_forms_are_never_compared() {
        let lsn = Position::Lsn(5);
        let n = Position::Number(5);
        assert_eq!(lsn.lag_behind(n), Err(PositionError::Mixed(lsn, n)));
        assert!(caught_up(n, lsn, u64::MAX).is_err());
        assert!(lsn.compare(n).is_err());
    }
}
