//! The bad-configuration corpus: every file under tests/config-corpus/ is a
//! broken pair file (or, under global/, a broken baton.toml) whose first two
//! lines say which message baton must give and at which line and column.
//! Each must be refused with exactly that message there and nothing else
//! (one mistake, one message: nothing that merely follows from it), and
//! loading it must create nothing. `BLESS=1` rewrites the `# at:` lines after a deliberate
//! change of positions (review the diff!).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use baton::config;

const GOOD_GLOBAL: &str = "state_dir = \"state\"\nenvironments = [\"dev\", \"test\", \"prod\"]\n\n[ssh]\nuser = \"deploy\"\nidentity = \"id_test\"\nknown_hosts = \"known_hosts\"\n";

const GOOD_PAIR: &str = "environment = \"dev\"\n\n[hosts.blue]\naddress = \"198.51.100.11\"\n\n[hosts.green]\naddress = \"198.51.100.12\"\n\n[traffic]\nmethod = \"vip\"\naddress = \"198.51.100.100/24\"\ninterface = \"eth0\"\n\n[[checks]]\nkind = \"http\"\nurl = \"http://{address}/\"\n";

/// A pair whose traffic an HAProxy balancer moves (`lb`, a third machine).
const GOOD_HAPROXY_PAIR: &str = "environment = \"dev\"\n\n[hosts.teal]\naddress = \"198.51.100.41\"\n\n[hosts.coral]\naddress = \"198.51.100.42\"\n\n[traffic]\nmethod = \"haproxy\"\nhost = \"lb\"\naddress = \"198.51.100.40\"\nsocket = \"/run/haproxy/admin.sock\"\nbackend = \"shop\"\nfrontend = \"198.51.100.40:80\"\n\n[[checks]]\nkind = \"http\"\nurl = \"http://{address}/\"\n";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config-corpus")
}

/// A fresh configuration directory with the fixtures copied in.
fn setup(global: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    fs::create_dir(dir.path().join("pairs")).unwrap();
    for entry in fs::read_dir(&fixtures).unwrap() {
        let entry = entry.unwrap();
        for target in [dir.path().to_path_buf(), dir.path().join("pairs")] {
            let to = target.join(entry.file_name());
            fs::copy(entry.path(), &to).unwrap();
            let mode = if entry.file_name() == "world.key" {
                0o644
            } else {
                0o600
            };
            fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    fs::write(dir.path().join("baton.toml"), global).unwrap();
    dir
}

struct Case {
    path: PathBuf,
    text: String,
    expect: String,
    at: String,
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let expect = lines
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("first line: # expect: MESSAGE")
            .to_string();
        let at = lines
            .next()
            .and_then(|l| l.strip_prefix("# at: "))
            .expect("second line: # at: LINE:COLUMN")
            .to_string();
        out.push(Case {
            path,
            text,
            expect,
            at,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn run(case: &Case, global: bool, failures: &mut Vec<String>) {
    let name = case
        .path
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dir = if global {
        let d = setup(&case.text);
        fs::write(d.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
        d
    } else {
        let d = setup(GOOD_GLOBAL);
        fs::write(d.path().join(format!("pairs/{name}.toml")), &case.text).unwrap();
        d
    };
    let loaded = config::load(&dir.path().join("baton.toml"));
    let problems: Vec<_> = loaded
        .problems
        .iter()
        .map(|p| p.diagnostic.clone())
        .collect();
    if !loaded.warnings.is_empty() {
        failures.push(format!(
            "{name}: unexpected warnings: {:#?}",
            loaded.warnings
        ));
    }
    if problems.len() != 1 {
        failures.push(format!(
            "{name}: expected exactly one problem, got {}: {problems:#?}",
            problems.len()
        ));
    }
    let found = problems.iter().find(|d| d.message.contains(&case.expect));
    match found {
        None => failures.push(format!(
            "{name}: expected a problem containing {:?}, got: {problems:#?}",
            case.expect
        )),
        Some(d) => {
            let at = format!("{}:{}", d.line, d.column);
            if at != case.at {
                if std::env::var_os("BLESS").is_some() {
                    let text = case.text.replacen(
                        &format!("# at: {}", case.at),
                        &format!("# at: {at}"),
                        1,
                    );
                    fs::write(&case.path, text).unwrap();
                } else {
                    failures.push(format!(
                        "{name}: {:?} reported at {at}, the corpus says {}",
                        case.expect, case.at
                    ));
                }
            }
            if d.fix.is_empty() {
                failures.push(format!("{name}: the problem has no fix: {d}"));
            }
            let file = if global {
                "baton.toml".to_string()
            } else {
                format!("{name}.toml")
            };
            if !d.file.ends_with(&file) {
                failures.push(format!(
                    "{name}: the problem names {} instead of {file}",
                    d.file.display()
                ));
            }
        }
    }
    // A broken file never yields a usable pair and never writes anything.
    if loaded.select(&[]).is_ok() {
        failures.push(format!("{name}: the configuration was accepted"));
    }
    if dir.path().join("state").exists() {
        failures.push(format!("{name}: loading created the state directory"));
    }
}

#[test]
fn every_bad_pair_file_is_refused_with_its_message_and_position() {
    let cases = cases(&corpus());
    assert!(
        cases.len() >= 30,
        "the corpus holds {} pair cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        run(case, false, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_bad_global_file_is_refused_with_its_message_and_position() {
    let cases = cases(&corpus().join("global"));
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in &cases {
        run(case, true, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_good_configuration_is_accepted() {
    let dir = setup(GOOD_GLOBAL);
    fs::write(dir.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
    let loaded = config::load(&dir.path().join("baton.toml"));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let (config, warnings) = loaded.select(&[]).expect("valid");
    assert!(warnings.is_empty());
    let web = &config.pairs["web"];
    assert_eq!(web.hosts[0].name, "blue");
    assert_eq!(web.ssh.user, "deploy");
    assert_eq!(web.checks[0].name, "http-1");
    assert_eq!(
        config.settings.state_dir,
        fs::canonicalize(dir.path()).unwrap().join("state")
    );
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let dir = setup(GOOD_GLOBAL);
    let text = GOOD_PAIR
        .replace("198.51.100.12", "not-an-address")
        .replace("eth0", "eth 0")
        .replace("{address}", "{ip}");
    fs::write(dir.path().join("pairs/web.toml"), text).unwrap();
    let loaded = config::load(&dir.path().join("baton.toml"));
    let messages: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| p.diagnostic.message.clone())
        .collect();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("not-an-address")));
    assert!(messages.iter().any(|m| m.contains("`eth 0`")));
    assert!(messages.iter().any(|m| m.contains("{ip}")));
}

#[test]
fn the_same_vip_or_dns_name_in_two_pairs_is_refused() {
    let dir = setup(GOOD_GLOBAL);
    fs::write(dir.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
    fs::write(
        dir.path().join("pairs/web2.toml"),
        GOOD_PAIR
            .replace("198.51.100.11", "198.51.100.21")
            .replace("198.51.100.12", "198.51.100.22"),
    )
    .unwrap();
    let dns = |hosts: &str| {
        format!(
            "environment = \"dev\"\n{hosts}\n[traffic]\nmethod = \"dns\"\nname = \"WWW.example.test.\"\nzone = \"example.test.\"\nservers = [\"198.51.100.53\"]\ntsig_key = \"update.key\"\n\n[[checks]]\nkind = \"tcp\"\nport = 80\n"
        )
    };
    fs::write(
        dir.path().join("pairs/api.toml"),
        dns("[hosts.a]\naddress = \"198.51.100.31\"\n[hosts.b]\naddress = \"198.51.100.32\"\n"),
    )
    .unwrap();
    fs::write(
        dir.path().join("pairs/api2.toml"),
        dns("[hosts.a]\naddress = \"198.51.100.41\"\n[hosts.b]\naddress = \"198.51.100.42\"\n")
            .replace("WWW", "www"),
    )
    .unwrap();
    let loaded = config::load(&dir.path().join("baton.toml"));
    let shown: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| p.diagnostic.to_string())
        .collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown.iter().any(|s| s
            .contains("web2.toml:11:11: the virtual IP 198.51.100.100 is also used by pair `web`")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("the DNS name www.example.test. is also switched by pair `api`")),
        "{shown:#?}"
    );
    // Both pairs of a conflict are unusable, other pairs are not.
    let err = config::load(&dir.path().join("baton.toml"))
        .select(&["web".to_string()])
        .unwrap_err();
    assert_eq!(err.0.len(), 1);
}

#[test]
fn a_haproxy_pair_is_read_with_its_defaults_and_the_pairs_ssh_port() {
    // baton.toml's SSH port, then the pair's, then the balancer's own.
    let global = GOOD_GLOBAL.replace("[ssh]\n", "[ssh]\nport = 2222\n");
    for (extra_ssh, extra_traffic, port) in [
        ("", "", 2222),
        ("\n[ssh]\nport = 2200\n", "", 2200),
        ("\n[ssh]\nport = 2200\n", "ssh_port = 22\n", 22),
    ] {
        let dir = setup(&global);
        let text = GOOD_HAPROXY_PAIR.replace(
            "frontend = \"198.51.100.40:80\"\n",
            &format!("frontend = \"198.51.100.40:80\"\n{extra_traffic}"),
        );
        fs::write(
            dir.path().join("pairs/shop.toml"),
            format!("{text}{extra_ssh}"),
        )
        .unwrap();
        let loaded = config::load(&dir.path().join("baton.toml"));
        assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
        let (config, _) = loaded.select(&[]).unwrap_or_else(|d| panic!("{d}"));
        let shop = &config.pairs["shop"];
        let config::Traffic::Haproxy(h) = &shop.traffic else {
            panic!("not haproxy: {:?}", shop.traffic)
        };
        assert_eq!(shop.traffic.method(), "haproxy");
        assert_eq!(
            h.host,
            config::Host {
                name: "lb".to_string(),
                address: "198.51.100.40".parse().unwrap(),
                ssh_port: port,
            },
            "{extra_ssh:?} {extra_traffic:?}"
        );
        assert_eq!(
            (h.socket.as_str(), h.backend.as_str()),
            ("/run/haproxy/admin.sock", "shop")
        );
        assert_eq!(h.frontend, "198.51.100.40:80".parse().unwrap());
        assert_eq!(h.weight, 100);
        assert_eq!(h.drain_timeout, std::time::Duration::from_secs(30));
        assert_eq!(h.limits, baton::core::balancer::Limits::default());
        // The pair's own hosts take their SSH port from the same rule.
        let own = if extra_ssh.is_empty() { 2222 } else { 2200 };
        assert_eq!(shop.hosts[0].ssh_port, own);
    }
}

#[test]
fn the_same_frontend_or_backend_of_one_balancer_in_two_pairs_is_refused() {
    let dir = setup(GOOD_GLOBAL);
    let shop = |hosts: [&str; 2], balancer: &str, backend: &str, frontend: &str| {
        GOOD_HAPROXY_PAIR
            .replace("198.51.100.41", hosts[0])
            .replace("198.51.100.42", hosts[1])
            .replace(
                "address = \"198.51.100.40\"",
                &format!("address = \"{balancer}\""),
            )
            .replace("\"shop\"", &format!("\"{backend}\""))
            .replace("\"198.51.100.40:80\"", &format!("\"{frontend}\""))
    };
    let pairs = [
        ("shop", GOOD_HAPROXY_PAIR.to_string()),
        // Its frontend.
        (
            "shop2",
            shop(
                ["198.51.100.43", "198.51.100.44"],
                "198.51.100.40",
                "shop2",
                "198.51.100.40:80",
            ),
        ),
        // Its backend on its balancer.
        (
            "shop3",
            shop(
                ["198.51.100.45", "198.51.100.46"],
                "198.51.100.40",
                "shop",
                "198.51.100.40:8080",
            ),
        ),
        // The same backend's name on another balancer, another port of the
        // same address, and a balancer that is another pair's host: fine.
        (
            "shop4",
            shop(
                ["198.51.100.47", "198.51.100.48"],
                "198.51.100.11",
                "shop",
                "198.51.100.40:81",
            ),
        ),
        ("web", GOOD_PAIR.to_string()),
    ];
    for (name, text) in &pairs {
        fs::write(dir.path().join(format!("pairs/{name}.toml")), text).unwrap();
    }
    let loaded = config::load(&dir.path().join("baton.toml"));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let shown: Vec<(Vec<String>, String)> = loaded
        .problems
        .iter()
        .map(|p| (p.pairs.clone(), p.diagnostic.to_string()))
        .collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert_eq!(shown[0].0, ["shop2", "shop"]);
    assert!(
        shown[0].1.contains(
            "shop2.toml:15:12: the frontend 198.51.100.40:80 is also used by pair `shop`"
        ),
        "{shown:#?}"
    );
    assert_eq!(shown[1].0, ["shop3", "shop"]);
    assert!(
        shown[1].1.contains(
            "shop3.toml:14:11: backend `shop` of the balancer at 198.51.100.40 is also pair `shop`'s"
        ),
        "{shown:#?}"
    );
    // Both pairs of a conflict are unusable, the others are not.
    let load = || config::load(&dir.path().join("baton.toml"));
    assert!(load().select(&["shop".to_string()]).is_err());
    assert!(load().select(&["shop3".to_string()]).is_err());
    let (config, _) = load()
        .select(&["shop4".to_string(), "web".to_string()])
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.pairs.len(), 2);
}

#[test]
fn a_broken_unrelated_pair_is_only_a_warning_for_a_named_pair() {
    let dir = setup(GOOD_GLOBAL);
    fs::write(dir.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
    // One mistake in an otherwise whole pair file (its own addresses).
    let broken = GOOD_PAIR
        .replace("environment = \"dev\"", "environment = 3")
        .replace("198.51.100.11\"", "198.51.100.51\"")
        .replace("198.51.100.12\"", "198.51.100.52\"")
        .replace("198.51.100.100/", "198.51.100.150/");
    fs::write(dir.path().join("pairs/broken.toml"), broken).unwrap();
    let (config, warnings) = config::load(&dir.path().join("baton.toml"))
        .select(&["web".to_string()])
        .expect("web is usable");
    assert_eq!(config.pairs.len(), 1);
    assert_eq!(warnings.len(), 1);
    assert!(config::load(&dir.path().join("baton.toml"))
        .select(&[])
        .is_err());
    let err = config::load(&dir.path().join("baton.toml"))
        .select(&["nope".to_string()])
        .unwrap_err();
    assert!(
        err.to_string().contains("there is no pair named `nope`"),
        "{err}"
    );
}

#[test]
fn the_example_configuration_in_the_repository_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("baton.toml");
    let loaded = config::load(&file);
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let (config, warnings) = loaded.select(&[]).unwrap_or_else(|d| panic!("{d}"));
    assert!(warnings.is_empty());
    assert_eq!(config.pairs.keys().collect::<Vec<_>>(), ["postgres", "web"]);
    assert_eq!(config.pairs["web"].checks.len(), 2);
    // The PostgreSQL example hands the role over with its five hooks, and
    // its checks are judged by role.
    let pg = &config.pairs["postgres"];
    let roles = pg.roles.as_ref().expect("postgres.toml has [roles]");
    assert!(roles.follow.command.contains("{peer_address}"));
    assert_eq!((roles.max_lag, roles.max_lag_on_failover), (0, 1024 * 1024));
    let by_role: Vec<_> = pg.checks.iter().map(|c| c.role).collect();
    assert_eq!(
        by_role,
        [
            config::CheckRole::Any,
            config::CheckRole::Primary,
            config::CheckRole::Standby
        ]
    );
}

#[test]
fn mistakes_beside_a_refused_key_are_still_reported() {
    // A refused key is left out and the rest of the file is read: the
    // independent mistakes come with it, and only those.
    let dir = setup(GOOD_GLOBAL);
    let text = GOOD_PAIR
        .replace("198.51.100.12", "not-an-address")
        .replace("interface = \"eth0\"", "interface = \"eth0\"\narp = 3")
        .replace(
            "kind = \"http\"",
            "kind = \"http\"\nexpect_status = \"200\"",
        );
    fs::write(dir.path().join("pairs/web.toml"), text).unwrap();
    let loaded = config::load(&dir.path().join("baton.toml"));
    let shown: Vec<String> = loaded
        .problems
        .iter()
        .map(|p| {
            format!(
                "{}:{} {}",
                p.diagnostic.line, p.diagnostic.column, p.diagnostic.message
            )
        })
        .collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown
            .iter()
            .any(|m| m.starts_with("13:1 unknown field `arp`")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|m| m.starts_with("17:17 invalid type: string \"200\"")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|m| m.contains("`not-an-address` is not an IP address")),
        "{shown:#?}"
    );
}

#[test]
fn a_bad_value_does_not_hide_a_missing_table() {
    // `canary = "yes"` is refused, but it cannot be the missing [[checks]]
    // (a misspelt key could be, and would hide it).
    for (bad, alone) in [("canary = \"yes\"\n", false), ("[[check]]\n", true)] {
        let dir = setup(GOOD_GLOBAL);
        let rest = GOOD_PAIR.replace(
            "[[checks]]\nkind = \"http\"\nurl = \"http://{address}/\"\n",
            "",
        );
        // A top-level key before the tables, a table after them.
        let text = if alone {
            format!("{rest}{bad}")
        } else {
            format!("{bad}{rest}")
        };
        fs::write(dir.path().join("pairs/web.toml"), text).unwrap();
        let loaded = config::load(&dir.path().join("baton.toml"));
        let messages: Vec<&str> = loaded
            .problems
            .iter()
            .map(|p| p.diagnostic.message.as_str())
            .collect();
        let no_checks = messages.contains(&"the pair has no health checks");
        assert_eq!(no_checks, !alone, "{bad}: {messages:#?}");
        assert_eq!(
            messages.len(),
            if alone { 1 } else { 2 },
            "{bad}: {messages:#?}"
        );
    }
}

#[test]
fn a_bad_global_value_is_reported_once_for_all_pairs() {
    let dir =
        setup(&GOOD_GLOBAL.replace("known_hosts = \"known_hosts\"", "known_hosts = \"nowhere\""));
    fs::write(dir.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
    fs::write(
        dir.path().join("pairs/web2.toml"),
        GOOD_PAIR
            .replace("198.51.100.1", "198.51.100.2")
            .replace("198.51.100.100", "198.51.100.200"),
    )
    .unwrap();
    let loaded = config::load(&dir.path().join("baton.toml"));
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let p = &loaded.problems[0];
    assert!(
        p.diagnostic
            .message
            .contains("cannot read the known_hosts file"),
        "{p:?}"
    );
    assert_eq!(p.pairs, ["web", "web2"]);
}

#[test]
fn a_fix_names_the_file_as_it_can_be_pasted() {
    // `../world.key` from pairs/ is the fixture beside baton.toml: the fix
    // names it absolutely, without `pairs/..`, from any directory.
    let dir = setup(GOOD_GLOBAL);
    let text = "environment = \"dev\"\n[hosts.a]\naddress = \"198.51.100.31\"\n[hosts.b]\naddress = \"198.51.100.32\"\n[traffic]\nmethod = \"dns\"\nname = \"www.example.test.\"\nzone = \"example.test.\"\nservers = [\"198.51.100.53\"]\ntsig_key = \"../world.key\"\n[[checks]]\nkind = \"tcp\"\nport = 80\n";
    fs::write(dir.path().join("pairs/api.toml"), text).unwrap();
    let loaded = config::load(&dir.path().join("baton.toml"));
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let real = fs::canonicalize(dir.path()).unwrap().join("world.key");
    assert_eq!(
        loaded.problems[0].diagnostic.fix,
        format!("run `chmod 600 {}`", real.display())
    );
}

#[test]
fn a_host_in_two_pairs_is_a_warning_not_an_error() {
    let dir = setup(GOOD_GLOBAL);
    fs::write(dir.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
    // db's host `db1` is web's `blue`.
    let db = GOOD_PAIR
        .replace("[hosts.blue]", "[hosts.db1]")
        .replace("[hosts.green]", "[hosts.db2]")
        .replace("198.51.100.12", "198.51.100.22")
        .replace("198.51.100.100", "198.51.100.200");
    fs::write(dir.path().join("pairs/db.toml"), db).unwrap();
    fs::write(
        dir.path().join("pairs/other.toml"),
        GOOD_PAIR
            .replace("198.51.100.11\"", "198.51.100.31\"")
            .replace("198.51.100.12\"", "198.51.100.32\"")
            .replace("198.51.100.100", "198.51.100.103"),
    )
    .unwrap();
    let loaded = config::load(&dir.path().join("baton.toml"));
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(loaded.warnings.len(), 1, "{:#?}", loaded.warnings);
    let w = &loaded.warnings[0];
    assert_eq!(
        w.kind,
        config::WarningKind::SharedHostAddress {
            address: "198.51.100.11".parse().unwrap(),
            this: ("web".to_string(), "blue".to_string()),
            other: ("db".to_string(), "db1".to_string()),
        }
    );
    assert_eq!(w.pairs, ["web", "db"]);
    let d = &w.diagnostic;
    assert!(d.file.ends_with("pairs/web.toml"), "{d}");
    assert_eq!((d.line, d.column), (4, 11), "{d}");
    assert!(d.message.contains("198.51.100.11"), "{d}");
    assert!(!d.fix.is_empty());
    assert_eq!(loaded.warnings_for(&["db".to_string()]).len(), 1);
    assert!(loaded.warnings_for(&["other".to_string()]).is_empty());
    assert!(loaded.select(&[]).is_ok(), "a warning does not refuse");

    // `check` prints it, in text and JSON, and still exits 0.
    let baton = env!("CARGO_BIN_EXE_baton");
    let config = dir.path().join("baton.toml");
    let out = std::process::Command::new(baton)
        .arg("--config")
        .arg(&config)
        .args(["--json", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["warnings"][0]["kind"], "shared_host_address", "{json}");
    assert_eq!(json["warnings"][0]["line"], 4, "{json}");
    let out = std::process::Command::new(baton)
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: ") && text.contains("web.toml:4:11: host `blue` of pair `web`"),
        "{text}"
    );
}

#[test]
fn an_empty_or_new_known_hosts_is_fine_when_new_keys_are_recorded() {
    for known_hosts in ["empty", "not-yet"] {
        let global = GOOD_GLOBAL.replace(
            "known_hosts = \"known_hosts\"",
            &format!("known_hosts = \"{known_hosts}\"\naccept_new_host_keys = true"),
        );
        let dir = setup(&global);
        fs::write(dir.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
        let loaded = config::load(&dir.path().join("baton.toml"));
        assert!(
            loaded.problems.is_empty(),
            "{known_hosts}: {:#?}",
            loaded.problems
        );
    }
}

#[test]
fn files_that_are_devices_fifos_or_too_large_are_refused_at_once() {
    let dir = setup(GOOD_GLOBAL);
    fs::write(dir.path().join("pairs/web.toml"), GOOD_PAIR).unwrap();
    // A pair file that is /dev/zero: read without a bound, it never ends.
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("pairs/zero.toml")).unwrap();
    // One larger than any configuration.
    let huge = format!("# {}\n{GOOD_PAIR}", "x".repeat(2 << 20));
    fs::write(dir.path().join("pairs/huge.toml"), huge).unwrap();
    let started = std::time::Instant::now();
    let loaded = config::load(&dir.path().join("baton.toml"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let message = |pair: &str| {
        loaded
            .problems
            .iter()
            .find(|p| p.pairs == [pair.to_string()])
            .map(|p| p.diagnostic.message.clone())
            .unwrap_or_else(|| panic!("{pair} not refused: {:#?}", loaded.problems))
    };
    assert!(
        message("zero").contains("a device, not a regular file"),
        "{}",
        message("zero")
    );
    assert!(
        message("huge").contains("larger than"),
        "{}",
        message("huge")
    );
    // The good pair is still usable when named.
    assert!(loaded.select(&["web".to_string()]).is_ok());
    // A baton.toml that is a FIFO is refused, not waited on.
    let fifo = dir.path().join("fifo.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path in our own temporary directory.
    #[allow(unsafe_code, reason = "mkfifo(3): std cannot make a FIFO")]
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0);
    let loaded = config::load(&fifo);
    assert!(
        loaded
            .problems
            .iter()
            .any(|p| p.diagnostic.message.contains("a FIFO")),
        "{:#?}",
        loaded.problems
    );
}
