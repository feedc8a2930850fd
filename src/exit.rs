//! Exit codes: part of baton's interface, documented in the README. Each
//! class of outcome has its own code so cron, systemd and monitoring can act
//! on it without parsing output.

/// A process exit code with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success; for `status`, every pair is healthy.
    Ok = 0,
    /// A cycle failed and was rolled back: traffic unchanged, safe.
    RolledBack = 1,
    /// Bad configuration or usage; nothing was done.
    Config = 2,
    /// Incomplete / degraded: traffic is served by a healthy primary, but
    /// the standby is not healthy or not updated (or a source could not be
    /// asked).
    Degraded = 3,
    /// Needs an operator: drift, split brain, no traffic holder, an
    /// unhealthy primary, a failed rollback.
    Operator = 4,
    /// Did not start: lock held, gate refused, a host unreachable or
    /// unhealthy before anything changed.
    NotStarted = 5,
    /// Did not start: outside the pair's maintenance window, or the run is
    /// expected to end after the window does.
    OutsideWindow = 6,
    /// baton itself failed (state unreadable, internal error).
    Internal = 10,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// How bad it is, for the one code a run over many pairs exits with:
    /// a pair that needs an operator outweighs one that rolled back, which
    /// outweighs one that did not start.
    fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::OutsideWindow => 1,
            Exit::NotStarted => 2,
            Exit::RolledBack => 3,
            Exit::Degraded => 4,
            Exit::Config => 5,
            Exit::Operator => 6,
            Exit::Internal => 7,
        }
    }

    /// The worse of two codes.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Exit::*;

    #[test]
    fn the_worst_code_is_the_most_severe_not_the_largest() {
        assert_eq!(Operator.worst(NotStarted), Operator);
        assert_eq!(NotStarted.worst(RolledBack), RolledBack);
        assert_eq!(OutsideWindow.worst(NotStarted), NotStarted);
        assert_eq!(Ok.worst(OutsideWindow), OutsideWindow);
        assert_eq!(Degraded.worst(RolledBack), Degraded);
        assert_eq!(Internal.worst(Operator), Internal);
        let all = [
            Ok,
            RolledBack,
            Config,
            Degraded,
            Operator,
            NotStarted,
            OutsideWindow,
            Internal,
        ];
        for a in all {
            for b in all {
                assert_eq!(a.worst(b), b.worst(a), "{a:?} {b:?}");
                assert!(a.worst(b) == a || a.worst(b) == b);
            }
        }
    }
}
