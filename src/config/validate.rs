//! Validation: turns the raw files into the typed model, collecting every
//! problem (never stopping at the first) with its position and a fix.
//!
//! One mistake gives one message: a key the parse refused (`raw::parse`)
//! is unknown, not missing, so its absence is not reported nor its default
//! checked (`Sink::missing`, and the SSH settings a pair inherits); the
//! same problem reached through several pairs (a bad value in baton.toml)
//! is reported once for all of them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::diag::{printable, Key, Source};
use crate::config::raw::{
    self, CheckFile, GlobalFile, MaintenanceFile, PairFile, RefusalKind, SshFile, TrafficFile,
};
use crate::config::{model::*, pair_name, tsig, Diagnostic, Loaded, Problem, Warning, WarningKind};
use crate::core::window;

use Key::{Index as I, Name as N};

/// Collects problems for one scope (the global file, or one pair).
struct Sink<'a> {
    pairs: Vec<String>,
    problems: &'a mut Vec<Problem>,
}

impl Sink<'_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.problems.push(Problem {
            pairs: self.pairs.clone(),
            diagnostic,
        });
    }

    /// Reports that the key at `key` is missing from `src`, unless it may
    /// have been written and refused (`raw::Refused::lost`): then it is
    /// unknown rather than missing, and the refusal is the one message.
    fn missing(&mut self, src: &Source<'_>, key: &[Key<'_>], diagnostic: Diagnostic) {
        if !src.refused().lost(key) {
            self.push(diagnostic);
        }
    }
}

/// Validates the files `load` read: `None` for a file that could not be
/// read as text, whose problem is already reported (baton.toml is then
/// taken as refused as a whole, like a syntax error; a pair is only named).
pub(super) fn run(
    loaded: &mut Loaded,
    file: &Path,
    global_text: Option<&str>,
    pairs: &[(PathBuf, Option<String>)],
) {
    let mut global_src = Source::new(file, global_text.unwrap_or(""));
    let base = file.parent().unwrap_or(Path::new("."));
    let global: Option<GlobalFile> = match global_text {
        Some(_) => parse(
            &mut global_src,
            &mut Sink {
                pairs: vec![],
                problems: &mut loaded.problems,
            },
        ),
        None => {
            global_src.set_refused(raw::Refused::everything());
            None
        }
    };
    let global_refused = global_src.refused().clone();
    let settings = global.as_ref().and_then(|g| {
        settings(
            g,
            &global_src,
            base,
            &mut Sink {
                pairs: vec![],
                problems: &mut loaded.problems,
            },
        )
    });
    // The environments are known if the file names them, or names none
    // and refused nothing that may be them.
    let environments_known = global
        .as_ref()
        .is_some_and(|g| g.environments.is_some() || !global_refused.lost(&[N("environments")]));
    let default_global = GlobalFile::default();
    let global_ref = global.as_ref().unwrap_or(&default_global);

    let mut vips: Vec<(String, IpAddr, PathBuf)> = Vec::new();
    let mut dns_names: Vec<(String, String, PathBuf)> = Vec::new();
    // (address, pair, host, file) of every host of a valid pair so far.
    let mut host_addresses: Vec<(IpAddr, String, String, PathBuf)> = Vec::new();
    for (path, text) in pairs {
        let name = pair_name(path);
        loaded.names.push(name.clone());
        let Some(text) = text else { continue };
        let mut src = Source::new(path, text);
        let mut sink = Sink {
            pairs: vec![name.clone()],
            problems: &mut loaded.problems,
        };
        if !valid_name(&name) {
            sink.push(src.at(
                &[],
                format!("`{name}` is not a valid pair name"),
                "rename the file: a pair name uses letters, digits, `-` and `_`, and starts with a letter or digit",
            ));
        }
        let Some(raw) = parse::<PairFile>(&mut src, &mut sink) else {
            continue;
        };
        let ctx = PairCtx {
            src: &src,
            global_src: &global_src,
            global: global_ref,
            base: path.parent().unwrap_or(Path::new(".")),
            global_base: base,
            environments: settings
                .as_ref()
                .filter(|_| environments_known)
                .map(|s| s.environments.as_slice()),
            maintenance: settings.as_ref().map(|s| &s.maintenance),
        };
        // A file with a refused part is not a pair, even where what was read
        // of it validated: what was left out would be defaults (no servers,
        // no environment) that nothing may act on.
        let pair = pair(&name, path, &raw, &ctx, &mut sink).filter(|_| src.refused().is_empty());
        if let Some(pair) = pair {
            match &pair.traffic {
                Traffic::Vip(v) => {
                    if let Some((other, _, other_file)) =
                        vips.iter().find(|(_, a, _)| *a == v.address)
                    {
                        let d = src.at(
                            &[N("traffic"), N("address")],
                            format!(
                                "the virtual IP {} is also used by pair `{other}` ({})",
                                v.address,
                                other_file.display()
                            ),
                            "give each pair its own service address",
                        );
                        loaded.problems.push(Problem {
                            pairs: vec![name.clone(), other.clone()],
                            diagnostic: d,
                        });
                    }
                    vips.push((name.clone(), v.address, path.clone()));
                }
                Traffic::Dns(d) => {
                    let key = d.name.to_ascii_lowercase();
                    if let Some((other, _, other_file)) =
                        dns_names.iter().find(|(_, n, _)| *n == key)
                    {
                        let diag = src.at(
                            &[N("traffic"), N("name")],
                            format!(
                                "the DNS name {} is also switched by pair `{other}` ({})",
                                d.name,
                                other_file.display()
                            ),
                            "give each pair its own DNS name",
                        );
                        loaded.problems.push(Problem {
                            pairs: vec![name.clone(), other.clone()],
                            diagnostic: diag,
                        });
                    }
                    dns_names.push((name.clone(), key, path.clone()));
                }
                Traffic::Command(_) => {}
            }
            for h in &pair.hosts {
                if let Some(w) = shared_host(&src, &name, h, &host_addresses) {
                    loaded.warnings.push(w);
                }
            }
            for h in &pair.hosts {
                host_addresses.push((h.address, name.clone(), h.name.clone(), path.clone()));
            }
            loaded.pairs.insert(name, pair);
        }
    }
    // Two pair files whose names differ only in case are the same pair to a human.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for name in &loaded.names {
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), name.clone()) {
            loaded.problems.push(Problem {
                pairs: vec![name.clone(), first.clone()],
                diagnostic: Diagnostic {
                    file: file
                        .parent()
                        .unwrap_or(Path::new("."))
                        .join("pairs")
                        .join(format!("{name}.toml")),
                    line: 0,
                    column: 0,
                    message: printable(&format!(
                        "pair names `{first}` and `{name}` differ only in case"
                    )),
                    fix: "rename one of the files: each pair needs a distinct name".to_string(),
                },
            });
        }
    }
    // A baton.toml with a refused part is not usable, even where what was
    // read of it validated.
    loaded.settings = settings.filter(|_| global_refused.is_empty());
    merge_repeats(&mut loaded.problems);
}

/// The warning for a host whose address a host of an earlier pair has.
fn shared_host(
    src: &Source<'_>,
    pair: &str,
    host: &Host,
    earlier: &[(IpAddr, String, String, PathBuf)],
) -> Option<Warning> {
    let (_, other, other_host, other_file) = earlier.iter().find(|(a, ..)| *a == host.address)?;
    let diagnostic = src.at(
        &[N("hosts"), N(&host.name), N("address")],
        format!(
            "host `{}` of pair `{pair}` and host `{other_host}` of pair `{other}` ({}) have the same address {}: one machine in both pairs, so fencing it in a failover of one pair (a power-off `fence`) also takes it away from the other",
            host.name,
            other_file.display(),
            host.address
        ),
        "if one machine serving both pairs is intended, keep it, and make each pair's `fence` cut off only that pair's service rather than power off the machine; otherwise correct the address",
    );
    Some(Warning {
        kind: WarningKind::SharedHostAddress {
            address: host.address,
            this: (pair.to_string(), host.name.clone()),
            other: (other.clone(), other_host.clone()),
        },
        pairs: vec![pair.to_string(), other.clone()],
        diagnostic,
    })
}

/// One problem reported for several pairs (a bad value in baton.toml that
/// every pair inherits) is shown once, for all of them.
fn merge_repeats(problems: &mut Vec<Problem>) {
    let mut out: Vec<Problem> = Vec::with_capacity(problems.len());
    for p in problems.drain(..) {
        match out.iter_mut().find(|o| o.diagnostic == p.diagnostic) {
            // A problem that blocks everything stays so.
            Some(o) if o.pairs.is_empty() || p.pairs.is_empty() => o.pairs.clear(),
            Some(o) => {
                for name in p.pairs {
                    if !o.pairs.contains(&name) {
                        o.pairs.push(name);
                    }
                }
            }
            None => out.push(p),
        }
    }
    *problems = out;
}

/// Reads a file leniently (see `raw::parse`): each refused part becomes a
/// diagnostic, and `src` learns what was refused. `None` when the file is not
/// TOML at all.
fn parse<T: serde::de::DeserializeOwned>(src: &mut Source<'_>, sink: &mut Sink<'_>) -> Option<T> {
    let parsed = raw::parse::<T>(src.text());
    for r in &parsed.refusals {
        let fix = match r.kind {
            RefusalKind::UnknownKey => {
                "remove or rename the key; the message lists the keys allowed here".to_string()
            }
            RefusalKind::BadValue => value_fix(&r.message),
            RefusalKind::Syntax => syntax_fix(&r.message),
        };
        sink.push(src.at_span(r.span.clone(), r.message.clone(), fix));
    }
    src.set_refused(parsed.refused);
    parsed.value
}

// The parser's errors are not typed beyond where they are: its message
// decides between these fixes.

/// The fix for a refused value.
fn value_fix(message: &str) -> String {
    if message.contains("duration") || message.contains("time unit") {
        "write durations as a quoted number with a unit, like \"500ms\", \"30s\" or \"5m\""
            .to_string()
    } else {
        "write a value of the type and range the message names (strings in quotes, numbers and true/false bare)"
            .to_string()
    }
}

/// The fix for a file that is not TOML.
fn syntax_fix(message: &str) -> String {
    if message.contains("duplicate key") {
        "remove one of the two definitions".to_string()
    } else if message.contains("recursion") || message.contains("too deep") {
        "nest arrays, inline tables and dotted keys less deeply: no setting of baton needs more than a few levels".to_string()
    } else {
        "fix the TOML syntax at this position".to_string()
    }
}

fn settings(
    g: &GlobalFile,
    src: &Source<'_>,
    base: &Path,
    sink: &mut Sink<'_>,
) -> Option<Settings> {
    let mut ok = true;
    let state_dir = match g.state_dir.as_deref() {
        Some("") => {
            sink.push(src.at(
                &[N("state_dir")],
                "state_dir is empty",
                "name a directory, like \"/var/lib/baton\"",
            ));
            ok = false;
            PathBuf::new()
        }
        Some(s) if s.contains('\0') => {
            sink.push(src.at(
                &[N("state_dir")],
                format!("state_dir `{}` contains a NUL character", printable(s)),
                "name a directory, like \"/var/lib/baton\"",
            ));
            ok = false;
            PathBuf::new()
        }
        Some(s) => resolve(base, s),
        None => resolve(base, "state"),
    };
    // It is created on first use; something else in its place is refused now.
    if ok && std::fs::symlink_metadata(&state_dir).is_ok() && !state_dir.is_dir() {
        sink.push(src.at(
            &[N("state_dir")],
            format!("state_dir {} exists and is not a directory", shown(&state_dir)),
            "point `state_dir` at a directory (baton creates it, mode 0700, if it does not exist), or move the file away",
        ));
        ok = false;
    }
    let environments = g
        .environments
        .clone()
        .unwrap_or_else(|| vec!["dev".into(), "test".into(), "prod".into()]);
    if environments.is_empty() {
        sink.push(src.at(
            &[N("environments")],
            "environments is empty",
            "list the environments in order, like [\"dev\", \"test\", \"prod\"]",
        ));
        ok = false;
    }
    for (i, e) in environments.iter().enumerate() {
        if !valid_name(e) {
            sink.push(src.at(
                &[N("environments"), I(i)],
                format!("`{e}` is not a valid environment name"),
                "use letters, digits, `-` and `_`",
            ));
            ok = false;
        } else if environments[..i].contains(e) {
            sink.push(src.at(
                &[N("environments"), I(i)],
                format!("environment `{e}` is listed twice"),
                "list each environment once, in order",
            ));
            ok = false;
        }
    }
    // The global [ssh] table is checked as part of each pair (the pair may
    // override it), but its durations are checked here once.
    if let Some(ssh) = &g.ssh {
        ok &= durations_ok(ssh, src, sink);
    }
    if let Some(soak) = g.soak {
        if soak > Duration::from_secs(90 * 86400) {
            sink.push(src.at(
                &[N("soak")],
                format!("soak {} is out of range", humantime::format_duration(soak)),
                "use at most \"90days\" (\"1h\" or \"1day\" is usual)",
            ));
            ok = false;
        }
    }
    let start = sink.problems.len();
    let part = maintenance_part(g.maintenance.as_ref(), src, sink);
    ok &= sink.problems.len() == start;
    ok.then(|| Settings {
        state_dir,
        environments,
        soak: g.soak.filter(|s| !s.is_zero()),
        maintenance: part.over(&Maintenance::any_time()),
    })
}

struct PairCtx<'a> {
    src: &'a Source<'a>,
    global_src: &'a Source<'a>,
    global: &'a GlobalFile,
    base: &'a Path,
    global_base: &'a Path,
    environments: Option<&'a [String]>,
    maintenance: Option<&'a Maintenance>,
}

/// One file's `[maintenance]` table, checked; `None` where a key is absent.
#[derive(Default)]
struct MaintenancePart {
    zone: Option<(jiff::tz::TimeZone, String)>,
    windows: Option<Vec<window::Window>>,
    estimate: Option<Duration>,
}

impl MaintenancePart {
    /// These keys, the rest from `base`.
    fn over(self, base: &Maintenance) -> Maintenance {
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

fn maintenance_part(
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
                        e,
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

fn pair(
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
    let ssh = ssh_settings(raw.ssh.as_ref(), ctx, sink);
    let maintenance = maintenance_part(raw.maintenance.as_ref(), src, sink).over(
        &ctx.maintenance
            .cloned()
            .unwrap_or_else(Maintenance::any_time),
    );
    let hosts = hosts(raw, src, ssh.as_ref().map(|s| s.1).unwrap_or(22), sink);
    let traffic = traffic(raw.traffic.as_ref(), src, ctx.base, hosts.as_ref(), sink);
    let checks = checks(&raw.checks, src, ctx.base, hosts.as_ref(), sink);
    let changes = changes(&raw.changes, src, ctx.base, sink);

    if sink.problems.len() > start {
        return None;
    }
    let (ssh, _) = ssh?;
    Some(Pair {
        name: name.to_string(),
        file: path.to_path_buf(),
        environment,
        canary: raw.canary,
        version_command: raw.version_command.clone(),
        fence: raw.fence.clone(),
        observe_period,
        hosts: hosts?,
        ssh,
        maintenance,
        traffic: traffic?,
        checks,
        changes,
    })
}

fn hosts(
    raw: &PairFile,
    src: &Source<'_>,
    default_port: u16,
    sink: &mut Sink<'_>,
) -> Option<[Host; 2]> {
    // Fewer hosts than two may be hosts that were refused.
    let lost = src.refused().lost_entries(&[N("hosts")]);
    if raw.hosts.len() != 2 {
        if raw.hosts.len() > 2 || !lost {
            sink.push(src.at(
                &[N("hosts")],
                format!(
                    "a pair has exactly two hosts; this one has {}",
                    raw.hosts.len()
                ),
                "define two tables, like [hosts.blue] and [hosts.green], each with an `address`",
            ));
        }
        return None;
    }
    let mut out = Vec::new();
    for (name, h) in &raw.hosts {
        let at = [N("hosts"), N(name), N("address")];
        if !valid_name(name) {
            sink.push(src.at(
                &[N("hosts"), N(name)],
                format!("`{name}` is not a valid host name"),
                "use letters, digits, `-` and `_`, like `blue` or `db1`",
            ));
        }
        match h.address.as_deref() {
            None => sink.missing(src, &[N("hosts"), N(name), N("address")], src.at(
                &[N("hosts"), N(name)],
                format!("host `{name}` has no address"),
                format!("add `address = \"192.0.2.10\"` under [hosts.{name}]"),
            )),
            Some(a) => match a.parse::<IpAddr>() {
                // The same machine as its IPv4 form, which comparisons
                // between addresses (a pair's two hosts, a VIP, another
                // pair's host) would not see.
                Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => sink.push(src.at(
                    &at,
                    format!("`{a}` is an IPv4 address written as IPv6"),
                    format!(
                        "write the IPv4 address itself: \"{}\"",
                        v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default()
                    ),
                )),
                Ok(address) => out.push(Host {
                    name: name.clone(),
                    address,
                    ssh_port: h.ssh_port.unwrap_or(default_port),
                }),
                Err(_) => sink.push(src.at(
                    &at,
                    format!("`{a}` is not an IP address"),
                    "write the host's own IPv4 or IPv6 address, like \"192.0.2.10\" (no port, no prefix length)",
                )),
            },
        }
        if h.ssh_port == Some(0) {
            sink.push(src.at(
                &[N("hosts"), N(name), N("ssh_port")],
                "ssh_port 0 is not a port",
                "use 1-65535 (22 is SSH's)",
            ));
        }
    }
    let [a, b]: [Host; 2] = out.try_into().ok()?;
    if a.address == b.address {
        sink.push(src.at(
            &[N("hosts"), N(&b.name), N("address")],
            format!(
                "hosts `{}` and `{}` have the same address {}",
                a.name, b.name, a.address
            ),
            "each host of a pair is a separate machine with its own address",
        ));
        return None;
    }
    Some([a, b])
}

/// SSH settings: the pair's `[ssh]` over baton.toml's, key by key.
fn ssh_settings(
    pair: Option<&SshFile>,
    ctx: &PairCtx<'_>,
    sink: &mut Sink<'_>,
) -> Option<(SshSettings, u16)> {
    let empty = SshFile::default();
    let g = ctx.global.ssh.as_ref().unwrap_or(&empty);
    let p = pair.unwrap_or(&empty);
    // Which file (and base directory) a key came from, to point at it.
    let from = |pair_has: bool| -> (&Source<'_>, &Path, Vec<Key<'static>>) {
        if pair_has {
            (ctx.src, ctx.base, vec![N("ssh")])
        } else {
            (ctx.global_src, ctx.global_base, vec![N("ssh")])
        }
    };
    // A key that neither file gives may have been written in a part of one
    // that was refused: then its value is unknown, and neither its absence
    // nor its default is reported (the refusal is the one message). A key
    // the pair does not give is unknown if the pair may have given it; one
    // that baton.toml does not give either, if baton.toml may have.
    let lost_in = |src: &Source<'_>, table: Option<&SshFile>, key: &str| match table {
        Some(_) => src.refused().lost(&[N("ssh"), N(key)]),
        None => src.refused().lost(&[N("ssh")]),
    };
    let unknown = |key: &str, in_pair: bool, in_global: bool| {
        !in_pair
            && (lost_in(ctx.src, pair, key)
                || !in_global && lost_in(ctx.global_src, ctx.global.ssh.as_ref(), key))
    };
    let mut ok = [
        unknown("user", p.user.is_some(), g.user.is_some()),
        unknown("port", p.port.is_some(), g.port.is_some()),
        unknown("identity", p.identity.is_some(), g.identity.is_some()),
        unknown(
            "passphrase_env",
            p.passphrase_env.is_some(),
            g.passphrase_env.is_some(),
        ),
        unknown(
            "known_hosts",
            p.known_hosts.is_some(),
            g.known_hosts.is_some(),
        ),
        unknown(
            "accept_new_host_keys",
            p.accept_new_host_keys.is_some(),
            g.accept_new_host_keys.is_some(),
        ),
        unknown(
            "connect_timeout",
            p.connect_timeout.is_some(),
            g.connect_timeout.is_some(),
        ),
        unknown(
            "command_timeout",
            p.command_timeout.is_some(),
            g.command_timeout.is_some(),
        ),
        unknown("sudo", p.sudo.is_some(), g.sudo.is_some()),
    ]
    .iter()
    .all(|u| !u);
    if pair.is_some() {
        ok &= durations_ok(p, ctx.src, sink);
    }
    let user = p.user.clone().or_else(|| g.user.clone());
    let user = match user {
        None if unknown("user", false, false) => String::new(),
        None => {
            sink.push(ctx.src.at(
                &[],
                "no SSH user is set for this pair",
                "set `user = \"deploy\"` under [ssh] in baton.toml (for all pairs) or in this pair file",
            ));
            ok = false;
            String::new()
        }
        Some(u)
            if u.is_empty()
                || u.contains(|c: char| c.is_whitespace() || c.is_control() || c == '@') =>
        {
            let (src, _, mut path) = from(p.user.is_some());
            path.push(N("user"));
            sink.push(src.at(
                &path,
                format!("`{}` is not a valid login name", printable(&u)),
                "write the remote user name alone, like \"deploy\"",
            ));
            ok = false;
            u
        }
        Some(u) => u,
    };
    let port = p.port.or(g.port).unwrap_or(22);
    if port == 0 {
        let (src, _, mut path) = from(p.port.is_some());
        path.push(N("port"));
        sink.push(src.at(&path, "port 0 is not a port", "use 1-65535 (22 is SSH's)"));
        ok = false;
    }
    let identity = match p.identity.as_deref().or(g.identity.as_deref()) {
        None => None,
        Some(i) => {
            let (src, base, mut path) = from(p.identity.is_some());
            path.push(N("identity"));
            let resolved = resolve(base, i);
            if let Some(fault) = file_fault(&resolved) {
                let shown = shown(&resolved);
                let message = match fault {
                    FileFault::Unreadable(e) => format!("cannot read the SSH key {shown}: {e}"),
                    FileFault::Directory => format!("the SSH key {shown} is a directory"),
                    FileFault::Empty => format!("the SSH key {shown} is empty"),
                };
                sink.push(src.at(
                    &path,
                    message,
                    "point `identity` at a readable private key file (like \"~/.ssh/id_ed25519\"), or remove it to use the ssh agent",
                ));
                ok = false;
            }
            Some(resolved)
        }
    };
    let passphrase_env = p
        .passphrase_env
        .clone()
        .or_else(|| g.passphrase_env.clone());
    if let Some(var) = &passphrase_env {
        if var.is_empty()
            || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || var.starts_with(|c: char| c.is_ascii_digit())
        {
            let (src, _, mut path) = from(p.passphrase_env.is_some());
            path.push(N("passphrase_env"));
            sink.push(src.at(
                &path,
                format!("`{var}` is not an environment variable name"),
                "name the variable that holds the key's passphrase, like \"BATON_SSH_PASSPHRASE\" (never the passphrase itself)",
            ));
            ok = false;
        }
    }
    let accept_new = p
        .accept_new_host_keys
        .or(g.accept_new_host_keys)
        .unwrap_or(false);
    // Unknown, it may be true: do not refuse a known_hosts file it would allow.
    let maybe_accept_new = accept_new
        || unknown(
            "accept_new_host_keys",
            p.accept_new_host_keys.is_some(),
            g.accept_new_host_keys.is_some(),
        );
    let known_hosts = {
        let from_pair = p.known_hosts.is_some();
        let (src, base, mut path) = from(from_pair);
        path.push(N("known_hosts"));
        let resolved = match p.known_hosts.as_deref().or(g.known_hosts.as_deref()) {
            Some(k) => resolve(base, k),
            None => resolve(base, "~/.ssh/known_hosts"),
        };
        let parent_ok = resolved.parent().is_some_and(|d| d.is_dir());
        let lost = unknown(
            "known_hosts",
            p.known_hosts.is_some(),
            g.known_hosts.is_some(),
        );
        let shown = shown(&resolved);
        let keyscan = "point `known_hosts` at an OpenSSH known_hosts file holding the hosts' keys (ssh-keyscan HOST >> FILE, after checking the fingerprints)";
        // With accept_new_host_keys, a file that does not exist yet or is
        // empty is filled on first use.
        let refused = match file_fault(&resolved) {
            _ if lost => None,
            None => None,
            Some(FileFault::Unreadable(e))
                if e.kind() == std::io::ErrorKind::NotFound && maybe_accept_new && parent_ok =>
            {
                None
            }
            Some(FileFault::Empty) if maybe_accept_new => None,
            Some(FileFault::Unreadable(e)) => Some((
                format!("cannot read the known_hosts file {shown}: {e}"),
                keyscan.to_string(),
            )),
            Some(FileFault::Directory) => Some((
                format!("the known_hosts file {shown} is a directory"),
                keyscan.to_string(),
            )),
            Some(FileFault::Empty) => Some((
                format!("the known_hosts file {shown} is empty: every host's key would be refused"),
                format!("{keyscan}, or set `accept_new_host_keys = true` to record the keys on first use"),
            )),
        };
        if let Some((message, fix)) = refused {
            sink.push(src.at(&path, message, fix));
            ok = false;
        }
        resolved
    };
    let connect_timeout = p
        .connect_timeout
        .or(g.connect_timeout)
        .unwrap_or(Duration::from_secs(10));
    let command_timeout = p
        .command_timeout
        .or(g.command_timeout)
        .unwrap_or(Duration::from_secs(300));
    let sudo = p.sudo.or(g.sudo).unwrap_or(false);
    ok.then_some((
        SshSettings {
            user,
            identity,
            passphrase_env,
            known_hosts,
            accept_new_host_keys: accept_new,
            connect_timeout,
            command_timeout,
            sudo,
        },
        port,
    ))
}

/// Sanity of the SSH timeouts in one `[ssh]` table.
fn durations_ok(s: &SshFile, src: &Source<'_>, sink: &mut Sink<'_>) -> bool {
    let mut ok = true;
    if let Some(d) = s.connect_timeout {
        if d < Duration::from_millis(100) || d > Duration::from_secs(300) {
            sink.push(src.at(
                &[N("ssh"), N("connect_timeout")],
                format!(
                    "connect_timeout {} is out of range",
                    humantime::format_duration(d)
                ),
                "use between \"100ms\" and \"5m\" (\"10s\" is usual)",
            ));
            ok = false;
        }
    }
    if let Some(d) = s.command_timeout {
        if d < Duration::from_secs(1) || d > Duration::from_secs(86400) {
            sink.push(src.at(
                &[N("ssh"), N("command_timeout")],
                format!(
                    "command_timeout {} is out of range",
                    humantime::format_duration(d)
                ),
                "use between \"1s\" and \"24h\" (\"5m\" is usual)",
            ));
            ok = false;
        }
    }
    ok
}

fn traffic(
    raw: Option<&TrafficFile>,
    src: &Source<'_>,
    base: &Path,
    hosts: Option<&[Host; 2]>,
    sink: &mut Sink<'_>,
) -> Option<Traffic> {
    let Some(t) = raw else {
        sink.missing(src, &[N("traffic")], src.at(
            &[],
            "the pair has no [traffic] table",
            "add [traffic] with `method = \"vip\"`, \"dns\" or \"command\" and that method's keys",
        ));
        return None;
    };
    let at = |k: &'static str| [N("traffic"), N(k)];
    let method = t.method.as_deref().unwrap_or("");
    let present: [(&str, bool); 14] = [
        ("quiesce", t.quiesce.is_some()),
        ("switch_ttl", t.switch_ttl.is_some()),
        ("propagation_timeout", t.propagation_timeout.is_some()),
        ("ttl", t.ttl.is_some()),
        ("address", t.address.is_some()),
        ("interface", t.interface.is_some()),
        ("arp_count", t.arp_count.is_some()),
        ("batch", t.batch.is_some()),
        ("name", t.name.is_some()),
        ("zone", t.zone.is_some()),
        ("servers", t.servers.is_some()),
        ("tsig_key", t.tsig_key.is_some()),
        ("switch", t.switch.is_some()),
        ("query", t.query.is_some()),
    ];
    let allowed: &[&str] = match method {
        "vip" => &["address", "interface", "arp_count", "batch", "quiesce"],
        "dns" => &[
            "name",
            "zone",
            "servers",
            "tsig_key",
            "switch_ttl",
            "ttl",
            "propagation_timeout",
        ],
        "command" => &["switch", "query"],
        "" => {
            sink.missing(
                src,
                &[N("traffic"), N("method")],
                src.at(
                    &[N("traffic")],
                    "[traffic] has no `method`",
                    "add `method = \"vip\"`, \"dns\" or \"command\"",
                ),
            );
            return None;
        }
        other => {
            sink.push(src.at(
                &at("method"),
                format!("unknown traffic method `{other}`"),
                "use \"vip\" (a virtual IP), \"dns\" (RFC 2136 update) or \"command\" (your own hook)",
            ));
            return None;
        }
    };
    let mut ok = true;
    for (key, is) in present {
        if is && !allowed.contains(&key) {
            sink.push(src.at(
                &[N("traffic"), N(key)],
                format!("`{key}` does not apply to traffic method `{method}`"),
                format!("remove it; method `{method}` takes: {}", allowed.join(", ")),
            ));
            ok = false;
        }
    }
    let missing = |sink: &mut Sink<'_>, key: &str, example: &str| {
        sink.missing(
            src,
            &[N("traffic"), N(key)],
            src.at(
                &[N("traffic")],
                format!("traffic method `{method}` needs `{key}`"),
                format!("add `{key} = {example}` under [traffic]"),
            ),
        );
    };
    let result = match method {
        "vip" => {
            let address = match t.address.as_deref() {
                None => {
                    missing(sink, "address", "\"192.0.2.100/24\"");
                    None
                }
                Some(a) => match parse_cidr(a) {
                    Ok(v) => Some(v),
                    Err(why) => {
                        sink.push(src.at(
                            &at("address"),
                            format!("`{a}` is not a virtual IP in CIDR form: {why}"),
                            "write the address with its prefix length, like \"192.0.2.100/24\"",
                        ));
                        None
                    }
                },
            };
            if let (Some((addr, _)), Some(hosts)) = (address, hosts) {
                if let Some(h) = hosts.iter().find(|h| h.address == addr) {
                    sink.push(src.at(
                        &at("address"),
                        format!("the virtual IP {addr} is host `{}`'s own address", h.name),
                        "use a separate service address that moves between the hosts",
                    ));
                    ok = false;
                }
            }
            let interface = match t.interface.as_deref() {
                None => {
                    missing(sink, "interface", "\"eth0\"");
                    None
                }
                Some(i) if !valid_interface(i) => {
                    sink.push(src.at(
                        &at("interface"),
                        format!("`{i}` is not a network interface name"),
                        "write the interface the address lives on, like \"eth0\" (at most 15 letters, digits, `-`, `_`, `.`)",
                    ));
                    None
                }
                Some(i) => Some(i.to_string()),
            };
            let arp_count = t.arp_count.unwrap_or(3);
            if !(1..=50).contains(&arp_count) {
                sink.push(src.at(
                    &at("arp_count"),
                    format!("arp_count {arp_count} is out of range"),
                    "use 1 to 50 (3 is usual)",
                ));
                ok = false;
            }
            if let Some(q) = t.quiesce {
                if q < Duration::from_millis(1) || q > Duration::from_secs(5) {
                    sink.push(src.at(
                        &at("quiesce"),
                        format!("quiesce {} is out of range", humantime::format_duration(q)),
                        "use \"1ms\" to \"5s\": about as long as your slowest ordinary request (\"50ms\", say); new connections wait a second or more while it lasts",
                    ));
                    ok = false;
                }
            }
            match (address, interface) {
                (Some((address, prefix)), Some(interface)) if ok => Some(Traffic::Vip(Vip {
                    address,
                    prefix,
                    interface,
                    arp_count,
                    batch: t.batch.unwrap_or(true),
                    quiesce: t.quiesce,
                })),
                _ => None,
            }
        }
        "dns" => {
            let name = match t.name.as_deref() {
                None => {
                    missing(sink, "name", "\"www.example.com.\"");
                    None
                }
                Some(n) => dns_name(n, src, &at("name"), sink),
            };
            let zone = match t.zone.as_deref() {
                None => {
                    missing(sink, "zone", "\"example.com.\"");
                    None
                }
                Some(z) => dns_name(z, src, &at("zone"), sink),
            };
            if let (Some(n), Some(z)) = (&name, &zone) {
                if !in_zone(n, z) {
                    sink.push(src.at(
                        &at("name"),
                        format!("`{n}` is not inside zone `{z}`"),
                        "set `zone` to the zone that contains the name (the name must end with the zone)",
                    ));
                    ok = false;
                }
            }
            let mut servers = Vec::new();
            match &t.servers {
                None => missing(sink, "servers", "[\"192.0.2.53:53\"]"),
                Some(list) if list.is_empty() => {
                    sink.push(src.at(
                        &at("servers"),
                        "servers is empty",
                        "list every authoritative server of the zone, like [\"192.0.2.53:53\"]",
                    ));
                    ok = false;
                }
                Some(list) => {
                    for (i, s) in list.iter().enumerate() {
                        match parse_server(s) {
                            Some(a) if servers.contains(&a) => {
                                sink.push(src.at(
                                    &[N("traffic"), N("servers"), I(i)],
                                    format!("server {a} is listed twice"),
                                    "list each server once",
                                ));
                                ok = false;
                            }
                            Some(a) => servers.push(a),
                            None => {
                                sink.push(src.at(
                                    &[N("traffic"), N("servers"), I(i)],
                                    format!("`{s}` is not a server address"),
                                    "write an IP address with an optional port, like \"192.0.2.53\" or \"192.0.2.53:53\" ([2001:db8::53]:53 for IPv6)",
                                ));
                                ok = false;
                            }
                        }
                    }
                }
            }
            let key = match t.tsig_key.as_deref() {
                None => {
                    missing(sink, "tsig_key", "\"/etc/baton/update.key\"");
                    None
                }
                Some(k) => match tsig::load(&resolve(base, k)) {
                    Ok(key) => Some(key),
                    Err(e) => {
                        sink.push(src.at(&at("tsig_key"), e.to_string(), e.fix()));
                        None
                    }
                },
            };
            let mut secs = |key: &'static str, v: Option<Duration>, max: u64| -> Option<u32> {
                let d = v?;
                if d < Duration::from_secs(1)
                    || d > Duration::from_secs(max)
                    || d.subsec_nanos() != 0
                {
                    sink.push(src.at(
                        &at(key),
                        format!("{key} {} is out of range", humantime::format_duration(d)),
                        format!(
                            "use whole seconds between \"1s\" and \"{}\"",
                            humantime::format_duration(Duration::from_secs(max))
                        ),
                    ));
                    ok = false;
                }
                Some(d.as_secs() as u32)
            };
            let switch_ttl = secs("switch_ttl", t.switch_ttl, 3600);
            let normal_ttl = secs("ttl", t.ttl, 7 * 86400);
            let propagation_timeout = secs("propagation_timeout", t.propagation_timeout, 3600)
                .map_or(DEFAULT_PROPAGATION, |s| Duration::from_secs(u64::from(s)));
            match (name, zone, key) {
                (Some(name), Some(zone), Some(tsig_key)) if ok => Some(Traffic::Dns(Dns {
                    name,
                    zone,
                    servers,
                    tsig_key,
                    switch_ttl,
                    ttl: normal_ttl,
                    propagation_timeout,
                })),
                _ => None,
            }
        }
        _ => {
            let switch = nonempty(t.switch.as_deref(), "switch", src, sink, &missing);
            let query = nonempty(t.query.as_deref(), "query", src, sink, &missing);
            match (switch, query) {
                (Some(switch), Some(query)) if ok => {
                    Some(Traffic::Command(CommandSwitch { switch, query }))
                }
                _ => None,
            }
        }
    };
    result
}

fn nonempty(
    v: Option<&str>,
    key: &'static str,
    src: &Source<'_>,
    sink: &mut Sink<'_>,
    missing: &dyn Fn(&mut Sink<'_>, &str, &str),
) -> Option<String> {
    match v {
        None => {
            missing(sink, key, "\"/usr/local/bin/COMMAND {from} {to}\"");
            None
        }
        Some(s) if s.trim().is_empty() => {
            sink.push(src.at(
                &[N("traffic"), N(key)],
                format!("`{key}` is empty"),
                "give the command to run",
            ));
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

fn dns_name(n: &str, src: &Source<'_>, at: &[Key<'_>], sink: &mut Sink<'_>) -> Option<String> {
    if !n.ends_with('.') {
        sink.push(src.at(
            at,
            format!("`{n}` is not an absolute DNS name"),
            format!("end it with a dot: \"{n}.\""),
        ));
        return None;
    }
    let labels_ok = n.len() <= 254
        && n.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if n == "." || !labels_ok {
        sink.push(src.at(
            at,
            format!("`{n}` is not a valid DNS name"),
            "use labels of letters, digits and `-` separated by dots, like \"www.example.com.\"",
        ));
        return None;
    }
    Some(n.to_string())
}

fn in_zone(name: &str, zone: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let z = zone.to_ascii_lowercase();
    n == z || n.ends_with(&format!(".{z}"))
}

/// A DNS check's `server` filled for each host (a sample address when the
/// hosts are unknown) as a check fills it; the first that is not a server
/// address.
fn bad_server(template: &str, hosts: Option<&[Host; 2]>) -> Option<String> {
    let sample = [Host {
        name: "host".to_string(),
        address: IpAddr::from([192, 0, 2, 1]),
        ssh_port: 22,
    }];
    let hosts: &[Host] = match hosts {
        Some(h) => h,
        None => &sample,
    };
    hosts.iter().find_map(|h| {
        let filled = template
            .replace("{address}", &h.address.to_string())
            .replace("{host}", &h.name);
        parse_server(&filled).is_none().then_some(filled)
    })
}

fn parse_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
        .filter(|a| a.port() != 0)
}

/// Parses `ADDR/PREFIX`.
pub(crate) fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or("the prefix length (`/24`) is missing")?;
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IP address"))?;
    let prefix: u8 = p
        .parse()
        .map_err(|_| format!("`{p}` is not a prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix == 0 || prefix > max {
        return Err(format!("prefix length {prefix} is out of range 1-{max}"));
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return Err(format!("{addr} cannot be a service address"));
    }
    if let IpAddr::V6(v6) = addr {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Err(format!(
                "{addr} is the IPv4 address {v4} written as IPv6; write {v4} with an IPv4 prefix length"
            ));
        }
    }
    Ok((addr, prefix))
}

fn valid_interface(i: &str) -> bool {
    !i.is_empty()
        && i.len() <= 15
        && i.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

const PLACEHOLDERS: [&str; 2] = ["{address}", "{host}"];

/// How long a DNS switch waits for every server to serve the new answer
/// when `propagation_timeout` is not set.
const DEFAULT_PROPAGATION: Duration = Duration::from_secs(30);

/// Placeholders are `{word}`; shell syntax such as `${VAR}` or `{ a; b; }`
/// is left alone. Linear in the text's length: after each `{` only the
/// word characters that follow it are looked at (a search for the next `}`
/// from every `{` was quadratic, seconds for a value of many braces).
fn placeholders_ok(s: &str) -> Result<(), String> {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (at, _) in s.match_indices('{') {
        if s[..at].ends_with('$') {
            continue;
        }
        let rest = &s[at + 1..];
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        let word = &rest[..len];
        let is_word = rest[len..].starts_with('}')
            && word
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if is_word && !PLACEHOLDERS.contains(&format!("{{{word}}}").as_str()) {
            return Err(format!("{{{word}}}"));
        }
    }
    Ok(())
}

fn checks(
    raw: &[CheckFile],
    src: &Source<'_>,
    base: &Path,
    hosts: Option<&[Host; 2]>,
    sink: &mut Sink<'_>,
) -> Vec<Check> {
    if raw.is_empty() {
        sink.missing(src, &[N("checks")], src.at(
            &[],
            "the pair has no health checks",
            "add at least one [[checks]] table: traffic only moves to a host that passed its checks",
        ));
    }
    let mut out: Vec<Check> = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let at = |k: &'static str| [N("checks"), I(i), N(k)];
        let whole = [N("checks"), I(i)];
        let start = sink.problems.len();
        let kind_name = c.kind.as_deref().unwrap_or("");
        let present: [(&str, bool); 11] = [
            ("url", c.url.is_some()),
            ("ca_file", c.ca_file.is_some()),
            ("expect_status", c.expect_status.is_some()),
            ("expect_body", c.expect_body.is_some()),
            ("port", c.port.is_some()),
            ("query", c.query.is_some()),
            ("record_type", c.record_type.is_some()),
            ("server", c.server.is_some()),
            ("expect", c.expect.is_some()),
            ("command", c.command.is_some()),
            ("expect_output", c.expect_output.is_some()),
        ];
        let allowed: &[&str] = match kind_name {
            "http" => &["url", "expect_status", "expect_body"],
            "https" => &["url", "expect_status", "expect_body", "ca_file"],
            "tcp" => &["port"],
            "dns" => &["query", "record_type", "server", "expect"],
            "command" => &["command", "expect_output"],
            "" => {
                sink.missing(
                    src,
                    &at("kind"),
                    src.at(
                        &whole,
                        "a check has no `kind`",
                        "add `kind = \"http\"`, \"https\", \"tcp\", \"dns\" or \"command\"",
                    ),
                );
                continue;
            }
            other => {
                sink.push(src.at(
                    &at("kind"),
                    format!("unknown check kind `{other}`"),
                    "use \"http\", \"https\", \"tcp\", \"dns\" or \"command\"",
                ));
                continue;
            }
        };
        for (key, is) in present {
            if is && !allowed.contains(&key) {
                sink.push(src.at(
                    &[N("checks"), I(i), N(key)],
                    format!("`{key}` does not apply to a `{kind_name}` check"),
                    format!(
                        "remove it; a `{kind_name}` check takes: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let need = |sink: &mut Sink<'_>, key: &str, example: &str| {
            sink.missing(
                src,
                &[N("checks"), I(i), N(key)],
                src.at(
                    &whole,
                    format!("this `{kind_name}` check needs `{key}`"),
                    format!("add `{key} = {example}` to the check"),
                ),
            );
        };
        let text = |sink: &mut Sink<'_>, key: &'static str, v: Option<&String>| {
            if let Some(v) = v {
                if let Err(bad) = placeholders_ok(v) {
                    sink.push(src.at(
                        &at(key),
                        format!("unknown placeholder `{bad}` in `{key}`"),
                        "only {address} (the host's address) and {host} (its name) are filled in",
                    ));
                }
            }
        };
        let kind = match kind_name {
            "http" | "https" => {
                text(sink, "url", c.url.as_ref());
                text(sink, "expect_body", c.expect_body.as_ref());
                let scheme = format!("{kind_name}://");
                match c.url.as_deref() {
                    None => need(sink, "url", &format!("\"{scheme}{{address}}/health\"")),
                    Some(u) if !u.starts_with(&scheme) => sink.push(src.at(
                        &at("url"),
                        format!("the url of a `{kind_name}` check must start with {scheme}"),
                        format!("write it like \"{scheme}{{address}}/health\", or change `kind`"),
                    )),
                    Some(_) => {}
                }
                let status = c.expect_status.unwrap_or(200);
                if !(100..=599).contains(&status) {
                    sink.push(src.at(
                        &at("expect_status"),
                        format!("{status} is not an HTTP status"),
                        "use a status between 100 and 599, like 200",
                    ));
                }
                // On an `http` check, `ca_file` was refused above as not applying.
                let ca_file = c.ca_file.as_deref().filter(|_| kind_name == "https").map(|f| {
                    let p = resolve(base, f);
                    let pem = crate::readfile::text(&p, crate::readfile::KEY).unwrap_or_default();
                    if !pem.contains("-----BEGIN CERTIFICATE-----") {
                        sink.push(src.at(
                            &at("ca_file"),
                            format!("{} is not a readable PEM certificate file", p.display()),
                            "point `ca_file` at the CA certificate (PEM) that signed the service's certificate",
                        ));
                    }
                    p
                });
                CheckKind::Http {
                    url: c.url.clone().unwrap_or_default(),
                    expect_status: status,
                    expect_body: c.expect_body.clone(),
                    ca_file,
                }
            }
            "tcp" => match c.port {
                None => {
                    need(sink, "port", "5432");
                    CheckKind::Tcp { port: 0 }
                }
                Some(0) => {
                    sink.push(src.at(
                        &at("port"),
                        "port 0 is not a port",
                        "use the service's port, 1-65535",
                    ));
                    CheckKind::Tcp { port: 0 }
                }
                Some(port) => CheckKind::Tcp { port },
            },
            "dns" => {
                text(sink, "server", c.server.as_ref());
                text(sink, "expect", c.expect.as_ref());
                let query = match c.query.as_deref() {
                    None => {
                        need(sink, "query", "\"www.example.com.\"");
                        String::new()
                    }
                    Some(q) => dns_name(q, src, &at("query"), sink).unwrap_or_default(),
                };
                let record_type = c
                    .record_type
                    .clone()
                    .unwrap_or_else(|| "A".to_string())
                    .to_ascii_uppercase();
                if !["A", "AAAA", "CNAME", "TXT", "MX", "NS", "SOA", "PTR", "SRV"]
                    .contains(&record_type.as_str())
                {
                    sink.push(src.at(
                        &at("record_type"),
                        format!("record type `{record_type}` is not supported"),
                        "use A, AAAA, CNAME, TXT, MX, NS, SOA, PTR or SRV",
                    ));
                }
                if let Some(template) = c.server.as_deref().filter(|t| placeholders_ok(t).is_ok()) {
                    if let Some(filled) = bad_server(template, hosts) {
                        sink.push(src.at(
                            &at("server"),
                            format!(
                                "`{}` is not a DNS server address{}",
                                printable(template),
                                if filled == template { String::new() } else { format!(" (for a host it is `{}`)", printable(&filled)) }
                            ),
                            "write an IP address with an optional port, like \"{address}:53\" (the host itself, the default) or \"192.0.2.53:53\"",
                        ));
                    }
                }
                let server = c
                    .server
                    .clone()
                    .unwrap_or_else(|| "{address}:53".to_string());
                if c.expect.is_none() {
                    need(sink, "expect", "\"192.0.2.10\"");
                }
                CheckKind::Dns {
                    query,
                    record_type,
                    server,
                    expect: c.expect.clone().unwrap_or_default(),
                }
            }
            _ => {
                text(sink, "command", c.command.as_ref());
                text(sink, "expect_output", c.expect_output.as_ref());
                match c.command.as_deref() {
                    None => need(sink, "command", "\"systemctl is-active nginx\""),
                    Some(cmd) if cmd.trim().is_empty() => sink.push(src.at(
                        &at("command"),
                        "the command is empty",
                        "give the command to run on the host",
                    )),
                    Some(_) => {}
                }
                CheckKind::Command {
                    command: c.command.clone().unwrap_or_default(),
                    expect_output: c.expect_output.clone(),
                }
            }
        };
        let successes = c.successes.unwrap_or(1);
        if !(1..=100).contains(&successes) {
            sink.push(src.at(
                &at("successes"),
                format!("successes {successes} is out of range"),
                "use 1 to 100 consecutive successes",
            ));
        }
        let failures_allowed = c.failures_allowed.unwrap_or(0);
        if failures_allowed > 100 {
            sink.push(src.at(
                &at("failures_allowed"),
                format!("failures_allowed {failures_allowed} is out of range"),
                "use 0 to 100",
            ));
        }
        let interval = c.interval.unwrap_or(Duration::from_secs(1));
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(3600) {
            sink.push(src.at(
                &at("interval"),
                format!(
                    "interval {} is out of range",
                    humantime::format_duration(interval)
                ),
                "use between \"10ms\" and \"1h\"",
            ));
        }
        let timeout = c.timeout.unwrap_or(Duration::from_secs(5));
        if timeout < Duration::from_millis(10) || timeout > Duration::from_secs(300) {
            sink.push(src.at(
                &at("timeout"),
                format!(
                    "timeout {} is out of range",
                    humantime::format_duration(timeout)
                ),
                "use between \"10ms\" and \"5m\"",
            ));
        }
        match c.name.as_deref() {
            Some(n) if n.trim().is_empty() => sink.push(src.at(
                &at("name"),
                "a check's name is empty",
                "name the check, like \"page\", or remove `name` for the default KIND-N",
            )),
            Some(n) if n.contains(char::is_control) => sink.push(src.at(
                &at("name"),
                format!("check name `{}` holds a control character", printable(n)),
                "write the name on one line, without tabs or other control characters, like \"page\"",
            )),
            _ => {}
        }
        let name = c
            .name
            .clone()
            .unwrap_or_else(|| format!("{kind_name}-{}", i + 1));
        if out.iter().any(|o| o.name == name) {
            sink.push(src.at(
                &at("name"),
                format!("two checks are named `{name}`"),
                "give each check its own name",
            ));
        }
        if sink.problems.len() == start {
            out.push(Check {
                name,
                kind,
                successes,
                failures_allowed,
                interval,
                timeout,
            });
        }
    }
    out
}

fn changes(
    raw: &BTreeMap<String, raw::ChangeFile>,
    src: &Source<'_>,
    base: &Path,
    sink: &mut Sink<'_>,
) -> BTreeMap<String, Change> {
    let mut out = BTreeMap::new();
    for (name, c) in raw {
        let whole = [N("changes"), N(name)];
        if let Some(label) = c.label.as_deref().filter(|l| l.contains(char::is_control)) {
            sink.push(src.at(
                &[N("changes"), N(name), N("label")],
                format!("the label of change `{name}` holds a control character: `{}`", printable(label)),
                "write the label on one line, without tabs or other control characters (it is shown in the journal and `baton log`, one line per run)",
            ));
        }
        if !valid_name(name) {
            sink.push(src.at(
                &whole,
                format!("`{name}` is not a valid change name"),
                "use letters, digits, `-` and `_`",
            ));
        }
        let lost = src.refused().lost(&[N("changes"), N(name), N("steps")]);
        if c.steps.is_empty() && c.upload.is_empty() && !lost {
            sink.missing(
                src,
                &[N("changes"), N(name), N("upload")],
                src.at(
                    &whole,
                    format!("change `{name}` has neither `upload` nor `steps`"),
                    "add the files to upload and/or the commands to run",
                ),
            );
        }
        for (i, s) in c.steps.iter().chain(&c.rollback).enumerate() {
            if s.trim().is_empty() {
                let (key, idx) = if i < c.steps.len() {
                    ("steps", i)
                } else {
                    ("rollback", i - c.steps.len())
                };
                sink.push(src.at(
                    &[N("changes"), N(name), N(key), I(idx)],
                    "an empty command",
                    "remove it or write the command",
                ));
            }
        }
        let mut upload = Vec::new();
        for (i, u) in c.upload.iter().enumerate() {
            let at = |k: &'static str| [N("changes"), N(name), N("upload"), I(i), N(k)];
            let from = match u.from.as_deref() {
                None => {
                    sink.missing(
                        src,
                        &[N("changes"), N(name), N("upload"), I(i), N("from")],
                        src.at(
                            &[N("changes"), N(name), N("upload"), I(i)],
                            "an upload has no `from`",
                            "add `from = \"files/NAME\"` (the local file)",
                        ),
                    );
                    None
                }
                Some(f) => {
                    let p = resolve(base, f);
                    if !p.is_file() {
                        sink.push(src.at(&at("from"), format!("cannot read the file to upload {}", p.display()), "point `from` at an existing local file (relative paths start at the pair file's directory)"));
                    }
                    Some(p)
                }
            };
            let to = match u.to.as_deref() {
                None => {
                    sink.missing(
                        src,
                        &[N("changes"), N(name), N("upload"), I(i), N("to")],
                        src.at(
                            &[N("changes"), N(name), N("upload"), I(i)],
                            "an upload has no `to`",
                            "add `to = \"/absolute/remote/path\"`",
                        ),
                    );
                    None
                }
                Some(t) if !t.starts_with('/') || t.ends_with('/') || t.contains('\0') => {
                    sink.push(src.at(
                        &at("to"),
                        format!("`{t}` is not an absolute file path"),
                        "write the remote file's absolute path, like \"/etc/nginx/nginx.conf\"",
                    ));
                    None
                }
                Some(t) => Some(t.to_string()),
            };
            let mode = match u.mode.as_deref() {
                None => Some(0o644),
                Some(m) => match u32::from_str_radix(m, 8) {
                    Ok(v) if (3..=4).contains(&m.len()) && v <= 0o7777 => Some(v),
                    _ => {
                        sink.push(src.at(
                            &at("mode"),
                            format!("`{m}` is not a file mode"),
                            "write the mode as a quoted octal string, like \"0644\"",
                        ));
                        None
                    }
                },
            };
            if let (Some(from), Some(to), Some(mode)) = (from, to, mode) {
                upload.push(Upload { from, to, mode });
            }
        }
        out.insert(
            name.clone(),
            Change {
                name: name.clone(),
                label: c.label.clone().unwrap_or_else(|| name.clone()),
                upload,
                steps: c.steps.clone(),
                rollback: c.rollback.clone(),
            },
        );
    }
    out
}

/// Why a file baton must read is refused.
enum FileFault {
    /// It cannot be opened (missing, no permission, a NUL in its name).
    Unreadable(std::io::Error),
    /// It is a directory.
    Directory,
    /// It is a regular file with nothing in it.
    Empty,
}

/// What is wrong with a file baton must read, if anything.
fn file_fault(path: &Path) -> Option<FileFault> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(FileFault::Unreadable(e)),
    };
    if meta.is_dir() {
        return Some(FileFault::Directory);
    }
    if let Err(e) = std::fs::File::open(path) {
        return Some(FileFault::Unreadable(e));
    }
    (meta.is_file() && meta.len() == 0).then_some(FileFault::Empty)
}

/// A path for a message, control characters escaped.
fn shown(path: &Path) -> String {
    printable(&path.display().to_string())
}

/// Resolves a configured path: `~/` from $HOME, relative from `base`. The
/// result is absolute and holds no `.` or `..`, so that a message or a fix
/// shows it as the operator can paste it wherever baton runs (see [`tidy`]).
fn resolve(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return tidy(&PathBuf::from(home).join(rest));
        }
    }
    let path = Path::new(p);
    if path.is_absolute() {
        tidy(path)
    } else {
        tidy(&base.join(path))
    }
}

/// Makes a path absolute (from the current directory) without `.` or `..`:
/// the directories above the last component that exist are resolved as the
/// kernel resolves them (symlinks too, so `pairs/..` is the parent of where
/// `pairs` really is); what follows them, which does not exist, is
/// normalized by its text. The last component is kept as written (a key
/// file that is a symlink is shown under its configured name).
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dir: Vec<Component<'_>> = abs.components().collect();
    let last = match dir.last() {
        Some(Component::Normal(name)) => {
            let name = name.to_os_string();
            dir.pop();
            Some(name)
        }
        _ => None,
    };
    let dir: PathBuf = dir.iter().collect();
    let (mut out, rest) = dir
        .ancestors()
        .find_map(|a| {
            let real = std::fs::canonicalize(a).ok()?;
            Some((real, dir.strip_prefix(a).ok()?.to_path_buf()))
        })
        .unwrap_or_else(|| (PathBuf::from("/"), dir.clone()));
    for c in rest.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    if let Some(name) = last {
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("192.0.2.1/24"),
            Ok(("192.0.2.1".parse().unwrap(), 24))
        );
        assert!(parse_cidr("192.0.2.1").unwrap_err().contains("missing"));
        assert!(parse_cidr("192.0.2.1/33")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_cidr("nope/24").unwrap_err().contains("not an IP"));
        assert!(parse_cidr("0.0.0.0/8").is_err());
        assert!(parse_cidr("::ffff:192.0.2.1/120")
            .unwrap_err()
            .contains("192.0.2.1 written as IPv6"));
        assert!(parse_cidr("2001:db8::1/64").is_ok());
    }

    #[test]
    fn zones_contain_names_on_label_boundaries() {
        assert!(in_zone("www.example.com.", "example.com."));
        assert!(in_zone("example.com.", "example.com."));
        assert!(!in_zone("www.badexample.com.", "example.com."));
    }

    #[test]
    fn resolved_paths_are_absolute_without_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("pairs")).unwrap();
        let pairs = real.join("pairs");
        assert_eq!(resolve(&pairs, "../loose.key"), real.join("loose.key"));
        assert_eq!(resolve(&pairs, "./a/../b/./c"), pairs.join("b/c"));
        assert_eq!(
            resolve(&pairs, "/etc/../etc/baton/x"),
            PathBuf::from("/etc/baton/x")
        );
        // A directory that is a symlink: `..` goes up from where it points.
        std::fs::create_dir_all(real.join("elsewhere/deep")).unwrap();
        std::os::unix::fs::symlink(real.join("elsewhere/deep"), real.join("link")).unwrap();
        assert_eq!(resolve(&real, "link/../k"), real.join("elsewhere/k"));
        // A relative base is taken from the current directory.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            resolve(Path::new(""), "x.key"),
            std::fs::canonicalize(&cwd).unwrap().join("x.key")
        );
    }

    #[test]
    fn placeholders() {
        assert!(placeholders_ok("http://{address}/x?{host}").is_ok());
        assert_eq!(placeholders_ok("http://{addr}/"), Err("{addr}".to_string()));
        assert!(
            placeholders_ok("! { ip a | grep -q x; }").is_ok(),
            "shell braces are not placeholders"
        );
        assert!(placeholders_ok("echo ${HOME} {host}").is_ok());
        assert!(placeholders_ok("{{host}}").is_ok());
        assert_eq!(placeholders_ok("{{nope}}"), Err("{nope}".to_string()));
        assert_eq!(placeholders_ok("{ {x} }"), Err("{x}".to_string()));
        assert!(placeholders_ok("{1x} {host-name} {} {host").is_ok());
        // Many braces without a closing one: linear, not quadratic.
        let braces = "{".repeat(400_000);
        assert!(placeholders_ok(&format!("{braces}address}}")).is_ok());
        assert_eq!(
            placeholders_ok(&format!("{braces}nope}}")),
            Err("{nope}".to_string())
        );
    }
}
