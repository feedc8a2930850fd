//! The SSH settings of a pair: its `[ssh]` table over baton.toml's, key by
//! key (user, port, identity, passphrase variable, known_hosts, timeouts,
//! sudo), each problem pointed at the file the key came from; and the sanity
//! of the timeouts of one `[ssh]` table.

use std::path::Path;
use std::time::Duration;

use crate::config::diag::{printable, Key, Source};
use crate::config::raw::SshFile;
use crate::config::SshSettings;

use super::jump::{parse_jump, read_openssh, Given, OpenSsh};
use super::pair::PairCtx;
use super::paths::{file_fault, resolve, shown, FileFault};
use super::Sink;

/// A pair's SSH settings with what the hosts' routes are made from.
pub(super) struct SshPart {
    /// The settings (their `routes` still empty).
    pub settings: SshSettings,
    /// The pair's SSH port.
    pub port: u16,
    /// `[ssh] config`, read.
    pub openssh: Option<OpenSsh>,
    /// Which keys baton's files set.
    pub given: Given,
}

use Key::Name as N;

/// SSH settings: the pair's `[ssh]` over baton.toml's, key by key.
pub(super) fn ssh_settings(
    pair: Option<&SshFile>,
    ctx: &PairCtx<'_>,
    sink: &mut Sink<'_>,
) -> Option<SshPart> {
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
        unknown("jump", p.jump.is_some(), g.jump.is_some()),
        unknown("config", p.config.is_some(), g.config.is_some()),
    ]
    .iter()
    .all(|u| !u);
    if pair.is_some() {
        ok &= durations_ok(p, ctx.src, sink);
    }
    // `[ssh] config`: an OpenSSH client configuration fills what is unset.
    let openssh = p.config.as_deref().or(g.config.as_deref()).and_then(|c| {
        let (src, base, _) = from(p.config.is_some());
        let found = read_openssh(c, base, src, sink);
        ok &= found.is_some();
        found
    });
    let jump = match p.jump.as_deref().or(g.jump.as_deref()) {
        None => Vec::new(),
        Some(text) => match parse_jump(text) {
            Ok(j) => j,
            Err(e) => {
                let (src, _, mut path) = from(p.jump.is_some());
                path.push(N("jump"));
                sink.push(src.at(
                    &path,
                    format!("jump `{text}`: {e}"),
                    "write `jump = \"user@bastion:22\"` (two jump hosts: \"user@a:22,user@b:22\"; \"none\": connect directly)",
                ));
                ok = false;
                Vec::new()
            }
        },
    };
    let user = p.user.clone().or_else(|| g.user.clone());
    let user = match user {
        None if unknown("user", false, false) => String::new(),
        // Each host's `User` from the OpenSSH file (`jump::routes`).
        None if openssh.is_some() => String::new(),
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
    let given = Given {
        user: p.user.is_some() || g.user.is_some(),
        port: p.port.is_some() || g.port.is_some(),
        identity: p.identity.is_some() || g.identity.is_some(),
        jump: p.jump.is_some() || g.jump.is_some(),
    };
    ok.then_some(SshPart {
        settings: SshSettings {
            user,
            identity,
            passphrase_env,
            known_hosts,
            accept_new_host_keys: accept_new,
            connect_timeout,
            command_timeout,
            sudo,
            jump,
            routes: Default::default(),
        },
        port,
        openssh,
        given,
    })
}

/// Sanity of the SSH timeouts in one `[ssh]` table.
pub(super) fn durations_ok(s: &SshFile, src: &Source<'_>, sink: &mut Sink<'_>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::testing::check;
    use super::*;
    use crate::config::raw::{GlobalFile, PairFile};
    use crate::config::Diagnostic;

    /// The SSH settings of the pair file `pair` under the baton.toml
    /// `global`, both in `dir`.
    fn settle(
        dir: &Path,
        global: &str,
        pair: &str,
    ) -> (Option<(SshSettings, u16)>, Vec<Diagnostic>) {
        let global_path = dir.join("baton.toml");
        let global_src = Source::new(&global_path, global);
        let g: GlobalFile = crate::config::raw::parse(global).value.expect("baton.toml");
        check(pair, |raw: &PairFile, src, sink| {
            let ctx = PairCtx {
                src,
                global_src: &global_src,
                global: &g,
                base: dir,
                global_base: dir,
                environments: None,
                maintenance: None,
                holds: None,
            };
            ssh_settings(raw.ssh.as_ref(), &ctx, sink).map(|s| (s.settings, s.port))
        })
    }

    #[test]
    fn the_pairs_keys_win_key_by_key() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("kh"), "x ssh-ed25519 AAAA\n").expect("kh");
        let (s, d) = settle(
            dir.path(),
            "[ssh]\nuser = \"deploy\"\nport = 2222\nknown_hosts = \"kh\"\nsudo = true\n",
            "[ssh]\nuser = \"ops\"\nport = 2200\ncommand_timeout = \"1m\"\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let (s, port) = s.expect("settings");
        assert_eq!(s.user, "ops");
        assert_eq!(port, 2200);
        assert!(s.sudo);
        assert_eq!(s.command_timeout, Duration::from_secs(60));
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
        assert_eq!(
            s.known_hosts,
            std::fs::canonicalize(dir.path()).expect("dir").join("kh")
        );
    }

    #[test]
    fn a_problem_is_shown_in_the_file_its_key_came_from() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("kh"), "x ssh-ed25519 AAAA\n").expect("kh");
        let (s, d) = settle(
            dir.path(),
            "[ssh]\nuser = \"deploy\"\nport = 0\nknown_hosts = \"kh\"\n",
            "[ssh]\nuser = \"a b\"\n",
        );
        assert!(s.is_none());
        let at: Vec<_> = d
            .iter()
            .map(|d| {
                (
                    d.file.file_name().and_then(|n| n.to_str()),
                    d.line,
                    d.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            at,
            [
                (Some("file.toml"), 2, "`a b` is not a valid login name"),
                (Some("baton.toml"), 3, "port 0 is not a port"),
            ]
        );
    }

    #[test]
    fn no_user_anywhere_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (s, d) = settle(dir.path(), "", "environment = \"dev\"\n");
        assert!(s.is_none());
        let m: Vec<_> = d.iter().map(|d| d.message.as_str()).collect();
        assert!(m.contains(&"no SSH user is set for this pair"), "{m:?}");
    }

    #[test]
    fn a_missing_known_hosts_is_fine_only_when_new_keys_are_recorded() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let global = "[ssh]\nuser = \"deploy\"\nknown_hosts = \"new/kh\"\n";
        std::fs::create_dir(dir.path().join("new")).expect("mkdir");
        let (s, d) = settle(dir.path(), global, "[ssh]\naccept_new_host_keys = true\n");
        assert!(d.is_empty(), "{d:?}");
        assert!(s.is_some_and(|(s, _)| s.accept_new_host_keys));
        let (s, d) = settle(dir.path(), global, "");
        assert!(s.is_none());
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message.starts_with("cannot read the known_hosts file"),
            "{}",
            d[0].message
        );
        assert_eq!((d[0].line, d[0].column), (3, 15));
        // Recording new keys needs the directory to exist.
        let global =
            "[ssh]\nuser = \"deploy\"\nknown_hosts = \"absent/kh\"\naccept_new_host_keys = true\n";
        let (s, d) = settle(dir.path(), global, "");
        assert!(s.is_none());
        assert_eq!(d.len(), 1, "{d:?}");
    }

    #[test]
    fn timeouts_out_of_range_are_refused_at_their_bounds() {
        let timeouts = |text: &str| {
            let (ok, d) = check(text, |g: &GlobalFile, src, sink| {
                durations_ok(g.ssh.as_ref().expect("[ssh]"), src, sink)
            });
            (ok, d.into_iter().map(|d| d.message).collect::<Vec<_>>())
        };
        assert_eq!(
            timeouts("[ssh]\nconnect_timeout = \"100ms\"\ncommand_timeout = \"24h\"\n"),
            (true, vec![])
        );
        assert_eq!(
            timeouts("[ssh]\nconnect_timeout = \"99ms\"\ncommand_timeout = \"999ms\"\n"),
            (
                false,
                vec![
                    "connect_timeout 99ms is out of range".to_string(),
                    "command_timeout 999ms is out of range".to_string()
                ]
            )
        );
        assert_eq!(
            timeouts("[ssh]\nconnect_timeout = \"301s\"\n"),
            (
                false,
                vec!["connect_timeout 5m 1s is out of range".to_string()]
            )
        );
    }
}
