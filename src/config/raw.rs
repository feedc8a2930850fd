//! The configuration files exactly as written: serde structures for
//! `baton.toml` and `pairs/*.toml`. Unknown keys are errors. Nothing here is
//! checked beyond its TOML type; `validate` turns these into the typed model.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

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
    #[serde(default)]
    pub ssh: SshFile,
    /// Maintenance windows for every pair.
    pub maintenance: Option<MaintenanceFile>,
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
    #[serde(default)]
    pub hosts: BTreeMap<String, HostFile>,
    pub ssh: Option<SshFile>,
    pub maintenance: Option<MaintenanceFile>,
    pub traffic: Option<TrafficFile>,
    #[serde(default)]
    pub checks: Vec<CheckFile>,
    #[serde(default)]
    pub changes: BTreeMap<String, ChangeFile>,
}

/// `[hosts.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    pub address: Option<String>,
    pub ssh_port: Option<u16>,
}

/// `[traffic]`: which keys apply depends on `method`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficFile {
    pub method: Option<String>,
    // vip
    pub address: Option<String>,
    pub interface: Option<String>,
    pub arp_count: Option<u32>,
    pub batch: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub quiesce: Option<Duration>,
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
