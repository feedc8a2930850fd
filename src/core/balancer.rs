//! A load balancer's view of a pair (issue 15, HAProxy first): the
//! runtime API's commands baton sends (`show stat`, `set server B/S weight
//! N`, `set server B/S state ready|drain|maint`) as one line each, the
//! line a command runs on the balancer's host to send one (through
//! `socat`), and what an answer means; the per-server statistics it prints
//! (`show stat`, CSV with a `# pxname,svname,...` header), which servers
//! of a backend take new requests (weight above 0 and ready), the weights
//! of a ramp step, and the comparison of the two hosts over a step from
//! counter deltas, with the rule that aborts a ramp when the updated host
//! does worse. Pure: the text comes from the adapter, the decisions go to
//! the executor.

use std::collections::HashMap;

/// A server's administrative state, as the runtime API sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Takes new requests (by its weight).
    Ready,
    /// Finishes what it has, takes nothing new.
    Drain,
    /// Out of service.
    Maint,
}

impl State {
    /// Its word in the runtime API.
    pub fn word(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Drain => "drain",
            State::Maint => "maint",
        }
    }
}

/// A runtime API command baton sends. Backend and server names are
/// validated names (letters, digits, `-`, `_`, `.`, and `:` in a backend), so the line needs no
/// escaping within HAProxy's own syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Every proxy's and server's statistics.
    ShowStat,
    /// Resets the highest values (`*_max`) of every proxy's and server's
    /// statistics; totals are not touched (an A/B interval's own highest
    /// response time).
    ClearCounters,
    /// A server's weight (0 to 256).
    Weight {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
        /// The weight.
        weight: u32,
    },
    /// A server's administrative state.
    State {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
        /// The state.
        state: State,
    },
}

/// HAProxy's largest server weight.
pub const MAX_WEIGHT: u32 = 256;

impl Command {
    /// The command's line, as the runtime API reads it.
    pub fn line(&self) -> String {
        match self {
            Command::ShowStat => "show stat".to_string(),
            Command::ClearCounters => "clear counters".to_string(),
            Command::Weight {
                backend,
                server,
                weight,
            } => format!(
                "set server {backend}/{server} weight {}",
                weight.min(&MAX_WEIGHT)
            ),
            Command::State {
                backend,
                server,
                state,
            } => format!("set server {backend}/{server} state {}", state.word()),
        }
    }

    /// The shell line, run on the balancer's host as the login user, that
    /// sends the command to the admin socket at `socket` and prints the
    /// answer (`socat` in non-interactive mode: one command, the answer,
    /// end of file; at most 5 s).
    pub fn shell(&self, socket: &str) -> String {
        shell(std::slice::from_ref(self), socket)
    }
}

/// The shell line that sends `commands` to the admin socket at `socket`
/// as one line, separated by `;`: HAProxy runs them one after the other
/// within one connection, so a controller that dies after sending the
/// line cannot leave half of them undone.
pub fn shell(commands: &[Command], socket: &str) -> String {
    let line: Vec<String> = commands.iter().map(Command::line).collect();
    format!(
        "printf '%s\\n' {} | socat -t 5 stdio {}",
        crate::core::quote::quote(&line.join("; ")),
        crate::core::quote::quote(&format!("UNIX-CONNECT:{socket}"))
    )
}

/// The runtime API's commands that make `to` the only server of `backend`
/// taking new requests, at `weight`, and let `from` finish what it has:
/// `to` weighted and ready first (`take_commands`), then `from` draining.
pub fn switch_commands(backend: &str, from: &str, to: &str, weight: u32) -> Vec<Command> {
    let mut commands = take_commands(backend, to, weight);
    commands.push(Command::State {
        backend: backend.to_string(),
        server: from.to_string(),
        state: State::Drain,
    });
    commands
}

/// The commands that make `to` take new requests at `weight` (ready),
/// leaving the other server as it is: a failover's switch, whose fence
/// left the old primary's server in maintenance.
pub fn take_commands(backend: &str, to: &str, weight: u32) -> Vec<Command> {
    weight_and_state(backend, to, weight, State::Ready)
}

/// The commands that leave a drained `server` as a standby waits: weight
/// 0 first (it takes nothing new), then ready (health-checked and ready
/// for the next switch, which only has to raise its weight).
pub fn standby_commands(backend: &str, server: &str) -> Vec<Command> {
    weight_and_state(backend, server, 0, State::Ready)
}

/// A server's weight, then its state.
fn weight_and_state(backend: &str, server: &str, weight: u32, state: State) -> Vec<Command> {
    vec![
        Command::Weight {
            backend: backend.to_string(),
            server: server.to_string(),
            weight,
        },
        Command::State {
            backend: backend.to_string(),
            server: server.to_string(),
            state,
        },
    ]
}

/// The commands that fence `server`: weight 0, then maintenance (HAProxy
/// sends it nothing, not even health checks, until it is made ready).
pub fn fence_commands(backend: &str, server: &str) -> Vec<Command> {
    weight_and_state(backend, server, 0, State::Maint)
}

/// What a `set server` command's answer means: HAProxy answers nothing
/// (an empty line) when it applied it, and a sentence when it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Applied.
    Done,
    /// Refused, with HAProxy's words (`No such server.`, `Absolute weight
    /// can only be between 0 and 256 inclusive.`).
    Refused(String),
}

impl Reply {
    /// Reads a `set server` answer.
    pub fn of(text: &str) -> Reply {
        let said: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if said.is_empty() {
            Reply::Done
        } else {
            Reply::Refused(said.join(" ").chars().take(200).collect())
        }
    }
}

/// One server's line of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    /// The backend (`pxname`).
    pub backend: String,
    /// The server (`svname`).
    pub server: String,
    /// `status`: `UP`, `DOWN`, `DRAIN`, `MAINT`, `NOLB`, `no check`, or a
    /// transition like `UP 1/3`.
    pub status: String,
    /// The effective weight (`weight`).
    pub weight: u32,
    /// Current sessions (`scur`).
    pub sessions: u64,
    /// Requests sent to it since start (`req_tot`, else `stot`).
    pub requests: u64,
    /// Responses with status 5xx (`hrsp_5xx`).
    pub errors: u64,
    /// Mean response time over its last 1024 requests, ms (`rtime`).
    pub response_ms: Option<u64>,
    /// The highest response time since the counters were last cleared,
    /// ms (`rtime_max`).
    pub response_max_ms: Option<u64>,
}

impl ServerStat {
    /// Whether it takes new requests: ready (up, or not checked) with a
    /// weight above 0. A draining or maintained server finishes what it
    /// has and gets nothing new.
    pub fn serving(&self) -> bool {
        self.weight > 0 && (self.status.starts_with("UP") || self.status == "no check")
    }
}

/// Why `show stat` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatError {
    /// No `# pxname,...` header line.
    #[error("the balancer's `show stat` has no `# pxname,svname,...` header: is this HAProxy's runtime API?")]
    NoHeader,
    /// A column baton needs is missing.
    #[error("the balancer's `show stat` has no `{0}` column")]
    Missing(&'static str),
    /// A value is not a number where one must be.
    #[error("`{value}` in column `{column}` of server {server} is not a number")]
    Number {
        /// The column.
        column: &'static str,
        /// The server.
        server: String,
        /// What was there.
        value: String,
    },
    /// The backend or one of its servers is not in the statistics.
    #[error("the balancer has no server `{server}` in backend `{backend}`")]
    NoServer {
        /// The backend.
        backend: String,
        /// The server.
        server: String,
    },
}

/// Reads `show stat`: every server line (not the frontend and backend
/// summary lines), by column name, so a later HAProxy's extra columns do
/// no harm. At most `MAX_LINES` lines are read.
pub fn parse_stat(text: &str) -> Result<Vec<ServerStat>, StatError> {
    const MAX_LINES: usize = 100_000;
    let mut lines = text.lines().take(MAX_LINES);
    let header = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("# "))
        .ok_or(StatError::NoHeader)?;
    let index: HashMap<&str, usize> = header
        .split(',')
        .enumerate()
        .map(|(i, name)| (name.trim(), i))
        .collect();
    let column = |name: &'static str| index.get(name).copied().ok_or(StatError::Missing(name));
    let (px, sv, status, weight, scur) = (
        column("pxname")?,
        column("svname")?,
        column("status")?,
        column("weight")?,
        column("scur")?,
    );
    let (stot, hrsp_5xx) = (column("stot")?, column("hrsp_5xx")?);
    let req_tot = index.get("req_tot").copied();
    let rtime = index.get("rtime").copied();
    let rtime_max = index.get("rtime_max").copied();
    let mut out = Vec::new();
    for line in lines {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| fields.get(i).map_or("", |f| f.trim());
        let server = field(sv).to_string();
        if server == "FRONTEND" || server == "BACKEND" {
            continue;
        }
        let number = |name: &'static str, i: usize| -> Result<u64, StatError> {
            let v = field(i);
            if v.is_empty() {
                return Ok(0);
            }
            v.parse().map_err(|_| StatError::Number {
                column: name,
                server: server.clone(),
                value: v.chars().take(40).collect(),
            })
        };
        let requests = match req_tot {
            Some(i) if !field(i).is_empty() => number("req_tot", i)?,
            _ => number("stot", stot)?,
        };
        out.push(ServerStat {
            backend: field(px).to_string(),
            status: field(status).to_string(),
            weight: u32::try_from(number("weight", weight)?).unwrap_or(u32::MAX),
            sessions: number("scur", scur)?,
            requests,
            errors: number("hrsp_5xx", hrsp_5xx)?,
            response_ms: match rtime {
                Some(i) if !field(i).is_empty() => Some(number("rtime", i)?),
                _ => None,
            },
            response_max_ms: match rtime_max {
                Some(i) if !field(i).is_empty() => Some(number("rtime_max", i)?),
                _ => None,
            },
            server,
        });
    }
    Ok(out)
}

/// `show stat` as HAProxy prints it, with only the columns baton reads
/// (the simulation's balancer answers with it).
pub fn render_stat(stats: &[ServerStat]) -> String {
    let mut out =
        String::from("# pxname,svname,scur,stot,status,weight,hrsp_5xx,req_tot,rtime,rtime_max,\n");
    for s in stats {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},\n",
            s.backend,
            s.server,
            s.sessions,
            s.requests,
            s.status,
            s.weight,
            s.errors,
            s.requests,
            s.response_ms.map(|r| r.to_string()).unwrap_or_default(),
            s.response_max_ms.map(|r| r.to_string()).unwrap_or_default()
        ));
    }
    out.push('\n');
    out
}

/// The line of `server` in `backend`.
pub fn find<'a>(
    stats: &'a [ServerStat],
    backend: &str,
    server: &str,
) -> Result<&'a ServerStat, StatError> {
    stats
        .iter()
        .find(|s| s.backend == backend && s.server == server)
        .ok_or_else(|| StatError::NoServer {
            backend: backend.to_string(),
            server: server.to_string(),
        })
}

/// The weights of a ramp step that sends `percent` of new requests to the
/// updated host: (old host's, new host's), out of 100 (HAProxy's weights
/// are relative; 0 takes nothing new).
pub fn ramp_weights(percent: u8) -> (u32, u32) {
    let p = u32::from(percent.min(100));
    (100 - p, p)
}

/// One host's requests over a step: counter deltas between two `show
/// stat` snapshots (a counter that went back, after a reload, counts from
/// 0), its mean response time at the end, and its highest response time
/// (since the counters were last cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Requests sent to it during the step.
    pub requests: u64,
    /// Of those, 5xx responses.
    pub errors: u64,
    /// Its mean response time at the step's end, ms.
    pub response_ms: Option<u64>,
    /// Its highest response time, ms, when the balancer says.
    #[serde(default)]
    pub response_max_ms: Option<u64>,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} 5xx ({:.1}%), mean response {}",
            self.requests,
            self.errors,
            self.error_percent(),
            self.response_ms
                .map_or("unknown".to_string(), |r| format!("{r} ms"))
        )?;
        match self.response_max_ms {
            Some(high) => write!(f, ", high {high} ms"),
            None => Ok(()),
        }
    }
}

/// The runtime API's commands of a ramp step, sent as one line: `to`
/// ready at weight `new`, `from` at weight `old`.
pub fn ramp_commands(backend: &str, from: &str, to: &str, (old, new): (u32, u32)) -> Vec<Command> {
    let mut commands = weight_and_state(backend, to, new, State::Ready);
    commands.push(Command::Weight {
        backend: backend.to_string(),
        server: from.to_string(),
        weight: old,
    });
    commands
}

impl Window {
    /// The host's window between snapshots `before` and `after`.
    pub fn between(before: &ServerStat, after: &ServerStat) -> Window {
        let delta = |a: u64, b: u64| if b >= a { b - a } else { b };
        Window {
            requests: delta(before.requests, after.requests),
            errors: delta(before.errors, after.errors),
            response_ms: after.response_ms,
            response_max_ms: after.response_max_ms,
        }
    }

    /// Its error rate in percent (0 without requests).
    pub fn error_percent(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 * 100.0 / self.requests as f64
        }
    }
}

/// When a ramp aborts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// How many percentage points the updated host's error rate may exceed
    /// the other's.
    pub max_error_increase: f64,
    /// How many times the other's mean response time the updated host's may
    /// be.
    pub max_latency_factor: f64,
    /// Below this many requests to the updated host in a step, the step
    /// judges nothing (too few to tell), except that any error among them
    /// while the other host had none aborts.
    pub min_requests: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_error_increase: 1.0,
            max_latency_factor: 2.0,
            min_requests: 20,
        }
    }
}

/// What a step's comparison decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// The updated host does as well as the limits ask: go on.
    Continue,
    /// Too few requests reached the updated host to tell.
    TooFew {
        /// How many did.
        requests: u64,
    },
    /// It does worse: abort the ramp.
    Abort(String),
}

/// Compares the updated host (`new`) with the other (`old`) over a step.
pub fn judge(old: &Window, new: &Window, limits: &Limits) -> Judgement {
    let (eo, en) = (old.error_percent(), new.error_percent());
    if new.requests < limits.min_requests {
        if new.errors > 0 && old.errors == 0 {
            return Judgement::Abort(format!(
                "the updated host answered {} of its {} requests with 5xx, the other none of its {}",
                new.errors, new.requests, old.requests
            ));
        }
        return Judgement::TooFew {
            requests: new.requests,
        };
    }
    if en - eo > limits.max_error_increase {
        return Judgement::Abort(format!(
            "the updated host's error rate is {en:.1}% ({} of {}), the other's {eo:.1}% ({} of {}): more than {} points worse",
            new.errors, new.requests, old.errors, old.requests, limits.max_error_increase
        ));
    }
    if let (Some(o), Some(n)) = (old.response_ms, new.response_ms) {
        // A floor of 1 ms: a host answering in 0 ms makes no factor.
        let (o, n) = (o.max(1) as f64, n as f64);
        if n > o * limits.max_latency_factor {
            return Judgement::Abort(format!(
                "the updated host's mean response time is {n:.0} ms, the other's {o:.0} ms: more than {} times as long",
                limits.max_latency_factor
            ));
        }
    }
    Judgement::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 62 of the 128 columns of HAProxy 2.6.12's `show stat`, in
    /// its order (enough for every name baton reads).
    const COLUMNS: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime";

    /// A line of `show stat` with these values, the rest empty.
    fn row(values: &[(&str, &str)]) -> String {
        COLUMNS
            .split(',')
            .map(|c| values.iter().find(|(k, _)| *k == c).map_or("", |(_, v)| *v))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn stat() -> String {
        let server = |sv, status, weight, scur, stot, e5, rtime| {
            row(&[
                ("pxname", "lb"),
                ("svname", sv),
                ("status", status),
                ("weight", weight),
                ("scur", scur),
                ("stot", stot),
                ("req_tot", stot),
                ("hrsp_5xx", e5),
                ("rtime", rtime),
            ])
        };
        [
            format!("# {COLUMNS}"),
            row(&[
                ("pxname", "fe"),
                ("svname", "FRONTEND"),
                ("status", "OPEN"),
                ("scur", "0"),
                ("stot", "1020"),
            ]),
            server("teal", "UP", "90", "2", "103", "2", "2"),
            server("coral", "DRAIN", "10", "0", "919", "18", "40"),
            row(&[
                ("pxname", "lb"),
                ("svname", "BACKEND"),
                ("status", "UP"),
                ("weight", "100"),
                ("stot", "1022"),
            ]),
            String::new(),
        ]
        .join("\n")
    }

    #[test]
    fn show_stat_is_read_by_column_name_server_lines_only() {
        let s = parse_stat(&stat()).unwrap();
        assert_eq!(s.len(), 2);
        let teal = find(&s, "lb", "teal").unwrap();
        assert_eq!(
            (
                teal.status.as_str(),
                teal.weight,
                teal.sessions,
                teal.requests,
                teal.errors,
                teal.response_ms
            ),
            ("UP", 90, 2, 103, 2, Some(2))
        );
        let coral = find(&s, "lb", "coral").unwrap();
        assert_eq!(
            (coral.requests, coral.errors, coral.response_ms),
            (919, 18, Some(40))
        );
        assert!(teal.serving());
        // Draining: its weight column still says 10, but it takes nothing new.
        assert!(!coral.serving());
        assert_eq!(
            find(&s, "lb", "amber"),
            Err(StatError::NoServer {
                backend: "lb".into(),
                server: "amber".into()
            })
        );
    }

    /// What the lab's HAProxy 2.6.12 printed (all 128 columns) with teal
    /// at weight 100 and coral draining at weight 0, after 5 requests.
    #[test]
    fn the_real_show_stat_of_haproxy_2_6_is_read() {
        let text = include_str!("../../tests/fixtures/haproxy-show-stat.csv");
        let s = parse_stat(text).unwrap();
        let names: Vec<&str> = s.iter().map(|x| x.server.as_str()).collect();
        assert_eq!(names, ["teal", "coral"]);
        let teal = find(&s, "lb", "teal").unwrap();
        assert!(teal.serving(), "{teal:?}");
        assert_eq!((teal.weight, teal.requests), (100, 5));
        let coral = find(&s, "lb", "coral").unwrap();
        assert_eq!(coral.status, "DRAIN");
        assert!(!coral.serving());
        assert_eq!(coral.requests, 0);
    }

    #[test]
    fn what_is_not_show_stat_is_refused_with_the_reason() {
        assert_eq!(parse_stat("Unknown command.\n"), Err(StatError::NoHeader));
        assert_eq!(
            parse_stat("# pxname,svname,status\nlb,teal,UP\n"),
            Err(StatError::Missing("weight"))
        );
        let bad = stat().replace("UP,90,", "UP,ninety,");
        assert!(matches!(
            parse_stat(&bad),
            Err(StatError::Number {
                column: "weight",
                ..
            })
        ));
    }

    #[test]
    fn serving_needs_a_weight_and_a_ready_state() {
        let mut s = parse_stat(&stat()).unwrap()[0].clone();
        for (status, weight, serving) in [
            ("UP", 1, true),
            ("UP 1/3", 5, true),
            ("no check", 5, true),
            ("UP", 0, false),
            ("MAINT", 100, false),
            ("DOWN", 100, false),
            ("NOLB", 100, false),
        ] {
            s.status = status.into();
            s.weight = weight;
            assert_eq!(s.serving(), serving, "{status} {weight}");
        }
    }

    #[test]
    fn commands_are_one_line_sent_through_socat_quoted() {
        let w = Command::Weight {
            backend: "lb".into(),
            server: "coral".into(),
            weight: 300,
        };
        assert_eq!(w.line(), "set server lb/coral weight 256");
        let d = Command::State {
            backend: "lb".into(),
            server: "teal".into(),
            state: State::Drain,
        };
        assert_eq!(d.line(), "set server lb/teal state drain");
        assert_eq!(Command::ShowStat.line(), "show stat");
        assert_eq!(
            d.shell("/var/lib/baton-lab/hosts/lb/haproxy.sock"),
            "printf '%s\\n' 'set server lb/teal state drain' | socat -t 5 stdio UNIX-CONNECT:/var/lib/baton-lab/hosts/lb/haproxy.sock"
        );
        // A socket path with a space or a quote stays one word.
        assert!(Command::ShowStat
            .shell("/run/ha proxy/a'b.sock")
            .ends_with("stdio 'UNIX-CONNECT:/run/ha proxy/a'\\''b.sock'"));
    }

    #[test]
    fn a_switch_is_one_line_of_three_commands_new_first() {
        let line = shell(
            &switch_commands("lb", "teal", "coral", 100),
            "/run/haproxy.sock",
        );
        assert_eq!(
            line,
            "printf '%s\\n' 'set server lb/coral weight 100; set server lb/coral state ready; set server lb/teal state drain' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy.sock"
        );
        let standby: Vec<String> = standby_commands("lb", "teal")
            .iter()
            .map(Command::line)
            .collect();
        assert_eq!(
            standby,
            [
                "set server lb/teal weight 0",
                "set server lb/teal state ready"
            ]
        );
        let fence: Vec<String> = fence_commands("lb", "teal")
            .iter()
            .map(Command::line)
            .collect();
        assert_eq!(
            fence,
            [
                "set server lb/teal weight 0",
                "set server lb/teal state maint"
            ]
        );
    }

    #[test]
    fn rendered_stat_reads_back_the_same() {
        let stats = parse_stat(&stat()).unwrap();
        assert_eq!(parse_stat(&render_stat(&stats)).unwrap(), stats);
    }

    #[test]
    fn an_empty_answer_is_done_and_a_sentence_a_refusal() {
        assert_eq!(Reply::of("\n"), Reply::Done);
        assert_eq!(Reply::of(""), Reply::Done);
        assert_eq!(
            Reply::of("No such server.\n\n"),
            Reply::Refused("No such server.".into())
        );
    }

    #[test]
    fn ramp_weights_split_a_hundred() {
        assert_eq!(ramp_weights(1), (99, 1));
        assert_eq!(ramp_weights(50), (50, 50));
        assert_eq!(ramp_weights(100), (0, 100));
        assert_eq!(ramp_weights(250), (0, 100));
    }

    fn window(requests: u64, errors: u64, response_ms: u64) -> Window {
        Window {
            requests,
            errors,
            response_ms: Some(response_ms),
            response_max_ms: None,
        }
    }

    #[test]
    fn a_step_is_judged_from_the_two_hosts_deltas() {
        let l = Limits::default();
        // As good: go on.
        assert_eq!(
            judge(&window(900, 1, 3), &window(100, 0, 4), &l),
            Judgement::Continue
        );
        // 20 % errors against none: abort, saying both rates.
        let Judgement::Abort(why) = judge(&window(900, 0, 3), &window(100, 20, 3), &l) else {
            panic!("must abort");
        };
        assert!(
            why.contains("20.0% (20 of 100)") && why.contains("0.0% (0 of 900)"),
            "{why}"
        );
        // Slower than twice the other: abort.
        assert!(matches!(
            judge(&window(900, 0, 10), &window(100, 0, 25), &l),
            Judgement::Abort(_)
        ));
        // Within one point: go on.
        assert_eq!(
            judge(&window(1000, 10, 3), &window(100, 1, 3), &l),
            Judgement::Continue
        );
        // Too few requests to tell, unless errors where the other had none.
        assert_eq!(
            judge(&window(900, 0, 3), &window(5, 0, 3), &l),
            Judgement::TooFew { requests: 5 }
        );
        assert!(matches!(
            judge(&window(900, 0, 3), &window(5, 1, 3), &l),
            Judgement::Abort(_)
        ));
    }

    #[test]
    fn a_window_is_the_counters_delta_and_survives_a_reset() {
        let s = parse_stat(&stat()).unwrap();
        let mut later = s[0].clone();
        later.requests += 50;
        later.errors += 5;
        assert_eq!(Window::between(&s[0], &later), window(50, 5, 2));
        // A reload reset the counters: what is there counts.
        let mut reset = s[0].clone();
        reset.requests = 7;
        reset.errors = 0;
        assert_eq!(Window::between(&s[0], &reset).requests, 7);
        assert!((window(200, 3, 1).error_percent() - 1.5).abs() < 1e-9);
        assert_eq!(Window::default().error_percent(), 0.0);
    }
}
