//! `baton rollback --change NAME`: which selected pairs a fleet rollback
//! takes (the change finished there and was not rolled back since), the
//! checks that refuse the whole command before anything starts (a change
//! that cannot be rolled back; an upload no longer in place on a host,
//! asked over SSH), then the fleet run in the reverse of apply's order.

use crate::cli::apply::{apply_fleet, FleetOptions};
use crate::cli::exit::Exit;
use crate::config::{Change, Config, Host, Pair};
use crate::core::restore::{self, Standing};
use crate::exec::run::Request;
use crate::io::ssh::{SshHost, Target};
use crate::store::history::{self, Standing as Finished};

/// Every selected pair on which the change finished (and was not rolled
/// back since) runs a full cycle whose change is the rollback, in the
/// reverse of apply's order; the others are listed and skipped. Refused
/// before anything starts when a pair's change cannot be rolled back, or
/// when an upload of it is no longer what the change put on a host.
pub async fn rollback_fleet(
    config: &Config,
    req: &Request,
    json: bool,
    opts: &FleetOptions,
) -> Exit {
    let name = req.change.as_deref().unwrap_or_default();
    let bare: Vec<&str> = config
        .pairs
        .values()
        .filter(|p| p.changes.get(name).is_some_and(|c| !c.reversible()))
        .map(|p| p.name.as_str())
        .collect();
    if !bare.is_empty() {
        eprintln!("baton: change `{name}` has no rollback steps and no uploads in {}: it cannot be rolled back there; add `rollback = [...]` to [changes.{name}], or leave those pairs out. Nothing was done.", bare.join(", "));
        return Exit::Config;
    }
    let mut eligible = config.clone();
    eligible.pairs.clear();
    let mut unjudged = false;
    for pair in config.pairs.values() {
        let Some(change) = pair.changes.get(name) else {
            continue;
        };
        let standing = crate::exec::change::hash(change)
            .map_err(|e| e.to_string())
            .and_then(|h| {
                crate::store::open(&config.settings)
                    .map_err(|e| e.to_string())
                    .and_then(|s| history::standing(&s, &pair.name, &h).map_err(|e| e.to_string()))
            });
        let skipped = match standing {
            Ok(Finished::Finished) => {
                eligible.pairs.insert(pair.name.clone(), pair.clone());
                continue;
            }
            Ok(Finished::Never) => "the change never finished here",
            Ok(Finished::Withdrawn) => "already rolled back",
            Ok(Finished::Held) => "held, not finished: `baton revert` takes it back",
            Err(ref e) => {
                unjudged = true;
                e.as_str()
            }
        };
        eprintln!("baton: {}: skipped: {skipped}", pair.name);
    }
    if eligible.pairs.is_empty() {
        eprintln!("baton: no selected pair has change `{name}` to roll back; nothing was done");
        // A pair whose history cannot be read was not judged: say so by
        // the exit code too.
        return if unjudged { Exit::Operator } else { Exit::Ok };
    }
    let found = uploads_in_place(&eligible, name).await;
    for n in found.iter().filter(|f| !f.blocking) {
        eprintln!("baton: {}", n.text);
    }
    let problems: Vec<&Found> = found.iter().filter(|f| f.blocking).collect();
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("baton: {}", p.text);
        }
        eprintln!("baton: change `{name}` cannot be rolled back on every selected pair: a rollback puts an upload back only while the host still holds what the change uploaded, and the change has no rollback steps of its own to take it back. Put the files back as the change left them, or leave those pairs out. Nothing was done.");
        return Exit::NotStarted;
    }
    apply_fleet(&eligible, req, json, opts).await
}

/// Hosts asked at once.
const AT_ONCE: usize = 16;

/// One thing the check found.
struct Found {
    /// What, in a line.
    text: String,
    /// Whether it stops the rollback (else a note: an upload left to the
    /// change's own rollback steps).
    blocking: bool,
}

/// Asks both hosts of every pair (`AT_ONCE` at a time) what a rollback
/// would find at each upload's destination; one line per thing found. The
/// change's hash and each upload's SHA-256 are computed once per pair.
async fn uploads_in_place(config: &Config, name: &str) -> Vec<Found> {
    use futures_util::StreamExt;
    let mut found = Vec::new();
    let mut asks = Vec::new();
    for pair in config.pairs.values() {
        let Some(change) = pair.changes.get(name) else {
            continue;
        };
        if change.upload.is_empty() {
            continue;
        }
        match what_was_uploaded(change) {
            Ok(sums) => {
                let sums = std::sync::Arc::new(sums);
                for host in &pair.hosts {
                    asks.push(ask_host(pair, host, change, sums.clone()));
                }
            }
            Err(why) => found.push(Found {
                text: format!("{}: {why}", pair.name),
                blocking: true,
            }),
        }
    }
    let asked = futures_util::stream::iter(asks)
        .buffer_unordered(AT_ONCE)
        .collect::<Vec<Vec<Found>>>()
        .await;
    found.extend(asked.into_iter().flatten());
    found
}

/// The change's hash and each upload's SHA-256, in upload order.
fn what_was_uploaded(change: &Change) -> Result<(String, Vec<String>), String> {
    let owner = crate::exec::change::hash(change)
        .map_err(|e| format!("cannot hash change {}: {e}", change.name))?;
    let sums = change
        .upload
        .iter()
        .map(|u| {
            crate::exec::change::upload_sha256(u)
                .map_err(|e| format!("cannot read {}: {e}", u.from.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((owner, sums))
}

/// One host's uploads of the change: what stands in the way of putting
/// them back.
async fn ask_host(
    pair: &Pair,
    host: &Host,
    change: &Change,
    sums: std::sync::Arc<(String, Vec<String>)>,
) -> Vec<Found> {
    let at = format!("{}: {}", pair.name, host.name);
    let stop = |text: String| Found {
        text,
        blocking: true,
    };
    let ssh = match SshHost::connect(Target::new(host, &pair.ssh)).await {
        Ok(s) => s,
        Err(e) => return vec![stop(format!("{at}: cannot check its uploads: {e}"))],
    };
    let (owner, shas) = &*sums;
    let mut found = Vec::new();
    for (u, sha) in change.upload.iter().zip(shas) {
        let probe = restore::probe_line(&restore::Upload {
            path: &u.to,
            change: owner,
            sha256: sha,
        });
        let answer = match ssh.run(&probe).await {
            Ok(out) if out.success() => Standing::parse(&out.stdout_text()),
            Ok(out) => {
                found.push(stop(format!(
                    "{at}: cannot check {}: {}",
                    u.to,
                    out.stderr_text().trim()
                )));
                continue;
            }
            Err(e) => {
                found.push(stop(format!("{at}: cannot check {}: {e}", u.to)));
                continue;
            }
        };
        match answer {
            Some(s) if s.restorable() => {}
            // The change's own rollback steps may take the file back: the
            // rollback goes on, leaving the file to them, and says so.
            Some(s) if !change.rollback.is_empty() => found.push(Found {
                text: format!(
                    "{at}: {} {}: it is left to the change's rollback steps",
                    u.to,
                    s.describe()
                ),
                blocking: false,
            }),
            Some(s) => found.push(stop(format!("{at}: {} {}", u.to, s.describe()))),
            None => found.push(stop(format!("{at}: {}: an answer baton cannot read", u.to))),
        }
    }
    found
}
