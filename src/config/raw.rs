//! The configuration files exactly as written: serde structures for
//! `baton.toml` and `pairs/*.toml`, and the lenient parse that reads them.
//! Unknown keys are errors. Nothing here is checked beyond its TOML type;
//! `validate` turns these into the typed model.
//!
//! A key that is refused (unknown, or of the wrong type) is left out and
//! the rest of the file is still read, so one mistake gives one message:
//! [`parse`] returns every refusal, and [`Refused`] answers whether an
//! absent key may have been written and refused, so that validation does
//! not also report what merely follows from its absence.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::config::diag::Key;

/// `baton.toml`: settings for all pairs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalFile {
    /// Where state, journals and locks live.
    pub state_dir: Option<String>,
    /// The ordered environments, earliest first.
    pub environments: Option<Vec<String>>,
    /// How long a change must have completed on the earlier environments.
    #[serde(default, with = "humantime_serde")]
    pub soak: Option<Duration>,
    /// SSH defaults for every pair.
    pub ssh: Option<SshFile>,
    /// Maintenance windows for every pair.
    pub maintenance: Option<MaintenanceFile>,
    /// A hold per environment (`prod = "24h"`): how long an apply keeps
    /// the old primary on the old version after the switch.
    pub holds: Option<BTreeMap<String, String>>,
    /// Whether an unattended `apply` first finishes the holds that expired.
    pub finish_expired_holds: Option<bool>,
    /// How `baton watch` watches.
    pub watch: Option<WatchFile>,
    /// Notifications for every pair.
    pub notify: Option<NotifyFile>,
    /// Where baton keeps its state.
    pub store: Option<StoreFile>,
}

/// `[store]` in baton.toml: local files (the default) or an etcd cluster.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// `local` or `etcd`.
    pub kind: Option<String>,
    /// etcd: client URLs.
    pub endpoints: Option<Vec<String>>,
    /// etcd: the prefix of every key.
    pub prefix: Option<String>,
    /// etcd: the lease of locks and leadership.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// etcd: one request's limit.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// etcd over TLS: the CA file.
    pub ca: Option<String>,
    /// etcd over TLS: a client certificate.
    pub cert: Option<String>,
    /// etcd over TLS: its key.
    pub key: Option<String>,
    /// etcd authentication: the user.
    pub user: Option<String>,
    /// etcd authentication: the file holding the password.
    pub password_file: Option<String>,
}

/// `[watch]` in baton.toml: how `baton watch` watches the pairs.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFile {
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    pub failure_threshold: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub cooldown: Option<Duration>,
    pub quorum: Option<usize>,
}

/// `[notify]`, in baton.toml or in a pair file (the pair's keys win): a
/// local command and/or a webhook told of a run's start and end.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    /// A local command that gets the event on stdin.
    pub command: Option<String>,
    /// An http(s) URL the event is POSTed to.
    pub webhook: Option<String>,
    /// Which moments are sent (`start` and outcome names).
    pub on: Option<Vec<String>>,
    /// How long each notifier may take.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `[maintenance]`, in baton.toml or in a pair file (the pair's keys win).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceFile {
    /// An IANA time zone name; the system's when absent.
    pub time_zone: Option<String>,
    /// Windows like "Sun 02:00-04:00"; an empty list means any time.
    pub windows: Option<Vec<String>>,
    /// Expected duration of a run when the journal has no history.
    #[serde(default, with = "humantime_serde")]
    pub estimate: Option<Duration>,
}

/// `[ssh]`, in baton.toml or in a pair file (the pair's keys win).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshFile {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<String>,
    pub passphrase_env: Option<String>,
    pub known_hosts: Option<String>,
    pub accept_new_host_keys: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub command_timeout: Option<Duration>,
    pub sudo: Option<bool>,
    pub jump: Option<String>,
    pub config: Option<String>,
}

/// `pairs/NAME.toml`: one pair.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairFile {
    pub environment: Option<String>,
    #[serde(default)]
    pub canary: bool,
    pub version_command: Option<String>,
    pub fence: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub observe_period: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub hold: Option<Duration>,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostFile>,
    pub ssh: Option<SshFile>,
    pub maintenance: Option<MaintenanceFile>,
    pub traffic: Option<TrafficFile>,
    #[serde(default)]
    pub checks: Vec<CheckFile>,
    #[serde(default)]
    pub changes: BTreeMap<String, ChangeFile>,
    pub roles: Option<RolesFile>,
    pub notify: Option<NotifyFile>,
}

/// `[roles]`: the hooks that hand a replicated service's primary role over.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesFile {
    pub demote: Option<String>,
    pub position: Option<String>,
    pub promote: Option<String>,
    pub follow: Option<String>,
    pub resume: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub demote_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub position_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub promote_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub follow_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub resume_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub catch_up_timeout: Option<Duration>,
    pub max_lag: Option<u64>,
    pub max_lag_on_failover: Option<u64>,
}

/// `[hosts.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    pub address: Option<String>,
    pub ssh_port: Option<u16>,
    pub jump: Option<String>,
}

/// `[traffic]`: which keys apply depends on `method`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficFile {
    pub method: Option<String>,
    // vip (the service address in CIDR form) and haproxy (the balancer's
    // own address)
    pub address: Option<String>,
    // vip
    pub interface: Option<String>,
    pub arp_count: Option<u32>,
    pub batch: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub quiesce: Option<Duration>,
    pub handover: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub overlap: Option<Duration>,
    // dns
    pub name: Option<String>,
    pub zone: Option<String>,
    pub servers: Option<Vec<String>>,
    pub tsig_key: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub switch_ttl: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub propagation_timeout: Option<Duration>,
    // command
    pub switch: Option<String>,
    pub query: Option<String>,
    // haproxy
    pub host: Option<String>,
    pub ssh_port: Option<u16>,
    pub socket: Option<String>,
    pub backend: Option<String>,
    pub frontend: Option<String>,
    pub weight: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub drain_timeout: Option<Duration>,
    pub max_error_increase: Option<f64>,
    pub max_latency_factor: Option<f64>,
    pub min_requests: Option<u64>,
}

/// `[[checks]]`: which keys apply depends on `kind`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckFile {
    pub name: Option<String>,
    pub kind: Option<String>,
    // http / https
    pub url: Option<String>,
    pub expect_status: Option<u16>,
    pub expect_body: Option<String>,
    pub ca_file: Option<String>,
    // tcp
    pub port: Option<u16>,
    // dns
    pub query: Option<String>,
    pub record_type: Option<String>,
    pub server: Option<String>,
    pub expect: Option<String>,
    // command
    pub command: Option<String>,
    pub expect_output: Option<String>,
    // common
    pub role: Option<String>,
    pub successes: Option<u32>,
    pub failures_allowed: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `[changes.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeFile {
    pub label: Option<String>,
    #[serde(default)]
    pub upload: Vec<UploadFile>,
    #[serde(default)]
    pub steps: Vec<String>,
    #[serde(default)]
    pub rollback: Vec<String>,
}

/// One file of a change's `upload` list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    pub from: Option<String>,
    pub to: Option<String>,
    pub mode: Option<String>,
}

/// One step of the key path of an entry in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A table key.
    Name(String),
    /// An array index.
    Index(usize),
}

impl Step {
    fn is(&self, key: &Key<'_>) -> bool {
        match (self, key) {
            (Step::Name(a), Key::Name(b)) => a == b,
            (Step::Index(a), Key::Index(b)) => a == b,
            _ => false,
        }
    }
}

/// Why part of a file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The file is not TOML (a syntax error, a key defined twice): nothing
    /// of it was read.
    Syntax,
    /// A key that has no meaning where it is written.
    UnknownKey,
    /// A known key whose value has the wrong type or form.
    BadValue,
}

/// One refused part of a file.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// What kind of mistake it is.
    pub kind: RefusalKind,
    /// The parser's message.
    pub message: String,
    /// Where in the text (bytes).
    pub span: Range<usize>,
}

/// What a parse left out, to tell a missing key from a refused one.
#[derive(Debug, Clone, Default)]
pub struct Refused {
    /// Nothing of the file could be read.
    all: bool,
    /// The key paths of the entries left out, and why.
    removed: Vec<(Vec<Step>, RefusalKind)>,
}

impl Refused {
    /// A file refused as a whole (it could not be read as text).
    pub fn everything() -> Refused {
        Refused {
            all: true,
            removed: Vec::new(),
        }
    }

    /// Nothing was refused.
    pub fn is_empty(&self) -> bool {
        !self.all && self.removed.is_empty()
    }

    /// Whether the key at `key`, absent from what was read, may have been
    /// written and refused: it or a table around it was refused, or an
    /// unknown key beside it was (which may be it, misspelt). Such a key is
    /// unknown rather than missing: its absence must not be reported, nor
    /// its default checked. `key` must lie in a table that was read; for a
    /// key of an absent table, ask about the table.
    pub fn lost(&self, key: &[Key<'_>]) -> bool {
        let parent = &key[..key.len().saturating_sub(1)];
        self.all
            || self.removed.iter().any(|(r, kind)| {
                is_prefix(r, key)
                    || *kind == RefusalKind::UnknownKey
                        && r.len() == key.len()
                        && is_prefix(&r[..r.len() - 1], parent)
            })
    }

    /// Whether the table at `table` (read, or absent) may lack entries that
    /// were written and refused, whatever their names: for a table of free
    /// names, like `hosts`.
    pub fn lost_entries(&self, table: &[Key<'_>]) -> bool {
        self.lost(table)
            || self
                .removed
                .iter()
                .any(|(r, _)| r.len() == table.len() + 1 && is_prefix(&r[..table.len()], table))
    }
}

/// Whether the steps `path` begin `key` (or are it).
fn is_prefix(path: &[Step], key: &[Key<'_>]) -> bool {
    path.len() <= key.len() && path.iter().zip(key).all(|(s, k)| s.is(k))
}

/// A file read as far as it could be.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The file without its refused parts; `None` when it is not TOML.
    pub value: Option<T>,
    /// Every refused part, in the order found.
    pub refusals: Vec<Refusal>,
    /// What was left out.
    pub refused: Refused,
}

/// At most this many refusals are collected in one file; past them the file
/// is given up as a whole.
const MAX_REFUSALS: usize = 100;

/// Reads a file as `T`, leaving out each entry serde refuses (an unknown
/// key, a value of the wrong type) and reading the rest.
pub fn parse<T: DeserializeOwned>(text: &str) -> Parsed<T> {
    let mut out = Parsed {
        value: None,
        refusals: Vec::new(),
        refused: Refused::default(),
    };
    let mut tree = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            let message = e.message().trim();
            // The parser's limit on the parts of one key says neither what
            // nor where: the key is found here.
            let (message, span) = match e.span() {
                None if message == "recursion limit" => (
                    format!("a key or table header of {KEY_PARTS} or more dotted parts is too deep to read"),
                    deep_key(text).map_or(0..0, |at| at..at),
                ),
                span => (message.to_string(), span.unwrap_or(0..0)),
            };
            out.refusals.push(Refusal {
                kind: RefusalKind::Syntax,
                message,
                span,
            });
            out.refused.all = true;
            return out;
        }
    };
    loop {
        let e = match T::deserialize(toml::de::Deserializer::from(tree.clone())) {
            Ok(v) => {
                out.value = Some(v);
                return out;
            }
            Err(e) => e,
        };
        let span = e.span().unwrap_or(0..0);
        let found = e
            .span()
            .and_then(|s| find(tree.get_ref(), s.start))
            .filter(|_| out.refusals.len() < MAX_REFUSALS);
        let Some((path, kind)) = found else {
            // Not attributable to one entry: the file is unusable as a whole.
            out.refusals.push(Refusal {
                kind: RefusalKind::BadValue,
                message: e.message().trim().to_string(),
                span,
            });
            out.refused.all = true;
            return out;
        };
        remove(tree.get_mut(), &path);
        out.refusals.push(Refusal {
            kind,
            message: e.message().trim().to_string(),
            span,
        });
        out.refused.removed.push((path, kind));
    }
}

/// The dotted parts of one key (`a.b.c` has 3) from which the TOML parser
/// refuses a file as too deep (its recursion limit, 80, on the parts before
/// the last).
const KEY_PARTS: usize = 81;

/// Where the first key or table header of [`KEY_PARTS`] or more dotted
/// parts starts (by its dots: a quoted part holding dots may be taken for
/// several; the parser found one, this only points at it).
fn deep_key(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let body = &line[indent..];
        let key = if body.starts_with('[') {
            body.split(']').next().unwrap_or(body)
        } else {
            body.split('=').next().unwrap_or(body)
        };
        if !body.starts_with('#') && key.matches('.').count() + 1 >= KEY_PARTS {
            return Some(offset + indent);
        }
        offset += line.len();
    }
    None
}

/// The entry that byte `at` points into, and whether it is its key (an
/// unknown key) or its value (a bad value). A key holding `at`, at any
/// depth, comes first: the value of a table declared by a header such as
/// `[a.b]` spans the whole header, keys and all, so looking for values
/// first would take the unknown `a` for a bad value of `a.b`, and report
/// one mistake twice.
fn find(table: &DeTable<'_>, at: usize) -> Option<(Vec<Step>, RefusalKind)> {
    find_key(table, at)
        .map(|p| (p, RefusalKind::UnknownKey))
        .or_else(|| find_value(table, at).map(|p| (p, RefusalKind::BadValue)))
}

/// The path of the key, at any depth, whose span holds byte `at`.
fn find_key(table: &DeTable<'_>, at: usize) -> Option<Vec<Step>> {
    for (k, v) in table.iter() {
        let name = || Step::Name(k.get_ref().to_string());
        if k.span().contains(&at) {
            return Some(vec![name()]);
        }
        let deeper =
            match v.get_ref() {
                DeValue::Table(t) => find_key(t, at).map(|p| [vec![name()], p].concat()),
                DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| match item
                    .get_ref()
                {
                    DeValue::Table(t) => {
                        find_key(t, at).map(|p| [vec![name(), Step::Index(i)], p].concat())
                    }
                    _ => None,
                }),
                _ => None,
            };
        if deeper.is_some() {
            return deeper;
        }
    }
    None
}

/// The path of the innermost value whose span holds byte `at` (or is empty
/// and starts there).
fn find_value(table: &DeTable<'_>, at: usize) -> Option<Vec<Step>> {
    // Deeper entries first: a table's own span may cover its children.
    for (k, v) in table.iter() {
        let name = || Step::Name(k.get_ref().to_string());
        let deeper =
            match v.get_ref() {
                DeValue::Table(t) => find_value(t, at).map(|p| [vec![name()], p].concat()),
                DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| match item
                    .get_ref()
                {
                    DeValue::Table(t) => {
                        find_value(t, at).map(|p| [vec![name(), Step::Index(i)], p].concat())
                    }
                    _ => None,
                }),
                _ => None,
            };
        if deeper.is_some() {
            return deeper;
        }
    }
    table
        .iter()
        .find(|(_, v)| v.span().contains(&at) || (v.span().is_empty() && v.span().start == at))
        .map(|(k, _)| vec![Step::Name(k.get_ref().to_string())])
}

/// Removes the entry at `path` (found by [`find`]).
fn remove(table: &mut DeTable<'_>, path: &[Step]) {
    match path {
        [Step::Name(last)] => {
            let key = table.keys().find(|k| k.get_ref() == last).cloned();
            if let Some(key) = key {
                table.remove(&key);
            }
        }
        [Step::Name(first), rest @ ..] => {
            let Some((_, v)) = table.iter_mut().find(|(k, _)| k.get_ref() == first) else {
                return;
            };
            match (v.get_mut(), rest) {
                (DeValue::Table(t), _) => remove(t, rest),
                (DeValue::Array(items), [Step::Index(i), rest @ ..]) => {
                    if let Some(DeValue::Table(t)) = items.get_mut(*i).map(|item| item.get_mut()) {
                        remove(t, rest);
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Key::{Index as I, Name as N};

    #[test]
    fn an_unknown_key_is_left_out_and_the_rest_is_read() {
        let p: Parsed<GlobalFile> =
            parse("state_dir = \"s\"\n[ssh]\nuser = \"deploy\"\nsudo_user = \"x\"\nport = 2222\n");
        let g = p.value.expect("read");
        let ssh = g.ssh.expect("[ssh] read");
        assert_eq!(ssh.user.as_deref(), Some("deploy"));
        assert_eq!(ssh.port, Some(2222));
        assert_eq!(p.refusals.len(), 1);
        assert_eq!(p.refusals[0].kind, RefusalKind::UnknownKey);
        // `sudo_user` may be a misspelt key of [ssh], not of another table.
        assert!(p.refused.lost(&[N("ssh"), N("known_hosts")]));
        assert!(!p.refused.lost(&[N("environments")]));
        assert!(!p.refused.lost(&[N("maintenance")]));
        assert!(!p.refused.lost(&[N("maintenance"), N("windows")]));
    }

    #[test]
    fn every_bad_value_is_refused_not_only_the_first() {
        let p: Parsed<PairFile> = parse(
            "environment = 3\n[ssh]\nport = \"22\"\n[[checks]]\nkind = \"tcp\"\n[[checks]]\nkind = \"tcp\"\nport = \"x\"\n",
        );
        let pair = p.value.expect("read");
        assert_eq!(pair.checks.len(), 2);
        assert_eq!(pair.environment, None);
        let kinds: Vec<_> = p.refusals.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [RefusalKind::BadValue; 3]);
        assert!(p.refused.lost(&[N("environment")]));
        assert!(p.refused.lost(&[N("checks"), I(1), N("port")]));
        // A bad value is not a misspelling of another key.
        assert!(!p.refused.lost(&[N("traffic")]));
        assert!(!p.refused.lost(&[N("ssh"), N("user")]));
        assert!(!p.refused.lost(&[N("checks"), I(0), N("port")]));
        assert!(!p.refused.lost(&[N("checks"), I(1), N("url")]));
    }

    #[test]
    fn a_refused_table_loses_its_keys_and_a_misspelt_one_the_real_one() {
        let p: Parsed<PairFile> = parse("traffic = 3\n[shh]\nuser = \"x\"\n");
        assert!(p.value.expect("read").traffic.is_none());
        assert!(p.refused.lost(&[N("traffic")]));
        assert!(p.refused.lost(&[N("traffic"), N("method")]));
        // [ssh] is absent: `shh` may be it.
        assert!(p.refused.lost(&[N("ssh")]));
    }

    #[test]
    fn a_refused_host_loses_entries_of_hosts() {
        let p: Parsed<PairFile> =
            parse("[hosts]\nblue = \"198.51.100.1\"\n[hosts.green]\naddress = \"x\"\n");
        assert_eq!(p.value.expect("read").hosts.len(), 1);
        assert!(p.refused.lost_entries(&[N("hosts")]));
        assert!(!p.refused.lost(&[N("hosts"), N("green"), N("address")]));
    }

    #[test]
    fn an_unknown_table_with_a_subtable_is_one_unknown_key() {
        // [host.blue] for [hosts.blue]: the header's span holds `host`.
        let p: Parsed<PairFile> = parse("environment = \"dev\"\n[host.blue]\naddress = \"x\"\n");
        assert!(p.value.is_some());
        let kinds: Vec<_> = p.refusals.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [RefusalKind::UnknownKey], "{:?}", p.refusals);
        assert!(p.refused.lost(&[N("hosts")]));
    }

    #[test]
    fn a_key_too_deep_to_read_is_found() {
        let deep = vec!["a"; KEY_PARTS].join(".");
        for text in [
            format!("x = 1\n  {deep} = 1\n"),
            format!("x = 1\n  [{deep}]\n"),
        ] {
            let p: Parsed<PairFile> = parse(&text);
            assert_eq!(p.refusals.len(), 1, "{:?}", p.refusals);
            let r = &p.refusals[0];
            assert_eq!(r.kind, RefusalKind::Syntax);
            assert_eq!(r.span, 8..8, "{}", r.message);
            assert!(r.message.contains("too deep"), "{}", r.message);
        }
        // One part fewer is read.
        let text = format!("{} = 1\n", vec!["a"; KEY_PARTS - 1].join("."));
        assert_ne!(
            parse::<PairFile>(&text).refusals[0].kind,
            RefusalKind::Syntax
        );
    }

    #[test]
    fn a_syntax_error_loses_everything() {
        let p: Parsed<PairFile> = parse("environment = \"dev\n");
        assert!(p.value.is_none());
        assert_eq!(p.refusals[0].kind, RefusalKind::Syntax);
        assert!(p.refused.lost(&[N("anything")]));
    }
}
