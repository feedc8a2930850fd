//! Holds on the VIP pair `web` (blue, green; VIP 198.18.0.100) under an
//! independent HTTP client: `apply --hold` leaves the old primary on the
//! old version (status shows the hold), `revert` sends every request back
//! to it with no failed request and both hosts serve the old version
//! afterwards; `finish` updates it; a revert cut off inside its drain back
//! (the controller aborted like kill -9) is finished by `recover`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const VIP: &str = "198.18.0.100:80";

fn state_dir() -> PathBuf {
    Path::new(LAB).join("state")
}

/// The version the page of `address` says (`host=NAME version=N`).
fn version_of(address: &str) -> String {
    let (_, page) = client_get(&format!("http://{address}/index.html"));
    page.split_whitespace()
        .find_map(|w| w.strip_prefix("version="))
        .unwrap_or("?")
        .to_string()
}

fn held_apply(cfg: &Path) {
    let run = baton(cfg, &["apply", "web", "--change", "v2", "--hold", "1h"]);
    assert_eq!(run.code, 0, "held: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("HELD"), "{}", run.stdout);
}

#[test]
fn a_hold_keeps_blue_on_the_old_version_and_revert_goes_back_to_it_without_a_failed_request() {
    let _lab = lab();
    let cfg = lab_config();
    held_apply(&cfg);
    assert_eq!(
        (version_of("198.18.0.11"), version_of("198.18.0.12")),
        ("1".to_string(), "2".to_string()),
        "blue held on version 1, green serves version 2"
    );
    let metrics = tempfile::NamedTempFile::new().unwrap();
    let status = baton(
        &cfg,
        &[
            "status",
            "web",
            "--json",
            "--metrics-file",
            metrics.path().to_str().unwrap(),
        ],
    );
    assert_eq!(status.code, 0, "a hold is no trouble: {}", status.stdout);
    let text = std::fs::read_to_string(metrics.path()).unwrap();
    assert!(text.contains("baton_held{pair=\"web\"} 1"), "{text}");
    assert!(
        text.contains("baton_hold_until_seconds{pair=\"web\"} "),
        "{text}"
    );
    assert!(
        text.contains("baton_run_interrupted{pair=\"web\"} 0"),
        "{text}"
    );
    let pair = &status.json()["pairs"][0];
    assert_eq!(pair["holder"]["detail"], "green");
    assert_eq!(pair["held"]["by"], "hold", "{pair}");
    assert_eq!(pair["held"]["kept"], "blue");
    assert_eq!(pair["held"]["expired"], false);
    assert_eq!(pair["problems"][0]["kind"], "held");
    assert_eq!(pair["problems"][0]["severity"], "note");
    // Another apply waits for the decision.
    let refused = baton(&cfg, &["switchover", "web"]);
    assert_eq!(refused.code, 5, "{}{}", refused.stdout, refused.stderr);

    let client = probe_at(VIP, 100, 8.0);
    std::thread::sleep(Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let revert = baton(&cfg, &["revert", "web"]);
    let took = started.elapsed();
    let all = answers(client);
    assert_eq!(revert.code, 0, "{}{}", revert.stdout, revert.stderr);
    println!("revert took {:.2} s", took.as_secs_f64());
    assert_eq!(failures(&all), Vec::<String>::new(), "failed requests");
    assert_eq!(all.last().unwrap().host.as_deref(), Ok("blue"));
    assert_eq!(
        (version_of("198.18.0.11"), version_of("198.18.0.12")),
        ("1".to_string(), "1".to_string()),
        "both hosts serve the old version"
    );
    let status = baton(&cfg, &["status", "web", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert!(status.json()["pairs"][0]["held"].is_null());
    let decide = step_end(&state_dir(), "web", "decide");
    assert!(
        decide["detail"]
            .as_str()
            .unwrap()
            .contains("reverted change v2 (hash "),
        "{decide}"
    );
    let log = baton(&cfg, &["log", "web"]);
    assert!(
        log.stdout
            .lines()
            .last()
            .unwrap()
            .ends_with("ROLLED_BACK (REVERTED)"),
        "{}",
        log.stdout
    );
}

#[test]
fn finish_updates_the_held_host() {
    let _lab = lab();
    let cfg = lab_config();
    held_apply(&cfg);
    let log = baton(&cfg, &["log", "web", "--outcome", "held"]);
    assert_eq!(log.stdout.lines().count(), 1, "{}", log.stdout);
    assert!(log.stdout.contains("HELD"), "{}", log.stdout);
    let finish = baton(&cfg, &["finish", "--all"]);
    assert_eq!(finish.code, 0, "{}{}", finish.stdout, finish.stderr);
    assert!(
        finish.stderr.contains("api: no hold; nothing to do"),
        "{}",
        finish.stderr
    );
    assert_eq!(
        (version_of("198.18.0.11"), version_of("198.18.0.12")),
        ("2".to_string(), "2".to_string())
    );
    let status = baton(&cfg, &["status", "web", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert!(status.json()["pairs"][0]["held"].is_null());
    assert_eq!(status.json()["pairs"][0]["holder"]["detail"], "green");
    // Nothing is held any more.
    let again = baton(&cfg, &["revert", "web"]);
    assert_eq!(again.code, 5, "{}{}", again.stdout, again.stderr);
}

#[cfg(feature = "failpoints")]
#[test]
fn a_revert_cut_off_inside_its_drain_back_is_finished_by_recover() {
    use std::os::unix::process::ExitStatusExt;
    let _lab = lab();
    let cfg = lab_config();
    held_apply(&cfg);
    let out = baton_command(&cfg, &["revert", "web"])
        .env("FAILPOINTS", "begin-drain_back=return")
        .output()
        .unwrap();
    assert!(out.status.signal().is_some(), "aborted like kill -9");
    let status = baton(&cfg, &["status", "web", "--json"]);
    assert_eq!(status.code, 4, "interrupted: {}", status.stdout);
    let recover = baton(&cfg, &["recover", "web"]);
    assert_eq!(
        recover.code, 1,
        "the revert's end: {}{}",
        recover.stdout, recover.stderr
    );
    assert!(recover.stdout.contains("reverted"), "{}", recover.stdout);
    assert_eq!(
        (version_of("198.18.0.11"), version_of("198.18.0.12")),
        ("1".to_string(), "1".to_string())
    );
    let (_, page) = client_get("http://198.18.0.100/index.html");
    assert!(page.contains("host=blue"), "{page}");
    let status = baton(&cfg, &["status", "web"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
}

/// A held run is decided on the change it applied: a change edited during
/// the hold is refused by `finish` and `revert` alike, nothing moves and
/// the run stays held; put back as it was, it is finished.
#[test]
fn a_change_edited_during_the_hold_is_neither_finished_nor_reverted() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| t);
    let cfg = dir.path().join("baton.toml");
    held_apply(&cfg);
    let file = dir.path().join("pairs/web.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen("echo 2 >", "echo 2  >", 1);
    assert_ne!(edited, text, "the v2 step is in web.toml");
    std::fs::write(&file, &edited).unwrap();
    for verb in ["finish", "revert"] {
        let run = baton(&cfg, &[verb, "web"]);
        assert_eq!(run.code, 5, "{verb}: {}{}", run.stdout, run.stderr);
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(
            said.contains("change v2 was edited since run"),
            "{verb}: {said}"
        );
        assert_eq!(
            (version_of("198.18.0.11"), version_of("198.18.0.12")),
            ("1".to_string(), "2".to_string()),
            "{verb} changed nothing"
        );
        let (_, page) = client_get("http://198.18.0.100/index.html");
        assert!(page.contains("host=green"), "{verb}: {page}");
    }
    let status = baton(&cfg, &["status", "web", "--json"]);
    assert_eq!(
        status.json()["pairs"][0]["held"]["by"],
        "hold",
        "still held"
    );
    std::fs::write(&file, &text).unwrap();
    let finish = baton(&cfg, &["finish", "web"]);
    assert_eq!(finish.code, 0, "{}{}", finish.stdout, finish.stderr);
    assert_eq!(
        (version_of("198.18.0.11"), version_of("198.18.0.12")),
        ("2".to_string(), "2".to_string())
    );
}

/// A change with uploads and no rollback steps of its own: a fleet
/// rollback puts the uploads back only while each host still holds what
/// the change uploaded; a file edited by hand since refuses the whole
/// command before anything starts (naming host and file); put back, the
/// rollback removes the file the upload created, and the journal says so.
/// A change with rollback steps of its own goes on past such a file,
/// leaving it to them, and says so.
#[test]
fn a_rollback_is_refused_while_an_upload_was_edited_since_and_puts_uploads_back() {
    let _lab = lab();
    let dir = with_pair("web.toml", |t| {
        t + &format!("\n[changes.notes]\nlabel = \"release notes alone\"\nupload = [{{ from = \"{LAB}/config/pairs/files/release-notes.txt\", to = \"/srv/baton-lab/release-notes.txt\", mode = \"0644\" }}]\n")
    });
    let cfg = dir.path().join("baton.toml");
    let apply = baton(&cfg, &["apply", "web", "--change", "notes"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let notes = |host: &str| Path::new(LAB).join(format!("hosts/{host}/srv/release-notes.txt"));
    let uploaded = std::fs::read(notes("green")).expect("the upload reached green");
    std::fs::write(notes("green"), b"edited by hand\n").unwrap();
    let refused = baton(&cfg, &["rollback", "web", "--change", "notes"]);
    assert_eq!(refused.code, 5, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(
            "web: green: /srv/baton-lab/release-notes.txt no longer holds what the change uploaded"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("Nothing was done"),
        "{}",
        refused.stderr
    );
    assert!(notes("blue").exists(), "nothing changed on blue");
    std::fs::write(notes("green"), &uploaded).unwrap();
    let run = baton(&cfg, &["rollback", "web", "--change", "notes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for host in ["blue", "green"] {
        assert!(
            !notes(host).exists(),
            "{host}: the upload created it, the rollback removed it"
        );
    }
    let records = journal(&dir.path().join("state"), "web");
    assert!(
        records.iter().any(|r| r
            .to_string()
            .contains("removed /srv/baton-lab/release-notes.txt: the upload created it")),
        "the put-back's answer is journaled"
    );

    // v2 has rollback steps of its own: an edited upload is left to them.
    let apply = baton(&cfg, &["apply", "web", "--change", "v2"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    std::fs::write(notes("blue"), b"edited by hand\n").unwrap();
    let run = baton(&cfg, &["rollback", "web", "--change", "v2"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("web: blue: /srv/baton-lab/release-notes.txt no longer holds what the change uploaded (edited since, by hand or by a later change): it is left to the change's rollback steps"),
        "{}",
        run.stderr
    );
    assert_eq!(
        (version_of("198.18.0.11"), version_of("198.18.0.12")),
        ("1".to_string(), "1".to_string())
    );
}
