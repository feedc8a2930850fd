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

    const ALL: [super::Exit; 8] = [
        Ok,
        RolledBack,
        Config,
        Degraded,
        Operator,
        NotStarted,
        OutsideWindow,
        Internal,
    ];

    #[test]
    fn the_codes_and_their_order_are_those_the_readme_documents() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let section = &readme[readme
            .find("## Exit codes")
            .expect("the README documents them")..];
        let documented: Vec<u8> = section
            .lines()
            .skip_while(|l| !l.starts_with("| code"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .next()
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            })
            .collect();
        let mut codes: Vec<u8> = ALL.iter().map(|e| e.code()).collect();
        codes.sort();
        assert_eq!(codes, documented);
        // "in this order: 10, 4, 2, ..." (most severe first).
        let flat = section.replace('\n', " ");
        let listed = flat
            .split("in this order: ")
            .nth(1)
            .expect("the order is documented");
        let order: Vec<u8> = listed
            .split(" (")
            .next()
            .unwrap()
            .split(", ")
            .map(|c| c.trim().parse().unwrap())
            .collect();
        assert_eq!(order.len(), ALL.len(), "{order:?}");
        let exit = |code: u8| *ALL.iter().find(|e| e.code() == code).unwrap();
        for (i, worse) in order.iter().enumerate() {
            for better in &order[i + 1..] {
                let (w, b) = (exit(*worse), exit(*better));
                assert_eq!(w.worst(b), w, "{worse} outweighs {better}");
                assert_eq!(b.worst(w), w, "{worse} outweighs {better}");
            }
        }
    }

    #[test]
    fn ok_changes_nothing_and_the_worst_of_many_does_not_depend_on_their_order() {
        for a in ALL {
            assert_eq!(Ok.worst(a), a);
            assert_eq!(a.worst(a), a);
            for b in ALL {
                for c in ALL {
                    assert_eq!(
                        a.worst(b).worst(c),
                        a.worst(b.worst(c)),
                        "{a:?} {b:?} {c:?}"
                    );
                }
            }
        }
        let folded = [NotStarted, OutsideWindow, RolledBack, Ok]
            .into_iter()
            .fold(Ok, super::Exit::worst);
        assert_eq!(folded, RolledBack);
    }
}
