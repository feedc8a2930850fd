//! Faults of the controller's own disk: the state directory on a tmpfs so
//! small that the journal or the state file cannot be written at some
//! point of a switchover. baton must never say OK without its records,
//! must stop before its next action, and once there is room again
//! `baton recover` must settle the run from where traffic really is.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

fn holds_vip(ns: &str) -> bool {
    netns_ok(ns, &["ip", "-o", "addr", "show", "dev", "eth0"]).contains("inet 198.18.0.100/")
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

/// Unmounts the tmpfs even when an assertion fails.
struct Mounted(String);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_state_disk_never_ends_in_ok_without_its_records_and_recover_heals_it() {
    let _lab = lab();
    let mut outcomes = Vec::new();
    for pages in 1..=8u32 {
        let mnt = format!("/tmp/baton-full-{}-{pages}", std::process::id());
        fs::create_dir_all(&mnt).unwrap();
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={},mode=0700", pages * 4096),
            "tmpfs",
            &mnt,
        ]);
        let _mounted = Mounted(mnt.clone());
        let state = format!("{mnt}/state");
        let dir = custom_config(|name, text| {
            if name == "baton.toml" {
                text.replace("state_dir = \"state\"", &format!("state_dir = \"{state}\""))
            } else {
                text
            }
        });
        let cfg = dir.path().join("baton.toml");
        let run = baton(&cfg, &["switchover", "web", "--reason", "disk full"]);
        let state_dir = Path::new(&state);
        if run.code == 0 {
            // OK only with every record written: the run's finish, and the
            // roles equal to where traffic is.
            let journal = fs::read_to_string(state_dir.join("web.journal")).unwrap();
            assert!(
                journal
                    .lines()
                    .last()
                    .unwrap()
                    .contains("\"event\":\"finish\""),
                "{pages} pages: OK without a finish record"
            );
            let recorded: serde_json::Value = serde_json::from_str(
                &fs::read_to_string(state_dir.join("web.state.json")).unwrap(),
            )
            .unwrap();
            let holder = if holds_vip("baton-blue") {
                "blue"
            } else {
                "green"
            };
            assert_eq!(recorded["primary"], holder, "{pages} pages");
        } else {
            assert!(
                !run.stdout.contains(" OK: ") && !run.stdout.contains("done: traffic"),
                "{pages} pages: exit {} but it says OK: {}",
                run.code,
                run.stdout
            );
            assert!(
                [4, 5].contains(&run.code),
                "{pages} pages: exit {}: {}\n{}",
                run.code,
                run.stdout,
                run.stderr
            );
        }
        outcomes.push((pages, run.code));
        // Room again: the next command settles whatever was left.
        sh(&["mount", "-o", "remount,size=4m", &mnt]);
        let recover = baton(&cfg, &["recover", "web"]);
        assert!(
            [0, 1, 5].contains(&recover.code),
            "{pages} pages: recover exited {}: {}\n{}",
            recover.code,
            recover.stdout,
            recover.stderr
        );
        let (blue, green) = (holds_vip("baton-blue"), holds_vip("baton-green"));
        assert!(
            blue != green,
            "{pages} pages: exactly one host must hold the VIP"
        );
        let status = baton(&cfg, &["status", "web"]);
        assert_eq!(status.code, 0, "{pages} pages: {}", status.stdout);
        // Put traffic back on blue for the next size.
        if !blue {
            let back = baton(&cfg, &["switchover", "web", "--reason", "back"]);
            assert_eq!(back.code, 0, "{}", back.stdout);
        }
    }
    // The sizes really reached different points of the run: some refused
    // at once, some stopped mid-run, the largest completed.
    eprintln!("(tmpfs pages, switchover exit): {outcomes:?}");
    let codes: Vec<i32> = outcomes.iter().map(|(_, c)| *c).collect();
    assert!(codes.contains(&5), "{outcomes:?}");
    assert!(codes.contains(&4), "{outcomes:?}");
    assert!(codes.contains(&0), "{outcomes:?}");
}

#[test]
fn two_controllers_with_different_state_directories_never_move_one_pair_at_once() {
    let _lab = lab();
    // Two configurations of the same pair, each with its own state.
    let a = custom_config(|_, t| t);
    let b = custom_config(|_, t| t);
    let (cfg_a, cfg_b) = (a.path().join("baton.toml"), b.path().join("baton.toml"));
    let first = spawn(&cfg_a, &["switchover", "web", "--reason", "controller A"]);
    wait_for_begin(&a.path().join("state"), "web", "verify_service");
    let second = baton(&cfg_b, &["switchover", "web", "--reason", "controller B"]);
    assert_eq!(second.code, 5, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stdout.contains("in use by another baton run")
            && second.stdout.contains("controller A")
            && second.stdout.contains(&format!("pid {}", first.id())),
        "{}",
        second.stdout
    );
    assert!(
        !b.path().join("state/web.journal").exists() || {
            let j = fs::read_to_string(b.path().join("state/web.journal")).unwrap();
            !j.contains("\"step\":\"switch\"")
        }
    );
    let (code, out) = finish(first);
    assert_eq!(code, 0, "{out}");
    // Once A has finished, B (which has recorded nothing yet) sees the
    // pair as it is now and may run.
    assert!(holds_vip("baton-green"));
    let after = baton(&cfg_b, &["status", "web"]);
    assert_eq!(
        after.code, 0,
        "B records reality on first sight: {}",
        after.stdout
    );
    let again = baton(
        &cfg_b,
        &["switchover", "web", "--reason", "controller B, later"],
    );
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert!(holds_vip("baton-blue"));
}

#[test]
fn the_hosts_lock_goes_with_a_controller_that_is_killed() {
    let _lab = lab();
    let a = custom_config(|_, t| t);
    let b = custom_config(|_, t| t);
    let (cfg_a, cfg_b) = (a.path().join("baton.toml"), b.path().join("baton.toml"));
    let mut first = spawn(&cfg_a, &["switchover", "web", "--reason", "controller A"]);
    wait_for_begin(&a.path().join("state"), "web", "verify_standby");
    first.kill().expect("SIGKILL the child");
    let _ = finish(first);
    // The connection closed, so the hosts released A's lock at once.
    let status = baton(&cfg_b, &["status", "web"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let run = baton(&cfg_b, &["switchover", "web", "--reason", "controller B"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}
