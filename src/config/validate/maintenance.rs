//! A `[maintenance]` table, in baton.toml or in a pair file: its time zone,
//! its windows and its estimate, checked; a pair's keys over baton.toml's,
//! key by key.

use std::time::Duration;

use crate::config::diag::{Key, Source};
use crate::config::raw::MaintenanceFile;
use crate::config::Maintenance;
use crate::core::window;

use super::Sink;

use Key::{Index as I, Name as N};

/// One file's `[maintenance]` table, checked; `None` where a key is absent.
#[derive(Default)]
pub(super) struct MaintenancePart {
    zone: Option<(jiff::tz::TimeZone, String)>,
    windows: Option<Vec<window::Window>>,
    estimate: Option<Duration>,
}

impl MaintenancePart {
    /// These keys, the rest from `base`.
    pub(super) fn over(self, base: &Maintenance) -> Maintenance {
        let (time_zone, zone_name) = self
            .zone
            .unwrap_or_else(|| (base.time_zone.clone(), base.zone_name.clone()));
        Maintenance {
            time_zone,
            zone_name,
            windows: self.windows.unwrap_or_else(|| base.windows.clone()),
            estimate: self.estimate.unwrap_or(base.estimate),
        }
    }
}

pub(super) fn maintenance_part(
    raw: Option<&MaintenanceFile>,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
) -> MaintenancePart {
    let Some(raw) = raw else {
        return MaintenancePart::default();
    };
    let m = N("maintenance");
    let zone = raw.time_zone.as_deref().and_then(|name| {
        match jiff::tz::TimeZone::get(name) {
            Ok(tz) => Some((tz, name.to_string())),
            Err(_) => {
                sink.push(src.at(
                    &[m, N("time_zone")],
                    format!("time zone `{name}` is not known on this machine"),
                    "use an IANA name like \"Europe/Berlin\" or \"UTC\" (the names are in /usr/share/zoneinfo; install the tzdata package if it is empty)",
                ));
                None
            }
        }
    });
    let windows = raw.windows.as_ref().map(|list| {
        list.iter()
            .enumerate()
            .filter_map(|(i, spec)| match window::parse(spec) {
                Ok(w) => Some(w),
                Err(e) => {
                    sink.push(src.at(
                        &[m, N("windows"), I(i)],
                        e.0,
                        "write each window as DAYS HH:MM-HH:MM; an empty list means any time",
                    ));
                    None
                }
            })
            .collect()
    });
    if let Some(e) = raw.estimate {
        if e.is_zero() || e > Duration::from_secs(86400) {
            sink.push(src.at(
                &[m, N("estimate")],
                format!(
                    "estimate {} is out of range",
                    humantime::format_duration(e)
                ),
                "use how long one run of this pair takes, between \"1s\" and \"24h\" (like \"10m\")",
            ));
        }
    }
    MaintenancePart {
        zone,
        windows,
        estimate: raw.estimate,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, messages};
    use super::*;
    use crate::config::raw::GlobalFile;

    fn part(text: &str) -> (MaintenancePart, Vec<String>) {
        let (p, d) = check(text, |g: &GlobalFile, src, sink| {
            maintenance_part(g.maintenance.as_ref(), src, sink)
        });
        (p, messages(&d))
    }

    #[test]
    fn an_estimate_over_a_day_is_refused() {
        let (_, m) = part("[maintenance]\nestimate = \"25h\"\n");
        assert_eq!(m, ["2:12: estimate 1day 1h is out of range"]);
        let (p, m) = part("[maintenance]\nestimate = \"24h\"\n");
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(p.estimate, Some(Duration::from_secs(86400)));
    }

    #[test]
    fn the_pairs_keys_override_the_bases_one_by_one() {
        let base = Maintenance::any_time();
        let (p, m) = part("[maintenance]\ntime_zone = \"UTC\"\nwindows = [\"Sun 02:00-04:00\"]\n");
        assert!(m.is_empty(), "{m:?}");
        let global = p.over(&base);
        assert_eq!(global.zone_name, "UTC");
        assert_eq!(global.windows.len(), 1);
        // A pair that gives only its estimate keeps baton.toml's zone and windows.
        let (p, _) = part("[maintenance]\nestimate = \"7m\"\n");
        let pair = p.over(&global);
        assert_eq!(pair.zone_name, "UTC");
        assert_eq!(pair.windows, global.windows);
        assert_eq!(pair.estimate, Duration::from_secs(420));
        // An empty list is "any time", not "inherit".
        let (p, _) = part("[maintenance]\nwindows = []\n");
        assert!(p.over(&global).windows.is_empty());
    }

    #[test]
    fn each_bad_window_is_reported_and_the_good_ones_kept() {
        let (p, m) = part(
            "[maintenance]\nwindows = [\"Sun 02:00-04:00\", \"Someday\", \"Mon 01:00-02:00\"]\n",
        );
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("2:31: "), "{m:?}");
        assert_eq!(p.windows.map(|w| w.len()), Some(2));
    }
}
