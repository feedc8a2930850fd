//! A pair file: its own top-level keys (`environment`, `version_command`,
//! `fence`, `observe_period`), and the [`Pair`] assembled from what the
//! other modules make of its tables. A pair with any problem is not a pair.

use std::path::Path;
use std::time::Duration;

use crate::config::diag::{Key, Source};
use crate::config::raw::{GlobalFile, PairFile};
use crate::config::{Maintenance, Notify, Pair};

use super::changes::changes;
use super::checks::checks;
use super::hosts::hosts;
use super::jump::routes;
use super::maintenance::maintenance_part;
use super::notify::notify_part;
use super::roles::roles;
use super::ssh::ssh_settings;
use super::traffic::traffic;
use super::values::{placeholders_ok, unfilled};
use super::Sink;

use Key::Name as N;

/// What a pair file is validated against: its own text, and baton.toml's.
pub(super) struct PairCtx<'a> {
    /// The pair file.
    pub(super) src: &'a Source<'a>,
    /// baton.toml.
    pub(super) global_src: &'a Source<'a>,
    /// baton.toml as read (its defaults when it was not).
    pub(super) global: &'a GlobalFile,
    /// The pair file's directory, for its relative paths.
    pub(super) base: &'a Path,
    /// baton.toml's directory, for its relative paths.
    pub(super) global_base: &'a Path,
    /// The environments, when known.
    pub(super) environments: Option<&'a [String]>,
    /// baton.toml's maintenance settings, when valid.
    pub(super) maintenance: Option<&'a Maintenance>,
    /// baton.toml's hold per environment, when valid.
    pub(super) holds: Option<&'a std::collections::BTreeMap<String, Duration>>,
}

/// One pair file, validated; `None` when it has any problem.
pub(super) fn pair(
    name: &str,
    path: &Path,
    raw: &PairFile,
    ctx: &PairCtx<'_>,
    sink: &mut Sink<'_>,
) -> Option<Pair> {
    let src = ctx.src;
    let start = sink.problems.len();

    let environment = match &raw.environment {
        None => {
            sink.missing(
                src,
                &[N("environment")],
                src.at(
                    &[],
                    "the pair has no `environment`",
                    match ctx.environments {
                        Some(envs) => format!(
                            "add `environment = \"{}\"` (one of: {})",
                            envs[0],
                            envs.join(", ")
                        ),
                        None => {
                            "add `environment = \"NAME\"`, one of the environments in baton.toml"
                                .to_string()
                        }
                    },
                ),
            );
            String::new()
        }
        Some(e) => {
            if let Some(envs) = ctx.environments {
                if !envs.contains(e) {
                    sink.push(src.at(
                        &[N("environment")],
                        format!("environment `{e}` is not one of the environments in baton.toml"),
                        format!(
                            "use one of: {} (or add it to `environments` in baton.toml)",
                            envs.join(", ")
                        ),
                    ));
                }
            }
            e.clone()
        }
    };

    if let Some(cmd) = &raw.version_command {
        if cmd.trim().is_empty() {
            sink.push(src.at(
                &[N("version_command")],
                "version_command is empty",
                "give a command that prints the service version, like \"cat /srv/app/VERSION\", or remove the key",
            ));
        } else if let Some(p) = unfilled(cmd) {
            sink.push(src.at(
                &[N("version_command")],
                format!("version_command holds `{p}`, which baton does not fill in: it runs as written on each host"),
                "remove the placeholder: the command runs on the host whose version it prints",
            ));
        }
    }

    if raw.fence.as_deref().is_some_and(|f| f.trim().is_empty()) {
        sink.push(src.at(
            &[N("fence")],
            "fence is empty",
            "give the command that cuts a host off (a power switch, a cloud API), or remove the key",
        ));
    }
    if let Some(Err(bad)) = raw.fence.as_deref().map(placeholders_ok) {
        sink.push(src.at(
            &[N("fence")],
            format!("unknown placeholder `{bad}` in `fence`"),
            "only {host} (the host's name in this file) and {address} (its address) are filled in, shell-quoted",
        ));
    }
    let observe_period = raw.observe_period.unwrap_or(Duration::from_secs(5));
    if observe_period > Duration::from_secs(3600) {
        sink.push(src.at(
            &[N("observe_period")],
            format!(
                "observe_period {} is out of range",
                humantime::format_duration(observe_period)
            ),
            "use between \"0s\" and \"1h\" (\"5s\" to \"1m\" is usual)",
        ));
    }
    if let Some(hold) = raw.hold {
        if hold > crate::config::MAX_HOLD {
            sink.push(src.at(
                &[N("hold")],
                "hold is longer than 30 days",
                "use at most \"30days\" (\"0s\": no hold, whatever the environment's)",
            ));
        } else if raw.roles.is_some() && !hold.is_zero() {
            sink.push(src.at(
                &[N("hold")],
                "a hold is not supported for a pair with [roles] hooks yet",
                "remove `hold` (a replicated pair's old primary follows the new one at once)",
            ));
        }
    }
    let ssh = ssh_settings(raw.ssh.as_ref(), ctx, sink);
    let maintenance = maintenance_part(raw.maintenance.as_ref(), src, sink).over(
        &ctx.maintenance
            .cloned()
            .unwrap_or_else(Maintenance::any_time),
    );
    let ssh_port = ssh.as_ref().map(|s| s.port).unwrap_or(22);
    let hosts = hosts(raw, src, ssh_port, sink);
    let routes = match (&ssh, &hosts) {
        (Some(part), Some(hs)) => {
            let with_own: Vec<_> = hs
                .iter()
                .map(|h| {
                    let own = raw.hosts.get(&h.name);
                    (
                        h.clone(),
                        own.and_then(|o| o.jump.as_deref()),
                        own.is_some_and(|o| o.ssh_port.is_some()),
                    )
                })
                .collect();
            routes(&with_own, part.openssh.as_ref(), part.given, src, sink)
        }
        _ => Default::default(),
    };
    let traffic = traffic(
        raw.traffic.as_ref(),
        src,
        ctx.base,
        hosts.as_ref(),
        ssh_port,
        sink,
    );
    let checks = checks(&raw.checks, src, ctx.base, hosts.as_ref(), sink);
    let changes = changes(&raw.changes, src, ctx.base, sink);
    let roles = roles(raw.roles.as_ref(), src, sink);
    let notify = notify_part(raw.notify.as_ref(), src, sink).over(&global_notify(ctx));

    if sink.problems.len() > start {
        return None;
    }
    let mut ssh = ssh?.settings;
    ssh.routes = routes;
    // The pair's own hold, else its environment's (not for a pair with
    // role hooks).
    let hold = match raw.hold {
        Some(h) => Some(h).filter(|h| !h.is_zero()),
        None if raw.roles.is_none() => ctx.holds.and_then(|h| h.get(&environment)).copied(),
        None => None,
    };
    Some(Pair {
        name: name.to_string(),
        file: path.to_path_buf(),
        environment,
        canary: raw.canary,
        version_command: raw.version_command.clone(),
        fence: raw.fence.clone(),
        observe_period,
        // The pair's own hold, else its environment's (not for a pair with
        // role hooks).
        hold,
        hosts: hosts?,
        ssh,
        maintenance,
        traffic: traffic?,
        checks,
        changes,
        roles,
        notify,
    })
}

/// baton.toml's `[notify]`, which a pair's keys override (its problems
/// are reported once, with baton.toml's settings, which they make
/// unusable: no pair runs then).
fn global_notify(ctx: &PairCtx<'_>) -> Notify {
    let mut reported_elsewhere = Vec::new();
    let mut sink = Sink {
        pairs: vec![],
        problems: &mut reported_elsewhere,
    };
    notify_part(ctx.global.notify.as_ref(), ctx.global_src, &mut sink).over(&Notify::none())
}

#[cfg(test)]
mod tests {
    use super::super::testing::check;
    use super::*;
    use crate::config::Diagnostic;

    /// The pair file `text` validated against a baton.toml that gives
    /// the SSH user and environments `dev` and `test`.
    fn validate(text: &str) -> (Option<Pair>, Vec<Diagnostic>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let global_text =
            "[ssh]\nuser = \"deploy\"\nknown_hosts = \"kh\"\naccept_new_host_keys = true\n";
        let global_src = Source::new(Path::new("baton.toml"), global_text);
        let global: GlobalFile = crate::config::raw::parse(global_text)
            .value
            .expect("baton.toml");
        let environments = ["dev".to_string(), "test".to_string()];
        check(text, |raw: &PairFile, src, sink| {
            let ctx = PairCtx {
                src,
                global_src: &global_src,
                global: &global,
                base: dir.path(),
                global_base: dir.path(),
                environments: Some(&environments),
                maintenance: None,
                holds: None,
            };
            pair("p", Path::new("p.toml"), raw, &ctx, sink)
        })
    }

    const REST: &str = "[hosts.blue]\naddress = \"192.0.2.1\"\n[hosts.green]\naddress = \"192.0.2.2\"\n[traffic]\nmethod = \"command\"\nswitch = \"sw {to}\"\nquery = \"q\"\n[[checks]]\nkind = \"tcp\"\nport = 80\n";

    #[test]
    fn a_valid_pair_is_assembled_with_its_defaults() {
        let (p, d) = validate(&format!("environment = \"test\"\n{REST}"));
        assert!(d.is_empty(), "{d:?}");
        let p = p.expect("a pair");
        assert_eq!(p.environment, "test");
        assert_eq!(p.observe_period, Duration::from_secs(5));
        assert_eq!(p.ssh.user, "deploy");
        assert_eq!(p.hosts[0].ssh_port, 22);
        assert_eq!(p.checks[0].name, "tcp-1");
    }

    #[test]
    fn a_hold_is_at_most_thirty_days_and_not_with_role_hooks() {
        let (p, d) = validate(&format!("environment = \"dev\"\nhold = \"2h\"\n{REST}"));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.and_then(|p| p.hold), Some(Duration::from_secs(7200)));
        let (p, d) = validate(&format!("environment = \"dev\"\nhold = \"0s\"\n{REST}"));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.expect("a pair").hold, None, "0s: no hold");
        let (p, d) = validate(&format!("environment = \"dev\"\nhold = \"31days\"\n{REST}"));
        assert!(p.is_none());
        assert_eq!(
            (d[0].line, d[0].message.as_str()),
            (2, "hold is longer than 30 days")
        );
        let roles = "[roles]\ndemote = \"d\"\nposition = \"p\"\npromote = \"pr\"\nfollow = \"f {primary}\"\nresume = \"r\"\n";
        let (p, d) = validate(&format!(
            "environment = \"dev\"\nhold = \"1h\"\n{REST}{roles}"
        ));
        assert!(p.is_none());
        assert!(
            d.iter()
                .any(|d| d.message == "a hold is not supported for a pair with [roles] hooks yet"),
            "{d:?}"
        );
    }

    #[test]
    fn a_version_command_with_a_placeholder_is_refused_one_of_the_commands_own_braces_is_not() {
        let (p, d) = validate(&format!(
            "environment = \"dev\"\nversion_command = \"cat /srv/{{host}}/VERSION\"\n{REST}"
        ));
        assert!(p.is_none());
        assert_eq!(
            (d[0].line, d[0].message.as_str()),
            (
                2,
                "version_command holds `{host}`, which baton does not fill in: it runs as written on each host"
            )
        );
        let (p, d) = validate(&format!(
            "environment = \"dev\"\nversion_command = \"awk '{{print}}' /srv/VERSION\"\n{REST}"
        ));
        assert!(d.is_empty(), "{d:?}");
        assert!(p.is_some());
    }

    #[test]
    fn a_missing_environment_names_the_first_one_as_the_fix() {
        let (p, d) = validate(REST);
        assert!(p.is_none());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].message, "the pair has no `environment`");
        assert_eq!(d[0].fix, "add `environment = \"dev\"` (one of: dev, test)");
    }

    #[test]
    fn an_empty_fence_and_an_observe_period_over_an_hour_are_refused() {
        let (p, d) = validate(&format!(
            "environment = \"dev\"\nfence = \"  \"\nobserve_period = \"61m\"\n{REST}"
        ));
        assert!(p.is_none());
        let m: Vec<_> = d.iter().map(|d| (d.line, d.message.as_str())).collect();
        assert_eq!(
            m,
            [
                (2, "fence is empty"),
                (3, "observe_period 1h 1m is out of range")
            ]
        );
        let (p, d) = validate(&format!(
            "environment = \"dev\"\nobserve_period = \"1h\"\n{REST}"
        ));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.map(|p| p.observe_period), Some(Duration::from_secs(3600)));
    }
}
