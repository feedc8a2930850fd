//! For the unit tests: a configuration written to a temporary directory
//! (real files, loaded by `config::load`), a simulated world for one of its
//! pairs, and whole runs through `run::proceed` with the journal and the
//! state files in that directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::sim::Sim;
use super::World;
use crate::config::{self, Config, Pair};
use crate::core::cycle::{Kind, Step};
use crate::core::gate::Member;
use crate::core::op::OpKind;
use crate::exec::run::{self, Event, Finished, Places, Progress, Request};
use crate::store::journal::{CommandRecord, Journal, Record};
use crate::store::state::StateStore;

const GLOBAL: &str = "state_dir = \"state\"\nenvironments = [\"dev\", \"prod\"]\n\n[ssh]\nuser = \"deploy\"\nidentity = \"id_test\"\nknown_hosts = \"known_hosts\"\nsudo = true\n";

/// The hosts of `Lab::new`: blue and green on IPv4.
pub const HOSTS: &str = "environment = \"dev\"\nobserve_period = \"1s\"\n\n[hosts.blue]\naddress = \"198.51.100.11\"\n\n[hosts.green]\naddress = \"198.51.100.12\"\n\n";

const CHECKS: &str = "\n[[checks]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://{address}/\"\nexpect_body = \"{host}\"\n\n[[checks]]\nname = \"port\"\nkind = \"tcp\"\nport = 80\n";

const CHANGE: &str = "\n[changes.v2]\nupload = [{ from = \"site.conf\", to = \"/etc/site.conf\", mode = \"0644\" }]\nsteps = [\"deploy v2\", \"systemctl reload web\"]\nrollback = [\"cp /etc/site.conf.baton-prev /etc/site.conf\", \"systemctl reload web\"]\n";

/// The `[traffic]` line of the classic order (remove, then add), for the
/// tests of that order's steps (the overlap is the default).
pub const CLASSIC: &str = "handover = \"classic\"\n";

/// The `[traffic]` of a VIP pair, with `extra` lines.
pub fn vip(extra: &str) -> String {
    format!("[traffic]\nmethod = \"vip\"\naddress = \"198.51.100.100/24\"\ninterface = \"eth0\"\n{extra}")
}

/// The `[traffic]` of a DNS pair with two servers, with `extra` lines.
pub fn dns(extra: &str) -> String {
    format!("[traffic]\nmethod = \"dns\"\nname = \"www.example.test.\"\nzone = \"example.test.\"\nservers = [\"198.51.100.53:53\", \"198.51.100.54:53\"]\ntsig_key = \"update.key\"\n{extra}")
}

/// The `[traffic]` of a command pair.
pub fn command() -> String {
    "[traffic]\nmethod = \"command\"\nswitch = \"/usr/local/bin/lb-move {from} {to}\"\nquery = \"/usr/local/bin/lb-who\"\n".to_string()
}

/// The `[roles]` of a replicated service, with `extra` lines.
pub fn roles(extra: &str) -> String {
    format!("\n[roles]\ndemote = \"db-role demote\"\nposition = \"db-role position\"\npromote = \"db-role promote\"\nfollow = \"db-role follow {{peer_address}}\"\nresume = \"db-role resume\"\n{extra}")
}

/// A configuration in a temporary directory.
pub struct Lab {
    dir: tempfile::TempDir,
    /// The loaded configuration.
    pub config: Config,
    /// Every progress event of every run, in order.
    pub progress: Collect,
    /// Every notification the runs made, whatever `[notify]` says.
    pub notified: Arc<Mutex<Vec<crate::core::notify::Event>>>,
}

impl Lab {
    /// One pair `web` with this `[traffic]` (and `extra` top-level lines
    /// before the hosts, like `fence = "..."`), two checks and the change
    /// `v2`.
    pub fn new(traffic: &str, extra: &str) -> Lab {
        Lab::with_hosts(HOSTS, traffic, extra)
    }

    /// As `new`, with `hosts` (the pair file's `environment`, ... and
    /// `[hosts.*]` tables) instead of blue and green on IPv4.
    pub fn with_hosts(hosts: &str, traffic: &str, extra: &str) -> Lab {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let pairs = dir.path().join("pairs");
        std::fs::create_dir(&pairs).expect("pairs/");
        for f in ["id_test", "known_hosts", "update.key"] {
            for to in [dir.path().join(f), pairs.join(f)] {
                std::fs::copy(fixtures.join(f), &to).expect("a fixture");
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
            }
        }
        std::fs::write(pairs.join("site.conf"), "v2\n").expect("site.conf");
        std::fs::write(dir.path().join("baton.toml"), GLOBAL).expect("baton.toml");
        std::fs::write(
            pairs.join("web.toml"),
            format!("{extra}{hosts}{traffic}{CHECKS}{CHANGE}"),
        )
        .expect("web.toml");
        let config = match config::load(&dir.path().join("baton.toml")).select(&[]) {
            Ok((c, _)) => c,
            Err(e) => panic!("the test configuration is refused: {e:?}"),
        };
        Lab {
            dir,
            config,
            progress: Collect::default(),
            notified: Arc::default(),
        }
    }

    /// The pair.
    pub fn pair(&self) -> &Pair {
        &self.config.pairs["web"]
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.config.settings.state_dir.clone()
    }

    /// The pair's journal.
    pub fn journal(&self) -> Journal {
        Journal::new(&self.state_dir(), "web")
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A simulation of the pair, all well, traffic on blue.
    pub fn sim(&self) -> Sim {
        Sim::healthy(self.pair(), 300)
    }

    /// Runs `kind` (`None`: recover) with `change` on the pair in `world`.
    pub async fn run<W: World>(
        &self,
        world: &W,
        kind: Option<Kind>,
        change: Option<&str>,
    ) -> Finished {
        self.run_with(world, kind, change, |_| {}).await
    }

    /// As `run`, with the request adjusted first.
    pub async fn run_with<W: World>(
        &self,
        world: &W,
        kind: Option<Kind>,
        change: Option<&str>,
        adjust: impl FnOnce(&mut Request),
    ) -> Finished {
        let pair = self.pair();
        let mut req = Request {
            kind,
            change: change.map(str::to_string),
            reason: Some("test".into()),
            operator: "tester".into(),
            command: "baton test".into(),
            members: vec![Member {
                pair: "web".into(),
                environment: "dev".into(),
            }],
            skip_gate: false,
            ignore_window: false,
            force: false,
            accept_data_loss: false,
            ramp: None,
            experiment: None,
            decide: None,
            hold: None,
            reverse: false,
        };
        adjust(&mut req);
        let journal = self.journal();
        let store = StateStore::new(&self.state_dir());
        let notify = crate::exec::notify::Notifier::recording(pair, Arc::clone(&self.notified));
        let at = Places {
            journal: &journal,
            store: &store,
            progress: &self.progress,
            notify: &notify,
        };
        let last = journal.last_run().expect("the journal reads");
        let seen = world.observe(pair).await;
        run::proceed(
            &self.config,
            pair,
            &req,
            at,
            world,
            (last, format!("run-{}", journal_len(&journal))),
            (seen, Instant::now()),
        )
        .await
    }

    /// Every record of the journal.
    pub fn records(&self) -> Vec<Record> {
        self.journal().read().expect("the journal reads")
    }

    /// The steps of the last run, in order, with whether each succeeded.
    pub fn steps(&self) -> Vec<(String, bool)> {
        let records = self.records();
        let Some(run) = records.last().map(|r| r.run().to_string()) else {
            return Vec::new();
        };
        records
            .iter()
            .filter(|r| r.run() == run)
            .filter_map(|r| match r {
                Record::End { step, ok, .. } => Some((step.name().to_string(), *ok)),
                _ => None,
            })
            .collect()
    }

    /// The steps of the last run, in order, a failed one marked `!`.
    pub fn step_marks(&self) -> Vec<String> {
        self.steps()
            .into_iter()
            .map(|(s, ok)| if ok { s } else { format!("{s}!") })
            .collect()
    }

    /// The detail the journal keeps of `step`'s last end, and whether it
    /// succeeded.
    pub fn ended(&self, step: crate::core::cycle::Step) -> (String, bool) {
        self.records()
            .into_iter()
            .rev()
            .find_map(|r| match r {
                Record::End {
                    step: s,
                    detail,
                    ok,
                    ..
                } if s == step => Some((detail, ok)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{} never ended", step.name()))
    }

    /// The operations of the last run, as (step, host, kind, command).
    pub fn ops(&self) -> Vec<(String, String, OpKind, String)> {
        let records = self.records();
        let Some(run) = records.last().map(|r| r.run().to_string()) else {
            return Vec::new();
        };
        records
            .iter()
            .filter(|r| r.run() == run)
            .flat_map(|r| match r {
                Record::End { step, commands, .. } => commands
                    .iter()
                    .map(|c: &CommandRecord| {
                        (
                            step.name().to_string(),
                            c.host.clone(),
                            c.op,
                            c.command.clone(),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The operator's decision on a held run (`finish`/`ab --end --keep
    /// new`: `Keep::New`; `revert`/`--keep old`: `Keep::Old`).
    pub async fn decide<W: World>(&self, world: &W, keep: super::run::Keep) -> Finished {
        self.run_with(world, None, None, |r| r.decide = Some(keep))
            .await
    }

    /// The pair's last run as `status` sees it (held, interrupted, ...).
    pub fn last_run(&self) -> crate::core::assess::LastRun {
        crate::store::history::last_run(&crate::store::local(&self.state_dir()), "web")
            .expect("the journal reads")
    }

    /// The recorded primary.
    pub fn primary(&self) -> Option<String> {
        StateStore::new(&self.state_dir())
            .load("web")
            .expect("the state reads")
            .map(|s| s.primary)
    }

    /// The host recorded as failed.
    pub fn failed(&self) -> Option<String> {
        StateStore::new(&self.state_dir())
            .load("web")
            .expect("the state reads")
            .and_then(|s| s.failed)
    }
}

/// What the start record of a run that died says: its kind (an apply
/// applies `v2`), whether it handed the role over, its ramp.
pub struct Died {
    /// The kind of run.
    pub kind: Kind,
    /// It handed the primary role over (role hooks).
    pub roles: bool,
    /// `apply --ramp`.
    pub ramp: Option<crate::core::ramp::Ramp>,
    /// `baton ab`.
    pub experiment: Option<crate::core::experiment::Experiment>,
    /// `apply --hold`.
    pub hold: Option<std::time::Duration>,
}

impl Died {
    /// A plain apply of `v2`.
    pub fn apply() -> Died {
        Died {
            kind: Kind::Apply,
            roles: false,
            ramp: None,
            experiment: None,
            hold: None,
        }
    }
}

impl Lab {
    /// Writes the journal and the recorded roles of a run `died` from
    /// blue to green that ended the steps `done` (all well) and died
    /// inside `open`.
    pub fn interrupted(&self, died: &Died, done: &[Step], open: Option<Step>) {
        let j = self.journal();
        let (run, at) = ("crashed".to_string(), "2026-11-30T00:00:00Z".to_string());
        let change = (died.kind == Kind::Apply).then(|| "v2".to_string());
        let mut records = vec![Record::Start {
            run: run.clone(),
            pair: "web".into(),
            kind: died.kind,
            from: "blue".into(),
            to: "green".into(),
            change: change.clone(),
            label: change,
            hash: None,
            operator: "tester".into(),
            reason: None,
            gate: None,
            window: None,
            forced: None,
            roles: died.roles,
            data_loss: None,
            ramp: died.ramp.clone(),
            experiment: died.experiment.clone(),
            hold: died.hold,
            reverse: false,
            at: at.clone(),
        }];
        for step in done {
            records.push(Record::Begin {
                run: run.clone(),
                step: *step,
                at: at.clone(),
            });
            records.push(Record::End {
                run: run.clone(),
                step: *step,
                ok: true,
                detail: String::new(),
                duration_ms: 0,
                commands: vec![],
                at: at.clone(),
            });
        }
        if let Some(step) = open {
            records.push(Record::Begin {
                run,
                step,
                at: at.clone(),
            });
        }
        for r in &records {
            j.append(r).expect("a record");
        }
        let (primary, standby) = if done.contains(&Step::Switch) {
            ("green", "blue")
        } else {
            ("blue", "green")
        };
        StateStore::new(&self.state_dir())
            .save(&crate::store::state::PairState {
                pair: "web".into(),
                primary: primary.into(),
                standby: standby.into(),
                updated_at: at,
                source: "test".into(),
                failed: None,
            })
            .expect("state");
    }
}

fn journal_len(j: &Journal) -> usize {
    j.read().map(|r| r.len()).unwrap_or(0)
}

/// Progress events, kept.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Event>>);

impl Progress for Collect {
    fn event(&self, event: &Event) {
        if let Ok(mut e) = self.0.lock() {
            e.push(event.clone());
        }
    }
}
