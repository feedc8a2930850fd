//! The validated configuration model: every value parsed into its real type
//! (addresses, durations, DNS names, key material), every path resolved. Code
//! outside `config` only ever sees these types.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::tsig::TsigKey;

/// The whole configuration: global settings and every pair.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `baton.toml` this was loaded from.
    pub file: PathBuf,
    /// Settings for all pairs.
    pub settings: Settings,
    /// Pairs by name (the pair file's stem), sorted.
    pub pairs: BTreeMap<String, Pair>,
}

/// The longest hold (`hold`, `[holds]`, `apply --hold`).
pub const MAX_HOLD: Duration = Duration::from_secs(30 * 86400);

/// Global settings from `baton.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where state files, journals and locks live.
    pub state_dir: PathBuf,
    /// Environments in order, earliest first.
    pub environments: Vec<String>,
    /// A change must have completed on the earlier environments at least
    /// this long ago.
    pub soak: Option<Duration>,
    /// The maintenance windows of every pair whose file has none of its own.
    pub maintenance: Maintenance,
    /// The hold of each environment that has one (`[holds]`).
    pub holds: BTreeMap<String, Duration>,
    /// An unattended `apply` first finishes the holds that expired.
    pub finish_expired_holds: bool,
    /// How `baton watch` watches (`[watch]`).
    pub watch: Watch,
    /// Notifications of every pair whose file has no `[notify]` of its own
    /// (a pair's keys replace these one by one).
    pub notify: Notify,
    /// Where state, journals, locks and the gate's history live (`[store]`).
    pub store: StoreKind,
}

/// Where baton keeps its state (`[store]` in baton.toml).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// Files in `state_dir` (the default).
    #[default]
    Local,
    /// An etcd cluster (`kind = "etcd"`).
    Etcd(EtcdStore),
}

/// An etcd cluster holding baton's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdStore {
    /// Client URLs (`http://` or `https://`), tried in turn.
    pub endpoints: Vec<String>,
    /// Every key baton writes starts with this (ends with `/`).
    pub prefix: String,
    /// The lease of this controller's locks and leadership: a controller
    /// that dies releases them this long after its last keep-alive.
    pub ttl: Duration,
    /// One request's limit (connecting included).
    pub timeout: Duration,
    /// The CA that signed the members' certificates (https endpoints).
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for clusters that ask for one.
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
    /// A user for etcd's authentication.
    pub user: Option<String>,
    /// The file holding that user's password (never shown or logged).
    pub password_file: Option<PathBuf>,
}

/// How `baton watch` watches the pairs (`[watch]` in baton.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// Time between two observations of every pair.
    pub interval: Duration,
    /// Consecutive failed observations of a primary that make a failover.
    pub failure_threshold: u32,
    /// At most one automatic failover per pair in this time.
    pub cooldown: Duration,
    /// Watchers that must see a primary unreachable before a failover for
    /// that reason alone.
    pub quorum: usize,
}

impl Default for Watch {
    fn default() -> Watch {
        Watch {
            interval: Duration::from_secs(10),
            failure_threshold: 3,
            cooldown: Duration::from_secs(600),
            quorum: 1,
        }
    }
}

impl Watch {
    /// The rules' view of it.
    pub fn policy(&self) -> crate::core::watch::Policy {
        crate::core::watch::Policy {
            failure_threshold: self.failure_threshold,
            cooldown_secs: self.cooldown.as_secs(),
            quorum: self.quorum,
        }
    }
}

/// Where a run's notifications go (`[notify]`): a local command and/or a
/// webhook, which moments, and how long each may take.
#[derive(Debug, Clone)]
pub struct Notify {
    /// A local command (`sh -c`) that gets the event on stdin.
    pub command: Option<String>,
    /// A webhook the event is POSTed to.
    pub webhook: Option<WebhookUrl>,
    /// Which moments are sent.
    pub on: crate::core::notify::Filter,
    /// How long each notifier may take before it is given up (a command
    /// killed with its process group).
    pub timeout: Duration,
}

/// The default time a notifier may take.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest time a notifier may be given.
pub const NOTIFY_TIMEOUT_MAX: Duration = Duration::from_secs(60);

impl Notify {
    /// No notifier.
    pub fn none() -> Notify {
        Notify {
            command: None,
            webhook: None,
            on: crate::core::notify::Filter::default(),
            timeout: NOTIFY_TIMEOUT,
        }
    }

    /// Whether anything is ever sent.
    pub fn active(&self) -> bool {
        (self.command.is_some() || self.webhook.is_some())
            && self.on != crate::core::notify::Filter::NONE
    }
}

/// A webhook's URL (http or https). It usually holds a token: its
/// `Debug` and [`shown`](WebhookUrl::shown) keep only the scheme, host and
/// port.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// A URL already checked to be http(s) with a host.
    pub fn new(url: String) -> WebhookUrl {
        WebhookUrl(url)
    }

    /// The whole URL, to send to (never to show).
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// As baton shows it: `https://hooks.example/…`.
    pub fn shown(&self) -> String {
        crate::core::notify::shown_url(&self.0)
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.shown())
    }
}

/// One service pair.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The pair's name: its file's stem.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its environment (one of `Settings::environments`).
    pub environment: String,
    /// Canary pairs go before the rest of their environment.
    pub canary: bool,
    /// Prints the service version on a host.
    pub version_command: Option<String>,
    /// Local command that fences a host during a failover (`{host}`,
    /// `{address}` filled, shell-quoted).
    pub fence: Option<String>,
    /// How long the service address is watched after a switch.
    pub observe_period: Duration,
    /// How long an apply holds the old primary on the old version after
    /// the switch (the pair's `hold`, else its environment's); `None`: no
    /// hold.
    pub hold: Option<Duration>,
    /// Exactly two hosts, sorted by name.
    pub hosts: [Host; 2],
    /// How to reach the hosts.
    pub ssh: SshSettings,
    /// When runs may start.
    pub maintenance: Maintenance,
    /// How traffic moves.
    pub traffic: Traffic,
    /// Health checks, run against each host.
    pub checks: Vec<Check>,
    /// Named changes.
    pub changes: BTreeMap<String, Change>,
    /// The role hooks of a replicated service (`[roles]`): with them, a
    /// run hands the primary role over as well as traffic.
    pub roles: Option<Roles>,
    /// Where its runs' notifications go (its `[notify]` over baton.toml's).
    pub notify: Notify,
}

impl Pair {
    /// The host with this name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The other host of the pair.
    pub fn other(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name != name)
    }
}

/// A pair's maintenance windows, resolved from its file and baton.toml.
#[derive(Debug, Clone)]
pub struct Maintenance {
    /// The time zone the windows are in.
    pub time_zone: jiff::tz::TimeZone,
    /// Its name, for messages (`Europe/Berlin`, or `system` when unnamed).
    pub zone_name: String,
    /// The windows; empty means any time.
    pub windows: Vec<crate::core::window::Window>,
    /// How long a run takes when the journal has no history to tell.
    pub estimate: Duration,
}

impl Maintenance {
    /// Any time, in the system's time zone, with the default estimate.
    pub fn any_time() -> Maintenance {
        let time_zone = jiff::tz::TimeZone::system();
        Maintenance {
            zone_name: time_zone.iana_name().unwrap_or("system").to_string(),
            time_zone,
            windows: vec![],
            estimate: DEFAULT_ESTIMATE,
        }
    }
}

/// The expected duration of a run when neither the journal nor the
/// configuration says (`[maintenance] estimate`).
pub const DEFAULT_ESTIMATE: Duration = Duration::from_secs(600);

/// One host of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The name the user chose (`blue`, `db1`).
    pub name: String,
    /// Its own address (not the service address).
    pub address: IpAddr,
    /// SSH port (from the host, else the pair's/global `ssh.port`, else 22).
    pub ssh_port: u16,
}

/// Resolved SSH settings for a pair.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// Remote login user.
    pub user: String,
    /// Private key file; `None` means the ssh agent.
    pub identity: Option<PathBuf>,
    /// Environment variable holding the key's passphrase.
    pub passphrase_env: Option<String>,
    /// OpenSSH known_hosts file, verified strictly.
    pub known_hosts: PathBuf,
    /// Record unknown host keys instead of refusing them (never changed ones).
    pub accept_new_host_keys: bool,
    /// Time allowed to connect and authenticate.
    pub connect_timeout: Duration,
    /// Time allowed for one remote command.
    pub command_timeout: Duration,
    /// Run privileged commands through `sudo -n`.
    pub sudo: bool,
    /// Jump hosts to reach the pair's hosts through, in order (`jump`
    /// under `[ssh]`); empty: connect directly.
    pub jump: Vec<Jump>,
    /// What a host's own settings, or `[ssh] config`, change for it, by
    /// host name (absent: the settings above as they are).
    pub routes: std::collections::BTreeMap<String, Route>,
}

/// One jump host (`user@host:port`): reached over SSH, its host key
/// verified like any other, then asked to open a connection onward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    /// Login user there (else the pair's).
    pub user: Option<String>,
    /// Its address or name, as written.
    pub host: String,
    /// Its SSH port.
    pub port: u16,
}

impl std::fmt::Display for Jump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How one host is reached when that differs from its pair's `[ssh]`:
/// its own `jump`, or what `[ssh] config` (an OpenSSH client configuration)
/// says for it. Each `Some` replaces the pair's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Login user (`User`).
    pub user: Option<String>,
    /// SSH port (`Port`).
    pub port: Option<u16>,
    /// Private key (`IdentityFile`).
    pub identity: Option<PathBuf>,
    /// Jump hosts (the host's `jump`, or `ProxyJump`); `Some(empty)`: none.
    pub jump: Option<Vec<Jump>>,
    /// Where these came from, for `check` (`[hosts.X] jump`, `~/.ssh/config`).
    pub from: Vec<String>,
}

/// How traffic moves between the hosts.
#[derive(Debug, Clone)]
pub enum Traffic {
    /// A virtual IP moved between the hosts.
    Vip(Vip),
    /// An A/AAAA record changed by RFC 2136 update.
    Dns(Dns),
    /// The user's own hooks.
    Command(CommandSwitch),
    /// An HAProxy balancer in front of the pair, driven through its
    /// runtime API.
    Haproxy(Haproxy),
}

impl Traffic {
    /// The method's name as written in configuration.
    pub fn method(&self) -> &'static str {
        match self {
            Traffic::Vip(_) => "vip",
            Traffic::Dns(_) => "dns",
            Traffic::Command(_) => "command",
            Traffic::Haproxy(_) => "haproxy",
        }
    }
}

/// A virtual IP.
#[derive(Debug, Clone)]
pub struct Vip {
    /// The service address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The interface it lives on, on both hosts.
    pub interface: String,
    /// How many gratuitous ARPs to send after moving it.
    pub arp_count: u32,
    /// Start `ip -batch -` on both hosts before the switch, so removing and
    /// adding the address each cost one line to a running `ip` instead of
    /// starting sudo inside the switch (falls back when sudo refuses it).
    pub batch: bool,
    /// Before the address leaves the old primary, it stops accepting new
    /// TCP connections to it (nftables drops their SYNs; clients retry in a
    /// second, by when the new primary has it) for this long, so that the
    /// connections already open can finish. None: no quiescing.
    pub quiesce: Option<Duration>,
    /// The order of the move (`handover`; the overlap unless `classic`
    /// is chosen or `quiesce` set).
    pub handover: Handover,
    /// Whether the pair file chose the order (`handover` or `overlap`
    /// written): a host that cannot take part in a chosen overlap degrades
    /// the pair, in the default one it is only noted.
    pub handover_chosen: bool,
}

/// The order in which a VIP moves between two hosts (`handover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// Remove from the old holder, then add on the new one: for a moment
    /// of two round trips no host holds the address, and a SYN sent then
    /// waits for TCP's retransmission a second later.
    Classic,
    /// The new host takes the address (and new connections) first while
    /// the old one keeps it this long for the connections it already has,
    /// which the new host hands back to it (`traffic::handover`); then the
    /// old one lets go. No moment without a holder; every rule and the old
    /// host's address lapse by themselves.
    Overlap(Duration),
}

/// How long the old holder keeps the address in an overlap handover
/// when `overlap` is not set.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(1);

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// A DNS record switched by dynamic update.
#[derive(Debug, Clone)]
pub struct Dns {
    /// The absolute record name (`www.example.com.`).
    pub name: String,
    /// The absolute zone (`example.com.`).
    pub zone: String,
    /// Every authoritative server of the zone.
    pub servers: Vec<SocketAddr>,
    /// The TSIG key that signs updates.
    pub tsig_key: TsigKey,
    /// Lower the record's TTL to this, one old TTL ahead of the switch, so
    /// the drain is short.
    pub switch_ttl: Option<u32>,
    /// The record's normal TTL, which the switched record gets (default:
    /// the TTL it had before the run).
    pub ttl: Option<u32>,
    /// How long every server may take, after the UPDATE, to serve the new
    /// answer (zone transfer to the secondaries) before the switch fails.
    pub propagation_timeout: Duration,
}

/// An HAProxy balancer whose backend has one server per host of the
/// pair, named after the host. baton reaches the balancer's host over SSH
/// (the pair's `[ssh]` settings, its host key verified like the others')
/// and sends runtime API commands to the admin socket there: no reload,
/// no restart.
#[derive(Debug, Clone)]
pub struct Haproxy {
    /// The balancer's host: a name for messages and the journal, its
    /// address and SSH port.
    pub host: Host,
    /// The admin socket's path on the balancer's host (the login user must
    /// be able to write it: level admin).
    pub socket: String,
    /// The backend whose servers are the pair's hosts.
    pub backend: String,
    /// The frontend the service answers on: the service address.
    pub frontend: SocketAddr,
    /// The weight of the server that holds traffic (1 to 256); the other
    /// has weight 0.
    pub weight: u32,
    /// How long the drain waits for the old server's current sessions to
    /// end.
    pub drain_timeout: Duration,
    /// When a ramp step or an A/B experiment aborts: the updated host
    /// compared with the other from the balancer's counters.
    pub limits: crate::core::balancer::Limits,
}

/// Hooks that switch and report traffic.
#[derive(Debug, Clone)]
pub struct CommandSwitch {
    /// Run locally to move traffic; `{from}`/`{to}` and their addresses filled.
    pub switch: String,
    /// Run locally; prints the name or address of the host holding traffic.
    pub query: String,
}

/// The kind of a health check, with its kind-specific settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// An HTTP(S) request, pinned to the host's address.
    Http {
        /// URL with `{address}`/`{host}` placeholders.
        url: String,
        /// Status expected.
        expect_status: u16,
        /// Text the body must contain (placeholders filled).
        expect_body: Option<String>,
        /// Extra CA certificates (PEM) trusted for https, beside the system's.
        ca_file: Option<PathBuf>,
    },
    /// A TCP connect.
    Tcp {
        /// Port to connect to on the host's address.
        port: u16,
    },
    /// A DNS question whose answer must contain a value.
    Dns {
        /// Name asked.
        query: String,
        /// Record type asked.
        record_type: String,
        /// Server asked (`{address}` placeholder allowed).
        server: String,
        /// Value expected among the answers (placeholders filled).
        expect: String,
    },
    /// A command run on the host over SSH; exit 0 passes.
    Command {
        /// The command.
        command: String,
        /// Text its output must contain.
        expect_output: Option<String>,
    },
}

/// Where a check must pass: on the primary, on the standby, or on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckRole {
    /// Wherever the pair's checks run (the default).
    #[default]
    Any,
    /// Only on the host verified as the primary (through the service
    /// address after a switch, and the primary in `status`).
    Primary,
    /// Only on a host verified as the standby (before it takes over in a
    /// pair without role hooks, before `promote` and after `follow` in a
    /// pair with them, and the standby in `status`).
    Standby,
}

impl CheckRole {
    /// Its name as written.
    pub fn name(self) -> &'static str {
        match self {
            CheckRole::Any => "any",
            CheckRole::Primary => "primary",
            CheckRole::Standby => "standby",
        }
    }

    /// Whether a check of this role runs where a host is verified as
    /// `role` (`Primary` or `Standby`).
    pub fn runs_as(self, role: CheckRole) -> bool {
        self == CheckRole::Any || self == role
    }
}

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Name shown in output.
    pub name: String,
    /// What is checked.
    pub kind: CheckKind,
    /// Where it must pass.
    pub role: CheckRole,
    /// Consecutive successes needed.
    pub successes: u32,
    /// Failures tolerated before the check fails.
    pub failures_allowed: u32,
    /// Time between attempts.
    pub interval: Duration,
    /// Time allowed for one attempt.
    pub timeout: Duration,
}

/// The role hooks of a replicated service: commands run on a host over
/// SSH (as the login user, through the shell), each within its timeout,
/// and the lag a hand-over accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// The primary stops accepting writes and flushes.
    pub demote: RoleHook,
    /// Prints `STATE POSITION [SECONDS]` (`core::roles::Report`).
    pub position: RoleHook,
    /// The standby becomes writable.
    pub promote: RoleHook,
    /// The host becomes a standby of its peer (`{peer_address}`).
    pub follow: RoleHook,
    /// A demoted primary accepts writes again.
    pub resume: RoleHook,
    /// How long a hand-over waits for the standby to reach the old
    /// primary's final position.
    pub catch_up_timeout: Duration,
    /// How far (bytes, or the position's unit) a planned hand-over may
    /// leave the standby behind the old primary's final position.
    pub max_lag: u64,
    /// How far behind the last position seen from the old primary a
    /// standby may be for a failover to promote it.
    pub max_lag_on_failover: u64,
}

/// One role hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleHook {
    /// The command line (placeholders `{host}`, `{address}`, `{peer}`,
    /// `{peer_address}`).
    pub command: String,
    /// Its time limit.
    pub timeout: Duration,
}

/// A change: files to upload and steps to run.
#[derive(Debug, Clone)]
pub struct Change {
    /// Its name (`[changes.NAME]`).
    pub name: String,
    /// Human label (defaults to the name).
    pub label: String,
    /// Files to upload.
    pub upload: Vec<Upload>,
    /// Commands run in order.
    pub steps: Vec<String>,
    /// Commands run to undo the change.
    pub rollback: Vec<String>,
}

impl Change {
    /// Whether it can be rolled back: it has rollback steps, or uploads
    /// that a rollback puts back (`core::restore`).
    pub fn reversible(&self) -> bool {
        !self.rollback.is_empty() || !self.upload.is_empty()
    }
}

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Local file.
    pub from: PathBuf,
    /// Absolute remote path.
    pub to: String,
    /// Permission bits.
    pub mode: u32,
}
