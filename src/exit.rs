//! Exit codes: part of baton's interface, documented in the README. Each
//! class of outcome has its own code so cron, systemd and monitoring can act
//! on it without parsing output.

/// A process exit code with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
    /// Did not start: lock held, outside the maintenance window, gate refused.
    NotStarted = 5,
    /// baton itself failed (state unreadable, internal error).
    Internal = 10,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}
