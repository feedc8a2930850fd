//! The SSH adapter against the lab's real sshd: commands with separate
//! stdout/stderr and exit status, large outputs on both streams at once,
//! deadlines, hostile values through a real remote shell, uploads with a
//! mode, and `sudo -n` allowed and refused. The test thread enters the
//! controller's network namespace (setns) so the library runs as baton would.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use baton::config;
use baton::quote;
use baton::ssh::{SshError, SshHost, Target};
use common::*;

fn target(host: &str) -> Target {
    let (cfg, _) = config::load(&lab_config())
        .select(&[])
        .expect("the lab configuration is valid");
    let pair = cfg
        .pairs
        .values()
        .find(|p| p.host(host).is_some())
        .expect("a lab host");
    Target::new(pair.host(host).unwrap(), &pair.ssh)
}

#[test]
fn commands_report_status_and_separate_streams() {
    let _lab = lab();
    in_ctl(async || {
        let h = SshHost::connect(target("blue")).await.expect("connect");
        let out = h.run("echo out; echo err >&2; exit 7").await.unwrap();
        assert_eq!(out.status, Some(7));
        assert_eq!(out.stdout_text(), "out\n");
        assert_eq!(out.stderr_text(), "err\n");
        // The same session serves many commands, and login shells see this host's own service directory.
        let page = h.run("cat /srv/baton-lab/index.html").await.unwrap();
        assert_eq!(page.stdout_text(), "host=blue version=1\n");
        let me = h.run("id -un").await.unwrap();
        assert_eq!(me.stdout_text().trim(), "batonlab");
    });
}

#[test]
fn large_outputs_on_both_streams_do_not_deadlock() {
    let _lab = lab();
    in_ctl(async || {
        let h = SshHost::connect(target("green")).await.unwrap();
        // 8 MiB on each stream, written concurrently: far beyond the SSH window.
        let cmd = "head -c 8388608 /dev/zero | tr '\\0' o & head -c 8388608 /dev/zero | tr '\\0' e >&2; wait";
        let out = h
            .run_with_timeout(cmd, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout.len(), 8 << 20);
        assert_eq!(out.stderr.len(), 8 << 20);
        assert!(out.stdout.iter().all(|b| *b == b'o') && out.stderr.iter().all(|b| *b == b'e'));
    });
}

#[test]
fn a_command_past_its_deadline_is_a_timeout_error() {
    let _lab = lab();
    in_ctl(async || {
        let h = SshHost::connect(target("blue")).await.unwrap();
        let started = Instant::now();
        let err = h
            .run_with_timeout("sleep 30", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, SshError::Timeout { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("timed out after 1s while running `sleep 30`"),
            "{err}"
        );
    });
}

#[test]
fn hostile_values_reach_the_remote_command_unchanged() {
    let _lab = lab();
    in_ctl(async || {
        let h = SshHost::connect(target("amber")).await.unwrap();
        let hostile = [
            "it's",
            "$(touch /tmp/pwned)",
            "`id`",
            "a;b",
            "new\nline",
            "*",
            "\"q\"",
        ];
        let out = h
            .run(&format!("printf '%s|' {}", quote::join(&hostile)))
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), hostile.join("|") + "|");
        let pwned = h
            .run("test -e /tmp/pwned && echo yes || echo no")
            .await
            .unwrap();
        assert_eq!(pwned.stdout_text().trim(), "no");
    });
}

#[test]
fn upload_writes_the_file_atomically_with_its_mode() {
    let _lab = lab();
    in_ctl(async || {
        let h = SshHost::connect(target("violet")).await.unwrap();
        let content = b"new page with 'quotes' and $dollars\n".to_vec();
        let out = h
            .upload(content.clone(), "/srv/baton-lab/uploaded file.txt", 0o640)
            .await
            .unwrap();
        assert!(out.success(), "{}", out.stderr_text());
        let stat = h
            .run("stat -c %a '/srv/baton-lab/uploaded file.txt'; ls -a /srv/baton-lab")
            .await
            .unwrap();
        let text = stat.stdout_text();
        assert!(text.starts_with("640\n"), "{text}");
        assert!(
            !text.contains(".baton-upload"),
            "a temporary file was left: {text}"
        );
        // It landed in violet's own service directory, not anywhere else.
        let on_disk =
            std::fs::read(Path::new(LAB).join("hosts/violet/srv/uploaded file.txt")).unwrap();
        assert_eq!(on_disk, content);
        // A destination in a missing directory fails and says so.
        let out = h
            .upload(b"x".to_vec(), "/nonexistent/dir/file", 0o644)
            .await
            .unwrap();
        assert!(!out.success());
        assert!(
            out.stderr_text().contains("no directory /nonexistent/dir"),
            "{}",
            out.stderr_text()
        );
    });
}

#[test]
fn sudo_runs_what_is_allowed_and_refuses_clearly_what_is_not() {
    let _lab = lab();
    in_ctl(async || {
        let h = SshHost::connect(target("green")).await.unwrap();
        let out = h
            .run_privileged(&["ip", "addr", "add", "198.18.0.77/24", "dev", "eth0"])
            .await
            .unwrap();
        assert!(out.success(), "{}", out.stderr_text());
        let out = h
            .run_privileged(&["ip", "addr", "del", "198.18.0.77/24", "dev", "eth0"])
            .await
            .unwrap();
        assert!(out.success(), "{}", out.stderr_text());
        let err = h.run_privileged(&["cat", "/etc/shadow"]).await.unwrap_err();
        assert!(matches!(err, SshError::SudoPassword { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("`sudo -n cat /etc/shadow` needs a password"),
            "{err}"
        );
    });
}

#[test]
fn connecting_to_a_host_without_sshd_fails_fast_and_clearly() {
    let _lab = lab();
    in_ctl(async || {
        let mut t = target("blue");
        t.port = 2;
        let started = Instant::now();
        let err = SshHost::connect(t)
            .await
            .err()
            .expect("nothing listens on port 2");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(matches!(err, SshError::Connect { .. }), "{err}");
        assert!(err.to_string().contains("Connection refused"), "{err}");
    });
}

#[test]
fn uploads_into_root_owned_directories_go_through_sudo_install() {
    let _lab = lab();
    in_ctl(async || {
        let h = SshHost::connect(target("blue")).await.unwrap();
        let out = h
            .upload(
                b"listen 80;\n".to_vec(),
                "/srv/baton-lab/etc/app.conf",
                0o644,
            )
            .await
            .unwrap();
        assert!(out.success(), "{}", out.stderr_text());
        let stat = h
            .run("stat -c '%U %a' /srv/baton-lab/etc/app.conf; cat /srv/baton-lab/etc/app.conf")
            .await
            .unwrap();
        assert_eq!(stat.stdout_text(), "root 644\nlisten 80;\n");
        // The staged copy is gone.
        let left = h
            .run("ls /tmp | grep -c baton-upload || true")
            .await
            .unwrap();
        assert_eq!(left.stdout_text().trim(), "0");
        // sudo allows only what the sudoers rule names: another mode is refused, clearly.
        let err = h
            .upload(b"x".to_vec(), "/srv/baton-lab/etc/secret.conf", 0o600)
            .await
            .unwrap_err();
        assert!(matches!(err, SshError::SudoPassword { .. }), "{err}");
    });
}
